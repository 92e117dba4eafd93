"""Shadow, promote and fallback steps, and gate checks, carried out by the playbook runner over fakes.

Every action goes through the one action procedure (the journal's intent, decision, applied and
verified events); the shipped ``shadow-promotion`` and ``fallback`` playbooks run end to end in the
fake world (tests/tui/world.py), and the validator's model of the new steps is checked here too.
"""

from __future__ import annotations

import pytest

from console.adapters.playbook_files import PlaybookFiles
from console.adapters.playbook_yaml import read_playbook_text
from console.domain.journal import EventKind
from console.domain.playbook import ActionKind, StepKind
from console.domain.playbook_check import CheckContext, structure_hash
from console.domain.playbook_run import judge_fallback_gate, judge_gate
from console.domain.routing import Mirror
from console.domain.shadow import GateClock, GateReading, GateVerdict, SegmentEvidence, SegmentVerdict
from console.domain.verdicts import State
from console.services.playbooks import PlaybookRunner
from console.services.shadow import ShadowService
from tests.tui.world import MODEL, World
from tests.unit.test_playbook_runner import CONTEXT, SHIPPED, Face, Notifier, events, load


class FakeGate:
    """A promotion gate whose segments' verdicts and clock the test sets."""

    def __init__(self, verdicts: dict[str, GateVerdict], held_s: float = 600.0) -> None:
        self.verdicts = verdicts
        self.held_s = held_s
        self.window_s = 600.0

    def over_window(self, model, shadow, champion, started_at, now, price=None, mirrored_share=1.0):
        segments = tuple(SegmentVerdict(name, verdict, "proven" if verdict is GateVerdict.PASS else
                                        f"{verdict.value} in {name}: disagreement 9.0% > 5%", (),
                                        SegmentEvidence(name))
                         for name, verdict in self.verdicts.items())
        return GateReading(model, shadow, champion, now, segments, GateClock(self.held_s, self.window_s))


HELD = {"eu": GateVerdict.PASS, "us": GateVerdict.PASS}


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    world.metrics.scenario = "healthy"
    yield world
    world.close()


def runner_with(world, gate: FakeGate, notifier=None) -> tuple[PlaybookRunner, ShadowService]:
    shadow = ShadowService(world.service, gate)  # type: ignore[arg-type]
    runner = PlaybookRunner(world.service, PlaybookFiles([SHIPPED], CONTEXT), notifier or Notifier(), None,
                            is_live=lambda holder: False, sleep=lambda seconds: None, shadow=shadow)
    return runner, shadow


def start_shadow(world, shadow: ShadowService, version: str = "3") -> None:
    incident = world.journal.open_incident(MODEL, "3", "shadow").incident_id
    assert world.service.apply(shadow.start_preview(MODEL, version, 100, "try it"), incident).status == "applied"


def inline(text: str):
    playbook, problems = read_playbook_text(text, "inline.yaml", CONTEXT)
    assert playbook is not None and not problems, problems
    return playbook, text


def finished_steps(world, run) -> list[str]:
    return [e.payload["step_id"] for e in events(world, run.state.incident_id) if e.kind is EventKind.STEP_FINISHED]


# -- the validator's model --------------------------------------------------------------------------

def test_the_new_steps_build_with_their_operations_and_defaults():
    shadow_playbook, _ = load("shadow-promotion")
    gate = shadow_playbook.step("gate")
    assert gate.kind is StepKind.CHECK and gate.gate == "shadow" and gate.metric is None
    promote = shadow_playbook.step("promote")
    assert (promote.action, promote.operation) == (ActionKind.PROMOTE, "promote")
    assert shadow_playbook.step("revert").operation == "revert"
    assert (shadow_playbook.step("stop-shadow").action, shadow_playbook.step("stop-shadow").operation) \
        == (ActionKind.SHADOW, "stop")
    fallback_playbook, _ = load("fallback")
    assert {(s.action, s.operation) for s in fallback_playbook.steps if s.kind is StepKind.ACTION} \
        == {(ActionKind.FALLBACK, "engage"), (ActionKind.FALLBACK, "restore")}
    text = """\
id: drills
version: 1
steps:
  - {id: begin, kind: action, action: shadow, operation: start, version: candidate, percent: 25,
     dry_run: describe, timeout: {minutes: 5}, branches: {done: promote, failed: fine}}
  - {id: promote, kind: action, action: promote, dry_run: stop, timeout: {minutes: 5},
     branches: {done: drill, failed: fine}}
  - {id: drill, kind: action, action: fallback, operation: drill, seconds: 2.5, dry_run: describe,
     timeout: {minutes: 5}, branches: {done: fine, failed: fine}}
  - {id: fine, kind: end, outcome: resolved}
"""
    playbook, _ = inline(text.replace("timeout: {minutes: 5}", "timeout: {minutes: 5, on_timeout: abort}"))
    begin, promote_step, drill = playbook.steps[:3]
    assert (begin.version, begin.percent) == ("candidate", 25)
    assert promote_step.operation == "promote"  # the default
    assert drill.seconds == 2.5


def test_a_playbook_without_the_new_fields_keeps_its_structure_hash():
    # A run journaled before these fields existed resumes: its structure is what it was.
    playbook, _ = load("canary-regression")
    assert "gate" not in str(structure_hash.__doc__)  # (the fields are left out when unset, below)
    from console.domain.playbook_check import _step_structure

    for step in playbook.steps:
        assert not {"gate", "operation", "percent", "seconds"} & set(_step_structure(step))


def test_confirm_false_is_allowed_for_the_new_actions_only_where_the_config_allows_it():
    text = """\
id: quiet
version: 1
steps:
  - {id: serve, kind: action, action: fallback, operation: engage, confirm: false, dry_run: describe,
     branches: {done: fine, failed: fine}}
  - {id: fine, kind: end, outcome: resolved}
"""
    refused, problems = read_playbook_text(text, "quiet.yaml", CONTEXT)
    assert refused is None and "confirm: false is refused for a fallback" in problems[0].message
    allowed, problems = read_playbook_text(text, "quiet.yaml", CheckContext(require_confirmation=False))
    assert allowed is not None and not problems


# -- the gate check ---------------------------------------------------------------------------------

def test_judge_gate_passes_only_a_gate_that_held_and_fails_on_a_failing_segment():
    def reading(verdicts, held_s):
        return FakeGate(verdicts, held_s).over_window(MODEL, "3", "2", 0.0, 100.0)

    assert judge_gate(reading(HELD, 600)).branch == "pass"
    waiting = judge_gate(reading(HELD, 120))  # every segment passes, not yet for the window
    assert waiting.branch == "no_data" and waiting.state is State.NO_DATA
    held_back = judge_gate(reading({"eu": GateVerdict.PASS, "us": GateVerdict.HOLD}, 0))
    assert held_back.branch == "no_data" and "HOLD in us" in held_back.reason
    failed = judge_gate(reading({"eu": GateVerdict.FAIL, "us": GateVerdict.PASS}, 0))
    assert failed.branch == "fail" and failed.state is State.BREACH and "FAIL in eu" in failed.reason
    assert judge_gate(None).branch == "no_data"
    assert judge_gate(reading(HELD, 600), "the mirror copies v1's answers").branch == "no_data"


# -- the shipped playbooks --------------------------------------------------------------------------

def test_shadow_promotion_promotes_a_shadow_whose_gate_held(world):
    notifier = Notifier()
    runner, shadow = runner_with(world, FakeGate(HELD), notifier)
    start_shadow(world, shadow)
    playbook, text = load("shadow-promotion")
    run = runner.start(playbook, text, MODEL, yes=True)
    assert run.state.inputs == {"candidate": "3", "stable": "2"}
    end = runner.drive(run, Face())
    assert end.state.finished == "resolved", end
    assert world.router.weights == {"1": 0, "2": 0, "3": 100}
    assert world.registry.aliases["champion"] == "3" and world.router.mirror == Mirror("2", "3", 100)
    assert finished_steps(world, run) == ["orient", "gate", "promote", "watch", "tell-promoted", "promoted"]
    journal = events(world, run.state.incident_id)
    [gate_note] = [e for e in journal if e.kind is EventKind.NOTE and e.payload.get("step_id") == "gate"]
    assert gate_note.payload["gate"]["holds"] is True and gate_note.payload["branch"] == "pass"
    # The run joined the incident the shadow was started in: the promotion is its second action.
    assert [e.payload["kind"] for e in journal if e.kind is EventKind.ACTION_INTENT] == ["shadow_start", "promote"]
    intent = [e for e in journal if e.kind is EventKind.ACTION_INTENT][-1]
    assert EventKind.ACTION_VERIFIED in [e.kind for e in journal if e.payload.get("action_id")
                                         == intent.payload["action_id"]]
    assert [p[0] for p in notifier.posts] == ["oncall"] and "v3 promoted" in notifier.posts[0][1]


def test_shadow_promotion_reverts_the_promotion_when_the_new_champion_breaches(world):
    runner, shadow = runner_with(world, FakeGate(HELD))
    start_shadow(world, shadow)

    class BreachAfterPromotion(Face):
        def said(self, text, tone="info"):
            super().said(text, tone)
            if text.startswith("promote: verified"):
                world.metrics.scenario = "regression"  # v3, the new champion, now breaches in a segment

    playbook, text = load("shadow-promotion")
    run = runner.start(playbook, text, MODEL, yes=True)
    end = runner.drive(run, BreachAfterPromotion())
    assert end.state.finished == "rolled_back"
    assert finished_steps(world, run)[-5:] == ["promote", "watch", "revert", "tell-reverted", "reverted"]
    # Alias, traffic and mirror back as before the promotion (the shadow keeps running).
    assert world.router.weights == {"1": 0, "2": 90, "3": 10}
    assert world.registry.aliases["champion"] == "2" and world.router.mirror == Mirror("3", "2", 100)
    intents = [e for e in events(world, run.state.incident_id) if e.kind is EventKind.ACTION_INTENT]
    assert [e.payload["kind"] for e in intents] == ["shadow_start", "promote", "undo"]
    promoted, undo = intents[1], intents[2]
    assert undo.payload["plan"]["undoes"] == promoted.payload["action_id"]


def test_a_promotion_applied_but_not_verified_is_undone(world):
    runner, shadow = runner_with(world, FakeGate(HELD))
    start_shadow(world, shadow)
    world.metrics.scenario = "regression"  # v3 breaches: the promotion's verification fails
    playbook, text = load("shadow-promotion")
    run = runner.start(playbook, text, MODEL, yes=True)
    end = runner.drive(run, Face())
    assert end.state.finished == "rolled_back"
    assert finished_steps(world, run)[-4:] == ["promote", "undo-failed-promotion", "tell-reverted", "reverted"]
    assert world.router.weights == {"1": 0, "2": 90, "3": 10} and world.registry.aliases["champion"] == "2"


def test_a_revert_never_undoes_an_older_promotion_when_the_run_promoted_nothing(world):
    runner, shadow = runner_with(world, FakeGate(HELD))
    start_shadow(world, shadow)
    incident = world.journal.open_incident_of(MODEL).incident_id
    world.service.apply(shadow.promote_preview(MODEL, "an earlier promotion")[0], incident)
    assert world.registry.aliases["champion"] == "3"
    playbook, text = load("shadow-promotion")
    runner.shadow = ShadowService(world.service, FakeGate(HELD, held_s=0))  # the new shadow (v2) has not held
    # Run it from its promote step: refused, then its undo finds no promotion of this run to revert.
    run = runner.start(playbook, text, MODEL, yes=True)
    run.state.current = "promote"
    end = runner.drive(run, Face())
    assert end.state.finished == "not_rolled_back"
    assert finished_steps(world, run)[-3:] == ["undo-failed-promotion", "tell-not-promoted", "not-promoted"]
    assert world.registry.aliases["champion"] == "3"  # the earlier promotion stands


def test_a_failing_gate_stops_the_shadow_and_promotes_nothing(world):
    runner, shadow = runner_with(world, FakeGate({"eu": GateVerdict.FAIL, "us": GateVerdict.PASS}, 0))
    start_shadow(world, shadow)
    playbook, text = load("shadow-promotion")
    run = runner.start(playbook, text, MODEL, yes=True)
    end = runner.drive(run, Face())
    assert end.state.finished == "not_rolled_back"
    assert finished_steps(world, run) == ["orient", "gate", "tell-gate-failed", "stop-shadow", "not-promoted"]
    assert world.router.mirror is None and "shadow" not in world.registry.aliases
    assert world.registry.aliases["champion"] == "2"


def test_a_refused_promotion_takes_the_failed_branch_with_the_reason_journaled(world):
    runner, shadow = runner_with(world, FakeGate(HELD, held_s=60))  # passing, but not for the window yet
    start_shadow(world, shadow)
    playbook, text = inline("""\
id: promote-now
version: 1
inputs: {candidate: {alias: shadow}, stable: {alias: champion}}
steps:
  - {id: promote, kind: action, action: promote, dry_run: describe, timeout: {minutes: 5, on_timeout: abort},
     branches: {done: fine, failed: refused}}
  - {id: fine, kind: end, outcome: resolved}
  - {id: refused, kind: end, outcome: not_rolled_back}
""")
    run = runner.start(playbook, text, MODEL, yes=True)
    end = runner.drive(run, Face())
    assert end.state.finished == "not_rolled_back"
    assert world.registry.aliases["champion"] == "2" and world.router.weights["3"] == 10
    journal = events(world, run.state.incident_id)
    [note] = [e for e in journal if e.kind is EventKind.NOTE and e.payload.get("step_id") == "promote"]
    assert note.payload["refused"] is True and "the promotion gate has not held" in note.payload["text"]
    [step] = [e for e in journal if e.kind is EventKind.STEP_FINISHED and e.payload["step_id"] == "promote"]
    assert step.payload["outcome"] == "failed" and "has not held" in step.payload["reason"]
    assert [e.payload["kind"] for e in journal if e.kind is EventKind.ACTION_INTENT] == ["shadow_start"]


def test_shadow_start_and_stop_steps_move_the_alias_and_the_mirror(world):
    runner, _ = runner_with(world, FakeGate(HELD))
    playbook, text = inline("""\
id: try-shadow
version: 1
steps:
  - {id: begin, kind: action, action: shadow, operation: start, version: candidate, percent: 100,
     dry_run: describe, timeout: {minutes: 5, on_timeout: abort}, branches: {done: look, failed: broken}}
  - {id: look, kind: check, gate: shadow, branches: {pass: halt, fail: halt, no_data: halt}}
  - {id: halt, kind: action, action: shadow, operation: stop, dry_run: describe,
     timeout: {minutes: 5, on_timeout: abort}, branches: {done: fine, failed: broken}}
  - {id: fine, kind: end, outcome: resolved}
  - {id: broken, kind: end, outcome: escalated}
""")
    run = runner.start(playbook, text, MODEL, yes=True)
    face = Face()
    end = runner.drive(run, face)
    assert end.state.finished == "resolved", face.lines
    kinds = [e.payload["kind"] for e in events(world, run.state.incident_id) if e.kind is EventKind.ACTION_INTENT]
    assert kinds == ["shadow_start", "shadow_stop"]
    assert world.router.mirror is None and "shadow" not in world.registry.aliases
    assert "check look: pass" in face.lines  # the gate read the mirror the step before had started


def serving_router(world):
    """The fake router's counters move as HAProxy's do: the fallback answers while v2 is out, else v2."""
    read = world.router.fallback

    def fallback(model):
        world.router.counters["fallback" if world.router.admin["v2"] == "maint" else "v2"] += 5
        return read(model)

    world.router.fallback = fallback


def test_the_fallback_playbook_engages_then_restores_once_the_champion_is_healthy(world):
    serving_router(world)
    world.metrics.scenario = "regression"
    world.metrics.versions = ("3", "2")  # the champion, v2, breaches
    notifier = Notifier()
    runner, _ = runner_with(world, FakeGate(HELD), notifier)
    playbook, text = load("fallback")
    run = runner.start(playbook, text, MODEL, yes=True)
    assert run.state.inputs == {"stable": "2"}
    end = runner.drive(run, Face())
    assert end.stopped and "recover" in end.stopped  # the human decides when the champion is healthy
    # Every primary that carries traffic is out (v3 has 10 %), v1 (weight 0) is left alone.
    assert (world.router.admin["v1"], world.router.admin["v2"], world.router.admin["v3"]) == ("ready", "maint", "maint")
    assert [p[0] for p in notifier.posts] == ["oncall"] and "the fallback serves" in notifier.posts[0][1]
    state = runner.unfinished(MODEL)[0]
    end = runner.drive(runner.resume(state, yes=True), Face({"recover": ("restore", "v2 redeployed")}))
    assert end.state.finished == "resolved"
    assert set(world.router.admin.values()) == {"ready"}
    intents = [e.payload["kind"] for e in events(world, run.state.incident_id) if e.kind is EventKind.ACTION_INTENT]
    assert intents == ["fallback_engage", "fallback_restore"]


def test_a_drill_step_is_journaled_and_fails_when_the_fallback_never_answered(world):
    runner, _ = runner_with(world, FakeGate(HELD))
    playbook, text = inline("""\
id: drill
version: 1
steps:
  - {id: drill, kind: action, action: fallback, operation: drill, seconds: 0.2, dry_run: describe,
     timeout: {minutes: 5, on_timeout: abort}, branches: {done: fine, failed: bad}}
  - {id: fine, kind: end, outcome: resolved}
  - {id: bad, kind: end, outcome: escalated}
""")
    run = runner.start(playbook, text, MODEL, yes=True)
    end = runner.drive(run, Face())
    # The fake router's counters never move: the fallback never answered, so the drill did not pass.
    assert end.state.finished == "escalated"
    journal = events(world, run.state.incident_id)
    [drill] = [e for e in journal if e.kind is EventKind.NOTE and e.payload.get("fallback_drill")]
    assert drill.payload["fallback_drill"]["passed"] is False
    assert set(world.router.admin.values()) == {"ready"}  # restored whatever the result
    [step] = [e for e in journal if e.kind is EventKind.STEP_FINISHED and e.payload["step_id"] == "drill"]
    assert step.payload["reason"].startswith("FAILED")


def test_dry_runs_describe_the_new_actions_and_change_nothing(world):
    runner, shadow = runner_with(world, FakeGate(HELD))
    start_shadow(world, shadow)
    before = (dict(world.router.weights), dict(world.registry.aliases), world.router.mirror)
    playbook, text = load("shadow-promotion")
    face = Face()
    end = runner.drive(runner.start(playbook, text, MODEL, dry_run=True), face)
    assert end.state.finished == "resolved"
    said = " ".join(face.lines)
    assert "dry run: promote would promotion of fraud-detector: weights v2 90→0, v3 10→100" in said
    assert "mirror v3 shadows v2" in said
    assert (dict(world.router.weights), dict(world.registry.aliases), world.router.mirror) == before


def test_without_a_shadow_service_a_gate_check_has_no_data(world):
    runner = PlaybookRunner(world.service, None, Notifier(), None, is_live=lambda holder: False,
                            sleep=lambda seconds: None)
    playbook, text = inline("""\
id: look
version: 1
steps:
  - {id: look, kind: check, gate: shadow, branches: {pass: fine, fail: fine, no_data: unknown}}
  - {id: fine, kind: end, outcome: resolved}
  - {id: unknown, kind: end, outcome: escalated}
""")
    end = runner.drive(runner.start(playbook, text, MODEL), Face())
    assert end.state.finished == "escalated"


def test_every_shipped_playbook_validates_with_the_new_kinds():
    assert {path.stem for path in SHIPPED.glob("*.yaml")} >= {"shadow-promotion", "fallback"}
    for path in SHIPPED.glob("*.yaml"):
        load(path.stem)


def test_judge_fallback_gate_fails_when_no_serving_primary_is_up():
    assert judge_fallback_gate([("v2", True), ("v3", False)], True).branch == "pass"
    down = judge_fallback_gate([("v2", False)], True)
    assert down.branch == "fail" and "v2 DOWN" in down.reason and "the fallback answers" in down.reason
    assert "default" in judge_fallback_gate([("v2", False)], False).reason
    assert judge_fallback_gate([], True).branch == "no_data"
