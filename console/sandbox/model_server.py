"""One model server per version: predictions over HTTP and Prometheus metrics.

``POST /predict`` takes ``{"segment": ..., "transaction": {...raw...}, "label": 0|1}``
and answers with the version's score. The raw transaction is turned into the model's
inputs by the Feast feature service the version's MLflow tag ``feast.feature_service``
names (re-read every 0.5 s); a request with ``"features": {...}`` instead carries the
inputs themselves (benches, the router's deep check) and skips Feast. The label stands for the delayed ground
truth a real system joins later; it feeds the correctness counters. A request
with the header ``X-Rewind-Check`` is the router's deep health check: a real
prediction, counted in no metric.

``POST /shadow`` takes ``{"request": <a /predict body>, "primary": <the champion's
answer>}`` from the router's mirror: the server predicts, compares its answer with
the champion's, and counts only in the ``rewind_shadow_*`` series. A mirrored copy
is never a served prediction: it writes nothing a served prediction writes.

``GET /metrics`` is the Prometheus exposition, ``GET /health`` the readiness probe: ready
once the model and Feast are loaded and the version's feature service resolved.

Run as ``python -m console.sandbox.model_server --state-dir D --model M --version V --port P``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from console.sandbox.features import (
    FEATURE_BUCKETS,
    RAW_FIELDS,
    SERVICE_TAG,
    ViewBinding,
    import_feast,
    repo_dir,
    resolve_service,
)
from console.sandbox.scenarios import FEATURES, SEGMENTS, Scenario, ScenarioWatcher, sigmoid

BASE_ERROR_RATE = 0.001
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DELTA_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
SHADOW_SLOW_S = 0.5
THRESHOLD = 0.5
"""A score at or above it is a positive prediction (fraud)."""
BINDING_INTERVAL_S = 0.5
"""How often a server re-reads its version's feature-service tag and the service it names."""


class CpuCollector:
    """The server's CPU seconds so far (serving and shadowing together), for cost per prediction."""

    def __init__(self, model: str, version: str) -> None:
        self.labels = [model, version]

    def collect(self):
        """One counter sample: user plus system CPU time of this process."""
        family = CounterMetricFamily("rewind_process_cpu_seconds", "CPU seconds this model server used",
                                     labels=["model", "version"])
        family.add_metric(self.labels, time.process_time())
        yield family


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
        self.registry.register(CpuCollector(model, version))
        self.binding = Gauge("rewind_feature_binding_info",
                             "The feature views this version's feature service makes it consume (1 per view)",
                             ("model", "version", "feature_service", "feature_view", "feature_version", "udf_sha"),
                             registry=self.registry)
        self._binding_labels: set[tuple[str, ...]] = set()
        inputs = labels + ("feature",)
        self.feature_value = Histogram("rewind_feature_value",
                                       "The model's input values; bucket bounds at the training quantiles",
                                       inputs, buckets=FEATURE_BUCKETS, registry=self.registry)
        self.feature_missing = Counter("rewind_feature_missing",
                                       "Inputs absent, None or NaN (the model got 0.0 for them)",
                                       inputs, registry=self.registry)
        for segment in SEGMENTS:
            for feature in FEATURES:
                self.feature_value.labels(model, version, segment, feature)
                self.feature_missing.labels(model, version, segment, feature)
        shadow = labels[:2] + ("baseline", "segment")
        self.shadow_requests = Counter("rewind_shadow_requests", "Mirrored copies received, by outcome",
                                       shadow + ("outcome",), registry=self.registry)
        self.shadow_agreement = Counter("rewind_shadow_agreement", "Pairs compared: same label as the champion?",
                                        shadow + ("agree",), registry=self.registry)
        self.shadow_delta = Histogram("rewind_shadow_score_delta", "|shadow score - champion score|",
                                      shadow, buckets=DELTA_BUCKETS, registry=self.registry)
        self.shadow_latency = Histogram("rewind_shadow_latency_seconds", "The shadow's time to predict a copy",
                                        shadow, buckets=LATENCY_BUCKETS, registry=self.registry)
        self.shadow_paired = Counter("rewind_shadow_paired", "Labelled pairs: who was right",
                                     shadow + ("champion_correct", "shadow_correct"), registry=self.registry)
        self._shadow_ready: set[str] = set()

    def bind(self, model: str, version: str, service: str | None, views: list[ViewBinding]) -> None:
        """Export the binding: one info series per view of the service; series of an older binding removed."""
        wanted = {(model, version, service, v.feature_view, v.version_label, v.udf_sha) for v in views} \
            if service else set()
        for stale in self._binding_labels - wanted:
            self.binding.remove(*stale)
        for labels in wanted - self._binding_labels:
            self.binding.labels(*labels).set(1)
        self._binding_labels = wanted

    def shadow_children(self, model: str, version: str, baseline: str) -> None:
        """Create a baseline's shadow series at 0 in every segment, the first time it is seen."""
        if baseline in self._shadow_ready:
            return
        self._shadow_ready.add(baseline)
        for segment in SEGMENTS:
            key = (model, version, baseline, segment)
            for outcome in ("ok", "error"):
                self.shadow_requests.labels(*key, outcome)
            for agree in ("true", "false"):
                self.shadow_agreement.labels(*key, agree)
            self.shadow_delta.labels(*key)
            self.shadow_latency.labels(*key)
            for champion_correct in ("true", "false"):
                for shadow_correct in ("true", "false"):
                    self.shadow_paired.labels(*key, champion_correct, shadow_correct)


def fast_scorer(pyfunc) -> Callable[[dict[str, float]], float]:
    """The loaded model's score for one request, computed from its own weights when it is the sandbox's scorer.

    MLflow's ``pyfunc.predict`` costs about 1.2 ms of CPU per call here (a DataFrame in and
    out), which at the sandbox's rates (and twice over with a shadow) eats a core of a
    2-core machine. The sandbox's models are logistic scorers: their weights, read from the
    model MLflow loaded, give the same score in microseconds. The two are compared on probe
    inputs at start; any other model, or any difference, is served through ``pyfunc.predict``.
    """
    import pandas as pd

    def through_pyfunc(values: dict[str, float]) -> float:
        return float(pyfunc.predict(pd.DataFrame([values]))["score"].iloc[0])

    try:
        inner = pyfunc.unwrap_python_model()
        weights = [float(w) for w in inner.weights]
        bias = float(inner.bias)
    except (AttributeError, TypeError, ValueError):
        return through_pyfunc

    def direct(values: dict[str, float]) -> float:
        return sigmoid(sum(w * values[f] for w, f in zip(weights, FEATURES, strict=True)) + bias)

    probes = [{f: (i * 0.37 + j * 0.11) % 2 - 1 for j, f in enumerate(FEATURES)} for i in range(8)]
    if len(weights) != len(FEATURES) or any(abs(direct(x) - through_pyfunc(x)) > 1e-9 for x in probes):
        return through_pyfunc
    return direct


class FeatureUnavailable(Exception):
    """The version's features cannot be resolved through Feast right now (the message says why)."""


class FeatureResolver:
    """The version's feature binding, kept current in the background, and the per-request lookup through Feast.

    A thread imports Feast (~3 s, while the main thread loads the model from MLflow), then every
    ``interval`` re-reads the version's MLflow tag ``feast.feature_service`` and that service from
    Feast, resolves which version of each view it consumes, and exports the binding. Feast calls
    are made one at a time (the store is shared by the server's threads).
    """

    def __init__(self, state_dir: Path, model: str, version: str, metrics: Metrics,
                 interval: float = BINDING_INTERVAL_S) -> None:
        self.repo = repo_dir(state_dir)
        self.model = model
        self.version = version
        self.metrics = metrics
        self.interval = interval
        self.ready = threading.Event()
        self.problem: str | None = "Feast is loading"
        self._client = None
        self._client_set = threading.Event()
        self._store = None
        self._service = None
        self._service_name: str | None = None
        self._views: list[ViewBinding] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load Feast in the background; the binding loop starts once :meth:`use_registry` gives it MLflow."""
        threading.Thread(target=self._run, name="feature-binding", daemon=True).start()

    def use_registry(self, client) -> None:
        """The MLflow client the binding loop reads the version's tag with."""
        self._client = client
        self._client_set.set()

    def _run(self) -> None:
        try:
            FeatureStore = import_feast().FeatureStore  # noqa: N806 - Feast's class

            warnings.filterwarnings("ignore")  # after the import: Feast sets filters of its own
            logging.getLogger("feast").setLevel(logging.ERROR)
            self._store = FeatureStore(repo_path=str(self.repo))
        except Exception as exc:  # noqa: BLE001 - the server stays up and says why it is not ready
            self.problem = f"Feast could not be loaded from {self.repo}: {exc}"
            print(f"features: {self.problem}", flush=True)
            return
        self._client_set.wait()
        while True:
            started = time.monotonic()
            self.refresh()
            self.ready.set()
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def refresh(self) -> None:
        """Re-read the tag and the service; export the binding when it changed."""
        name: str | None = None
        try:
            tags = self._client.get_model_version(self.model, self.version).tags or {}  # type: ignore[union-attr]
            name = tags.get(SERVICE_TAG) or None
            if name is None:
                self._set(None, None, [], f"model version {self.version} has no {SERVICE_TAG} tag")
                return
            with self._lock:
                service, views = resolve_service(self._store, name)
        except Exception as exc:  # noqa: BLE001 - MLflow or Feast failing: no binding, and why
            self._set(None, None, [], f"feature service {name or '?'} could not be resolved: {exc}")
            return
        self._set(name, service, views, None)

    def _set(self, name: str | None, service, views: list[ViewBinding], problem: str | None) -> None:
        changed = (name, views) != (self._service_name, self._views) or problem != self.problem
        self._service, self._service_name, self._views, self.problem = service, name, views, problem
        if changed:
            self.metrics.bind(self.model, self.version, name, views)
            described = ", ".join(f"{v.feature_view}@{v.version_label} udf {v.udf_sha}" for v in views)
            print(f"features: {problem or f'{name} -> {described}'}", flush=True)

    def lookup(self, transaction: dict) -> dict[str, object]:
        """The model's inputs for one raw transaction, through the bound feature service."""
        service = self._service
        if service is None or self._store is None:
            raise FeatureUnavailable(self.problem or "no feature service bound")
        row = {field: transaction.get(field) for field in RAW_FIELDS}
        try:
            with self._lock:
                resolved = self._store.get_online_features(features=service, entity_rows=[row]).to_dict()
        except Exception as exc:  # noqa: BLE001 - any Feast failure fails this prediction, not the server
            raise FeatureUnavailable(f"Feast could not resolve the features: {exc}") from None
        return {feature: values[0] if values else None for feature, values in resolved.items()}


@dataclass(frozen=True)
class Answer:
    """One prediction: its segment, score (``None`` when it failed), label and the model's inputs."""

    segment: str
    score: float | None
    label: object
    inputs: dict[str, float]
    missing: tuple[str, ...]


def model_inputs(source: dict) -> tuple[dict[str, float], tuple[str, ...]]:
    """The model's inputs from resolved features; an absent, None or NaN feature is 0.0 and listed as missing.

    Raises:
        ValueError: a feature is neither a number nor absent.
    """
    values: dict[str, float] = {}
    missing = []
    for feature in FEATURES:
        raw = source.get(feature)
        value = math.nan if raw is None else float(raw)  # type: ignore[arg-type]
        if math.isnan(value):
            missing.append(feature)
            value = 0.0
        values[feature] = value
    return values, tuple(missing)


class ModelServer(ThreadingHTTPServer):
    """The HTTP server, holding the loaded model and its metrics."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, model_name: str, version: str, predictor, state_dir: Path,
                 metrics: Metrics | None = None, features: FeatureResolver | None = None) -> None:
        super().__init__(address, Handler)
        self.model_name = model_name
        self.version = version
        self.predictor = predictor
        self.metrics = metrics or Metrics(model_name, version)
        self.features = features
        self.scenario = ScenarioWatcher(state_dir)
        self.rng = random.Random()
        self.lock = threading.Lock()
        self.base_error_rate = BASE_ERROR_RATE


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
            features = self.server.features
            if features is None or features.ready.is_set():
                problem = features.problem if features else None
                self._send(200, json.dumps({"status": "ok", "features": problem or "ok"}).encode())
            else:
                self._send(503, json.dumps({"status": "loading", "features": features.problem}).encode())
        else:
            self._send(404, b'{"error":"not found"}')

    def _read_json(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def do_POST(self) -> None:  # noqa: N802
        if self.path == "/predict":
            self._serve(self._read_json())
        elif self.path == "/shadow":
            self._shadow(self._read_json())
        else:
            self._send(404, b'{"error":"not found"}')

    def _predict(self, payload: dict | None) -> Answer | None:
        """The version's answer to one request, faults of the scenario included.

        A request with ``"transaction"`` gets its inputs from Feast; one with ``"features"``
        carries them. A prediction whose features cannot be resolved fails (score ``None``).

        Returns:
            The answer, its score ``None`` when the prediction failed; ``None`` for a request
            that is not a valid prediction request.
        """
        srv = self.server
        try:
            segment = str(payload.get("segment", "unknown"))  # type: ignore[union-attr]
            label = payload.get("label")  # type: ignore[union-attr]
            transaction = payload.get("transaction")  # type: ignore[union-attr]
            if transaction is None:
                source = payload["features"]  # type: ignore[index]
                values, missing = model_inputs(source)
            elif not isinstance(transaction, dict):
                return None
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        if segment not in SEGMENTS:
            return None
        if transaction is not None:
            try:
                if srv.features is None:
                    raise FeatureUnavailable("this server has no feature store")
                values, missing = model_inputs(srv.features.lookup(transaction))
            except (FeatureUnavailable, TypeError, ValueError):
                return Answer(segment, None, label, {}, ())
        scenario = srv.scenario.get()
        faulty = scenario.affects(srv.version, segment)
        with srv.lock:
            roll = srv.rng.random()
            jitter = srv.rng.lognormvariate(-4.6, 0.4)  # median ~10 ms
        delay = jitter + {"latency": 0.35, "shadow-slow": SHADOW_SLOW_S}.get(scenario.name, 0.0) * faulty
        error_rate = {"regression": 0.3, "outage": 0.95, "broken-predictions": 1.0}.get(scenario.name, 0.0) * faulty
        time.sleep(delay)
        if roll < max(error_rate, srv.base_error_rate):
            return Answer(segment, None, label, values, missing)
        score = srv.predictor(values)
        if faulty and scenario.name in ("regression", "shadow-disagree"):
            score = 1.0 - score  # the new feature pipeline inverts a feature in these segments
        return Answer(segment, score, label, values, missing)

    def _serve(self, payload: dict | None) -> None:
        started = time.perf_counter()
        srv = self.server
        answer = self._predict(payload)
        if answer is None:
            self._send(400, b'{"error":"bad request"}')
            return
        segment, score, label = answer.segment, answer.score, answer.label
        # The router's deep check is a real prediction, counted nowhere: it is not traffic.
        counted = self.headers.get("X-Rewind-Check") is None
        key = (srv.model_name, srv.version, segment)
        if counted:
            for feature, value in answer.inputs.items():
                if feature in answer.missing:
                    srv.metrics.feature_missing.labels(*key, feature).inc()
                else:
                    srv.metrics.feature_value.labels(*key, feature).observe(value)
        if score is None:
            if counted:
                srv.metrics.requests.labels(*key, "error").inc()
                srv.metrics.latency.labels(*key).observe(time.perf_counter() - started)
            self._send(500 if srv.scenario.get().name == "broken-predictions" else 503, b'{"error":"model failed"}')
            return
        prediction = 1 if score >= THRESHOLD else 0
        if counted:
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

    def _shadow(self, payload: dict | None) -> None:
        """A mirrored copy: predict, compare with the champion's answer, count in the shadow series only."""
        started = time.perf_counter()
        srv = self.server
        baseline = self.headers.get("X-Rewind-Baseline", "")
        primary = payload.get("primary") if payload else None
        answer = self._predict(payload.get("request") if payload else None)
        if answer is None or not isinstance(primary, dict) or not baseline.startswith("v"):
            self._send(400, b'{"error":"bad shadow copy"}')
            return
        segment, score, label = answer.segment, answer.score, answer.label
        baseline_version = baseline[1:]
        metrics = srv.metrics
        metrics.shadow_children(srv.model_name, srv.version, baseline_version)
        key = (srv.model_name, srv.version, baseline_version, segment)
        metrics.shadow_latency.labels(*key).observe(time.perf_counter() - started)
        if score is None:
            metrics.shadow_requests.labels(*key, "error").inc()
            self._send(200, b'{"compared":false}')
            return
        metrics.shadow_requests.labels(*key, "ok").inc()
        try:
            primary_score = float(primary["score"])
        except (KeyError, TypeError, ValueError):
            self._send(200, b'{"compared":false}')
            return
        shadow_label, primary_label = int(score >= THRESHOLD), int(primary_score >= THRESHOLD)
        metrics.shadow_agreement.labels(*key, str(shadow_label == primary_label).lower()).inc()
        metrics.shadow_delta.labels(*key).observe(abs(score - primary_score))
        if label in (0, 1):
            metrics.shadow_paired.labels(*key, str(primary_label == label).lower(),
                                         str(shadow_label == label).lower()).inc()
        self._send(200, b'{"compared":true}')


class Unaffected:
    """The scenario source of a fleet's extra model: always healthy (scenarios hit the sandbox's first model)."""

    def get(self) -> Scenario:
        """The healthy scenario."""
        return Scenario("healthy")


def parse_serve(text: str) -> tuple[str, str, int]:
    """``MODEL=VERSION@PORT`` as (model, version, port)."""
    model, _, rest = text.rpartition("=")
    version, _, port = rest.partition("@")
    if not model or not version or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL=VERSION@PORT")
    return model, version, int(port)


def serve_many(state_dir: Path, tracking_uri: str, served: list[tuple[str, str, int]]) -> None:
    """Serve several (model, version) pairs from one process, each on its own port, all unaffected by scenarios.

    The sandbox's extra fleet models run here: one process (one MLflow and one Feast import) instead of
    one per version, which a 2-core machine cannot spare. Each pair keeps its own metrics registry and
    feature binding, so Prometheus sees the same series as from separate servers; only the CPU counter
    (``rewind_process_cpu_seconds``) is the whole process's.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    servers = []
    for model, version, port in served:
        metrics = Metrics(model, version)
        features = FeatureResolver(state_dir, model, version, metrics)
        features.start()
        predictor = fast_scorer(mlflow.pyfunc.load_model(f"models:/{model}/{version}"))
        features.use_registry(client)
        server = ModelServer(("127.0.0.1", port), model, version, predictor, state_dir, metrics, features)
        server.scenario = Unaffected()  # type: ignore[assignment]
        servers.append(server)
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        print(f"serving {server.model_name} v{server.version} on 127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> None:
    """Load the version from the registry and serve until terminated."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--model")
    parser.add_argument("--version")
    parser.add_argument("--port", type=int)
    parser.add_argument("--serve", action="append", type=parse_serve, default=[], metavar="MODEL=VERSION@PORT",
                        help="serve these pairs from this one process instead (a fleet's extra models)")
    parser.add_argument("--base-error-rate", type=float, default=BASE_ERROR_RATE,
                        help="share of predictions failing for no reason (the fallback's simple model: 0)")
    args = parser.parse_args(argv)
    if args.serve:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        warnings.filterwarnings("ignore")
        logging.getLogger("mlflow").setLevel(logging.ERROR)
        serve_many(args.state_dir, args.tracking_uri, args.serve)
        return
    if not (args.model and args.version and args.port):
        parser.error("--model, --version and --port are required (or --serve)")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    metrics = Metrics(args.model, args.version)
    features = FeatureResolver(args.state_dir, args.model, args.version, metrics)
    features.start()  # Feast imports (~3 s) while MLflow loads the model
    import mlflow

    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_registry_uri(args.tracking_uri)
    predictor = fast_scorer(mlflow.pyfunc.load_model(f"models:/{args.model}/{args.version}"))
    features.use_registry(mlflow.MlflowClient(tracking_uri=args.tracking_uri, registry_uri=args.tracking_uri))
    server = ModelServer(("127.0.0.1", args.port), args.model, args.version, predictor, args.state_dir,
                         metrics, features)
    server.base_error_rate = args.base_error_rate
    print(f"serving {args.model} v{args.version} on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
