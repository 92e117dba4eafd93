"""Paging into Rewind through a real Alertmanager 0.25: ``rewind alerts serve`` as its own process.

- An Alertmanager of the test's own on loopback (clustering off, group_wait 1s, group_interval 5s,
  repeat_interval 1m) sends to the real command with a bearer token from a credentials file:
  two alerts open one incident with ``version-outage`` suggested, the group resent when one
  resolves adds only the resolution's note, and the incident stays open; a group truncated by
  ``max_alerts`` is read whole from Alertmanager's API.
- The sandbox's ``outage`` scenario paging Rewind for real (Prometheus' rule fires, the sandbox's
  Alertmanager posts, the incident opens with ``version-outage`` suggested) is in test_alert_rules.py,
  with the rule's own checks, so the outage runs once.
- The command stops cleanly on SIGTERM, and refuses a non-loopback address without a token.

Everything is polled, never slept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import yaml

from console.adapters.journal_sql import SqlJournal
from console.domain.journal import EventKind
from console.sandbox.manager import distinct_ports, free_port
from console.sandbox.processes import ProcessRecord, start, stop
from console.sandbox.templates import rewind_config
from tests.fixtures.servers import http_ok, require_binary, run_cli, wait_for

MODEL = "fraud-detector"
TOKEN = "it-alerts-token-5b8e1f0c2d"
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"


def _now(offset_s: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() + offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _alert(alertname: str, model: str, segment: str, starts_at: str, playbook: str,
           ends_at: str | None = None) -> dict:
    alert = {"labels": {"alertname": alertname, "model": model, "rewind_metric": "error_rate", "severity": "page",
                        "version": "3", "segment": segment},
             "annotations": {"summary": f"{model} v3 fails in {segment}", "rewind_playbook": playbook},
             "startsAt": starts_at, "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=x&g0.tab=1"}
    if ends_at:
        alert["endsAt"] = ends_at
    return alert


def alert_notes(journal_path: Path, model: str | None = None) -> list[tuple[str, dict]]:
    """Every journaled alert (incident id, payload), read from the journal the server writes."""
    journal = SqlJournal(f"sqlite:///{journal_path}")
    try:
        found = []
        for head in journal.incidents():
            for event in journal.events(head.incident_id, [EventKind.NOTE]):
                alert = event.payload.get("alert")
                if isinstance(alert, dict) and (model is None or alert.get("model") == model):
                    found.append((head.incident_id, dict(event.payload)))
        return found
    finally:
        journal.close()


def serve_command(config: Path, listen: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "console", "--config", str(config), "alerts", "serve", "--listen", listen]


def wait_serving(url: str, process: subprocess.Popen | ProcessRecord, log: Path) -> None:
    def up() -> bool:
        alive = process.poll() is None if isinstance(process, subprocess.Popen) else process.alive()
        if not alive:
            pytest.fail(f"rewind alerts serve exited: {log.read_text()[-2000:]}", pytrace=False)
        return http_ok(f"{url}/healthz")

    wait_for(up, 30, "rewind alerts serve to answer /healthz")


@dataclass
class Paging:
    directory: Path
    journal: Path
    alertmanager: str
    serve_log: Path

    def fire(self, *alerts: dict) -> None:
        answer = httpx.post(f"{self.alertmanager}/api/v2/alerts", json=list(alerts), timeout=5)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def paging(tmp_path_factory) -> Iterator[Paging]:
    """``rewind alerts serve`` with a token, and an Alertmanager of its own that pages it."""
    alertmanager_bin = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    directory = tmp_path_factory.mktemp("paging")
    token = directory / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    with distinct_ports() as port:
        serve_port, alertmanager_port, prometheus_port = port(), port(), port()
    alertmanager = f"http://127.0.0.1:{alertmanager_port}"
    config = yaml.safe_load(rewind_config(directory, MODEL, prometheus_port))
    config["journal"] = {"url": f"sqlite:///{directory / 'journal.db'}"}
    config["playbooks"] = {"dirs": [str(PLAYBOOKS)]}
    config["alerts"] = {"token_file": "token", "alertmanager_url": alertmanager}
    (directory / "rewind.yaml").write_text(yaml.safe_dump(config))
    webhook = {"url": f"http://127.0.0.1:{serve_port}/alerts", "send_resolved": True,
               "http_config": {"authorization": {"credentials_file": str(token)}}}
    (directory / "alertmanager.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "rewind", "group_by": ["alertname", "model", "version"], "group_wait": "1s",
                  "group_interval": "5s", "repeat_interval": "1m",
                  "routes": [{"matchers": ['alertname="RewindLatencyP95Breach"'], "receiver": "rewind-truncating"}]},
        "receivers": [{"name": "rewind", "webhook_configs": [webhook]},
                      {"name": "rewind-truncating", "webhook_configs": [{**webhook, "max_alerts": 1}]}],
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}
    serve_log = directory / "serve.log"
    server = start("alerts-serve", serve_command(directory / "rewind.yaml", f"127.0.0.1:{serve_port}"),
                   serve_log, directory, env)
    manager = None
    try:
        wait_serving(f"http://127.0.0.1:{serve_port}", server, serve_log)
        manager = start("alertmanager", [
            alertmanager_bin, f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory / 'alertmanager-data'}", f"--web.listen-address=127.0.0.1:{alertmanager_port}",
            f"--web.external-url={alertmanager}", "--cluster.listen-address=",
        ], directory / "alertmanager.log", directory)
        wait_for(lambda: http_ok(f"{alertmanager}/-/ready"), 30, "Alertmanager to be ready")
        yield Paging(directory, directory / "journal.db", alertmanager, serve_log)
    finally:
        if manager is not None:
            stop(manager)
        stop(server)


def test_alertmanager_opens_one_incident_and_a_resolution_leaves_it_open(paging):
    mobile = _alert("RewindErrorRateBreach", MODEL, "mobile", _now(-2), "version-outage")
    web = _alert("RewindErrorRateBreach", MODEL, "web", _now(-1), "version-outage")
    paging.fire(mobile, web)
    journaled = wait_for(lambda: (found := alert_notes(paging.journal, MODEL)) and len(found) == 2 and found,
                         20, "both alerts journaled")
    (incident_id,) = {incident for incident, _ in journaled}
    assert [(n["alert"]["segment"], n["alert"]["suggestion"]["playbook"]) for _, n in journaled] == [
        ("mobile", "version-outage"), ("web", "version-outage")]
    why = journaled[0][1]["alert"]["suggestion"]["why"]
    assert why == "the alert's rewind_playbook annotation names version-outage"

    paging.fire({**mobile, "endsAt": _now()})  # resolved: Alertmanager resends the group, web still firing
    resolved = wait_for(lambda: [n for _, n in alert_notes(paging.journal, MODEL)
                                 if n["alert"]["status"] == "resolved"], 20, "the resolution journaled")
    assert resolved[0]["alert"]["segment"] == "mobile" and "stays open" in resolved[0]["text"]
    assert len(alert_notes(paging.journal, MODEL)) == 3  # the resent firing alert added nothing
    assert "duplicate" in paging.serve_log.read_text()

    listed = run_cli("--config", str(paging.directory / "rewind.yaml"), "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout)["alerts"] if r["model"] == MODEL]
    assert [(r["incident"], r["segment"], r["status"]) for r in rows] == [
        (incident_id, "mobile", "resolved"), (incident_id, "web", "firing")]
    shown = run_cli("--config", str(paging.directory / "rewind.yaml"), "incident", "list", "--json")
    (incident,) = [i for i in json.loads(shown.stdout)["incidents"] if i["id"] == incident_id]
    assert incident["status"] == "open"


def test_a_group_truncated_by_max_alerts_is_read_whole_from_alertmanager(paging):
    model = "churn-model"
    paging.fire(*(_alert("RewindLatencyP95Breach", model, segment, _now(-1), "latency-spike")
                  for segment in ("mobile", "web")))
    journaled = wait_for(lambda: (found := alert_notes(paging.journal, model)) and len(found) == 2 and found,
                         20, "the sent alert and the one left out, both journaled")
    assert sorted(n["alert"]["segment"] for _, n in journaled) == ["mobile", "web"]
    (incident_id,) = {incident for incident, _ in journaled}
    journal = SqlJournal(f"sqlite:///{paging.journal}")
    try:
        truncation = [e.payload for e in journal.events(incident_id, [EventKind.NOTE])
                      if "alert_truncation" in e.payload]
    finally:
        journal.close()
    assert truncation and truncation[0]["alert_truncation"]["truncated_alerts"] == 1


def test_serve_stops_on_sigterm_and_refuses_an_open_address_without_a_token(tmp_path):
    config = yaml.safe_load(rewind_config(tmp_path, MODEL, free_port()))
    config["journal"] = {"url": f"sqlite:///{tmp_path / 'journal.db'}"}
    (tmp_path / "rewind.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}
    refused = run_cli("--config", str(tmp_path / "rewind.yaml"), "alerts", "serve", "--listen", "0.0.0.0:0")
    assert refused.returncode == 2 and "needs a bearer token" in refused.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(serve_command(tmp_path / "rewind.yaml", f"127.0.0.1:{port}"),
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_serving(f"http://127.0.0.1:{port}", process, log)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "SIGTERM: stopping" in log.read_text()
