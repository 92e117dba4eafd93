"""The sandbox's own promises: up is idempotent, status reports it all, down leaves nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from console.sandbox.manager import Sandbox
from tests.fixtures.servers import http_ok, require_binary, run_cli


def processes_mentioning(text: str) -> list[int]:
    """Pids of every process whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_up_twice_status_and_down(tmp_path):
    require_binary("haproxy", "haproxy")
    require_binary("prometheus", "prometheus")
    require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    state_dir = tmp_path / "box"
    up = run_cli("sandbox", "up", "--dir", str(state_dir), timeout=180)
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == str(state_dir / "rewind.yaml")

        status = run_cli("sandbox", "status", "--json", "--dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["running"] and doc["model"] == "fraud-detector"
        assert doc["versions"] == ["1", "2", "3"]
        assert doc["aliases"] == {"champion": "2", "challenger": "3", "fallback": "4"}
        assert doc["weights"] == {"1": 0, "2": 90, "3": 10}
        assert doc["config"] == str(state_dir / "rewind.yaml")
        assert set(doc["pids"]) == {"model-v1", "model-v2", "model-v3", "fallback", "haproxy", "prometheus",
                                    "alertmanager", "traffic"}
        assert http_ok(doc["endpoints"]["prometheus"] + "/-/ready")
        assert http_ok(doc["endpoints"]["alertmanager"] + "/-/ready")
        assert http_ok(doc["endpoints"]["router_metrics"])
        for url in doc["endpoints"]["model_servers"].values():
            assert http_ok(url + "/health")
        for endpoint in (doc["endpoints"]["prometheus"], doc["endpoints"]["router_frontend"],
                         doc["endpoints"]["alertmanager"], doc["endpoints"]["alerts_webhook"]):
            assert endpoint.startswith("http://127.0.0.1:")

        again = run_cli("sandbox", "up", "--dir", str(state_dir), timeout=60)
        assert again.returncode == 0 and "already running" in again.stderr
        assert json.loads(run_cli("sandbox", "status", "--json", "--dir", str(state_dir)).stdout)["pids"] == doc["pids"]
        assert sorted(processes_mentioning(str(state_dir))) == sorted(doc["pids"].values())
    finally:
        down = run_cli("sandbox", "down", "--dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert processes_mentioning(str(state_dir)) == []
    for pid in doc["pids"].values():
        assert not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes().split(b")")[1][:3]
    stopped = run_cli("sandbox", "status", "--json", "--dir", str(state_dir))
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["running"] is False


def test_down_only_stops_what_it_started(tmp_path):
    """A recorded pid now used by another process is left alone."""
    import subprocess

    bystander = subprocess.Popen(["sleep", "30"])
    try:
        box = Sandbox(tmp_path)
        tmp_path.mkdir(exist_ok=True)
        (tmp_path / "state.json").write_text(json.dumps({
            "processes": [{"name": "ghost", "pid": bystander.pid, "start_ticks": 1, "argv": ["x"], "log": "x"}],
        }))
        assert box.down() == ["ghost"]  # counted as gone: the pid is not the process it recorded
        assert bystander.poll() is None, "the unrelated process must still run"
    finally:
        bystander.kill()
        bystander.wait()


def test_scenario_on_a_stopped_sandbox_is_a_clear_error(tmp_path):
    completed = run_cli("sandbox", "scenario", "regression", "--dir", str(tmp_path))
    assert completed.returncode == 1
    assert "not running" in completed.stderr and "rewind sandbox up" in completed.stderr
    assert completed.stderr.count("\n") == 1
