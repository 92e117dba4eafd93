"""Issue 17's readiness on the real sandbox: a drill, then READY, then each real fault flips exactly its own condition.

The faults are real: v1's artifacts moved away (MLflow still lists v1), v1's server
killed (HAProxy's deep check fails), a serving version's scrape target removed from
Prometheus and Prometheus reloaded, the rules file removed and Prometheus reloaded,
the owner blanked in the config. Prometheus out of reach gives exit 2. Every fault is
put back before the next, and the conditions are read in process (the command line's
own output and exit code are checked once READY and once per exit code).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml

from console.config import load_config
from console.domain.readiness import ALERTS, DEPLOYABLE, METRICS_FRESH, OWNER, RUNBOOK, Status
from console.wiring import build_readiness
from tests.fixtures.servers import run_cli, wait_for
from tests.integration.conftest import MODEL, START_WEIGHTS

ANSWERS = {"decide": {"option": "drain", "reason": "drill: v3 breaches in the sandbox"}}


@pytest.fixture
def readiness(sandbox_config, tmp_path):
    """A readiness service on the sandbox, with a journal of the test's own."""
    journal = f"sqlite:///{tmp_path / 'journal.db'}"
    service = build_readiness(load_config(sandbox_config, environ={"REWIND_JOURNAL__URL": journal}))
    yield service, journal
    service.rollback.journal.close()


def statuses(service) -> dict[str, Status]:
    return {c.type: c.status for c in service.check(MODEL).conditions}


def only(flipped: str, status: Status = Status.FALSE):
    """A check that ``flipped`` has ``status`` and every other condition is true."""
    def check(service) -> dict[str, Status] | None:
        now = statuses(service)
        wanted = {kind: status if kind == flipped else Status.TRUE for kind in now}
        return now if now == wanted else None
    return check


def wait_only(service, flipped: str, timeout: float, what: str) -> None:
    """Poll until only ``flipped`` is false; on timeout, fail naming every condition that is not true."""
    deadline = time.monotonic() + timeout
    while True:
        report = service.check(MODEL)
        now = {c.type: c.status for c in report.conditions}
        if now == {kind: Status.FALSE if kind == flipped else Status.TRUE for kind in now}:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}: " + "; ".join(
                f"{c.type} {c.status.value} {c.reason}: {c.message}" for c in report.conditions
                if c.status is not Status.TRUE), pytrace=False)
        time.sleep(1)


def reload_prometheus(sandbox) -> None:
    answer = httpx.post(f"http://127.0.0.1:{sandbox.load_state()['ports']['prometheus']}/-/reload", timeout=10)
    assert answer.status_code == 200, answer.text


def test_a_drill_makes_the_sandbox_ready_and_each_fault_flips_its_own_condition(sandbox, sandbox_config, systems,
                                                                                 readiness, tmp_path):
    service, journal = readiness
    router, registry = systems
    env = {"REWIND_JOURNAL__URL": journal, "REWIND_ROLLBACK__VERIFY_WINDOW_S": "5",
           "REWIND_ROLLBACK__POLL_INTERVAL_S": "0.5"}
    assert statuses(service)[RUNBOOK] is Status.FALSE  # never drilled: not ready

    # The drill: the regression injected, detected, drained by the playbook, verified, then put back.
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(ANSWERS))
    drilled = run_cli("drill", "canary-regression", "--config", sandbox_config, "--scenario", "regression",
                      "--answers", str(answers), "--yes", env=env, timeout=400)
    assert drilled.returncode == 0, drilled.stdout + drilled.stderr
    assert "ended rolled_back" in drilled.stdout and "restore: undid act-" in drilled.stdout
    assert router.read_state(MODEL).weights() == START_WEIGHTS  # put back
    assert registry.get_aliases(MODEL).version_of("challenger") == "3"

    ready = run_cli("ready", "--json", "--config", sandbox_config, env=env)
    doc = json.loads(ready.stdout)
    assert ready.returncode == 0, json.dumps(doc, indent=1)
    assert doc["schema"] == "rewind.readiness/1" and doc["ready"] is True
    [report] = doc["models"]
    assert report["verdict"] == "READY" and all(c["status"] == "true" for c in report["conditions"])
    runbook = next(c for c in report["conditions"] if c["type"] == RUNBOOK)
    assert runbook["reason"] == "Drilled" and runbook["measured"]["time_to_verified_s"] < 600

    # v1's artifacts gone: MLflow still lists v1, and its server still answers from memory.
    artifacts = Path(registry.client.get_model_version_download_uri(MODEL, "1").removeprefix("file://"))
    aside = artifacts.with_name(artifacts.name + ".moved")
    artifacts.rename(aside)
    try:
        wait_only(service, DEPLOYABLE, 30, "only PreviousVersionDeployable false")
    finally:
        aside.rename(artifacts)
    [deployable] = [c for c in service.check(MODEL).conditions if c.type == DEPLOYABLE]
    assert deployable.status is Status.TRUE, deployable

    # v1's server killed: HAProxy's deep check (a real prediction) fails.
    sandbox.set_scenario("champion-down", version="1")
    try:
        wait_only(service, DEPLOYABLE, 30, "only PreviousVersionDeployable false with v1 down")
        [down] = [c for c in service.check(MODEL).conditions if c.type == DEPLOYABLE]
        assert down.reason == "ServerNotAnswering", down
    finally:
        sandbox.set_scenario("healthy")  # starts v1's server again
    wait_for(lambda: statuses(service)[DEPLOYABLE] is Status.TRUE, 30, "v1's server to answer again", interval=1)

    # A serving version's scrape target gone from Prometheus.
    prometheus_yml = sandbox.dir / "prometheus.yml"
    original = prometheus_yml.read_text()
    v3_port = sandbox.load_state()["ports"]["models"]["3"]
    assert f"127.0.0.1:{v3_port}" in original
    prometheus_yml.write_text(_without_target(original, f"127.0.0.1:{v3_port}"))
    reload_prometheus(sandbox)
    try:
        wait_only(service, METRICS_FRESH, 60, "only SegmentMetricsFresh false")
    finally:
        prometheus_yml.write_text(original)
        reload_prometheus(sandbox)
    wait_for(lambda: statuses(service)[METRICS_FRESH] is Status.TRUE, 60, "v3's series fresh again", interval=1)

    # The rules file removed, Prometheus reloaded.
    rules = sandbox.dir / "rules.yml"
    shutil.move(rules, rules.with_suffix(".moved"))
    reload_prometheus(sandbox)
    try:
        wait_only(service, ALERTS, 30, "only AlertsCoverMetrics false")
    finally:
        shutil.move(rules.with_suffix(".moved"), rules)
        reload_prometheus(sandbox)
    wait_for(lambda: statuses(service)[ALERTS] is Status.TRUE, 30, "the rules back", interval=1)

    # The owner blanked in the config.
    config = yaml.safe_load(Path(sandbox_config).read_text())
    config["owners"][MODEL]["name"] = ""
    blanked = tmp_path / "blank-owner.yaml"
    blanked.write_text(yaml.safe_dump(config))
    no_owner = build_readiness(load_config(str(blanked), environ={"REWIND_JOURNAL__URL": journal}))
    try:
        assert only(OWNER)(no_owner), statuses(no_owner)
    finally:
        no_owner.rollback.journal.close()
    not_ready = run_cli("ready", "--config", str(blanked), env=env)
    assert not_ready.returncode == 1 and "NOT READY (" in not_ready.stdout, not_ready.stdout + not_ready.stderr
    assert "OwnerUnnamed" in not_ready.stdout

    # Prometheus out of reach: freshness and alerts cannot be measured, never a pass: exit 2.
    config = yaml.safe_load(Path(sandbox_config).read_text())
    config["metrics"]["url"] = "http://127.0.0.1:9"
    unreachable = tmp_path / "no-prometheus.yaml"
    unreachable.write_text(yaml.safe_dump(config))
    unknown = run_cli("ready", "--json", "--config", str(unreachable), env=env)
    doc = json.loads(unknown.stdout)
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    states = {c["type"]: c["status"] for c in doc["models"][0]["conditions"]}
    assert states[METRICS_FRESH] == "unknown" and states[ALERTS] == "unknown"
    assert "false" not in states.values(), states


def _without_target(prometheus_yml: str, target: str) -> str:
    """The Prometheus config without one scrape target."""
    config = yaml.safe_load(prometheus_yml)
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            static["targets"] = [t for t in static["targets"] if t != target]
    return yaml.safe_dump(config)
