"""``rewind ready``'s conditions with fake systems: each fault flips exactly its own condition.

The registry, router, metrics, Prometheus' rules and Alertmanager's routes are fakes; the
journal is a real SQLite file and the playbooks are the shipped ones.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.adapters.playbook_files import PlaybookFiles
from console.config import default_playbook_dirs
from console.domain.alerting import AlertRouting, AlertRule, parse_matcher, receiver_notifies, route_receivers
from console.domain.errors import AlertingError, MetricsError, RegistryError, UsageError
from console.domain.journal import Actor, EventKind
from console.domain.metrics import QueryResult
from console.domain.playbook_check import CheckContext
from console.domain.readiness import (
    ALERTS,
    DEPLOYABLE,
    FALLBACK,
    METRICS_FRESH,
    OWNER,
    RUNBOOK,
    Owner,
    Status,
    newest_drill,
)
from console.domain.recovery import DRILL_KEY as DRILL_MARK
from console.domain.recovery import DRILL_PLAYBOOK_KEY as DRILL_PLAYBOOK
from console.domain.routing import ServerHealth
from console.services.journal import JournalService
from console.services.readiness import ReadinessService, ReadinessSettings
from console.services.rollback import RollbackService, RollbackSettings
from tests.fixtures.fakes import FakeRegistry, FakeRouter

MODEL = "m"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
SEGMENTS = ("eu", "us")
JUDGED = ("error_rate", "accuracy")


class Registry(FakeRegistry):
    """v2 is the champion, v1 the one before it (the registry's tag), every version loads."""

    def __init__(self):
        super().__init__()
        self.unloadable: set[str] = set()

    def list_versions(self, model, with_signatures=False):
        versions = super().list_versions(model)
        return [replace(v, tags={"rewind.previous_champion": "1"}) if v.version == "2" else v for v in versions]

    def load(self, model, version):
        if version in self.unloadable:
            raise RegistryError(f"fake registry: {model} v{version} does not load: No such file or directory")
        return {"loader": "mlflow.pyfunc.model", "bytes": 2048, "seconds": 0.4}


class Metric:
    def __init__(self, name):
        self.name = name
        self.criteria = type("Criteria", (), {"judges": True})()


class Metrics:
    """Every catalogue cell of every version has a value, unless told; or Prometheus is down."""

    def __init__(self):
        self.down = False
        self.missing: set[tuple[str, str, str]] = set()

    def describe(self):
        return "fake Prometheus"

    def evaluate(self, specs, model, at=None):
        if self.down:
            raise MetricsError("Prometheus at http://127.0.0.1:9: unreachable (metrics.url)")
        return {s.name: QueryResult(s.name, "q", at or NOW, values={
            (v, seg): 0.01 for v in ("1", "2", "3") for seg in SEGMENTS if (s.name, v, seg) not in self.missing})
            for s in specs}


class Prometheus:
    """Newest samples, alert rules and Alertmanagers, as Prometheus reports them."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics
        self.ages = {(v, s): 1.0 for v in ("2", "3") for s in SEGMENTS}
        self.rules = [AlertRule(f"Rewind{m}", f"{m} > 0.1", {"model": MODEL, "rewind_metric": m, "severity": "page"})
                      for m in JUDGED]
        self.sends_to = ["http://127.0.0.1:9093/api/v2/alerts"]

    def describe(self):
        return "fake Prometheus"

    def _up(self):
        if self.metrics.down:
            raise MetricsError("Prometheus at http://127.0.0.1:9: unreachable (metrics.url)")

    def newest_samples(self, model):
        self._up()
        return NOW, {key: NOW - age for key, age in self.ages.items()}

    def alert_rules(self):
        self._up()
        return list(self.rules)

    def alertmanagers(self):
        self._up()
        return list(self.sends_to)


class Alertmanager:
    def __init__(self):
        self.route = {"receiver": "nobody", "routes": [{"matchers": ['model="m"'], "receiver": "rewind"}]}
        self.receivers = ({"name": "nobody"}, {"name": "rewind", "webhook_configs": 1})
        self.down = False

    def describe(self):
        return "fake Alertmanager"

    def routing(self):
        if self.down:
            raise AlertingError("Alertmanager at http://127.0.0.1:9093: unreachable")
        return AlertRouting(self.route, self.receivers)


OWNER_OK = Owner("Dana Rivera", "dana@example.com", "oncall", ("Sam Okafor",))


@pytest.fixture
def world(tmp_path):
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    records = JournalService(journal, Actor("alice", "host"), clock=lambda: NOW - 3600)
    registry, router, metrics = Registry(), FakeRouter(), Metrics()
    rollback = RollbackService(registry, router, metrics, records, SqlActionLock(journal),
                               tuple(Metric(m) for m in JUDGED), None,
                               settings=RollbackSettings(gate_window_s=0.0, poll_interval_s=0.0))
    prometheus, alertmanager = Prometheus(metrics), Alertmanager()
    playbooks = PlaybookFiles(default_playbook_dirs(), CheckContext())
    settings = ReadinessSettings(owners={MODEL: OWNER_OK}, webhooks=("oncall",))
    service = ReadinessService(rollback, prometheus, alertmanager, playbooks, settings, clock=lambda: NOW)
    drill(records, verified_after_s=240)
    yield service
    journal.close()


def drill(records: JournalService, verified_after_s: float | None, playbook: str = "canary-regression",
          started: float = NOW - 3600) -> str:
    """A drill incident of ``playbook``, opened at ``started``, whose rollback verified ``verified_after_s`` later."""
    clock = records.clock
    records.clock = lambda: started
    opened = records.open_incident(MODEL, "3", "drill", extra={DRILL_MARK: True, DRILL_PLAYBOOK: playbook})
    incident = opened.incident_id
    action = {"action_id": f"act-{incident[-6:]}"}
    records.record(incident, EventKind.ACTION_INTENT, {**action, "kind": "rollback", "plan": {"kind": "rollback"}})
    records.record(incident, EventKind.ACTION_APPLIED, action)
    if verified_after_s is not None:
        records.clock = lambda: started + verified_after_s
        records.record(incident, EventKind.ACTION_VERIFIED, {**action, "passed": True})
    records.close_incident(incident, "drill done")
    records.clock = clock
    return incident


def statuses(service: ReadinessService) -> dict[str, Status]:
    return {c.type: c.status for c in service.check(MODEL).conditions}


def flipped(service: ReadinessService) -> set[str]:
    return {kind for kind, status in statuses(service).items() if status is not Status.TRUE}


def test_everything_measured_true_is_ready(world):
    report = world.check(MODEL)
    assert [c.type for c in report.conditions if c.status is not Status.TRUE] == [], report.to_dict()
    assert report.ready and report.exit_code == 0 and report.verdict() == "READY"
    deployable = report.conditions[0]
    assert deployable.measured["version"] == "1" and "v1 loads from the registry" in deployable.message
    assert FALLBACK in {c.type for c in report.conditions}  # the fake router has a backup server


def test_a_check_reads_the_routers_weights_and_its_servers_once_each(world):
    router = world.rollback.router
    reads: list[str] = []
    read_state, fallback = router.read_state, router.fallback
    router.read_state = lambda model: reads.append("weights") or read_state(model)
    router.fallback = lambda model: reads.append("servers") or fallback(model)
    assert world.check(MODEL).ready
    assert sorted(reads) == ["servers", "weights"]


def test_a_router_that_reports_no_server_health_is_checked_for_what_it_has(world):
    """A Kubernetes router: no backup servers, no health checks, its ``fallback`` refuses."""
    from console.domain.errors import RouterError

    router = world.rollback.router
    router.reports_health = False

    def no_fallback(model):
        raise RouterError("Gateway API at https://k8s: a Gateway API route has no backup server to fall back to")

    router.fallback = no_fallback
    report = world.check(MODEL)
    assert report.ready, report.to_dict()
    [deployable] = [c for c in report.conditions if c.type == DEPLOYABLE]
    assert deployable.reason == "Deployable" and "the router has its backend v1" in deployable.message
    assert "its ready endpoints are not reported" in deployable.message
    assert FALLBACK not in {c.type for c in report.conditions}  # no fallback alias: nothing to serve
    world.rollback.registry.aliases["fallback"] = "3"
    [fallback] = [c for c in world.check(MODEL).conditions if c.type == FALLBACK]
    assert fallback.reason == "NoBackupServer" and "cannot serve the fallback version there" in fallback.message
    # Where the router reports the backends' ready endpoints (a Service's EndpointSlices), they count.
    read_state = router.read_state

    def with_endpoints(ready):
        state = read_state(MODEL)
        return replace(state, servers=tuple(replace(s, endpoints=ready, operational=ready > 0) if s.version == "1"
                                            else s for s in state.servers))

    router.read_state = lambda model: with_endpoints(2)
    [deployable] = [c for c in world.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert deployable.reason == "Deployable" and "its backend v1 has 2 ready endpoint(s)" in deployable.message
    router.read_state = lambda model: with_endpoints(0)
    [deployable] = [c for c in world.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert deployable.reason == "ServerNotAnswering" and "none of its pods passes its readiness probe" in \
        deployable.message
    router.down.add("v1")  # DOWN without endpoints reported (a KServe revision that is not Ready)
    router.read_state = read_state
    [deployable] = [c for c in world.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert deployable.reason == "ServerNotAnswering" and "backend v1 is DOWN at fake router" in deployable.message
    router.down.clear()
    del router.weights["1"]  # the route has no backend for the previous version
    [deployable] = [c for c in world.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert deployable.reason == "NoServer" and "no backend for v1" in deployable.message


def test_an_artifact_that_does_not_load_flips_only_deployable(world):
    world.rollback.registry.unloadable.add("1")
    report = world.check(MODEL)
    assert flipped(world) == {DEPLOYABLE}
    [condition] = [c for c in report.conditions if c.type == DEPLOYABLE]
    assert condition.reason == "ArtifactNotLoadable" and "does not load" in condition.message
    assert report.exit_code == 1 and report.verdict().startswith("NOT READY (")


def test_the_previous_versions_server_down_flips_only_deployable(world):
    world.rollback.router.down.add("v1")
    [condition] = [c for c in world.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert condition.reason == "ServerNotAnswering" and "DOWN (L4CON)" in condition.message
    assert flipped(world) == {DEPLOYABLE}


def test_a_stale_series_flips_only_freshness(world):
    del world.prometheus.ages[("3", "us")]
    world.prometheus.ages[("2", "eu")] = 95.0
    [condition] = [c for c in world.check(MODEL).conditions if c.type == METRICS_FRESH]
    assert condition.reason == "SeriesStale"
    assert "v2 eu (95s old)" in condition.message and "v3 us" in condition.message
    assert flipped(world) == {METRICS_FRESH}


def test_a_metric_without_a_value_for_a_serving_version_flips_freshness(world):
    world.rollback.metrics.missing.add(("accuracy", "3", "eu"))
    [condition] = [c for c in world.check(MODEL).conditions if c.type == METRICS_FRESH]
    assert condition.reason == "MetricWithoutData" and "accuracy v3 eu" in condition.message


def test_a_metric_without_a_rule_flips_only_alerts(world):
    world.prometheus.rules = [r for r in world.prometheus.rules if r.labels["rewind_metric"] != "accuracy"]
    [condition] = [c for c in world.check(MODEL).conditions if c.type == ALERTS]
    assert condition.reason == "MetricsWithoutRule" and "accuracy" in condition.message
    assert flipped(world) == {ALERTS}


def test_a_route_to_a_receiver_that_notifies_nobody_flips_alerts(world):
    world.alertmanager.route = {"receiver": "nobody"}
    [condition] = [c for c in world.check(MODEL).conditions if c.type == ALERTS]
    assert condition.reason == "RouteGoesNowhere" and "→ nobody" in condition.message


def test_a_blank_owner_flips_only_the_owner(world):
    world.settings.owners[MODEL] = replace(OWNER_OK, name="  ")
    [condition] = [c for c in world.check(MODEL).conditions if c.type == OWNER]
    assert condition.reason == "OwnerUnnamed"
    assert flipped(world) == {OWNER}


@pytest.mark.parametrize("owner,reason", [
    (None, "NoOwner"), (replace(OWNER_OK, contact=""), "NoContact"), (replace(OWNER_OK, oncall=""), "NoOncallChannel"),
    (replace(OWNER_OK, oncall="pager"), "OncallChannelUnknown"), (replace(OWNER_OK, escalation=()), "NoEscalation"),
])
def test_each_missing_part_of_the_owner_is_named(world, owner, reason):
    if owner is None:
        del world.settings.owners[MODEL]
    else:
        world.settings.owners[MODEL] = owner
    [condition] = [c for c in world.check(MODEL).conditions if c.type == OWNER]
    assert condition.status is Status.FALSE and condition.reason == reason


def test_prometheus_down_is_unknown_never_a_pass(world):
    world.rollback.metrics.down = True
    report = world.check(MODEL)
    assert statuses(world)[METRICS_FRESH] is Status.UNKNOWN and statuses(world)[ALERTS] is Status.UNKNOWN
    assert report.exit_code == 2 and report.verdict() == "UNKNOWN (4/6 true, 2 unknown)"


def test_alertmanager_down_leaves_the_alerts_unknown(world):
    world.alertmanager.down = True
    [condition] = [c for c in world.check(MODEL).conditions if c.type == ALERTS]
    assert condition.status is Status.UNKNOWN and condition.reason == "AlertmanagerUnreachable"


def test_a_false_condition_outweighs_an_unknown_one(world):
    world.rollback.metrics.down = True
    world.settings.owners[MODEL] = replace(OWNER_OK, name="")
    assert world.check(MODEL).exit_code == 1


def test_the_runbook_needs_a_recent_quick_verified_drill(world):
    assert statuses(world)[RUNBOOK] is Status.TRUE
    records = world.rollback.journal
    drill(records, verified_after_s=900, started=NOW - 1800)  # the newest drill was slow
    [condition] = [c for c in world.check(MODEL).conditions if c.type == RUNBOOK]
    assert condition.reason == "DrillTooSlow" and "15.0 min" in condition.message
    drill(records, verified_after_s=None, started=NOW - 600)  # then one that never verified
    assert [c for c in world.check(MODEL).conditions if c.type == RUNBOOK][0].reason == "DrillNotVerified"


def test_a_drill_of_a_playbook_that_does_not_roll_back_does_not_count(tmp_path):
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    try:
        records = JournalService(journal, Actor("alice", "host"), clock=lambda: NOW - 3600)
        rollback = RollbackService(Registry(), FakeRouter(), Metrics(), records, SqlActionLock(journal), (), None)
        service = ReadinessService(rollback, None, None, PlaybookFiles(default_playbook_dirs(), CheckContext()),
                                   clock=lambda: NOW)
        drill(records, verified_after_s=60, playbook="data-drift")
        [condition] = [c for c in service.check(MODEL).conditions if c.type == RUNBOOK]
        assert condition.reason == "NoDrill" and "canary-regression" in condition.message
        assert "rewind drill" in condition.remedy
    finally:
        journal.close()


def test_drill_age_and_speed_limits():
    assert newest_drill([], NOW) is None
    assert newest_drill([(NOW - 31 * 86400, 60.0)], NOW).reason == "DrillStale"
    assert newest_drill([(NOW - 31 * 86400, 60.0), (NOW - 86400, 599.0)], NOW).reason == "Drilled"
    assert newest_drill([(NOW - 86400, 601.0)], NOW).reason == "DrillTooSlow"


def test_a_waiver_is_journaled_listed_and_expires(world):
    world.settings.owners[MODEL] = replace(OWNER_OK, name="")
    waiver = world.waive(MODEL, OWNER, "Dana joins on Monday", days=3)
    report = world.check(MODEL)
    assert report.ready and report.exit_code == 0
    assert report.verdict() == "READY (5/6 true, 1 waived)"
    [condition] = [c for c in report.conditions if c.type == OWNER]
    assert condition.status is Status.FALSE and condition.waiver == waiver  # still measured false
    assert [w.reason for w in report.waivers] == ["Dana joins on Monday"]
    assert report.to_dict()["conditions"][4]["waived"]["expires_at"] == waiver.expires_at
    # Journaled in an incident of its own, closed at once: no action ever joins it.
    records = world.rollback.journal
    assert records.open_incident_of(MODEL) is None
    world.clock = lambda: NOW + 4 * 86400
    later = world.check(MODEL)
    assert not later.ready and later.waivers == ()


def test_a_waiver_needs_a_known_condition_a_reason_and_a_sane_length(world):
    with pytest.raises(UsageError, match="no condition 'Owner'"):
        world.waive(MODEL, "Owner", "x", 1)
    with pytest.raises(UsageError, match="needs a reason"):
        world.waive(MODEL, OWNER, " ", 1)
    with pytest.raises(UsageError, match="90 days"):
        world.waive(MODEL, OWNER, "x", 365)


def test_routes_follow_alertmanagers_tree():
    tree = {"receiver": "default", "routes": [
        {"matchers": ['severity="page"'], "receiver": "pager", "continue": True,
         "routes": [{"match_re": {"team": "ml|data"}, "receiver": "ml-pager"}]},
        {"match": {"model": "m"}, "receiver": "rewind"},
        {"matchers": ["model=~\"m.*\""], "receiver": "never: the one before matched without continue"},
    ]}
    assert route_receivers(tree, {"severity": "page", "team": "ml", "model": "m"}) == ["ml-pager", "rewind"]
    assert route_receivers(tree, {"severity": "page", "model": "x"}) == ["pager"]
    assert route_receivers(tree, {"model": "other"}) == ["default"]
    assert parse_matcher('team!~"ops|sre"').matches({"team": "ml"})
    assert not parse_matcher('severity = "page"').matches({})
    with pytest.raises(ValueError, match="not a label matcher"):
        route_receivers({"routes": [{"matchers": ["no operator"]}]}, {})
    assert receiver_notifies(({"name": "a", "webhook_configs": 1},), "a")
    assert not receiver_notifies(({"name": "a"},), "a") and not receiver_notifies((), "a")


def test_a_rule_naming_another_model_does_not_cover_this_one():
    assert AlertRule("r", "q", {"model": "other", "rewind_metric": "error_rate"}).watches(MODEL) is None
    assert AlertRule("r", "q", {"rewind_metric": "error_rate"}).watches(MODEL) == "error_rate"


def test_a_backupless_model_has_no_fallback_condition(world):
    router = world.rollback.router
    with_backup = router.fallback
    router.fallback = lambda model: replace(with_backup(model), servers=tuple(
        s for s in with_backup(model).servers if not s.backup))
    world.rollback.registry.aliases.pop("fallback", None)
    assert FALLBACK not in statuses(world)


def test_the_previous_version_is_the_journals_last_alias_move_then_the_tag(world):
    # v3 was promoted from v2 in an earlier incident: a rollback of the champion goes back to v2.
    records = world.rollback.journal
    incident = records.open_incident(MODEL, "3", "promotion").incident_id
    records.record(incident, EventKind.ACTION_APPLIED, {"action_id": "act-p", "alias_moves": [
        {"alias": "champion", "before": "2", "after": "3"}]})
    world.rollback.registry.aliases = {"champion": "3"}
    [condition] = [c for c in world.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert condition.measured["version"] == "2"


def test_server_health_is_read_from_the_deep_check():
    health = ServerHealth("v1", "1", False, "UP", "L7STS", 0, 0, 0)
    assert not health.check.startswith("L7OK")  # a failed prediction check is not an answer


def test_no_real_action_joins_a_drill_incident(world):
    records = world.rollback.journal
    opened = records.open_incident(MODEL, "4", "drill", extra={DRILL_MARK: True, DRILL_PLAYBOOK: "canary-regression"})
    assert records.open_incident_of(MODEL) is None  # the drill's incident is open, and kept apart
    assert records.place(MODEL, "2", "a real rollback").how == "new"
    assert [s.drill for s in records.incidents() if s.incident_id == opened.incident_id] == [True]


def test_features_pinned_reads_the_servers_reports(world):
    from console.domain.features import Binding
    from console.domain.readiness import FEATURES

    registry = world.rollback.registry
    tags = {"1": "fraud_features", "2": "fraud_features", "3": "fraud_features"}
    listed = registry.list_versions

    def tagged(model, with_signatures=False):
        return [replace(v, tags={**v.tags, "feast.feature_service": tags[v.version]}) for v in listed(model)]

    registry.list_versions = tagged
    reports = [Binding("2", "fraud_features", "txn", "v1", "abc"), Binding("3", "fraud_features", "txn", "v1", "abc")]
    evidence = type("Evidence", (), {"bindings": lambda self, model: (tuple(reports), None)})()
    world.rollback.features = type("Features", (), {"evidence": evidence})()

    def features():
        return next(c for c in world.check(MODEL).conditions if c.type == FEATURES)

    # v1 (the standby, its server possibly down) needs fraud_features, which v2's and v3's servers read: available.
    assert features().status is Status.TRUE
    reports.pop()  # v3's servers stop reporting (a scrape target gone): the bundle is still read by v2's
    assert features().status is Status.TRUE
    tags["1"] = "fraud_features__pin_v1"  # a bundle only v1 reads, and no server reads it now: not known from here
    assert (features().status, features().reason) == (Status.UNKNOWN, "BundleNotObserved")
    tags["3"] = ""
    assert features().reason == "VersionsUnpinned"
