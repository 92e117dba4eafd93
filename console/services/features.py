"""Features: which feature version each model version consumes, the diagnosis, and the feature rollback.

Three uses, one module:

- :class:`FeatureEvidence` reads what the servers report (bindings, input health) and
  turns a status snapshot into a :class:`~console.domain.features.Diagnosis`: model
  regression, the world changed, a feature bug, or not sure. It never touches the
  feature store, so it is cheap enough for every refresh.
- :class:`FeatureCatalog` reads the feature store (Feast, slow to import) for the
  declared side: registry tag → service → views, versions and transformation hashes,
  and the diff between two versions.
- :class:`FeatureRollbacks` plans a feature rollback: per model (a service pinned at the
  previous transformation, then the versions' tags moved with compare-and-set) or global
  (the view's active version moved back). The plan is carried out by the one action
  procedure (:mod:`console.services.actions`), so it is confirmed, journaled, verified,
  undoable and compensated like every other action.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from console.adapters.protocols import FeatureStore, FeatureTelemetry, MetricsSource, Registry
from console.domain.errors import NotFoundError, RewindError, UsageError
from console.domain.feature_store import (
    SERVICE_TAG,
    Projection,
    ServiceInfo,
    ViewInfo,
    ViewVersion,
    pinned_projections,
    pinned_service_name,
    rollback_target,
)
from console.domain.features import (
    Binding,
    Diagnosis,
    FeatureInput,
    Health,
    HealthCriteria,
    binding_findings,
    diagnose,
    judge_inputs,
    transformation_diff,
)
from console.domain.metrics import MetricSpec
from console.domain.rollback import ActionKind, Mode, Plan, SignatureCheck, TagMove, ViewPin
from console.domain.status import StatusSnapshot
from console.domain.verdicts import Matrix, State, build_matrix
from console.domain.versions import version_sort_key

if TYPE_CHECKING:  # the journal loads only where rollbacks are read: not on the status path
    from console.services.journal import JournalService


@dataclass(frozen=True)
class FeatureSettings:
    """The ``features:`` section of the config, as the services need it."""

    service_tag: str = SERVICE_TAG
    recent_s: float = 1800.0
    window: str = "1m"
    criteria: HealthCriteria = HealthCriteria()
    verify_window_s: float = 90.0
    poll_interval_s: float = 1.0


FeatureRead = tuple[tuple[Binding, ...], tuple[FeatureInput, ...], str | None]
"""One read of the feature telemetry: observed bindings, judged inputs, and why it failed (``None``: it did not)."""


@dataclass(frozen=True)
class FeatureReading:
    """What the servers report of a model's features, and the diagnosis they support."""

    model: str
    observed: tuple[Binding, ...]
    inputs: tuple[FeatureInput, ...]
    diagnosis: Diagnosis | None
    problem: str | None = None
    """Why the feature telemetry could not be read (the diagnosis then goes without it)."""

    @property
    def abnormal(self) -> tuple[FeatureInput, ...]:
        """The inputs judged abnormal."""
        return tuple(i for i in self.inputs if i.health is Health.ABNORMAL)


def breaches_and_judged(matrix: Matrix) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """From a verdict matrix: the segments each version breaches in, and those it has a verdict in.

    Versions the router drains now are left out: their window says nothing about now.
    """
    breaches: dict[str, set[str]] = {}
    judged: dict[str, set[str]] = {}
    for version in matrix.versions:
        if version in matrix.drained:
            continue
        for segment in matrix.segments:
            states = {matrix.state(m.name, version, segment) for m in matrix.metrics if m.criteria.judges}
            if states & {State.PASS, State.BREACH, State.SUSPECT}:
                judged.setdefault(version, set()).add(segment)
            if State.BREACH in states:
                breaches.setdefault(version, set()).add(segment)
    return ({v: frozenset(s) for v, s in breaches.items()}, {v: frozenset(s) for v, s in judged.items()})


class FeatureEvidence:
    """The servers' feature reports and the diagnosis, from Prometheus only (no feature store import)."""

    def __init__(self, telemetry: FeatureTelemetry | None, settings: FeatureSettings = FeatureSettings(),
                 clock: Callable[[], float] = time.time) -> None:
        self.telemetry = telemetry
        self.settings = settings
        self.clock = clock

    def bindings(self, model: str) -> tuple[tuple[Binding, ...], str | None]:
        """Only what the servers report consuming (one query less than :meth:`read`), or why it could not be read."""
        if self.telemetry is None:
            return (), None
        try:
            return tuple(self.telemetry.bindings(model, 2 * self.settings.recent_s)), None
        except RewindError as exc:
            return (), str(exc)

    def inputs(self, model: str, window: str | None = None,
               criteria: HealthCriteria | None = None) -> tuple[tuple[FeatureInput, ...], str | None]:
        """The inputs judged over ``window`` (default ``features.window``), or why they could not be read."""
        if self.telemetry is None:
            return (), None
        try:
            cumulative, missing = self.telemetry.inputs(model, window or self.settings.window)
        except RewindError as exc:
            return (), str(exc)
        return tuple(judge_inputs(cumulative, missing, criteria or self.settings.criteria)), None

    def read(self, model: str) -> FeatureRead:
        """The observed bindings and judged inputs, or the reason they could not be read."""
        observed, problem = self.bindings(model)
        if problem is not None:
            return (), (), problem
        inputs, problem = self.inputs(model)
        return ((), (), problem) if problem is not None else (observed, inputs, None)

    def diagnosed(self, snapshot: StatusSnapshot, read: FeatureRead | None = None) -> StatusSnapshot:
        """``snapshot`` with its diagnosis (``read``: the feature evidence already read, else read now)."""
        reading = self.reading(snapshot, read)
        return replace(snapshot, diagnosis=reading.diagnosis, diagnosis_problem=reading.problem)

    def reading(self, snapshot: StatusSnapshot, read: FeatureRead | None = None) -> FeatureReading:
        """The diagnosis of a status snapshot, with the feature evidence behind it."""
        return self.reading_of(snapshot.model, snapshot.matrix, read)

    def reading_of(self, model: str, matrix: Matrix, read: FeatureRead | None = None) -> FeatureReading:
        """The diagnosis of a verdict matrix of ``model``, with the feature evidence behind it."""
        observed, inputs, problem = read if read is not None else self.read(model)
        breaches, judged = breaches_and_judged(matrix)
        known = bool(observed or inputs)
        diagnosis = diagnose(breaches, judged, inputs, observed, self.clock(), self.settings.recent_s,
                             features_known=known)
        return FeatureReading(model, observed, inputs, diagnosis, problem)


@dataclass(frozen=True)
class DeclaredBinding:
    """One model version's declared binding: its tag, the service it names, and what that service reads."""

    version: str
    service: str | None
    projections: tuple[tuple[Projection, ViewVersion | None], ...] = ()
    problem: str | None = None

    def bindings(self) -> list[Binding]:
        """As domain bindings (a projection following the active version is ``latest``)."""
        if self.service is None:
            return []
        return [Binding(self.version, self.service, p.view,
                        f"v{p.version}" if p.version is not None else "latest",
                        consumed.udf_sha if consumed else "")
                for p, consumed in self.projections]


@dataclass(frozen=True)
class FeatureMap:
    """A model's features as declared (registry and feature store) beside what the servers report."""

    model: str
    declared: tuple[DeclaredBinding, ...]
    views: dict[str, ViewInfo]
    observed: tuple[Binding, ...]
    findings: tuple[str, ...]
    problem: str | None = None


class FeatureCatalog:
    """The declared side: registry tags, the feature store's services and views (imports Feast: slow)."""

    def __init__(self, registry: Registry, store: FeatureStore | None, evidence: FeatureEvidence,
                 settings: FeatureSettings = FeatureSettings(), journal: JournalService | None = None) -> None:
        self.registry = registry
        self.store = store
        self.evidence = evidence
        self.settings = settings
        self.journal = journal
        """Where the feature rollbacks are recorded: a transformation one rolled back is watched for."""

    def require_store(self) -> FeatureStore:
        """The feature store, or a usage error saying how to configure one."""
        if self.store is None:
            raise UsageError("no feature store is configured (features.repo: the Feast repository's directory)")
        return self.store

    def tags(self, model: str) -> dict[str, str | None]:
        """Each version's feature service tag (``None``: untagged)."""
        return {v.version: v.tags.get(self.settings.service_tag) for v in self.registry.list_versions(model)}

    def feature_map(self, model: str) -> FeatureMap:
        """Declared bindings for every version, the views they read, the servers' reports, and the differences."""
        tags = self.tags(model)
        services: dict[str, ServiceInfo | str] = {}
        views: dict[str, ViewInfo] = {}
        problem = None
        store = self.store
        for name in sorted({t for t in tags.values() if t}):
            if store is None:
                services[name] = "no feature store configured (features.repo)"
                continue
            try:
                service = store.service(name)
                services[name] = service
                for p in service.projections:
                    if p.view not in views:
                        views[p.view] = store.view(p.view)
            except NotFoundError as exc:
                services[name] = str(exc)
            except RewindError as exc:
                problem = str(exc)
                services[name] = str(exc)
        declared = []
        for version in sorted(tags, key=version_sort_key):
            tagged = tags[version]
            if tagged is None:
                declared.append(DeclaredBinding(version, None))
                continue
            name = tagged
            found = services.get(name)
            if not isinstance(found, ServiceInfo):
                declared.append(DeclaredBinding(version, name, (), found))
                continue
            declared.append(DeclaredBinding(version, name, tuple(
                (p, views[p.view].consumed(p) if p.view in views else None) for p in found.projections)))
        observed, read_problem = self.evidence.bindings(model)
        declared_bindings = [b for d in declared for b in d.bindings() if d.projections]
        # Compared only where both sides are known: a service the store could not resolve (or no store at all)
        # is its own problem, not a difference between the registry and the servers.
        known = {b.version for b in declared_bindings} | {d.version for d in declared if d.service is None}
        reported = {b.version for b in observed}
        findings = tuple(binding_findings([b for b in declared_bindings if b.version in reported],
                                          [b for b in observed if b.version in known]))
        findings += tuple(returned_transformations(self.rolled_back(model), views, observed))
        return FeatureMap(model, tuple(declared), views, observed, findings, problem or read_problem)

    def rolled_back(self, model: str) -> list[RolledBack]:
        """The transformations feature rollbacks of ``model`` moved away from, and not undone since."""
        if self.journal is None:
            return []
        from console.domain.journal import EventKind

        applied: dict[str, RolledBack] = {}
        undone: set[str] = set()
        for incident in self.journal.incidents():
            if incident.model not in (None, model):
                continue
            plans: dict[str, Plan] = {}
            for event in self.journal.journal.events(incident.incident_id,
                                                     [EventKind.ACTION_INTENT, EventKind.ACTION_APPLIED]):
                action_id = str(event.payload.get("action_id"))
                if event.kind is EventKind.ACTION_INTENT:
                    plans[action_id] = Plan.from_dict(event.payload["plan"])
                    continue
                plan = plans.get(action_id)
                if plan is None or event.payload.get("changed", True) is False:
                    continue
                if plan.undoes:
                    undone.add(plan.undoes)
                elif plan.rolls_back:
                    applied[action_id] = RolledBack(action_id, plan.rolls_back.get("view", ""),
                                                    plan.rolls_back.get("version", ""),
                                                    plan.rolls_back.get("udf_sha", ""))
        return [r for action_id, r in applied.items() if action_id not in undone and r.udf_sha]

    def diff(self, view: str, old: int, new: int) -> list[str]:
        """The unified diff of a view's transformation from version ``old`` to ``new``."""
        info = self.require_store().view(view)
        before, after = info.version(old), info.version(new)
        if before is None or after is None:
            missing = old if before is None else new
            raise UsageError(f"feature view {view} has no version v{missing}")
        return transformation_diff(before.source, after.source, f"{view} v{old} (sha {before.udf_sha})",
                                   f"{view} v{new} (sha {after.udf_sha})")


@dataclass(frozen=True)
class RolledBack:
    """A transformation a feature rollback moved away from: its view, version and hash, and the action."""

    action_id: str
    view: str
    version: str
    udf_sha: str


def returned_transformations(rolled_back: Iterable[RolledBack], views: Mapping[str, ViewInfo],
                             observed: Iterable[Binding]) -> list[str]:
    """A finding per rolled-back transformation that is back: the view's active version, or a server reading it.

    Version numbers do not identify content: the next ``feast apply`` of the unfixed repository saves the
    bad transformation again under a new number, so it is recognised by its hash.
    """
    findings = []
    observed = list(observed)
    for item in rolled_back:
        info = views.get(item.view)
        active = info.version(info.active) if info is not None else None
        # The same version still active (a per-model rollback leaves the view as it was) is not a return.
        if active is not None and active.udf_sha == item.udf_sha and active.label != item.version:
            findings.append(f"{item.view} {active.label} is the transformation {item.action_id} rolled back "
                            f"(sha {item.udf_sha}, was {item.version}): the unfixed repository was applied again; "
                            "every service following the view's active version reads it")
        readers = sorted({b.version for b in observed if b.view == item.view and b.udf_sha == item.udf_sha},
                         key=version_sort_key)
        if readers:
            who = f"versions {', '.join(readers)} read" if len(readers) > 1 else f"version {readers[0]} reads"
            findings.append(f"{who} {item.view} sha {item.udf_sha} again, the transformation {item.action_id} "
                            "rolled back")
    return findings


@dataclass(frozen=True)
class FeaturePlan:
    """A feature rollback's plan with what the responder needs to judge it."""

    plan: Plan
    view: str
    current: ViewVersion
    target: ViewVersion
    diff: tuple[str, ...]
    blast_radius: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    already: str | None = None

    @property
    def details(self) -> tuple[str, ...]:
        """Every line shown under the plan: the blast radius, the warnings, the transformation diff."""
        return (*self.blast_radius, *self.warnings, *self.diff)


class FeatureRollbacks:
    """Plans feature rollbacks; the action procedure carries them out."""

    def __init__(self, catalog: FeatureCatalog, new_action_id: Callable[[], str]) -> None:
        self.catalog = catalog
        self.new_action_id = new_action_id

    def _suspect_view(self, model: str, tags: Mapping[str, str | None], view: str | None,
                      store: FeatureStore) -> tuple[ServiceInfo, str]:
        names = sorted({t for t in tags.values() if t})
        if not names:
            raise UsageError(f"no version of {model} names a feature service (registry tag "
                             f"{self.catalog.settings.service_tag})")
        if len(names) > 1:
            raise UsageError(f"the versions of {model} name several feature services ({', '.join(names)}): "
                             "roll back one service at a time with --service")
        service = store.service(names[0])
        if view is None:
            if len(service.projections) != 1:
                listed = ", ".join(p.view for p in service.projections)
                raise UsageError(f"feature service {service.name} reads several views ({listed}): name one with --view")
            view = service.projections[0].view
        elif service.projection(view) is None:
            raise UsageError(f"feature service {service.name} does not read feature view {view}")
        return service, view

    def preview(self, model: str, to: int | None = None, view: str | None = None, whole_view: bool = False,
                reason: str = "", service_name: str | None = None) -> FeaturePlan:
        """Plan a feature rollback of ``model`` back to the previous transformation (or ``to``).

        Per model (the default): a service pinned at the target version is created, additively,
        and every version of ``model`` tagged with the current service is moved to it. With
        ``whole_view``: the view's active version moves back, for every service and model that
        follows it (listed in the preview).

        Raises:
            UsageError: nothing to roll back, or an unknown version.
        """
        store = self.catalog.require_store()
        tags = self.catalog.tags(model)
        if service_name is not None:
            tags = {v: t for v, t in tags.items() if t == service_name}
        service, view = self._suspect_view(model, tags, view, store)
        info = store.view(view)
        projection = service.projection(view)
        assert projection is not None  # _suspect_view checked it
        current_number = projection.version if projection.version is not None else info.active
        if current_number is None:
            raise UsageError(f"feature view {view} has no active version")
        current = info.version(current_number)
        if current is None:
            raise UsageError(f"feature view {view} has no version v{current_number}")
        try:
            target = rollback_target(info, current_number, to)
        except UsageError:
            if to is not None or projection.version is None:
                raise
            # Already pinned, with nothing older to go to: the same command run again after it succeeded.
            noop = Plan(action_id=self.new_action_id(), model=model, leave="", target="", mode=Mode.IMMEDIATE,
                        weights_before={}, steps=({},), alias_moves=(), reason=reason,
                        kind=ActionKind.FEATURES_ROLLBACK)
            already = (f"{model} already reads {projection.ref} (sha {current.udf_sha}) through {service.name}: "
                       "nothing older with other code to go back to")
            return FeaturePlan(noop, view, current, current, (), (), (), already)
        diff = tuple(transformation_diff(current.source, target.source,
                                         f"{view} {current.label} (sha {current.udf_sha}, now)",
                                         f"{view} {target.label} (sha {target.udf_sha}, planned)"))
        warnings = [f"the next `feast apply` of the unfixed repository saves the bad transformation again as a "
                    f"new version and re-promotes it: fix {view} in the repository (sha {current.udf_sha} "
                    f"is the bad one)"]
        bad = {"view": view, "version": current.label, "udf_sha": current.udf_sha}
        consumers = self._consumers(store, view)
        if whole_view:
            if projection.version is not None:
                raise UsageError(f"feature service {service.name} pins {view}@v{projection.version}: a global pin "
                                 "does not change what it reads; roll back per model instead")
            followers = [s for s, p in consumers if p.version is None]
            plan = Plan(action_id=self.new_action_id(), model=model, leave="", target="", mode=Mode.IMMEDIATE,
                        weights_before={}, steps=({},), alias_moves=(), reason=reason,
                        kind=ActionKind.FEATURES_ROLLBACK,
                        view_pin=ViewPin(view, f"v{info.active}", target.label), rolls_back=bad)
            blast = [f"blast radius (global): every consumer of {view} following its active version: "
                     f"services {', '.join(followers) or 'none'}; models "
                     f"{self._models_of(followers) or 'none'}"]
            return FeaturePlan(plan, view, current, target, diff, tuple(blast), tuple(warnings))
        pinned = pinned_service_name(service.name, view, target.number)
        projections = pinned_projections(service, view, target.number)
        moves = tuple(TagMove(v, self.catalog.settings.service_tag, service.name, pinned)
                      for v in sorted(tags, key=version_sort_key) if tags[v] == service.name)
        plan = Plan(action_id=self.new_action_id(), model=model, leave="", target="", mode=Mode.IMMEDIATE,
                    weights_before={}, steps=({},), alias_moves=(), reason=reason,
                    kind=ActionKind.FEATURES_ROLLBACK, tag_moves=moves,
                    feature_service={"name": pinned, "features": [p.ref for p in projections]}, rolls_back=bad)
        sharing = [f"{m} v{v}" for m, v in self.catalog.registry.tagged_versions(
            self.catalog.settings.service_tag, service.name) if m != model]
        blast = [f"blast radius: {model} {', '.join('v' + m.version for m in moves)} move from {service.name} to "
                 f"{pinned} ({', '.join(p.ref for p in projections)}); alias, weights and model untouched",
                 "other models on " + service.name + ": " + (", ".join(sharing) if sharing else "none")]
        return FeaturePlan(plan, view, current, target, diff, tuple(blast), tuple(warnings))

    def _consumers(self, store: FeatureStore, view: str) -> list[tuple[str, Projection]]:
        return [(s.name, p) for s in store.services() for p in s.projections if p.view == view]

    def _models_of(self, services: Iterable[str]) -> str:
        found = []
        for name in services:
            found += [f"{m} v{v}" for m, v in self.catalog.registry.tagged_versions(
                self.catalog.settings.service_tag, name)]
        return ", ".join(found)


class FeatureActions:
    """The feature side of the action procedure: read, apply with compare-and-set, compensate, verify.

    :class:`~console.services.rollback.RollbackService` calls it for a plan that moves features, so
    the lock, the intent, the outcome and the journal stay the procedure's own.
    """

    def __init__(self, registry: Registry, store: FeatureStore | None, evidence: FeatureEvidence,
                 metrics: MetricsSource, catalogue: tuple[MetricSpec, ...], traffic_metric: str | None,
                 settings: FeatureSettings = FeatureSettings(), sleep: Callable[[float], None] = time.sleep) -> None:
        self.registry = registry
        self.store = store
        self.evidence = evidence
        self.metrics = metrics
        self.catalogue = catalogue
        self.traffic_metric = traffic_metric
        self.settings = settings
        self.sleep = sleep

    def read(self, plan: Plan) -> tuple[dict[str, str | None], str | None]:
        """The tags the plan moves, as they are now, and the pinned view's active version (``vN``)."""
        tags = {m.version: self.registry.get_version_tag(plan.model, m.version, m.key) for m in plan.tag_moves}
        view = None
        if plan.view_pin is not None:
            if self.store is None:
                raise UsageError("no feature store is configured (features.repo)")
            view = f"v{self.store.view(plan.view_pin.view).active}"
        return tags, view

    def apply(self, plan: Plan) -> tuple[dict[str, str | None], str | None]:
        """Create the pinned service (additive), move the view, then each tag with compare-and-set; read back.

        Raises:
            FeatureChangeFailed: a write failed; ``done`` says what had changed, for compensation.
        """
        done: list[TagMove] = []
        view = None
        try:
            if plan.feature_service is not None:
                if self.store is None:
                    raise UsageError("no feature store is configured (features.repo)")
                self.store.ensure_service(plan.feature_service["name"],
                                          [_projection(ref) for ref in plan.feature_service["features"]])
            if plan.view_pin is not None and self.store is not None:
                pin = plan.view_pin
                view = f"v{self.store.pin_view(pin.view, int(pin.after[1:]), int(pin.before[1:]))}"
            tags: dict[str, str | None] = {}
            for move in plan.tag_moves:
                tags[move.version] = self.registry.swap_version_tag(plan.model, move.version, move.key, move.after,
                                                                    expected=move.before)
                done.append(move)
        except RewindError as exc:
            raise FeatureChangeFailed(exc, done, view is not None) from None
        return tags, view

    def compensate(self, plan: Plan, done: list[TagMove], view_moved: bool) -> list[str]:
        """Put back what a failed feature change had moved; the problems met on the way."""
        problems = []
        for move in reversed(done):
            try:
                self.registry.swap_version_tag(plan.model, move.version, move.key, move.before, expected=move.after)
            except RewindError as exc:
                problems.append(f"tag of v{move.version}: {exc}")
        if view_moved and plan.view_pin is not None and self.store is not None:
            pin = plan.view_pin
            try:
                self.store.pin_view(pin.view, int(pin.before[1:]), int(pin.after[1:]))
            except RewindError as exc:
                problems.append(f"feature view {pin.view}: {exc}")
        return problems

    def _expected(self, plan: Plan) -> dict[str, str]:
        """What each moved version's servers should report once the plan holds: the service, or the view version."""
        if plan.view_pin is not None:
            return {"*": plan.view_pin.after}
        return {m.version: m.after or "" for m in plan.tag_moves}

    def _bindings_hold(self, plan: Plan, observed: tuple[Binding, ...]) -> tuple[bool, list[str]]:
        expected = self._expected(plan)
        lagging = []
        if "*" in expected:
            view = plan.view_pin.view if plan.view_pin else ""
            for b in observed:
                if b.view == view and b.feature_service and b.view_version != expected["*"]:
                    lagging.append(f"v{b.version} reads {view} {b.view_version}")
            return not lagging and bool(observed), lagging
        reported = {b.version for b in observed}
        for version, service in expected.items():
            if version not in reported:
                continue  # no server of that version runs: nothing to report
            if any(b.version == version and b.feature_service != service for b in observed):
                seen = sorted({b.feature_service for b in observed if b.version == version})
                lagging.append(f"v{version} reports {', '.join(seen)}")
        return not lagging and bool(reported & set(expected)), lagging

    def verify(self, plan: Plan, window_s: float | None = None) -> tuple[bool, dict[str, object], str]:
        """Watch until every server reports the new binding, the inputs are normal and the metrics recover.

        Returns:
            Whether all three held by the end of the window, the evidence, and one line saying so.
        """
        window = self.settings.verify_window_s if window_s is None else window_s
        started = time.monotonic()
        deadline = started + window
        flipped_at: float | None = None
        evidence: dict[str, object] = {}
        while True:
            observed, _, problem = self.evidence.read(plan.model)
            holds, lagging = self._bindings_hold(plan, observed)
            if holds and flipped_at is None:
                flipped_at = time.monotonic()
                evidence["bindings_after_s"] = round(flipped_at - started, 3)
            inputs_ok, abnormal = (False, ["the servers do not report the new binding yet"])
            metrics_ok, breaches = False, list[str]()
            flipped_for = 0.0 if flipped_at is None else time.monotonic() - flipped_at
            if flipped_at is not None and (flipped_for >= 8 or time.monotonic() >= deadline):
                # Only values served since every server switched count (Prometheus saw the switch up to a scrape
                # late): a window reaching back before it would judge the old binding's values.
                inputs_ok, abnormal = self._inputs_normal(plan, f"{max(5, math.floor(flipped_for) - 2)}s")
                metrics_ok, breaches = self._metrics_pass(plan)
            evidence.update(bindings=[b.__dict__ for b in observed], lagging=lagging, abnormal_inputs=abnormal,
                            breaches=breaches, telemetry_problem=problem)
            if holds and inputs_ok and metrics_ok:
                evidence["verified_after_s"] = round(time.monotonic() - started, 3)
                return True, evidence, (f"every server reports the new binding ({evidence['bindings_after_s']}s), "
                                        f"inputs normal, metrics pass ({evidence['verified_after_s']}s)")
            if time.monotonic() >= deadline:
                break
            self.sleep(min(self.settings.poll_interval_s, max(0.0, deadline - time.monotonic())))
        if not holds:
            return False, evidence, "servers still on the old binding: " + "; ".join(lagging or ["none reports"])
        if not inputs_ok:
            return False, evidence, "inputs still abnormal: " + "; ".join(abnormal[:3])
        return False, evidence, "the model's metrics still breach: " + "; ".join(breaches[:3])

    def _moved_versions(self, plan: Plan) -> set[str] | None:
        return None if plan.view_pin is not None else {m.version for m in plan.tag_moves}

    def _inputs_normal(self, plan: Plan, window: str) -> tuple[bool, list[str]]:
        judged, problem = self.evidence.inputs(plan.model, window, replace(self.settings.criteria, min_count=10))
        if problem is not None:
            return False, [problem]
        moved = self._moved_versions(plan)
        bad = [f"v{i.version} {i.segment} {i.reason}" for i in judged
               if i.health is Health.ABNORMAL and (moved is None or i.version in moved)]
        return not bad, bad

    def _metrics_pass(self, plan: Plan) -> tuple[bool, list[str]]:
        specs = tuple(s for s in self.catalogue if s.criteria.judges or s.name == self.traffic_metric)
        try:
            results = self.metrics.evaluate(specs, plan.model)
        except RewindError as exc:
            return False, [str(exc)]
        moved = self._moved_versions(plan)
        versions = sorted({k[0] for r in results.values() for k in r.values}, key=version_sort_key)
        matrix = build_matrix(specs, results, versions, None, self.traffic_metric)
        bad = [f"v{v.version} {v.segment} {v.metric}: {v.reason}" for v in matrix.breaches()
               if moved is None or v.version in moved]
        return not bad, bad


class FeatureChangeFailed(RewindError):
    """A feature change failed part way; what had changed is kept for compensation."""

    def __init__(self, cause: RewindError, done: list[TagMove], view_moved: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.done = done
        self.view_moved = view_moved


def _projection(ref: str) -> Projection:
    view, _, version = ref.partition("@")
    return Projection(view, int(version[1:]) if version else None)


def feature_signature() -> SignatureCheck:
    """A feature rollback's signature check: the model is not touched, its inputs keep their names."""
    return SignatureCheck(True, "not affected: the model and its version stay; only its feature binding moves")

