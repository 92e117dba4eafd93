"""Decoding Prometheus answers: the typed fast path and the careful path agree, odd answers are explained.

The adapter is built without any server: ``_decode`` only reads the bytes it is given.
"""

from __future__ import annotations

import json

import pytest

from console.adapters.prometheus import PrometheusMetrics
from console.domain.errors import MetricsError
from console.domain.metrics import Direction, MetricSpec, Unit

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
