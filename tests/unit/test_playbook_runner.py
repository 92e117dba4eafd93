"""The playbook runner's rules over fakes (tests/tui/world.py): journal, branches, resume, reconcile, dedupe.

The same engine drives the console and the command line; these tests drive it
with a scripted face, as a headless run with an answers file does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.adapters.playbook_files import PlaybookFiles
from console.adapters.playbook_yaml import read_playbook_text
from console.domain.delivery import Delivery
from console.domain.errors import ExternalSystemError, UsageError
from console.domain.journal import EventKind
from console.domain.playbook_check import CheckContext
from console.domain.playbook_run import fold_run
from console.services.playbooks import AnswerMissing, ChoiceAnswer, HumanTimeout, PlaybookRunner
from console.services.rollback import RefusedError
from tests.tui.world import MODEL, World

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"
CONTEXT = CheckContext(metric_names=frozenset({"error_rate", "latency_p95", "accuracy", "traffic"}),
                       webhook_names=frozenset({"oncall", "data-owners", "model-owners"}))


def load(name: str):
    text = (SHIPPED / f"{name}.yaml").read_text()
    playbook, problems = read_playbook_text(text, f"{name}.yaml", CONTEXT)
    assert playbook is not None and not problems, problems
    return playbook, text


class Face:
    """A scripted face: answers from a dict, everything it was told kept in ``lines``."""

    def __init__(self, answers=None, confirm=True):
        self.answers = answers or {}
        self.confirm_answer = confirm
        self.lines: list[str] = []
        self.entered: list[str] = []
        self.notifications: list[tuple[str, str, str]] = []
        self.previews: list = []

    def entering(self, step, visit, text):
        self.entered.append(step.id)

    def said(self, text, tone="info"):
        self.lines.append(text)

    def checked(self, step, outcome):
        self.lines.append(f"check {step.id}: {outcome.branch}")

    def choose(self, step, prompt, timeout_s):
        if step.id not in self.answers:
            raise AnswerMissing(f"missing answer for step {step.id!r}")
        answer = self.answers[step.id]
        if answer == "timeout":
            raise HumanTimeout(step.id)
        return ChoiceAnswer(*answer)

    def action_face(self, step, preview, timeout_s):
        face = self
        self.previews.append(preview)

        class Actions:
            def placed(self, placement): pass
            def evidence(self, breaching, problem): pass
            def confirm(self, plan):
                if face.confirm_answer == "timeout":
                    raise HumanTimeout(step.id)
                return "test" if face.confirm_answer else None
            def waiting_for_approval(self, plan, timeout_s): pass
            def approved(self, approver): pass
            def tags_not_written(self, problem): pass
            def verifying(self, window_s): pass

        return Actions()

    def confirm_change(self, step, description, timeout_s):
        return "test" if self.confirm_answer else None

    def notification(self, step, channel, text, delivery):
        self.notifications.append((channel, text, delivery))


class Notifier:
    def __init__(self, fail=False):
        self.posts: list[tuple[str, str, str]] = []
        self.fail = fail

    def describe(self):
        return "test notifier"

    def webhooks(self):
        return ("oncall", "data-owners", "model-owners")

    def post(self, webhook, text, dedupe_key):
        if self.fail:
            raise ExternalSystemError(f"webhook {webhook}: unreachable")
        self.posts.append((webhook, text, dedupe_key))
        return Delivery(status=200, ok=True, summary="HTTP 200")


@pytest.fixture
def world(tmp_path):
    world = World(tmp_path)
    yield world
    world.close()


def runner_for(world, notifier=None, source=None):
    return PlaybookRunner(world.service, source or PlaybookFiles([SHIPPED], CONTEXT), notifier or Notifier(), None,
                          is_live=lambda holder: False, sleep=lambda seconds: None)


def events(world, incident):
    return world.journal.chain(incident)[1]


def test_canary_regression_drains_the_challenger_and_journals_every_step(world):
    playbook, text = load("canary-regression")
    notifier = Notifier()
    runner = runner_for(world, notifier)
    run = runner.start(playbook, text, MODEL)
    face = Face({"decide": ("drain", "v3 fails 15 % of mobile requests")})
    end = runner.drive(run, face)
    assert end.as_planned and end.state.finished == "rolled_back"
    assert world.router.weights == {"1": 0, "2": 100, "3": 0}
    assert [p.why_target for p in face.previews] == ["chosen by the playbook"], "the preview's words, not --to"
    assert "challenger" not in world.registry.aliases
    kinds = [e.kind for e in events(world, run.state.incident_id)]
    assert kinds[0] is EventKind.INCIDENT_OPENED and kinds[1] is EventKind.PLAYBOOK_STARTED
    assert kinds[-1] is EventKind.PLAYBOOK_FINISHED
    finished = [e.payload["step_id"] for e in events(world, run.state.incident_id)
                if e.kind is EventKind.STEP_FINISHED]
    assert finished == ["orient", "candidate-errors", "champion-healthy", "decide", "drain", "settle",
                        "tell-drained", "rolled-back"]
    decision = next(e for e in events(world, run.state.incident_id) if e.kind is EventKind.DECISION
                    and e.payload.get("step_id") == "decide")
    assert decision.payload["option"] == "drain" and decision.actor.user == "alice"
    rollback = next(e for e in events(world, run.state.incident_id) if e.kind is EventKind.DECISION
                    and e.payload["option"] == "rollback")
    assert rollback.payload["reason"] == "playbook canary-regression, step drain: v3 fails 15 % of mobile requests"
    assert [p[0] for p in notifier.posts] == ["oncall"]
    assert "v3 drained" in notifier.posts[0][1] or "challenger v3 drained" in notifier.posts[0][1]


def test_a_missing_answer_stops_the_run_resumably(world):
    playbook, text = load("canary-regression")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    end = runner.drive(run, Face())
    assert end.stopped and "decide" in end.stopped and end.state.finished is None
    assert world.router.weights["3"] == 10  # nothing applied
    unfinished = runner.unfinished(MODEL, "canary-regression")
    assert [s.run_id for s in unfinished] == [run.state.run_id]
    assert unfinished[0].current == "decide"
    resumed = runner.resume(unfinished[0])
    end = runner.drive(resumed, Face({"decide": ("drain", "breach")}))
    assert end.as_planned and world.router.weights["3"] == 0
    # the steps finished before the stop were not run again
    finished = [e.payload["step_id"] for e in events(world, run.state.incident_id)
                if e.kind is EventKind.STEP_FINISHED]
    assert finished.count("candidate-errors") == 1


def test_a_run_stopped_for_an_answer_is_not_timed_out_by_the_stop(world):
    playbook, text = load("canary-regression")
    now = [world.journal.clock()]
    world.journal.clock = lambda: now[0]
    runner = runner_for(world)
    runner.clock = lambda: now[0]
    runner.drive(runner.start(playbook, text, MODEL), Face())  # stops at decide (15 minutes to answer)
    now[0] += 3600  # the answer file is fixed an hour later
    end = runner.drive(runner.resume(runner.unfinished(MODEL)[0]), Face({"decide": ("drain", "breach")}))
    assert end.state.finished == "rolled_back"


def test_a_choice_timeout_takes_its_declared_way(world):
    playbook, text = load("canary-regression")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    end = runner.drive(run, Face({"decide": "timeout"}))
    assert end.state.finished == "escalated"  # decide's on_timeout: escalate, via its notification
    assert world.router.weights["3"] == 10


def test_an_action_confirmation_timeout_aborts_without_applying(world):
    playbook, text = load("canary-regression")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    end = runner.drive(run, Face({"decide": ("drain", "breach")}, confirm="timeout"))
    assert end.state.finished == "aborted" and not end.as_planned
    assert world.router.weights["3"] == 10


def test_a_cancelled_confirmation_takes_the_failed_branch(world):
    playbook, text = load("canary-regression")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    end = runner.drive(run, Face({"decide": ("drain", "breach")}, confirm=False))
    assert end.state.finished == "escalated" and world.router.weights["3"] == 10


def test_dry_run_changes_and_journals_nothing(world):
    playbook, text = load("canary-regression")
    notifier = Notifier()
    runner = runner_for(world, notifier)
    run = runner.start(playbook, text, MODEL, dry_run=True)
    face = Face({"decide": ("drain", "drill")})
    end = runner.drive(run, face)
    assert end.as_planned
    assert world.router.weights["3"] == 10 and world.registry.aliases["challenger"] == "3"
    assert world.journal.incidents() == []
    assert notifier.posts == []
    assert any(line.startswith("dry run: drain would immediate rollback v3→v2") for line in face.lines)


def test_drift_does_not_roll_back(world):
    world.metrics.scenario = "healthy"
    playbook, text = load("data-drift")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    end = runner.drive(run, Face())
    # the fake world's champion passes accuracy: not drift, nothing rolled back
    assert end.state.finished == "not_rolled_back"
    assert world.router.weights == {"1": 0, "2": 90, "3": 10}


def test_a_resumed_run_never_posts_a_notification_twice(world):
    playbook, text = load("canary-regression")
    notifier = Notifier()
    runner = runner_for(world, notifier)
    run = runner.start(playbook, text, MODEL)
    runner.drive(run, Face({"decide": ("drain", "breach")}))
    assert len(notifier.posts) == 1
    # Rebuild the run as if it had stopped inside the notification step after posting.
    state = fold_run(run.state.run_id, events(world, run.state.incident_id))
    assert state is not None and state.notifications == {notifier.posts[0][2]: "sent"}


def test_an_interrupted_notification_is_not_posted_again(world):
    playbook, text = load("canary-regression")
    notifier = Notifier()
    runner = runner_for(world, notifier)
    # The journal says the message was rendered (about to be posted) when the run stopped.
    run = runner.start(playbook, text, MODEL)
    world.service.checkpoint = _raise_at("after-notification-post")
    with pytest.raises(_Stop):
        runner.drive(run, Face({"decide": ("drain", "breach")}))
    assert len(notifier.posts) == 1
    world.service.checkpoint = lambda name: None
    state = runner.unfinished(MODEL)[0]
    assert state.current == "tell-drained" and state.interrupted
    face = Face()
    end = runner.drive(runner.resume(state), face)
    assert end.state.finished == "rolled_back"
    assert len(notifier.posts) == 1  # not posted again
    assert "delivery to oncall unknown" in face.notifications[-1][2]


def test_an_action_interrupted_mid_way_is_reconciled_not_applied_twice(world):
    playbook, text = load("canary-regression")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    world.service.checkpoint = _raise_at("after-router-step-1")
    with pytest.raises(_Stop):
        runner.drive(run, Face({"decide": ("drain", "breach")}))
    world.service.checkpoint = lambda name: None
    world.service._holding = False  # the process "died": it holds nothing any more
    assert world.router.weights["3"] == 0 and world.registry.aliases.get("challenger") == "3"
    writes = []
    original = world.router.set_weights
    world.router.set_weights = lambda *a, **k: (writes.append(a), original(*a, **k))[1]
    state = runner.unfinished(MODEL)[0]
    assert state.current == "drain" and state.current_action_id
    face = Face()
    end = runner.drive(runner.resume(state), face)
    assert writes == []  # the router was not written again
    assert any("interrupted mid-way" in line for line in face.lines)
    assert end.state.finished == "escalated"  # partly applied: the failed branch, with the reconciled state
    kinds = [e.kind for e in events(world, run.state.incident_id)]
    assert EventKind.ACTION_FAILED in kinds
    failed = [e for e in events(world, run.state.incident_id) if e.kind is EventKind.ACTION_FAILED]
    assert failed[-1].payload.get("recovered") is True


def test_a_changed_structure_is_refused_on_resume_and_prose_accepted(world, tmp_path):
    playbook, text = load("canary-regression")
    edited = tmp_path / "canary-regression.yaml"
    edited.write_text(text)
    runner = runner_for(world, source=PlaybookFiles([tmp_path], CONTEXT))
    run = runner.start(playbook, text, MODEL)
    runner.drive(run, Face())  # stops at decide
    state = runner.unfinished(MODEL)[0]
    edited.write_text(text.replace("Drain the challenger?", "Drain the canary?"))
    resumed = runner.resume(state)
    assert resumed.notes and "wording changed" in resumed.notes[0]
    assert resumed.playbook.step("decide").title == "Drain the canary?"
    edited.write_text(text.replace("timeout: {minutes: 15, on_timeout: escalate}",
                                   "timeout: {minutes: 15, on_timeout: abort}"))
    with pytest.raises(UsageError, match="changed its steps"):
        runner.resume(state)
    edited.unlink()  # the file is gone: the journaled copy runs
    end = runner.drive(runner.resume(state), Face({"decide": ("drain", "breach")}))
    assert end.as_planned and world.router.weights["3"] == 0


def test_every_shipped_playbook_ends_in_the_fake_world_dry_run(world):
    answers = {"decide": ("drain", "drill"), "how": ("immediate", "drill")}
    for path in sorted(SHIPPED.glob("*.yaml")):
        playbook, text = load(path.stem)
        runner = runner_for(world)
        if playbook.id == "regression-after-promotion":  # the fake registry records no previous champion
            with pytest.raises(UsageError, match="neither the journal nor the registry"):
                runner.start(playbook, text, MODEL, dry_run=True)
            continue
        if playbook.id == "shadow-promotion":  # no shadow in this world (test_playbook_actions.py has one)
            with pytest.raises(UsageError, match="alias 'shadow'"):
                runner.start(playbook, text, MODEL, dry_run=True)
            continue
        run = runner.start(playbook, text, MODEL, dry_run=True)
        face = Face({k: v for k, v in answers.items()} | {"decide": _first_option(playbook, "decide")})
        end = runner.drive(run, face)
        assert end.stopped is None and end.state.finished, (path.name, face.lines)


def _first_option(playbook, step_id):
    try:
        step = playbook.step(step_id)
    except KeyError:
        return ("x", "x")
    return (step.options[0].id, "drill")


class _Stop(BaseException):
    """The process dies here: as SIGKILL, nothing after it runs (not the runner's error handling)."""


def _raise_at(boundary):
    def checkpoint(name):
        if name == boundary:
            raise _Stop(name)
    return checkpoint



def test_one_console_at_a_time_carries_a_run_out(world):
    playbook, text = load("canary-regression")
    runner = runner_for(world)
    run = runner.start(playbook, text, MODEL)
    world.service.checkpoint = _raise_at("after-router-step-1")
    with pytest.raises(_Stop):  # the first console "dies" mid-action, its run lock still held
        runner.drive(run, Face({"decide": ("drain", "breach")}))
    world.service.checkpoint = lambda name: None
    world.service._holding = False
    state = runner.unfinished(MODEL)[0]
    alive = PlaybookRunner(world.service, PlaybookFiles([SHIPPED], CONTEXT), Notifier(), None,
                           is_live=lambda holder: True)
    with pytest.raises(RefusedError, match="is being carried out by alice@host"):
        alive.resume(state)  # its holder still runs, as far as this machine can tell
    resumed = runner.resume(state)  # its holder is dead: taken over
    with pytest.raises(RefusedError, match="is being carried out"):
        alive.resume(state)
    runner.drive(resumed, Face())
    assert world.service.lock.holder("playbook-run:" + state.run_id) is None  # given back at the end


def test_a_read_only_run_refuses_actions_and_posts_nothing(world):
    playbook, text = load("canary-regression")
    notifier = Notifier()
    runner = runner_for(world, notifier)
    run = runner.start(playbook, text, MODEL, read_only=True)
    face = Face({"decide": ("drain", "breach")})
    end = runner.drive(run, face)
    assert end.state.finished == "escalated" and world.router.weights["3"] == 10
    assert notifier.posts == []
    assert "read-only console posts nothing" in face.notifications[-1][2]
    refused = [e for e in events(world, run.state.incident_id) if e.kind is EventKind.ACTION_FAILED]
    assert refused and refused[-1].payload.get("refused") is True


def test_entry_conditions_rank_the_canary_first_on_a_regression(world):
    ranked = runner_for(world).rank([load(path.stem)[0] for path in sorted(SHIPPED.glob("*.yaml"))], MODEL)
    first, match = ranked[0]
    assert first.id == "canary-regression" and (match.met, match.of) == (2, 2), match
    assert match.reasons[0].startswith("✓ candidate v3 breaches on error_rate in mobile")
    drift = next(m for p, m in ranked if p.id == "data-drift")
    assert drift.met == 0  # the champion is healthy: not drift
    world.metrics.versions = ("2", "3")
    world.registry.aliases["champion"] = "3"  # now the breaching version is the stable one
    ranked = dict((p.id, m) for p, m in runner_for(world).rank([load("canary-regression")[0]], MODEL))
    assert ranked["canary-regression"].met < 2


def test_an_error_gives_the_run_back_to_the_same_console(world):
    playbook, text = load("canary-regression")
    runner = PlaybookRunner(world.service, PlaybookFiles([SHIPPED], CONTEXT), Notifier(), None,
                            is_live=lambda holder: True, sleep=lambda seconds: None)  # this console stays alive
    run = runner.start(playbook, text, MODEL)

    class Broken(Face):
        def choose(self, step, prompt, timeout_s):
            raise RuntimeError("the face broke")

    with pytest.raises(RuntimeError):
        runner.drive(run, Broken())
    state = runner.unfinished(MODEL)[0]
    end = runner.drive(runner.resume(state), Face({"decide": ("drain", "breach")}))
    assert end.state.finished == "rolled_back"
