"""The Prometheus adapter against a real Prometheus scraping the sandbox."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from console.adapters.prometheus import PrometheusMetrics
from console.config import load_config
from console.domain.errors import MetricsError
from console.domain.metrics import Direction, MetricSpec, Unit
from console.domain.verdicts import State, build_matrix
from tests.fixtures.servers import SANDBOX_RATE, wait_for

MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def config(sandbox_config):
    return load_config(sandbox_config, environ={}).config


@pytest.fixture
def metrics(config):
    source = PrometheusMetrics(config.metrics.url, config.metrics.window)
    sent = []
    source._prom._session.hooks["response"].append(lambda response, **_: sent.append(response.url))
    source.sent = sent
    yield source
    source.close()


def instant(metrics: PrometheusMetrics, promql: str) -> float | None:
    series = metrics._prom.custom_query(promql)
    return float(series[0]["value"][1]) if series else None


def send_direct(port: int, count: int, segment: str) -> dict[str, int]:
    """Send ``count`` labelled requests straight to one model server; what it answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    seen = {"ok": 0, "error": 0, "correct": 0}
    for i in range(count):
        features = {"amount": (i % 7) - 3.0, "velocity": 0.5, "account_age": 0.0, "hour": 0.0}
        conn.request("POST", "/predict", body=json.dumps({"segment": segment, "features": features, "label": 1}),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status == 200:
            seen["ok"] += 1
            seen["correct"] += body["prediction"] == 1
        else:
            seen["error"] += 1
    conn.close()
    return seen


def test_prometheus_counts_exactly_the_requests_we_sent(sandbox, config, metrics):
    # v1 has weight 0, so the traffic generator never reaches it: every v1 request in the window is
    # ours once a test that routed traffic to v1 (a reverted promotion) is a window behind us.
    port = sandbox.load_state()["ports"]["models"]["1"]
    base = f'{{model="{MODEL}",version="1",segment="eu-web"}}'
    wait_for(lambda: not instant(metrics, f"sum(increase(rewind_requests_total{base}[1m]))"), 75,
             "v1 to have had no traffic for a minute", interval=1)
    queries = {"requests": f"sum(rewind_requests_total{base})",
               "error": f'sum(rewind_requests_total{base[:-1]},outcome="error"}})',
               "correct": f"sum(rewind_label_correct_total{base})", "ok": f"sum(rewind_labels_total{base})"}
    before = {name: instant(metrics, query) or 0.0 for name, query in queries.items()}
    seen = send_direct(port, 240, "eu-web")
    wait_for(lambda: instant(metrics, queries["requests"]) == before["requests"] + 240, 15,
             "Prometheus to scrape the 240 requests")
    for name in ("error", "correct", "ok"):
        assert (instant(metrics, queries[name]) or 0.0) - before[name] == seen[name], name

    results = metrics.evaluate(config.metrics.specs(), MODEL)
    accuracy = results["accuracy"].value(("1", "eu-web"))
    assert accuracy == pytest.approx(seen["correct"] / seen["ok"], abs=0.02)
    assert results["request_rate"].value(("1", "eu-web")) > 0
    # The ratios are judged on the counts behind them, read in the same single query per metric;
    # increase() extrapolates to the window's edges, so they are close to what we sent, not exact.
    errors = results["error_rate"].counts[("1", "eu-web")]
    assert errors.denominator == pytest.approx(240, rel=0.1)
    assert errors.numerator == pytest.approx(seen["error"], abs=max(2, 0.1 * seen["error"]))
    labels = results["accuracy"].counts[("1", "eu-web")]
    assert labels.denominator == pytest.approx(seen["ok"], rel=0.1)
    assert labels.numerator / labels.denominator == pytest.approx(seen["correct"] / seen["ok"], abs=0.02)


def test_one_query_per_metric_all_at_one_instant(config, metrics):
    specs = config.metrics.specs()
    results = metrics.evaluate(specs, MODEL)
    assert len(metrics.sent) == len(specs)
    # Metrics judged on persistence read their recent evaluations with one range query each.
    ranges = [url for url in metrics.sent if "/api/v1/query_range?" in url]
    assert len(ranges) == sum(spec.persists for spec in specs) == 2
    recent = results["latency_p95"].recent
    assert recent and all(len(row) == 4 for row in recent.values())
    assert all(results["latency_p95"].value(key) == row[-1] for key, row in recent.items() if row[-1] is not None)
    assert {r.evaluated_at for r in results.values()} == {results["error_rate"].evaluated_at}
    assert all(r.error is None for r in results.values())
    cells = results["request_rate"].raw
    segments = {segment for _, segment in cells}
    assert len(segments) >= 6
    assert {version for version, _ in cells} >= {"2", "3"}


def test_traffic_numbers_match_the_generated_rate(sandbox, config, metrics):
    started = sandbox.load_state()["started_at"]
    # rate() over a window reads low until the series is a full window old.
    wait_for(lambda: time.time() - started > 70, 80, "the sandbox to be one metric window old", interval=0.5)

    def rates():
        results = metrics.evaluate(config.metrics.specs(), MODEL)
        rate = results["request_rate"]
        total = sum(v for key in rate.raw if (v := rate.value(key)))
        return results, total, sum(rate.value(k) or 0 for k in rate.raw if k[0] == "3")

    # The split is 90/10 once the window (a minute) holds none of the router tests' other weights.
    wait_for(lambda: (r := rates()) and r[1] and abs(r[2] / r[1] - 0.10) <= 0.04, 90,
             "a minute of the sandbox's 90/10 split in the window", interval=2)
    results, total, challenger = rates()
    assert total == pytest.approx(SANDBOX_RATE, rel=0.15)
    assert challenger / total == pytest.approx(0.10, abs=0.04)
    matrix = build_matrix(config.metrics.specs(), results, ["2", "3"], "2", config.metrics.traffic_metric)
    assert matrix.state("error_rate", "2", "eu-ios") in (State.PASS, State.BREACH)


def test_label_values_are_escaped_not_injected(config, metrics):
    results = metrics.evaluate(config.metrics.specs(), 'fraud-detector"} or vector(1) or up{x="')
    assert all(r.error is None and r.raw == {} for r in results.values())


def test_a_rejected_query_is_reported_with_prometheus_reason(config, metrics):
    broken = MetricSpec("broken", "broken", 'sum by (version, segment) (rate(x{model="$model"}[$window]', Unit.RATIO,
                        Direction.HIGHER_IS_WORSE)
    results = metrics.evaluate((broken, *config.metrics.specs()[:1]), MODEL)
    assert "bad_data" in results["broken"].error
    assert results["traffic_share"].error is None


def test_unreachable_prometheus_is_one_clear_error():
    from console.sandbox.manager import free_port

    source = PrometheusMetrics(f"http://127.0.0.1:{free_port()}", "1m", timeout_s=2)
    spec = MetricSpec("x", "x", 'x{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_WORSE)
    with pytest.raises(MetricsError, match=r"Prometheus at http://127.0.0.1:\d+: unreachable \(metrics.url\)"):
        source.evaluate((spec,), MODEL)
