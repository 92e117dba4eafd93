"""Bad input against the real systems: one clear line naming the system or setting, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.sandbox.manager import free_port
from tests.fixtures.servers import run_cli


@pytest.mark.parametrize(
    ("env", "args", "code", "expected"),
    [
        ({"REWIND_METRICS__URL": "http://127.0.0.1:{port}"}, [], 1,
         "Prometheus at http://127.0.0.1:{port}: unreachable"),
        ({"REWIND_ROUTER__SOCKET": "/nonexistent/haproxy.sock"}, [], 1, "HAProxy at /nonexistent/haproxy.sock"),
        ({"REWIND_ROUTER__SOCKET": "127.0.0.1:{port}"}, [], 1, "connection refused"),
        ({"REWIND_ROUTER__BACKENDS__FRAUD-DETECTOR": "be_nope"}, [], 1, "backend 'be_nope'"),
        ({"REWIND_REGISTRY__TRACKING_URI": "sqlite:////nonexistent/mlflow.db"}, [], 1, "no database at /nonexistent"),
        ({"REWIND_REGISTRY__TRACKING_URI": "sqlite:///{dir}/haproxy.cfg"}, [], 1,
         "MLflow registry at sqlite:///{dir}/haproxy.cfg: open the registry failed: file is not a database"),
        ({"REWIND_REGISTRY__TRACKING_URI": "http://127.0.0.1:{port}", "REWIND_REGISTRY__MAX_RETRIES": "0"}, [], 1,
         "MLflow registry at http://127.0.0.1:{port}: unreachable"),
        ({}, ["--model", "no-such-model"], 1, "no-such-model"),
        ({"REWIND_METRICS__WINDOW": "five minutes"}, [], 2, "metrics.window"),
        ({"REWIND_METRICS__AUTH__BEARER_TOKEN_ENV": "REWIND_TEST_UNSET_TOKEN"}, [], 2, "REWIND_TEST_UNSET_TOKEN"),
    ],
    ids=["prometheus-down", "haproxy-no-socket", "haproxy-refused", "unknown-backend", "mlflow-no-db",
         "mlflow-not-a-db",
         "mlflow-down", "unknown-model", "bad-window", "unset-token"],
)
def test_status_fails_with_one_line(sandbox_config, env, args, code, expected):
    port, where = str(free_port()), str(Path(sandbox_config).parent)

    def fill(text: str) -> str:
        return text.replace("{port}", port).replace("{dir}", where)

    env = {k: fill(v) for k, v in env.items()}
    completed = run_cli("status", "--config", sandbox_config, *args, env=env, timeout=90)
    assert completed.returncode == code, completed.stderr
    assert fill(expected) in completed.stderr
    assert completed.stderr.startswith("rewind: ")
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert "Traceback" not in completed.stderr
