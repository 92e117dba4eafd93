"""Model versions and aliases as the registry reports them, normalised."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def normalise_version(raw: object) -> str:
    """Return a registry version id as a canonical string.

    MLflow returns version numbers as ``int`` from a sqlite store and as ``str``
    from a tracking server; everything in Rewind compares the string form.

    Raises:
        ValueError: when ``raw`` is empty or not a whole number.
    """
    text = str(raw).strip()
    if not text.isdigit():
        raise ValueError(f"not a model version number: {raw!r}")
    return str(int(text))


def shown_version(version: str | None) -> str:
    """A version as messages name it: ``v3``, or ``nothing`` for an unset alias."""
    return "nothing" if version is None else f"v{version}"


def version_sort_key(version: str) -> tuple[int, str]:
    """Sort versions numerically, with anything unexpected last."""
    return (int(version), version) if version.isdigit() else (1 << 62, version)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    model: str
    version: str
    run_id: str | None
    created_at: datetime | None
    status: str = "READY"
    source: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    signature: dict[str, Any] | None = None


@dataclass(frozen=True)
class AliasMap:
    """The aliases of one registered model: alias name -> version."""

    model: str
    aliases: dict[str, str]

    @classmethod
    def of_versions(cls, model: str, versions: Iterable[ModelVersion]) -> AliasMap:
        """The aliases that listed versions carry: ``Registry.list_versions`` reads them, so no second read."""
        return cls(model, {alias: v.version for v in versions for alias in v.aliases})

    def version_of(self, alias: str) -> str | None:
        """The version an alias points to, or ``None`` when it is not set."""
        return self.aliases.get(alias)

    def aliases_of(self, version: str) -> tuple[str, ...]:
        """Every alias that points to ``version``, sorted."""
        return tuple(sorted(a for a, v in self.aliases.items() if v == version))
