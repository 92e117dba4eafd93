"""``rewind ready``: whether a model could be rolled back now, every condition measured on the real systems.

Each condition is read from the system that knows it: the previous version's
artifact is fetched and loaded from the registry and its server's deep health
check read from the router; the runbook from the playbook files and the drills
journaled; freshness from Prometheus' newest samples and the catalogue's values;
alert coverage from Prometheus' rules and Alertmanager's routes; the owner from
the config; the fallback from the router; the features from the registry's tags
and what the servers report reading. A system that cannot be reached makes its conditions
*unknown*, never true.

A waiver is journaled as an incident of its own, opened and closed at once, so
it is hash-chained like everything else and no action ever joins it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from console.adapters.protocols import AlertRouter, PlaybookSource, ReadinessSource
from console.domain.alerting import covering_rules, receiver_notifies, route_receivers
from console.domain.errors import ExternalSystemError, UsageError
from console.domain.journal import EventKind
from console.domain.playbook import ActionKind as StepAction
from console.domain.playbook import Playbook, StepKind
from console.domain.readiness import (
    ALERTS,
    CONDITION_TYPES,
    DEPLOYABLE,
    DRILL_MAX_AGE_S,
    DRILL_MAX_S,
    FALLBACK,
    FEATURES,
    FRESH_MAX_AGE_S,
    METRICS_FRESH,
    RUNBOOK,
    Condition,
    Owner,
    Report,
    Waiver,
    alerts_condition,
    apply_waivers,
    fails,
    freshness_condition,
    holds,
    newest_drill,
    owner_condition,
    unknown,
)
from console.domain.recovery import Phase, recovery_of
from console.domain.rollback import check_signatures
from console.domain.routing import FallbackState, RouterState
from console.domain.status import FALLBACK_ALIAS
from console.domain.versions import ModelVersion
from console.services.fallback import FallbackService
from console.services.rollback import RollbackService

WAIVER_MARK = "readiness_waiver"
"""The payload key of a waiver, on the ``incident.opened`` event of the incident that records it."""


@dataclass(frozen=True)
class ReadinessSettings:
    """What readiness measures against.

    Attributes:
        owners: model -> its owner (``*``: every model without its own).
        webhooks: the configured notify webhooks' names.
        fresh_s: the oldest a series' newest sample may be.
        drill_max_s: the longest a drill may take to a verified rollback.
        drill_max_age_s: the oldest a drill may be.
        service_tag: the registry tag naming a version's feature service.
    """

    owners: Mapping[str, Owner] = field(default_factory=dict)
    webhooks: tuple[str, ...] = ()
    fresh_s: float = FRESH_MAX_AGE_S
    drill_max_s: float = DRILL_MAX_S
    drill_max_age_s: float = DRILL_MAX_AGE_S
    service_tag: str = "feast.feature_service"


class ReadinessService:
    """Measures a model's rollback readiness, and journals waivers.

    Args:
        rollback: the registry, the router, the catalogue's metrics and the journal.
        prometheus: freshness, rules and alert delivery (``None``: not configured, those are unknown).
        alertmanager: the alert routes (``None``: not configured).
        playbooks: the playbook files.
        settings: owners, webhooks and limits.
        clock: the current time (Unix seconds).
    """

    def __init__(self, rollback: RollbackService, prometheus: ReadinessSource | None, alertmanager: AlertRouter | None,
                 playbooks: PlaybookSource, settings: ReadinessSettings = ReadinessSettings(),
                 clock: Callable[[], float] = time.time) -> None:
        self.rollback = rollback
        self.prometheus = prometheus
        self.alertmanager = alertmanager
        self.playbooks = playbooks
        self.settings = settings
        self.clock = clock

    # -- the report ------------------------------------------------------------------------------
    def check(self, model: str) -> Report:
        """Every condition of ``model``, measured now, with its active waivers.

        Raises:
            UsageError: the registry has no such model.
        """
        versions = self.rollback.registry.list_versions(model)
        if not versions:
            raise UsageError(f"{model} has no registered version in {self.rollback.registry.describe()}")
        previous = self._previous(model, versions)
        # The router's weights and its servers' health, each read once for every condition that asks.
        router = self.rollback.router
        state: RouterState | ExternalSystemError
        health: FallbackState | ExternalSystemError | None = None  # None: a router that reports no health
        try:
            state = router.read_state(model)
        except ExternalSystemError as exc:
            state = exc
        if router.reports_health:
            try:
                health = router.fallback(model)
            except ExternalSystemError as exc:
                health = exc
        weights = state if isinstance(state, ExternalSystemError) else state.weights()
        serving = weights if isinstance(weights, ExternalSystemError) else \
            sorted((v for v, w in weights.items() if w > 0), key=lambda v: (len(v), v))
        conditions = [self._deployable(model, versions, previous, health, state), self._runbook(model),
                      self._fresh(model, serving), self._alerts(model),
                      owner_condition(self._owner(model), self.settings.webhooks)]
        fallback = self._fallback(model, versions, health, weights)
        if fallback is not None:
            conditions.append(fallback)
        features = self._features(model, versions, previous, serving)
        if features is not None:
            conditions.append(features)
        now = datetime.fromtimestamp(self.clock(), UTC)
        waived, active = apply_waivers(conditions, self.waivers(model), now)
        return Report(model, waived, active, _stamp(now))

    def _owner(self, model: str) -> Owner | None:
        owners = self.settings.owners
        return owners.get(model) or owners.get("*")

    def _previous(self, model: str, versions: list[ModelVersion]) -> str | None:
        champion = next((v.version for v in versions if self.rollback.settings.stable_alias in v.aliases), None)
        return self.rollback.previous_champion(model, versions, champion)

    # -- the conditions --------------------------------------------------------------------------
    def _deployable(self, model: str, versions: list[ModelVersion], previous: str | None,
                    health: FallbackState | ExternalSystemError | None,
                    state: RouterState | ExternalSystemError) -> Condition:
        registry = self.rollback.registry
        stable = self.rollback.settings.stable_alias
        champion = next((v for v in versions if stable in v.aliases), None)
        by_version = {v.version: v for v in versions}
        if champion is None:
            return fails(DEPLOYABLE, "NoChampion", f"no version holds the {stable!r} alias",
                         f"set the {stable!r} alias on the serving version")
        if previous is None or previous not in by_version:
            return fails(DEPLOYABLE, "NoPreviousVersion",
                         f"no version before the champion v{champion.version} is known",
                         "the journal records it after an alias move; else tag the champion "
                         "rewind.previous_champion=N in the registry")
        target = by_version[previous]
        measured: dict[str, object] = {"version": previous, "champion": champion.version, "status": target.status}
        if target.status != "READY":
            return fails(DEPLOYABLE, "VersionNotReady", f"v{previous} is {target.status} in the registry",
                         "register it again from its run", **measured)
        try:
            loaded = registry.load(model, previous)
        except ExternalSystemError as exc:
            return fails(DEPLOYABLE, "ArtifactNotLoadable", str(exc),
                         f"restore v{previous}'s artifacts (its run's artifact store) or register a loadable copy",
                         **measured)
        measured.update(load_seconds=loaded.get("seconds"), artifact_bytes=loaded.get("bytes"))
        try:
            signature = check_signatures(self.rollback.with_signature(model, champion),  # type: ignore[arg-type]
                                         self.rollback.with_signature(model, target))  # type: ignore[arg-type]
        except ExternalSystemError as exc:
            return unknown(DEPLOYABLE, "RegistryUnreachable", str(exc), "check the registry", **measured)
        measured["signature"] = signature.reason
        if not signature.compatible:
            return fails(DEPLOYABLE, "SignatureIncompatible", f"v{previous} {signature.reason}",
                         "roll back to a version that accepts today's inputs", **measured)
        if health is None:
            return self._deployable_unchecked(previous, state, loaded, signature.reason, measured)
        if isinstance(health, ExternalSystemError):
            return unknown(DEPLOYABLE, "RouterUnreachable", str(health), "check the router", **measured)
        servers = [s for s in health.servers if s.version == previous and not s.backup]
        if not servers:
            return fails(DEPLOYABLE, "NoServer", f"the router has no server for v{previous}",
                         f"add a server for v{previous} to the model's backend (weight 0 is enough)", **measured)
        answering = [s for s in servers if s.up and s.check.startswith("L7OK")]
        measured["servers"] = {s.server: f"{s.status} {s.check}".strip() for s in servers}
        if not answering:
            shown = ", ".join(f"{s.server} {s.status} ({s.check or 'no check'})" for s in servers)
            return fails(DEPLOYABLE, "ServerNotAnswering", f"v{previous}'s server does not answer a prediction: "
                         f"{shown}", f"start v{previous}'s server; the router's health check must be a real "
                         "prediction", **measured)
        return holds(DEPLOYABLE, "Deployable", f"v{previous} loads from the registry ({loaded.get('seconds')}s), "
                     f"{signature.reason}, and its server {answering[0].server} answers predictions", **measured)

    def _deployable_unchecked(self, previous: str, state: RouterState | ExternalSystemError,
                              loaded: dict[str, object], signature: str, measured: dict[str, object]) -> Condition:
        """Deployable on a router without health checks of its own (Kubernetes): its backend must be in the route,
        with ready endpoints where the router reports them (a Service's EndpointSlices: its pods' readiness
        probes). Where it reports none, the message says so; the verification after a rollback reads the
        traffic really served either way.
        """
        if isinstance(state, ExternalSystemError):
            return unknown(DEPLOYABLE, "RouterUnreachable", str(state), "check the router", **measured)
        server = state.server_for(previous)
        if server is None:
            return fails(DEPLOYABLE, "NoServer", f"the router has no backend for v{previous}",
                         f"add a backend for v{previous} to the model's route (weight 0 is enough)", **measured)
        if server.endpoints is None and not server.operational:
            measured["servers"] = {server.server: "DOWN"}
            return fails(DEPLOYABLE, "ServerNotAnswering", f"v{previous}'s backend {server.server} is DOWN at "
                         f"{self.rollback.router.describe()}", f"bring v{previous}'s backend up; a rollback to it "
                         "would send traffic nowhere", **measured)
        if server.endpoints is None:
            measured["servers"] = {server.server: "health not reported by the router"}
            return holds(DEPLOYABLE, "Deployable", f"v{previous} loads from the registry ({loaded.get('seconds')}s), "
                         f"{signature}, and the router has its backend {server.server} (its ready endpoints are not "
                         "reported: whether its pods answer is the cluster's readiness probes' to say)", **measured)
        measured["servers"] = {server.server: f"{server.endpoints} ready endpoint(s)"}
        if server.endpoints == 0:
            return fails(DEPLOYABLE, "ServerNotAnswering", f"v{previous}'s backend {server.server} has no ready "
                         "endpoint: none of its pods passes its readiness probe", f"start v{previous}'s pods (scale "
                         "its Deployment up); a rollback to it would send traffic nowhere", **measured)
        return holds(DEPLOYABLE, "Deployable", f"v{previous} loads from the registry ({loaded.get('seconds')}s), "
                     f"{signature}, and its backend {server.server} has {server.endpoints} ready endpoint(s)",
                     **measured)

    def _runbook(self, model: str) -> Condition:
        loaded, problems = self.playbooks.load()
        fitting = [p.playbook for p in loaded if p.playbook.applies_to(model) and any(
            s.kind is StepKind.ACTION and s.action is StepAction.ROLLBACK for s in p.playbook.steps)]
        broken = [str(problem) for problem in problems]
        measured: dict[str, object] = {"playbooks": [p.id for p in fitting], "invalid": len(broken)}
        if not fitting:
            why = f" ({len(broken)} playbook files do not validate)" if broken else ""
            return fails(RUNBOOK, "NoPlaybook", f"no valid playbook with a rollback applies to {model}{why}",
                         "write one (playbooks/canary-regression.yaml is an example); rewind playbook validate",
                         **measured)
        drills = self._drills(model, {p.id for p in fitting})
        found = newest_drill(drills, self.clock(), self.settings.drill_max_s, self.settings.drill_max_age_s)
        if found is None:
            return fails(RUNBOOK, "NoDrill", f"{', '.join(sorted(measured['playbooks']))} never drilled "  # type: ignore[call-overload]
                         f"to a verified rollback", f"rewind drill PLAYBOOK --model {model} (one of those, e.g. "
                         f"{_preferred(fitting)})", **measured)
        return Condition(found.type, found.status, found.reason, found.message, found.remedy,
                         {**measured, **found.measured})

    def _drills(self, model: str, playbooks: set[str]) -> list[tuple[float, float | None]]:
        """``(started, seconds from the fault to the verified rollback, or None)`` of each drill of these playbooks,
        timed as ``rewind stats`` times them (its ``total`` phase)."""
        journal = self.rollback.journal
        found = []
        for incident in journal.incidents():
            if incident.model != model or not incident.drill:
                continue
            recovery = recovery_of(list(journal.journal.events(incident.incident_id)))
            if recovery is None or recovery.playbook not in playbooks:
                continue
            found.append((recovery.started_at, recovery.phases.get(Phase.TOTAL)))
        return found

    def _fresh(self, model: str, serving: list[str] | ExternalSystemError) -> Condition:
        if self.prometheus is None:
            return unknown(METRICS_FRESH, "NotConfigured", "no Prometheus to read", "set metrics.url")
        if isinstance(serving, ExternalSystemError):
            return unknown(METRICS_FRESH, "RouterUnreachable", str(serving), "check the router")
        try:
            ages = self.prometheus.newest_samples(model)
            at, newest = ages if ages is not None else (self.clock(), None)
            results = self.rollback.metrics.evaluate(self.rollback.catalogue, model, at)
        except ExternalSystemError as exc:
            return unknown(METRICS_FRESH, "PrometheusUnreachable", str(exc), "check Prometheus (metrics.url)")
        seen = newest.keys() if newest is not None else [key for r in results.values() for key in r.values]
        segments = sorted({segment for _, segment in seen if segment})
        without = [f"{name} v{version} {segment}" for name, result in results.items()
                   for version in serving for segment in segments if result.value((version, segment)) is None]
        return freshness_condition(serving, segments, newest, at, without, self.settings.fresh_s)

    def _alerts(self, model: str) -> Condition:
        if self.prometheus is None:
            return unknown(ALERTS, "NotConfigured", "no Prometheus to read", "set metrics.url")
        judged = [m.name for m in self.rollback.catalogue if m.criteria.judges]
        try:
            rules = self.prometheus.alert_rules()
            alertmanagers = self.prometheus.alertmanagers()
        except ExternalSystemError as exc:
            return unknown(ALERTS, "PrometheusUnreachable", str(exc), "check Prometheus (metrics.url)")
        covered = covering_rules(rules, model, judged)
        uncovered = [metric for metric, found in covered.items() if not found]
        names = {metric: sorted({r.name for r in found}) for metric, found in covered.items() if found}
        if uncovered or not alertmanagers:
            return alerts_condition(uncovered, names, [], alertmanagers)
        if self.alertmanager is None:
            return unknown(ALERTS, "NoAlertmanagerConfigured", "Prometheus sends alerts, but Rewind does not know "
                           "the Alertmanager to read its routes from", "set alerts.alertmanager_url")
        try:
            routing = self.alertmanager.routing()
        except ExternalSystemError as exc:
            return unknown(ALERTS, "AlertmanagerUnreachable", str(exc), "check Alertmanager (alerts.alertmanager_url)")
        unrouted = []
        for found in covered.values():
            for rule in found:
                labels = {**rule.labels, "alertname": rule.name, "model": model}
                try:
                    receivers = route_receivers(routing.route, labels)
                except ValueError as exc:
                    return unknown(ALERTS, "RouteUnreadable", f"Alertmanager's routes: {exc}",
                                   "check the route's matchers")
                unrouted += [f"{rule.name} → {r or '(none)'}" for r in receivers
                             if not receiver_notifies(routing.receivers, r)]
        return alerts_condition([], names, unrouted, alertmanagers)

    def _fallback(self, model: str, versions: list[ModelVersion],
                  health: FallbackState | ExternalSystemError | None,
                  weights: dict[str, int] | ExternalSystemError) -> Condition | None:
        """``None`` when the model has no fallback (no ``fallback`` alias and no backup server)."""
        has_alias = any(FALLBACK_ALIAS in v.aliases for v in versions)
        if health is None:  # a router with no backup servers (Kubernetes)
            return fails(FALLBACK, "NoBackupServer", f"{self.rollback.router.describe()} has no backup server: "
                         "Rewind cannot serve the fallback version there", "serve the fallback behind HAProxy, or "
                         "remove the fallback alias", fallback_alias=True) if has_alias else None
        if isinstance(health, ExternalSystemError) or isinstance(weights, ExternalSystemError):
            failure = health if isinstance(health, ExternalSystemError) else weights
            return unknown(FALLBACK, "RouterUnreachable", str(failure), "check the router") if has_alias else None
        readiness = FallbackService(self.rollback, clock=self.clock).readiness(model, health, weights)
        if not has_alias and not readiness.state.backups:
            return None
        measured = {"backup_up": readiness.backup_up, "deep_check": readiness.deep_check,
                    "default_armed": readiness.default_armed, "engaged": readiness.engaged}
        if readiness.ready:
            return holds(FALLBACK, "FallbackReady", "a backup server is up, its deep check (a real prediction) "
                         "passes, and the router answers a fixed default when nothing else can", **measured)
        missing = [what for what, ok in (("no backup server is up", readiness.backup_up),
                                         ("the backup's deep check fails", readiness.deep_check),
                                         ("no fixed default is armed", readiness.default_armed)) if not ok]
        return fails(FALLBACK, "FallbackNotReady", "; ".join(missing), "rewind fallback status says what to fix",
                     **measured)

    def _features(self, model: str, versions: list[ModelVersion], previous: str | None,
                  serving: list[str] | ExternalSystemError) -> Condition | None:
        """``None`` when the model's features are not tracked (no version tagged with a feature service).

        The feature store itself is not opened (Feast takes seconds to import): the rollback target's bundle is
        available when a live server reads it, since a service missing from the store cannot be read.
        """
        tag = self.settings.service_tag
        by_version = {v.version: v for v in versions}
        if self.rollback.features is None or not any(v.tags.get(tag) for v in versions):
            return None
        if isinstance(serving, ExternalSystemError):
            return unknown(FEATURES, "RouterUnreachable", str(serving), "check the router")
        wanted = sorted(set(serving) | ({previous} if previous else set()), key=lambda v: (len(v), v))
        declared = {v: by_version[v].tags.get(tag) for v in wanted if v in by_version}
        untagged = [v for v, service in declared.items() if not service]
        measured: dict[str, object] = {"declared": declared, "untagged": untagged}
        if untagged:
            return fails(FEATURES, "VersionsUnpinned", f"v{', v'.join(untagged)} name no feature service ({tag})",
                         f"tag each version with the feature service it was trained with ({tag})", **measured)
        observed, problem = self.rollback.features.evidence.bindings(model)
        if problem is not None:
            return unknown(FEATURES, "TelemetryUnreadable", problem, "check Prometheus (metrics.url)", **measured)
        served = {b.feature_service for b in observed}
        previous_service = declared.get(previous) if previous else None
        measured["observed"] = sorted(served)
        # Pinned: every serving version and the rollback target name their bundle (a model rollback takes its
        # features along). Available: the target's bundle resolves now, which a live server reading it proves;
        # the servers' own bindings beside their tags are `rewind features status`'s to judge.
        if previous_service and previous_service not in served:
            return unknown(FEATURES, "BundleNotObserved", f"no server reads v{previous}'s {previous_service}: whether "
                           "the feature store still holds it is not known from here", "rewind features status reads "
                           "the feature store itself", **measured)
        return holds(FEATURES, "Pinned", "; ".join(f"v{v} {service}" for v, service in declared.items())
                     + (f"; v{previous}'s bundle is read by a live server" if previous_service else ""), **measured)

    # -- waivers ---------------------------------------------------------------------------------
    def waivers(self, model: str) -> list[Waiver]:
        """Every waiver journaled for ``model`` (expired ones too; the report keeps the active)."""
        journal = self.rollback.journal
        found = []
        for incident in journal.incidents():
            if incident.model != model:
                continue
            for event in journal.journal.events(incident.incident_id, [EventKind.INCIDENT_OPENED]):
                waiver = event.payload.get(WAIVER_MARK)
                if isinstance(waiver, dict):
                    found.append(Waiver(**{k: str(waiver[k]) for k in Waiver.__dataclass_fields__}))
        return found

    def waive(self, model: str, condition: str, reason: str, days: float) -> Waiver:
        """Journal a waiver of ``condition`` for ``days``, in an incident of its own opened and closed at once.

        Raises:
            UsageError: an unknown condition, no reason, or a length outside 1 hour to 90 days.
        """
        if condition not in CONDITION_TYPES:
            raise UsageError(f"no condition {condition!r}; the conditions are {', '.join(CONDITION_TYPES)}")
        if not reason.strip():
            raise UsageError("a waiver needs a reason (--reason)")
        if not 1 / 24 <= days <= 90:
            raise UsageError("a waiver lasts from 1 hour (--days 0.042) to 90 days (--days 90)")
        journal = self.rollback.journal
        now = datetime.fromtimestamp(self.clock(), UTC)
        waiver = Waiver(model, condition, reason.strip(), _stamp(now + timedelta(days=days)), journal.actor.label(),
                        _stamp(now))
        opened = journal.open_incident(model, "4", f"readiness waiver: {condition} of {model} until "
                                       f"{waiver.expires_at}", extra={WAIVER_MARK: waiver.to_dict()})
        journal.close_incident(opened.incident_id, f"waiver recorded: {reason.strip()}")
        return waiver


def _preferred(playbooks: Sequence[Playbook]) -> str:
    """The playbook a drill suggestion names: the canary's own when it applies, else the first."""
    ids = sorted(p.id for p in playbooks)
    return "canary-regression" if "canary-regression" in ids else ids[0]


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def waiver_lines(waivers: Sequence[Waiver]) -> list[str]:
    """One line per waiver, for people."""
    return [f"waived: {w.condition} until {w.expires_at} by {w.by}: {w.reason}" for w in waivers]

