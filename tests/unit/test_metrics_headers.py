"""Extra metrics headers (a multi-tenant store's ``X-Scope-OrgID``): config, secrets, and what is sent."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from console.adapters.prometheus import PrometheusMetrics, read_headers
from console.adapters.prometheus_readiness import PrometheusReadiness
from console.config import load_config, load_journal_settings
from console.domain.errors import ConfigError, MetricsError
from console.domain.metrics import Direction, MetricSpec, Unit
from console.wiring import build_metrics, known_secrets

GOOD = {
    "registry": {"tracking_uri": "sqlite:////tmp/x.db"},
    "router": {"socket": "/tmp/h.sock", "backends": {"m": "be_m"}},
    "metrics": {
        "url": "http://127.0.0.1:9090",
        "catalogue": [{"name": "rate", "title": "req/s", "unit": "per_second", "query": 'x{model="$model"}'}],
    },
}


def write(tmp_path, **metrics) -> str:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["metrics"].update(metrics)
    path = tmp_path / "rewind.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_literal_env_and_file_headers_load_and_env_overrides_keep_one_spelling(tmp_path):
    path = write(tmp_path, headers={"X-Scope-OrgID": "team-a"}, headers_env={"X-Api-Key": "VM_KEY"},
                 headers_file={"X-Tenant-Token": "/run/secrets/tenant"})
    config = load_config(path, environ={"REWIND_METRICS__HEADERS__X-SCOPE-ORGID": "team-b"}).config
    assert config.metrics.headers == {"x-scope-orgid": "team-b"}  # one header, the override's
    assert [(s.setting, s.env, s.file) for s in config.outbound_secrets()] == [
        ("metrics.headers_env.X-Api-Key", "VM_KEY", None),
        ("metrics.headers_file.X-Tenant-Token", None, "/run/secrets/tenant")]


@pytest.mark.parametrize(("metrics", "message"), [
    ({"headers": {"Authorization": "Bearer abc"}}, "metrics.headers: credentials never live in the config"),
    ({"headers": {"X Scope": "a"}}, "'X Scope' is not an HTTP header name"),
    ({"headers": {"Host": "a"}}, "Host is set by Rewind itself"),
    ({"headers": {"X-Scope-OrgID": "a\nX-Evil: 1"}}, "X-Scope-OrgID: the setting holds a control character"),
    ({"headers_env": {"X-Key": "not a name"}}, "'not a name' is not an environment variable name"),
    ({"headers": {"X-Scope-OrgID": "a"}, "headers_file": {"x-scope-orgid": "/f"}},
     "header x-scope-orgid is given by both headers and headers_file"),
    ({"headers_env": {"Authorization": "TOKEN"}, "auth": {"bearer_token_env": "OTHER"}},
     "the Authorization header and metrics.auth both set the credentials"),
])
def test_bad_headers_are_named(tmp_path, metrics, message):
    with pytest.raises(ConfigError, match="metrics") as error:
        load_config(write(tmp_path, **metrics), environ={})
    assert message in str(error.value)
    assert "abc" not in str(error.value)


def test_secret_values_come_from_env_or_files_and_are_never_in_errors(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret-file\n")
    assert read_headers({"X-Scope-OrgID": "team-a"}, {"X-Api-Key": "KEY"}, {"X-Token": str(secret)},
                        environ={"KEY": " s3cret-env "}) == {
        "X-Scope-OrgID": "team-a", "X-Api-Key": "s3cret-env", "X-Token": "s3cret-file"}
    with pytest.raises(ConfigError, match=r"^metrics.headers_env.X-Api-Key names KEY, which is not set$"):
        read_headers({}, {"X-Api-Key": "KEY"}, {}, environ={})
    with pytest.raises(ConfigError, match=r"^metrics.headers_file.X-Token: /nope cannot be read"):
        read_headers({}, {}, {"X-Token": "/nope"}, environ={})
    secret.write_text("line one\nline two")
    with pytest.raises(ConfigError) as error:
        read_headers({}, {}, {"X-Token": str(secret)}, environ={})
    assert str(error.value) == "metrics.headers_file.X-Token: the value holds a line break or control character"


def test_the_journal_redacts_secret_header_values(tmp_path):
    path = write(tmp_path, headers={"X-Scope-OrgID": "team-a"}, headers_env={"X-Api-Key": "VM_KEY"})
    settings = load_journal_settings(path, environ={})
    assert [s.setting for s in settings.outbound] == ["metrics.headers_env.X-Api-Key"]
    assert "a-long-tenant-secret" in known_secrets(settings, {"VM_KEY": "a-long-tenant-secret"})


class _Recorder(BaseHTTPRequestHandler):
    """Answers every query with an empty vector and records the headers it was sent."""

    seen: list[dict[str, str]] = []
    status = 200

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
        status = self.status
        if self.path.startswith("/api/v1/rules"):
            body = b'{"status":"success","data":{"groups":[]}}'
        if self.path.startswith("/api/v1/alertmanagers"):  # as VictoriaMetrics answers it
            body, status = b'unsupported path requested: "/api/v1/alertmanagers"\n', 400
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.seen, _Recorder.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_query_and_every_readiness_read_carries_the_headers(tmp_path, recorder, monkeypatch):
    monkeypatch.setenv("VM_KEY", "key-from-env")
    config = load_config(write(tmp_path, url=recorder, headers={"X-Scope-OrgID": "team-a"},
                               headers_env={"X-Api-Key": "VM_KEY"}, auth={"bearer_token_env": "VM_KEY"}),
                         environ={}).config
    metrics = build_metrics(config)
    try:
        spec = MetricSpec("rate", "req/s", 'x{model="$model"}', Unit.PER_SECOND, Direction.HIGHER_IS_WORSE)
        metrics.evaluate((spec,), "m")
        readiness = PrometheusReadiness(metrics, 'x{model="$model"}')
        readiness.newest_samples("m")
        readiness.alert_rules()
    finally:
        metrics.close()
    assert len(_Recorder.seen) == 3
    for headers in _Recorder.seen:
        assert headers["x-scope-orgid"] == "team-a"
        assert headers["x-api-key"] == "key-from-env"
        assert headers["authorization"] == "Bearer key-from-env"
    assert "key-from-env" not in metrics.describe()


def test_a_refusal_names_the_headers_too(recorder):
    _Recorder.status = 401
    metrics = PrometheusMetrics(recorder, "1m", headers={"X-Scope-OrgID": "team-a"})
    spec = MetricSpec("rate", "req/s", 'x{model="$model"}', Unit.PER_SECOND, Direction.HIGHER_IS_WORSE)
    try:
        with pytest.raises(MetricsError, match=r"credentials \(HTTP 401, metrics.auth or metrics.headers\)"):
            metrics.evaluate((spec,), "m")
    finally:
        metrics.close()


def test_a_store_without_the_alertmanagers_endpoint_is_said_so(recorder):
    metrics = PrometheusMetrics(recorder, "1m")
    try:
        with pytest.raises(MetricsError, match=r"does not serve /api/v1/alertmanagers.*vmalert sends them"):
            PrometheusReadiness(metrics).alertmanagers()
    finally:
        metrics.close()
