"""Issue 2's figures: queries and CPU per refresh at scale, status wall time, CLI import time.

- ``prometheus_queries_per_refresh``: queries one refresh sends for 20 versions x
  200 segments x 6 metrics (must equal the number of metrics).
- ``refresh_cpu_ms``: the console's CPU time (user + system, all its threads) for
  one refresh at that size — six queries side by side, decoding, indexing and
  judging all 24,000 cells — against recorded responses served by another
  process; the median of 15 refreshes.
- ``status_wall_ms``: wall time of ``rewind status --json`` on a running sandbox
  (median of 5; the sandbox is started for the measurement and stopped after).
- ``cli_import_ms``: time to import ``console.cli`` in a fresh interpreter (median of 7).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

VERSIONS, SEGMENTS = 20, 200


def _refresh_figures():
    from console.adapters.prometheus import PrometheusMetrics
    from console.config import load_config
    from console.domain.verdicts import build_matrix
    from console.runtime import tune_gc
    from console.sandbox.manager import free_port
    from console.sandbox.templates import rewind_config

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tests.bench.fake_prometheus", "--port", str(port),
                               "--versions", str(VERSIONS), "--segments", str(SEGMENTS)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rewind.yaml"
            path.write_text(rewind_config(Path(tmp), "fraud-detector", port))
            config = load_config(str(path), environ={}).config
        specs = config.metrics.specs()
        metrics = PrometheusMetrics(config.metrics.url, config.metrics.window)
        tune_gc()  # as the CLI and the TUI do at start-up
        versions = [str(v) for v in range(1, VERSIONS + 1)]

        def refresh():
            results = metrics.evaluate(specs, "fraud-detector")
            return build_matrix(specs, results, versions, "1", config.metrics.traffic_metric)

        refresh()  # warm: connections, imports
        base = f"http://127.0.0.1:{port}"
        urllib.request.urlopen(f"{base}/reset").read()
        matrix = refresh()
        queries = json.loads(urllib.request.urlopen(f"{base}/count").read())["queries"]
        assert len(matrix.segments) == SEGMENTS and len(matrix.versions) == VERSIONS
        cpu = []
        for _ in range(15):
            started = time.process_time()
            refresh()
            cpu.append((time.process_time() - started) * 1000)
        metrics.close()
        return queries, statistics.median(cpu)
    finally:
        server.kill()
        server.wait()


def _cli_import_ms() -> float:
    code = "import time; t = time.perf_counter(); import console.cli; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(7)]
    return statistics.median(runs)


def _status_wall_ms() -> float:
    from console.sandbox.manager import Sandbox

    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox(Path(tmp) / "sandbox")
        box.up(say=lambda line: None)
        try:
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "console", "status", "--json", "--config", str(box.config_path)],
                               check=True, capture_output=True)
                runs.append((time.perf_counter() - started) * 1000)
            return statistics.median(runs)
        finally:
            box.down()


def figures():
    """Yield issue 2's figures."""
    queries, cpu_ms = _refresh_figures()
    yield "prometheus_queries_per_refresh", queries, "queries"
    yield "refresh_cpu_ms", round(cpu_ms, 1), "ms"
    yield "cli_import_ms", round(_cli_import_ms(), 1), "ms"
    yield "status_wall_ms", round(_status_wall_ms(), 0), "ms"
