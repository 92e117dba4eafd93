"""Incident timelines exported from the journal: Markdown, JSON and self-contained HTML.

- **Markdown** is a post-mortem skeleton: summary, impact window, TTD and TTM
  (with how they are measured), the timeline, every decision with its evidence,
  every action with its verification, and the sections people fill in.
- **JSON** (schema ``rewind.incident/1``) is complete: every event with its
  hash, so :func:`parse_incident_document` can re-import it and the chain verifies.
- **HTML** is one file with inline CSS and SVG, no network and no script: charts
  of each checked metric per version over the incident window (drawn from the
  journal's own ``check.evaluated`` events, never from Prometheus at export time)
  with a marker at every decision and action, then the same sections as Markdown.

Times are shown in UTC and in a local zone (the exporting machine's, or ``tz``).
Everything is rendered from one read of the incident; nothing here does I/O
other than writing to the text stream it is given.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, TextIO, TypedDict

from console.domain.errors import UsageError
from console.domain.incident import (
    ActionRecord,
    DecisionRecord,
    IncidentFacts,
    IncidentSummary,
    Markers,
    TimelineRow,
    action_detail,
    compact,
    decisions_and_actions,
    describe,
    format_duration,
    history_span,
    incident_facts,
    plan_sentences,
    state_text,
    summarise,
    timeline_rows,
)
from console.domain.journal import (
    GENESIS_HASH,
    HASH_ALGORITHM,
    Actor,
    CheckEvidence,
    Event,
    EventKind,
    IncidentHead,
    VerifyResult,
    canonical_json,
    check_evidence,
    parse_kind,
    parse_ts,
    verify_chain,
)
from console.domain.metrics import Unit, criterion_sentence, format_count, format_value
from console.domain.rollback import Plan, describe_feature_moves
from console.domain.verdicts import history_breaches
from console.domain.versions import version_sort_key
from console.runtime import gc_paused
from console.services.history import latest_history

INCIDENT_SCHEMA = "rewind.incident/1"
FORMATS = ("md", "json", "html")
HISTORY_FORMATS = ("md", "html")
"""The formats that tell the metrics' history (JSON is the journal as it stands: exporting it reads only)."""
HASH_DEFINITION = (
    "sha256 of the UTF-8 canonical JSON (sorted keys, no whitespace, no NaN) of "
    "{actor, incident_id, kind, payload, prev_hash, seq, ts}; prev_hash of event 1 is 64 zeros"
)


_Point = tuple[float, float | None]
"""A chart point: ``(Unix time, value)``, the value ``None`` where there is no data."""


class _ViewCache(TypedDict, total=False):
    """What an :class:`IncidentView` computes once, on first use."""

    breaches: list[_Breach]


@dataclass(frozen=True)
class IncidentView:
    """Everything the exports show, computed once from one read of the incident."""

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
    cache: _ViewCache = field(default_factory=_ViewCache, compare=False, repr=False)


def build_view(head: IncidentHead, events: list[Event], history_note: str | None = None) -> IncidentView:
    """Analyse an incident's events for export (verifying its chain on the way).

    Args:
        head: the chain head the journal recorded.
        events: the incident's events.
        history_note: why the metrics' history could not be read for this export, shown in the document.
    """
    with gc_paused():
        return _build_view(head, events, history_note)


def _build_view(head: IncidentHead, events: list[Event], history_note: str | None = None) -> IncidentView:
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


def export(view: IncidentView, fmt: str, out: TextIO, clock: Clock | None = None,
           exported_at: datetime | None = None, generator: str = "rewind") -> None:
    """Write one incident in ``fmt`` (``md``, ``json`` or ``html``) to ``out``.

    Args:
        view: the incident, analysed.
        fmt: ``md``, ``json`` or ``html``.
        out: where to write.
        clock: UTC and local time formatting (default: the system's zone).
        exported_at: the export time written in the document (default: now).
        generator: the program and version named in the document.
    """
    clock = clock or Clock()
    exported_at = exported_at or datetime.now(UTC)
    with gc_paused():
        _export(view, fmt, out, clock, exported_at, generator)


def _export(view: IncidentView, fmt: str, out: TextIO, clock: Clock, exported_at: datetime, generator: str) -> None:
    if fmt == "md":
        render_markdown(view, out, clock, exported_at, generator)
    elif fmt == "json":
        render_json(view, out, exported_at, generator)
    elif fmt == "html":
        render_html(view, out, clock, exported_at, generator)
    else:
        raise UsageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


# --- shared text ----------------------------------------------------------------------------
# Every fact is phrased once, here, as (label, text) lines or plain sentences; Markdown and HTML
# only add their markup around the same lines, so both formats always show the same facts.

TO_FILL = "To fill in"


def _definitions() -> list[str]:
    return [
        "Impact start: the impact start given when the incident was opened (`--impact-start`); "
        "without one, the earlier of detection and the first breaching check (marked estimated).",
        "Detected: the detection time given when the incident was opened, else the moment it was opened.",
        "Mitigated: the first `action.verified` event, the first change whose effect was checked and confirmed.",
        "Impact end: mitigation; else the incident's closing; else the impact is ongoing.",
        "Time to detect (TTD) = detected - impact start; measured when the impact start was given, "
        "an estimate when the impact start was estimated from a breach seen before detection.",
        "Time to mitigate (TTM) = mitigated - detected.",
    ]


def _fact_lines(view: IncidentView, clock: Clock) -> list[tuple[str, str]]:
    f = view.facts
    start = clock.both(f.impact_start.at) + f" - {f.impact_start.source}" + (
        " (estimated)" if f.impact_start_estimated else "")
    lines = [
        ("Impact start", start),
        ("Detected", f"{clock.both(f.detected.at)} - {f.detected.source}"),
        ("Mitigated", f"{clock.both(f.mitigated.at)} - {f.mitigated.source}" if f.mitigated else "not mitigated"),
        ("Impact end", f"{clock.both(f.impact_end.at)} - {f.impact_end.source}" if f.impact_end else "ongoing"),
    ]
    if f.impact_end:
        lines.append(("Impact duration", format_duration((f.impact_end.at - f.impact_start.at).total_seconds())))
    lines += [
        ("Time to detect (TTD)", f.ttd_text()),
        ("Time to mitigate (TTM)", format_duration(f.ttm_s) if f.ttm_s is not None
         else "not measured (no verified action)"),
    ]
    return lines


def _chain_line(view: IncidentView) -> str:
    v = view.verification
    if v.ok:
        return (f"Hash chain verified: {v.events} events, head {HASH_ALGORITHM} {v.head_hash}.")
    return f"HASH CHAIN BROKEN: {v.problem.message() if v.problem else 'unknown problem'}."


def _unit(evidence: CheckEvidence) -> Unit | None:
    return _unit_of(evidence.unit)


def _unit_of(text: object) -> Unit | None:
    try:
        return Unit(str(text)) if text else None
    except ValueError:
        return None


def _value_text(value: float | None, raw: str | None, unit: Unit | None) -> str:
    if value is None:
        return "no data" if raw is None else f"no data ({raw})"
    return format_value(value, unit) if unit else f"{value:g}"


_VERDICT_SYMBOL = {"pass": "✓", "breach": "✗", "suspect": "!", "no_data": "?", "low_traffic": "~", "info": "·"}
_FLAGGED = ("breach", "suspect")


def _verdict(text: str | None) -> str:
    word = (text or "?").lower()
    shown = "BREACH" if word == "breach" else word.replace("_", " ")
    return f"{_VERDICT_SYMBOL.get(word, '·')} {shown}"


_CRITERION_ORDER = ("threshold", "max_delta", "delta_kind", "min_traffic")


def _criterion(criterion: object, unit: str | None = None, direction: str | None = None) -> str:
    if isinstance(criterion, Mapping):
        if "threshold" in criterion or "max_delta" in criterion:
            return criterion_sentence(criterion, unit, direction)
        keys = [k for k in _CRITERION_ORDER if k in criterion] + [k for k in criterion if k not in _CRITERION_ORDER]
        parts = [f"{k} {criterion[k]}" for k in keys if criterion[k] is not None]
        return ", ".join(parts) or "-"
    return compact(criterion)


def _decision_lines(decision: DecisionRecord, clock: Clock) -> list[tuple[str, str]]:
    """A decision's facts, as (label, text), for every format alike."""
    e = decision.event
    p = e.payload
    lines = [("When", f"{clock.both(e.ts)} (event #{e.seq})"), ("Who", e.actor.label())]
    if p.get("question"):
        lines.append(("Question", str(p.get("question"))))
    if p.get("options"):
        lines.append(("Options offered", compact(p.get("options"))))
    lines.append(("Reason given", compact(p.get("reason"), 2000)))
    return lines


def _evidence_how(decision: DecisionRecord) -> str:
    return ("named by the decision" if decision.evidence_stated
            else "the latest evaluation of each metric before the decision")


@dataclass(frozen=True)
class _Flagged:
    """One breaching or suspect cell of a check, with the reason a reader needs."""

    cell: str
    value: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class _EvidenceRow:
    """One check (or other event) a decision rests on: its flagged cells, and a count of the rest.

    ``check`` is false for evidence that is not a metric check (``values`` then says what it is).
    """

    seq: int
    what: str
    verdict: str | None
    values: str
    criterion: str = ""
    age: str = ""
    promql: str = ""
    check: bool = True
    flagged: tuple[_Flagged, ...] = ()
    rest: str = ""


def _cell_reason(cell: Mapping[str, object], value: float | None, unit: Unit | None, threshold: float | None,
                 direction: str) -> str:
    """The cell's own reason when the judge wrote one; else what can be said from its value and threshold."""
    if cell.get("reason"):
        return " ".join(str(cell["reason"]).split())
    counts = ""
    if cell.get("numerator") is not None and cell.get("denominator") is not None:
        counts = f" ({_count(cell['numerator'])} of {_count(cell['denominator'])})"
    if value is not None and threshold is not None:
        worse = value < threshold if direction == "higher_is_better" else value > threshold
        if worse:
            sign = "<" if direction == "higher_is_better" else ">"
            return f"{_value_text(value, None, unit)} {sign} {_value_text(threshold, None, unit)}{counts}"
    return f"{_value_text(value, None, unit)}{counts}; beyond its criterion against the stable version" \
        if value is not None else "no data"


def _count(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return format_count(number)


def _tally(states: Sequence[str], flagged: int) -> str:
    """``34 other cells pass, 2 low traffic``."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    if not counts:
        return "no other cell" if flagged else "no cells"
    order = ["pass", "low_traffic", "no_data", "info"]
    words = sorted(counts, key=lambda s: order.index(s) if s in order else len(order))
    total = sum(counts.values())
    parts = [f"{counts[w]} {w.replace('_', ' ')}" for w in words]
    lead = f"{total} other cell{'s' if total != 1 else ''}" if flagged else f"{total} cell{'s' if total != 1 else ''}"
    if len(parts) == 1:
        only = words[0]
        return f"{lead}: all {only.replace('_', ' ')}" if total > 1 else f"{lead}: {only.replace('_', ' ')}"
    return f"{lead}: " + ", ".join(parts)


def _check_row(ev: Event) -> _EvidenceRow:
    c = check_evidence(ev.payload)
    unit = _unit(c)
    direction = str(ev.payload.get("direction", "higher_is_worse"))
    given = ev.payload.get("values")
    raw_cells: list[object] = given if isinstance(given, list) else []
    by_key = {(str(r.get("version", "?")), str(r.get("segment", "all"))): r for r in raw_cells
              if isinstance(r, Mapping)}
    flagged = []
    others = []
    for cell in sorted(c.values, key=lambda v: (version_sort_key(v.version), v.segment)):
        state = (cell.verdict or "").lower() or "info"
        if state in _FLAGGED:
            raw = by_key.get((cell.version, cell.segment), {})
            flagged.append(_Flagged(f"v{cell.version} {cell.segment}", _value_text(cell.value, cell.raw, unit),
                                    _verdict(state), _cell_reason(raw, cell.value, unit, c.threshold, direction)))
        else:
            others.append(state)
    flagged.sort(key=lambda f: 0 if f.verdict.startswith(_VERDICT_SYMBOL["breach"]) else 1)
    rest = _tally(others, len(flagged))
    return _EvidenceRow(ev.seq, c.title, c.verdict, rest, _criterion(c.criterion, c.unit, direction),
                        "-" if c.data_age_s is None else f"{c.data_age_s:g} s", c.promql,
                        flagged=tuple(flagged), rest=rest)


def _evidence_rows(decision: DecisionRecord) -> list[_EvidenceRow]:
    rows = []
    for ev in decision.evidence:
        if ev.kind is EventKind.CHECK_EVALUATED:
            rows.append(_check_row(ev))
        else:
            rows.append(_EvidenceRow(ev.seq, str(ev.kind), None, describe(ev), check=False))
    return rows


def _plan_of(action: ActionRecord) -> object:
    intent = action.first(EventKind.ACTION_INTENT)
    if intent is not None:
        return intent.payload.get("plan")
    failed = next((e for e in action.events if isinstance(e.payload.get("plan"), Mapping)), None)
    return failed.payload.get("plan") if failed else None


def _action_lines(action: ActionRecord, clock: Clock) -> list[tuple[str, str]]:
    """An action's plan and each of its events, as (label, text), for every format alike."""
    lines = []
    intent = action.first(EventKind.ACTION_INTENT)
    if intent is not None:
        lines.append(("Plan", " ".join(plan_sentences(intent.payload.get("plan")))))
        plan = intent.payload.get("plan")
        if isinstance(plan, Mapping) and plan.get("reason"):
            lines.append(("Reason given", compact(plan.get("reason"), 1000)))
        if intent.payload.get("expected") is not None:
            lines.append(("Expected state", state_text(intent.payload.get("expected"))))
    for ev in action.events:
        what = str(ev.kind).split(".", 1)[1].replace("_", " ")
        detail = action_detail(ev)
        lines.append((what.capitalize(), f"{clock.both(ev.ts)} by {ev.actor.label()} (event #{ev.seq})"
                      + (f": {detail}" if detail else "")))
    return lines


def _verification(action: ActionRecord) -> tuple[bool | None, str, str]:
    """Whether the action was verified (None: nothing recorded), the word for it, and the evidence."""
    verified = action.first(EventKind.ACTION_VERIFIED) or action.first(EventKind.ACTION_NOT_VERIFIED)
    if verified is None:
        return None, "none recorded.", ""
    ok = verified.kind is EventKind.ACTION_VERIFIED
    return ok, "✓ verified" if ok else "✗ NOT verified", (
        f"expected {state_text(verified.payload.get('expected'))}; "
        f"observed {state_text(verified.payload.get('observed'))}")


# --- the post-mortem's sections -----------------------------------------------------------------

@dataclass
class _Breach:
    """One (metric, version, segment) cell that breached during the incident."""

    metric: str
    title: str
    version: str
    segment: str
    unit: Unit | None
    first: float
    last: float
    worst: float | None = None
    reason: str = ""
    source: str = "checks"


def _worse(a: float | None, b: float | None, better_high: bool) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b) if better_high else max(a, b)


def _breaches(view: IncidentView) -> list[_Breach]:
    """Every cell that breached: judged so by a journaled check, or by the same judge on the history.

    Computed once per view: an incident can hold tens of thousands of checks.
    """
    if "breaches" not in view.cache:
        view.cache["breaches"] = _find_breaches(view)
    return view.cache["breaches"]


def _find_breaches(view: IncidentView) -> list[_Breach]:
    found: dict[tuple[str, str, str], _Breach] = {}
    for event in view.events:
        if event.kind is not EventKind.CHECK_EVALUATED:
            continue
        p = event.payload
        if str(p.get("verdict", "")).lower() != "breach" or not isinstance(p.get("values"), list):
            continue  # a check has a breaching cell only when its verdict is breach
        at = _event_time(event)
        metric = str(p.get("metric", "?"))
        better_high = str(p.get("direction")) == "higher_is_better"
        for raw in p["values"]:
            if not isinstance(raw, Mapping) or str(raw.get("verdict", "")).lower() != "breach":
                continue
            key = (metric, str(raw.get("version", "?")), str(raw.get("segment", "all")))
            value = _number(raw.get("raw", raw.get("value")))
            b = found.get(key)
            if b is None:  # the first breach of a cell: its reason, read the careful way
                c = check_evidence(p)
                unit = _unit(c)
                reason = _cell_reason(raw, value, unit, c.threshold, str(p.get("direction")))
                b = found[key] = _Breach(metric, c.title, key[1], key[2], unit, at, at, reason=reason)
            b.first, b.last = min(b.first, at), max(b.last, at)
            if value is not None and math.isfinite(value):
                b.worst = _worse(b.worst, value, better_high)
    for metric, event in view.history.items():
        p = event.payload
        start, step = _number(p.get("start")), _number(p.get("step"))
        if start is None or not step:
            continue
        traffic = view.history.get(str(p.get("traffic_metric")))
        judged = history_breaches(p, traffic.payload if traffic else None)
        if not judged:
            continue
        better_high = str(p.get("direction")) == "higher_is_better"
        unit = _unit_of(p.get("unit"))
        values_of = {(str(x.get("version", "?")), str(x.get("segment", "all"))): x.get("values") or []
                     for x in p.get("series") or [] if isinstance(x, Mapping)}
        for (version, segment), indexes in judged.items():
            values = values_of.get((version, segment), [])
            hit = [x for i in indexes if i < len(values) and (x := _number(values[i])) is not None]
            worst = (min(hit) if better_high else max(hit)) if hit else None
            first, last = start + indexes[0] * step, start + indexes[-1] * step
            key = (metric, version, segment)
            b = found.get(key)
            if b is None:
                rule = criterion_sentence(p.get("criterion") or {}, p.get("unit"), p.get("direction"))
                b = found[key] = _Breach(metric, str(p.get("title") or metric), version, segment, unit, first, last,
                                         reason=f"judged a breach at {len(indexes)} point(s) of the history: {rule}",
                                         source="history")
            b.first, b.last = min(b.first, first), max(b.last, last)
            b.worst = _worse(b.worst, worst, better_high)
            if b.source == "checks":
                b.source = "checks and history"
    return sorted(found.values(), key=lambda b: (b.first, b.metric, version_sort_key(b.version), b.segment))


def _number(value: object) -> float | None:
    """A payload number (``"+Inf"`` included); ``None`` for null, NaN and anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def _event_time(event: Event) -> float:
    at = event.payload.get("evaluated_at")
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    return parse_ts(event.ts).timestamp()


def _at(seconds: float, clock: Clock) -> str:
    return clock.both(datetime.fromtimestamp(seconds, UTC))


def _breach_lines(view: IncidentView, clock: Clock) -> list[str]:
    """One sentence per breaching cell: metric, cell, when, how bad, why."""
    lines = []
    for b in _breaches(view):
        span = (f"at {clock.utc(datetime.fromtimestamp(b.first, UTC))}" if b.first == b.last else
                f"from {clock.utc(datetime.fromtimestamp(b.first, UTC))} to "
                f"{clock.utc(datetime.fromtimestamp(b.last, UTC))[11:]}")
        worst = f", worst {_value_text(b.worst, None, b.unit)}" if b.worst is not None else ""
        lines.append(f"{b.title}: v{b.version} in {b.segment} breached {span}{worst} ({b.reason}; seen in "
                     f"the {b.source})")
    return lines


def _first_breach(view: IncidentView) -> Event | None:
    return next((e for e in view.events if e.kind is EventKind.CHECK_EVALUATED
                 and str(e.payload.get("verdict", "")).lower() == "breach"), None)


def _left_versions(view: IncidentView) -> list[tuple[ActionRecord, Mapping[str, Any]]]:
    """The rollbacks (not undos) that changed something, with their plans."""
    found = []
    for action in view.actions:
        plan = _plan_of(action)
        if isinstance(plan, Mapping) and plan.get("leave") and not plan.get("undoes"):
            found.append((action, plan))
    return found


def _version_facts(view: IncidentView, version: str) -> list[str]:
    """What the journal knows of a version: creation time, run, description and tags, when recorded."""
    for event in view.events:
        p = event.payload
        for key in ("versions", "version_info"):
            info = p.get(key)
            if isinstance(info, list):
                info = {str(i.get("version")): i for i in info if isinstance(i, Mapping)}
            if isinstance(info, Mapping) and isinstance(info.get(version), Mapping):
                v = info[version]
                facts = []
                if v.get("created_at"):
                    facts.append(f"created {v['created_at']}")
                if v.get("run_id"):
                    facts.append(f"run {v['run_id']}")
                if v.get("description"):
                    facts.append(f"described as {compact(v['description'], 200)!r}")
                if isinstance(v.get("tags"), Mapping) and v["tags"]:
                    facts.append("tags " + ", ".join(f"{k}={t}" for k, t in v["tags"].items()))
                if facts:
                    return facts
    return []


def _summary_lines(view: IncidentView, clock: Clock) -> list[str]:
    """What happened, in a few sentences made of the journal's facts."""
    s = view.summary
    lines = [f"{s.summary}."] if not s.summary.endswith((".", "!", "?")) else [s.summary]
    breaches = _breaches(view)
    if breaches:
        cells: dict[str, list[str]] = {}
        for b in breaches:
            cells.setdefault(b.title, []).append(f"v{b.version} {b.segment}")
        what = "; ".join(f"{title} in {', '.join(dict.fromkeys(c))}" for title, c in cells.items())
        lines.append(f"Breaching: {what}.")
    for action, plan in _left_versions(view):
        ok, word, _ = _verification(action)
        lines.append(f"{action.marker} ({action.outcome}): rolled back from v{plan.get('leave')} to "
                     f"v{plan.get('target')}. " + " ".join(plan_sentences(plan)))
    if view.facts.mitigated:
        lines.append(f"Mitigated {clock.both(view.facts.mitigated.at)}"
                     + (f", {format_duration(view.facts.ttm_s)} after detection." if view.facts.ttm_s is not None
                        else "."))
    if s.resolution:
        lines.append(f"Resolution: {s.resolution}" + ("" if s.resolution.endswith((".", "!", "?")) else "."))
    return lines


_CAUSE_WORDS = {"feature": "feature bug", "model": "model regression", "world": "the world changed (drift)",
                "unsure": "not sure"}
"""A diagnosis' cause as the post-mortem names it."""


@dataclass(frozen=True)
class _DiagnosisAtTheTime:
    """The diagnosis journaled at the decision's time, and where."""

    event: Event
    diagnosis: Mapping[str, Any]


def _diagnosis_at_the_time(view: IncidentView) -> _DiagnosisAtTheTime | None:
    """The diagnosis the decision was taken on: the latest journaled before the first action, else the first.

    A playbook's ``gate: diagnosis`` check and its features action journal it (``diagnosis`` in a note's payload).
    """
    found = [e for e in view.events if isinstance(e.payload.get("diagnosis"), Mapping)
             and e.payload["diagnosis"].get("cause")]
    if not found:
        return None
    # The first action taken once a diagnosis was there (an incident may hold earlier actions of its own).
    first_action = next((e.seq for e in view.events if e.kind is EventKind.ACTION_INTENT and e.seq > found[0].seq),
                        None)
    before = [e for e in found if first_action is None or e.seq < first_action]
    chosen = before[-1] if before else found[0]
    return _DiagnosisAtTheTime(chosen, chosen.payload["diagnosis"])


def _diagnosis_item(found: _DiagnosisAtTheTime, clock: Clock) -> tuple[str, list[str]]:
    d = found.diagnosis
    cause = str(d.get("cause"))
    summary = str(d.get("summary") or "")
    named = _CAUSE_WORDS.get(cause, cause)
    # The summary usually opens with the cause's own words ("feature bug: ..."): say them once.
    said = summary if summary.lower().startswith(named.split(" (")[0].lower()) else \
        named + (f" — {summary}" if summary else "")
    head = f"Diagnosis at the time ({clock.both(found.event.ts)}, event #{found.event.seq}): {said}."
    evidence = [str(line) for line in d.get("evidence") or [] if str(line).strip()]
    details = [f"Evidence: {line}" for line in evidence]
    suspect = d.get("suspect")
    if isinstance(suspect, Mapping) and suspect.get("view"):
        since = _number(suspect.get("since"))
        when = f", first seen {clock.both(datetime.fromtimestamp(since, UTC))}" if since is not None else ""
        details.append(f"Suspect: feature view {suspect.get('view')} {suspect.get('view_version')} "
                       f"(sha {suspect.get('udf_sha')}) through {suspect.get('feature_service')}{when}.")
    details += [f"Missing to be sure: {line}" for line in d.get("missing") or []]
    if d.get("advice"):
        details.append(f"Advice given: {d['advice']}.")
    return head, details


def _features_moved(action: ActionRecord) -> str | None:
    """What an action (a feature rollback or its undo) moved in the model's features, in one line."""
    plan = _plan_of(action)
    if not isinstance(plan, Mapping) or not (plan.get("tag_moves") or plan.get("view_pin")):
        return None
    try:
        parsed = Plan.from_dict(dict(plan))
    except (KeyError, TypeError, ValueError):
        return None
    return describe_feature_moves(parsed) if parsed.moves_features else None


def _feature_plan(action: ActionRecord) -> Plan | None:
    """The action's plan when it moved features (not an undo), else ``None``."""
    plan = _plan_of(action)
    if not isinstance(plan, Mapping) or plan.get("undoes"):
        return None
    try:
        parsed = Plan.from_dict(dict(plan))
    except (KeyError, TypeError, ValueError):
        return None
    return parsed if parsed.moves_features else None


def _trigger_items(view: IncidentView, clock: Clock) -> list[tuple[str, list[str]]]:
    """The trigger section: each line with its sub-lines (a diagnosis' evidence)."""
    items: list[tuple[str, list[str]]] = [(line, []) for line in _trigger_lines(view)]
    found = _diagnosis_at_the_time(view)
    if found is not None:
        items.insert(0, _diagnosis_item(found, clock))
    for action in view.actions:
        plan = _feature_plan(action)
        if plan is not None:
            items.append((f"The feature binding was rolled back by {action.marker} ({action.outcome}): "
                          f"{describe_feature_moves(plan)}; the model's versions, weights and aliases were "
                          f"not touched.", []))
    return items


def _trigger_flat(view: IncidentView, clock: Clock) -> list[str]:
    """The trigger section as plain lines (sub-lines indented), for JSON."""
    return [text for line, details in _trigger_items(view, clock) for text in [line, *(f"  {d}" for d in details)]]


def _trigger_lines(view: IncidentView) -> list[str]:
    left = _left_versions(view)
    if not left:
        return []
    lines = []
    for action, plan in left:
        version = str(plan.get("leave"))
        given = plan.get("aliases_before")
        aliases: Mapping[str, object] = given if isinstance(given, Mapping) else {}
        held = [a for a, v in aliases.items() if str(v) == version]
        facts = _version_facts(view, version)
        lines.append(f"v{version} of {plan.get('model', view.summary.model)} was the version left by "
                     f"{action.marker}" + (f" (it held {', '.join(held)})" if held else "")
                     + (f"; {'; '.join(facts)}" if facts else "") + ".")
    return lines


def _detection_lines(view: IncidentView, clock: Clock) -> list[str]:
    f = view.facts
    lines = [f"Detected {clock.both(f.detected.at)} ({f.detected.source})."]
    first = _first_breach(view)
    if first is not None:
        c = check_evidence(first.payload)
        row = _check_row(first)
        cell = f": {row.flagged[0].cell} {row.flagged[0].reason}" if row.flagged else ""
        lines.append(f"First breaching check: {c.title} {clock.both(first.ts)} (event #{first.seq}){cell}.")
    lines.append(f"Time to detect: {f.ttd_text()}.")
    return lines


def _resolution_lines(view: IncidentView, clock: Clock) -> list[str]:
    f = view.facts
    lines = []
    for action in view.actions:
        moment = action.first(EventKind.ACTION_APPLIED) or action.events[-1]
        ok, word, _ = _verification(action)
        features = _features_moved(action)
        lines.append(f"{action.marker} {action.action_id} ({action.outcome}) {clock.both(moment.ts)}: "
                     + " ".join(plan_sentences(_plan_of(action)))
                     + (f" Features: {features}." if features else "")
                     + ("" if ok is None else f" Verification: {word}."))
    if f.mitigated:
        lines.append(f"Mitigated {clock.both(f.mitigated.at)} ({f.mitigated.source}); time to mitigate "
                     f"{format_duration(f.ttm_s)}.")
    else:
        lines.append("Not mitigated: no action was verified.")
    if view.summary.resolution:
        lines.append(f"Resolution given when closing: {view.summary.resolution}")
    return lines


def _history_lines(view: IncidentView, clock: Clock) -> list[str]:
    """Where the charts' data comes from, and the note when the history could not be read."""
    lines = []
    if view.history:
        first = min(view.history.values(), key=lambda e: e.seq)
        lines.append(f"Charts drawn from the metrics history captured {clock.both(first.ts)} (event #{first.seq}): "
                     f"{history_span(first.payload)}.")
    if view.history_note:
        lines.append(view.history_note)
    return lines


def _time_header(clock: Clock) -> list[str]:
    return ["UTC"] if clock.is_utc else ["UTC", f"Local ({clock.zone_name})"]


def _time_cells(clock: Clock, ts: str) -> list[str]:
    return [clock.utc(ts)] if clock.is_utc else [clock.utc(ts), clock.local(ts)]


# --- Markdown ---------------------------------------------------------------------------------

def _md(text: object) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    # Only a "<" that could open a tag is escaped: "54.6% < 85.0%" stays readable in the raw file.
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return _TAG_START.sub("&lt;", text)


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _code(text: object) -> str:
    value = " ".join(str(text).split())
    fence = "``" if "`" in value else "`"
    return f"{fence} {value} {fence}" if fence == "``" else f"`{value}`"


def _blank(what: str) -> str:
    return f"_{TO_FILL}: {what}_"


_LESSONS = (("What went well", "what helped detect, decide and recover."),
            ("What went wrong", "what slowed us down or made it worse."),
            ("Where we got lucky", "what could have gone worse."))


def render_markdown(view: IncidentView, out: TextIO, clock: Clock, exported_at: datetime,
                    generator: str = "rewind") -> None:
    """The post-mortem draft in Markdown, in the order of the SRE book's example post-mortem."""
    s = view.summary
    w = out.write
    w(f"# Post-mortem: {_md(s.summary)}\n\n")
    w(f"Incident **{s.incident_id}** · {s.severity} · model `{s.model}` · {s.status}\n\n")
    w("| | |\n|---|---|\n")
    w(f"| Opened | {clock.both(s.opened_at)} by {_md(s.opened_by.label())} |\n")
    if s.closed_at:
        w(f"| Closed | {clock.both(s.closed_at)} |\n")
    w(f"| Authors | {_blank('who wrote this post-mortem.')} |\n")
    w(f"| Events | {s.events} |\n")
    w(f"| Exported | {clock.both(exported_at)} by {generator} |\n")
    w(f"| Journal | {_md(_chain_line(view))} |\n\n")

    w("## Summary\n\n")
    w(" ".join(_md(line) for line in _summary_lines(view, clock)) + "\n\n")
    w(_blank("what happened, in two or three sentences a newcomer understands.") + "\n\n")

    w("## Impact\n\n")
    for name, value in _fact_lines(view, clock):
        w(f"- **{name}**: {_md(value)}\n")
    breaches = _breach_lines(view, clock)
    if breaches:
        w("\nWhat breached:\n\n")
        w("".join(f"- {_md(line)}\n" for line in breaches))
    for line in _history_lines(view, clock):
        w(f"\n_{_md(line)}_\n")
    w(f"\n{_blank('who was affected (users, requests, revenue) and how badly.')}\n\n")

    w("## Trigger\n\n")
    for line, details in _trigger_items(view, clock):
        w(f"- {_md(line)}\n" + "".join(f"  - {_md(detail)}\n" for detail in details))
    w(f"- {_blank('what change set this off (the deploy, data or config change), and when.')}\n\n")

    w("## Detection\n\n")
    w("".join(f"- {_md(line)}\n" for line in _detection_lines(view, clock)))
    w(f"- {_blank('how we noticed (alert, dashboard, user report), and how detection could be faster.')}\n\n")

    w("## Resolution\n\n")
    w("".join(f"- {_md(line)}\n" for line in _resolution_lines(view, clock)))
    w("\n")

    w("## Root cause\n\n")
    w(_blank("why it happened (ask why until the answer is a fix); Rewind only knows what it saw.") + "\n\n")

    w("## Lessons learned\n\n")
    for title, hint in _LESSONS:
        w(f"### {title}\n\n- {_blank(hint)}\n\n")

    w("## Action items\n\n")
    w("| Action item | Type | Owner | Due | Ticket |\n|---|---|---|---|---|\n"
      "| _To fill in_ | prevent / mitigate / detect | | | |\n\n")

    w("## Timeline\n\n")
    zone = "UTC" if clock.is_utc else f"UTC and in {_md(clock.zone_name)}"
    w(f"Times in {zone}. Runs of consecutive check evaluations are folded into one "
      "row; the JSON export has every event.\n\n")
    header = ["#", *_time_header(clock), "Who", "Marker", "What"]
    w("| " + " | ".join(_md(h) for h in header) + " |\n|" + "---|" * len(header) + "\n")
    for row in view.rows:
        seq = str(row.first_seq) if row.count == 1 else f"{row.first_seq}–{row.last_seq}"
        w(f"| {seq} | " + " | ".join(_time_cells(clock, row.ts)) + f" | {_md(row.actor.label())} | {row.marker} "
          f"| {_md(row.text)} |\n")
    w("\n")

    w("## Decisions\n\n")
    if not view.decisions:
        w("No decision was recorded.\n\n")
    for decision in view.decisions:
        w(f"### {decision.marker}: {_md(compact(decision.event.payload.get('option')))}\n\n")
        w("".join(f"- {label}: {_md(text)}\n" for label, text in _decision_lines(decision, clock)) + "\n")
        if decision.evidence:
            w(f"Evidence ({_evidence_how(decision)}):\n\n")
            w("| # | Metric | Verdict | Cell | Value | Why |\n|---|---|---|---|---|---|\n")
            rows = _evidence_rows(decision)
            for r in rows:
                if not r.check:
                    w(f"| {r.seq} | {_md(r.what)} | | | | {_md(r.values)} |\n")
                    continue
                for flagged in r.flagged:
                    w(f"| {r.seq} | {_md(r.what)} | {flagged.verdict} | {_md(flagged.cell)} | {_md(flagged.value)} "
                      f"| {_md(flagged.reason)} |\n")
                w(f"| {r.seq} | {_md(r.what)} | {'' if r.flagged else _verdict(r.verdict)} | "
                  f"{'other cells' if r.flagged else 'all cells'} | | {_md(r.rest)} |\n")
            checks = [r for r in rows if r.check]
            if checks:
                w("\nQueries and criteria:\n\n")
                w("".join(f"- #{r.seq} {_md(r.what)}: {_md(_code(r.promql))}; criterion {_md(r.criterion)}; "
                          f"data age {r.age}\n" for r in checks))
            w("\n")
        else:
            w("Evidence: none recorded before this decision.\n\n")

    w("## Actions\n\n")
    if not view.actions:
        w("No action was recorded.\n\n")
    for action in view.actions:
        w(f"### {action.marker}: {_md(action.action_id)} ({action.outcome})\n\n")
        w("".join(f"- {label}: {_md(text)}\n" for label, text in _action_lines(action, clock)))
        ok, word, detail = _verification(action)
        w(f"- **Verification: {word}**{': ' + _md(detail) if detail else ''}\n\n")

    w("## How these figures are measured\n\n")
    for line in _definitions():
        w(f"- {line}\n")
    w("\n")
    w(f"---\nGenerated by {generator} from the {_md(view.head.incident_id)} journal. "
      f"{_md(_chain_line(view))}\n")


# --- JSON ------------------------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _trigger_json(view: IncidentView) -> dict[str, object]:
    """The trigger section for JSON: the diagnosis at the time (with the event it was journaled in) and the lines."""
    found = _diagnosis_at_the_time(view)
    diagnosis = None if found is None else {**found.diagnosis, "event_seq": found.event.seq, "ts": found.event.ts}
    return {"diagnosis": diagnosis, "lines": _trigger_flat(view, Clock(UTC, "UTC"))}


def render_json(view: IncidentView, out: TextIO, exported_at: datetime, generator: str = "rewind") -> None:
    """The complete incident as JSON (schema ``rewind.incident/1``), one event per line."""
    s, f = view.summary, view.facts
    header = {
        "schema": INCIDENT_SCHEMA,
        "generator": generator,
        "exported_at": _iso(exported_at),
        "hash": {"algorithm": HASH_ALGORITHM, "genesis": GENESIS_HASH, "definition": HASH_DEFINITION},
        "incident": {
            "id": s.incident_id, "model": s.model, "severity": s.severity, "summary": s.summary,
            "status": s.status, "opened_at": s.opened_at, "closed_at": s.closed_at, "resolution": s.resolution,
            "events": len(view.events), "head": {"seq": view.head.seq, "hash": view.head.hash},
        },
        "facts": {
            "impact_start": _iso(f.impact_start.at), "impact_start_estimated": f.impact_start_estimated,
            "detected_at": _iso(f.detected.at), "mitigated_at": _iso(f.mitigated.at if f.mitigated else None),
            "impact_end": _iso(f.impact_end.at if f.impact_end else None),
            "closed_at": _iso(f.closed.at if f.closed else None), "ttd_s": f.ttd_s,
            "ttd_estimate_s": f.ttd_estimate_s, "ttm_s": f.ttm_s,
            "definitions": _definitions(),
        },
        "verification": {"ok": view.verification.ok,
                         "problem": view.verification.problem.message() if view.verification.problem else None},
        "trigger": _trigger_json(view),
    }
    text = json.dumps(header, indent=2, ensure_ascii=False)
    out.write(text[:-2] + ',\n  "events": [\n')
    actors: dict[Actor, str] = {}
    dumps = json.dumps
    last = len(view.events) - 1
    for index, e in enumerate(view.events):
        actor = actors.get(e.actor)
        if actor is None:
            actor = actors[e.actor] = e.actor.canonical()
        out.write(
            '    {"incident_id":' + dumps(e.incident_id, ensure_ascii=False) + ',"seq":' + str(e.seq)
            + ',"ts":' + dumps(e.ts) + ',"actor":' + actor + ',"kind":' + dumps(str(e.kind), ensure_ascii=False)
            + ',"payload":' + e.payload_json + ',"prev_hash":' + dumps(e.prev_hash)
            + ',"hash":' + dumps(e.hash) + ("}\n" if index == last else "},\n")
        )
    out.write("  ]\n}\n")


def parse_incident_document(document: object, source: str) -> list[Event]:
    """Read the events of a ``rewind.incident/1`` document, rebuilding each one's canonical payload.

    The events are returned as found; verifying their chain is the importer's job.

    Raises:
        UsageError: for anything that is not a complete ``rewind.incident/1`` document.
    """
    def bad(why: str) -> UsageError:
        return UsageError(f"{source}: {why}; nothing imported")

    if not isinstance(document, Mapping):
        raise bad("not a JSON object")
    if document.get("schema") != INCIDENT_SCHEMA:
        raise bad(f"schema is {document.get('schema')!r}, expected {INCIDENT_SCHEMA!r}")
    raw_events = document.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        raise bad("has no events")
    events: list[Event] = []
    actors: dict[tuple[str, str, str | None], Actor] = {}
    for index, item in enumerate(raw_events):
        where = f"events[{index}]"
        if not isinstance(item, Mapping):
            raise bad(f"{where} is not an object")
        try:
            actor_data = item["actor"]
            key = (str(actor_data["user"]), str(actor_data["host"]),
                   None if actor_data.get("ssh_client") is None else str(actor_data["ssh_client"]))
            payload = item["payload"]
            seq, ts, kind = item["seq"], item["ts"], item["kind"]
            incident_id, prev_hash, digest = item["incident_id"], item["prev_hash"], item["hash"]
        except (KeyError, TypeError) as exc:
            raise bad(f"{where} lacks {exc}") from None
        if not isinstance(payload, dict):
            raise bad(f"{where}.payload is not an object")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise bad(f"{where}.seq is not a positive whole number")
        for name, value in (("ts", ts), ("kind", kind), ("incident_id", incident_id), ("prev_hash", prev_hash),
                            ("hash", digest)):
            if not isinstance(value, str) or not value:
                raise bad(f"{where}.{name} is not a string")
        try:
            parse_ts(ts)
        except ValueError:
            raise bad(f"{where}.ts {ts!r} is not a timestamp") from None
        if incident_id != raw_events[0].get("incident_id"):
            raise bad(f"{where} belongs to another incident ({incident_id})")
        try:
            payload_json = canonical_json(payload)
        except ValueError as exc:
            raise bad(f"{where}.payload: {exc}") from None
        actor = actors.get(key)
        if actor is None:
            actor = actors[key] = Actor(*key)
        events.append(Event(incident_id, seq, ts, actor, parse_kind(kind), payload_json, prev_hash,
                            digest).knowing_payload(payload))
    head = document.get("incident", {}).get("head") if isinstance(document.get("incident"), Mapping) else None
    if isinstance(head, Mapping) and (head.get("seq") != events[-1].seq or head.get("hash") != events[-1].hash):
        raise bad(f"the incident's head is #{head.get('seq')} but its events end at #{events[-1].seq} "
                  "(events were removed from the file)")
    return events


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#ffffff;--panel:#f6f8fa;--bad:#b3261e;--good:#1a7f37}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);
background:var(--bg);margin:0 auto;max-width:1240px;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;border-bottom:1px solid var(--line);padding-bottom:4px;
margin-top:32px}h3{font-size:1.05em;margin:20px 0 6px}
.badge{display:inline-block;border:1px solid var(--ink);border-radius:4px;padding:0 6px;font-size:.8em;
font-weight:600;margin-left:8px;vertical-align:middle}
.muted{color:var(--muted)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:8px 0}
th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
th{background:var(--panel)}
tr.decision td{background:#fff8c5}tr.action td{background:#ddf4ff}
td.num,td.when{white-space:nowrap;font-variant-numeric:tabular-nums}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--panel);padding:1px 3px;
border-radius:3px;word-break:break-all}
figure{margin:0 0 10px;border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff}
figure svg{width:100%;height:auto;display:block}
.smalls{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:8px}
figure.small{padding:3px;margin:0}figure.small figcaption{font-size:.8em}
.small-note{margin:4px 0}
.note{border-left:4px solid #bf8700;background:#fff8c5;padding:6px 10px;font-weight:600}
.blank{color:#8250df;font-style:italic}
.warn{color:#9a6700;font-weight:600}
tr.flagged td{background:#fff5f5}
figcaption{font-weight:600;font-size:.9em;margin:0 0 2px 4px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;margin:6px 0 10px;font-size:.9em}
.legend span{display:inline-flex;align-items:center;gap:6px}
.ok{color:var(--good);font-weight:600}.bad{color:var(--bad);font-weight:600}
ul.defs{font-size:.9em;color:var(--muted)}
footer{margin-top:32px;font-size:.85em;color:var(--muted)}
@media print{body{max-width:none}figure{break-inside:avoid}}
"""

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; each version also
# has its own dash pattern, point shape and a direct label, so colour is never the only cue.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7F7F7F")
_DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 2", "1 2", "12 4", "6 2 2 2")
_SHAPES = ("circle", "square", "triangle", "diamond", "circle", "square", "triangle", "diamond")

def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _chart_data(events: Sequence[Event]) -> tuple[dict[str, dict[str, dict[str, list[_Point]]]],
                                                   dict[str, CheckEvidence], list[float]]:
    """metric -> segment -> version -> [(t, value)], the latest evidence per metric, all check times.

    Reads the payloads directly rather than through :func:`check_evidence`: an
    incident can hold tens of thousands of checks.
    """
    data: dict[str, dict[str, dict[str, list[_Point]]]] = {}
    latest_payload: dict[str, Mapping[str, Any]] = {}
    times: list[float] = []
    isfinite = math.isfinite
    for event in events:
        if event.kind is not EventKind.CHECK_EVALUATED:
            continue
        payload = event.payload
        metric = str(payload.get("metric", "?"))
        at = payload.get("evaluated_at")
        if not isinstance(at, (int, float)) or isinstance(at, bool):
            at = parse_ts(event.ts).timestamp()
        times.append(at)
        latest_payload[metric] = payload
        by_segment = data.get(metric)
        if by_segment is None:
            by_segment = data[metric] = {}
        cells = payload.get("values")
        if isinstance(cells, Mapping) or not isinstance(cells, list):
            cells = check_evidence(payload).values
            cells = [{"version": c.version, "segment": c.segment, "raw": c.raw} for c in cells]
        for cell in cells:
            if not isinstance(cell, Mapping):
                continue
            raw = cell.get("raw", cell.get("value"))
            try:
                value: float | None = float(raw)
            except (TypeError, ValueError):
                value = None
            if value is not None and not isfinite(value):
                value = None  # NaN is no data; an infinite value cannot be drawn
            segment, version = str(cell.get("segment", "all")), str(cell.get("version", "?"))
            by_version = by_segment.get(segment)
            if by_version is None:
                by_version = by_segment[segment] = {}
            points = by_version.get(version)
            if points is None:
                points = by_version[version] = []
            points.append((at, value))
    latest = {metric: check_evidence(payload) for metric, payload in latest_payload.items()}
    return data, latest, times


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, max(last, first + 1) + 1)]


def _downsample(points: list[tuple[float, float]], x0: float, x1: float, buckets: int
                ) -> tuple[list[tuple[float, float]], list[tuple[float, float, float]] | None]:
    """Fit a series to about one point per pixel column.

    Returns the points to draw as the line (each column's mean, once there are
    more points than columns) and, when points were merged, each column's
    (time, lowest, highest) so the chart can shade the range: a spike is never
    averaged away unseen.
    """
    if len(points) <= buckets:
        return points, None
    span = (x1 - x0) or 1.0
    columns: dict[int, list[float]] = {}
    for at, value in points:
        column = int((at - x0) / span * buckets)
        kept = columns.get(column)
        if kept is None:
            columns[column] = [at, at, value, value, value, 1.0]  # first t, last t, min, max, sum, count
        else:
            kept[1] = at
            if value < kept[2]:
                kept[2] = value
            if value > kept[3]:
                kept[3] = value
            kept[4] += value
            kept[5] += 1
    line, band = [], []
    for column in sorted(columns):
        first, last, low, high, total, count = columns[column]
        middle = (first + last) / 2
        line.append((middle, total / count))
        band.append((middle, low, high))
    return line, band


def _shape(kind: str, x: float, y: float, colour: str, size: float = 3.6) -> str:
    if kind == "square":
        return (f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" height="{2 * size:.1f}" '
                f'fill="{colour}"/>')
    if kind == "triangle":
        return (f'<path d="M{x:.1f},{y - size - 1:.1f}L{x + size + 0.5:.1f},{y + size:.1f}'
                f'L{x - size - 0.5:.1f},{y + size:.1f}Z" fill="{colour}"/>')
    if kind == "diamond":
        return (f'<path d="M{x:.1f},{y - size - 1:.1f}L{x + size + 1:.1f},{y:.1f}L{x:.1f},{y + size + 1:.1f}'
                f'L{x - size - 1:.1f},{y:.1f}Z" fill="{colour}"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="{colour}"/>'


@dataclass(frozen=True)
class _Marker:
    at: float
    label: str
    kind: str  # "decision" or "action"
    title: str


_OUTCOME_MARK = {"verified": "✓", "not verified": "✗", "failed": "!", "compensated": "↺"}


def _markers(view: IncidentView, clock: Clock) -> list[_Marker]:
    """A marker per decision, and per action at the moment it changed something (or failed).

    An action's label carries its outcome: ``A1✓`` verified, ``A1✗`` not
    verified, ``A1!`` failed, ``A1↺`` compensated.
    """
    markers = []
    for decision in view.decisions:
        e = decision.event
        markers.append(_Marker(parse_ts(e.ts).timestamp(), decision.marker, "decision",
                               f"{decision.marker}: decision at {clock.utc(e.ts)}: {compact(e.payload.get('option'))}"))
    for action in view.actions:
        moment = (action.first(EventKind.ACTION_APPLIED) or action.first(EventKind.ACTION_FAILED)
                  or action.events[0])
        label = action.marker + _OUTCOME_MARK.get(action.outcome, "")
        markers.append(_Marker(parse_ts(moment.ts).timestamp(), label, "action",
                               f"{label}: action {action.action_id} at {clock.utc(moment.ts)} ({action.outcome})"))
    return sorted(markers, key=lambda m: m.at)


def _time_label(at: float, with_date: bool) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return f"{moment:%m-%d %H:%M}" if with_date else f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"


def _time_ticks(x0: float, x1: float, count: int = 6) -> list[float]:
    span = max(1.0, x1 - x0)
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    step = next((s for s in steps if span / s <= count), 86400 * math.ceil(span / 86400 / count))
    first = math.ceil(x0 / step) * step
    return [first + i * step for i in range(int((x1 - first) // step) + 1)]


@dataclass(frozen=True)
class _Geo:
    """A chart's size and margins (px), and whether it is a small, compact one."""

    w: int
    h: int
    left: int
    right: int
    top: int
    bottom: int
    compact: bool = False


_WIDE = _Geo(1180, 300, 64, 96, 46, 30)
_SMALL = _Geo(290, 118, 44, 8, 8, 20, compact=True)
_STABLE_COLOUR = "#6e7781"
_SERVED_COLOUR = "#1b1f24"


@dataclass
class _MetricChart:
    """One metric's chart data: per segment, per version, ``(time, value)`` points."""

    metric: str
    title: str
    unit: Unit | None
    promql: str
    criterion: object
    threshold: float | None
    stable: str | None
    source: str
    segments: dict[str, dict[str, list[_Point]]]
    served: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    direction: str | None = None


_SERVED_UNITS = (Unit.RATIO, Unit.SCORE)
"""Units whose traffic-weighted mean over versions is what a segment's users got (not so for a quantile)."""


def _served(chart: _MetricChart, traffic: _MetricChart | None) -> dict[str, list[tuple[float, float]]]:
    """Per segment, the versions' values weighted by their traffic at each time: what the segment's users got."""
    if traffic is None or traffic is chart or chart.unit not in _SERVED_UNITS:
        return {}
    served: dict[str, list[tuple[float, float]]] = {}
    for segment, by_version in chart.segments.items():
        rates = traffic.segments.get(segment, {})
        times: dict[float, list[float]] = {}
        for version, points in by_version.items():
            weights = dict(rates.get(version, ()))
            for at, value in points:
                rate = weights.get(at)
                if value is None or rate is None or rate <= 0:
                    continue
                cell = times.setdefault(at, [0.0, 0.0])
                cell[0] += value * rate
                cell[1] += rate
        if len(by_version) > 1 and times:
            served[segment] = [(at, total / weight) for at, (total, weight) in sorted(times.items())]
    return served


def _history_chart(event: Event) -> _MetricChart:
    p = event.payload
    start, step = _number(p.get("start")) or 0.0, _number(p.get("step")) or 1.0
    segments: dict[str, dict[str, list[_Point]]] = {}
    for series in p.get("series") or []:
        if not isinstance(series, Mapping):
            continue
        points = []
        for i, raw in enumerate(series.get("values") or []):
            value = _number(raw)
            points.append((start + i * step, value if value is not None and math.isfinite(value) else None))
        segments.setdefault(str(series.get("segment", "all")), {})[str(series.get("version", "?"))] = points
    criterion = p.get("criterion")
    threshold = _number(criterion.get("threshold")) if isinstance(criterion, Mapping) else None
    return _MetricChart(str(p.get("metric", "?")), str(p.get("title") or p.get("metric", "?")), _unit_of(p.get("unit")),
                        str(p.get("promql", "")), criterion, threshold,
                        None if p.get("stable_version") is None else str(p.get("stable_version")),
                        f"metrics history (event #{event.seq})", segments,
                        direction=None if p.get("direction") is None else str(p.get("direction")))


def _chart_model(view: IncidentView) -> tuple[list[_MetricChart], list[float]]:
    """The charts to draw (history where captured, else the journaled checks) and every time they cover."""
    data, latest, times = _chart_data(view.events)
    charts: dict[str, _MetricChart] = {}
    for metric, event in view.history.items():
        if event.payload.get("error") and metric in data:
            continue  # the capture failed for this metric: its checks are all there is
        if event.payload.get("error"):
            continue
        chart = _history_chart(event)
        charts[metric] = chart
        # The span the history has data for: the margin asked of Prometheus before a service existed
        # (a new deployment, a fresh sandbox) would only draw empty axes.
        seen = [t for by_version in chart.segments.values() for points in by_version.values()
                for t, value in points if value is not None]
        p = event.payload
        times += [min(seen), max(seen)] if seen else \
            [t for t in (_number(p.get("start")), _number(p.get("end"))) if t is not None]
    for metric, by_segment in data.items():
        if metric in charts:
            continue
        evidence = latest[metric]
        charts[metric] = _MetricChart(metric, evidence.title, _unit(evidence), evidence.promql, evidence.criterion,
                                      evidence.threshold, evidence.stable_version, "journaled checks", by_segment,
                                      direction=evidence.direction)
    for metric, event in view.history.items():
        drawn = charts.get(metric)
        traffic_name = event.payload.get("traffic_metric")
        if drawn is not None and drawn.source.startswith("metrics history") and isinstance(traffic_name, str):
            traffic = charts.get(traffic_name)
            if traffic is not None and traffic.source.startswith("metrics history"):
                drawn.served = _served(drawn, traffic)
    order = list(dict.fromkeys([*data, *view.history]))
    return [charts[m] for m in order if m in charts], times


def _legend_swatch(style: int | None) -> str:
    if style is None:
        return ('<svg width="40" height="12" viewBox="0 0 40 12" aria-hidden="true">'
                f'<line x1="1" y1="6" x2="39" y2="6" stroke="{_STABLE_COLOUR}" stroke-width="3"/></svg>')
    colour, dash, shape = _COLOURS[style % 8], _DASHES[style % 8], _SHAPES[style % 8]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<svg width="40" height="12" viewBox="0 0 40 12" aria-hidden="true">'
            f'<line x1="1" y1="6" x2="39" y2="6" stroke="{colour}" stroke-width="2"{dash_attr}/>'
            f'{_shape(shape, 20, 6, colour)}</svg>')


def _chart_svg(title: str, chart: _MetricChart, series: dict[str, list[_Point]], styles: dict[str, int],
               x0: float, x1: float, markers: list[_Marker], window: tuple[float, float], geo: _Geo,
               served: list[tuple[float, float]] | None = None, drained: Mapping[str, str] | None = None) -> str:
    unit, threshold, stable = chart.unit, chart.threshold, chart.stable
    plot_w, plot_h = geo.w - geo.left - geo.right, geo.h - geo.top - geo.bottom
    values = [v for points in series.values() for _, v in points if v is not None]
    values += [v for _, v in served or ()]
    if threshold is not None:
        values.append(threshold)
    if values:
        low, high = min(values), max(values)
        if low >= 0:
            low = 0.0
        pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
        top = high + pad
        if unit is Unit.RATIO and high <= 1.0:
            top = min(top, 1.0)  # a ratio never goes past 100 %
        ticks = _nice_ticks(low, top, 3 if geo.compact else 5)
    else:
        ticks = [0.0, 1.0]
    y0, y1 = ticks[0], ticks[-1]
    font = 9.5 if geo.compact else 11
    end_labels: list[tuple[float, str, str]] = []

    def sx(t: float) -> float:
        return geo.left + (t - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(v: float) -> float:
        return geo.top + plot_h - (v - y0) / ((y1 - y0) or 1.0) * plot_h

    css = "chart wide" if not geo.compact else "chart small"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" width="{geo.w}" height="{geo.h}" '
             f'viewBox="0 0 {geo.w} {geo.h}" role="img" aria-label="{_e(title)}">',
             f'<title>{_e(title)}</title>',
             f'<rect x="{geo.left}" y="{geo.top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#8c959f"/>']
    # The impact window, shaded behind everything.
    w0, w1 = max(x0, window[0]), min(x1, window[1])
    if w1 > w0:
        parts.append(f'<rect class="impact" x="{sx(w0):.1f}" y="{geo.top}" width="{sx(w1) - sx(w0):.1f}" '
                     f'height="{plot_h}" fill="#f6e7e7"><title>impact window</title></rect>')
    for tick in ticks:
        y = sy(tick)
        parts.append(f'<line x1="{geo.left}" y1="{y:.1f}" x2="{geo.left + plot_w}" y2="{y:.1f}" stroke="#eaeef2"/>')
        label = format_value(tick, unit) if unit else f"{tick:g}"
        parts.append(f'<text x="{geo.left - 5}" y="{y + 4:.1f}" font-size="{font}" text-anchor="end" '
                     f'fill="#57606a">{_e(label)}</text>')
    with_date = (x1 - x0) > 86400
    for tick in _time_ticks(x0, x1, 3 if geo.compact else 10):
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{geo.top + plot_h}" x2="{x:.1f}" y2="{geo.top + plot_h + 4}" '
                     'stroke="#8c959f"/>')
        parts.append(f'<text x="{x:.1f}" y="{geo.top + plot_h + 15}" font-size="{font}" text-anchor="middle" '
                     f'fill="#57606a">{_time_label(tick, with_date)}</text>')
    if not geo.compact:
        parts.append(f'<text x="{geo.left + plot_w}" y="{geo.h - 2}" font-size="10" text-anchor="end" '
                     'fill="#57606a">UTC</text>')
    if threshold is not None and y0 <= threshold <= y1:
        y = sy(threshold)
        label = format_value(threshold, unit) if unit else f"{threshold:g}"
        parts.append(f'<line class="threshold" x1="{geo.left}" y1="{y:.1f}" x2="{geo.left + plot_w}" y2="{y:.1f}" '
                     f'stroke="#b3261e" stroke-width="1.4" stroke-dasharray="5 3"><title>limit {_e(label)}</title>'
                     '</line>')
        if not geo.compact:
            end_labels.append((y, f"limit {label}", "#b3261e"))
    labels = _marker_parts(parts, markers, sx, x0, x1, geo, plot_h)
    # One line per version: the stable version in grey as the reference, the others in colour, each with a
    # dash pattern, point shape and an end label, so colour is never the only cue.
    ordered = sorted(series, key=lambda v: (v != stable, version_sort_key(v)))
    for version in ordered:
        is_stable = version == stable
        style = styles.get(version, 0)
        colour = _STABLE_COLOUR if is_stable else _COLOURS[style % 8]
        dash = "" if is_stable else _DASHES[style % 8]
        shape = _SHAPES[style % 8]
        width = (2 if geo.compact else 3) if is_stable else (1.6 if geo.compact else 2.2)
        runs: list[list[tuple[float, float]]] = [[]]
        for at, value in series[version]:
            if value is None:
                if runs[-1]:
                    runs.append([])
            else:
                runs[-1].append((at, value))
        label = f"v{version}" + (" stable" if is_stable else "")
        parts.append(f'<g class="series{" stable" if is_stable else ""}"><title>{_e(label)}</title>')
        last_point: tuple[float, float] | None = None
        for run in runs:
            if not run:
                continue
            kept, band = _downsample(run, x0, x1, plot_w)
            if band:
                outline = [f"{sx(t):.1f},{sy(high):.1f}" for t, _, high in band]
                outline += [f"{sx(t):.1f},{sy(low):.1f}" for t, low, _ in reversed(band)]
                parts.append(f'<polygon points="{" ".join(outline)}" fill="{colour}" fill-opacity="0.18" '
                             'stroke="none"/>')
            coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in kept)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="{width}"'
                         f'{dash_attr} stroke-linejoin="round"/>')
            if not geo.compact and not is_stable and len(kept) <= 40:
                parts.extend(_shape(shape, sx(t), sy(v), colour) for t, v in kept)
            elif not geo.compact and not is_stable:
                stride = max(1, len(kept) // 12)
                parts.extend(_shape(shape, sx(t), sy(v), colour, 3.0) for t, v in kept[::stride])
            last_point = kept[-1]
        parts.append("</g>")
        if last_point is not None and not geo.compact:
            ended = last_point[0] < x1 - (x1 - x0) * 0.05
            why = (drained or {}).get(version) or f"no data after {_time_label(last_point[0], with_date)}"
            text = label + (f" ({why})" if ended else "")
            if ended:
                parts.append(f'<text x="{sx(last_point[0]) + 6:.1f}" y="{sy(last_point[1]) - 6:.1f}" '
                             f'font-size="10.5" font-weight="600" fill="{colour}" stroke="#fff" stroke-width="3" '
                             f'paint-order="stroke">{_e(text)}</text>')
            else:
                end_labels.append((sy(last_point[1]), label, colour))
    if served:
        kept, _ = _downsample(served, x0, x1, plot_w)
        coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in kept)
        parts.append(f'<g class="served"><title>what the segment\'s users got: every version, weighted by its '
                     f'traffic</title><polyline points="{coords}" fill="none" stroke="{_SERVED_COLOUR}" '
                     'stroke-width="2" stroke-dasharray="2 3" stroke-linecap="round" stroke-linejoin="round"/>'
                     '</g>')
        end_labels.append((sy(kept[-1][1]), "served", _SERVED_COLOUR))
    end_labels.sort()
    placed: list[float] = []
    for y, label, colour in end_labels:
        y = max(y, placed[-1] + 12) if placed else y
        placed.append(y)
        weight = "400" if label.startswith("limit ") else "600"
        parts.append(f'<text x="{geo.left + plot_w + 4}" y="{y + 4:.1f}" font-size="11" font-weight="{weight}" '
                     f'fill="{colour}">{_e(label)}</text>')
    if not values or (threshold is not None and len(values) == 1):
        parts.append(f'<text x="{geo.left + plot_w / 2}" y="{geo.top + plot_h / 2}" text-anchor="middle" '
                     f'font-size="{font}" fill="#57606a">no data</text>')
    parts.extend(labels)
    parts.append("</svg>")
    return "".join(parts)


def _marker_parts(parts: list[str], markers: list[_Marker], sx: Callable[[float], float], x0: float, x1: float,
                  geo: _Geo, plot_h: float) -> list[str]:
    """Draw the decision and action lines; return their labels (drawn last, above the lines).

    Labels of markers a few pixels apart are joined (``D1 A1✓``) and stacked in up to
    three lanes so they never overwrite each other; compact charts draw the lines only.
    """
    groups: list[list[tuple[float, _Marker]]] = []
    for marker in markers:
        if not x0 <= marker.at <= x1:
            continue
        x = sx(marker.at)
        if groups and x - groups[-1][0][0] < 8:
            groups[-1].append((x, marker))
        else:
            groups.append([(x, marker)])
    labels: list[str] = []
    lanes: list[float] = []
    for group in groups:
        for x, marker in group:
            dash = "" if marker.kind == "decision" else ' stroke-dasharray="4 2"'
            colour = "#1b1f24" if marker.kind == "decision" else "#57606a"
            parts.append(f'<line class="marker" x1="{x:.1f}" y1="{geo.top}" x2="{x:.1f}" y2="{geo.top + plot_h}" '
                         f'stroke="{colour}" stroke-width="{1 if geo.compact else 1.3}"{dash}>'
                         f'<title>{_e(marker.title)}</title></line>')
        if geo.compact:
            continue
        x = group[0][0]
        text = " ".join(m.label for _, m in group)
        width = 6.5 * len(text) + 6
        lane = next((i for i, end in enumerate(lanes) if end < x - width / 2), None)
        if lane is None:
            lane = len(lanes) if len(lanes) < 3 else min(range(len(lanes)), key=lambda i: lanes[i])
            if lane == len(lanes):
                lanes.append(0.0)
        lanes[lane] = x + width / 2
        y = geo.top - 5 - lane * 12
        anchor = "end" if x + width / 2 > geo.w - 2 else "middle"
        title = "; ".join(m.title for _, m in group)
        labels.append(f'<g><title>{_e(title)}</title><text x="{x:.1f}" y="{y:.1f}" font-size="10.5" '
                      f'font-weight="600" text-anchor="{anchor}" fill="#1b1f24" stroke="#fff" stroke-width="3" '
                      f'paint-order="stroke">{_e(text)}</text></g>')
    return labels


@dataclass(frozen=True)
class _Drained:
    """A time a version took no traffic: from the verification of the action that drained it, to the next
    action that gave it traffic again (or the end of the chart)."""

    version: str
    start: float
    end: float
    marker: str


def _drained_spans(view: IncidentView) -> list[_Drained]:
    """When each version was drained, from the journaled plans: its weight 0 at the end of a verified action.

    A drained version's one-minute window still holds what it served before, so its line would keep
    moving (and read as "the rollback did not work"); the charts stop it at the verification instead.
    """
    spans: list[_Drained] = []
    open_spans: dict[str, _Drained] = {}
    for action in view.actions:
        plan = _plan_of(action)
        steps = plan.get("steps") if isinstance(plan, Mapping) else None
        if not isinstance(plan, Mapping) or not isinstance(steps, list) or not steps \
                or not isinstance(steps[-1], Mapping):
            continue
        given = plan.get("weights_before")
        before: Mapping[str, object] = given if isinstance(given, Mapping) else {}
        after = {str(v): _number(w) for v, w in steps[-1].items()}
        applied = action.first(EventKind.ACTION_APPLIED)
        verified = action.first(EventKind.ACTION_VERIFIED)
        if applied is not None and applied.payload.get("changed") is not False:
            for version, weight in after.items():
                if weight and version in open_spans:  # traffic again (an undo): the line goes on from here
                    spans.append(replace(open_spans.pop(version), end=parse_ts(applied.ts).timestamp()))
        if verified is None:
            continue
        for version, weight in after.items():
            if weight == 0 and (_number(before.get(version)) or 0) > 0 and version not in open_spans:
                open_spans[version] = _Drained(version, parse_ts(verified.ts).timestamp(), math.inf,
                                               action.marker + _OUTCOME_MARK["verified"])
    return spans + list(open_spans.values())


def _without_drained(series: dict[str, list[_Point]], spans: list[_Drained]) -> dict[str, list[_Point]]:
    """The series with no point while its version was drained: each line stops where its drain was verified."""
    if not spans:
        return series
    cut = dict(series)
    for span in spans:
        points = cut.get(span.version)
        if points is not None:
            cut[span.version] = [(at, None if span.start < at < span.end else value) for at, value in points]
    return cut


def _peak(chart: _MetricChart, segment: str) -> str:
    values = [v for points in chart.segments[segment].values() for _, v in points if v is not None]
    if not values:
        return "no data"
    top = max(values)
    return f"max {format_value(top, chart.unit) if chart.unit else f'{top:g}'}"


def _charts_html(view: IncidentView, clock: Clock) -> str:
    charts, times = _chart_model(view)
    notes = "".join(f'<p class="note">{_e(line)}</p>' if line == view.history_note else
                    f'<p class="muted">{_e(line)}</p>' for line in _history_lines(view, clock))
    if not charts:
        return notes + ("<p class=\"muted\">No check was evaluated and no metrics history was captured during "
                        "this incident, so there is nothing to chart.</p>")
    f = view.facts
    window = (f.impact_start.at.timestamp(), f.window_end.timestamp())
    markers = _markers(view, clock)
    x0 = min([*times, window[0], *(m.at for m in markers)])
    x1 = max([*times, window[1], *(m.at for m in markers)])
    if x1 - x0 < 60:
        x1 = x0 + 60
    pad = (x1 - x0) * 0.01
    x0, x1 = x0 - pad, x1 + pad
    stable_versions = {c.stable for c in charts if c.stable}
    versions = sorted({v for c in charts for by_version in c.segments.values() for v in by_version},
                      key=version_sort_key)
    others = [v for v in versions if v not in stable_versions]
    styles = {version: index for index, version in enumerate(others)}
    breached = {(b.metric, b.segment) for b in _breaches(view)}
    spans = _drained_spans(view)
    drained_notes = {span.version: f"drained: {span.marker}" for span in spans}
    out = [notes, '<div class="legend">']
    for version in versions:
        if version in stable_versions:
            out.append(f"<span>{_legend_swatch(None)}v{_e(version)} (stable version: the reference)</span>")
        else:
            out.append(f"<span>{_legend_swatch(styles[version])}v{_e(version)}</span>")
    out.append('<span><svg width="22" height="14" aria-hidden="true"><line x1="11" y1="0" x2="11" y2="14" '
               'stroke="#1b1f24" stroke-width="1.5"/></svg>D1, D2…: decisions</span>')
    out.append('<span><svg width="22" height="14" aria-hidden="true"><line x1="11" y1="0" x2="11" y2="14" '
               'stroke="#57606a" stroke-width="1.5" stroke-dasharray="4 2"/></svg>A1, A2…: actions, when applied '
               '(✓ verified, ✗ not verified, ! failed, ↺ compensated)</span>')
    if any(c.served for c in charts):
        out.append('<span><svg width="22" height="12" aria-hidden="true"><line x1="0" y1="6" x2="22" y2="6" '
                   f'stroke="{_SERVED_COLOUR}" stroke-width="1.6" stroke-dasharray="1 3" stroke-linecap="round"/>'
                   "</svg>served: what the segment's users got (every version, weighted by its traffic)</span>")
    out.append('<span><svg width="22" height="12" aria-hidden="true"><line x1="0" y1="6" x2="22" y2="6" '
               'stroke="#b3261e" stroke-dasharray="5 3"/></svg>limit</span>')
    out.append('<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" fill="#f6e7e7" '
               'stroke="#d0d7de"/></svg>impact window</span>')
    legend_end = len(out)
    out.append("</div>")
    for chart in charts:
        large = [s for s in sorted(chart.segments) if (chart.metric, s) in breached]
        small = [s for s in sorted(chart.segments) if (chart.metric, s) not in breached]
        out.append(f"<h3>{_e(chart.title)} <span class=\"muted\">({_e(chart.metric)})</span></h3>")
        out.append(f'<p class="muted">PromQL: <code>{_e(chart.promql)}</code> · criterion: '
                   f'{_e(_criterion(chart.criterion, chart.unit, chart.direction))} · from the {_e(chart.source)}</p>')
        for segment in large:
            title = f"{chart.title}, segment {segment}: breached"
            out.append(f'<figure class="wide"><figcaption>segment {_e(segment)} '
                       f'<span class="bad">✗ breached</span></figcaption>')
            out.append(_chart_svg(title, chart, _without_drained(chart.segments[segment], spans), styles, x0, x1,
                                  markers, window, _WIDE, chart.served.get(segment), drained_notes))
            out.append("</figure>")
        if small:
            word = "never breached" if large else "no segment breached"
            out.append(f'<p class="muted small-note">{_e(chart.title)}: {word} in '
                       f'{_e(", ".join(small))}.</p><div class="smalls">')
            for segment in small:
                title = f"{chart.title}, segment {segment}: never breached"
                out.append(f'<figure class="small"><figcaption>{_e(segment)} '
                           f'<span class="muted">· {_e(_peak(chart, segment))}</span></figcaption>')
                out.append(_chart_svg(title, chart, _without_drained(chart.segments[segment], spans), styles, x0,
                                      x1, markers, window, _SMALL))
                out.append("</figure>")
            out.append("</div>")
    if any("<polygon" in part for part in out[legend_end:]):
        out.insert(legend_end, '<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" '
                   'fill="#0072B2" fill-opacity="0.18"/></svg>range of the values merged into one pixel column '
                   '(the line is their mean)</span>')
    return "".join(out)


def _html_list(lines: Sequence[str], blank: str | None = None) -> str:
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    if blank:
        items += f'<li class="blank">{_e(TO_FILL)}: {_e(blank)}</li>'
    return f"<ul>{items}</ul>"


def _html_trigger(items: Sequence[tuple[str, list[str]]]) -> str:
    """The trigger section's list, a diagnosis' evidence nested under it."""
    parts = []
    for line, details in items:
        nested = f"<ul>{''.join(f'<li>{_e(d)}</li>' for d in details)}</ul>" if details else ""
        parts.append(f"<li>{_e(line)}{nested}</li>")
    blank = "what change set this off (the deploy, data or config change), and when."
    parts.append(f'<li class="blank">{_e(TO_FILL)}: {_e(blank)}</li>')
    return f"<ul>{''.join(parts)}</ul>"


def _html_blank(what: str) -> str:
    return f'<p class="blank">{_e(TO_FILL)}: {_e(what)}</p>'


def render_html(view: IncidentView, out: TextIO, clock: Clock, exported_at: datetime,
                generator: str = "rewind") -> None:
    """One self-contained HTML page: the same sections and facts as Markdown, with charts."""
    s = view.summary
    w = out.write
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      f"<meta name=\"generator\" content=\"{_e(generator)}\">"
      f"<title>{_e(s.incident_id)}: {_e(s.summary)}</title><style>{_CSS}</style></head><body>\n")
    w(f"<header><h1>Post-mortem: {_e(s.summary)}</h1><div>Incident <b>{_e(s.incident_id)}</b>"
      f"<span class=\"badge\">{_e(s.severity)}</span><span class=\"badge\">{_e(s.status)}</span>"
      f" · model <code>{_e(s.model)}</code></div>\n<dl class=\"facts\">")
    w(f"<dt>Opened</dt><dd>{_e(clock.both(s.opened_at))} by {_e(s.opened_by.label())}</dd>")
    if s.closed_at:
        w(f"<dt>Closed</dt><dd>{_e(clock.both(s.closed_at))}</dd>")
    w(f"<dt>Authors</dt><dd class=\"blank\">{_e(TO_FILL)}: who wrote this post-mortem.</dd>")
    w(f"<dt>Events</dt><dd>{s.events}</dd>")
    chain_class = "ok" if view.verification.ok else "bad"
    chain_mark = "✓" if view.verification.ok else "✗"
    w(f"<dt>Journal</dt><dd class=\"{chain_class}\">{chain_mark} {_e(_chain_line(view))}</dd>")
    w(f"<dt>Exported</dt><dd>{_e(clock.both(exported_at))} by {_e(generator)}; local zone: "
      f"{_e(clock.zone_name)}</dd></dl></header>\n")

    w("<section><h2>Summary</h2>")
    w(f"<p>{_e(' '.join(_summary_lines(view, clock)))}</p>")
    w(_html_blank("what happened, in two or three sentences a newcomer understands.") + "</section>\n")

    w("<section><h2>Impact</h2><dl class=\"facts\">")
    for name, value in _fact_lines(view, clock):
        w(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>")
    w("</dl>")
    breaches = _breach_lines(view, clock)
    if breaches:
        w("<p>What breached:</p>" + _html_list(breaches))
    w(_html_blank("who was affected (users, requests, revenue) and how badly."))
    w("<h3>Metrics by version</h3>")
    w(_charts_html(view, clock))
    w("</section>\n")

    w("<section><h2>Trigger</h2>")
    w(_html_trigger(_trigger_items(view, clock)))
    w("</section>\n<section><h2>Detection</h2>")
    w(_html_list(_detection_lines(view, clock),
                 "how we noticed (alert, dashboard, user report), and how detection could be faster."))
    w("</section>\n<section><h2>Resolution</h2>")
    w(_html_list(_resolution_lines(view, clock)))
    w("</section>\n<section><h2>Root cause</h2>")
    w(_html_blank("why it happened (ask why until the answer is a fix); Rewind only knows what it saw."))
    w("</section>\n<section><h2>Lessons learned</h2>")
    for title, hint in _LESSONS:
        w(f"<h3>{_e(title)}</h3>" + _html_list([], hint))
    w("</section>\n<section><h2>Action items</h2><table><tr><th>Action item</th><th>Type</th><th>Owner</th>"
      "<th>Due</th><th>Ticket</th></tr><tr><td class=\"blank\">To fill in</td><td>prevent / mitigate / detect</td>"
      "<td></td><td></td><td></td></tr></table></section>\n")

    zone = "UTC" if clock.is_utc else f"UTC and in {clock.zone_name}"
    w(f"<section><h2>Timeline</h2><p class=\"muted\">Times in {_e(zone)}. Runs of "
      "consecutive check evaluations are folded into one row; the JSON export has every event.</p><table><tr>"
      + "".join(f"<th>{_e(h)}</th>" for h in ["#", *_time_header(clock), "Who", "Marker", "What"]) + "</tr>\n")
    for row in view.rows:
        seq = str(row.first_seq) if row.count == 1 else f"{row.first_seq}–{row.last_seq}"
        css = ' class="decision"' if row.kind == EventKind.DECISION else \
            ' class="action"' if row.kind.startswith("action.") else ""
        w(f"<tr{css}><td class=\"num\">{seq}</td>"
          + "".join(f"<td class=\"when\">{_e(t)}</td>" for t in _time_cells(clock, row.ts))
          + f"<td>{_e(row.actor.label())}</td><td>{_e(row.marker)}</td><td>{_e(row.text)}</td></tr>\n")
    w("</table></section>\n")

    w("<section><h2>Decisions</h2>")
    if not view.decisions:
        w("<p class=\"muted\">No decision was recorded.</p>")
    for decision in view.decisions:
        w(f"<h3>{_e(decision.marker)}: {_e(compact(decision.event.payload.get('option')))}</h3><dl class=\"facts\">"
          + "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in _decision_lines(decision, clock))
          + "</dl>")
        if decision.evidence:
            w(f"<p class=\"muted\">Evidence ({_e(_evidence_how(decision))}):</p><table><tr><th>#</th>"
              "<th>Metric</th><th>Verdict</th><th>Cell</th><th>Value</th><th>Why</th></tr>")
            rows = _evidence_rows(decision)
            for r in rows:
                if not r.check:
                    w(f"<tr><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td><td></td><td></td><td></td>"
                      f"<td>{_e(r.values)}</td></tr>")
                    continue
                for flagged in r.flagged:
                    css = "bad" if flagged.verdict.startswith(_VERDICT_SYMBOL["breach"]) else "warn"
                    w(f"<tr class=\"flagged\"><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td>"
                      f"<td class=\"{css}\">{_e(flagged.verdict)}</td><td>{_e(flagged.cell)}</td>"
                      f"<td class=\"num\">{_e(flagged.value)}</td><td>{_e(flagged.reason)}</td></tr>")
                w(f"<tr><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td>"
                  f"<td>{'' if r.flagged else _e(_verdict(r.verdict))}</td>"
                  f"<td>{'other cells' if r.flagged else 'all cells'}</td><td></td><td>{_e(r.rest)}</td></tr>")
            w("</table>")
            checks = [r for r in rows if r.check]
            if checks:
                w("<p class=\"muted\">Queries and criteria:</p><ul class=\"defs\">"
                  + "".join(f"<li>#{r.seq} {_e(r.what)}: <code>{_e(r.promql)}</code>; criterion "
                            f"{_e(r.criterion)}; data age {_e(r.age)}</li>" for r in checks) + "</ul>")
        else:
            w("<p class=\"muted\">Evidence: none recorded before this decision.</p>")
    w("</section>\n")

    w("<section><h2>Actions</h2>")
    if not view.actions:
        w("<p class=\"muted\">No action was recorded.</p>")
    for action in view.actions:
        w(f"<h3>{_e(action.marker)}: {_e(action.action_id)} ({_e(action.outcome)})</h3><ul>")
        w("".join(f"<li>{_e(label)}: {_e(text)}</li>" for label, text in _action_lines(action, clock)))
        ok, word, detail = _verification(action)
        w(f"<li class=\"{'ok' if ok else 'bad'}\">Verification: {_e(word)}{': ' + _e(detail) if detail else ''}</li>")
        w("</ul>")
    w("</section>\n")

    w("<section><h2>How these figures are measured</h2><ul class=\"defs\">")
    for line in _definitions():
        w(f"<li>{_e(line.replace('`', ''))}</li>")
    w("</ul></section>\n")
    w(f"<footer>Generated by {_e(generator)} from the journal. {_e(_chain_line(view))} "
      "The JSON export carries every event with its hash.</footer>\n</body></html>\n")
