"""The incident as the exports see it: one read of its events, analysed once, and the clock that dates it.

:class:`IncidentView` holds what every format shows (summary, facts, timeline rows, decisions, actions,
the chain's verification, the metrics' history, and the recovery compared with the model's history when the
caller read it); :class:`Clock` writes its times in UTC and in a local zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TypeVar, cast

from console.domain.errors import UsageError
from console.domain.incident import (
    ActionRecord,
    DecisionRecord,
    IncidentFacts,
    IncidentSummary,
    Markers,
    TimelineRow,
    decisions_and_actions,
    incident_facts,
    summarise,
    timeline_rows,
)
from console.domain.journal import Event, EventKind, IncidentHead, VerifyResult, parse_ts, verify_chain
from console.domain.recovery_comparison import RecoveryComparison
from console.runtime import gc_paused
from console.services.history import latest_history

_T = TypeVar("_T")


@dataclass(frozen=True)
class IncidentView:
    """Everything the exports show, computed once from one read of the incident.

    ``comparison`` is the incident's recovery beside its model's history, read from the journal by the
    caller (:meth:`console.services.recovery.RecoveryStats.compare`); ``None`` when it was not read: the
    formats then leave the part out (JSON: ``"recovery": null``).
    """

    head: IncidentHead
    events: list[Event]
    summary: IncidentSummary
    facts: IncidentFacts
    rows: list[TimelineRow]
    decisions: list[DecisionRecord]
    actions: list[ActionRecord]
    verification: VerifyResult
    history: dict[str, Event] = field(default_factory=dict)
    history_note: str | None = None
    comparison: RecoveryComparison | None = None
    cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def once(self, key: str, compute: Callable[[IncidentView], _T]) -> _T:
        """``compute(self)``, worked out on first use and kept under ``key`` for the view's other readers.

        An incident can hold tens of thousands of checks: what several sections read (the breaches, say)
        is computed once per view, not once per section.
        """
        if key not in self.cache:
            self.cache[key] = compute(self)
        return cast(_T, self.cache[key])


def build_view(head: IncidentHead, events: list[Event], history_note: str | None = None,
               comparison: RecoveryComparison | None = None) -> IncidentView:
    """Analyse an incident's events for export (verifying its chain on the way).

    Args:
        head: the chain head the journal recorded.
        events: the incident's events.
        history_note: why the metrics' history could not be read for this export, shown in the document.
        comparison: the incident's recovery beside its model's history, when the caller read it.
    """
    with gc_paused():
        return _build_view(head, events, history_note, comparison)


def _build_view(head: IncidentHead, events: list[Event], history_note: str | None = None,
                comparison: RecoveryComparison | None = None) -> IncidentView:
    markers = Markers()
    rows = timeline_rows(events, markers)
    decisions, actions = decisions_and_actions(events, markers)
    opened_closed = [e for e in events if e.kind is EventKind.INCIDENT_OPENED or e.kind is EventKind.INCIDENT_CLOSED]
    return IncidentView(
        head=head,
        events=events,
        summary=summarise(head.incident_id, opened_closed, len(events), events[-1].hash if events else ""),
        facts=incident_facts(events),
        rows=rows,
        decisions=decisions,
        actions=actions,
        verification=verify_chain(head.incident_id, events, head),
        history=latest_history(events),
        history_note=history_note,
        comparison=comparison,
    )


class Clock:
    """Formats journal timestamps in UTC and in a local zone (``None``: the system's)."""

    def __init__(self, zone: tzinfo | None = None, zone_name: str | None = None) -> None:
        self.zone = zone
        self.zone_name = zone_name or _system_zone_name()

    def utc(self, ts: str | datetime) -> str:
        """``2025-01-31 14:05:03Z``."""
        moment = ts if isinstance(ts, datetime) else parse_ts(ts)
        return f"{moment:%Y-%m-%d %H:%M:%S}Z"

    def local(self, ts: str | datetime) -> str:
        """``2025-01-31 15:05:03 CET``."""
        moment = ts if isinstance(ts, datetime) else parse_ts(ts)
        local = moment.astimezone(self.zone) if self.zone else moment.astimezone()
        return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()

    @property
    def is_utc(self) -> bool:
        """Whether the local zone is UTC itself (then one time column, not two saying the same)."""
        return self.zone_name in _UTC_NAMES

    def both(self, ts: str | datetime) -> str:
        """``2025-01-31 14:05:03Z (15:05:03 CET local)``; the UTC time alone when the local zone is UTC."""
        if self.is_utc:
            return self.utc(ts)
        return f"{self.utc(ts)} ({self.local(ts)} local)"


_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu",
                        "Etc/GMT", "GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich"})


def _system_zone_name() -> str:
    now = datetime.now().astimezone()
    offset = now.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    if minutes == 0 and now.tzname() in ("UTC", "GMT", "Z"):
        return "UTC"
    sign = "+" if minutes >= 0 else "-"
    return f"{now.tzname()}, UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def clock_for(zone: str | None) -> Clock:
    """A clock for an IANA zone name (``Europe/Paris``), or the system's zone when ``None``.

    Raises:
        UsageError: for an unknown zone name.
    """
    if not zone:
        return Clock()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return Clock(ZoneInfo(zone), zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz {zone!r}: not a known time zone (e.g. UTC, Europe/Paris, America/New_York)") from None
