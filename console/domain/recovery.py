"""Speed to rollback: an incident's recovery phases from its journal events, and their summaries.

Every figure is a difference of two journal timestamps, in seconds. The phases of
one incident (:func:`recovery_of`):

- **detect**: the impact start → the first confirmed breach the journal recorded
  (the first ``check.evaluated`` whose ``verdict`` is ``breach``; ``suspect`` is not
  confirmed). The impact start is ``impact_started_at`` of ``incident.opened``, else
  its ``detected_at`` (an alert's firing time). Absent when the journal has neither.
- **acknowledge**: ``incident.opened`` → the first event recorded by a person, the
  opening included (so an incident a responder opened is acknowledged at once).
  Every actor is a person except automation: an actor that recorded an event whose
  payload carries ``"automated": true`` (:data:`AUTOMATED_KEY`: an alert receiver or
  a scheduler marks its events so) counts as automation for the whole incident.
- **decide**: the first confirmed breach → the decision to roll back: the first
  ``decision`` carrying the rollback's ``action_id`` (the confirmation every face
  journals), else the last ``decision`` before its ``action.intent`` that names no
  other action.
- **execute**: the rollback's ``action.intent`` → its ``action.applied``.
- **verify**: its ``action.applied`` → its ``action.verified``.
- **total**: the impact start (else ``incident.opened``) → ``action.verified``: the
  DORA "failed deployment recovery time".

The rollback is an action whose ``action.intent`` is of a kind in
:data:`ROLLBACK_KINDS`: the first of them that was verified, else the latest one
attempted. A phase whose events are missing, or whose difference is negative (two
machines' clocks disagreeing, an impact start given after the fact), is absent, never
zero.

An incident is (:class:`Status`) *recovered* once a rollback verified; *open* while it
is not closed and shows a failure (a rollback attempted, a confirmed breach, an
impact start or detection time, or no action at all: a declared incident); *not
verified* when it was closed after a rollback that never verified; otherwise it holds
*no rollback* (closed without one, or a change record such as a shadow or a
promotion). Open and unverified incidents are counted and listed, never dropped.

Drills are kept apart from real incidents: an incident whose ``incident.opened``
payload carries ``"drill": true`` (:data:`DRILL_KEY`) is a drill, and
``"drill_playbook"`` (:data:`DRILL_PLAYBOOK_KEY`) may name the playbook it exercised.
:func:`drill_marker` builds that payload for ``rewind drill``.

Summaries (:func:`summarise`) give per model and per playbook n, p50, p90 and max with
nearest-rank percentiles, over the recovered incidents (an open one has no total yet:
it is listed with its running time); while n < :data:`EVERY_VALUE_BELOW` every value is
listed instead of p90. The monthly trend groups recoveries by opening month, n on each.
No mean is computed anywhere: incident durations are skewed, and a mean hides the slow
recoveries that matter.

Pure: the current time is passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from console.domain.incident import format_duration
from console.domain.journal import Actor, Event, EventKind

DRILL_KEY = "drill"
"""``incident.opened`` payload key: ``true`` marks the incident as a drill, kept apart from real incidents."""

DRILL_PLAYBOOK_KEY = "drill_playbook"
"""``incident.opened`` payload key: the id of the playbook a drill exercised (optional)."""

AUTOMATED_KEY = "automated"
"""Payload key: ``true`` marks an event recorded by automation, whose actor is then not a person."""

ROLLBACK_KINDS = frozenset({"rollback", "features_rollback"})
"""The action kinds (``action.intent`` ``kind``) that are a rollback: traffic, or the features, moved back."""

SLOW_RECOVERY_S = 600.0
"""A recovery over 10 minutes is listed by id ("if your rollback time is greater than ten minutes, you don't have
rollback. You have hope")."""

EVERY_VALUE_BELOW = 10
"""Below this many values a summary lists every one instead of a p90 (which would be the maximum anyway)."""

NO_PLAYBOOK = "(by hand)"
"""The playbook key of a rollback carried out outside any playbook (the CLI, the console)."""


def drill_marker(playbook_id: str | None = None) -> dict[str, object]:
    """The ``incident.opened`` payload keys that make an incident a drill (of ``playbook_id``)."""
    marker: dict[str, object] = {DRILL_KEY: True}
    if playbook_id:
        marker[DRILL_PLAYBOOK_KEY] = playbook_id
    return marker


def is_drill(opened_payload: Mapping[str, object]) -> bool:
    """Whether an ``incident.opened`` payload marks a drill."""
    return opened_payload.get(DRILL_KEY) is True


class Phase(StrEnum):
    """The recovery phases, in the order they happen (see the module docstring)."""

    DETECT = "detect"
    ACKNOWLEDGE = "acknowledge"
    DECIDE = "decide"
    EXECUTE = "execute"
    VERIFY = "verify"
    TOTAL = "total"


PHASE_MEANING = {
    Phase.DETECT: "impact start (impact_started_at, else detected_at) → first confirmed breach",
    Phase.ACKNOWLEDGE: "incident opened → first event recorded by a person",
    Phase.DECIDE: "first confirmed breach → the decision to roll back",
    Phase.EXECUTE: "rollback's action.intent → action.applied",
    Phase.VERIFY: "action.applied → action.verified",
    Phase.TOTAL: "impact start (else opening) → action.verified: the recovery time",
}
"""What each phase measures, in one line (``rewind stats`` and the post-mortems print these)."""


class Status(StrEnum):
    """Where an incident's recovery stands."""

    RECOVERED = "recovered"
    OPEN = "open"
    NOT_VERIFIED = "not_verified"
    NO_ROLLBACK = "no_rollback"


@dataclass(frozen=True)
class Recovery:
    """One incident's recovery, read from its events.

    Attributes:
        incident_id: the incident.
        model: the model of its ``incident.opened``.
        drill: whether it is a drill.
        playbook: the playbook that carried out the rollback (else the drill's, else the incident's first
            run's), ``None`` when none ran.
        status: recovered, open, not verified or no rollback.
        opened_at: when it was opened (Unix seconds); the ``--since`` window counts incidents by it.
        started_at: the impact start (else the opening), where ``total`` and the running time count from.
        start_source: ``impact_started_at``, ``detected_at`` or ``opened``.
        phases: the phases that could be computed, in seconds.
        action_id: the rollback's action, if one was attempted.
        closed_at: when it was closed, if it was.
    """

    incident_id: str
    model: str
    drill: bool
    playbook: str | None
    status: Status
    opened_at: float
    started_at: float
    start_source: str
    phases: Mapping[Phase, float] = field(default_factory=dict)
    action_id: str | None = None
    closed_at: float | None = None

    def running_s(self, now: float) -> float:
        """How long an open incident has been running at ``now``, from its impact start."""
        return max(0.0, now - self.started_at)

    @property
    def total_s(self) -> float | None:
        """The recovery time, when the rollback verified."""
        return self.phases.get(Phase.TOTAL)


def _seconds(ts: str) -> float:
    """A journal timestamp as Unix seconds (any ISO 8601 time with a zone)."""
    moment = datetime.fromisoformat(ts)
    if moment.tzinfo is None:
        raise ValueError(f"{ts!r} has no time zone")
    return moment.timestamp()


def _breaches(event: Event) -> bool:
    """Whether a ``check.evaluated`` event is a confirmed breach.

    A payload is stored as canonical JSON, so a check without the text
    ``"verdict":"breach"`` cannot be one: most checks are told without decoding them.
    """
    if '"verdict":"breach"' not in event.payload_json.lower():
        return False
    return str(event.payload.get("verdict", "")).lower() == "breach"


def _carries(event: Event, key: str, value: str) -> bool:
    """Whether an event's payload has ``key`` equal to ``value``.

    Its canonical text holds ``"key":"value"`` exactly when it may: most events are
    told without decoding them (a ``playbook.started`` carries a whole playbook).
    """
    return f'"{key}":{json.dumps(value, ensure_ascii=False)}' in event.payload_json \
        and event.payload.get(key) == value


def _given_start(payload: Mapping[str, object]) -> tuple[float, str] | None:
    """The impact start an ``incident.opened`` payload states: ``impact_started_at``, else ``detected_at``."""
    for key in ("impact_started_at", "detected_at"):
        value = payload.get(key)
        if isinstance(value, str):
            try:
                return _seconds(value), key
            except ValueError:
                continue
    return None


def _action_kind(payload: Mapping[str, object]) -> str | None:
    """The kind of action an ``action.intent`` announces (older intents carry it in their plan only)."""
    kind = payload.get("kind")
    if isinstance(kind, str):
        return kind
    plan = payload.get("plan")
    if not isinstance(plan, Mapping):
        return None
    if isinstance(plan.get("kind"), str):
        return str(plan["kind"])
    if plan.get("undoes"):
        return "undo"
    return "rollback" if "leave" in plan and "target" in plan else None


@dataclass
class _Action:
    """A rollback's events, as they are found."""

    action_id: str
    intent: Event
    applied: Event | None = None
    verified: Event | None = None


def _difference(start: Event | float | None, end: Event | float | None) -> float | None:
    """``end - start`` in seconds, ``None`` when either is missing or the difference is negative."""
    if start is None or end is None:
        return None
    begin = _seconds(start.ts) if isinstance(start, Event) else start
    finish = _seconds(end.ts) if isinstance(end, Event) else end
    difference = finish - begin
    return difference if difference >= 0 else None


def _persons_first(events: Sequence[Event], automation: set[Actor]) -> Event | None:
    """The first event recorded by a person: an actor other than ``automation``'s."""
    return next((e for e in events if e.actor not in automation), None)


def _decision(decisions: Sequence[Event], action: _Action) -> Event | None:
    """The decision to roll back: the first carrying the action's id, else the last before its intent."""
    named = next((e for e in decisions if _carries(e, "action_id", action.action_id)), None)
    if named is not None:
        return named
    before = [e for e in decisions if e.seq < action.intent.seq and e.payload.get("action_id") is None]
    return before[-1] if before else None


def _playbook(steps: Sequence[Event], starts: Sequence[Event], action: _Action | None,
              opened: Mapping[str, object]) -> str | None:
    """The playbook that carried out the rollback, else the drill's, else the incident's first run's.

    The run of the rollback is the one whose ``step.started`` names the action (the runner journals
    it before the action starts). A ``playbook.started`` carries the playbook's whole text: only
    the runs needed are decoded.
    """
    action_run = None if action is None else next(
        (e.payload.get("run_id") for e in steps if _carries(e, "action_id", action.action_id)), None)
    if isinstance(action_run, str):
        found = next((e.payload.get("playbook_id") for e in starts if _carries(e, "run_id", action_run)), None)
        if isinstance(found, str):
            return found
    drilled = opened.get(DRILL_PLAYBOOK_KEY)
    if isinstance(drilled, str) and drilled:
        return drilled
    first = starts[0].payload.get("playbook_id") if starts else None
    return first if isinstance(first, str) else None


_AUTOMATED_MARK = f'"{AUTOMATED_KEY}":true'
_SORTED_KINDS = frozenset({EventKind.INCIDENT_OPENED, EventKind.DECISION, EventKind.STEP_STARTED,
                           EventKind.PLAYBOOK_STARTED, EventKind.INCIDENT_CLOSED})


def recovery_of(events: Sequence[Event]) -> Recovery | None:
    """One incident's recovery from its events in sequence order; ``None`` without an ``incident.opened``.

    One pass sorts the events the phases need (most are never decoded), then each phase is
    a difference of two of them.
    """
    sorted_events: dict[EventKind | str, list[Event]] = {kind: [] for kind in _SORTED_KINDS}
    automation: set[Actor] = set()
    breach: Event | None = None
    other_actions = False
    actions: dict[str, _Action] = {}
    for event in events:
        kind = event.kind
        if _AUTOMATED_MARK in event.payload_json and event.payload.get(AUTOMATED_KEY) is True:
            automation.add(event.actor)
        if kind is EventKind.CHECK_EVALUATED:
            # Only the first breach matters: later checks are not decoded at all.
            if breach is None and _breaches(event):
                breach = event
        elif kind is EventKind.ACTION_INTENT:
            if _action_kind(event.payload) in ROLLBACK_KINDS:
                action_id = str(event.payload.get("action_id"))
                actions.setdefault(action_id, _Action(action_id, event))
            else:
                other_actions = True
        elif kind is EventKind.ACTION_APPLIED or kind is EventKind.ACTION_VERIFIED:
            action = next((a for a in actions.values() if _carries(event, "action_id", a.action_id)), None)
            if action is not None and kind is EventKind.ACTION_APPLIED and action.applied is None:
                action.applied = event
            elif action is not None and kind is EventKind.ACTION_VERIFIED and action.verified is None:
                action.verified = event
        elif kind in _SORTED_KINDS:
            sorted_events[kind].append(event)
    if not sorted_events[EventKind.INCIDENT_OPENED]:
        return None
    opened = sorted_events[EventKind.INCIDENT_OPENED][0]
    closed = sorted_events[EventKind.INCIDENT_CLOSED][-1] if sorted_events[EventKind.INCIDENT_CLOSED] else None
    payload = opened.payload
    opened_at = _seconds(opened.ts)
    given = _given_start(payload)
    started_at, start_source = given if given is not None else (opened_at, "opened")
    chosen = next((a for a in actions.values() if a.verified is not None), None)
    if chosen is None and actions:
        chosen = list(actions.values())[-1]
    phases: dict[Phase, float | None] = {
        Phase.DETECT: _difference(given[0] if given else None, breach),
        Phase.ACKNOWLEDGE: _difference(opened, _persons_first(events, automation)),
    }
    if chosen is not None:
        phases[Phase.DECIDE] = _difference(breach, _decision(sorted_events[EventKind.DECISION], chosen))
        phases[Phase.EXECUTE] = _difference(chosen.intent, chosen.applied)
        phases[Phase.VERIFY] = _difference(chosen.applied, chosen.verified)
        phases[Phase.TOTAL] = _difference(started_at, chosen.verified)
    if chosen is not None and chosen.verified is not None:
        status = Status.RECOVERED
    elif closed is not None:
        status = Status.NOT_VERIFIED if chosen is not None else Status.NO_ROLLBACK
    elif chosen is not None or breach is not None or given is not None or not other_actions:
        status = Status.OPEN
    else:
        status = Status.NO_ROLLBACK  # an open change record (a shadow, a promotion): no failure to recover from
    return Recovery(
        incident_id=opened.incident_id,
        model=str(payload.get("model", "?")),
        drill=is_drill(payload),
        playbook=_playbook(sorted_events[EventKind.STEP_STARTED], sorted_events[EventKind.PLAYBOOK_STARTED],
                           chosen, payload),
        status=status,
        opened_at=opened_at,
        started_at=started_at,
        start_source=start_source,
        phases={phase: value for phase, value in phases.items() if value is not None},
        action_id=chosen.action_id if chosen else None,
        closed_at=_seconds(closed.ts) if closed else None,
    )


# --- summaries ------------------------------------------------------------------------------

def nearest_rank(ordered: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of values sorted ascending: the smallest value with ``percent`` % at or below it.

    Raises:
        ValueError: for no values.
    """
    if not ordered:
        raise ValueError("a percentile of no values")
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class PhaseSummary:
    """One phase over several incidents: n, p50, p90 (from n >= 10), max, and every value while n < 10."""

    phase: Phase
    n: int
    p50: float | None
    p90: float | None
    max: float | None
    values: tuple[float, ...] | None
    """Every value, ascending, while n < :data:`EVERY_VALUE_BELOW`; ``None`` from then on (p90 is given)."""


def summarise_phase(phase: Phase, values: Iterable[float]) -> PhaseSummary:
    """The summary of one phase's values."""
    ordered = sorted(values)
    if not ordered:
        return PhaseSummary(phase, 0, None, None, None, ())
    few = len(ordered) < EVERY_VALUE_BELOW
    return PhaseSummary(phase, len(ordered), nearest_rank(ordered, 50), None if few else nearest_rank(ordered, 90),
                        ordered[-1], tuple(ordered) if few else None)


@dataclass(frozen=True)
class GroupSummary:
    """The recoveries of one model or one playbook."""

    key: str
    recovered: int
    open: int
    phases: tuple[PhaseSummary, ...]
    slow: tuple[str, ...]
    """Incidents whose total exceeded :data:`SLOW_RECOVERY_S`."""


@dataclass(frozen=True)
class TrendPoint:
    """One month of recoveries, by opening month: how many, and their total's p50 and max."""

    month: str
    n: int
    p50: float | None
    max: float | None


@dataclass(frozen=True)
class RecoverySummary:
    """Every summary of a set of incidents (real ones, or drills) at ``now``."""

    now: float
    recoveries: tuple[Recovery, ...]
    by_model: tuple[GroupSummary, ...]
    by_playbook: tuple[GroupSummary, ...]
    trend: tuple[TrendPoint, ...]

    def of_status(self, status: Status) -> tuple[Recovery, ...]:
        """The incidents whose recovery stands at ``status``, oldest first."""
        return tuple(r for r in self.recoveries if r.status is status)

    @property
    def slow(self) -> tuple[str, ...]:
        """Every incident whose total exceeded :data:`SLOW_RECOVERY_S`."""
        return tuple(r.incident_id for r in self.recoveries if (r.total_s or 0.0) > SLOW_RECOVERY_S)

    @property
    def counted(self) -> int:
        """How many incidents the speed to rollback speaks of: recovered, open or not verified."""
        return sum(r.status is not Status.NO_ROLLBACK for r in self.recoveries)


def _group(key: str, members: Sequence[Recovery]) -> GroupSummary:
    recovered = [r for r in members if r.status is Status.RECOVERED]
    phases = tuple(summarise_phase(phase, (r.phases[phase] for r in recovered if phase in r.phases))
                   for phase in Phase)
    return GroupSummary(key, len(recovered), sum(r.status is Status.OPEN for r in members), phases,
                        tuple(r.incident_id for r in recovered if (r.total_s or 0.0) > SLOW_RECOVERY_S))


def _month(unix_seconds: float) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m")


def _months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``), both included."""
    year, month = int(first[:4]), int(first[5:])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def monthly_trend(recoveries: Sequence[Recovery], since: float | None, now: float) -> tuple[TrendPoint, ...]:
    """The total's p50 and max per opening month, every month of the window shown (n = 0 included)."""
    recovered = [r for r in recoveries if r.status is Status.RECOVERED and r.total_s is not None]
    if not recovered:
        return ()
    starts = [r.opened_at for r in recovered]
    first = _month(since if since is not None else min(starts))
    points = []
    for month in _months(first, _month(max(now, *starts))):
        totals = sorted(r.total_s for r in recovered if _month(r.opened_at) == month and r.total_s is not None)
        points.append(TrendPoint(month, len(totals), nearest_rank(totals, 50) if totals else None,
                                 totals[-1] if totals else None))
    return tuple(points)


def summarise(recoveries: Iterable[Recovery], now: float, since: float | None = None) -> RecoverySummary:
    """Summaries per model and per playbook (sorted by key), and the monthly trend of the window from ``since``."""
    listed = tuple(sorted(recoveries, key=lambda r: (r.opened_at, r.incident_id)))
    counted = [r for r in listed if r.status is not Status.NO_ROLLBACK]
    models: dict[str, list[Recovery]] = {}
    playbooks: dict[str, list[Recovery]] = {}
    for recovery in counted:
        models.setdefault(recovery.model, []).append(recovery)
        playbooks.setdefault(recovery.playbook or NO_PLAYBOOK, []).append(recovery)
    return RecoverySummary(
        now=now,
        recoveries=listed,
        by_model=tuple(_group(key, members) for key, members in sorted(models.items())),
        by_playbook=tuple(_group(key, members) for key, members in sorted(playbooks.items())),
        trend=monthly_trend(counted, since, now),
    )


# --- as the faces show them -----------------------------------------------------------------

def duration_text(seconds: float | None) -> str:
    """A duration with its unit: ``0.4 s``, ``42.5 s``, ``4 min 10 s``, ``1 h 02 min 05 s``, ``3 d 04 h``; ``-``
    for none."""
    if seconds is None:
        return "-"
    if seconds < 59.95:
        return f"{seconds:.1f} s"
    if seconds >= 86400:
        days, rest = divmod(int(round(seconds)), 86400)
        return f"{days} d {rest // 3600:02d} h"
    return format_duration(seconds)


def every_value_text(summary: PhaseSummary) -> str:
    """The p90, or every value while there are fewer than :data:`EVERY_VALUE_BELOW`; ``-`` for none."""
    if summary.n == 0:
        return "-"
    if summary.values is not None:
        return "every value: " + ", ".join(duration_text(v) for v in summary.values)
    return duration_text(summary.p90)


def seconds_figure(value: float | None) -> float | None:
    """A duration as the JSON documents give it: seconds, to the millisecond."""
    return None if value is None else round(value, 3)


def phase_figures(summary: PhaseSummary) -> dict[str, object]:
    """A phase summary as the JSON documents give it: n, p50, p90, max and every value while n < 10, in seconds."""
    return {"n": summary.n, "p50": seconds_figure(summary.p50), "p90": seconds_figure(summary.p90),
            "max": seconds_figure(summary.max),
            "values": None if summary.values is None else [seconds_figure(v) for v in summary.values]}
