"""The walkthrough's state: what the playbook runner told the console, folded into what the screen shows.

The run is carried out in a thread worker; its face (:mod:`console.tui.run_face`)
turns each call of the runner into one of the small events below and posts it
to the app. The app's handler applies the event to the :class:`RunView` (state
changes only there, on the event loop) and the walkthrough screen, when it is on
screen, draws the view. The view outlives the screen: a responder may go back
to the overview while the run goes on, and find the whole story when they
return.

No Textual here: plain values, so the rules (which step is done, which is
current, what the question is) are easy to read and to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from console.domain.playbook_run import StepResult

TONE_SYMBOL = {"info": "·", "good": "✓", "warn": "!", "bad": "✗"}
"""A symbol per tone of a progress line, so a line never relies on its colour alone."""


# -- what the face posts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class StepOutline:
    """One step of the playbook, as the step list shows it."""

    id: str
    kind: str
    title: str


@dataclass(frozen=True)
class RunBegan:
    """The run started (or was resumed): the playbook's steps, the inputs, what was done before a resume."""

    run_id: str
    incident_id: str
    model: str
    playbook_id: str
    playbook_version: int
    title: str
    steps: tuple[StepOutline, ...]
    inputs: tuple[tuple[str, str], ...]
    results: tuple[StepResult, ...] = ()
    current: str | None = None
    resumed: bool = False


@dataclass(frozen=True)
class StepEntered:
    """A step starts; ``results`` is every finished step visit so far (the previous step's branch among them)."""

    step_id: str
    visit: int
    kind: str
    title: str
    text: str
    results: tuple[StepResult, ...]


@dataclass(frozen=True)
class RunSaid:
    """A line of progress (``tone``: info, good, warn, bad)."""

    text: str
    tone: str = "info"


@dataclass(frozen=True)
class CheckShown:
    """A check was judged on live data: its verdict, reason and the judged cells, one line each."""

    step_id: str
    metric: str
    version: str
    branch: str
    verdict: str
    reason: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class ChoiceAsked:
    """A choice waits for an option and a reason.

    Attributes:
        asked_at: when it was asked, on the console's clock.
        timeout_s: seconds left to answer when it was asked.
        full_s: the step's whole timeout (the countdown never shows more).
        on_timeout: what happens when nobody answers (``abort``, ``escalate`` or an option).
    """

    step_id: str
    title: str
    prompt: str
    options: tuple[tuple[str, str], ...]
    asked_at: float
    timeout_s: float
    full_s: float
    on_timeout: str


@dataclass(frozen=True)
class ConfirmAsked:
    """An action waits for its typed confirmation (on the confirmation dialog)."""

    step_id: str
    what: str
    asked_at: float
    timeout_s: float
    full_s: float
    on_timeout: str


@dataclass(frozen=True)
class QuestionClosed:
    """The question of a step is no longer open: ``answered``, ``timeout`` or ``abandoned``."""

    step_id: str
    why: str


@dataclass(frozen=True)
class PlanShown:
    """An action's preview, in a few lines (the confirmation dialog shows all of it)."""

    step_id: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class NotificationShown:
    """A notification was rendered: its text, ready to copy, and whether it was posted."""

    step_id: str
    channel: str
    text: str
    delivery: str
    posted: bool


@dataclass(frozen=True)
class RunEnded:
    """The drive of the run is over: it ended (``outcome``), stopped resumably, or failed with ``error``."""

    outcome: str | None
    stopped: str | None = None
    error: str | None = None
    results: tuple[StepResult, ...] = ()


RunEvent = (RunBegan | StepEntered | RunSaid | CheckShown | ChoiceAsked | ConfirmAsked | QuestionClosed | PlanShown
            | NotificationShown | RunEnded)
"""Everything the face posts."""


# -- the state the screen draws ----------------------------------------------------------------------

@dataclass
class Section:
    """One visit of a step in the story: its text, evidence, progress lines, preview and notification."""

    step_id: str
    visit: int
    kind: str
    title: str
    text: str = ""
    prompt: str = ""
    """A choice's question (its options and the reason are asked under the story)."""
    lines: list[tuple[str, str]] = field(default_factory=list)
    check: CheckShown | None = None
    plan: tuple[str, ...] = ()
    notification: NotificationShown | None = None
    revision: int = 0
    """Raised at every change, so the screen redraws a section only when it changed."""


@dataclass(frozen=True)
class StepRow:
    """A line of the step list: ``done`` (with its latest outcome), ``current`` or ``pending``."""

    id: str
    status: str
    outcome: str = ""
    visits: int = 0
    next: str | None = None


class RunView:
    """Where the walkthrough stands, folded from the face's events (on the event loop only)."""

    def __init__(self, model: str, playbook_id: str = "", title: str = "") -> None:
        self.model = model
        self.playbook_id = playbook_id
        self.playbook_version = 0
        self.title = title
        self.run_id = ""
        self.incident_id = ""
        self.inputs: tuple[tuple[str, str], ...] = ()
        self.steps: tuple[StepOutline, ...] = ()
        self.results: tuple[StepResult, ...] = ()
        self.current: str | None = None
        self.sections: list[Section] = []
        self.question: ChoiceAsked | ConfirmAsked | None = None
        self.outcome: str | None = None
        self.stopped: str | None = None
        self.error: str | None = None
        self.resumed = False
        self.ended = False
        self.revision = 0

    # -- what the screen asks ------------------------------------------------------------------
    @property
    def status(self) -> str:
        """``starting``, ``running``, ``waiting`` (a question is open), ``ended``, ``stopped`` or ``failed``."""
        if self.error is not None:
            return "failed"
        if self.stopped is not None:
            return "stopped"
        if self.ended:
            return "ended"
        if self.question is not None:
            return "waiting"
        return "running" if self.run_id else "starting"

    @property
    def active(self) -> bool:
        """Whether the run is still being carried out (its worker has not returned)."""
        return not self.ended

    def rows(self) -> list[StepRow]:
        """The step list, in the playbook's order."""
        latest: dict[str, StepResult] = {}
        visits: dict[str, int] = {}
        for result in self.results:
            latest[result.step_id] = result
            visits[result.step_id] = visits.get(result.step_id, 0) + 1
        rows = []
        for step in self.steps:
            found = latest.get(step.id)
            if step.id == self.current and not self.ended:
                rows.append(StepRow(step.id, "current", found.outcome if found else "", visits.get(step.id, 0)))
            elif found is not None:
                rows.append(StepRow(step.id, "done", found.outcome, visits[step.id], found.next))
            else:
                rows.append(StepRow(step.id, "pending"))
        return rows

    def input_text(self) -> str:
        """The inputs as ``candidate v3 · stable v2``."""
        return " · ".join(f"{name} v{version}" for name, version in self.inputs)

    # -- applying events -------------------------------------------------------------------------
    def _section(self) -> Section | None:
        return self.sections[-1] if self.sections else None

    def _touch(self, section: Section | None) -> None:
        if section is not None:
            section.revision += 1
        self.revision += 1

    def _say(self, text: str, tone: str = "info") -> None:
        section = self._section()
        if section is None:
            section = Section("", 0, "", "Run")
            self.sections.append(section)
        section.lines.append((text, tone))
        self._touch(section)

    def apply(self, event: RunEvent) -> None:
        """Fold one event into the view."""
        if isinstance(event, RunBegan):
            self._began(event)
        elif isinstance(event, StepEntered):
            self._entered(event)
        elif isinstance(event, RunSaid):
            self._say(event.text, event.tone)
        elif isinstance(event, CheckShown):
            section = self._section()
            if section is not None:
                section.check = event
            self._touch(section)
        elif isinstance(event, ChoiceAsked | ConfirmAsked):
            self.question = event
            section = self._section()
            if isinstance(event, ChoiceAsked) and section is not None and section.step_id == event.step_id:
                section.prompt = event.prompt
            self._touch(section)
        elif isinstance(event, QuestionClosed):
            if self.question is not None and self.question.step_id == event.step_id:
                self.question = None
            self._touch(None)
        elif isinstance(event, PlanShown):
            section = self._section()
            if section is not None:
                section.plan = event.lines
            self._touch(section)
        elif isinstance(event, NotificationShown):
            section = self._section()
            if section is not None:
                section.notification = event
            self._touch(section)
        elif isinstance(event, RunEnded):
            self._ended(event)

    def _began(self, event: RunBegan) -> None:
        self.run_id, self.incident_id = event.run_id, event.incident_id
        self.model, self.playbook_id, self.playbook_version = event.model, event.playbook_id, event.playbook_version
        self.title, self.steps, self.inputs = event.title, event.steps, event.inputs
        self.results, self.current, self.resumed = event.results, event.current, event.resumed
        where = f"resumed at step {event.current}" if event.resumed else "started"
        self._say(f"run {event.run_id} {where}, journaled in incident {event.incident_id}", "info")
        for result in event.results:  # what the journal says was done before the resume
            self._say(f"before the resume: {_branch_line(result)}")

    def _entered(self, event: StepEntered) -> None:
        previous = self._section()
        self.results = event.results
        if previous is not None and previous.step_id and self.results:
            last = self.results[-1]
            if last.step_id == previous.step_id and last.visit == previous.visit:
                self._say(_branch_line(last))
        self.current = event.step_id
        self.sections.append(Section(event.step_id, event.visit, event.kind, event.title, event.text))
        self._touch(None)

    def _ended(self, event: RunEnded) -> None:
        if event.results:
            previous = self._section()
            self.results = event.results
            last = self.results[-1]
            if previous is not None and last.step_id == previous.step_id and last.visit == previous.visit \
                    and last.next is not None:
                self._say(_branch_line(last))
        self.ended = True
        self.question = None
        self.outcome, self.stopped, self.error = event.outcome, event.stopped, event.error
        if event.error is not None:
            self._say(f"the run stopped on an error: {event.error}", "bad")
            if self.run_id:
                self._say(f"run {self.run_id} stays resumable: press p to take it up again", "warn")
        elif event.stopped is not None:
            self._say(f"the run stopped before its end: {event.stopped}", "warn")
        elif event.outcome is not None:
            self._say(f"run {self.run_id} ended: {event.outcome}", "bad" if event.outcome == "aborted" else "good")
        self.current = None


def _branch_line(result: StepResult) -> str:
    """The branch a finished step took (its reason was said already, with the evidence or the answer)."""
    where = f" → {result.next}" if result.next else ""
    return f"{result.step_id}: {result.outcome}{where}"


def countdown(asked_at: float, timeout_s: float, full_s: float, now: float) -> str:
    """The time left to answer as ``m:ss`` (never more than the step's whole timeout)."""
    left = max(0.0, min(full_s, asked_at + timeout_s - now))
    minutes, seconds = divmod(int(left + 0.999), 60)
    return f"{minutes}:{seconds:02d}"
