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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TextIO

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
    incident_facts,
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
from console.domain.metrics import Unit, format_value
from console.domain.versions import version_sort_key
from console.runtime import gc_paused

INCIDENT_SCHEMA = "rewind.incident/1"
FORMATS = ("md", "json", "html")
HASH_DEFINITION = (
    "sha256 of the UTF-8 canonical JSON (sorted keys, no whitespace, no NaN) of "
    "{actor, incident_id, kind, payload, prev_hash, seq, ts}; prev_hash of event 1 is 64 zeros"
)


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


def build_view(head: IncidentHead, events: list[Event]) -> IncidentView:
    """Analyse an incident's events for export (verifying its chain on the way)."""
    with gc_paused():
        return _build_view(head, events)


def _build_view(head: IncidentHead, events: list[Event]) -> IncidentView:
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

    def both(self, ts: str | datetime) -> str:
        """``2025-01-31 14:05:03Z (15:05:03 CET local)``."""
        return f"{self.utc(ts)} ({self.local(ts)} local)"


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

def _definitions() -> list[str]:
    return [
        "Impact start: the impact start given when the incident was opened (`--impact-start`); "
        "without one, the earlier of detection and the first breaching check (marked estimated).",
        "Detected: the detection time given when the incident was opened, else the moment it was opened.",
        "Mitigated: the first `action.verified` event, the first change whose effect was checked and confirmed.",
        "Impact end: mitigation; else the incident's closing; else the impact is ongoing.",
        "Time to detect (TTD) = detected - impact start; measured only when the impact start was given.",
        "Time to mitigate (TTM) = mitigated - detected.",
    ]


def _fact_lines(view: IncidentView, clock: Clock) -> list[tuple[str, str]]:
    f = view.facts
    start = clock.both(f.impact_start.at) + f" - {f.impact_start.source}" + (
        " (estimated)" if f.impact_start_estimated else "")
    return [
        ("Impact start", start),
        ("Detected", f"{clock.both(f.detected.at)} - {f.detected.source}"),
        ("Mitigated", f"{clock.both(f.mitigated.at)} - {f.mitigated.source}" if f.mitigated else "not mitigated"),
        ("Impact end", f"{clock.both(f.impact_end.at)} - {f.impact_end.source}" if f.impact_end else "ongoing"),
        ("Time to detect (TTD)", format_duration(f.ttd_s) if f.ttd_s is not None
         else "not measured (no impact start was given)"),
        ("Time to mitigate (TTM)", format_duration(f.ttm_s) if f.ttm_s is not None
         else "not measured (no verified action)"),
    ]


def _chain_line(view: IncidentView) -> str:
    v = view.verification
    if v.ok:
        return (f"Hash chain verified: {v.events} events, head {HASH_ALGORITHM} {v.head_hash}.")
    return f"HASH CHAIN BROKEN: {v.problem.message() if v.problem else 'unknown problem'}."


def _unit(evidence: CheckEvidence) -> Unit | None:
    try:
        return Unit(evidence.unit) if evidence.unit else None
    except ValueError:
        return None


def _value_text(value: float | None, raw: str | None, unit: Unit | None) -> str:
    if value is None:
        return "no data" if raw is None else f"no data ({raw})"
    return format_value(value, unit) if unit else f"{value:g}"


_VERDICT_SYMBOL = {"pass": "✓", "breach": "✗", "no_data": "?", "low_traffic": "~", "info": "·"}


def _verdict(text: str | None) -> str:
    word = (text or "?").lower()
    return f"{_VERDICT_SYMBOL.get(word, '·')} {word.replace('_', ' ')}"


_CRITERION_ORDER = ("threshold", "max_delta", "delta_kind", "min_traffic")


def _criterion(criterion: object) -> str:
    if isinstance(criterion, Mapping):
        if criterion.get("threshold") is None and criterion.get("max_delta") is None and "threshold" in criterion:
            return "none (shown for information)"
        keys = [k for k in _CRITERION_ORDER if k in criterion] + [k for k in criterion if k not in _CRITERION_ORDER]
        parts = [f"{k} {criterion[k]}" for k in keys if criterion[k] is not None]
        return ", ".join(parts) or "-"
    return compact(criterion)


def _evidence_cells(evidence: CheckEvidence) -> str:
    unit = _unit(evidence)
    cells = sorted(evidence.values, key=lambda c: (version_sort_key(c.version), c.segment))
    return "; ".join(f"v{c.version}/{c.segment} {_value_text(c.value, c.raw, unit)}"
                     + (f" {_VERDICT_SYMBOL.get((c.verdict or '').lower(), '')}".rstrip() if c.verdict else "")
                     for c in cells) or "no values"


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
class _EvidenceRow:
    """One row of a decision's evidence table; ``check`` is false for evidence that is not a metric check."""

    seq: int
    what: str
    verdict: str | None
    values: str
    criterion: str = ""
    age: str = ""
    promql: str = ""
    check: bool = True


def _evidence_rows(decision: DecisionRecord) -> list[_EvidenceRow]:
    rows = []
    for ev in decision.evidence:
        if ev.kind is EventKind.CHECK_EVALUATED:
            c = check_evidence(ev.payload)
            rows.append(_EvidenceRow(ev.seq, c.title, c.verdict, _evidence_cells(c), _criterion(c.criterion),
                                     "-" if c.data_age_s is None else f"{c.data_age_s:g} s", c.promql))
        else:
            rows.append(_EvidenceRow(ev.seq, str(ev.kind), None, describe(ev), check=False))
    return rows


def _action_lines(action: ActionRecord, clock: Clock) -> list[tuple[str, str]]:
    """An action's plan and each of its events, as (label, text), for every format alike."""
    lines = []
    intent = action.first(EventKind.ACTION_INTENT)
    if intent is not None:
        lines.append(("Plan", compact(intent.payload.get("plan"), 1000)))
        if intent.payload.get("expected") is not None:
            lines.append(("Expected state", compact(intent.payload.get("expected"), 1000)))
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
        f"expected {compact(verified.payload.get('expected'))}, observed {compact(verified.payload.get('observed'))}")


# --- Markdown ---------------------------------------------------------------------------------

def _md(text: object) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", " ").replace("\n", " "))


def _code(text: object) -> str:
    value = " ".join(str(text).split())
    fence = "``" if "`" in value else "`"
    return f"{fence} {value} {fence}" if fence == "``" else f"`{value}`"


def render_markdown(view: IncidentView, out: TextIO, clock: Clock, exported_at: datetime,
                    generator: str = "rewind") -> None:
    """The post-mortem skeleton in Markdown."""
    s = view.summary
    w = out.write
    w(f"# Post-mortem: {_md(s.summary)}\n\n")
    w(f"Incident **{s.incident_id}** · {s.severity} · model `{s.model}` · {s.status}\n\n")
    w("| | |\n|---|---|\n")
    w(f"| Opened | {clock.both(s.opened_at)} by {_md(s.opened_by.label())} |\n")
    if s.closed_at:
        w(f"| Closed | {clock.both(s.closed_at)} |\n")
    w(f"| Events | {s.events} |\n")
    w(f"| Exported | {clock.both(exported_at)} by {generator} |\n")
    w(f"| Journal | {_md(_chain_line(view))} |\n\n")

    w("## Summary\n\n")
    w(f"{_md(s.summary)}\n\n")
    if s.resolution:
        w(f"Resolution: {_md(s.resolution)}\n\n")
    w("_To fill in: what happened, who was affected and how badly, how it was resolved._\n\n")

    w("## Impact window\n\n")
    for name, value in _fact_lines(view, clock):
        w(f"- **{name}**: {_md(value)}\n")
    w("\nHow these are measured:\n\n")
    for line in _definitions():
        w(f"- {line}\n")
    w("\n")

    w("## Timeline\n\n")
    w(f"Times in UTC and in {_md(clock.zone_name)}. Runs of consecutive check evaluations are folded into one "
      "row; the JSON export has every event.\n\n")
    w(f"| # | UTC | Local ({_md(clock.zone_name)}) | Who | Marker | What |\n|---|---|---|---|---|---|\n")
    for row in view.rows:
        seq = str(row.first_seq) if row.count == 1 else f"{row.first_seq}–{row.last_seq}"
        w(f"| {seq} | {clock.utc(row.ts)} | {clock.local(row.ts)} | {_md(row.actor.label())} | {row.marker} "
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
            w("| # | Metric | Verdict | Values (version/segment) | Criterion | Data age | PromQL |\n")
            w("|---|---|---|---|---|---|---|\n")
            for r in _evidence_rows(decision):
                w(f"| {r.seq} | {_md(r.what)} | {_verdict(r.verdict) if r.check else ''} | {_md(r.values)} "
                  f"| {_md(r.criterion)} | {r.age} | {_md(_code(r.promql)) if r.check else ''} |\n")
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

    w("## Open questions\n\n")
    w("- _What did we not know during the incident that we should have?_\n")
    w("- _Why did the change get to production with this behaviour?_\n\n")
    w("## Action items\n\n")
    w("| Action item | Owner | Due | Ticket |\n|---|---|---|---|\n| | | | |\n\n")
    w(f"---\nGenerated by {generator} from the {_md(view.head.incident_id)} journal. "
      f"{_md(_chain_line(view))}\n")


# --- JSON ------------------------------------------------------------------------------------

def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
            "closed_at": _iso(f.closed.at if f.closed else None), "ttd_s": f.ttd_s, "ttm_s": f.ttm_s,
            "definitions": _definitions(),
        },
        "verification": {"ok": view.verification.ok,
                         "problem": view.verification.problem.message() if view.verification.problem else None},
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
    actors: dict[tuple, Actor] = {}
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
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:12px}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff}
figure svg{width:100%;height:auto;display:block}
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

_W, _H = 440, 250
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 70, 44, 30


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _chart_data(events: Sequence[Event]) -> tuple[dict[str, dict[str, dict[str, list]]], dict[str, CheckEvidence],
                                                   list[float]]:
    """metric -> segment -> version -> [(t, value)], the latest evidence per metric, all check times.

    Reads the payloads directly rather than through :func:`check_evidence`: an
    incident can hold tens of thousands of checks.
    """
    data: dict[str, dict[str, dict[str, list]]] = {}
    latest_payload: dict[str, Mapping] = {}
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
                value: float | None = float(raw)  # type: ignore[arg-type]
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


def _chart_svg(title: str, evidence: CheckEvidence, series: dict[str, list], styles: dict[str, int],
               x0: float, x1: float, markers: list[_Marker], clock: Clock, stable: str | None,
               window: tuple[float, float]) -> str:
    unit = _unit(evidence)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    values = [v for points in series.values() for _, v in points if v is not None]
    threshold = evidence.threshold
    if threshold is not None:
        values.append(threshold)
    if values:
        low, high = min(values), max(values)
        if low >= 0:
            low = 0.0
        pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
        ticks = _nice_ticks(low, high + pad)
    else:
        ticks = [0.0, 1.0]
    y0, y1 = ticks[0], ticks[-1]

    def sx(t: float) -> float:
        return _LEFT + (t - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(v: float) -> float:
        return _TOP + plot_h - (v - y0) / ((y1 - y0) or 1.0) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<title>{_e(title)}</title>',
             f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#8c959f"/>']
    # The impact window, shaded behind everything.
    w0, w1 = max(x0, window[0]), min(x1, window[1])
    if w1 > w0:
        parts.append(f'<rect x="{sx(w0):.1f}" y="{_TOP}" width="{sx(w1) - sx(w0):.1f}" height="{plot_h}" '
                     f'fill="#f6f0f0"><title>impact window</title></rect>')
    for tick in ticks:
        y = sy(tick)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#eaeef2"/>')
        label = format_value(tick, unit) if unit else f"{tick:g}"
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" '
                     f'fill="#57606a">{_e(label)}</text>')
    with_date = (x1 - x0) > 86400
    for tick in _time_ticks(x0, x1):
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP + plot_h}" x2="{x:.1f}" y2="{_TOP + plot_h + 4}" '
                     'stroke="#8c959f"/>')
        parts.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" font-size="11" text-anchor="middle" '
                     f'fill="#57606a">{_time_label(tick, with_date)}</text>')
    parts.append(f'<text x="{_LEFT + plot_w}" y="{_H - 2}" font-size="10" text-anchor="end" fill="#57606a">'
                 'UTC</text>')
    if threshold is not None and y0 <= threshold <= y1:
        y = sy(threshold)
        parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#b3261e" '
                     f'stroke-width="1.2" stroke-dasharray="3 3"/>')
        label = format_value(threshold, unit) if unit else f"{threshold:g}"
        parts.append(f'<text x="{_LEFT + plot_w + 4}" y="{y + 4:.1f}" font-size="10" fill="#b3261e">'
                     f'limit {_e(label)}</text>')
    # Decision and action markers: a vertical line each; labels of markers a few pixels apart are
    # joined ("D1 A1✓"), and labels are stacked in up to three lanes so they never overwrite each other.
    groups: list[list[tuple[float, _Marker]]] = []
    for marker in markers:
        if not x0 <= marker.at <= x1:
            continue
        x = sx(marker.at)
        if groups and x - groups[-1][0][0] < 8:
            groups[-1].append((x, marker))
        else:
            groups.append([(x, marker)])
    labels = []
    lanes: list[float] = []
    for group in groups:
        for x, marker in group:
            dash = "" if marker.kind == "decision" else ' stroke-dasharray="4 2"'
            colour = "#1b1f24" if marker.kind == "decision" else "#57606a"
            parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_TOP + plot_h}" stroke="{colour}" '
                         f'stroke-width="1.3"{dash}><title>{_e(marker.title)}</title></line>')
        x = group[0][0]
        text = " ".join(m.label for _, m in group)
        width = 6.5 * len(text) + 6
        lane = next((i for i, end in enumerate(lanes) if end < x - width / 2), None)
        if lane is None:
            lane = len(lanes) if len(lanes) < 3 else min(range(len(lanes)), key=lambda i: lanes[i])
            if lane == len(lanes):
                lanes.append(0.0)
        lanes[lane] = x + width / 2
        y = _TOP - 5 - lane * 12
        anchor = "end" if x + width / 2 > _W - 2 else "middle"
        title = "; ".join(m.title for _, m in group)
        labels.append(f'<g><title>{_e(title)}</title><text x="{x:.1f}" y="{y:.1f}" font-size="10.5" '
                      f'font-weight="600" text-anchor="{anchor}" fill="#1b1f24" stroke="#fff" stroke-width="3" '
                      f'paint-order="stroke">{_e(text)}</text></g>')
    # One line per version: colour, dash pattern, point shape and an end label.
    end_labels: list[tuple[float, str, str]] = []
    for version in sorted(series, key=version_sort_key):
        style = styles[version]
        colour, dash, shape = _COLOURS[style % 8], _DASHES[style % 8], _SHAPES[style % 8]
        points = series[version]
        runs: list[list[tuple[float, float]]] = [[]]
        for at, value in points:
            if value is None:
                if runs[-1]:
                    runs.append([])
            else:
                runs[-1].append((at, value))
        label = f"v{version}" + (" stable" if version == stable else "")
        parts.append(f'<g><title>{_e(label)}</title>')
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
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"'
                         f'{dash_attr} stroke-linejoin="round"/>')
            stride = max(1, len(kept) // 8)
            for t, v in kept[::stride]:
                parts.append(_shape(shape, sx(t), sy(v), colour))
            last_point = kept[-1]
        parts.append("</g>")
        if last_point is not None:
            end_labels.append((sy(last_point[1]), label, colour))
    # End labels right of the plot, nudged apart so they never overlap.
    end_labels.sort()
    placed: list[float] = []
    for y, label, colour in end_labels:
        y = max(y, placed[-1] + 12) if placed else y
        placed.append(y)
        parts.append(f'<text x="{_LEFT + plot_w + 4}" y="{y + 4:.1f}" font-size="11" font-weight="600" '
                     f'fill="{colour}">{_e(label)}</text>')
    if not values:
        parts.append(f'<text x="{_LEFT + plot_w / 2}" y="{_TOP + plot_h / 2}" text-anchor="middle" '
                     f'fill="#57606a">no data</text>')
    parts.extend(labels)
    parts.append("</svg>")
    return "".join(parts)


def _legend_swatch(style: int) -> str:
    colour, dash, shape = _COLOURS[style % 8], _DASHES[style % 8], _SHAPES[style % 8]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<svg width="40" height="12" viewBox="0 0 40 12" aria-hidden="true">'
            f'<line x1="1" y1="6" x2="39" y2="6" stroke="{colour}" stroke-width="2"{dash_attr}/>'
            f'{_shape(shape, 20, 6, colour)}</svg>')


def _charts_html(view: IncidentView, clock: Clock) -> str:
    data, latest, times = _chart_data(view.events)
    if not data:
        return "<p class=\"muted\">No check was evaluated during this incident, so there is nothing to chart.</p>"
    f = view.facts
    window = (f.impact_start.at.timestamp(), f.window_end.timestamp())
    x0 = min([*times, window[0]])
    x1 = max([*times, window[1]])
    if x1 - x0 < 60:
        x1 = x0 + 60
    pad = (x1 - x0) * 0.02
    x0, x1 = x0 - pad, x1 + pad
    versions = sorted({v for by_segment in data.values() for series in by_segment.values() for v in series},
                      key=version_sort_key)
    styles = {version: index for index, version in enumerate(versions)}
    stable = next((e.stable_version for e in latest.values() if e.stable_version), None)
    markers = _markers(view, clock)
    out = ['<div class="legend">']
    for version in versions:
        label = f"v{version}" + (" (stable)" if version == stable else "")
        out.append(f"<span>{_legend_swatch(styles[version])}{_e(label)}</span>")
    out.append('<span><svg width="22" height="14" aria-hidden="true"><line x1="11" y1="0" x2="11" y2="14" '
               'stroke="#1b1f24" stroke-width="1.5"/></svg>D1, D2…: decisions</span>')
    out.append('<span><svg width="22" height="14" aria-hidden="true"><line x1="11" y1="0" x2="11" y2="14" '
               'stroke="#57606a" stroke-width="1.5" stroke-dasharray="4 2"/></svg>A1, A2…: actions, when applied '
               '(✓ verified, ✗ not verified, ! failed, ↺ compensated)</span>')
    out.append('<span><svg width="22" height="12" aria-hidden="true"><line x1="0" y1="6" x2="22" y2="6" '
               'stroke="#b3261e" stroke-dasharray="3 3"/></svg>limit</span>')
    out.append('<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" fill="#f6f0f0" '
               'stroke="#d0d7de"/></svg>impact window</span>')
    plot_width = _W - _LEFT - _RIGHT
    if any(len(points) > plot_width for by_segment in data.values() for series in by_segment.values()
           for points in series.values()):
        out.append('<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" '
                   'fill="#0072B2" fill-opacity="0.18"/></svg>range of the values merged into one pixel column '
                   '(the line is their mean)</span>')
    out.append("</div>")
    for metric, by_segment in data.items():
        evidence = latest[metric]
        out.append(f"<h3>{_e(evidence.title)} <span class=\"muted\">({_e(metric)})</span></h3>")
        out.append(f'<p class="muted">PromQL: <code>{_e(evidence.promql)}</code> · criterion: '
                   f'{_e(_criterion(evidence.criterion))}</p><div class="charts">')
        for segment in sorted(by_segment):
            title = f"{evidence.title}, segment {segment}"
            out.append(f"<figure><figcaption>segment {_e(segment)}</figcaption>")
            out.append(_chart_svg(title, evidence, by_segment[segment], styles, x0, x1, markers, clock, stable,
                                  window))
            out.append("</figure>")
        out.append("</div>")
    return "".join(out)


def render_html(view: IncidentView, out: TextIO, clock: Clock, exported_at: datetime,
                generator: str = "rewind") -> None:
    """One self-contained HTML page: facts, charts with markers, decisions, actions, timeline."""
    s = view.summary
    w = out.write
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      f"<meta name=\"generator\" content=\"{_e(generator)}\">"
      f"<title>{_e(s.incident_id)}: {_e(s.summary)}</title><style>{_CSS}</style></head><body>\n")
    w(f"<header><h1>{_e(s.summary)}</h1><div>Incident <b>{_e(s.incident_id)}</b>"
      f"<span class=\"badge\">{_e(s.severity)}</span><span class=\"badge\">{_e(s.status)}</span>"
      f" · model <code>{_e(s.model)}</code></div>\n<dl class=\"facts\">")
    w(f"<dt>Opened</dt><dd>{_e(clock.both(s.opened_at))} by {_e(s.opened_by.label())}</dd>")
    if s.closed_at:
        w(f"<dt>Closed</dt><dd>{_e(clock.both(s.closed_at))}</dd>")
    if s.resolution:
        w(f"<dt>Resolution</dt><dd>{_e(s.resolution)}</dd>")
    w(f"<dt>Events</dt><dd>{s.events}</dd>")
    chain_class = "ok" if view.verification.ok else "bad"
    chain_mark = "✓" if view.verification.ok else "✗"
    w(f"<dt>Journal</dt><dd class=\"{chain_class}\">{chain_mark} {_e(_chain_line(view))}</dd>")
    w(f"<dt>Exported</dt><dd>{_e(clock.both(exported_at))} by {_e(generator)}; local zone: "
      f"{_e(clock.zone_name)}</dd></dl></header>\n")

    w("<section><h2>Impact window</h2><dl class=\"facts\">")
    for name, value in _fact_lines(view, clock):
        w(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>")
    w("</dl><ul class=\"defs\">")
    for line in _definitions():
        w(f"<li>{_e(line.replace('`', ''))}</li>")
    w("</ul></section>\n")

    w("<section><h2>Metrics by version</h2>")
    w(_charts_html(view, clock))
    w("</section>\n")

    w("<section><h2>Decisions</h2>")
    if not view.decisions:
        w("<p class=\"muted\">No decision was recorded.</p>")
    for decision in view.decisions:
        w(f"<h3>{_e(decision.marker)}: {_e(compact(decision.event.payload.get('option')))}</h3><dl class=\"facts\">"
          + "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in _decision_lines(decision, clock))
          + "</dl>")
        if decision.evidence:
            w(f"<p class=\"muted\">Evidence ({_e(_evidence_how(decision))}):</p><table><tr><th>#</th>"
              "<th>Metric</th><th>Verdict</th><th>Values (version/segment)</th><th>Criterion</th><th>Data age</th>"
              "<th>PromQL</th></tr>")
            for r in _evidence_rows(decision):
                if r.check:
                    verdict_class = "bad" if (r.verdict or "").lower() == "breach" else ""
                    w(f"<tr><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td>"
                      f"<td class=\"{verdict_class}\">{_e(_verdict(r.verdict))}</td><td>{_e(r.values)}</td>"
                      f"<td>{_e(r.criterion)}</td><td>{r.age}</td><td><code>{_e(r.promql)}</code></td></tr>")
                else:
                    w(f"<tr><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td><td></td>"
                      f"<td colspan=\"4\">{_e(r.values)}</td></tr>")
            w("</table>")
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

    w(f"<section><h2>Timeline</h2><p class=\"muted\">Times in UTC and in {_e(clock.zone_name)}. Runs of "
      "consecutive check evaluations are folded into one row; the JSON export has every event.</p>"
      f"<table><tr><th>#</th><th>UTC</th><th>Local ({_e(clock.zone_name)})</th><th>Who</th><th>Marker</th>"
      "<th>What</th></tr>\n")
    for row in view.rows:
        seq = str(row.first_seq) if row.count == 1 else f"{row.first_seq}–{row.last_seq}"
        css = ' class="decision"' if row.kind == EventKind.DECISION else \
            ' class="action"' if row.kind.startswith("action.") else ""
        w(f"<tr{css}><td class=\"num\">{seq}</td><td class=\"when\">{clock.utc(row.ts)}</td>"
          f"<td class=\"when\">{_e(clock.local(row.ts))}</td><td>{_e(row.actor.label())}</td>"
          f"<td>{_e(row.marker)}</td><td>{_e(row.text)}</td></tr>\n")
    w("</table></section>\n")
    w("<section><h2>Open questions</h2><p class=\"muted\">To fill in.</p></section>\n")
    w("<section><h2>Action items</h2><table><tr><th>Action item</th><th>Owner</th><th>Due</th><th>Ticket</th></tr>"
      "<tr><td>&nbsp;</td><td></td><td></td><td></td></tr></table></section>\n")
    w(f"<footer>Generated by {_e(generator)} from the journal. {_e(_chain_line(view))} "
      "The JSON export carries every event with its hash.</footer>\n</body></html>\n")
