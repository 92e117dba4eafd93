"""The playbook walkthrough: the steps with their progress, the story of the run, the open question.

The run itself is carried out by the app (a thread worker driving the runner);
this screen only draws the :class:`~console.tui.run_view.RunView` it is given
and hands the responder's answers back as a
:class:`~console.tui.messages.ChoiceAnswered` message: it knows nothing of the
app. Leaving it (Esc, q, b) does not stop the run: the overview says when it
waits for an answer, and ``p`` comes back here.

Layout, top to bottom: three header lines (status and playbook; model, inputs,
run and incident; the live verdicts), then the step list on the left and, on
the right, the story (one section per step visit, newest at the bottom) above
the open question (the prompt, the options, the reason, the time left).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, OptionList, Static

from console.tui.messages import ChoiceAnswered
from console.tui.run_view import ChoiceAsked, ConfirmAsked, RunView, StepRow, countdown
from console.tui.widgets.line_stack import LineStack
from console.tui.widgets.marked_options import MarkedOptionList
from console.tui.widgets.run_section import RunSection
from console.tui.widgets.steady_input import SteadyInput

ROW_SYMBOL = {"done": "✓", "current": "▶", "pending": "·"}
STATUS = {
    "starting": ("… STARTING", "bold"),
    "running": ("▶ RUNNING", "bold"),
    "waiting": ("? YOUR ANSWER", "bold yellow"),
    "stopped": ("! STOPPED", "bold yellow"),
    "failed": ("✗ FAILED", "bold red"),
}


def status_badge(view: RunView) -> Text:
    """The run's state in words and a symbol: running, waiting for an answer, ended (and how)."""
    if view.status == "ended":
        outcome = view.outcome or "?"
        good = outcome in ("rolled_back", "not_rolled_back", "resolved")
        return Text(f"{'✓' if good else '!'} ENDED: {outcome}", style="bold green" if good else "bold yellow")
    word, style = STATUS[view.status]
    return Text(word, style=style)


def header_lines(view: RunView, verdicts: Text) -> list[Text]:
    """Status and playbook; model, inputs, run and incident; the live verdicts."""
    first = status_badge(view)
    first.append("  ")
    first.append(f"{view.playbook_id} v{view.playbook_version}" if view.playbook_version else view.playbook_id,
                 style="bold")
    if view.title:
        first.append(f" · {view.title}")
    facts = [view.model, view.input_text(), view.run_id, view.incident_id]
    second = Text(" · ".join(fact for fact in facts if fact))
    third = Text("live  ", style="bold")
    third.append_text(verdicts)
    return [first, second, third]


def step_line(row: StepRow) -> Text:
    """``✓ candidate-errors fail``, ``▶ decide``, ``· watch``."""
    style = {"current": "bold", "pending": "dim"}.get(row.status, "")
    line = Text(f"{ROW_SYMBOL[row.status]} {row.id}", style=style)
    if row.outcome:
        again = f" ×{row.visits}" if row.visits > 1 else ""
        line.append(f" {row.outcome}{again}", style="italic" if row.status == "done" else "dim")
    return line


class WalkthroughScreen(Screen[None]):
    """The walkthrough of a playbook run.

    Args:
        view: the run's state, kept up to date by whoever drives the run (then :meth:`sync` draws it).
        verdicts: the live verdicts for the header's third line, as the overview's header says them.
        clock: the console's clock (the time left to answer is drawn from it).
    """

    BINDINGS = [
        Binding("escape,q,b", "back", "back"),
        Binding("c", "copy_message", "copy message"),
    ]

    def __init__(self, view: RunView, verdicts: Callable[[], Text], clock: Callable[[], float]) -> None:
        super().__init__()
        self.view = view
        self.verdicts = verdicts
        self.clock = clock
        self.sections: list[RunSection] = []
        self.question_key: tuple[str, int] | None = None
        self.chosen: str | None = None
        """The option picked with Enter before a reason was typed: Enter in the reason field answers it."""
        self.clock_timer: Timer | None = None
        self.clock_text = ""
        self.ready = False
        """Set once the widgets exist (``is_mounted`` turns true only after ``on_mount``)."""

    def follow(self, view: RunView) -> None:
        """Draw another run's view from now on (a run started while this screen stayed under a dialog)."""
        self.view = view
        self.sync()

    def compose(self) -> ComposeResult:
        yield LineStack(id="run-header")
        with Horizontal(id="run-body"):
            with VerticalScroll(id="run-steps-pane"):
                yield Static(Text("Steps", style="bold underline"), id="run-steps-title")
                yield LineStack(id="run-steps")
            with Vertical(id="run-main"):
                yield VerticalScroll(id="run-story")
                with Vertical(id="run-question"):
                    yield Static(id="question-prompt")
                    yield MarkedOptionList(id="question-options")
                    with Horizontal(id="question-reason-row"):
                        yield Label("reason", id="question-reason-label")
                        yield SteadyInput(placeholder="why? required, journaled with your name",
                                          id="question-reason")
                    yield Label("", id="question-clock")
        yield Footer()

    def on_mount(self) -> None:
        self.ready = True
        self.clock_timer = self.set_interval(1.0, self._tick, pause=True, name="walkthrough countdown")
        self.sync()

    # -- drawing ----------------------------------------------------------------------------------
    def sync(self) -> None:
        """Draw the run's view: only what changed is repainted."""
        view = self.view
        if not self.ready:
            return
        self.paint_header()
        self.query_one("#run-steps", LineStack).show([step_line(row) for row in view.rows()])
        story = self.query_one("#run-story", VerticalScroll)
        grew = False
        for index, section in enumerate(view.sections):
            if index < len(self.sections):
                widget = self.sections[index]
                widget.section = section
                grew = widget.draw() or grew
            else:
                widget = RunSection(section)
                self.sections.append(widget)
                story.mount(widget)
                grew = True
        self._show_question(view)
        if grew:
            story.call_after_refresh(story.scroll_end, animate=False)

    def paint_header(self) -> None:
        """The header's three lines (the live verdicts change with every new snapshot)."""
        if not self.ready:
            return
        self.query_one("#run-header", LineStack).show(header_lines(self.view, self.verdicts()))

    def _show_question(self, view: RunView) -> None:
        panel = self.query_one("#run-question", Vertical)
        question = view.question
        key = (question.step_id, id(question)) if question is not None else None
        if key == self.question_key:
            return
        self.question_key = key
        self.chosen = None
        options = self.query_one("#question-options", MarkedOptionList)
        reason_row = self.query_one("#question-reason-row")
        prompt = self.query_one("#question-prompt", Static)
        if question is None:
            panel.display = False
            if self.clock_timer is not None:
                self.clock_timer.pause()
            if self.focused is None or not self.focused.is_attached or self.focused in panel.query("*"):
                self.query_one("#run-story").focus()
            return
        panel.display = True
        if isinstance(question, ChoiceAsked):
            prompt.display = False  # the question itself is the story's last lines, above
            options.display = reason_row.display = True
            options.show([(option_id, Text.assemble((option_id, "bold"), f"  {label}"), False)
                          for option_id, label in question.options])
            reason = self.query_one("#question-reason", SteadyInput)
            reason.value = ""
            self.query_one("#question-reason-label", Label).update("reason")
            options.focus()
        else:
            prompt.display = True
            prompt.update(Text.assemble(("Waiting for the typed confirmation of ", "bold"), question.what,
                                        " on the confirmation dialog"))
            options.display = reason_row.display = False
        self._tick()
        if self.clock_timer is not None:
            self.clock_timer.resume()

    def _tick(self) -> None:
        """The time left to answer, redrawn at most once a second (and only when its text changes)."""
        question = self.view.question
        if question is None or not self.ready:
            return
        left = countdown(question.asked_at, question.timeout_s, question.full_s, self.clock())
        then = question.on_timeout
        then_text = {"abort": "the run aborts", "escalate": "it escalates"}.get(then, f"{then} is taken")
        text = f"{left} left to answer, then {then_text}"
        if text != self.clock_text:
            self.clock_text = text
            self.query_one("#question-clock", Label).update(text)

    # -- answering --------------------------------------------------------------------------------
    def _question(self) -> ChoiceAsked | ConfirmAsked | None:
        return self.view.question

    def _answer(self, option_id: str, reason: str) -> None:
        """Hand the answer to whoever drives the run; it says so when the question closed meanwhile."""
        question = self._question()
        if isinstance(question, ChoiceAsked):
            self.post_message(ChoiceAnswered(question.step_id, option_id, reason))

    @on(OptionList.OptionSelected, "#question-options")
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        reason = self.query_one("#question-reason", SteadyInput).value.strip()
        if reason:
            self._answer(option_id, reason)
            return
        self.chosen = option_id
        self.query_one("#question-reason-label", Label).update(f"reason for {option_id}")
        self.notify(f"a reason is required: type why you choose {option_id}, then Enter", title="reason required",
                    severity="warning", timeout=6)
        self.query_one("#question-reason", SteadyInput).focus()

    @on(events.Key)
    def _type_into_reason(self, event: events.Key) -> None:
        """A character typed on the options starts the reason: it lands in the reason field, and the focus with it.

        Without this a reason typed before choosing was lost (and q or b left the screen mid-sentence).
        """
        options = self.query_one("#question-options", MarkedOptionList)
        reason = self.query_one("#question-reason", SteadyInput)
        if self.focused is not options or not event.is_printable or event.character is None or not reason.display:
            return
        event.stop()
        event.prevent_default()  # nor a binding of the screen (q, b, c)
        reason.focus()
        reason.insert_text_at_cursor(event.character)

    @on(Input.Submitted, "#question-reason")
    def _reason_submitted(self, event: Input.Submitted) -> None:
        reason = event.value.strip()
        if not reason:
            self.notify("a reason is required: it is journaled with your choice", title="reason required",
                        severity="warning", timeout=6)
            return
        if self.chosen is not None:
            self._answer(self.chosen, reason)
            return
        self.query_one("#question-options", MarkedOptionList).focus()
        self.notify("now choose an option: ↑↓, then Enter", timeout=4)

    # -- keys -------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "copy_message":
            return any(s.notification is not None for s in self.view.sections)
        return True

    def action_back(self) -> None:
        if self.view.active:
            self.notify("the run goes on: p comes back to it", timeout=4)
        self.dismiss()

    def action_copy_message(self) -> None:
        shown = [s.notification for s in self.view.sections if s.notification is not None]
        if not shown:
            return
        self.app.copy_to_clipboard(shown[-1].text)
        self.notify("notification text sent to the clipboard (OSC 52: your terminal must allow it)", timeout=5)
