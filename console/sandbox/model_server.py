"""One model server per version: predictions over HTTP and Prometheus metrics.

``POST /predict`` takes ``{"segment": ..., "features": {...}, "label": 0|1}``
and answers with the version's score. The label stands for the delayed ground
truth a real system joins later; it feeds the correctness counters.
``GET /metrics`` is the Prometheus exposition, ``GET /health`` the readiness probe.

Run as ``python -m console.sandbox.model_server --state-dir D --model M --version V --port P``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from console.sandbox.scenarios import FEATURES, SEGMENTS, ScenarioWatcher

BASE_ERROR_RATE = 0.001
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Metrics:
    """The server's Prometheus metrics, every (segment, outcome) child created up front.

    Creating the children at start means a series exists (at 0) before its first
    event, so "no errors yet" reads as 0 errors, not as *no data*.
    """

    def __init__(self, model: str, version: str) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "version", "segment")
        self.requests = Counter("rewind_requests", "Predictions served, by outcome",
                                labels + ("outcome",), registry=self.registry)
        self.latency = Histogram("rewind_request_latency_seconds", "Time to answer a prediction",
                                 labels, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.score = Histogram("rewind_prediction_score", "Predicted score",
                               labels, buckets=SCORE_BUCKETS, registry=self.registry)
        self.labels = Counter("rewind_labels", "Delayed labels received", labels, registry=self.registry)
        self.correct = Counter("rewind_label_correct", "Delayed labels the prediction got right",
                               labels, registry=self.registry)
        for segment in SEGMENTS:
            key = (model, version, segment)
            for outcome in ("ok", "error"):
                self.requests.labels(*key, outcome)
            self.latency.labels(*key)
            self.score.labels(*key)
            self.labels.labels(*key)
            self.correct.labels(*key)


class ModelServer(ThreadingHTTPServer):
    """The HTTP server, holding the loaded model and its metrics."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, model_name: str, version: str, predictor, state_dir: Path) -> None:
        super().__init__(address, Handler)
        self.model_name = model_name
        self.version = version
        self.predictor = predictor
        self.metrics = Metrics(model_name, version)
        self.scenario = ScenarioWatcher(state_dir)
        self.rng = random.Random()
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    """Serves /predict, /metrics and /health."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else 40 ms per request behind a keep-alive proxy
    server: ModelServer

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        return

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/metrics":
            self._send(200, generate_latest(self.server.metrics.registry), CONTENT_TYPE_LATEST)
        elif self.path == "/health":
            self._send(200, b'{"status":"ok"}')
        else:
            self._send(404, b'{"error":"not found"}')

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/predict":
            self._send(404, b'{"error":"not found"}')
            return
        started = time.perf_counter()
        srv = self.server
        try:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            segment = str(payload.get("segment", "unknown"))
            features = payload["features"]
            label = payload.get("label")
        except (ValueError, KeyError, TypeError):
            self._send(400, b'{"error":"bad request"}')
            return
        if segment not in SEGMENTS:
            self._send(400, b'{"error":"unknown segment"}')
            return
        scenario = srv.scenario.get()
        faulty = scenario.affects(srv.version, segment)
        key = (srv.model_name, srv.version, segment)
        with srv.lock:
            roll = srv.rng.random()
            jitter = srv.rng.lognormvariate(-4.6, 0.4)  # median ~10 ms
        delay = jitter + (0.35 if faulty and scenario.name == "latency" else 0.0)
        error_rate = {"regression": 0.3, "outage": 0.95}.get(scenario.name, 0.0) if faulty else 0.0
        time.sleep(delay)
        if roll < max(error_rate, BASE_ERROR_RATE):
            srv.metrics.requests.labels(*key, "error").inc()
            srv.metrics.latency.labels(*key).observe(time.perf_counter() - started)
            self._send(503, b'{"error":"model failed"}')
            return
        import pandas as pd

        frame = pd.DataFrame([{f: float(features.get(f, 0.0)) for f in FEATURES}])
        score = float(srv.predictor.predict(frame)["score"].iloc[0])
        if faulty and scenario.name == "regression":
            score = 1.0 - score  # the new feature pipeline inverts a feature in these segments
        prediction = 1 if score >= 0.5 else 0
        srv.metrics.score.labels(*key).observe(score)
        if label in (0, 1):
            srv.metrics.labels.labels(*key).inc()
            if prediction == label:
                srv.metrics.correct.labels(*key).inc()
        srv.metrics.requests.labels(*key, "ok").inc()
        srv.metrics.latency.labels(*key).observe(time.perf_counter() - started)
        body = json.dumps({"model": srv.model_name, "version": srv.version,
                           "score": round(score, 6), "prediction": prediction}).encode()
        self._send(200, body)


def main(argv: list[str] | None = None) -> None:
    """Load the version from the registry and serve until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_registry_uri(args.tracking_uri)
    predictor = mlflow.pyfunc.load_model(f"models:/{args.model}/{args.version}")
    server = ModelServer(("127.0.0.1", args.port), args.model, args.version, predictor, args.state_dir)
    print(f"serving {args.model} v{args.version} on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
