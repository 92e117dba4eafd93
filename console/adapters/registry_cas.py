"""Compare-and-set over a registry whose writes are unconditional (MLflow's aliases and version tags).

MLflow has no conditional write: an alias or tag is set whatever it was. The
registry adapters (the Python client and the REST API) share this one flow:
read, compare with what the caller expects, write, read back. A change by
another writer before the read is refused; one after the write shows in the
read-back; both raise :class:`ConflictError` ("the state moved"). A write by
another writer between the read and the write (milliseconds) cannot be seen:
the caller's action lock keeps Rewind's own consoles out of that window.
"""

from __future__ import annotations

from console.domain.errors import ConflictError
from console.domain.versions import normalise_version, shown_version


class UnconditionalWrites:
    """``set_alias``, ``delete_alias`` and ``swap_version_tag`` built on a registry's plain reads and writes.

    Subclasses provide ``describe``, ``get_alias``, ``get_version_tag``,
    ``set_version_tag`` and the three writes below.
    """

    def describe(self) -> str:
        raise NotImplementedError

    def get_alias(self, model: str, alias: str) -> str | None:
        raise NotImplementedError

    def get_version_tag(self, model: str, version: str, key: str) -> str | None:
        raise NotImplementedError

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        raise NotImplementedError

    def _write_alias(self, model: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version``, whatever it points at now."""
        raise NotImplementedError

    def _remove_alias(self, model: str, alias: str) -> None:
        """Remove ``alias``, whatever it points at now."""
        raise NotImplementedError

    def _remove_version_tag(self, model: str, version: str, key: str) -> None:
        """Remove one tag of one version."""
        raise NotImplementedError

    def set_alias(self, model: str, alias: str, version: str, expected: str | None,
                  checked: bool = False) -> str | None:
        """Point ``alias`` at ``version`` if it still points at ``expected`` (``None``: unset).

        With ``checked``, the caller has just compared ``expected`` with a read
        made under its action lock, and the alias is not read again before the write.

        Returns:
            The alias's version as read back after the write.

        Raises:
            ConflictError: the alias moved since the caller read it, or another writer moved it
                after this write (the read-back shows neither ``version`` nor this write).
            NotFoundError: the model or version does not exist.
        """
        version = normalise_version(version)
        current = expected if checked else self.get_alias(model, alias)
        if current != expected and current != version:
            raise ConflictError(
                f"{self.describe()}: alias {alias!r} of {model!r} points at "
                f"{shown_version(current)}, expected {shown_version(expected)}"
            )
        if current != version:
            self._write_alias(model, alias, version)
        after = self.get_alias(model, alias)
        if after != version:
            raise ConflictError(f"{self.describe()}: alias {alias!r} of {model!r} moved under this write: "
                                f"read back at {shown_version(after)}, not v{version} (another writer)")
        return after

    def delete_alias(self, model: str, alias: str, expected: str | None, checked: bool = False) -> str | None:
        """Remove ``alias`` if it still points at ``expected``; returns the read-back (``None``).

        ``checked`` as for :meth:`set_alias`.

        Raises:
            ConflictError: the alias points elsewhere, or was set again after the removal.
        """
        current = expected if checked else self.get_alias(model, alias)
        if current is None:
            return None
        if current != expected:
            raise ConflictError(
                f"{self.describe()}: alias {alias!r} of {model!r} points at {shown_version(current)}, "
                f"expected {shown_version(expected)}"
            )
        self._remove_alias(model, alias)
        after = self.get_alias(model, alias)
        if after is not None:
            raise ConflictError(f"{self.describe()}: alias {alias!r} of {model!r} moved under this removal: "
                                f"read back at v{after} (another writer)")
        return after

    def swap_version_tag(self, model: str, version: str, key: str, value: str | None,
                         expected: str | None) -> str | None:
        """Set (or with ``value`` ``None`` delete) a tag if it still is ``expected``; the value read back.

        The tag is read, compared and written under the caller's action lock, then read back.

        Raises:
            ConflictError: the tag is neither ``expected`` nor already ``value``, or the
                read-back shows another writer's value.
        """
        current = self.get_version_tag(model, version, key)
        if current != expected and current != value:
            raise ConflictError(f"{self.describe()}: tag {key!r} of {model!r} v{version} is "
                                f"{current or 'unset'}, expected {expected or 'unset'}")
        if current != value:
            if value is None:
                self._remove_version_tag(model, version, key)
            else:
                self.set_version_tag(model, version, key, value)
        after = self.get_version_tag(model, version, key)
        if after != value:
            raise ConflictError(f"{self.describe()}: tag {key!r} of {model!r} v{version} moved under this write: "
                                f"read back as {after or 'unset'}, not {value or 'unset'} (another writer)")
        return after
