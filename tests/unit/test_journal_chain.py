"""The hash chain: canonical form, sealing, and tamper detection that names the first bad event."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from console.domain.journal import (
    GENESIS_HASH,
    Actor,
    Event,
    EventDraft,
    EventKind,
    IncidentHead,
    Tamper,
    actor_from,
    canonical_json,
    format_ts,
    parse_ts,
    prepare_payload,
    seal,
    seal_chain,
    verify_chain,
)

INCIDENT = "INC-20250314-ABC123"
ACTOR = Actor("alice", "bastion-1", "10.0.0.7")


def drafts(count: int = 6) -> list[EventDraft]:
    kinds = [EventKind.INCIDENT_OPENED] + [EventKind.NOTE] * (count - 1)
    payloads = [{"model": "fraud", "severity": "SEV2", "summary": "errors up"}] + [
        {"text": f"note {i} ünïcode ✓", "n": i, "ratio": 0.1 * i} for i in range(1, count)]
    return [EventDraft(INCIDENT, format_ts(1741942800 + i), ACTOR, kind, prepare_payload(payload))
            for i, (kind, payload) in enumerate(zip(kinds, payloads, strict=True))]


def chain(count: int = 6) -> list[Event]:
    return seal_chain(drafts(count), 0, GENESIS_HASH)


def head_of(events: list[Event]) -> IncidentHead:
    return IncidentHead(INCIDENT, events[-1].seq, events[-1].hash, events[0].ts)


def reseal(event: Event, **changes) -> Event:
    """The event with fields changed and a freshly computed hash (what a careful forger does)."""
    changed = dataclasses.replace(event, **changes)
    draft = EventDraft(changed.incident_id, changed.ts, changed.actor, changed.kind, json.loads(changed.payload_json))
    return seal(draft, changed.seq, changed.prev_hash)


def test_hash_is_sha256_of_the_canonical_json_of_the_event_fields():
    event = chain(2)[1]
    document = {
        "actor": {"host": "bastion-1", "ssh_client": "10.0.0.7", "user": "alice"},
        "incident_id": INCIDENT, "kind": "note", "payload": json.loads(event.payload_json),
        "prev_hash": event.prev_hash, "seq": 2, "ts": event.ts,
    }
    expected = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert event.canonical() == expected
    assert event.hash == hashlib.sha256(expected.encode("utf-8")).hexdigest()


def test_payload_is_stored_as_its_canonical_text():
    event = chain(2)[1]
    assert event.payload_json == canonical_json(event.payload)
    assert event.payload_json.startswith('{"n":1,"ratio":0.1,"text":"note 1 ünïcode ✓"}'[:6])


def test_each_event_links_to_the_previous_hash():
    events = chain(5)
    assert events[0].prev_hash == GENESIS_HASH
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in events}) == 5


def test_intact_chain_verifies_with_its_head():
    events = chain()
    result = verify_chain(INCIDENT, events, head_of(events))
    assert result.ok and result.events == 6 and result.head_hash == events[-1].hash


def test_empty_chain_against_an_empty_head_is_fine():
    assert verify_chain(INCIDENT, []).ok


def test_edited_payload_is_named():
    events = chain()
    events[2] = dataclasses.replace(events[2], payload_json=events[2].payload_json.replace("note 2", "note 9"))
    problem = verify_chain(INCIDENT, events, head_of(chain())).problem
    assert problem is not None and problem.seq == 3 and problem.tamper is Tamper.EDITED
    assert "event #3" in problem.message() and INCIDENT in problem.message()


@pytest.mark.parametrize("field,value", [("ts", "2025-03-14T09:00:09.000000Z"), ("actor", Actor("mallory", "x")),
                                         ("kind", "decision"), ("prev_hash", "f" * 64)])
def test_edited_field_is_caught(field, value):
    events = chain()
    events[3] = dataclasses.replace(events[3], **{field: value})
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 4


def test_edit_with_recomputed_hash_is_caught_at_the_next_event():
    events = chain()
    events[2] = reseal(events[2], payload_json=events[2].payload_json.replace("note 2", "forged"))
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 4
    assert problem.tamper is Tamper.INSERTED  # its predecessor was replaced


def test_deleted_middle_event_is_named():
    events = chain()
    del events[2]
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 3 and problem.tamper is Tamper.DELETED
    assert "jumps from #2 to #4" in problem.detail


def test_deleted_last_event_is_caught_by_the_head():
    events = chain()
    head = head_of(events)
    problem = verify_chain(INCIDENT, events[:-1], head).problem
    assert problem is not None and problem.seq == 6 and problem.tamper is Tamper.DELETED


def test_reordered_rows_are_named():
    events = chain()
    events[2], events[3] = events[3], events[2]
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 3 and problem.tamper is Tamper.REORDERED


def test_renumbered_events_are_reported_as_reordered():
    events = chain()
    third, fourth = events[2], events[3]
    events[2] = dataclasses.replace(fourth, seq=3)
    events[3] = dataclasses.replace(third, seq=4)
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 3 and problem.tamper is Tamper.REORDERED
    assert "recorded as #4" in problem.detail


def test_inserted_event_in_the_middle_is_named():
    events = chain()
    forged = reseal(events[2], payload_json='{"text":"I was here"}')  # a well-formed #3 after #2
    shifted = [dataclasses.replace(e, seq=e.seq + 1) for e in events[2:]]
    tampered = events[:2] + [forged] + shifted
    problem = verify_chain(INCIDENT, tampered).problem
    assert problem is not None and problem.seq == 4 and problem.tamper is Tamper.INSERTED
    assert "was recorded as #3" in problem.detail


def test_inserted_event_after_the_head_is_named():
    events = chain()
    head = head_of(events)
    extra = seal(EventDraft(INCIDENT, events[-1].ts, ACTOR, EventKind.NOTE, {"text": "late"}), 7, events[-1].hash)
    problem = verify_chain(INCIDENT, [*events, extra], head).problem
    assert problem is not None and problem.seq == 7 and problem.tamper is Tamper.INSERTED


def test_duplicate_sequence_number_is_named():
    events = chain()
    events.insert(3, events[2])
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 3 and problem.tamper is Tamper.INSERTED


def test_event_of_another_incident_is_named():
    events = chain()
    events[1] = dataclasses.replace(events[1], incident_id="INC-OTHER")
    problem = verify_chain(INCIDENT, events).problem
    assert problem is not None and problem.seq == 2 and "INC-OTHER" in problem.detail


def test_events_without_a_head_are_reported():
    events = chain()
    problem = verify_chain(INCIDENT, events, IncidentHead(INCIDENT, -1, "", events[0].ts)).problem
    assert problem is not None and problem.tamper is Tamper.INSERTED


def test_head_hash_mismatch_is_reported():
    events = chain()
    problem = verify_chain(INCIDENT, events, IncidentHead(INCIDENT, 6, "0" * 64, events[0].ts)).problem
    assert problem is not None and problem.seq == 6


def test_undecodable_payload_does_not_crash_readers():
    event = dataclasses.replace(chain(2)[1], payload_json="not json")
    assert event.payload == {}
    assert verify_chain(INCIDENT, [chain(2)[0], event]).problem.tamper is Tamper.EDITED


def test_timestamps_round_trip_in_utc():
    text = format_ts(1741942800.123456)
    assert text == "2025-03-14T09:00:00.123456Z"
    assert parse_ts(text).timestamp() == pytest.approx(1741942800.123456)
    assert parse_ts("2025-03-14T10:00:00+01:00") == parse_ts("2025-03-14T09:00:00Z")
    with pytest.raises(ValueError, match="no time zone"):
        parse_ts("2025-03-14T09:00:00")


def test_actor_takes_the_ssh_client_address_from_ssh_connection():
    assert actor_from("bob", "bastion", "203.0.113.9 53422 10.0.0.1 22") == Actor("bob", "bastion", "203.0.113.9")
    assert actor_from("bob", "bastion", None).ssh_client is None
    assert actor_from("bob", "bastion", "  ").label() == "bob@bastion"
    assert Actor("bob", "h", "1.2.3.4").label() == "bob@h via 1.2.3.4"


def test_every_issue_event_kind_exists():
    names = {k.value for k in EventKind}
    assert names >= {
        "incident.opened", "incident.closed", "playbook.started", "playbook.finished", "step.started",
        "step.finished", "check.evaluated", "decision", "action.intent", "action.applied", "action.failed",
        "action.compensated", "action.verified", "action.not_verified", "note", "notification.rendered",
        "notification.sent",
    }


def test_check_payload_carries_the_evidence_the_charts_read():
    from console.domain.journal import check_evidence, check_payload
    from console.domain.metrics import Criteria, Direction, MetricSpec, QueryResult, Unit
    from console.domain.verdicts import State, Verdict

    spec = MetricSpec("error_rate", "Error rate", 'rate(x{model="$model"}[$window])', Unit.RATIO,
                      Direction.HIGHER_IS_WORSE, Criteria(threshold=0.05))
    result = QueryResult("error_rate", 'rate(x{model="m"}[1m])', 1741942800.0,
                         {("1", "eu"): "0.01", ("2", "eu"): "0.12", ("2", "us"): "NaN"})
    verdicts = [Verdict("error_rate", "1", "eu", State.PASS, 0.01, None, "ok"),
                Verdict("error_rate", "2", "eu", State.BREACH, 0.12, 0.01, "over"),
                Verdict("error_rate", "2", "us", State.NO_DATA, None, None, "no data")]
    payload = prepare_payload(check_payload(spec, result, verdicts, "breach", "1", 1741942803.5))
    assert payload["data_age_s"] == 3.5 and payload["promql"] == 'rate(x{model="m"}[1m])'
    evidence = check_evidence(payload)
    assert evidence.threshold == 0.05 and evidence.verdict == "breach" and evidence.stable_version == "1"
    cells = {(c.version, c.segment): c for c in evidence.values}
    assert cells[("2", "eu")].raw == "0.12" and cells[("2", "eu")].verdict == "breach"
    assert cells[("2", "us")].value is None and cells[("2", "us")].raw == "NaN"
