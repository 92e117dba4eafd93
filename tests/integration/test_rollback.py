"""Rollbacks against the real sandbox: HAProxy weights, MLflow aliases, the journal, crashes, conflicts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from console.adapters.haproxy import HAProxyRouter
from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.config import load_config
from console.domain.errors import ConflictError, NotFoundError
from console.domain.journal import EventKind
from console.domain.verdicts import State
from console.sandbox.scenarios import REGRESSION_SEGMENTS
from console.sandbox.templates import backend_name
from console.wiring import build_rollback_service, build_status_service
from tests.fixtures.servers import run_cli, wait_for
from tests.integration.conftest import MODEL, START_ALIASES, START_WEIGHTS


@pytest.fixture
def journal_env(tmp_path):
    """A journal of the test's own, for the CLI and for in-process services."""
    return {"REWIND_JOURNAL__URL": f"sqlite:///{tmp_path / 'journal.db'}",
            "REWIND_ROLLBACK__VERIFY_WINDOW_S": "3", "REWIND_ROLLBACK__POLL_INTERVAL_S": "0.5"}


def events(env: dict, kinds=None) -> list:
    journal = SqlJournal(env["REWIND_JOURNAL__URL"])
    try:
        return [e for head in journal.incidents() for e in journal.events(head.incident_id, kinds)]
    finally:
        journal.close()


def incidents(env: dict) -> list:
    """Every incident's summary (id, status, event count), oldest first."""
    from console.domain.journal import Actor
    from console.services.journal import JournalService

    service = JournalService(SqlJournal(env["REWIND_JOURNAL__URL"]), Actor("test", "host"))
    try:
        return service.incidents()
    finally:
        service.close()


def close_incident(env: dict, incident_id: str) -> None:
    from console.domain.journal import Actor
    from console.services.journal import JournalService

    service = JournalService(SqlJournal(env["REWIND_JOURNAL__URL"]), Actor("test", "host"))
    try:
        service.close_incident(incident_id, "rolled back and undone")
    finally:
        service.close()


def action_events(env: dict, action_id: str) -> list[str]:
    return [e.kind.value for e in events(env) if e.payload.get("action_id") == action_id]


def served(router: HAProxyRouter) -> dict[str, int]:
    return router.served(MODEL)


def rollback(config: str, env: dict, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("rollback", "--config", config, "--yes", "--json", *extra, env=env, timeout=120)


def action_id_of(completed: subprocess.CompletedProcess) -> str:
    return json.loads(completed.stdout)["plan"]["action_id"]


def regression_breach(matrix) -> set:
    """The challenger's error and accuracy cells breaching where the regression is.

    Only these cells grow steadily worse once the scenario starts, and the judge calls
    them breaches only with confidence, so they still breach when the CLI evaluates a
    few seconds after this check.
    """
    return {(v, s, m) for v in ["3"] for s in REGRESSION_SEGMENTS for m in ["error_rate", "accuracy"]
            if matrix.state(m, v, s) is State.BREACH}


def test_a_regression_rollback_drains_the_challenger_and_moves_the_alias(sandbox, sandbox_config, systems,
                                                                         journal_env):
    router, registry = systems
    sandbox.set_scenario("regression")
    status = build_status_service(load_config(sandbox_config, environ={}).config)
    try:  # the responder sees the challenger breach, and the champion calm, before rolling back
        # (the rollback verifies that v2 passes everywhere: an earlier drift may still be in the window)
        wait_for(lambda: (matrix := status.snapshot(MODEL).matrix) and regression_breach(matrix)
                 and not [cell for cell in matrix.breaches() if cell.version == "2"],
                 90, "the challenger to breach while the champion passes")
    finally:
        status.close()
    completed = rollback(sandbox_config, journal_env, "--reason", "v3 errors in eu-android")
    assert completed.returncode == 0, completed.stderr
    action = action_id_of(completed)
    incident = json.loads(completed.stdout)["incident_id"]
    assert json.loads(completed.stdout)["incident_opened"] is True

    # HAProxy: v3 has weight 0, and traffic really stops reaching it.
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    first = served(router)
    wait_for(lambda: served(router)["2"] - first["2"] >= 100, 10, "v2 to serve 100 requests")
    assert served(router)["3"] == first["3"]
    # MLflow: the challenger alias is gone, asked through MLflow's own client.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=sandbox.load_state()["tracking_uri"])
    aliases = {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}
    assert aliases == {"champion": "2", "fallback": "4"}
    assert "rewind.left_by" in client.get_model_version(MODEL, "3").tags
    # The journal: decision, intent, applied, verified, in that order.
    assert action_events(journal_env, action) == ["decision", "action.intent", "action.applied", "action.verified"]
    # The decision carries its evidence: the catalogue's checks, with the challenger breaching.
    checks = events(journal_env, [EventKind.CHECK_EVALUATED])
    assert {c.payload["metric"] for c in checks} >= {"error_rate", "accuracy"}
    breached = {(c.payload["metric"], v["version"], v["segment"]) for c in checks for v in c.payload["values"]
                if v["verdict"] == "breach"}
    assert {(m, "3", s) for m in ("error_rate", "accuracy") for s in REGRESSION_SEGMENTS} & breached, \
        [(c.payload["metric"], c.payload["error"], c.payload["values"]) for c in checks]

    # The same command again changes nothing, says so, and asks for nothing: no --yes from a script.
    # It opens no second incident: it joins the open one, noting itself there once.
    [opened] = incidents(journal_env)
    rerun = run_cli("rollback", "--config", sandbox_config, "--json", "--no-verify", env=journal_env)
    assert rerun.returncode == 0, rerun.stderr
    document = json.loads(rerun.stdout)
    [outcome] = document["outcomes"]
    assert outcome["status"] == "already_applied" and action in outcome["message"]
    assert (document["incident_id"], document["incident_joined"]) == (incident, True)
    assert f"joining open incident {incident}" in " ".join(rerun.stderr.split())
    assert [(i.incident_id, i.events) for i in incidents(journal_env)] == [(incident, opened.events + 1)]
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}

    # Undo restores both systems, as its own journaled action, in the incident of the action it undoes.
    undo = run_cli("undo", action, "--config", sandbox_config, "--yes", "--no-verify", "--json", env=journal_env)
    assert undo.returncode == 0, undo.stderr
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    undo_id = action_id_of(undo)
    assert action_events(journal_env, undo_id) == ["decision", "action.intent", "action.applied"]
    assert json.loads(undo.stdout)["incident_id"] == incident and len(incidents(journal_env)) == 1
    # Once the incident is closed, running the same undo again changes nothing, says so, and opens no
    # incident: the journal is as it was.
    close_incident(journal_env, incident)
    before = [(i.incident_id, i.events) for i in incidents(journal_env)]
    again = run_cli("undo", action, "--config", sandbox_config, "--no-verify", env=journal_env)
    assert again.returncode == 0 and "already undone" in again.stdout
    assert "no incident opened and nothing journaled" in " ".join(again.stdout.split())
    assert [(i.incident_id, i.events) for i in incidents(journal_env)] == before


def test_two_rollbacks_at_once_exactly_one_applies(sandbox_config, systems, journal_env, tmp_path):
    router, registry = systems
    pause = tmp_path / "paused"
    first = subprocess.Popen(
        [sys.executable, "-m", "console", "rollback", "--config", sandbox_config, "--yes", "--no-verify", "--json"],
        env={**os.environ, **journal_env, "REWIND_FAULT_PAUSE_AT": "after-intent",
             "REWIND_FAULT_PAUSE_FILE": str(pause)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(pause.exists, 60, "the first rollback to hold the lock")
        second = rollback(sandbox_config, journal_env, "--no-verify")
        assert second.returncode == 1
        assert "another action on fraud-detector is in progress" in second.stderr
        pause.unlink()
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    failed = [e for e in events(journal_env, [EventKind.ACTION_FAILED]) if e.payload.get("conflict")]
    applied = events(journal_env, [EventKind.ACTION_APPLIED])
    assert len(failed) == 1 and len(applied) == 1


@pytest.mark.parametrize(
    ("boundary", "outcome", "weights", "aliases"),
    [
        ("after-intent", "not applied", START_WEIGHTS, START_ALIASES),
        ("after-router-step-1", "partly applied: router changed", {"1": 0, "2": 100, "3": 0}, START_ALIASES),
        ("after-alias-challenger", "fully applied", {"1": 0, "2": 100, "3": 0}, {"champion": "2", "fallback": "4"}),
        ("after-applied", None, {"1": 0, "2": 100, "3": 0}, {"champion": "2", "fallback": "4"}),
    ],
)
def test_kill_9_at_every_boundary_is_recovered(sandbox_config, systems, journal_env, boundary, outcome, weights,
                                               aliases):
    router, registry = systems
    killed = rollback(sandbox_config, {**journal_env, "REWIND_FAULT_KILL_AT": boundary}, "--no-verify")
    assert killed.returncode == -signal.SIGKILL
    assert router.read_state(MODEL).weights() == weights
    assert registry.get_aliases(MODEL).aliases == aliases

    recovered = run_cli("recover", "--config", sandbox_config, env=journal_env)
    assert recovered.returncode == 0, recovered.stderr
    [intent] = events(journal_env, [EventKind.ACTION_INTENT])
    kinds = action_events(journal_env, intent.payload["action_id"])
    if outcome is None:
        # The outcome and the lock's release were one transaction: nothing was left behind.
        assert "nothing to recover" in recovered.stdout
        assert kinds == ["decision", "action.intent", "action.applied"]
    else:
        assert outcome in recovered.stdout
        last = [e for e in events(journal_env) if e.payload.get("action_id") == intent.payload["action_id"]][-1]
        assert last.payload["recovered"] is True
        assert last.payload["observed"]["weights"] == weights
    # The lock was given back: recovery leaves nothing held, and a second pass has nothing to do.
    journal = SqlJournal(journal_env["REWIND_JOURNAL__URL"])
    try:
        assert SqlActionLock(journal).held() == []
    finally:
        journal.close()
    assert "nothing to recover" in run_cli("recover", "--config", sandbox_config, env=journal_env).stdout


def test_a_console_killed_holding_the_lock_does_not_block_the_next(sandbox_config, systems, journal_env):
    router, registry = systems
    killed = rollback(sandbox_config, {**journal_env, "REWIND_FAULT_KILL_AT": "after-lock"}, "--no-verify")
    assert killed.returncode == -signal.SIGKILL
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    # The lock came with the intent: the next rollback recovers the dead console's action by itself
    # (nothing had changed), which gives the lock back, and goes ahead.
    again = rollback(sandbox_config, journal_env, "--no-verify")
    assert again.returncode == 0, again.stderr
    assert "not applied: the console stopped before changing anything" in " ".join(again.stderr.split())
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}


def test_a_gradual_rollback_steps_through_passing_gates(sandbox_config, systems, journal_env):
    router, registry = systems
    env = {**journal_env, "REWIND_ROLLBACK__GATE_WINDOW_S": "1"}
    completed = rollback(sandbox_config, env, "--gradual", "--from", "3", "--to", "2", "--no-verify")
    assert completed.returncode == 0, completed.stderr
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    gates = [e.payload["text"] for e in events(journal_env, [EventKind.NOTE]) if "gate after step" in e.payload["text"]]
    assert gates == ["gate after step 1: passed", "gate after step 2: passed"]


def test_an_alias_moved_since_the_preview_is_a_conflict_before_anything_changes(sandbox_config, systems,
                                                                               journal_env):
    router, registry = systems
    service = build_rollback_service(load_config(sandbox_config, environ=journal_env))
    try:
        preview = service.preview(MODEL)
        incident = service.journal.open_incident(MODEL, "2", "conflict drill").incident_id
        # Someone points the challenger alias elsewhere between the preview and the apply.
        registry.set_alias(MODEL, "challenger", "1", expected="3")
        with pytest.raises(ConflictError, match=r"alias 'challenger' points at v1 \(expected v3\)\. Nothing changed"):
            service.apply(preview, incident)
    finally:
        service.journal.close()
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "challenger": "1", "fallback": "4"}
    assert action_events(journal_env, preview.plan.action_id) == ["action.intent", "action.failed"]


def test_registry_failure_after_the_router_is_compensated(sandbox, sandbox_config, systems, journal_env):
    router, registry = systems
    service = build_rollback_service(load_config(sandbox_config, environ=journal_env))
    renamed = f"{MODEL}-renamed"

    def pull_the_model_away(boundary: str) -> None:
        if boundary == "after-router-step-1":  # the router has changed; now the registry loses the model
            registry.client.rename_registered_model(MODEL, renamed)

    service.checkpoint = pull_the_model_away
    try:
        preview = service.preview(MODEL)
        incident = service.journal.open_incident(MODEL, "2", "compensation drill").incident_id
        with pytest.raises(NotFoundError) as failed:
            service.apply(preview, incident)
    finally:
        if registry.client.search_registered_models(f"name = '{renamed}'"):
            registry.client.rename_registered_model(renamed, MODEL)
        service.journal.close()
    message = str(failed.value)
    assert message.startswith("registry failed after the router changed") and "router weights restored" in message
    assert "router weights now {'1': 0, '2': 90, '3': 10}" in message
    assert "registry could not read the registry back" in message and "not found" in message
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    kinds = action_events(journal_env, preview.plan.action_id)
    assert kinds == ["action.intent", "action.compensated"]
    [compensated] = [e for e in events(journal_env, [EventKind.ACTION_COMPENSATED])]
    assert compensated.payload["restored"] is True and compensated.payload["observed"]["weights"] == START_WEIGHTS


def test_a_gradual_rollback_holds_at_a_failing_gate(sandbox, sandbox_config, systems, journal_env):
    router, registry = systems
    # The version traffic would go to fails its requests, which shows once the first step gives it some:
    # the gate must stop the rollback there. The gate is for what the router does not catch by itself, so
    # v1's health check is paused: the sandbox checks its standby with a real prediction (readiness reads
    # it), and a check that took v1 out first would leave the gate no request of v1's to judge (CI: v1 out
    # within 4 s of the outage, before a slow rollback's first step; the gate then saw only "no data").
    server = f"{backend_name(MODEL)}/v1"
    router.command(f"disable health {server}")
    try:
        sandbox.set_scenario("outage", version="1")
        env = {**journal_env, "REWIND_ROLLBACK__GATE_WINDOW_S": "10"}
        completed = rollback(sandbox_config, env, "--gradual", "--from", "3", "--to", "1")
    finally:
        router.command(f"enable health {server}")
    assert completed.returncode == 1, completed.stderr
    assert "held at step 1" in completed.stdout
    assert router.read_state(MODEL).weights() == {"1": 5, "2": 90, "3": 5}
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    [held] = [e for e in events(journal_env, [EventKind.ACTION_FAILED]) if e.payload.get("held")]
    assert held.payload["step"] == 1 and held.payload["evidence"]["breaches"]


def test_a_rollback_to_a_version_the_router_took_out_is_refused_before_anything_changes(sandbox, sandbox_config,
                                                                                      systems, journal_env):
    router, registry = systems
    # v1 fails every request; HAProxy's health check (a real prediction) takes it out. Without the refusal,
    # a gradual rollback to it passed its gates and verified on "no data" (no request reached v1).
    sandbox.set_scenario("outage", version="1")
    try:
        wait_for(lambda: not router.read_state(MODEL).server_for("1").operational, 60, "HAProxy to mark v1 DOWN")
        completed = rollback(sandbox_config, journal_env, "--gradual", "--from", "3", "--to", "1")
    finally:
        sandbox.set_scenario("healthy")
        wait_for(lambda: router.read_state(MODEL).server_for("1").operational, 60, "v1 back up")
    assert completed.returncode == 2, completed.stdout
    assert "v1 is DOWN at the router" in completed.stderr and "Traceback" not in completed.stderr
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    assert not [e for e in events(journal_env) if e.payload.get("action_id")]


def test_read_only_and_unconfirmed_rollbacks_change_nothing(sandbox_config, systems, journal_env):
    router, registry = systems
    refused = rollback(sandbox_config, journal_env, "--read-only")
    assert refused.returncode == 1 and "refused" in refused.stderr and "read-only" in refused.stderr
    assert [e.payload.get("refused") for e in events(journal_env, [EventKind.ACTION_FAILED])] == [True]
    before = len(events(journal_env))
    unconfirmed = run_cli("rollback", "--config", sandbox_config, env=journal_env)
    assert unconfirmed.returncode == 2 and "pass --yes" in unconfirmed.stderr
    assert len(events(journal_env)) == before, "a plan nobody could confirm journals nothing"
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    assert not Path("mlflow.db").exists(), "nothing may create a stray MLflow database in the working directory"
