"""The complete incident as JSON (schema ``rewind.incident/1``), and reading it back.

Every event with its hash, so :func:`parse_incident_document` can re-import it and the chain verifies;
a header carries the incident, its facts (with how they are measured), the post-mortem's trigger, and its
recovery compared with the model's history (``recovery``: ``null`` when it was not read).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from console.domain.errors import UsageError
from console.domain.journal import (
    GENESIS_HASH,
    HASH_ALGORITHM,
    Actor,
    Event,
    canonical_json,
    format_ts,
    parse_kind,
    parse_ts,
)
from console.domain.recovery import phase_figures, seconds_figure
from console.domain.recovery_comparison import RecoveryComparison
from console.services.timeline import recovery_compared, sentences
from console.services.timeline.view import Clock, IncidentView

INCIDENT_SCHEMA = "rewind.incident/1"
HASH_DEFINITION = (
    "sha256 of the UTF-8 canonical JSON (sorted keys, no whitespace, no NaN) of "
    "{actor, incident_id, kind, payload, prev_hash, seq, ts}; prev_hash of event 1 is 64 zeros"
)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _trigger_json(view: IncidentView) -> dict[str, object]:
    """The trigger section for JSON: the diagnosis at the time (with the event it was journaled in) and the lines."""
    found = sentences.diagnosis_at_the_time(view)
    diagnosis = None if found is None else {**found.diagnosis, "event_seq": found.event.seq, "ts": found.event.ts}
    return {"diagnosis": diagnosis, "lines": sentences.trigger_flat(view, Clock(UTC, "UTC"))}


def _recovery_json(comparison: RecoveryComparison | None) -> dict[str, object] | None:
    """The recovery compared with the model's history: this incident's phases, the history's figures, the ranks.

    Every duration in seconds; the same words as the other formats (``lines``, each phase's ``text``).
    """
    if comparison is None:
        return None
    c, incident = comparison, comparison.incident
    utc = Clock(UTC, "UTC")
    return {
        "unit": "s",
        "status": str(incident.status),
        "drill": incident.drill,
        "action_id": incident.action_id,
        "start_source": incident.start_source,
        "history": {
            "model": incident.model,
            "population": "drills" if c.drill else "incidents",
            "window": {"since": c.since, "from": format_ts(c.since_at), "to": format_ts(c.until),
                       "counted_by": "opened_at"},
            "excludes": incident.incident_id,
            "counts": {"recovered": c.recovered, "open": c.open, "not_verified": c.not_verified,
                       "left_out": c.left_out, "kept_apart": c.kept_apart},
        },
        "phases": {str(p.phase): {
            "value": seconds_figure(p.value),
            "history": phase_figures(p.history),
            "rank": None if p.rank is None else {"faster_than": p.rank.faster_than, "same": p.rank.same,
                                                 "slower_than": p.rank.slower_than, "of": p.rank.of},
            "text": recovery_compared.where_it_falls(p, incident),
        } for p in c.phases},
        "lines": recovery_compared.comparison_lines(c, utc),
        "definitions": recovery_compared.definitions(),
    }


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
            "definitions": sentences.definitions(),
        },
        "verification": {"ok": view.verification.ok,
                         "problem": view.verification.problem.message() if view.verification.problem else None},
        "trigger": _trigger_json(view),
        "recovery": _recovery_json(view.comparison),
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
