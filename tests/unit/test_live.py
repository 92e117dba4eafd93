"""The console's per-system reads: classified health, a change of state said once, composing partial readings."""

from __future__ import annotations

from console.domain.errors import MetricsError, RegistryError, RouterError
from console.services.live import Health, HealthWatch, LiveStatus, Reading, classify
from tests.fixtures.fakes import FakeRegistry, FakeRouter
from tests.tui.world import CATALOGUE, FROZEN_AT, MODEL, FakeMetrics


def test_errors_are_classified_as_the_header_shows_them():
    assert classify(MetricsError("Prometheus at x: unreachable (metrics.url)")) is Health.UNREACHABLE
    assert classify(RouterError("HAProxy at s: connection refused; is HAProxy running?")) is Health.UNREACHABLE
    assert classify(MetricsError("Prometheus at x: no answer within 2s")) is Health.UNREACHABLE
    assert classify(MetricsError("Prometheus at x: answered HTTP 200 with a body that is not JSON")) is Health.GARBAGE
    assert classify(RouterError("HAProxy: unexpected answer to show servers state: ???")) is Health.GARBAGE
    assert classify(RegistryError("MLflow: search failed: permission")) is Health.FAILING


def test_a_read_that_takes_too_long_is_slow_and_still_carries_its_value():
    metrics = FakeMetrics()
    metrics.delay_s = 0.05
    live = LiveStatus(FakeRegistry(), FakeRouter(), metrics, CATALOGUE, "traffic", slow_after_s=0.01,
                      clock=lambda: FROZEN_AT)
    reading = live.read_metrics(MODEL)
    assert reading.health is Health.SLOW and reading.value and reading.took_s >= 0.05


def test_a_failed_read_names_the_error_and_carries_no_value():
    metrics = FakeMetrics()
    metrics.mode = "down"
    reading = LiveStatus(FakeRegistry(), FakeRouter(), metrics, CATALOGUE, "traffic").read_metrics(MODEL)
    assert reading.health is Health.UNREACHABLE and reading.value is None and "unreachable" in reading.error


def test_a_change_of_health_is_said_once_and_so_is_the_recovery():
    watch = HealthWatch()

    def read(health):
        return Reading("metrics", health, None, "boom" if not health.usable else None, 0.0, 0.0)

    assert watch.change(read(Health.OK)) is None
    assert watch.change(read(Health.SLOW)) is None, "slow and ok are both answers"
    assert watch.change(read(Health.UNREACHABLE)) == "metrics is unreachable: boom"
    assert watch.change(read(Health.UNREACHABLE)) is None
    assert watch.change(read(Health.GARBAGE)) == "metrics is garbage: boom"
    assert watch.change(read(Health.OK)) == "metrics is back (ok) after being garbage"
    assert HealthWatch().change(read(Health.UNREACHABLE)) == "metrics is unreachable: boom", "bad from the start"


def test_composing_without_the_registry_still_shows_every_version_with_data_but_no_baseline():
    live = LiveStatus(FakeRegistry(), FakeRouter(), FakeMetrics(), CATALOGUE, "traffic")
    results = live.read_metrics(MODEL).value
    blind = live.compose(MODEL, None, None, results, FROZEN_AT)
    assert blind.matrix.versions == ("2", "3") and blind.matrix.baseline_version is None
    full = live.compose(MODEL, live.read_registry(MODEL).value, live.read_router(MODEL).value, results, FROZEN_AT)
    assert full.matrix.baseline_version == "2" and full.router.weights() == {"1": 0, "2": 90, "3": 10}


def test_a_version_only_the_metrics_know_gets_a_row_when_it_serves_traffic():
    # Both faces compose here: a version outside the registry and the router that takes traffic is evidence.
    metrics = FakeMetrics(versions=("2", "3", "7"))
    live = LiveStatus(FakeRegistry(), FakeRouter(), metrics, CATALOGUE, "traffic")
    snapshot = live.compose(MODEL, live.read_registry(MODEL).value, live.read_router(MODEL).value,
                            live.read_metrics(MODEL).value, FROZEN_AT)
    assert snapshot.matrix.versions == ("2", "3", "7")


def test_a_drained_version_shows_what_it_last_showed_but_does_not_breach_now():
    from console.domain.routing import RouterState, ServerState
    from console.domain.status import drained_versions, status_document
    from console.domain.verdicts import State

    router = FakeRouter()
    live = LiveStatus(FakeRegistry(), router, FakeMetrics(), CATALOGUE, "traffic")
    results = live.read_metrics(MODEL).value
    registry = live.read_registry(MODEL).value
    serving = live.compose(MODEL, registry, live.read_router(MODEL).value, results, FROZEN_AT)
    assert serving.matrix.drained == frozenset() and serving.matrix.breaches()

    router.weights.update({"2": 100, "3": 0})  # drained: its one-minute window still holds its errors
    drained = live.compose(MODEL, registry, live.read_router(MODEL).value, results, FROZEN_AT)
    matrix = drained.matrix
    assert matrix.drained == {"3"} and "3" in matrix.versions
    assert matrix.version_state("3") is State.BREACH, "the row keeps what it last showed"
    assert matrix.breaches() == [] and matrix.counts()[State.BREACH] == 0
    document = status_document(drained)
    assert document["summary"]["state"] == "pass" and document["summary"]["drained"] == ["3"]
    assert next(v for v in document["versions"] if v["version"] == "3")["drained"] is True
    assert all(c["drained"] for c in document["cells"] if c["version"] == "3")

    # Drained by an operator's choice only: a server that is down but weighted is failing, not drained.
    servers = (ServerState("v2", "2", 90, True), ServerState("v3", "3", 10, False, "ready"),
               ServerState("v4", "4", 10, True, "maint"), ServerState("v5", "5", 10, True, "drain"))
    assert drained_versions(RouterState("be", servers)) == {"4", "5"}
    assert drained_versions(RouterState("", ())) == frozenset(), "a router not heard from drains nothing"
