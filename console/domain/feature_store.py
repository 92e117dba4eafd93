"""What a feature store holds for a model, and the pure rules of a feature rollback.

A model version names the feature service it consumes in a registry tag
(``feast.feature_service``, Feast's own convention); the service names feature
views, each either pinned to a version (``txn_features@v0``) or following the
view's active version. Version numbers do not identify content (a view can go
v0 → v1 → v2 and back to v0's code), so a version is identified by the hash of
its transformation's source as well.

Pure: the adapters read Feast, this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.domain.errors import UsageError

SERVICE_TAG = "feast.feature_service"
"""The registry model-version tag naming the feature service a version consumes (Feast's MLflow convention)."""


@dataclass(frozen=True)
class Projection:
    """One feature view in a service: pinned to ``version``, or following the active version (``None``)."""

    view: str
    version: int | None = None

    @property
    def ref(self) -> str:
        """The reference a feature service is defined with: ``view`` or ``view@vN``."""
        return self.view if self.version is None else f"{self.view}@v{self.version}"


@dataclass(frozen=True)
class ServiceInfo:
    """A feature service and the views it bundles."""

    name: str
    projections: tuple[Projection, ...]

    def projection(self, view: str) -> Projection | None:
        """The service's projection of ``view``, if it has one."""
        return next((p for p in self.projections if p.view == view), None)


@dataclass(frozen=True)
class ViewVersion:
    """One saved version of a feature view: its number, its transformation's hash and source."""

    view: str
    number: int
    udf_sha: str
    created: float | None = None
    source: str = ""

    @property
    def label(self) -> str:
        """``vN``, as Feast names it."""
        return f"v{self.number}"


@dataclass(frozen=True)
class ViewInfo:
    """A feature view's version history and which version is active."""

    view: str
    active: int | None
    versions: tuple[ViewVersion, ...]

    def version(self, number: int | None) -> ViewVersion | None:
        """The saved version ``number``, if it exists."""
        return next((v for v in self.versions if v.number == number), None)

    def consumed(self, projection: Projection) -> ViewVersion | None:
        """The version a projection reads: its pin, else the active one."""
        return self.version(projection.version if projection.version is not None else self.active)


def parse_version(text: str) -> int:
    """``v3``, ``3`` or ``@v3`` as the number 3; UsageError otherwise."""
    cleaned = text.strip().lstrip("@").lower().removeprefix("v")
    if not cleaned.isdigit():
        raise UsageError(f"{text!r} is not a feature view version (write it as v2 or 2)")
    return int(cleaned)


def rollback_target(view: ViewInfo, current: int, to: int | None = None) -> ViewVersion:
    """The version a feature rollback goes back to.

    ``to`` when given (it must exist and differ in content from the current one);
    otherwise the newest version before ``current`` whose transformation differs
    from the current one's (an older number with the same code is no way back).

    Raises:
        UsageError: no such version, or nothing different to go back to.
    """
    now = view.version(current)
    if now is None:
        raise UsageError(f"feature view {view.view} has no version v{current}")
    if to is not None:
        chosen = view.version(to)
        if chosen is None:
            known = ", ".join(v.label for v in view.versions) or "none"
            raise UsageError(f"feature view {view.view} has no version v{to} (it has {known})")
        if chosen.udf_sha and chosen.udf_sha == now.udf_sha:
            raise UsageError(f"{view.view} v{to} has the same transformation as v{current} "
                             f"(sha {now.udf_sha}): going back to it changes nothing")
        return chosen
    older = sorted((v for v in view.versions if v.number < current and v.udf_sha != now.udf_sha),
                   key=lambda v: v.number, reverse=True)
    if not older:
        raise UsageError(f"feature view {view.view} has no version before v{current} with another transformation")
    return older[0]


def pinned_service_name(service: str, view: str, version: int) -> str:
    """The name of the service a per-model rollback creates: ``service`` with ``view`` pinned at ``version``."""
    return f"{service}__pin_{view}_v{version}"


def pinned_projections(service: ServiceInfo, view: str, version: int) -> tuple[Projection, ...]:
    """``service``'s projections with ``view`` pinned at ``version`` and every other one as it was."""
    if service.projection(view) is None:
        raise UsageError(f"feature service {service.name} does not include feature view {view}")
    return tuple(Projection(p.view, version) if p.view == view else p for p in service.projections)
