"""An incident read from its journal events: summary, key times, decisions, actions, timeline rows.

The post-mortem figures are defined here, once, so every export states them the same way:

- **Impact start**: the ``impact_started_at`` the responder gave when opening the
  incident (``rewind incident open --impact-start``). When none was given, the
  impact window starts at the earlier of detection and the first breaching check,
  and is marked *estimated*.
- **Detected**: the ``detected_at`` given when opening (an alert's firing time),
  else the moment the incident was opened.
- **Mitigated**: the first ``action.verified`` event, the first change whose
  effect was checked and confirmed.
- **Impact end**: mitigation; else the incident's closing; else it is ongoing.
- **Time to detect (TTD)** = detected - impact start, measured when the impact
  start was given. When it was estimated from a breach seen before detection,
  the same difference is given as an *estimate* (``ttd_estimate_s``); an impact
  start that is detection itself gives none (it would always read zero).
- **Time to mitigate (TTM)** = mitigated - detected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.domain.journal import (
    Actor,
    CheckEvidence,
    Event,
    EventKind,
    check_evidence,
    parse_ts,
)
from console.domain.verdicts import history_breaches

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
"""Severities, most severe first."""


def parse_severity(text: str) -> str:
    """Normalise ``1``, ``sev1``, ``SEV1`` to ``SEV1``.

    Raises:
        ValueError: for anything that is not SEV1 to SEV4.
    """
    value = text.strip().upper()
    if value.isdigit():
        value = f"SEV{value}"
    if value not in SEVERITIES:
        raise ValueError(f"severity {text!r} is not one of {', '.join(SEVERITIES)}")
    return value


@dataclass(frozen=True)
class IncidentSummary:
    """What an incident is about and where it stands, from its opened and closed events."""

    incident_id: str
    model: str
    severity: str
    summary: str
    opened_at: str
    opened_by: Actor
    events: int
    head_hash: str
    closed_at: str | None = None
    resolution: str | None = None
    drill: bool = False
    """Opened by ``rewind drill``: kept apart from real incidents, and no real action joins it."""

    @property
    def status(self) -> str:
        """``open`` or ``closed``."""
        return "closed" if self.closed_at else "open"


def summarise(incident_id: str, events: Iterable[Event], count: int, head_hash: str) -> IncidentSummary:
    """Build an incident's summary from its ``incident.opened`` and ``incident.closed`` events.

    Args:
        incident_id: the incident.
        events: at least its opened event and any closed events, in order.
        count: how many events the incident has in all.
        head_hash: the hash of its last event.
    """
    opened: Event | None = None
    closed: Event | None = None
    for event in events:
        if event.kind is EventKind.INCIDENT_OPENED and opened is None:
            opened = event
        elif event.kind is EventKind.INCIDENT_CLOSED:
            closed = event
    payload = opened.payload if opened else {}
    return IncidentSummary(
        incident_id=incident_id,
        model=str(payload.get("model", "?")),
        severity=str(payload.get("severity", "?")),
        summary=str(payload.get("summary", "(no incident.opened event)")),
        opened_at=opened.ts if opened else "",
        opened_by=opened.actor if opened else Actor("?", "?"),
        events=count,
        head_hash=head_hash,
        closed_at=closed.ts if closed else None,
        resolution=None if closed is None or closed.payload.get("summary") is None
        else str(closed.payload.get("summary")),
        drill=payload.get("drill") is True,
    )


# --- key times ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyTime:
    """A moment of the incident and where it comes from."""

    at: datetime
    source: str


@dataclass(frozen=True)
class IncidentFacts:
    """The post-mortem figures (see the module docstring for their definitions)."""

    impact_start: KeyTime
    impact_start_estimated: bool
    detected: KeyTime
    mitigated: KeyTime | None
    impact_end: KeyTime | None
    closed: KeyTime | None
    last_event: datetime
    ttd_s: float | None
    ttm_s: float | None
    ttd_estimate_s: float | None = None
    """TTD from an impact start estimated from the metrics (``ttd_s`` is then ``None``)."""

    def ttd_text(self) -> str:
        """TTD in words: measured, estimated (and from what), or why it was not measured."""
        if self.ttd_s is not None:
            return format_duration(self.ttd_s)
        if self.ttd_estimate_s is not None:
            return (f"{format_duration(self.ttd_estimate_s)} (estimated: the impact start is the "
                    f"{self.impact_start.source})")
        return "not measured (no impact start was given, and no breach was seen before detection)"

    @property
    def window_end(self) -> datetime:
        """The end of the impact window, or the last event while it is ongoing."""
        return self.impact_end.at if self.impact_end else self.last_event


def _given_time(payload: Mapping[str, object], key: str) -> datetime | None:
    value = payload.get(key)
    if not isinstance(value, str):
        return None
    try:
        return parse_ts(value)
    except ValueError:
        return None


def incident_facts(events: Sequence[Event]) -> IncidentFacts:
    """Compute impact window, TTD and TTM from an incident's events.

    Raises:
        ValueError: when ``events`` is empty.
    """
    if not events:
        raise ValueError("an incident without events has no timeline")
    first = events[0]
    opened = next((e for e in events if e.kind is EventKind.INCIDENT_OPENED), first)
    stated_start = _given_time(opened.payload, "impact_started_at")
    stated_detected = _given_time(opened.payload, "detected_at")
    detected = KeyTime(stated_detected, "detected_at given when the incident was opened") if stated_detected \
        else KeyTime(opened.time(), f"incident opened (event #{opened.seq})")
    first_breach: Event | None = None
    mitigated: KeyTime | None = None
    closed: KeyTime | None = None
    for event in events:
        kind = event.kind
        if kind is EventKind.CHECK_EVALUATED and first_breach is None \
                and str(event.payload.get("verdict", "")).lower() == "breach":
            first_breach = event
        elif kind is EventKind.ACTION_VERIFIED and mitigated is None:
            mitigated = KeyTime(event.time(), f"first verified action (event #{event.seq})")
        elif kind is EventKind.INCIDENT_CLOSED:
            closed = KeyTime(event.time(), f"incident closed (event #{event.seq})")
    history_start = _history_breach_start(events)
    if stated_start is not None:
        impact_start = KeyTime(stated_start, "impact_started_at given when the incident was opened")
        estimated = False
    elif history_start is not None and history_start[0] < detected.at \
            and (first_breach is None or history_start[0] < first_breach.time()):
        impact_start = KeyTime(history_start[0], f"first breach in the metrics history "
                                                 f"(event #{history_start[1]})")
        estimated = True
    elif first_breach is not None and first_breach.time() < detected.at:
        impact_start = KeyTime(first_breach.time(), f"first breaching check (event #{first_breach.seq})")
        estimated = True
    else:
        impact_start = detected
        estimated = True
    impact_end = mitigated or closed
    before_detection = (detected.at - impact_start.at).total_seconds()
    ttd = None if estimated else before_detection
    # An impact start estimated from a breach before detection gives an estimate; detection itself gives none.
    ttd_estimate = before_detection if estimated and impact_start is not detected else None
    ttm = None if mitigated is None else (mitigated.at - detected.at).total_seconds()
    return IncidentFacts(
        impact_start=impact_start,
        impact_start_estimated=estimated,
        detected=detected,
        mitigated=mitigated,
        impact_end=impact_end,
        closed=closed,
        last_event=events[-1].time(),
        ttd_s=ttd,
        ttm_s=ttm,
        ttd_estimate_s=ttd_estimate,
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def history_crossings(payload: Mapping[str, Any],
                      traffic: Mapping[str, Any] | None = None) -> list[tuple[str, str, float]]:
    """Where a ``metrics.history`` series first breaches, as the judge sees it: ``(version, segment, time)``.

    ``traffic``: the traffic metric's history payload (for ``min_traffic``).
    """
    start, step = _number(payload.get("start")), _number(payload.get("step"))
    if start is None or not step:
        return []
    return [(version, segment, start + indexes[0] * step)
            for (version, segment), indexes in history_breaches(payload, traffic).items()]


def _history_breach_start(events: Sequence[Event]) -> tuple[datetime, int] | None:
    """The earliest threshold crossing in the incident's latest history capture of each metric."""
    latest: dict[str, Event] = {}
    for event in events:
        if event.kind is EventKind.METRICS_HISTORY and not event.payload.get("error"):
            latest[str(event.payload.get("metric", "?"))] = event
    best: tuple[float, int] | None = None
    for event in latest.values():
        traffic = latest.get(str(event.payload.get("traffic_metric")))
        for _, _, at in history_crossings(event.payload, traffic.payload if traffic else None):
            if best is None or at < best[0]:
                best = (at, event.seq)
    return None if best is None else (datetime.fromtimestamp(best[0], UTC), best[1])


def format_duration(seconds: float | None) -> str:
    """``1 h 02 min 05 s``-style durations; ``n/a`` for ``None``."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    sign = "-" if seconds < 0 else ""
    total = int(round(abs(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours} h {minutes:02d} min {secs:02d} s"
    if minutes:
        return f"{sign}{minutes} min {secs:02d} s"
    return f"{sign}{secs} s"


# --- describing events -------------------------------------------------------------------------

def compact(value: object, limit: int = 160) -> str:
    """A short one-line rendering of a payload value (mappings as ``key=value, ...``)."""
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={compact(v, limit)}" for k, v in value.items())
    elif isinstance(value, list):
        text = "; ".join(compact(v, limit) for v in value)
    elif value is None:
        text = "-"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _v(version: object) -> str:
    text = str(version)
    return text if text.startswith("v") or text in ("-", "?") else f"v{text}"


def _version_key(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def _is_weights(value: object) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) for w in value.values())


def weights_text(weights: Mapping[str, object]) -> str:
    """``v2 100, v3 0``: a router's weights, versions in order."""
    return ", ".join(f"{_v(v)} {weights[v]}" for v in sorted(weights, key=lambda k: _version_key(str(k))))


def aliases_text(aliases: Mapping[str, object]) -> str:
    """``champion → v2, challenger → v3``; ``none`` for no alias."""
    return ", ".join(f"{a} → {_v(v)}" for a, v in aliases.items() if v is not None) or "none"


def _alias_move_sentence(move: Mapping[str, object]) -> str:
    alias, before, after = move.get("alias", "?"), move.get("before"), move.get("after")
    if after is None:
        return f"Alias {alias} removed from {_v(before)}."
    if before is None:
        return f"Alias {alias} set on {_v(after)}."
    return f"Alias {alias} moved from {_v(before)} to {_v(after)}."


def plan_sentences(plan: object) -> list[str]:
    """A rollback plan (``Plan.to_dict``) as sentences a responder reads at once.

    ``Traffic: v3 10 → 0, v2 90 → 100. Alias challenger removed from v3. Champion stays v2.``
    A plan in another shape (free text, a newer Rewind's) is shown as it is.
    """
    if not isinstance(plan, Mapping) or not isinstance(plan.get("steps"), list) \
            or not isinstance(plan.get("weights_before"), Mapping):
        return [compact(plan, 1000)]
    before = {str(k): v for k, v in plan["weights_before"].items()}
    steps = [{str(k): v for k, v in step.items()} for step in plan["steps"] if isinstance(step, Mapping)]
    leave, target = str(plan.get("leave", "")), str(plan.get("target", ""))
    sentences = []
    if plan.get("undoes"):
        sentences.append(f"Undoes {plan['undoes']}.")
    tag_moves = [m for m in plan.get("tag_moves") or [] if isinstance(m, Mapping)]
    pin = plan.get("view_pin")
    if tag_moves or isinstance(pin, Mapping):
        # A feature rollback: what the versions read moves; traffic and aliases do not.
        service = plan.get("feature_service")
        if isinstance(service, Mapping):
            sentences.append(f"Creates feature service {service.get('name')} = "
                             f"{', '.join(str(f) for f in service.get('features') or [])}.")
        for move in tag_moves:
            sentences.append(f"{_v(str(move.get('version')))} tag {move.get('key')}: {move.get('before') or 'unset'} "
                             f"→ {move.get('after') or 'unset'}.")
        if isinstance(pin, Mapping):
            sentences.append(f"Feature view {pin.get('view')}: active {pin.get('before')} → {pin.get('after')}, "
                             "for every consumer.")
        sentences.append("Traffic and aliases untouched.")
        return sentences
    moved = [v for v in dict.fromkeys([leave, target, *sorted({v for s in steps for v in s}, key=_version_key)])
             if v and any(s.get(v) != before.get(v) for s in steps)]
    if moved:
        chains = []
        for version in moved:
            values = [before.get(version, "-")]
            for step in steps:
                if step.get(version) != values[-1]:
                    values.append(step.get(version, "-"))
            chains.append(f"{_v(version)} " + " → ".join(str(x) for x in values))
        gradual = str(plan.get("mode")) == "gradual" and len(steps) > 1
        sentences.append((f"Traffic, in {len(steps)} steps: " if gradual else "Traffic: ")
                         + ", ".join(chains) + ".")
    else:
        sentences.append("Traffic: no weight changes.")
    moves = [m for m in plan.get("alias_moves") or [] if isinstance(m, Mapping)]
    sentences.extend(_alias_move_sentence(m) for m in moves)
    moved_aliases = {m.get("alias") for m in moves}
    given = plan.get("aliases_before")
    aliases_before: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
    for alias, version in aliases_before.items():
        if alias not in moved_aliases and version is not None:
            sentences.append(f"{str(alias).capitalize()} stays {_v(version)}.")
    return sentences


def state_text(state: object) -> str:
    """What the systems were seen (or expected) to be, as a sentence rather than ``key=value`` pairs.

    Reads the keys the rollback service writes (``weights``, ``aliases``,
    ``leave_share``, ``target_answered``, ``leave_share_below``, ``target_passes``, ``breaches``, the
    ``*_error`` of an unreadable system); a flat ``{version: weight}`` map reads
    as weights; anything else is shown compactly.
    """
    if not isinstance(state, Mapping):
        return compact(state, 1000)
    if _is_weights(state) and all(str(k).isdigit() or str(k).startswith("v") for k in state):
        return f"weights {weights_text(state)}"
    parts = []
    rest = {}
    for key, value in state.items():
        if key == "weights" and isinstance(value, Mapping):
            parts.append(f"weights {weights_text(value)}")
        elif key == "aliases" and isinstance(value, Mapping):
            parts.append(f"aliases {aliases_text(value)}")
        elif key == "leave_share" and isinstance(value, (int, float)):
            parts.append(f"the left version got {value:.1%} of the requests")
        elif key == "target_answered" and isinstance(value, int):
            parts.append(f"the target answered {value} request{'' if value == 1 else 's'}")
        elif key == "leave_share_below":
            if isinstance(value, (int, float)):
                parts.append(f"the left version gets under {value:.0%} of the requests")
        elif key == "target_passes" and isinstance(value, list):
            parts.append(f"the target passes {', '.join(map(str, value))}" if value else "")
        elif key == "breaches" and isinstance(value, list):
            if not value:
                parts.append("no breach")
            else:
                cells = [f"{_v(b.get('version', '?'))} {b.get('segment', '?')} {b.get('metric', '?')}"
                         for b in value if isinstance(b, Mapping)]
                parts.append(f"{len(value)} breach(es): {', '.join(cells[:4])}{', …' if len(cells) > 4 else ''}")
        elif key.endswith("_error") and value:
            parts.append(str(value))
        else:
            rest[key] = value
    if rest:
        parts.append(compact(rest, 400))
    return "; ".join(p for p in parts if p) or "-"


def _breaches(evidence: CheckEvidence) -> list[str]:
    return [f"v{v.version}/{v.segment} {v.raw}" for v in evidence.values if (v.verdict or "").lower() == "breach"]


_ALWAYS_DETAILED = {EventKind.ACTION_FAILED: "failed", EventKind.ACTION_NOT_VERIFIED: "NOT verified",
                    EventKind.ACTION_COMPENSATED: "compensated"}


def action_detail(event: Event) -> str:
    """What an action event adds to its action: why it failed or was compensated, or what was observed.

    Empty for an intent (its plan is shown on its own) and for an event with nothing observed.
    """
    p = event.payload
    kind = event.kind
    if kind is EventKind.ACTION_INTENT:
        return ""
    if kind is EventKind.ACTION_FAILED:
        return compact(p.get("reason") or p.get("error"), 400)
    if kind is EventKind.ACTION_COMPENSATED:
        return compact(p.get("reason") or p.get("compensation"), 400) if (p.get("reason") or p.get("compensation")) \
            else state_text(p.get("observed"))
    if kind is EventKind.ACTION_NOT_VERIFIED:
        return compact(p.get("reason"), 400) if p.get("reason") else state_text(p.get("observed"))
    if kind is EventKind.ACTION_APPLIED and p.get("changed") is False:
        return compact(p.get("reason"), 400)  # someone else reached the planned state first
    return "" if p.get("observed") is None else f"observed {state_text(p.get('observed'))}"


def history_span(payload: Mapping[str, object]) -> str:
    """``8 series from 2025-03-14 08:45:00Z to 09:40:00Z every 12 s``, or the capture's error."""
    if payload.get("error"):
        return f"failed: {compact(payload.get('error'), 300)}"
    given = payload.get("series")
    series: list[object] = given if isinstance(given, list) else []
    start, end, step = payload.get("start"), payload.get("end"), payload.get("step")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (start, end, step)):
        return f"{len(series)} series"
    first = datetime.fromtimestamp(float(start), UTC)  # type: ignore[arg-type]
    last = datetime.fromtimestamp(float(end), UTC)  # type: ignore[arg-type]
    until = f"{last:%H:%M:%S}Z" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M:%S}Z"
    return f"{len(series)} series from {first:%Y-%m-%d %H:%M:%S}Z to {until} every {float(step):g} s"  # type: ignore[arg-type]


def describe(event: Event) -> str:
    """One line saying what an event records."""
    p = event.payload
    kind = event.kind
    if kind is EventKind.INCIDENT_OPENED:
        return f"Incident opened: {p.get('severity', '?')} on {p.get('model', '?')}: {p.get('summary', '')}"
    if kind is EventKind.INCIDENT_CLOSED:
        return "Incident closed" + (f": {p['summary']}" if p.get("summary") else "")
    if kind is EventKind.PLAYBOOK_STARTED:
        digest = str(p.get("content_hash", ""))[:12]
        return f"Playbook {p.get('playbook_id', '?')} v{p.get('playbook_version', '?')} started (content {digest})"
    if kind is EventKind.PLAYBOOK_FINISHED:
        return f"Playbook {p.get('playbook_id', '?')} finished" + (f": {p['outcome']}" if p.get("outcome") else "")
    if kind is EventKind.STEP_STARTED:
        if p.get("resumed"):
            return f"Step {p.get('step_id', '?')} taken up again after an interruption"
        if p.get("action_id"):
            return f"Step {p.get('step_id', '?')} carries out {p['action_id']}"
        return f"Step {p.get('step_id', '?')} started" + (f": {p['title']}" if p.get("title") else "")
    if kind is EventKind.STEP_FINISHED:
        return f"Step {p.get('step_id', '?')} finished" + (f": {p['outcome']}" if p.get("outcome") else "")
    if kind is EventKind.CHECK_EVALUATED:
        evidence = check_evidence(p)
        breaches = _breaches(evidence)
        detail = f" ({', '.join(breaches[:3])}{', …' if len(breaches) > 3 else ''})" if breaches else ""
        return f"Check {evidence.title}: {evidence.verdict}{detail}"
    if kind is EventKind.METRICS_HISTORY:
        return f"Metrics history of {p.get('title') or p.get('metric', '?')} captured: {history_span(p)}"
    if kind is EventKind.DECISION:
        return f"Decision: {compact(p.get('option'))}: {compact(p.get('reason'))}"
    if kind is EventKind.NOTE:
        return f"Note: {compact(p.get('text'), 400)}"
    if isinstance(kind, EventKind) and kind.is_action:
        action = p.get("action_id", "?")
        if kind is EventKind.ACTION_INTENT:
            return f"Action {action} intended: {' '.join(plan_sentences(p.get('plan')))}"
        detail = action_detail(event)
        if kind in _ALWAYS_DETAILED:
            return f"Action {action} {_ALWAYS_DETAILED[kind]}: {detail}"
        return f"Action {action} {kind.value.split('.', 1)[1].replace('_', ' ')}" + (f": {detail}" if detail else "")
    if kind is EventKind.NOTIFICATION_RENDERED:
        return f"Notification for {p.get('channel', '?')} rendered" + (f": {p['subject']}" if p.get("subject") else "")
    if kind is EventKind.NOTIFICATION_SENT:
        return f"Notification sent to {p.get('channel', '?')}" + (f": {p['status']}" if p.get("status") else "")
    return f"{kind}: {compact(dict(p))}"


# --- timeline ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimelineRow:
    """One row of a timeline: one event, or a run of consecutive check evaluations.

    Attributes:
        first_seq: the (first) event's sequence number.
        last_seq: the last event's sequence number (equal to ``first_seq`` for one event).
        ts: the (first) event's timestamp.
        actor: who recorded it.
        kind: its kind (``check.evaluated`` for a run).
        marker: ``D1``, ``A2``... for decisions and actions, matching the chart markers.
        text: what happened.
    """

    first_seq: int
    last_seq: int
    ts: str
    actor: Actor
    kind: str
    marker: str
    text: str

    @property
    def count(self) -> int:
        """How many events the row stands for."""
        return self.last_seq - self.first_seq + 1


@dataclass
class Markers:
    """``D1, D2...`` for decisions and ``A1, A2...`` for actions (one per ``action_id``), in order."""

    decisions: dict[int, str] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)

    def label(self, event: Event) -> str:
        """The marker of an event: assigned on first sight, ``""`` for other kinds."""
        if event.kind is EventKind.DECISION:
            return self.decisions.setdefault(event.seq, f"D{len(self.decisions) + 1}")
        if isinstance(event.kind, EventKind) and event.kind.is_action:
            action = str(event.payload.get("action_id", f"#{event.seq}"))
            return self.actions.setdefault(action, f"A{len(self.actions) + 1}")
        return ""


def timeline_rows(events: Iterable[Event], markers: Markers | None = None) -> list[TimelineRow]:
    """The timeline: every event, with runs of consecutive check evaluations folded into one row."""
    markers = markers or Markers()
    rows: list[TimelineRow] = []
    run: list[Event] = []

    def flush() -> None:
        if not run:
            return
        if run[0].kind is EventKind.METRICS_HISTORY and len(run) > 1:
            titles = ", ".join(dict.fromkeys(str(e.payload.get("title") or e.payload.get("metric", "?"))
                                             for e in run))
            rows.append(TimelineRow(run[0].seq, run[-1].seq, run[0].ts, run[0].actor, str(EventKind.METRICS_HISTORY),
                                    "", f"Metrics history captured for {len(run)} metrics ({titles}): "
                                        f"{history_span(run[-1].payload)}"))
            run.clear()
            return
        if len(run) == 1:
            event = run[0]
            rows.append(TimelineRow(event.seq, event.seq, event.ts, event.actor, str(event.kind), "",
                                    describe(event)))
        else:
            latest: dict[str, str] = {}
            for event in run:
                payload = event.payload
                latest[str(payload.get("title") or payload.get("metric", "?"))] = str(payload.get("verdict", "?"))
            verdicts = ", ".join(f"{title} {verdict}" for title, verdict in latest.items())
            rows.append(TimelineRow(run[0].seq, run[-1].seq, run[0].ts, run[0].actor, str(EventKind.CHECK_EVALUATED),
                                    "", f"{len(run)} checks evaluated; latest: {verdicts}"))
        run.clear()

    for event in events:
        if event.kind is EventKind.CHECK_EVALUATED or event.kind is EventKind.METRICS_HISTORY:
            if run and run[0].kind is not event.kind:
                flush()
            run.append(event)
            continue
        flush()
        rows.append(TimelineRow(event.seq, event.seq, event.ts, event.actor, str(event.kind),
                                markers.label(event), describe(event)))
    flush()
    return rows


# --- decisions and actions ----------------------------------------------------------------------

@dataclass(frozen=True)
class DecisionRecord:
    """A decision with the evidence it rests on."""

    marker: str
    event: Event
    evidence: tuple[Event, ...]
    evidence_stated: bool


@dataclass(frozen=True)
class ActionRecord:
    """Every event of one action (intent, applied/failed, compensated, verification), in order."""

    marker: str
    action_id: str
    events: tuple[Event, ...]

    def first(self, kind: EventKind) -> Event | None:
        """The action's first event of ``kind``."""
        return next((e for e in self.events if e.kind is kind), None)

    @property
    def outcome(self) -> str:
        """The action's last state: ``verified``, ``not verified``, ``failed``, ``applied``..."""
        last = self.events[-1]
        if last.kind is EventKind.ACTION_APPLIED and last.payload.get("changed") is False:
            return "changed nothing"
        return str(last.kind).split(".", 1)[1].replace("_", " ")


def decisions_and_actions(events: Iterable[Event], markers: Markers | None = None
                          ) -> tuple[list[DecisionRecord], list[ActionRecord]]:
    """Every decision with its evidence, and every action with its events.

    A decision's evidence is the events its payload names in ``evidence``
    (sequence numbers); when it names none, the latest check of each metric
    evaluated before the decision.
    """
    markers = markers or Markers()
    latest_checks: dict[str, Event] = {}
    pending: list[tuple[str, Event, tuple[Event, ...] | list[int]]] = []
    actions: dict[str, list[Event]] = {}
    action_order: list[str] = []
    kept: dict[int, Event] = {}
    for event in events:
        kind = event.kind
        if kind is EventKind.CHECK_EVALUATED:
            latest_checks[str(event.payload.get("metric", "?"))] = event
        elif kind is EventKind.DECISION:
            stated = event.payload.get("evidence")
            if isinstance(stated, list) and stated and all(isinstance(s, int) for s in stated):
                pending.append((markers.label(event), event, list(stated)))
            else:
                pending.append((markers.label(event), event, tuple(latest_checks.values())))
        elif isinstance(kind, EventKind) and kind.is_action:
            markers.label(event)
            action = str(event.payload.get("action_id", f"#{event.seq}"))
            if action not in actions:
                actions[action] = []
                action_order.append(action)
            actions[action].append(event)
        kept[event.seq] = event
    decisions = []
    for marker, event, evidence in pending:
        if isinstance(evidence, list):
            found = tuple(kept[s] for s in evidence if s in kept)
            decisions.append(DecisionRecord(marker, event, found, True))
        else:
            decisions.append(DecisionRecord(marker, event, evidence, False))
    records = [ActionRecord(markers.actions[a], a, tuple(actions[a])) for a in action_order]
    return decisions, records
