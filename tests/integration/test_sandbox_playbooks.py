"""The shipped playbooks, run headless by the real ``rewind playbook run`` against the sandbox.

Each runs against the scenario it is written for; what it changed is read back
from HAProxy and MLflow themselves, what it said from a real HTTP receiver
standing in for the webhooks, and what it journaled from the journal. A run
killed with SIGKILL in the middle of its action, or of a notification, resumes
from the journal without applying or posting twice.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import yaml

from console.adapters.haproxy import HAProxyRouter
from console.adapters.journal_sql import SqlJournal
from console.config import load_config
from console.domain.journal import EventKind
from console.domain.routing import Mirror
from console.domain.verdicts import State
from console.sandbox.scenarios import DRIFT_SEGMENTS, REGRESSION_SEGMENTS
from console.sandbox.templates import SANDBOX_WEBHOOKS, backend_name, shadow_map_path
from console.wiring import build_status_service
from tests.fixtures.servers import run_cli, wait_for
from tests.integration.conftest import MODEL, START_ALIASES, START_WEIGHTS
from tests.integration.test_shadow_and_fallback import QUICK, drain_challenger, shadow_status, verdicts

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"


@pytest.fixture
def env(tmp_path, http_receiver):
    """A journal of the test's own, short verification windows, and every webhook pointing at the receiver."""
    return {"REWIND_JOURNAL__URL": f"sqlite:///{tmp_path / 'journal.db'}",
            "REWIND_ROLLBACK__VERIFY_WINDOW_S": "3", "REWIND_ROLLBACK__POLL_INTERVAL_S": "0.5",
            "REWIND_ROLLBACK__GATE_WINDOW_S": "2",
            **{variable: f"{http_receiver.url}/{name}" for name, variable in SANDBOX_WEBHOOKS.items()}}


def answers(tmp_path: Path, **given: dict) -> str:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump({k.replace("_", "-"): v for k, v in given.items()}))
    return str(path)


def run(playbook: str, config: str, env: dict, *extra: str, timeout: float = 240):
    return run_cli("playbook", "run", playbook, "--config", config, *extra, env=env, timeout=timeout)


def journal_events(env: dict, kinds=None) -> list:
    journal = SqlJournal(env["REWIND_JOURNAL__URL"])
    try:
        return [e for head in journal.incidents() for e in journal.events(head.incident_id, kinds)]
    finally:
        journal.close()


def steps_finished(env: dict) -> list[str]:
    return [e.payload["step_id"] for e in journal_events(env, [EventKind.STEP_FINISHED])]


def posts(receiver, webhook: str) -> list:
    return [r for r in receiver.requests if r.path == f"/{webhook}"]


def wait_for_cells(config: str, wanted, timeout: float, what: str) -> None:
    """Wait until the judge shows what the playbook's checks will see."""
    status = build_status_service(load_config(config, environ={}).config)
    try:
        wait_for(lambda: wanted(status.snapshot(MODEL).matrix), timeout, what, interval=1)
    finally:
        status.close()


def regression_visible(matrix) -> bool:
    challenger = any(matrix.state(m, "3", s) is State.BREACH for s in REGRESSION_SEGMENTS
                     for m in ("error_rate", "accuracy"))
    return challenger and not [c for c in matrix.breaches() if c.version == "2"]


def test_every_shipped_playbook_validates_against_the_sandbox_config(sandbox_config):
    files = sorted(str(p) for p in SHIPPED.glob("*.yaml"))
    assert len(files) >= 8
    completed = run_cli("playbook", "validate", "--config", sandbox_config, *files)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count(": ok (") == len(files)


def test_canary_regression_drains_the_challenger(sandbox, sandbox_config, systems, env, http_receiver, tmp_path):
    router, registry = systems
    sandbox.set_scenario("regression")
    wait_for_cells(sandbox_config, regression_visible, 90, "the challenger to breach while the champion passes")
    listed = run_cli("playbook", "list", "--config", sandbox_config, "--model", MODEL, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].startswith("canary-regression"), listed.stdout

    given = answers(tmp_path, decide={"option": "drain", "reason": "v3 breaches in eu-android"})
    completed = run("canary-regression", sandbox_config, env, "--answers", given, "--yes")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ended: rolled_back" in completed.stdout

    # What HAProxy and MLflow themselves report now.
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=sandbox.load_state()["tracking_uri"])
    aliases = {a: str(v) for a, v in client.get_registered_model(MODEL).aliases.items()}
    assert aliases == {"champion": "2", "fallback": "4"}
    # Every step is in the journal, with the decision and the action's own events.
    finished = steps_finished(env)
    assert finished[0] == "orient" and finished[-1] == "rolled-back"
    assert {"decide", "drain", "settle", "tell-drained"} <= set(finished)
    kinds = [e.kind for e in journal_events(env)]
    for kind in (EventKind.PLAYBOOK_STARTED, EventKind.CHECK_EVALUATED, EventKind.DECISION,
                 EventKind.ACTION_INTENT, EventKind.ACTION_APPLIED, EventKind.ACTION_VERIFIED,
                 EventKind.NOTIFICATION_SENT, EventKind.PLAYBOOK_FINISHED):
        assert kind in kinds, kind
    [sent] = posts(http_receiver, "oncall")
    assert "challenger v3 drained" in sent.json_body["text"]


def test_a_run_killed_mid_action_resumes_without_applying_twice(sandbox, sandbox_config, systems, env,
                                                              http_receiver, tmp_path):
    router, registry = systems
    sandbox.set_scenario("outage")
    wait_for_cells(sandbox_config, lambda m: m.state("error_rate", "3", "eu-web") is State.BREACH, 90,
                   "the challenger's errors to breach")
    killed = run("version-outage", sandbox_config, {**env, "REWIND_FAULT_KILL_AT": "after-router-step-1"}, "--yes")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}  # the router changed, then death
    assert registry.get_aliases(MODEL).aliases == START_ALIASES

    resumed = run("version-outage", sandbox_config, env, "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming run" in resumed.stdout and "interrupted mid-way" in resumed.stdout
    # One intent only: the action was reconciled (read back, journaled), never applied again.
    intents = journal_events(env, [EventKind.ACTION_INTENT])
    assert len(intents) == 1
    failed = journal_events(env, [EventKind.ACTION_FAILED])
    assert failed and failed[-1].payload["recovered"] is True
    assert "partly applied" in failed[-1].payload["reason"]
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    assert registry.get_aliases(MODEL).aliases == START_ALIASES  # nothing finished it behind the journal's back
    started = [e for e in journal_events(env, [EventKind.PLAYBOOK_STARTED])]
    assert len(started) == 1
    [failure] = posts(http_receiver, "oncall")
    assert "could not drain" in failure.json_body["text"]


def test_a_run_killed_after_posting_never_posts_again(sandbox, sandbox_config, systems, env, http_receiver,
                                                      tmp_path):
    # The rollback verifies that the champion passes: an earlier scenario may still be in the metric window.
    wait_for_cells(sandbox_config, lambda m: not [c for c in m.breaches() if c.version == "2"], 90,
                   "the champion to pass everywhere")
    given = answers(tmp_path, decide={"option": "abort-candidate", "reason": "deployed by mistake"})
    killed = run("abort-candidate", sandbox_config, {**env, "REWIND_FAULT_KILL_AT": "after-notification-post"},
                 "--answers", given, "--yes")
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert len(posts(http_receiver, "model-owners")) == 1, (killed.stdout, http_receiver.requests)
    resumed = run("abort-candidate", sandbox_config, env, "--answers", given, "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "delivery to model-owners unknown" in " ".join(resumed.stdout.split())
    assert len(posts(http_receiver, "model-owners")) == 1  # never twice
    # The candidate is aborted: traffic, alias, tag, as MLflow and HAProxy report them.
    router, registry = systems
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "fallback": "4"}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=sandbox.load_state()["tracking_uri"])
    assert "deployed by mistake" in client.get_model_version(MODEL, "3").tags["rewind.aborted"]


def test_version_outage_drains_at_once_and_verifies_from_the_router(sandbox, sandbox_config, systems, env,
                                                                    http_receiver):
    router, registry = systems
    sandbox.set_scenario("outage")
    wait_for_cells(sandbox_config, lambda m: m.state("error_rate", "3", "eu-web") is State.BREACH
                   and not [c for c in m.breaches() if c.version == "2"], 90, "the challenger's errors to breach")
    completed = run("version-outage", sandbox_config, env, "--yes")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ended: rolled_back" in completed.stdout
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "fallback": "4"}
    [verified] = journal_events(env, [EventKind.ACTION_VERIFIED])
    assert verified.payload["observed"]["leave_share"] < 0.01  # HAProxy's own counters: v3 got nothing
    [sent] = posts(http_receiver, "oncall")
    assert "v3 was failing requests and is drained" in sent.json_body["text"]


def test_latency_spike_fails_over_gradually_through_gates(sandbox, sandbox_config, systems, env, http_receiver,
                                                          tmp_path):
    router, registry = systems
    sandbox.set_scenario("outage")  # an error spike: the playbook's second check
    wait_for_cells(sandbox_config, lambda m: m.state("error_rate", "3", "eu-web") is State.BREACH
                   and not [c for c in m.breaches() if c.version == "2"], 90, "the challenger's errors to breach")
    given = answers(tmp_path, how={"option": "gradual", "reason": "v3 carries a large share"})
    completed = run("latency-spike", sandbox_config, env, "--answers", given, "--yes")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    gates = [e for e in journal_events(env, [EventKind.NOTE]) if str(e.payload.get("text", "")).startswith("gate")]
    assert gates and all("passed" in g.payload["text"] for g in gates)
    assert posts(http_receiver, "oncall")


def test_regression_after_promotion_reverts_to_the_previous_champion(sandbox, sandbox_config, systems, env,
                                                                     http_receiver, tmp_path):
    router, registry = systems
    sandbox.set_scenario("regression", version="2")  # the champion itself regressed
    wait_for_cells(sandbox_config, lambda m: any(m.state("error_rate", "2", s) is State.BREACH
                                                 for s in REGRESSION_SEGMENTS), 90, "the champion to breach")
    given = answers(tmp_path, decide={"option": "revert", "reason": "v2 regressed after its promotion"})
    completed = run("regression-after-promotion", sandbox_config, env, "--answers", given, "--yes")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "candidate v2, stable v1" in " ".join(completed.stdout.split())
    assert registry.get_aliases(MODEL).aliases == {"champion": "1", "challenger": "3", "fallback": "4"}
    weights = router.read_state(MODEL).weights()
    assert weights["2"] == 0 and weights["1"] == 90 and weights["3"] == 10
    assert posts(http_receiver, "oncall")


def test_dry_run_changes_nothing_and_journals_nothing(sandbox_config, systems, env, tmp_path):
    router, registry = systems
    given = answers(tmp_path, decide={"option": "abort-candidate", "reason": "drill"})
    completed = run("abort-candidate", sandbox_config, env, "--answers", given, "--dry-run")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = " ".join(completed.stdout.split())
    assert "dry run: remove would immediate rollback v3→v2" in out
    assert "dry run: tag would tag v3" in out
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    assert not Path(env["REWIND_JOURNAL__URL"].removeprefix("sqlite:///")).exists() or not journal_events(env)


def test_a_missing_answer_stops_and_says_which(sandbox_config, systems, env):
    started = time.monotonic()
    completed = run("abort-candidate", sandbox_config, env)
    assert completed.returncode == 1
    assert "missing answer for step 'decide'" in completed.stderr
    assert time.monotonic() - started < 60
    assert len(completed.stderr.strip().splitlines()) == 1


@pytest.fixture
def mirror_router(sandbox, systems):
    """The sandbox's router with its mirror map; any mirror left is removed after the test."""
    router = HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {MODEL: backend_name(MODEL)},
                           shadow_map=str(shadow_map_path(sandbox.dir)))
    yield router
    left = router.read_mirror(MODEL)
    if left is not None:
        router.set_mirror(MODEL, None, expected=left)


def test_shadow_promotion_promotes_a_shadow_that_held_its_gate(sandbox, sandbox_config, systems, mirror_router,
                                                                env, http_receiver):
    """The shadow's whole life on the real sandbox: started, refused promotion while its gate has not held,
    the gate holding on every segment, the shipped playbook promoting it, and the promotion reverted."""
    router, registry = systems
    env = {**env, **QUICK}  # the gate holds after 10 s of passing, each evaluation on 30 s of pairs
    started = run_cli("shadow", "start", "--version", "3", "--config", sandbox_config, "--yes",
                      "--reason", "try v3 in shadow", env=env)
    assert started.returncode == 0, started.stderr + started.stdout
    assert mirror_router.read_mirror(MODEL) == Mirror("3", "2", 100)
    assert registry.get_aliases(MODEL).version_of("shadow") == "3"
    # Too early: the gate has not held, and a promotion is refused (nothing changes).
    early = run_cli("promote", "--config", sandbox_config, "--yes", env=env)
    assert early.returncode == 1 and "the promotion gate has not held" in early.stderr
    assert router.read_state(MODEL).weights() == START_WEIGHTS

    # The watch after the promotion judges v3's own answers over the last minute: an earlier test's fault on
    # v3 (an outage, a latency spike) must have left that window too, or the playbook rightly reverts. Both
    # are awaited together, and the playbook runs at once (its gate check reads the gate again).
    status = build_status_service(load_config(sandbox_config, environ={}).config)
    try:
        def ready_to_promote() -> dict | None:
            doc = shadow_status(sandbox_config, env)
            calm = not [c for c in status.snapshot(MODEL).matrix.breaches() if c.version == "3"]
            return doc if doc["gate"]["holds"] and calm else None

        held = wait_for(ready_to_promote, 150, "the shadow's gate to hold, and v3 calm in its own metrics",
                        interval=3)
    finally:
        status.close()
    assert set(verdicts(held).values()) == {"pass"} and len(verdicts(held)) == 6
    assert held["gate"]["held_for_s"] >= 10

    completed = run("shadow-promotion", sandbox_config, env, "--yes", timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ended: resolved" in completed.stdout
    # The promotion, as HAProxy and MLflow themselves report it.
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 0, "3": 100}
    assert registry.get_aliases(MODEL).aliases == {"champion": "3", "shadow": "2", "fallback": "4"}
    assert mirror_router.read_mirror(MODEL) == Mirror("2", "3", 100)  # the old champion, warm, in shadow
    assert steps_finished(env) == ["orient", "gate", "promote", "watch", "tell-promoted", "promoted"]
    [gate] = [e for e in journal_events(env, [EventKind.NOTE]) if e.payload.get("step_id") == "gate"]
    assert gate.payload["gate"]["holds"] is True
    [intent] = [e for e in journal_events(env, [EventKind.ACTION_INTENT]) if e.payload["kind"] == "promote"]
    chain = [e.kind for e in journal_events(env) if e.payload.get("action_id") == intent.payload["action_id"]]
    assert EventKind.ACTION_APPLIED in chain and EventKind.ACTION_VERIFIED in chain
    [sent] = posts(http_receiver, "oncall")
    assert "v3 promoted to champion" in sent.json_body["text"]

    # The revert: champion, traffic and mirror back, the undo naming what it undoes.
    reverted = run_cli("promote", "--revert", "--config", sandbox_config, "--yes", env=env)
    assert reverted.returncode == 0, reverted.stderr + reverted.stdout
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == {**START_ALIASES, "shadow": "3"}
    assert mirror_router.read_mirror(MODEL) == Mirror("3", "2", 100)
    undo = [e for e in journal_events(env, [EventKind.ACTION_INTENT]) if e.payload["plan"].get("undoes")]
    assert [u.payload["plan"]["undoes"] for u in undo] == [intent.payload["action_id"]]

    stopped = run_cli("shadow", "stop", "--config", sandbox_config, "--yes", env=env)
    assert stopped.returncode == 0, stopped.stderr + stopped.stdout
    assert mirror_router.read_mirror(MODEL) is None
    assert registry.get_aliases(MODEL).version_of("shadow") is None
    assert router.read_state(MODEL).weights() == START_WEIGHTS


def test_fallback_engages_when_the_champion_breaks_and_restores_it_once_fixed(sandbox, sandbox_config, systems,
                                                                             env, http_receiver, tmp_path):
    router, _ = systems
    # The restore is verified from who answered: give the champion's health checks time to pass again.
    env = {**env, "REWIND_ROLLBACK__VERIFY_WINDOW_S": "6"}
    drain_challenger(router)
    before = router.fallback(MODEL)
    sandbox.set_scenario("broken-predictions")
    wait_for(lambda: router.fallback(MODEL).fallback_served() > before.fallback_served() + 20, 30,
             "the router to send requests to the fallback")
    # The champion's error rate may be judged (a breach) or not (the router took it out: too few requests).
    given = answers(tmp_path, decide={"option": "engage", "reason": "v2 answers 500 on predictions"})
    first = run("fallback", sandbox_config, env, "--answers", given, "--yes")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "missing answer for step 'recover'" in first.stderr  # the human says when the champion is fixed

    # Engaged, as HAProxy reports it: the champion is taken out, the fallback keeps answering.
    [champion] = [s for s in router.read_state(MODEL).servers if s.version == "2"]
    assert champion.admin_state == "maint"
    served = router.fallback(MODEL).fallback_served()
    wait_for(lambda: router.fallback(MODEL).fallback_served() > served + 5, 10, "the fallback to keep answering")
    [engaged] = posts(http_receiver, "oncall")
    assert "the fallback serves, champion v2 is out" in engaged.json_body["text"]
    [intent] = journal_events(env, [EventKind.ACTION_INTENT])
    assert intent.payload["kind"] == "fallback_engage"
    assert journal_events(env, [EventKind.ACTION_VERIFIED])

    sandbox.set_scenario("healthy")
    given = answers(tmp_path, decide={"option": "engage", "reason": "v2 answers 500 on predictions"},
                    recover={"option": "restore", "reason": "v2's predictions fixed"})
    second = run("fallback", sandbox_config, env, "--answers", given, "--yes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "ended: resolved" in second.stdout
    assert {s.admin_state for s in router.read_state(MODEL).servers} == {"ready"}
    assert [e.payload["kind"] for e in journal_events(env, [EventKind.ACTION_INTENT])] \
        == ["fallback_engage", "fallback_restore"]
    restored = posts(http_receiver, "oncall")[-1]
    assert "champion v2 serves again" in restored.json_body["text"]


# Last: the drift stays in the champion's metric window for a minute, and the other runs verify the champion.
def test_data_drift_escalates_without_rolling_back(sandbox, sandbox_config, systems, env, http_receiver, tmp_path):
    router, registry = systems
    sandbox.set_scenario("drift")
    segment = DRIFT_SEGMENTS[0]
    wait_for_cells(sandbox_config, lambda m: m.state("accuracy", "2", segment) is State.BREACH, 90,
                   "the champion's accuracy to breach in the drifting segment")
    completed = run("data-drift", sandbox_config, env)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ended: escalated" in completed.stdout
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    assert not journal_events(env, [EventKind.ACTION_INTENT])
    assert "drift-not-rollback" in steps_finished(env)
    [sent] = posts(http_receiver, "data-owners")
    assert "data drift suspected" in sent.json_body["text"]
    assert sent.headers["idempotency-key"]
