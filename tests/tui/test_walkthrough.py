"""The playbook walkthrough over fakes: the picker, a run from guidance to its end, the typed confirmation,
a cancel, resume offered at start, read-only, leaving the screen mid-run, errors and timeouts.

The world is the regression scenario: v3 (the challenger) fails 15 % of the mobile segment's requests.
"""

from __future__ import annotations

import threading

import pytest

from console.domain.journal import EventKind
from console.services.playbooks import AnswerMissing, HumanTimeout
from console.tui.dialogs.confirm import ConfirmDialog
from console.tui.dialogs.playbooks import PlaybookPicker
from console.tui.messages import RunProgress
from console.tui.run_face import CONFIRMED_BY, WalkthroughFace
from console.tui.run_view import ChoiceAsked, QuestionClosed
from console.tui.screens.walkthrough import WalkthroughScreen
from console.tui.widgets.marked_options import MarkedOptionList
from console.tui.widgets.run_section import RunSection
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import MODEL, World

CANARY_PATH = ["orient", "candidate-errors", "champion-healthy", "decide", "drain", "settle", "tell-drained",
               "rolled-back"]
SIZES = [(80, 24), (160, 50)]


# -- helpers ------------------------------------------------------------------------------------------

async def first_matrix(pilot, app) -> None:
    await wait_until(pilot, lambda: app.snapshot is not None, what="the first judged matrix")
    await pilot.pause()


async def open_picker(pilot, app) -> PlaybookPicker:
    await first_matrix(pilot, app)
    await pilot.press("p")
    await wait_until(pilot, lambda: isinstance(app.screen, PlaybookPicker) and app.screen.ranked is not None,
                     what="the ranked playbooks")
    await pilot.pause()
    return app.screen


def option_ids(app) -> list[str]:
    return [option.id or "" for option in app.screen.query_one(MarkedOptionList).options]


async def the_choice(pilot, app) -> ChoiceAsked:
    await wait_until(pilot, lambda: app.run_view is not None and isinstance(app.run_view.question, ChoiceAsked),
                     what="the run's choice")
    await pilot.pause()
    return app.run_view.question


async def the_confirmation(pilot, app) -> ConfirmDialog:
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the typed confirmation")
    await pilot.pause()
    return app.screen


async def the_end(pilot, app) -> None:
    await wait_until(pilot, lambda: app.run_view is not None and not app.run_view.active, timeout=20,
                     what="the run's end")
    await pilot.pause()


def section(app, step_id: str):
    return next(s for s in app.run_view.sections if s.step_id == step_id)


def run_events(world: World, kind: EventKind) -> list:
    incident = world.journal.open_incident_of(MODEL)
    assert incident is not None
    return [e for e in world.journal.chain(incident.incident_id)[1] if e.kind is kind]


def finished_steps(world: World) -> list[str]:
    return [e.payload["step_id"] for e in run_events(world, EventKind.STEP_FINISHED)]


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


class StopAtDecide:
    """A headless face that walks up to the choice and stops there, as a missing answer stops a drill."""

    def entering(self, step, visit, text): pass
    def said(self, text, tone="info"): pass
    def checked(self, step, outcome): pass
    def notification(self, step, channel, text, delivery): pass

    def choose(self, step, prompt, timeout_s):
        raise AnswerMissing(f"missing answer for step {step.id!r}")

    def action_face(self, step, preview, timeout_s):
        raise AssertionError("no action before the choice")

    def confirm_change(self, step, description, timeout_s):
        raise AssertionError("no change before the choice")


def stopped_run(world: World) -> str:
    runner = world.playbooks()
    loaded = runner.source.find("canary-regression")
    run = runner.start(loaded.playbook, loaded.text, MODEL)
    end = runner.drive(run, StopAtDecide())
    assert end.stopped and end.state.current == "decide"
    return run.state.run_id


# -- the walkthrough ------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_responder_walks_canary_regression_to_its_end(world, size):
    app = console(world)
    async with app.run_test(size=size) as pilot:
        await open_picker(pilot, app)
        assert option_ids(app)[0] == "start:canary-regression", option_ids(app)
        text = screen_text(app)
        assert "canary-regression v1  matches 2 of 2" in text and "✓ candidate v3" in text

        await pilot.press("enter")
        question = await the_choice(pilot, app)
        assert isinstance(app.screen, WalkthroughScreen)
        assert question.step_id == "decide"
        assert [o for o, _ in question.options] == ["drain", "watch", "hand-over"]
        assert dict(question.options)["drain"].startswith("Drain v3 now"), "option labels are rendered"

        # The guidance shows (Markdown, references filled in).
        orient = section(app, "orient")
        assert "**fraud-detector**" in orient.text and "**v3**" in orient.text
        widget = next(w for w in app.screen.query(RunSection) if w.section is orient)
        assert widget.query_one(".section-text").display
        # The check shows FAIL with its reason and the judged cells.
        check = section(app, "candidate-errors").check
        assert check is not None and check.branch == "fail" and check.verdict == "✗ FAIL"
        assert "1 BREACH" in check.reason and "mobile" in check.reason
        assert any(line.startswith("mobile  ✗ BREACH  15.0%") for line in check.cells), check.cells
        assert section(app, "champion-healthy").check.branch == "pass"

        # Visible now: the status, the step list, the question and its countdown.
        text = screen_text(app)
        for words in ("? YOUR ANSWER", "✓ candidate-errors fail", "▶ decide", "· watch", "▸ drain",
                      "15:00 left to answer, then it escalates", "reason", "✗ 1 breaching"):
            assert words in text, (words, text)

        # Enter on an option without a reason: a reason is required, nothing is answered.
        assert app.focused is app.screen.query_one("#question-options")
        await pilot.press("enter")
        await pilot.pause()
        assert any("a reason is required" in m for m in messages(app))
        assert app.run_view.question is question and app.focused.id == "question-reason"
        assert "reason for drain" in screen_text(app)
        await pilot.press(*"v3 fails 15% of mobile requests", "enter")

        dialog = await the_confirmation(pilot, app)
        assert app.focused.id == "cancel", "Cancel is focused when the confirmation opens"
        assert "(step drain)" in dialog.title_text
        assert dialog.note == "Playbook step drain: no answer in 10 min → abort"
        await pilot.press(*MODEL, "enter")
        await the_end(pilot, app)

        assert world.router.weights == {"1": 0, "2": 100, "3": 0}
        assert world.registry.aliases == {"champion": "2"}
        assert app.run_view.outcome == "rolled_back" and app.run_view.error is None
        assert isinstance(app.screen, WalkthroughScreen)
        assert "✓ ENDED: rolled_back" in screen_text(app)
        shown = section(app, "tell-drained").notification
        assert shown is not None and shown.posted and shown.delivery == "posted: HTTP 200"
        assert "challenger v3 drained" in shown.text
        widget = next(w for w in app.screen.query(RunSection) if w.section.step_id == "tell-drained")
        assert widget.query_one(".section-notification").display
        assert "copy_message" in {b.action for (_, b, enabled, _) in app.active_bindings.values() if enabled}

        said = [text for text, _ in section(app, "decide").lines]
        assert "decide: Drain v3 now (traffic back to the champion) — v3 fails 15% of mobile requests" in said

    assert finished_steps(world) == CANARY_PATH
    decisions = run_events(world, EventKind.DECISION)
    choice = next(d for d in decisions if d.payload.get("step_id") == "decide")
    assert choice.payload["option"] == "drain" and choice.payload["reason"] == "v3 fails 15% of mobile requests"
    assert choice.actor.user == "alice"
    rollback = next(d for d in decisions if d.payload.get("option") == "rollback")
    assert rollback.payload["confirmed_by"] == CONFIRMED_BY
    assert [p[0] for p in world.notifier.posts] == ["oncall"]
    [finished] = run_events(world, EventKind.PLAYBOOK_FINISHED)
    assert finished.payload["outcome"] == "rolled_back"


async def test_a_reason_typed_on_the_options_lands_in_the_reason_field(world):
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(pilot, app)
        await pilot.press("enter")
        question = await the_choice(pilot, app)
        assert app.focused.id == "question-options"
        # "b" and "q" are the screen's "back" keys: typed on the options they are letters of the reason.
        await pilot.press(*"breach in mobile", "enter")
        await pilot.pause()
        assert isinstance(app.screen, WalkthroughScreen) and app.run_view.question is question
        assert app.screen.query_one("#question-reason").value == "breach in mobile"
        assert app.focused.id == "question-options" and any("now choose an option" in m for m in messages(app))
        await pilot.press("enter")  # drain, with the reason typed first
        await the_confirmation(pilot, app)
        await pilot.press("enter")  # Cancel is focused: nothing changes
        await the_end(pilot, app)
    choice = next(d for d in run_events(world, EventKind.DECISION) if d.payload.get("step_id") == "decide")
    assert choice.payload["option"] == "drain" and choice.payload["reason"] == "breach in mobile"


async def test_cancel_at_the_confirmation_takes_the_failed_branch(world):
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(pilot, app)
        await pilot.press("enter")
        await the_choice(pilot, app)
        await pilot.press("tab", *"drain it", "enter")  # a reason first, then the option
        await pilot.pause()
        assert app.focused.id == "question-options" and any("now choose an option" in m for m in messages(app))
        await pilot.press("enter")
        await the_confirmation(pilot, app)
        await pilot.press("enter")  # Cancel is focused: Enter cancels
        await the_end(pilot, app)
        assert world.router.weights == {"1": 0, "2": 90, "3": 10}
        assert app.run_view.outcome == "escalated"
        rows = {row.id: row for row in app.run_view.rows()}
        assert rows["drain"].outcome == "failed" and rows["tell-failure"].status == "done"
        assert "✓ drain failed" in screen_text(app) or "drain failed" in screen_text(app)
    steps = finished_steps(world)
    assert steps[-3:] == ["drain", "tell-failure", "escalated"]
    assert any(d.payload["option"] == "cancel" for d in run_events(world, EventKind.DECISION))


async def test_resume_is_offered_at_start_and_takes_up_the_run_where_it_stopped(world):
    run_id = stopped_run(world)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await first_matrix(pilot, app)
        await wait_until(pilot, lambda: any("press p to resume it" in m for m in messages(app)),
                         what="the offer to resume")
        assert any(run_id in m and "decide" in m for m in messages(app))
        header = "\n".join(line.plain for line in app.screen.query_one("#status-header").lines)
        assert f"↻ run {run_id} of canary-regression stopped at step decide: press p to resume it" in header
        await open_picker(pilot, app)
        assert option_ids(app)[0] == f"resume:{run_id}"
        assert f"↻ resume {run_id} of canary-regression at step decide" in screen_text(app)
        await pilot.press("enter")
        question = await the_choice(pilot, app)
        assert question.step_id == "decide" and app.run_view.run_id == run_id and app.run_view.resumed
        rows = {row.id: row for row in app.run_view.rows()}
        assert rows["candidate-errors"].status == "done" and rows["decide"].status == "current"
        await pilot.press("enter", *"resumed: still breaching", "enter")
        await the_confirmation(pilot, app)
        await pilot.press(*MODEL, "enter")
        await the_end(pilot, app)
        assert app.run_view.outcome == "rolled_back" and world.router.weights["3"] == 0
    assert finished_steps(world).count("candidate-errors") == 1, "steps done before the stop are not run again"
    assert world.playbooks().unfinished(MODEL) == []


async def test_leaving_the_walkthrough_keeps_the_question_answerable(world):
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(pilot, app)
        await pilot.press("enter")
        await the_choice(pilot, app)
        await pilot.press("escape")  # q and b typed on the options are letters of the reason
        await wait_until(pilot, lambda: not isinstance(app.screen, WalkthroughScreen), what="the overview")
        assert "? playbook canary-regression waits for your answer at decide (press p)" in screen_text(app)
        assert app.run_active and world.router.weights["3"] == 10
        await pilot.press("r")  # the console's own rollback waits while a run is under way
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, WalkthroughScreen), what="the walkthrough again")
        await pilot.pause()
        assert app.focused.id == "question-options" and "▸ drain" in screen_text(app)
        await pilot.press("down", "down", "enter", *"owners know the model", "enter")  # hand-over
        await the_end(pilot, app)
        assert app.run_view.outcome == "escalated" and world.router.weights["3"] == 10


async def test_a_read_only_console_walks_the_playbook_but_its_action_is_refused_and_journaled(world):
    app = console(world, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(pilot, app)
        assert "read-only console: a run's action steps are refused" in screen_text(app)
        await pilot.press("enter")
        await the_choice(pilot, app)
        await pilot.press("enter", *"drill from a read-only console", "enter")
        await the_end(pilot, app)
        assert not any(isinstance(s, ConfirmDialog) for s in app.screen_stack)
        assert world.router.weights == {"1": 0, "2": 90, "3": 10}
        assert any("refused: the console is in --read-only mode" in text for text, _ in section(app, "drain").lines)
        assert app.run_view.outcome == "escalated"
    [refused] = run_events(world, EventKind.ACTION_FAILED)
    assert refused.payload["refused"] is True and "--read-only" in refused.payload["reason"]


async def test_an_error_in_the_run_is_a_visible_state_and_the_console_stays(world, monkeypatch):
    runner = world.playbooks()

    def broken(run, face):
        raise RuntimeError("the runner broke")

    monkeypatch.setattr(runner, "drive", broken)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(pilot, app)
        await pilot.press("enter")
        await the_end(pilot, app)
        assert app.is_running and isinstance(app.screen, WalkthroughScreen)
        assert app.run_view.status == "failed"
        text = screen_text(app)
        assert "✗ FAILED" in text and "✗ the run stopped on an error: unexpected error:" in text
        assert app.run_view.error == "unexpected error: RuntimeError: the runner broke"
        assert any("the runner broke" in m for m in messages(app))
    notes = [e.payload["text"] for e in run_events(world, EventKind.NOTE)]
    assert any("stopped on an error" in n and "the runner broke" in n for n in notes)


async def test_closing_the_console_mid_question_stops_the_run_resumably(world):
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_picker(pilot, app)
        await pilot.press("enter")
        await the_choice(pilot, app)
        face = app.run_face
    assert face is not None and face.abandoned.is_set()
    [state] = world.playbooks().unfinished(MODEL)
    assert state.current == "decide" and "decide" not in finished_steps(world)


async def test_with_the_metrics_down_the_playbooks_are_listed_unranked(world):
    world.metrics.mode = "down"
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "metrics" in app.readings, what="the metrics' first reading")
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PlaybookPicker) and app.screen.ranked is not None,
                         what="the playbooks")
        ids = option_ids(app)
        assert "start:canary-regression" in ids and "start:data-drift" in ids
        assert app.screen.ranked.rank_error is not None and "unreachable" in app.screen.ranked.rank_error
        # At the top, where it is seen without scrolling (waited for: the list paints after the ranking arrives).
        await wait_until(pilot, lambda: "! not ranked:" in screen_text(app), what="the note on the ranking")


async def test_help_and_the_command_palette_offer_the_playbooks(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        assert "Playbooks" in [c.title for c in app.get_system_commands(app.screen)]
        assert "p playbooks" in screen_text(app)
        await pilot.press("f1")
        await pilot.pause()
        text = screen_text(app)
        assert "playbooks: pick one ranked on the current verdicts" in text and "Esc / q / b" in text


# -- the face on its own: timeouts and a closing console ----------------------------------------------------

class Posted:
    """Stands in for the app: keeps what the face posts."""

    def __init__(self) -> None:
        self.events: list = []

    def post_message(self, message) -> bool:
        assert isinstance(message, RunProgress)
        self.events.append(message.event)
        return True


def decide_step(world: World):
    return world.playbooks().source.find("canary-regression").playbook.step("decide")


def test_an_unanswered_choice_times_out(world):
    app = Posted()
    face = WalkthroughFace(app, poll_s=0.01)  # type: ignore[arg-type]
    with pytest.raises(HumanTimeout):
        face.choose(decide_step(world), "Drain?", 0.05)
    assert isinstance(app.events[0], ChoiceAsked) and app.events[0].on_timeout == "escalate"
    assert app.events[-1] == QuestionClosed("decide", "timeout")
    assert face.pending is None


def test_a_question_nobody_can_answer_stops_the_run(world):
    app = Posted()
    face = WalkthroughFace(app, poll_s=0.01)  # type: ignore[arg-type]
    step = decide_step(world)  # read before the clock starts: reading the playbooks may outlast the 0.05 s
    threading.Timer(0.05, face.abandoned.set).start()
    with pytest.raises(AnswerMissing, match="resumable"):
        face.choose(step, "Drain?", 60)
    assert app.events[-1] == QuestionClosed("decide", "abandoned")
    with pytest.raises(AnswerMissing):
        face.said("a wait step's next evaluation")  # a closing console stops a wait step too


def test_a_check_shows_its_counts_in_whole_numbers():
    from console.domain.metrics import CellCounts, Criteria, Direction, MetricSpec, Unit
    from console.domain.playbook_run import CheckOutcome
    from console.domain.verdicts import State, Verdict
    from console.tui.run_face import cell_lines

    spec = MetricSpec("error_rate", "errors", "q", Unit.RATIO, Direction.HIGHER_IS_WORSE, Criteria(threshold=0.05))
    cell = Verdict("error_rate", "3", "mobile", State.BREACH, 0.9637, None, "why", CellCounts(702.712, 729.153))
    [line] = cell_lines(CheckOutcome("fail", State.BREACH, "why", (cell,)), spec)
    assert line.endswith("  703/729"), line
