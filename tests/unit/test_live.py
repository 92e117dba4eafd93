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
