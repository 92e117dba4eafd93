"""The speed-to-rollback use case: the recovery phases of the journal's incidents, summarised.

Only incidents whose hash chain verifies are measured; the others are left out
and listed with the reason, never silently, in either population (a broken chain's
drill marker cannot be trusted; its model is used for ``--model`` all the same). An incident belongs to the window by
its opening time: one opened before ``--since`` and recovered inside it is not
counted, one opened inside it is counted whenever it recovered (or is listed as
open if it has not). Drills and real incidents are summarised apart.

The journal is read once (:meth:`JournalService.verified_chains`): two queries,
however many incidents. A post-mortem's comparison (:meth:`RecoveryStats.compare`) is the
same read, of the incident's model and kind, without the incident itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from console.domain.errors import UsageError
from console.domain.journal import Event, EventKind, format_ts
from console.domain.metrics import window_seconds
from console.domain.recovery import Recovery, RecoverySummary, recovery_of, summarise
from console.domain.recovery_comparison import RecoveryComparison, compare_recovery
from console.services.journal import JournalService

DEFAULT_SINCE = "90d"


@dataclass(frozen=True)
class LeftOut:
    """An incident left out of the figures: its chain does not verify."""

    incident_id: str
    problem: str


@dataclass(frozen=True)
class RecoveryReport:
    """The speed to rollback of one population (real incidents, or drills) over a window.

    Attributes:
        journal: which journal was read.
        since: the window as asked (``90d``).
        since_at: its start (Unix seconds): incidents opened at or after it are counted.
        model: the model asked for, if one was.
        drills: whether this report is of drills (else of real incidents).
        summary: the recoveries and their summaries.
        left_out: incidents of the window whose chain does not verify.
        apart: how many incidents of the other population the window holds.
    """

    journal: str
    since: str
    since_at: float
    model: str | None
    drills: bool
    summary: RecoverySummary
    left_out: tuple[LeftOut, ...]
    apart: int

    @property
    def now(self) -> float:
        """When the report was made (Unix seconds)."""
        return self.summary.now


def window_s(since: str) -> float:
    """The seconds of a ``--since`` window such as ``90d``, ``12h`` or ``1w``.

    Raises:
        UsageError: not a duration, or none.
    """
    try:
        seconds = window_seconds(since.strip())
    except ValueError:
        raise UsageError(f"--since: {since!r} is not a duration such as 90d, 12h or 2w") from None
    if seconds <= 0:
        raise UsageError(f"--since: {since!r} is no time at all; give a window such as 90d")
    return seconds


class RecoveryStats:
    """Speed to rollback from the journal.

    Args:
        journal: the journal to read.
        clock: the current Unix time (the window's end, open incidents' running time).
    """

    def __init__(self, journal: JournalService, clock: Callable[[], float] = time.time) -> None:
        self.journal = journal
        self.clock = clock

    def report(self, model: str | None = None, since: str = DEFAULT_SINCE, drills: bool = False) -> RecoveryReport:
        """The recoveries of the incidents (or drills, with ``drills``) opened in the last ``since``.

        Raises:
            UsageError: ``since`` is not a duration.
            JournalError: the journal cannot be read.
        """
        now = self.clock()
        since_at = now - window_s(since)
        kept: list[Recovery] = []
        left_out: list[LeftOut] = []
        apart = 0
        for events, result in self.journal.verified_chains(format_ts(since_at)):
            if not result.ok:
                opened = next((e for e in events if e.kind is EventKind.INCIDENT_OPENED), None)
                if model is None or opened is None or opened.payload.get("model") == model:
                    left_out.append(LeftOut(result.incident_id, result.problem.message() if result.problem else ""))
                continue
            recovery = recovery_of(events)
            if recovery is None or recovery.opened_at < since_at or (model is not None and recovery.model != model):
                continue
            if recovery.drill == drills:
                kept.append(recovery)
            else:
                apart += 1
        return RecoveryReport(self.journal.describe(), since, since_at, model, drills,
                              summarise(kept, now, since_at), tuple(left_out), apart)

    def compare(self, events: Sequence[Event], since: str = DEFAULT_SINCE) -> RecoveryComparison | None:
        """One incident's recovery beside its model's history: the incidents of its kind opened in the last
        ``since``, itself excluded (a drill is compared with drills, a real incident with real incidents).

        ``events`` are the incident's own (already read by the caller); ``None`` without an ``incident.opened``.

        Raises:
            UsageError: ``since`` is not a duration.
            JournalError: the journal cannot be read.
        """
        incident = recovery_of(events)
        if incident is None:
            return None
        report = self.report(incident.model, since, drills=incident.drill)
        left_out = sum(item.incident_id != incident.incident_id for item in report.left_out)
        return compare_recovery(incident, report.summary.recoveries, since, report.since_at, report.now,
                                left_out=left_out, kept_apart=report.apart)
