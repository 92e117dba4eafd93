"""Decoding Prometheus answers: the typed fast path and the careful path agree, odd answers are explained.

The adapter is built without any server: ``_decode`` only reads the bytes it is given.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from console.adapters.prometheus import PrometheusMetrics
from console.domain.errors import MetricsError
from console.domain.metrics import CellCounts, Criteria, Direction, MetricKind, MetricSpec, Unit

SPEC = MetricSpec("error_rate", "errors", "q", Unit.RATIO, Direction.HIGHER_IS_WORSE)


def answer(result, result_type="vector", status="success") -> bytes:
    return json.dumps({"status": status, "data": {"resultType": result_type, "result": result}}).encode()


def series(version, segment, value, **extra):
    labels = {"version": version, "segment": segment, **extra}
    return {"metric": {k: v for k, v in labels.items() if v is not None}, "value": [1.0, value]}


def decode(body: bytes, status: int = 200, version_label="version", segment_label="segment"):
    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m", version_label=version_label, segment_label=segment_label)
    return metrics._decode(SPEC, "q", 1.0, status, body)


def test_the_fast_path_keeps_the_raw_text_and_reads_nan_as_no_data():
    result = decode(answer([series("03", "eu-ios", "0.25", instance="a:1", job="model"),
                            series("2", "eu-ios", "NaN"), series("2", "us-web", "+Inf")]))
    assert result.error is None
    assert result.raw == {("3", "eu-ios"): "0.25", ("2", "eu-ios"): "NaN", ("2", "us-web"): "+Inf"}
    assert result.value(("3", "eu-ios")) == 0.25
    assert result.value(("2", "eu-ios")) is None
    assert result.value(("2", "us-web")) == float("inf")


def test_the_fast_path_reads_numbers_at_once_and_the_text_when_asked(monkeypatch):
    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m")
    monkeypatch.setattr(metrics, "_decode_unusual", lambda *a: pytest.fail("took the careful path"))
    result = metrics._decode(SPEC, "q", 1.0, 200, answer([
        series("03", "eu-ios", "0.25"), series("2", "eu-ios", "NaN"), series("2", "us-web", "-Inf"),
        series("2", "us-ios", "1e-05")]))
    assert result.error is None
    assert result.values == {("3", "eu-ios"): 0.25, ("2", "us-web"): float("-inf"), ("2", "us-ios"): 1e-05}
    assert sorted(result.raw) == [("2", "eu-ios"), ("2", "us-ios"), ("2", "us-web"), ("3", "eu-ios")]
    assert dict(result.raw) == {("3", "eu-ios"): "0.25", ("2", "eu-ios"): "NaN", ("2", "us-web"): "-Inf",
                                ("2", "us-ios"): "1e-05"}


def test_samples_sent_as_json_numbers_still_have_a_text():
    result = decode(json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"version": "1", "segment": "eu"}, "value": [1.0, 0.5]}]}}).encode())
    assert result.values == {("1", "eu"): 0.5} and dict(result.raw) == {("1", "eu"): "0.5"}


def test_configured_label_names_are_honoured():
    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"model_version": "4", "class": "eu"}, "value": [1.0, "1"]}]}}).encode()
    result = decode(body, version_label="model_version", segment_label="class")
    assert result.raw == {("4", "eu"): "1"}


def test_series_without_the_labels_are_counted_not_guessed():
    result = decode(answer([series("1", "eu", "1"), series(None, "eu", "2"), series("1", None, "3")]))
    assert result.raw == {("1", "eu"): "1"} and result.error is None
    only_unplaced = decode(answer([series(None, "eu", "2")]))
    assert only_unplaced.error == ("1 series lack the 'version' or 'segment' label "
                                   "(metrics.version_label / segment_label)")


def test_two_series_for_one_cell_ask_for_aggregation():
    result = decode(answer([series("1", "eu", "1", instance="a"), series("1", "eu", "2", instance="b")]))
    assert "aggregate them" in result.error and result.raw == {}
    spelled_twice = decode(answer([series("03", "eu", "1"), series("3", "eu", "2")]))
    assert "03 and 3 are read as one" in spelled_twice.error and spelled_twice.raw == {}


def test_prometheus_errors_and_other_result_types_are_reasons_not_crashes():
    error = json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}).encode()
    assert decode(error, status=400).error == "bad_data: parse error at char 3"
    scalar = answer([1.0, "3"], result_type="scalar")
    assert "returns a scalar, not an instant vector" in decode(scalar).error
    assert decode(answer([{"metric": {"version": "1", "segment": "eu"}}])).error == "the answer's series are malformed"


def test_a_body_that_is_not_json_names_the_setting():
    with pytest.raises(MetricsError, match=r"HTTP 200 with a body that is not Prometheus JSON \(metrics.url\)"):
        decode(b"<html>proxy login</html>")


def test_proxy_settings_from_the_environment_are_honoured(monkeypatch):
    """The environment is read once, when the adapter is built; queries still go through the proxy it names."""
    import http.server
    import threading

    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server protocol
            seen.append(self.path)
            body = answer([series("2", "eu-ios", "0.5")])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        metrics = PrometheusMetrics("http://prometheus.invalid:9090", "1m")
        monkeypatch.delenv("http_proxy")  # read at start-up, not per query
        result = metrics.evaluate((SPEC,), "fraud-detector")["error_rate"]
        metrics.close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert result.error is None and result.values == {("2", "eu-ios"): 0.5}
    assert len(seen) == 1 and seen[0].startswith("http://prometheus.invalid:9090/api/v1/query?")


# --- a ratio's counts, and the recent evaluations of a metric judged on persistence ---------------

RATIO = MetricSpec("error_rate", "errors", 'q{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_WORSE,
                   Criteria(threshold=0.05), kind=MetricKind.RATIO,
                   numerator='sum by (version, segment) (increase(e{model="$model"}[$window]))',
                   denominator='sum by (version, segment) (increase(r{model="$model"}[$window]))')
P95 = MetricSpec("latency_p95", "p95", 'p{model="$model"}', Unit.SECONDS, Direction.HIGHER_IS_WORSE,
                 Criteria(threshold=0.25, evaluations=4, step_s=15.0), kind=MetricKind.QUANTILE)


def count(version, segment, part, value):
    return series(version, segment, value, rewind_part=part)


def test_a_ratio_reads_both_counts_from_one_answer(monkeypatch):
    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m")
    monkeypatch.setattr(metrics, "_counts_careful", lambda *a: pytest.fail("took the careful path"))
    result = metrics._decode_refresh(RATIO, "q", 1.0, 200, answer([
        count("03", "eu", "numerator", "17"), count("3", "eu", "denominator", "29"),
        count("2", "eu", "numerator", "0"), count("2", "eu", "denominator", "410.5")]))
    assert result.error is None
    assert result.values == {("3", "eu"): 17 / 29, ("2", "eu"): 0.0}
    assert result.counts[("3", "eu")] == CellCounts(17, 29) and result.counts[("2", "eu")] == CellCounts(0, 410.5)


def test_odd_counts_take_the_careful_path_and_are_explained():
    result = decode_counts(answer([count("3", "eu", "numerator", "+Inf"), count("3", "eu", "denominator", "29"),
                                   count("3", "us", "numerator", "1"), count("3", "us", "denominator", "9"),
                                   {"metric": {"segment": "us"}, "value": [1.0, "4"]}]))
    assert result.error is None and result.values == {("3", "us"): 1 / 9}
    assert "NaN or infinite" in result.problems[("3", "eu")]


def decode_counts(body: bytes, status: int = 200):
    return PrometheusMetrics("http://127.0.0.1:1", "1m")._decode_refresh(RATIO, "q", 1.0, status, body)


def test_counts_with_mismatched_labels_fail_the_metric_in_one_line():
    result = decode_counts(answer([count("3", "eu", "numerator", "1"), count("3", "us", "denominator", "9")]))
    assert "the numerator has 1 cell(s) the denominator lacks (first: v3 eu)" in result.error
    assert "metrics.catalogue[error_rate].counts" in result.error
    result = decode_counts(answer([count("3", "eu", "numerator", "1"), count("3", "eu", "numerator", "2"),
                                   count("3", "eu", "denominator", "9")]))
    assert "several series for one (version, segment) cell" in result.error
    result = decode_counts(json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode(),
                           status=400)
    assert result.error == "bad_data: parse error"


def test_a_persistent_metric_reads_its_last_evaluations_from_one_range_answer():
    at = 1000.0
    body = answer([
        {"metric": {"version": "3", "segment": "eu"},
         "values": [[955.0, "0.31"], [970.0, "0.32"], [985.0, "NaN"], [1000.0, "0.30"]]},
        {"metric": {"version": "2", "segment": "eu"}, "values": [[985.0, "0.03"]]},
    ], result_type="matrix")
    result = PrometheusMetrics("http://127.0.0.1:1", "1m")._decode_refresh(P95, "q", at, 200, body)
    assert result.error is None
    assert result.recent == {("3", "eu"): (0.31, 0.32, None, 0.30), ("2", "eu"): (None, None, 0.03, None)}
    assert result.values == {("3", "eu"): 0.30}  # the value now is the last evaluation's
    wrong = PrometheusMetrics("http://127.0.0.1:1", "1m")._decode_refresh(P95, "q", at, 200, answer([]))
    assert "not a matrix" in wrong.error


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b'{"status": "success", "data": []}', b"{}"])
def test_odd_json_answers_are_a_result_with_a_reason_for_every_query_kind(body):
    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m")
    for spec in (SPEC, RATIO, P95):
        result = metrics._decode_refresh(spec, "q", 1000.0, 200, body)
        assert result.error and not result.values, (spec.name, result)
    assert metrics._decode_range("m", "q", 0.0, 10.0, 5.0, 200, body).error


VALUE_BODIES = [
    answer([series("03", "eu-ios", "0.25"), series("2", "eu-ios", "NaN"), series("2", "us-web", "-Inf"),
            series("2", "us-ios", "1e-05")]),
    answer([series("3", "eu", "0.25"), series("03", "eu", "0.5")]),  # two series for one cell
    answer([series("3", "eu", "0.25"), series("3", None, "0.5")]),  # a series without its segment
    answer([series("3", "eu", "+Inf"), series("4", "eu", "1")]),
    answer([]),
]
COUNT_BODIES = [
    answer([count("03", "eu", "numerator", "17"), count("3", "eu", "denominator", "29"),
            count("2", "eu", "numerator", "0"), count("2", "eu", "denominator", "410.5")]),
    answer([count("3", "eu", "numerator", "+Inf"), count("3", "eu", "denominator", "29"),
            count("3", "us", "numerator", "1"), count("3", "us", "denominator", "9")]),
    answer([count("3", "eu", "numerator", "30"), count("3", "eu", "denominator", "29"),
            count("3", "us", "numerator", "1"), count("3", "us", "denominator", "0")]),
    answer([count("3", "eu", "numerator", "1"), count("3", "us", "denominator", "9")]),
    answer([count("3", "eu", "numerator", "1"), count("3", "eu", "numerator", "2"),
            count("3", "eu", "denominator", "9")]),
    answer([count("3", "eu", "denominator", "9")]),
    answer([]),
]
RANGE_BODIES = [
    answer([{"metric": {"version": "03", "segment": "eu"},
             "values": [[955.0, "0.31"], [970.0, "0.32"], [985.0, "NaN"], [1000.0, "0.30"]]},
            {"metric": {"version": "2", "segment": "eu"},
             "values": [[955.0, "0.31"], [970.0, "0.32"], [985.0, "0.4"], [1000.0, "NaN"]]}], result_type="matrix"),
    answer([{"metric": {"version": "3", "segment": "eu"}, "values": [[970.0, "0.31"], [1000.0, "0.30"]]},
            {"metric": {"version": "2", "segment": "eu"}, "values": [[985.0, "0.03"]]}], result_type="matrix"),
    answer([{"metric": {"version": "3", "segment": "eu"}, "values": [[1000.0, "0.3"]] * 4},
            {"metric": {"version": "03", "segment": "eu"}, "values": [[1000.0, "0.3"]] * 4}], result_type="matrix"),
]


@pytest.mark.parametrize(("spec", "body"), [(SPEC, b) for b in VALUE_BODIES] + [(RATIO, b) for b in COUNT_BODIES]
                         + [(P95, b) for b in RANGE_BODIES])
def test_an_answer_placed_in_a_refreshs_cells_reads_as_the_same_result(spec, body):
    """The refresh's columns (one index for every metric) give every mapping the careful reading gives."""
    from console.domain.cells import CellIndex

    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m")
    index = CellIndex()
    index.place([("1", "other")])  # another metric placed its cells first
    alone = metrics._decode_refresh(spec, "q", 1000.0, 200, body)
    placed = metrics._decode_refresh(spec, "q", 1000.0, 200, body, index)
    assert placed.error == alone.error
    assert dict(placed.values) == dict(alone.values) and dict(placed.raw) == dict(alone.raw)
    assert dict(placed.counts) == dict(alone.counts) and dict(placed.problems) == dict(alone.problems)
    assert dict(placed.recent) == dict(alone.recent)
    if placed.columns is not None:
        assert placed.columns.index is index
        assert placed.columns.values_by_cell() == dict(alone.values)


def test_a_refresh_places_every_metric_in_one_index(monkeypatch):
    """The usual answers are read as columns over one index, which the judge reads without mappings."""
    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m")
    bodies = {"share": VALUE_BODIES[0], RATIO.name: COUNT_BODIES[0], P95.name: RANGE_BODIES[0]}
    specs = (dataclasses.replace(SPEC, name="share"), RATIO, P95)
    monkeypatch.setattr(metrics, "_send_all", lambda queries, at: [(200, bodies[spec.name]) for spec, _ in queries])
    results = metrics.evaluate(specs, "m", 1000.0)
    indexes = {id(result.columns.index) for result in results.values()}
    assert len(indexes) == 1 and None not in {result.columns for result in results.values()}
    assert sorted(results["error_rate"].columns.keys()) == [("2", "eu"), ("3", "eu")]
