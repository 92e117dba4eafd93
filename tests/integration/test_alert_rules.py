"""The sandbox pages: its alert rules in the real Prometheus, its real Alertmanager, and the files they read.

The shared sandbox's tests come first here (the file name sorts first): the outage's errors stay
in the one-minute window for a minute after it ends, and the tests that come next (bad input, the
console on a sandbox of its own) read nothing the window holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from console.config import load_config
from console.sandbox.processes import start, stop
from console.sandbox.scenarios import SEGMENTS
from console.sandbox.templates import sandbox_rules
from tests.fixtures.servers import require_binary, wait_for
from tests.integration.conftest import MODEL, START_ALIASES
from tests.integration.test_alerts_paging import alert_notes, serve_command, wait_serving

JUDGED = {"error_rate", "latency_p95", "accuracy", "score_mean"}


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.load(response)


def endpoints(sandbox) -> tuple[str, str]:
    ports = sandbox.load_state()["ports"]
    return f"http://127.0.0.1:{ports['prometheus']}", f"http://127.0.0.1:{ports['alertmanager']}"


def prometheus_alerts(prometheus: str) -> list[dict]:
    return get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]


def listening_addresses(pids: list[int]) -> set[str]:
    """Every TCP listening and UDP bound address of these processes, as ``/proc/net`` has them (hex)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().as_posix()
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and fields[9] in inodes:
                found.add(fields[1].rsplit(":", 1)[0])
    return found


def test_the_generated_files_pass_promtool_and_amtool_and_route_to_rewind(sandbox):
    amtool, promtool = require_binary("amtool", "prometheus-alertmanager"), require_binary("promtool", "prometheus")
    checked = subprocess.run([amtool, "check-config", str(sandbox.dir / "alertmanager.yml")],
                             capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    routed = subprocess.run([amtool, "config", "routes", "test", f"--config.file={sandbox.dir / 'alertmanager.yml'}",
                             "--verify.receivers=rewind", f"model={MODEL}", "rewind_metric=error_rate",
                             "severity=page"], capture_output=True, text=True, timeout=30, check=False)
    assert routed.returncode == 0 and routed.stdout.strip() == "rewind", routed.stdout + routed.stderr
    rules = subprocess.run([promtool, "check", "rules", str(sandbox.dir / "rules.yml")],
                           capture_output=True, text=True, timeout=30, check=False)
    assert rules.returncode == 0 and "SUCCESS: 4 rules found" in rules.stdout, rules.stdout + rules.stderr


def test_the_rules_judge_counts_in_prometheus_own_rule_tests(tmp_path):
    """promtool evaluates the rules on made-up counters: one error in three requests or in a thousand is no
    breach; an outage in a cell of 1.25 requests/s fires after the rule's 30 s, with its labels and annotations."""
    promtool = require_binary("promtool", "prometheus")
    (tmp_path / "rules.yml").write_text(sandbox_rules([MODEL], 9090))

    def series(version: str, outcome: str, values: str) -> dict:
        labels = f'model="{MODEL}",version="{version}",segment="eu-ios",outcome="{outcome}"'
        return {"series": f"rewind_requests_total{{{labels}}}", "values": values}

    outage = {"model": MODEL, "rewind_metric": "error_rate", "severity": "page", "version": "3", "segment": "eu-ios"}
    (tmp_path / "test.yml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yml"], "evaluation_interval": "1s",
        "tests": [{"interval": "1s", "input_series": [
            # v3: 1.25 requests/s (exact in binary: no counter reset by rounding), all failing from t = 60 s.
            series("3", "ok", "0+1.25x60 75+0x60"), series("3", "error", "0+0x60 1.25+1.25x59"),
            # v2: 12 requests/s and one error; v1: three requests, one of them failing.
            series("2", "ok", "0+12x120"), series("2", "error", "0+0x50 1+0x69"),
            series("1", "ok", "0+0x5 2+0x114"), series("1", "error", "0+0x5 1+0x114"),
        ], "alert_rule_test": [
            # Had v1's one error in three (at 5 s) or v2's (at 50 s) met the condition, they would fire by then.
            {"eval_time": "45s", "alertname": "RewindErrorRateBreach", "exp_alerts": []},
            {"eval_time": "90s", "alertname": "RewindErrorRateBreach", "exp_alerts": []},
            {"eval_time": "110s", "alertname": "RewindErrorRateBreach", "exp_alerts": [{
                "exp_labels": outage,
                "exp_annotations": {
                    "summary": f"{MODEL} v3: error rate 83.33% in eu-ios",
                    "description": "For 30s, over a 1m window: above 5.0% with 95% confidence on its requests, or "
                                   "3.0 pt above the version with most of the segment's traffic.",
                    "rewind_playbook": "version-outage"}}]},
        ]}],
    }))
    tested = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=30, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_healthy_sandbox_has_one_rule_per_judged_metric_and_pages_nobody(sandbox, sandbox_config):
    prometheus, alertmanager = endpoints(sandbox)
    config = load_config(sandbox_config, environ={}).config
    assert set(config.judged_metrics([])) == JUDGED
    (group,) = get(f"{prometheus}/api/v1/rules?type=alert")["data"]["groups"]
    assert group["file"] == str(sandbox.dir / "rules.yml")
    rules = {rule["labels"]["rewind_metric"]: rule for rule in group["rules"]}
    assert set(rules) == JUDGED and len(group["rules"]) == len(JUDGED)
    for rule in rules.values():
        assert rule["health"] == "ok" and rule["duration"] == 30, rule
        assert rule["labels"]["model"] == MODEL and rule["labels"]["severity"] in ("page", "ticket")
        assert {"summary", "description", "rewind_playbook"} <= set(rule["annotations"])
    assert rules["error_rate"]["labels"]["severity"] == "page"
    assert rules["error_rate"]["annotations"]["rewind_playbook"] == "version-outage"
    # Prometheus sends to the sandbox's Alertmanager, which the config the sandbox wrote names.
    active = get(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [f"{alertmanager}/api/v2/alerts"]
    assert config.alerts.alertmanager_url == alertmanager
    assert config.alerts.listen == f"127.0.0.1:{sandbox.load_state()['ports']['alerts']}"
    receiver = yaml.safe_load((sandbox.dir / "alertmanager.yml").read_text())["receivers"][0]
    assert receiver["webhook_configs"][0]["url"] == f"http://{config.alerts.listen}/alerts"
    assert config.owners[MODEL].oncall in config.notify.webhooks
    # Nothing pages: no alert fires in Prometheus, Alertmanager holds none.
    assert [a for a in prometheus_alerts(prometheus) if a["state"] == "firing"] == []
    assert get(f"{alertmanager}/api/v2/alerts") == []
    # Every process of the sandbox listens on loopback only (Alertmanager's clustering would take 0.0.0.0:9094).
    assert listening_addresses([record.pid for record in sandbox.records()]) == {"0100007F"}


def test_outage_pages_rewind_through_prometheus_and_alertmanager(sandbox, systems, tmp_path):
    """The outage fires the challenger's error-rate rule; Alertmanager posts it to ``rewind alerts serve``, which
    opens the incident with version-outage suggested (alert_page_to_playbook_s: the switch to the journal)."""
    prometheus, alertmanager = endpoints(sandbox)
    challenger = START_ALIASES["challenger"]
    port = sandbox.load_state()["ports"]["alerts"]
    journal = tmp_path / "journal.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}
    env["REWIND_JOURNAL__URL"] = f"sqlite:///{journal}"  # the shared sandbox's journal stays the other tests'
    log = tmp_path / "serve.log"
    server = start("alerts-serve", serve_command(sandbox.config_path, f"127.0.0.1:{port}"), log, tmp_path, env)
    try:
        wait_serving(f"http://127.0.0.1:{port}", server, log)
        started = time.monotonic()
        assert sandbox.set_scenario("outage")["target_version"] == challenger
        paged_s = _outage_paged(prometheus, alertmanager, challenger, started)

        def suggested() -> list[dict]:
            return [n for _, n in alert_notes(journal, MODEL) if n["alert"].get("suggestion", {}).get("playbook")
                    == "version-outage" and n["alert"]["alertname"] == "RewindErrorRateBreach"]

        notes = wait_for(suggested, 60, "the outage's alert journaled with version-outage suggested", interval=0.5)
        elapsed = time.monotonic() - started
    finally:
        stop(server)
    alert = notes[0]["alert"]
    assert alert["model"] == MODEL and alert["version"] == challenger and alert["status"] == "firing"
    assert alert["suggestion"]["why"] == "the alert's rewind_playbook annotation names version-outage"
    print(f"outage: in Alertmanager {paged_s:.1f} s after the switch; alert_page_to_playbook_s {elapsed:.1f}")
    assert elapsed <= 30 + 10 + 15, f"paged {elapsed:.0f}s after the outage began (rule for 30s)"


def _outage_paged(prometheus: str, alertmanager: str, challenger: str, started: float) -> float:
    """Seconds from ``started`` until the challenger's error-rate alert fired in Prometheus and reached
    Alertmanager, with the right labels, only the challenger paging."""

    def firing() -> list[dict]:
        return [a for a in prometheus_alerts(prometheus)
                if a["state"] == "firing" and a["labels"]["alertname"] == "RewindErrorRateBreach"]

    fired = wait_for(firing, 75, "the challenger's error-rate alert to fire in Prometheus", interval=0.5)
    fired_s = time.monotonic() - started
    assert {a["labels"]["version"] for a in fired} == {challenger}
    # The champion, still healthy, pages nobody, not even pending.
    assert not [a for a in prometheus_alerts(prometheus) if a["labels"].get("version") != challenger]

    query = urllib.parse.urlencode({"filter": 'alertname="RewindErrorRateBreach"', "active": "true"})
    paged = wait_for(lambda: get(f"{alertmanager}/api/v2/alerts?{query}"), 15,
                     "Alertmanager to hold the alert Prometheus sent", interval=0.2)
    print(f"outage: firing in Prometheus {fired_s:.1f} s after the switch")
    for alert in paged:
        assert alert["status"]["state"] == "active" and alert["receivers"] == [{"name": "rewind"}]
        labels = alert["labels"]
        assert {k: labels[k] for k in ("model", "rewind_metric", "severity", "version")} == {
            "model": MODEL, "rewind_metric": "error_rate", "severity": "page", "version": challenger}
        assert labels["segment"] in SEGMENTS
        assert alert["annotations"]["rewind_playbook"] == "version-outage"
        assert alert["annotations"]["summary"].startswith(f"{MODEL} v{challenger}: error rate ")
    return time.monotonic() - started
