"""Issue 2's figures: queries and CPU per refresh at scale, status wall time, CLI import time.

- ``prometheus_queries_per_refresh``: queries one refresh sends for 20 versions x
  200 segments x 6 metrics (must equal the number of metrics).
- ``refresh_cpu_ms``: the console's CPU time (user + system, all its threads) for
  one refresh at that size — six queries side by side, decoding, indexing and
  judging all 24,000 cells — against recorded responses served by another
  process; the median of 15 refreshes. Extra fields: its parts, each measured alone (``exchanges_ms``;
  ``json_decode_ms``: decoding the answers untyped, as any general reading of them would;
  ``typed_decode_ms``: decoding them with the adapter's own typed decoders, the floor of its reading;
  ``judge_ms``: ``build_matrix`` alone).
- ``status_wall_ms`` (issue 18): wall time of the whole ``rewind status --json`` process on a
  running sandbox whose registry is served by ``mlflow server`` (read over its REST API), with
  HAProxy and Prometheus as the sandbox runs them; the median of 7 after one warm-up run, with
  the minimum and the load average; with a bytecode cache, as an install has one.
  ``status_rss_mb``: that process's peak RSS (``wait4``'s ``ru_maxrss``, started from a small
  launcher so that the benchmark's own size is not counted), median.
  ``imports_ms`` (extra field): a process that only imports the modules the command imports, median of 7.
- ``status_sqlite_wall_ms``: the same with the sandbox's own ``sqlite:///`` registry (MLflow client).
- ``cli_import_ms``: time to import ``console.cli`` in a fresh interpreter (median of 7).
"""

from __future__ import annotations

import json
import os
import signal
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
        parts = _refresh_parts(metrics, specs, versions, config.metrics.traffic_metric)
        metrics.close()
        return queries, statistics.median(cpu), parts
    finally:
        server.kill()
        server.wait()


def _refresh_parts(metrics, specs, versions, traffic_metric, runs: int = 15) -> dict[str, float]:  # noqa: ANN001
    """Where a refresh's CPU goes, each part alone (medians, ms): the six HTTP exchanges, decoding their JSON
    (msgspec, untyped: what a general reading of the answers costs; and typed, as the adapter decodes), and
    the judge (``build_matrix`` on the decoded results). The rest of ``refresh_cpu_ms`` is the adapter turning
    the answers into cells."""

    from console.domain.metrics import refresh_query
    from console.domain.verdicts import build_matrix

    queries = [(spec, refresh_query(spec, "fraud-detector", metrics.window)) for spec in specs]
    # The adapter's own typed decoders (structs holding just the labels and numbers a cell needs).
    typed = [metrics._counts_decoder() if spec.counts else metrics._range_decoder() if spec.persists  # noqa: SLF001
             else metrics._typed_decoder() for spec in specs]  # noqa: SLF001
    exchanges, decoding, typed_decoding, judging = [], [], [], []
    for _ in range(runs):
        at = time.time()
        for times, took in zip((exchanges, decoding, typed_decoding), reading_parts(metrics, queries, typed, at),
                               strict=True):
            times.append(took)
        results = metrics.evaluate(specs, "fraud-detector", at)
        started = time.process_time()
        build_matrix(specs, results, versions, "1", traffic_metric)
        judging.append((time.process_time() - started) * 1000)
    return {"exchanges_ms": round(statistics.median(exchanges), 1),
            "json_decode_ms": round(statistics.median(decoding), 1),
            "typed_decode_ms": round(statistics.median(typed_decoding), 1),
            "judge_ms": round(statistics.median(judging), 1), "judge_min_ms": round(min(judging), 1)}


def reading_parts(metrics, queries, decoders, at: float) -> tuple[float, float, float]:  # noqa: ANN001
    """CPU ms of reading a refresh's answers, each part alone: the HTTP exchanges (sent side by side, as a
    refresh sends them), decoding the bodies untyped (msgspec, as a general reading would), and decoding
    them with ``decoders`` (the adapter's own typed ones, one per query)."""
    import msgspec

    started = time.process_time()
    answers = metrics._send_all(queries, at)  # noqa: SLF001 - the exchanges alone
    exchanges = (time.process_time() - started) * 1000
    started = time.process_time()
    for _, body in answers:
        msgspec.json.decode(body)
    untyped = (time.process_time() - started) * 1000
    started = time.process_time()
    for decoder, (_, body) in zip(decoders, answers, strict=True):
        decoder.decode(body)
    return exchanges, untyped, (time.process_time() - started) * 1000


# What ``rewind status`` imports on the way (``python -X importtime``): the config (pydantic), the MLflow REST
# adapter (httpx), Prometheus's (prometheus-api-client: requests) and the judge's numpy and scipy.special.
_STATUS_IMPORTS = ("import console.cli, console.commands.status, console.config, console.wiring, "
                   "console.adapters.mlflow_rest, console.adapters.prometheus, requests, prometheus_api_client, "
                   "numpy, scipy.special")


def _imports_wall_ms(env: dict[str, str], runs: int = 7) -> float:
    """Wall time of a process that only imports what ``rewind status`` imports (median): the floor of its wall."""
    walls = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", _STATUS_IMPORTS], env=env, check=True)
        walls.append((time.perf_counter() - started) * 1000)
    return statistics.median(walls[1:])


def _cli_import_ms() -> float:
    code = "import time; t = time.perf_counter(); import console.cli; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(7)]
    return statistics.median(runs)


# Starts the command from a small process and reports its wall time, peak RSS and CPU time. A child's
# ru_maxrss starts at its parent's RSS (fork copies the counters, and exec keeps the high-water mark),
# so a child of this benchmark process would report at least the benchmark's own size.
_LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = (time.perf_counter() - started) * 1000
with open(sys.argv[1], "w") as report:
    cpu = (usage.ru_utime + usage.ru_stime) * 1000
    report.write(f"{wall} {usage.ru_maxrss} {cpu} {os.waitstatus_to_exitcode(status)}")
"""


def _run_status(config: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """One whole ``rewind status --json`` process: its wall time (ms), peak RSS (MB) and CPU time (ms)."""
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile("r") as report:
        subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, report.name,
                        sys.executable, "-m", "console", "status", "--json", "--config", str(config)],
                       stdout=out, stderr=subprocess.STDOUT, env=env, check=True)
        wall, rss_kb, cpu, code = report.read().split()
        if int(code) != 0:
            out.seek(0)
            raise RuntimeError(f"rewind status failed: {out.read().decode()[-500:]}")
    return float(wall), int(rss_kb) / 1024, float(cpu)  # Linux reports ru_maxrss in kilobytes


def _status_runs(config: Path, cache: Path, runs: int = 7) -> tuple[list[float], list[float], list[float]]:
    # With a bytecode cache, as an installed rewind has one (PYTHONDONTWRITEBYTECODE would
    # compile every module of the project on every run).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONPYCACHEPREFIX": str(cache)}
    _run_status(config, env)  # warm: writes the bytecode cache; disk caches
    measured = [_run_status(config, env) for _ in range(runs)]
    return [w for w, _, _ in measured], [r for _, r, _ in measured], [c for _, _, c in measured]


def _mlflow_server(database: Path, root: Path) -> tuple[subprocess.Popen, str]:
    """``mlflow server`` over the sandbox's registry database, on a free loopback port."""
    from console.sandbox.manager import free_port

    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true")
    log = (root / "mlflow-server.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server",
                               "--backend-store-uri", f"sqlite:///{database}",
                               "--default-artifact-root", (root / "artifacts").as_uri(),
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):  # noqa: S310 - loopback
                return server, url
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGTERM)
                log_text = (root / 'mlflow-server.log').read_text()[-500:]
                raise RuntimeError(f"mlflow server did not start: {log_text}") from None
            time.sleep(0.2)


def _status_figures() -> tuple[dict[str, tuple[list[float], list[float], list[float]]], float, float]:
    """``rewind status`` on a running sandbox: with its sqlite registry, then with an MLflow server in front of it.

    Returns:
        Each registry's wall times (ms), peak RSS (MB) and CPU times (ms), the load average before
        the server's runs (the machine is shared: CPU time says what the wall time would be alone), and
        the wall time of importing what the command imports (:func:`_imports_wall_ms`).
    """
    import yaml

    from console.sandbox.manager import Sandbox

    with tempfile.TemporaryDirectory() as tmp:
        box = Sandbox(Path(tmp) / "sandbox")
        box.up(say=lambda line: None)
        try:
            figures = {"sqlite": _status_runs(box.config_path, Path(tmp) / "pycache")}
            server, url = _mlflow_server(box.dir / "mlflow.db", Path(tmp))
            try:
                document = yaml.safe_load(box.config_path.read_text())
                document["registry"] = {"tracking_uri": url}
                served = Path(tmp) / "rewind-mlflow-server.yaml"
                served.write_text(yaml.safe_dump(document))
                load = os.getloadavg()[0]
                figures["server"] = _status_runs(served, Path(tmp) / "pycache")
                cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
                imports = _imports_wall_ms(cached | {"PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")})
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            return figures, load, imports
        finally:
            box.down()


def figures():
    """Yield issue 2's figures."""
    queries, cpu_ms, parts = _refresh_figures()
    yield "prometheus_queries_per_refresh", queries, "queries"
    yield "refresh_cpu_ms", round(cpu_ms, 1), "ms", parts
    yield "cli_import_ms", round(_cli_import_ms(), 1), "ms"
    status, load, imports = _status_figures()
    walls, rss, cpu = status["server"]
    yield "status_wall_ms", round(statistics.median(walls), 0), "ms", {"min": round(min(walls), 0),
                                                                      "cpu_ms": round(statistics.median(cpu), 0),
                                                                      "imports_ms": round(imports, 0),
                                                                      "load": round(load, 1),
                                                                      "registry": "mlflow server (REST)"}
    yield "status_rss_mb", round(statistics.median(rss), 1), "MB", {"min": round(min(rss), 1)}
    walls, _, _ = status["sqlite"]
    yield "status_sqlite_wall_ms", round(statistics.median(walls), 0), "ms", {"min": round(min(walls), 0)}
