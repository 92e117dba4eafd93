"""Rewind on VictoriaMetrics: the same backfilled fixture judged alike on Prometheus and on VictoriaMetrics.

Both stores get the very same samples (:mod:`tests.fixtures.backfill`): Prometheus as TSDB
blocks built by ``promtool tsdb create-blocks-from openmetrics``, VictoriaMetrics through its
``/api/v1/import``. The status judgement runs unchanged against each, through the config and
the wiring a user has, and must give the verdicts the fixture was built to produce.

VictoriaMetrics is reached through a small loopback gateway that, like a multi-tenant store's,
refuses a request without the tenant's ``X-Scope-OrgID`` and records the headers it was sent.
"""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from console.adapters.prometheus import PrometheusMetrics
from console.adapters.prometheus_readiness import PrometheusReadiness
from console.config import Config, parse_config
from console.domain.errors import MetricsError
from console.domain.status import status_document
from console.sandbox.manager import free_port
from console.sandbox.processes import ProcessRecord, start, stop
from console.sandbox.templates import sandbox_metrics
from console.services.status import StatusService
from console.wiring import build_metrics
from tests.fixtures import backfill
from tests.fixtures.fakes import FakeRegistry, FakeRouter
from tests.fixtures.servers import http_ok, require_binary, wait_for

TENANT = "team-a"
TENANT_KEY_ENV = "REWIND_TEST_TENANT_KEY"
TENANT_KEY = "tenant-key-5c1f0e"


class TenantGateway:
    """Forwards to VictoriaMetrics only the requests of one tenant; records every request's headers."""

    def __init__(self, upstream: str, tenant: str) -> None:
        self.seen: list[httpx.Headers] = []
        gateway = self
        client = httpx.Client(base_url=upstream, timeout=10)

        class Handler(http.server.BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                gateway.seen.append(httpx.Headers(list(self.headers.items())))
                if self.headers.get("X-Scope-OrgID") != tenant:
                    status, content, kind = 401, b'{"status":"error","errorType":"unauthorized",' \
                                                 b'"error":"no such tenant"}', "application/json"
                else:
                    answer = client.request(self.command, self.path, content=body,
                                            headers={"Content-Type": self.headers.get("Content-Type", "")})
                    status, content = answer.status_code, answer.content
                    kind = answer.headers.get("Content-Type", "application/json")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = _forward  # http.server dispatches on do_<METHOD>

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._client = client
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


@dataclass
class Stores:
    prometheus: str
    victoria: str  # run as the README advises (-search.latencyOffset=0s), behind the tenant gateway
    victoria_default: str  # VictoriaMetrics' own defaults, reached directly
    gateway: TenantGateway
    series: list[backfill.Series]


def _wait_ready(record: ProcessRecord, url: str, what: str) -> None:
    def ready() -> bool:
        if not record.alive():
            pytest.fail(f"{what} exited: {Path(record.log).read_text()[-2000:]}", pytrace=False)
        return http_ok(url)

    wait_for(ready, 30, f"{what} to answer {url}")


def _series_count(url: str) -> int:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": f'count({{model="{backfill.MODEL}"}})'}, timeout=5)
    result = answer.json()["data"]["result"]
    return int(result[0]["value"][1]) if result else 0


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Iterator[Stores]:
    promtool = require_binary("promtool", "prometheus")
    prometheus_bin = require_binary("prometheus", "prometheus")
    victoria_bin = require_binary("victoria-metrics", "victoria-metrics")
    root = tmp_path_factory.mktemp("stores")
    series = backfill.build(time.time())
    (root / "fixture.om").write_text(backfill.openmetrics(series))
    blocks = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(root / "fixture.om"),
         str(root / "prometheus-data")], capture_output=True, text=True, check=False)
    assert blocks.returncode == 0, blocks.stderr
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    ports = {"prometheus": free_port(), "victoria": free_port(), "victoria_default": free_port()}
    records = [start("prometheus", [
        prometheus_bin, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--log.level=warn",
    ], root / "prometheus.log", root)]
    for name, flags in (("victoria", ["-search.latencyOffset=0s"]), ("victoria_default", [])):
        records.append(start(name, [
            victoria_bin, f"-storageDataPath={root / name}", f"-httpListenAddr=127.0.0.1:{ports[name]}",
            "-retentionPeriod=100y", "-loggerLevel=WARN", *flags,
        ], root / f"{name}.log", root))
    gateway = None
    try:
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        _wait_ready(records[0], f"{urls['prometheus']}/-/ready", "Prometheus")
        lines = ("\n".join(backfill.vm_import_lines(series)) + "\n").encode()
        for record, name in zip(records[1:], ("victoria", "victoria_default"), strict=True):
            _wait_ready(record, f"{urls[name]}/health", "VictoriaMetrics")
            assert httpx.post(f"{urls[name]}/api/v1/import", content=lines, timeout=10).status_code == 204
            httpx.get(f"{urls[name]}/internal/force_flush", timeout=10)  # make the import searchable now
        for name, url in urls.items():
            wait_for(lambda url=url: _series_count(url) == len(series), 15, f"{name} to hold all {len(series)} series")
        gateway = TenantGateway(urls["victoria"], TENANT)
        yield Stores(urls["prometheus"], gateway.url, urls["victoria_default"], gateway, series)
    finally:
        if gateway is not None:
            gateway.stop()
        for record in records:
            stop(record)


def config_for(url: str, **metrics: object) -> Config:
    section = {**sandbox_metrics(9090), "url": url, **metrics}
    return parse_config({"registry": {"tracking_uri": "sqlite:////nonexistent/mlflow.db"},
                         "router": {"socket": "/nonexistent.sock", "backends": {backfill.MODEL: "be"}},
                         "metrics": section}, "test", environ={})


def verdicts(config: Config) -> dict[tuple[str, str, str], dict]:
    """Every cell of the status document (``rewind status --json``) by (metric, version, segment)."""
    registry, router = FakeRegistry(), FakeRouter()
    registry.aliases = {"champion": backfill.STABLE, "challenger": backfill.CHALLENGER}
    router.weights = {"1": 0, backfill.STABLE: 90, backfill.CHALLENGER: 10}
    metrics = build_metrics(config)
    service = StatusService(registry, router, metrics, config.metrics.specs(), config.metrics.traffic_metric,
                            config.metrics.stable_alias)
    try:
        document = status_document(service.snapshot(backfill.MODEL))
    finally:
        service.close()
        metrics.close()
    assert all(m["error"] is None for m in document["metrics"]), document["metrics"]
    return {(c["metric"], c["version"], c["segment"]): c for c in document["cells"]}


def tenant_config(url: str) -> Config:
    return config_for(url, headers={"X-Scope-OrgID": TENANT}, headers_env={"X-Api-Key": TENANT_KEY_ENV})


def test_the_same_fixture_gives_the_same_verdicts_on_prometheus_and_victoriametrics(stores, monkeypatch):
    monkeypatch.setenv(TENANT_KEY_ENV, TENANT_KEY)
    on_prometheus = verdicts(config_for(stores.prometheus))
    on_victoria = verdicts(tenant_config(stores.victoria))
    on_victoria_default = verdicts(config_for(stores.victoria_default))

    states = {key: cell["state"] for key, cell in on_prometheus.items()}
    assert {key: cell["state"] for key, cell in on_victoria.items()} == states
    assert {key: cell["state"] for key, cell in on_victoria_default.items()} == states
    # ...and they are the verdicts the fixture was built for, not the same mistake twice.
    assert {key for key, state in states.items() if state == "breach"} == backfill.EXPECTED_BREACHES
    assert {key: states.get(key) for key in backfill.EXPECTED_STATES} == backfill.EXPECTED_STATES
    # The numbers behind them agree too where every step serves the same: rate() and increase(),
    # histogram_quantile's interpolation, and the counts across the challenger's restart.
    for key, cell in on_prometheus.items():
        if key[2] == "uneven":
            continue
        for other in (on_victoria[key], on_victoria_default[key]):
            for field in ("value", "baseline", "numerator", "denominator"):
                if isinstance(cell.get(field), float):
                    assert other.get(field) == pytest.approx(cell[field], rel=1e-9), (key, field)
                else:
                    assert other.get(field) == cell.get(field), (key, field)
    assert on_prometheus[("error_rate", backfill.CHALLENGER, "restart")]["denominator"] == 120
    # Uneven traffic: a minute holds 120 requests. VictoriaMetrics' increase() counts from the sample before
    # the window, so it says 120; Prometheus' extrapolates the samples inside it to the window's edges (3 of
    # the 4 steps, 20+40+20 or 40+20+40, scaled up), so it reads up to a sixth off either way.
    uneven = ("error_rate", backfill.CHALLENGER, "uneven")
    assert on_victoria[uneven]["denominator"] == on_victoria_default[uneven]["denominator"] == 120
    assert 100 <= on_prometheus[uneven]["denominator"] <= 140


def test_every_request_carries_the_tenant_headers_and_a_wrong_tenant_is_named(stores, monkeypatch):
    monkeypatch.setenv(TENANT_KEY_ENV, TENANT_KEY)
    stores.gateway.seen.clear()
    metrics = build_metrics(tenant_config(stores.victoria))
    try:
        results = metrics.evaluate(tenant_config(stores.victoria).metrics.specs(), backfill.MODEL)
        readiness = PrometheusReadiness(metrics, 'rewind_requests_total{model="$model",outcome="ok"}')
        asked_at, newest = readiness.newest_samples(backfill.MODEL) or (0.0, {})
        rules = readiness.alert_rules()  # VictoriaMetrics' own answer is empty: alerting rules live in vmalert
        with pytest.raises(MetricsError, match="does not serve /api/v1/alertmanagers"):
            readiness.alertmanagers()
    finally:
        metrics.close()
    assert all(r.error is None for r in results.values())
    assert len(newest) == len({(s.labels["version"], s.labels["segment"]) for s in stores.series})
    assert rules == []
    assert len(stores.gateway.seen) == len(results) + 3
    assert {(h["X-Scope-OrgID"], h["X-Api-Key"]) for h in stores.gateway.seen} == {(TENANT, TENANT_KEY)}

    wrong = build_metrics(config_for(stores.victoria, headers={"X-Scope-OrgID": "team-b"}))
    try:
        with pytest.raises(MetricsError, match=r"credentials \(HTTP 401, metrics.auth or metrics.headers\)"):
            wrong.evaluate(config_for(stores.victoria).metrics.specs(), backfill.MODEL)
    finally:
        wrong.close()


def test_victoriametrics_reads_now_30_seconds_late_unless_told_otherwise(stores):
    """By default VictoriaMetrics answers a query for "now" from data 30 s old (-search.latencyOffset).

    It caps a query's time at its own clock minus the offset. Asked 2 s in the past, so that the clock it
    keeps in whole seconds does not matter, -search.latencyOffset=0s reads what Prometheus reads.
    """
    at = time.time() - 2
    promql = f'max(timestamp(rewind_requests_total{{model="{backfill.MODEL}"}}))'
    newest, asked = {}, {}
    for name, url in (("prometheus", stores.prometheus), ("tuned", stores.victoria),
                      ("default", stores.victoria_default)):
        source = PrometheusMetrics(url, "1m", headers={"X-Scope-OrgID": TENANT})
        try:
            before = time.time()
            status, content = source._fetch(promql, at)
            asked[name] = (before, time.time())
            data, error = source._answer_data(status, content)
        finally:
            source.close()
        assert error is None, error
        newest[name] = float(data["result"][0]["value"][1])
    grid = int(at // backfill.STEP_S) * backfill.STEP_S
    assert newest["prometheus"] == newest["tuned"] == grid
    before, after = asked["default"]
    assert newest["default"] <= after - 30  # nothing from the last 30 s...
    assert newest["default"] > before - 30 - backfill.STEP_S - 1  # ...but the newest sample before them
