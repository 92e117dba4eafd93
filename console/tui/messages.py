"""Messages workers post to the app: workers fetch, handlers change state (never the other way round)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # annotations only: the journal's and the actions' modules load on first use
    from console.domain.incident import IncidentSummary
    from console.domain.journal import Event
    from console.domain.status import StatusSnapshot
    from console.services.actions import ActionResult
    from console.services.approvals import PendingRequest
    from console.services.live import Reading
    from console.tui.backend import Backend
    from console.tui.matrix_model import Summary


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

    def can_replace(self, message: Message) -> bool:
        # Only a recomposition may be dropped for a newer snapshot: the poll's message schedules the next read.
        return isinstance(message, SnapshotReady) and not message.chained


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
class ActionStep(Message):
    """A line of progress of the action being carried out."""

    text: str
    tone: str = "info"  # info | good | warn | bad


@dataclass
class ActionDone(Message):
    """The action ended: its result, or the one-line error that ended it."""

    title: str
    result: ActionResult | None
    error: str | None = None


@dataclass
class BackendReady(Message):
    """The config was read and the backend built (after the first frame): the polls can start."""

    backend: Backend


@dataclass
class BackendFailed(Message):
    """The config could not be read or used: the console ends, and the CLI says why in one line."""

    error: BaseException
