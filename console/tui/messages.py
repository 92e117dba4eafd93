"""Messages workers post to the app: workers fetch, handlers change state (never the other way round)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # annotations only: the journal's and the actions' modules load on first use
    from rich.console import RenderableType

    from console.domain.alert_events import JournaledAlert
    from console.domain.incident import IncidentSummary
    from console.domain.journal import Event
    from console.domain.playbook import LoadedPlaybook, Playbook
    from console.domain.playbook_check import Problem
    from console.domain.playbook_run import EntryMatch, RunState
    from console.domain.status import StatusSnapshot
    from console.services.actions import ActionResult
    from console.services.approvals import PendingRequest
    from console.services.features import FeatureRead, FeatureReading
    from console.services.live import Reading
    from console.services.rollback import Preview
    from console.tui.backend import Backend
    from console.tui.matrix_model import Summary
    from console.tui.question import PendingQuestion
    from console.tui.run_view import RunEvent


@dataclass
class SystemRead(Message):
    """One system answered (or failed to); a newer reading of the same system replaces a queued one."""

    reading: Reading[object]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SystemRead) and message.reading.system == self.reading.system


@dataclass
class SnapshotReady(Message):
    """The metrics were read and judged with the latest registry and router readings."""

    snapshot: StatusSnapshot
    summary: Summary
    compose_ms: float
    chained: bool = True
    """Whether the metrics poll waits for this message to schedule its next read (a recomposition does not)."""
    reading: FeatureReading | None = None
    """The snapshot's diagnosis with the feature evidence behind it (``None``: no feature read yet)."""

    def can_replace(self, message: Message) -> bool:
        # Only a recomposition may be dropped for a newer snapshot: the poll's message schedules the next read.
        return isinstance(message, SnapshotReady) and not message.chained


@dataclass
class FeaturesRead(Message):
    """What the model's servers report of their features, and the diagnosis of the latest snapshot with it.

    Attributes:
        model: the model read.
        read: observed bindings, judged inputs, and why the read failed (``None``: it did not).
        reading: the diagnosis of the snapshot on screen with this read (``None``: no snapshot yet).
    """

    model: str
    read: FeatureRead
    reading: FeatureReading | None
    snapshot: StatusSnapshot | None = None
    """The snapshot ``reading`` diagnoses: when another one is on screen by now, it is diagnosed again."""
    chained: bool = True
    """Whether the features poll waits for this message to schedule its next read (a new diagnosis does not)."""

    def can_replace(self, message: Message) -> bool:
        # Only a new diagnosis may be dropped for a newer message: the poll's message schedules the next read.
        return isinstance(message, FeaturesRead) and not message.chained


@dataclass
class JournalRead(Message):
    """The model's open incident, its events, the action lock and pending approvals."""

    incident: IncidentSummary | None
    events: list[Event]
    lock: tuple[str, str] | None
    lock_since: str | None
    pending: list[PendingRequest] = field(default_factory=list)
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JournalRead)


@dataclass
class AlertsRead(Message):
    """The model's alerts firing now (journaled in its open incidents, not since resolved), oldest first;
    ``error`` says why they could not be read."""

    model: str
    firing: list[JournaledAlert]
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AlertsRead)


@dataclass
class SuggestionLoaded(Message):
    """The playbook a firing alert suggests, read from the library for ``o`` (``None``: not there, ``why``)."""

    model: str
    playbook_id: str
    loaded: LoadedPlaybook | None
    why: str = ""


@dataclass
class ActionStep(Message):
    """A line of progress of the action being carried out."""

    text: str
    tone: str = "info"  # info | good | warn | bad


@dataclass
class ConfirmationWanted(Message):
    """An action's worker waits for the typed confirmation of its preview: the app puts the dialog up.

    The answer goes to ``question`` (confirmed or not); a question the worker closed meanwhile is not asked.
    """

    question: PendingQuestion
    preview: Preview
    title: str
    verb: str = ""
    """The confirming button's word (``Roll back``, ``Promote``); the title when empty."""


@dataclass
class ActionDone(Message):
    """The action ended: its result, or the one-line error that ended it."""

    title: str
    result: ActionResult | None
    error: str | None = None
    undoable: bool = True
    """Whether the outcome offers the undo of the action (a drill restores by itself: it does not)."""


@dataclass
class BackendReady(Message):
    """The config was read and the backend built (after the first frame): the polls can start."""

    backend: Backend


@dataclass
class BackendFailed(Message):
    """The config could not be read or used: the console ends, and the CLI says why in one line."""

    error: BaseException


@dataclass
class PlaybooksRanked(Message):
    """The playbooks written for the model, best match of the current verdicts first, and its unfinished runs.

    Attributes:
        model: the model they were ranked for.
        ranked: each playbook with how its entry conditions match (``None``: not ranked, see ``rank_error``).
        library: every valid playbook with the exact text a run journals, by id.
        problems: the playbook files that did not validate.
        unfinished: the model's runs that have not ended, the newest last.
        rank_error: why the playbooks could not be ranked (the metrics could not be read), if so.
        error: why nothing could be listed, if so.
    """

    model: str
    ranked: list[tuple[Playbook, EntryMatch | None]] = field(default_factory=list)
    library: dict[str, LoadedPlaybook] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unfinished: list[RunState] = field(default_factory=list)
    rank_error: str | None = None
    error: str | None = None


@dataclass
class UnfinishedRuns(Message):
    """The model's playbook runs that have not ended (looked up once the backend is ready)."""

    model: str
    runs: list[RunState]


@dataclass
class RunProgress(Message):
    """A step of the playbook run being walked through, as the runner told the console's face."""

    event: RunEvent


@dataclass
class RunConfirmationWanted(Message):
    """A playbook run's action step waits for its typed confirmation on the console's dialog."""

    question: PendingQuestion
    title: str
    body: RenderableType
    expected: str
    verb: str
    note: str


@dataclass
class RunQuestionWithdrawn(Message):
    """A run's question timed out: its confirmation dialog, if it is up, comes down (nothing changed)."""

    question: PendingQuestion


@dataclass
class ChoiceAnswered(Message):
    """The responder answered a playbook choice on the walkthrough: the option and the reason."""

    step_id: str
    option: str
    reason: str
