"""The post-mortem's sentences, phrased once for every format.

Every fact is phrased here, as (label, text) lines or plain sentences; Markdown and HTML only add their
markup around the same lines (and JSON carries the trigger's), so every format shows the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from console.domain.incident import (
    ActionRecord,
    DecisionRecord,
    TimelineRow,
    action_detail,
    compact,
    format_duration,
    history_span,
    plan_sentences,
    state_text,
)
from console.domain.journal import HASH_ALGORITHM, Event, EventKind, check_evidence
from console.domain.rollback import Plan, describe_feature_moves
from console.services.timeline.evidence import as_number, breaches, check_row, value_text
from console.services.timeline.view import Clock, IncidentView

# --- the fixed words and the blanks -----------------------------------------------------------

TO_FILL = "To fill in"
"""The word before each blank a responder fills in by hand."""

FILL_IN_AUTHORS = "who wrote this post-mortem."
FILL_IN_SUMMARY = "what happened, in two or three sentences a newcomer understands."
FILL_IN_IMPACT = "who was affected (users, requests, revenue) and how badly."
FILL_IN_TRIGGER = "what change set this off (the deploy, data or config change), and when."
FILL_IN_DETECTION = "how we noticed (alert, dashboard, user report), and how detection could be faster."
FILL_IN_ROOT_CAUSE = "why it happened (ask why until the answer is a fix); Rewind only knows what it saw."
LESSONS = (("What went well", "what helped detect, decide and recover."),
           ("What went wrong", "what slowed us down or made it worse."),
           ("Where we got lucky", "what could have gone worse."))
"""The lessons' headings, each with what to fill in under it."""
ACTION_ITEM_COLUMNS = ("Action item", "Type", "Owner", "Due", "Ticket")
ACTION_ITEM_TYPES = "prevent / mitigate / detect"
EVIDENCE_COLUMNS = ("#", "Metric", "Verdict", "Cell", "Value", "Why")
NO_DECISION = "No decision was recorded."
NO_ACTION = "No action was recorded."
NO_EVIDENCE = "Evidence: none recorded before this decision."


def to_fill(what: str) -> str:
    """A blank for the responder: ``To fill in: <what>``."""
    return f"{TO_FILL}: {what}"


# --- the header and the impact ---------------------------------------------------------------

def post_mortem_title(view: IncidentView) -> str:
    """The document's heading: ``Post-mortem: <the incident's summary>``."""
    return f"Post-mortem: {view.summary.summary}"


def opened_text(view: IncidentView, clock: Clock) -> str:
    """When the incident was opened, and by whom."""
    return f"{clock.both(view.summary.opened_at)} by {view.summary.opened_by.label()}"


def definitions() -> list[str]:
    """How each figure of the impact is measured (Markdown's code spans in backticks)."""
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


def fact_lines(view: IncidentView, clock: Clock) -> list[tuple[str, str]]:
    """The impact's figures, as (label, text): its window, detection, mitigation, TTD and TTM."""
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


def chain_line(view: IncidentView) -> str:
    """Whether the journal's hash chain verified, in one sentence."""
    v = view.verification
    if v.ok:
        return (f"Hash chain verified: {v.events} events, head {HASH_ALGORITHM} {v.head_hash}.")
    return f"HASH CHAIN BROKEN: {v.problem.message() if v.problem else 'unknown problem'}."


# --- decisions and actions --------------------------------------------------------------------

def decision_lines(decision: DecisionRecord, clock: Clock) -> list[tuple[str, str]]:
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


def decision_title(decision: DecisionRecord) -> str:
    """A decision's heading: its marker and the option taken."""
    return f"{decision.marker}: {compact(decision.event.payload.get('option'))}"


def evidence_heading(decision: DecisionRecord) -> str:
    """What introduces a decision's evidence: where it was taken from."""
    how = ("named by the decision" if decision.evidence_stated
           else "the latest evaluation of each metric before the decision")
    return f"Evidence ({how}):"


def plan_of(action: ActionRecord) -> object:
    """The plan an action journaled: its intent's, else the first of its events that carries one."""
    intent = action.first(EventKind.ACTION_INTENT)
    if intent is not None:
        return intent.payload.get("plan")
    failed = next((e for e in action.events if isinstance(e.payload.get("plan"), Mapping)), None)
    return failed.payload.get("plan") if failed else None


def action_title(action: ActionRecord) -> str:
    """An action's heading: its marker, id and outcome."""
    return f"{action.marker}: {action.action_id} ({action.outcome})"


def action_lines(action: ActionRecord, clock: Clock) -> list[tuple[str, str]]:
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
        warnings = intent.payload.get("warnings")
        if isinstance(warnings, list) and warnings:
            lines.append(("Preview warned", compact("; ".join(map(str, warnings)), 1000)))
    for ev in action.events:
        what = str(ev.kind).split(".", 1)[1].replace("_", " ")
        detail = action_detail(ev)
        lines.append((what.capitalize(), f"{clock.both(ev.ts)} by {ev.actor.label()} (event #{ev.seq})"
                      + (f": {detail}" if detail else "")))
    return lines


def verification(action: ActionRecord) -> tuple[bool | None, str, str]:
    """Whether the action was verified (None: nothing recorded), the word for it, and the evidence."""
    verified = action.first(EventKind.ACTION_VERIFIED) or action.first(EventKind.ACTION_NOT_VERIFIED)
    if verified is None:
        return None, "none recorded.", ""
    ok = verified.kind is EventKind.ACTION_VERIFIED
    return ok, "✓ verified" if ok else "✗ NOT verified", (
        f"expected {state_text(verified.payload.get('expected'))}; "
        f"observed {state_text(verified.payload.get('observed'))}")


# --- the post-mortem's sections ----------------------------------------------------------------

def breach_lines(view: IncidentView, clock: Clock) -> list[str]:
    """One sentence per breaching cell: metric, cell, when, how bad, why."""
    lines = []
    for b in breaches(view):
        span = (f"at {clock.utc(datetime.fromtimestamp(b.first, UTC))}" if b.first == b.last else
                f"from {clock.utc(datetime.fromtimestamp(b.first, UTC))} to "
                f"{clock.utc(datetime.fromtimestamp(b.last, UTC))[11:]}")
        worst = f", worst {value_text(b.worst, None, b.unit)}" if b.worst is not None else ""
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
        plan = plan_of(action)
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


def summary_lines(view: IncidentView, clock: Clock) -> list[str]:
    """What happened, in a few sentences made of the journal's facts."""
    s = view.summary
    lines = [f"{s.summary}."] if not s.summary.endswith((".", "!", "?")) else [s.summary]
    breaching = breaches(view)
    if breaching:
        cells: dict[str, list[str]] = {}
        for b in breaching:
            cells.setdefault(b.title, []).append(f"v{b.version} {b.segment}")
        what = "; ".join(f"{title} in {', '.join(dict.fromkeys(c))}" for title, c in cells.items())
        lines.append(f"Breaching: {what}.")
    for action, plan in _left_versions(view):
        ok, word, _ = verification(action)
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
class DiagnosisAtTheTime:
    """The diagnosis journaled at the decision's time, and where."""

    event: Event
    diagnosis: Mapping[str, Any]


def diagnosis_at_the_time(view: IncidentView) -> DiagnosisAtTheTime | None:
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
    return DiagnosisAtTheTime(chosen, chosen.payload["diagnosis"])


def _diagnosis_item(found: DiagnosisAtTheTime, clock: Clock) -> tuple[str, list[str]]:
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
        since = as_number(suspect.get("since"))
        when = f", first seen {clock.both(datetime.fromtimestamp(since, UTC))}" if since is not None else ""
        details.append(f"Suspect: feature view {suspect.get('view')} {suspect.get('view_version')} "
                       f"(sha {suspect.get('udf_sha')}) through {suspect.get('feature_service')}{when}.")
    details += [f"Missing to be sure: {line}" for line in d.get("missing") or []]
    if d.get("advice"):
        details.append(f"Advice given: {d['advice']}.")
    return head, details


def _features_moved(action: ActionRecord) -> str | None:
    """What an action (a feature rollback or its undo) moved in the model's features, in one line."""
    plan = plan_of(action)
    if not isinstance(plan, Mapping) or not (plan.get("tag_moves") or plan.get("view_pin")):
        return None
    try:
        parsed = Plan.from_dict(dict(plan))
    except (KeyError, TypeError, ValueError):
        return None
    return describe_feature_moves(parsed) if parsed.moves_features else None


def _feature_plan(action: ActionRecord) -> Plan | None:
    """The action's plan when it moved features (not an undo), else ``None``."""
    plan = plan_of(action)
    if not isinstance(plan, Mapping) or plan.get("undoes"):
        return None
    try:
        parsed = Plan.from_dict(dict(plan))
    except (KeyError, TypeError, ValueError):
        return None
    return parsed if parsed.moves_features else None


def trigger_items(view: IncidentView, clock: Clock) -> list[tuple[str, list[str]]]:
    """The trigger section: each line with its sub-lines (a diagnosis' evidence)."""
    items: list[tuple[str, list[str]]] = [(line, []) for line in _trigger_lines(view)]
    found = diagnosis_at_the_time(view)
    if found is not None:
        items.insert(0, _diagnosis_item(found, clock))
    for action in view.actions:
        plan = _feature_plan(action)
        if plan is not None:
            items.append((f"The feature binding was rolled back by {action.marker} ({action.outcome}): "
                          f"{describe_feature_moves(plan)}; the model's versions, weights and aliases were "
                          f"not touched.", []))
    return items


def trigger_flat(view: IncidentView, clock: Clock) -> list[str]:
    """The trigger section as plain lines (sub-lines indented), for JSON."""
    return [text for line, details in trigger_items(view, clock) for text in [line, *(f"  {d}" for d in details)]]


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


def detection_lines(view: IncidentView, clock: Clock) -> list[str]:
    """How and when the incident was detected: the detection, the first breaching check, the time to detect."""
    f = view.facts
    lines = [f"Detected {clock.both(f.detected.at)} ({f.detected.source})."]
    first = _first_breach(view)
    if first is not None:
        c = check_evidence(first.payload)
        row = check_row(first)
        cell = f": {row.flagged[0].cell} {row.flagged[0].reason}" if row.flagged else ""
        lines.append(f"First breaching check: {c.title} {clock.both(first.ts)} (event #{first.seq}){cell}.")
    lines.append(f"Time to detect: {f.ttd_text()}.")
    return lines


def resolution_lines(view: IncidentView, clock: Clock) -> list[str]:
    """What was done: each action with its plan and verification, the mitigation, the resolution given."""
    f = view.facts
    lines = []
    for action in view.actions:
        moment = action.first(EventKind.ACTION_APPLIED) or action.events[-1]
        ok, word, _ = verification(action)
        features = _features_moved(action)
        lines.append(f"{action.marker} {action.action_id} ({action.outcome}) {clock.both(moment.ts)}: "
                     + " ".join(plan_sentences(plan_of(action)))
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


def history_lines(view: IncidentView, clock: Clock) -> list[str]:
    """Where the charts' data comes from, and the note when the history could not be read."""
    lines = []
    if view.history:
        first = min(view.history.values(), key=lambda e: e.seq)
        lines.append(f"Charts drawn from the metrics history captured {clock.both(first.ts)} (event #{first.seq}): "
                     f"{history_span(first.payload)}.")
    if view.history_note:
        lines.append(view.history_note)
    return lines


# --- the timeline -----------------------------------------------------------------------------

def timeline_intro(clock: Clock) -> str:
    """The sentence above the timeline: its time zones, and that check runs are folded."""
    zone = "UTC" if clock.is_utc else f"UTC and in {clock.zone_name}"
    return (f"Times in {zone}. Runs of consecutive check evaluations are folded into one row; "
            "the JSON export has every event.")


def timeline_header(clock: Clock) -> list[str]:
    """The timeline's columns: one time column when the local zone is UTC, two otherwise."""
    times = ["UTC"] if clock.is_utc else ["UTC", f"Local ({clock.zone_name})"]
    return ["#", *times, "Who", "Marker", "What"]


def row_seq(row: TimelineRow) -> str:
    """A timeline row's event number, or the range of a folded run (``12–40``)."""
    return str(row.first_seq) if row.count == 1 else f"{row.first_seq}–{row.last_seq}"


def time_cells(clock: Clock, ts: str) -> list[str]:
    """A timeline row's time, in the columns of :func:`timeline_header`."""
    return [clock.utc(ts)] if clock.is_utc else [clock.utc(ts), clock.local(ts)]
