"""The console's part in a playbook run (``console.services.playbooks.RunFace``).

The runner's ``drive`` runs in a thread worker started by the app. This face
turns each of its calls into a :class:`~console.tui.messages.RunProgress`
message (an event of :mod:`console.tui.run_view`) and, for the human steps,
blocks the worker on a :class:`~console.tui.question.PendingQuestion` until the
responder answers on the event loop, exactly as the rollback's
:class:`~console.tui.face.ConsoleFace` does for its confirmation. Like that
face, it only posts messages: it knows nothing of the app that handles them.

- a choice is answered on the walkthrough screen (an option and a reason);
- an action's typed confirmation is the console's confirmation dialog
  (Cancel focused, the model's name typed), asked for with a
  :class:`~console.tui.messages.RunConfirmationWanted`;
- a question not answered within the step's timeout raises
  :class:`~console.services.playbooks.HumanTimeout` (the runner takes the
  step's ``on_timeout``);
- a question nobody can answer any more (the console closes, the terminal went
  away) raises :class:`~console.services.playbooks.AnswerMissing`: the run
  stops where it is, journaled, and stays resumable. Once the console is
  closing, the next line of progress stops the run the same way, so a wait step
  does not keep the process alive.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.domain.metrics import MetricSpec, format_count, format_value
from console.domain.playbook import Step
from console.domain.playbook_run import CheckOutcome
from console.domain.rollback import Plan
from console.domain.verdicts import SYMBOL, WORD
from console.services.journal import Placement
from console.services.playbooks import AnswerMissing, ChoiceAnswer, HumanTimeout, Run
from console.services.rollback import Preview, RollbackService
from console.tui.face import ActionLines, MessageTarget
from console.tui.messages import RunConfirmationWanted, RunProgress, RunQuestionWithdrawn
from console.tui.question import PendingQuestion
from console.tui.run_view import (
    CheckShown,
    ChoiceAsked,
    ConfirmAsked,
    NotificationShown,
    PlanShown,
    QuestionClosed,
    RunBegan,
    RunEvent,
    RunSaid,
    StepEntered,
    StepOutline,
)

if TYPE_CHECKING:
    from rich.console import RenderableType

    from console.services.actions import ActionFace

CONFIRMED_BY = "typed the model name in the console (playbook walkthrough)"
STOPPED = "the console closed with the run waiting at step {step}: it stopped there and is resumable (p)"


def _full_timeout_s(step: Step, timeout_s: float) -> float:
    return step.timeout.minutes * 60 if step.timeout else timeout_s


def action_title(plan: Plan) -> str:
    """``Rollback``, ``Gradual rollback`` or ``Undo``: the confirmation dialog's words for the plan."""
    if plan.undoes:
        return "Undo"
    return "Gradual rollback" if plan.mode.value == "gradual" else "Rollback"


def plan_lines(preview: Preview) -> tuple[str, ...]:
    """An action's preview in a few lines: what moves, where traffic goes, the signature check."""
    plan = preview.plan
    if plan.is_noop:
        return (f"plan {plan.action_id}: nothing to change ({preview.already or 'already in the planned state'})",)
    weights = ", ".join(f"v{v} {plan.weights_before.get(v)}→{w}" for v, w in sorted(plan.weights_after.items())
                        if plan.weights_before.get(v) != w) or "unchanged"
    aliases = ", ".join(f"{m.alias} {'v' + m.before if m.before else '-'}→{'v' + m.after if m.after else '(removed)'}"
                        for m in plan.alias_moves) or "unchanged"
    signature = ("✓ " if preview.signature.compatible else "✗ ") + f"signatures: {preview.signature.reason}"
    return (f"plan {plan.action_id}: {plan.mode.value} {'undo' if plan.undoes else 'rollback'} "
            f"v{plan.leave} → v{plan.target}", f"weights {weights}", f"aliases {aliases}", signature)


def cell_lines(outcome: CheckOutcome, spec: MetricSpec | None) -> tuple[str, ...]:
    """The judged cells of a check, one line each: segment, symbol and word, value, stable's value, counts."""
    lines = []
    for cell in outcome.cells:
        unit = spec.unit if spec is not None else None
        value = format_value(cell.value, unit) if unit is not None else str(cell.value)
        line = f"{cell.segment}  {SYMBOL[cell.state]} {WORD[cell.state]}  {value}"
        if cell.baseline is not None and unit is not None:
            line += f" (stable {format_value(cell.baseline, unit)})"
        if cell.counts is not None:
            line += f"  {format_count(cell.counts.numerator)}/{format_count(cell.counts.denominator)}"
        lines.append(line)
    return tuple(lines)


class WalkthroughFace:
    """The walkthrough's face: progress as messages, questions answered on the event loop.

    Args:
        target: where the run's progress and questions go (the running console).
        clock: the console's clock (the countdown is drawn from it).
        poll_s: how often a blocked worker looks whether the console is closing.
    """

    def __init__(self, target: MessageTarget, clock: Callable[[], float] = time.time,
                 poll_s: float = 0.25) -> None:
        self.target = target
        self.clock = clock
        self.poll_s = poll_s
        self.run: Run | None = None
        self.service: RollbackService | None = None
        self.pending: PendingQuestion | None = None
        self.abandoned = threading.Event()
        """Set when the console closes: a question nobody can answer stops the run (resumable)."""
        self.applying = threading.Event()
        """Set from a confirmed action until the run moves on: a closing console lets it finish first."""

    # -- set-up (in the worker) ----------------------------------------------------------------
    def attach(self, run: Run, service: RollbackService) -> None:
        """The run this face follows (started or resumed), and the rollback use case it acts through."""
        self.run = run
        self.service = service

    def began(self, resumed: bool) -> None:
        """Tell the console what the run is: its steps, inputs, and what a resume found done."""
        assert self.run is not None
        run, state = self.run, self.run.state
        playbook = run.playbook
        self._post(RunBegan(
            run_id=state.run_id, incident_id=state.incident_id, model=state.model, playbook_id=playbook.id,
            playbook_version=playbook.version, title=playbook.title,
            steps=tuple(StepOutline(s.id, s.kind.value, s.title) for s in playbook.steps),
            inputs=tuple(state.inputs.items()), results=tuple(state.results), current=state.current,
            resumed=resumed))

    # -- plumbing --------------------------------------------------------------------------------
    def _post(self, event: RunEvent) -> None:
        self.target.post_message(RunProgress(event))

    def _stop_if_closing(self, step_id: str) -> None:
        if self.abandoned.is_set():
            raise AnswerMissing(STOPPED.format(step=step_id))

    def _current(self) -> str:
        return (self.run.state.current or "?") if self.run is not None else "?"

    def _wait(self, question: PendingQuestion, timeout_s: float) -> object:
        """Block the worker until ``question`` is answered; :class:`HumanTimeout` or :class:`AnswerMissing`."""
        deadline = time.monotonic() + timeout_s
        self.pending = question
        try:
            while not question.answered.wait(self.poll_s):
                if self.abandoned.is_set() and question.close():
                    self._post(QuestionClosed(question.step_id, "abandoned"))
                    raise AnswerMissing(STOPPED.format(step=question.step_id))
                if time.monotonic() >= deadline and question.close():
                    self._post(QuestionClosed(question.step_id, "timeout"))
                    if question.kind == "confirm":  # its dialog comes down; a choice is on the walkthrough
                        self.target.post_message(RunQuestionWithdrawn(question))
                    raise HumanTimeout(question.step_id)
            self._post(QuestionClosed(question.step_id, "answered"))
            return question.answer
        finally:
            self.pending = None

    def _confirm(self, step: Step, title: str, body: RenderableType, verb: str, what: str, timeout_s: float) -> bool:
        """The typed confirmation on the console's dialog; whether the model's name was typed."""
        if self.run is None:
            return False
        full = _full_timeout_s(step, timeout_s)
        on_timeout = step.timeout.on_timeout if step.timeout else "abort"
        question = PendingQuestion(step.id, "confirm")
        asked_at = self.clock()
        self._post(ConfirmAsked(step.id, what, asked_at, timeout_s, full, on_timeout))
        note = f"Playbook step {step.id}: no answer in {math.ceil(min(full, timeout_s) / 60)} min → {on_timeout}"
        if not self.target.post_message(RunConfirmationWanted(question, title, body, self.run.state.model, verb,
                                                              note)):
            raise AnswerMissing(STOPPED.format(step=step.id))  # the console is closing: nobody can confirm
        return bool(self._wait(question, timeout_s))

    # -- the RunFace protocol ----------------------------------------------------------------------
    def entering(self, step: Step, visit: int, text: str) -> None:
        self.applying.clear()
        self._stop_if_closing(step.id)
        results = tuple(self.run.state.results) if self.run is not None else ()
        self._post(StepEntered(step.id, visit, step.kind.value, step.title, text, results))

    def said(self, text: str, tone: str = "info") -> None:
        self._stop_if_closing(self._current())
        self._post(RunSaid(text, tone))

    def checked(self, step: Step, outcome: CheckOutcome) -> None:
        spec = None
        if self.service is not None:
            spec = next((m for m in self.service.catalogue if m.name == step.metric), None)
        version = self.run.state.inputs.get(step.version, step.version) if self.run is not None else step.version
        verdict = f"{SYMBOL[outcome.state]} {outcome.branch.upper().replace('_', ' ')}"
        self._post(CheckShown(step.id, step.metric or "", version, outcome.branch, verdict, outcome.reason,
                              cell_lines(outcome, spec)))

    def choose(self, step: Step, prompt: str, timeout_s: float) -> ChoiceAnswer:
        self._stop_if_closing(step.id)
        question = PendingQuestion(step.id, "choice")
        on_timeout = step.timeout.on_timeout if step.timeout else "abort"
        self.pending = question
        options = tuple((option.id, option.label) for option in step.options)
        self._post(ChoiceAsked(step.id, step.title or step.id, prompt, options,
                               self.clock(), timeout_s, _full_timeout_s(step, timeout_s), on_timeout))
        answer = self._wait(question, timeout_s)
        assert isinstance(answer, ChoiceAnswer)
        return answer

    def action_face(self, step: Step, preview: Preview | None, timeout_s: float) -> ActionFace:
        if preview is not None:
            self._post(PlanShown(step.id, plan_lines(preview)))
        return _RunActionFace(self, step, preview, timeout_s)

    def confirm_change(self, step: Step, description: str, timeout_s: float) -> str | None:
        self._post(PlanShown(step.id, (f"{step.action.value if step.action else 'change'}: {description}",)))
        from rich.text import Text

        body = Text(f"Step {step.id} will {description}.")
        typed = self._confirm(step, f"Step {step.id}", body, "Apply", description, timeout_s)
        return CONFIRMED_BY if typed else None

    def notification(self, step: Step, channel: str, text: str, delivery: str) -> None:
        posted = delivery.startswith("posted") or delivery.startswith("already posted")
        self._post(NotificationShown(step.id, channel, text, delivery, posted))


class _RunActionFace(ActionLines):
    """An action step's confirmation (the console's dialog) and progress (lines of the step)."""

    def __init__(self, face: WalkthroughFace, step: Step, preview: Preview | None, timeout_s: float) -> None:
        self.face = face
        self.step = step
        self.preview = preview
        self.timeout_s = timeout_s

    def _say(self, text: str, tone: str = "info") -> None:
        self.face._post(RunSaid(text, tone))

    def placed(self, placement: Placement) -> None:
        if placement.incident_id:
            self._say(placement.message())

    def confirm(self, plan: Plan) -> str | None:
        if self.preview is None:
            return None
        from console.rendering import render_preview

        title = action_title(plan)
        body = render_preview(self.preview, title)
        verb = {"Rollback": "Roll back", "Gradual rollback": "Roll back gradually"}.get(title, title)
        what = f"{plan.mode.value} {'undo' if plan.undoes else 'rollback'} v{plan.leave} → v{plan.target}"
        if not self.face._confirm(self.step, f"{title} of {plan.model} (step {self.step.id})", body, verb, what,
                                  self.timeout_s):
            self._say(f"{self.step.id}: not confirmed: nothing changed", "warn")
            return None
        self.face.applying.set()
        self._say(f"confirmed: {plan.model} typed; applying {plan.mode.value} v{plan.leave} → v{plan.target}")
        return CONFIRMED_BY
