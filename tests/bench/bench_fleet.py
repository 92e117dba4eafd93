"""Issue 18's fleet figures: queries and CPU of one fleet refresh, 50 models.

- ``fleet_queries_per_refresh``: the HTTP queries one fleet refresh sends for 50 models, counted by the
  stand-in Prometheus (:mod:`tests.bench.fleet_prometheus`); it must equal the number of catalogue metrics
  (the sandbox's six). ``one_model_queries`` (extra field): how many of them named a single model (0).
- ``fleet_refresh_cpu_ms``: the console's CPU time (user + system, all its threads) for one fleet refresh of
  50 models x 3 versions x 20 segments x 6 metrics (18,000 cells): the six queries side by side, decoding
  and splitting the answers by model, reading each model's registry versions and router weights (in-memory
  fakes here), judging every model's cells together (one judge call per metric), and building the 50 rows
  worst first; the median of 15. Extra fields: ``decode_ms`` (the metrics read alone, from the HTTP answers
  to each model's results) and ``rows_ms`` (from the decoded results to the fleet rows), medians; within
  ``decode_ms``, as ``refresh_cpu_ms`` gives them: ``exchanges_ms`` (the six HTTP exchanges alone),
  ``json_decode_ms`` (msgspec, untyped, the same bodies) and ``typed_decode_ms`` (the adapter's own typed
  decoders: with the exchanges, the floor of its reading).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

MODELS, VERSIONS, SEGMENTS = 50, 3, 20


class _Registry:
    """Three versions per model, v1 the champion, as an in-memory registry answers."""

    def list_versions(self, model, with_signatures=False):  # noqa: ANN001, ANN201 - the protocol's signature
        from console.domain.versions import ModelVersion

        aliases = {"1": ("champion",), "3": ("challenger",)}
        return [ModelVersion(model, str(v), f"run{v}", datetime(2026, 1, v, tzinfo=UTC),
                             aliases=aliases.get(str(v), ())) for v in range(1, VERSIONS + 1)]


class _Router:
    """Weights 80/10/10 per model."""

    def read_state(self, model):  # noqa: ANN001, ANN201
        from console.domain.routing import RouterState, ServerState

        weights = {"1": 80, "2": 10, "3": 10}
        return RouterState(f"be_{model}", tuple(ServerState(f"v{v}", v, w, True, "ready") for v, w in weights.items()))


def _figures() -> tuple[int, int, float, float, float, float, float, float]:
    from console.adapters.prometheus import PrometheusMetrics
    from console.config import load_config
    from console.domain.fleet import fleet_refresh_query, fleet_row
    from console.runtime import tune_gc
    from console.sandbox.manager import free_port
    from console.sandbox.templates import rewind_config
    from console.services.fleet import FleetStatus
    from console.services.live import compose_all
    from tests.bench.bench_status import reading_parts
    from tests.bench.fleet_prometheus import model_names

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.fleet_prometheus", "--port", str(port),
                               "--models", str(MODELS), "--versions", str(VERSIONS), "--segments", str(SEGMENTS)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rewind.yaml"
            path.write_text(rewind_config(Path(tmp), "fraud-00", port))
            config = load_config(str(path), environ={}).config
        specs = config.metrics.specs()
        metrics = PrometheusMetrics(config.metrics.url, config.metrics.window, model_label=config.metrics.model_label)
        fleet = FleetStatus(_Registry(), _Router(), metrics, specs, config.metrics.traffic_metric,
                            config.metrics.stable_alias)
        models = model_names(MODELS)
        tune_gc()  # as the CLI and the TUI do at start-up
        fleet.read(models)  # warm: connections, imports, decoders
        base = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(f"{base}/reset").read()  # noqa: S310 - loopback
        snapshot = fleet.read(models)
        seen = json.loads(urllib.request.urlopen(f"{base}/count").read())  # noqa: S310
        assert len(snapshot.rows) == MODELS and snapshot.metrics_error is None
        assert all(row.cells > 0 for row in snapshot.rows), "every model's cells were judged"
        cpu, decode, rows, exchanges, parsing, typed_parsing = [], [], [], [], [], []
        typed = [metrics._fleet_decoder("counts" if spec.counts else "range" if spec.persists  # noqa: SLF001
                                        else "value") for spec in specs]
        queries = [(spec, fleet_refresh_query(spec, models, metrics.window, metrics.model_label)) for spec in specs]
        for _ in range(15):
            started = time.process_time()
            fleet.read(models)
            cpu.append((time.process_time() - started) * 1000)
            at = time.time()
            for times, took in zip((exchanges, parsing, typed_parsing), reading_parts(metrics, queries, typed, at),
                                   strict=True):
                times.append(took)
            started = time.process_time()
            results = metrics.evaluate_fleet(specs, models, at)
            decode.append((time.process_time() - started) * 1000)
            readings = [(model, _Registry().list_versions(model), _Router().read_state(model), results[model])
                        for model in models]
            started = time.process_time()
            snapshots = compose_all(readings, at, fleet.catalogue, fleet.traffic_metric, fleet.stable_alias)
            [fleet_row(snapshot, snapshot.model) for snapshot in snapshots]
            rows.append((time.process_time() - started) * 1000)
        metrics.close()
        fleet.close()
        return (seen["queries"], seen["queries_naming_one_model"], statistics.median(cpu),
                statistics.median(decode), statistics.median(rows), statistics.median(exchanges),
                statistics.median(parsing), statistics.median(typed_parsing))
    finally:
        server.kill()
        server.wait()


def figures():
    """Yield the fleet's figures."""
    queries, one_model, cpu_ms, decode_ms, rows_ms, exchanges_ms, json_ms, typed_ms = _figures()
    yield "fleet_queries_per_refresh", queries, "queries", {"models": MODELS, "catalogue_metrics": 6,
                                                            "one_model_queries": one_model}
    yield "fleet_refresh_cpu_ms", round(cpu_ms, 1), "ms", {"decode_ms": round(decode_ms, 1),
                                                           "exchanges_ms": round(exchanges_ms, 1),
                                                           "json_decode_ms": round(json_ms, 1),
                                                           "typed_decode_ms": round(typed_ms, 1),
                                                           "rows_ms": round(rows_ms, 1),
                                                           "cells": MODELS * VERSIONS * SEGMENTS * 6}
