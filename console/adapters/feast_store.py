"""The feature store behind :class:`~console.adapters.protocols.FeatureStore`: Feast's registry.

Feast is an optional extra (``pip install 'rewind-console[feast]'``) and costs about
3 s to import, so it is imported on first use, never on a refresh path: the console's
overview reads bindings from the model registry and the servers' metrics instead.

Rewind never runs ``feast apply`` on a user's repository (that executes their code):
it only reads the registry, adds a feature service built from objects it read back,
and moves a view's active version to one of its own saved snapshots.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from console.domain.errors import ConflictError, FeatureStoreError, NotFoundError
from console.domain.feature_store import Projection, ServiceInfo, ViewInfo, ViewVersion


def udf_sha(source: str) -> str:
    """The first 12 hex digits of the sha256 of a transformation's source: a version's identity by content."""
    return hashlib.sha256(source.encode()).hexdigest()[:12] if source else ""


class FeastStore:
    """Reads and changes a Feast registry given the repository's directory (its ``feature_store.yaml``)."""

    def __init__(self, repo: Path) -> None:
        self.repo = Path(repo)
        self._store: Any = None

    def describe(self) -> str:
        """Where the store is."""
        return f"Feast repository {self.repo}"

    @property
    def store(self) -> Any:
        """Feast's FeatureStore, imported and opened on first use."""
        if self._store is None:
            if not (self.repo / "feature_store.yaml").is_file():
                raise FeatureStoreError(f"{self.describe()}: no feature_store.yaml there (features.repo)")
            os.environ.setdefault("FEAST_USAGE", "False")
            warnings.filterwarnings("ignore", module="feast")
            logging.getLogger("feast").setLevel(logging.ERROR)
            try:
                from feast import FeatureStore
            except ImportError:
                raise FeatureStoreError("Feast is not installed: pip install 'rewind-console[feast]' "
                                        "(features.repo is set)") from None
            self._store = self._call("open the registry", FeatureStore, repo_path=str(self.repo))
        return self._store

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        """One Feast call, its errors turned into one line naming the store."""
        try:
            return func(*args, **kwargs)
        except (NotFoundError, ConflictError, FeatureStoreError):
            raise
        except Exception as exc:  # noqa: BLE001 - Feast raises many kinds; each becomes one line
            name = type(exc).__name__
            first = (str(exc).strip().splitlines() or [name])[0][:200]
            if "NotFound" in name or "does not exist" in first:
                raise NotFoundError(f"{self.describe()}: {first}") from None
            raise FeatureStoreError(f"{self.describe()}: {what} failed: {name}: {first}") from None

    @property
    def project(self) -> str:
        return str(self.store.project)

    def service(self, name: str) -> ServiceInfo:
        """A feature service and its projections, read from the registry (not its cache)."""
        found = self._call(f"read feature service {name}", self.store.registry.get_feature_service,
                           name, self.project, allow_cache=False)
        return _service_info(found)

    def services(self) -> list[ServiceInfo]:
        """Every feature service of the project."""
        found = self._call("list feature services", self.store.registry.list_feature_services, self.project,
                           allow_cache=False)
        return sorted((_service_info(s) for s in found), key=lambda s: s.name)

    def _current(self, name: str) -> Any:
        registry = self.store.registry
        try:
            return registry.get_on_demand_feature_view(name, self.project, allow_cache=False)
        except Exception:  # noqa: BLE001 - not an on-demand view: try a plain one
            return self._call(f"read feature view {name}", registry.get_feature_view, name, self.project,
                              allow_cache=False)

    def view(self, name: str) -> ViewInfo:
        """A view's saved versions (number, transformation sha and source, creation time) and its active one."""
        current = self._current(name)
        registry = self.store.registry
        history = self._call(f"list the versions of {name}", registry.list_feature_view_versions, name, self.project)
        versions = []
        for entry in history:
            number = int(entry["version_number"])
            snapshot = self._call(f"read {name} v{number}", registry.get_feature_view_by_version,
                                  name, self.project, number)
            source = transformation_source(snapshot)
            created = entry.get("created_timestamp")
            versions.append(ViewVersion(name, number, udf_sha(source),
                                        created.timestamp() if created is not None else None, source))
        active = _active_number(current)
        if active is None and versions:
            # Feast 0.67 leaves current_version_number unset on the view a first apply created: its only version.
            active = max(v.number for v in versions)
        return ViewInfo(name, active, tuple(sorted(versions, key=lambda v: v.number)))

    def ensure_service(self, name: str, projections: Sequence[Projection]) -> ServiceInfo:
        """Create a service of ``projections`` unless it exists alike; the service read back.

        Only the new service is applied: the views it references are the registry's own
        objects, so nothing of the user's repository is executed or changed.
        """
        try:
            existing = self.service(name)
        except NotFoundError:
            existing = None
        wanted = tuple(projections)
        if existing is not None:
            if existing.projections != wanted:
                raise ConflictError(f"{self.describe()}: feature service {name} exists with "
                                    f"{', '.join(p.ref for p in existing.projections)}, not "
                                    f"{', '.join(p.ref for p in wanted)}")
            return existing
        from feast import FeatureService

        service = FeatureService(name=name, features=[p.ref for p in wanted],
                                 tags={"rewind.created_by": "rewind features rollback"})
        self._call(f"create feature service {name}", self.store.apply, [service])
        after = self.service(name)
        if after.projections != wanted:
            raise FeatureStoreError(f"{self.describe()}: read-back shows feature service {name} as "
                                    f"{', '.join(p.ref for p in after.projections)}")
        return after

    def pin_view(self, view: str, version: int, expected: int | None) -> int:
        """Make saved ``version`` the view's active one (Feast replaces the definition with that snapshot)."""
        current = self._current(view)
        active = _active_number(current)
        if active is None:
            active = self.view(view).active
        if active != expected and active != version:
            raise ConflictError(f"{self.describe()}: feature view {view} is at v{active}, expected v{expected}")
        if active != version:
            current.version = f"v{version}"
            self._call(f"pin {view} at v{version}", self.store.apply, [current])
        after = _active_number(self._current(view))
        if after != version:
            raise FeatureStoreError(f"{self.describe()}: read-back shows {view} at v{after}, not v{version}")
        return int(after)


def _active_number(view: Any) -> int | None:
    """The view's active version number as Feast records it (``None`` when it does not)."""
    number = getattr(view, "current_version_number", None)
    return int(number) if number is not None else None


def transformation_source(view: Any) -> str:
    """A view's transformation source: Feast 0.67 keeps it on the transformation, not always on the view."""
    transformation = getattr(view, "feature_transformation", None)
    return str(getattr(transformation, "udf_string", "") or getattr(view, "udf_string", "") or "")


def _service_info(service: Any) -> ServiceInfo:
    projections = tuple(Projection(p.name, getattr(p, "version_tag", None)) for p in service.feature_view_projections)
    return ServiceInfo(str(service.name), projections)
