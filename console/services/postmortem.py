"""Closing an incident and exporting its post-mortem, with the metric history read first.

The command line (``rewind incident close|export``) and the console both drive
these two flows, so an incident closed or exported from either face carries the
same history, the same fallback note when Prometheus cannot give it, the same
recovery compared with the model's history (its other incidents of the same kind
in the last 90 days, read from the journal in one pass), and lands on disk the
same way (written beside the target, renamed into place).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from console.domain.errors import ChainBrokenError, JournalError, RewindError, UsageError
from console.domain.journal import Event, EventKind
from console.services.history import HistoryService, fallback_note, needs_capture
from console.services.journal import JournalService
from console.services.recovery import DEFAULT_SINCE, RecoveryStats
from console.services.timeline import FORMATS, HISTORY_FORMATS, Clock, IncidentView, build_view, export

EXTENSIONS = {"md": "md", "json": "json", "html": "html"}


@dataclass(frozen=True)
class Exported:
    """What an export wrote.

    Attributes:
        path: the file written.
        events: how many events it holds.
        note: why the metric history is missing or partial (also in the file), or ``None``.
        chain_ok: whether the incident's hash chain verified (the file says so either way).
        chain_problem: where the chain breaks, when it does.
    """

    path: Path
    events: int
    note: str | None
    chain_ok: bool
    chain_problem: str | None = None


class PostMortems:
    """Close and export incidents.

    Args:
        journal: the journal service.
        history: builds the history service (it needs the metrics source), or ``None`` when
            there is none (no catalogue configured): exports then say the history is missing.
        generator: who wrote the export (``rewind 0.1.0``).
        clock: the current Unix time: the end of the window the recovery is compared over.
        compared_over: that window (``90d``).
    """

    def __init__(self, journal: JournalService, history: Callable[[], HistoryService] | None,
                 generator: str = "rewind", clock: Callable[[], float] = time.time,
                 compared_over: str = DEFAULT_SINCE) -> None:
        self.journal = journal
        self.history = history
        self.generator = generator
        self.clock = clock
        self.compared_over = compared_over

    def capture(self, incident_id: str, events: Sequence[Event]) -> tuple[bool, str | None]:
        """Journal the incident's metric history: whether events were journaled, and what failed (one line)."""
        if self.history is None:
            return False, "no metric catalogue is configured"
        try:
            capture = self.history().capture(incident_id, events)
        except (JournalError, ChainBrokenError):
            raise
        except RewindError as exc:
            return False, " ".join(str(exc).split())
        if capture.failed:
            return True, "; ".join(f"{metric}: {' '.join(why.split())}" for metric, why in capture.failed.items())
        return True, None

    def close(self, incident_id: str, summary: str | None = None) -> tuple[Event, str | None]:
        """Capture the history (when still open), then close; the closing event and a warning, if any."""
        _, events = self.journal.chain(incident_id)  # NotFoundError first, before Prometheus is asked
        problem = None
        if not any(e.kind is EventKind.INCIDENT_CLOSED for e in events):
            _, problem = self.capture(incident_id, events)
        warning = f"metrics history not captured before closing: {problem}" if problem else None
        return self.journal.close_incident(incident_id, summary), warning

    def view(self, incident_id: str, fmt: str) -> tuple[IncidentView, str | None]:
        """The incident's view for ``fmt``: the history read first when the format needs it, and the recovery
        compared with the model's history."""
        if fmt not in FORMATS:
            raise UsageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
        head, events = self.journal.chain(incident_id)
        note = None
        if fmt in HISTORY_FORMATS and needs_capture(head, events):
            recorded, problem = self.capture(incident_id, events)
            if recorded:
                head, events = self.journal.chain(incident_id)
            if problem is not None:
                note = fallback_note(problem, events)
        comparison = RecoveryStats(self.journal, self.clock).compare(events, self.compared_over)
        return build_view(head, events, history_note=note, comparison=comparison), note

    def export_to(self, incident_id: str, fmt: str, target: Path, clock: Clock | None = None) -> Exported:
        """Write the incident's export to ``target``, atomically.

        Raises:
            UsageError: ``target`` is a directory or its directory does not exist; an unknown format.
            NotFoundError: no such incident.
        """
        target = target.expanduser()
        if target.is_dir():
            raise UsageError(f"{target}: is a directory; name the file to write")
        if not target.parent.is_dir():
            raise UsageError(f"{target}: directory {target.parent} does not exist")
        view, note = self.view(incident_id, fmt)
        # Written beside the target and renamed into place: a failed export leaves nothing half-written.
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
                export(view, fmt, out, clock or Clock(), generator=self.generator)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        problem = view.verification.problem
        return Exported(target, len(view.events), note, view.verification.ok,
                        problem.message() if problem is not None else None)


def default_export_path(directory: Path, incident_id: str, fmt: str) -> Path:
    """Where the console writes an export: ``<directory>/<incident id>.<ext>``."""
    return directory / f"{incident_id}.{EXTENSIONS.get(fmt, fmt)}"
