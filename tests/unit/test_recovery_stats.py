"""Speed to rollback: recovery phases from the journal, the summaries, ``rewind stats`` as text and JSON.

The journals are real SQLite journals in ``tmp_path``, holding synthetic incidents
journaled the way the services journal them (tests/fixtures/recovery_data.py).
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from console.adapters.journal_sql import SqlJournal
from console.cli import main
from console.domain.journal import EventKind, format_ts, parse_ts
from console.domain.recovery import (
    EVERY_VALUE_BELOW,
    NO_PLAYBOOK,
    Phase,
    Status,
    drill_marker,
    nearest_rank,
    recovery_of,
    summarise_phase,
)
from console.services.journal import JournalService
from console.services.recovery import RecoveryStats, window_s
from tests.fixtures.recovery_data import RESPONDER, Timing, expected_phases, rollback_incident, tamper

NOW = 1767268800.0  # 2026-01-01T12:00:00Z
DAY = 86400.0


def at(event) -> float:
    return parse_ts(event.ts).timestamp()


def first(events, kind, **payload):
    return next(e for e in events if e.kind is kind and all(e.payload.get(k) == v for k, v in payload.items()))


@pytest.fixture
def journal(tmp_path):
    records = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    yield records
    records.close()


def stats(journal, **kwargs):
    return RecoveryStats(JournalService(journal, RESPONDER), clock=lambda: NOW).report(**kwargs)


# --- one incident's phases ---------------------------------------------------------------------

def test_each_phase_is_the_difference_of_its_journal_timestamps():
    events = rollback_incident("INC-1", NOW - DAY, Timing(impact_before=300, breach=42, decide=95.5, intent=97,
                                                          applied=98.25, verified=131), playbook="canary-regression")
    recovery = recovery_of(events)
    opened = first(events, EventKind.INCIDENT_OPENED)
    breach = first(events, EventKind.CHECK_EVALUATED, verdict="breach")
    decision = first(events, EventKind.DECISION, action_id="act-1")
    intent, applied, verified = (first(events, kind, action_id="act-1") for kind in
                                 (EventKind.ACTION_INTENT, EventKind.ACTION_APPLIED, EventKind.ACTION_VERIFIED))
    impact = parse_ts(opened.payload["impact_started_at"]).timestamp()
    assert recovery.phases == pytest.approx({
        Phase.DETECT: at(breach) - impact,
        Phase.ACKNOWLEDGE: 0.0,  # the responder opened it
        Phase.DECIDE: at(decision) - at(breach),
        Phase.EXECUTE: at(applied) - at(intent),
        Phase.VERIFY: at(verified) - at(applied),
        Phase.TOTAL: at(verified) - impact,
    }, abs=1e-5)
    assert recovery.phases[Phase.TOTAL] == pytest.approx(431, abs=1e-5)
    # The playbook's own choice (a decision without the action's id) came first: the confirmation counts.
    assert first(events, EventKind.DECISION, step_id="choose").seq < decision.seq
    assert recovery.status is Status.RECOVERED and recovery.playbook == "canary-regression"
    assert recovery.action_id == "act-1" and not recovery.drill


def test_an_alert_opened_incident_is_acknowledged_by_the_first_person_and_detected_from_the_alert():
    timing = Timing(impact_before=None, ack=75.0, breach=90, decide=130, intent=131, applied=132, verified=150)
    events = rollback_incident("INC-2", NOW - DAY, timing, automated=True)
    recovery = recovery_of(events)
    assert recovery.start_source == "detected_at"
    assert {str(k): v for k, v in recovery.phases.items()} == pytest.approx(expected_phases(timing, automated=True),
                                                                            abs=1e-5)
    assert recovery.phases[Phase.ACKNOWLEDGE] == pytest.approx(75.0, abs=1e-5)
    assert recovery.playbook is None


def test_a_phase_that_cannot_be_computed_is_absent_not_zero():
    # No impact start and no alert: nothing to detect from; the total counts from the opening.
    events = rollback_incident("INC-3", NOW - DAY, Timing(impact_before=None, breach=None))
    recovery = recovery_of(events)
    assert Phase.DETECT not in recovery.phases and Phase.DECIDE not in recovery.phases
    verified = first(events, EventKind.ACTION_VERIFIED)
    assert recovery.phases[Phase.TOTAL] == pytest.approx(at(verified) - at(events[0]), abs=1e-5)


def test_an_unverified_rollback_leaves_the_incident_open_with_the_phases_it_reached():
    events = rollback_incident("INC-4", NOW - DAY, Timing(verified=None, closed=None))
    recovery = recovery_of(events)
    assert recovery.status is Status.OPEN
    assert Phase.EXECUTE in recovery.phases and Phase.VERIFY not in recovery.phases
    assert Phase.TOTAL not in recovery.phases
    closed = rollback_incident("INC-5", NOW - DAY, Timing(verified=None, closed=900))
    assert recovery_of(closed).status is Status.NOT_VERIFIED


def test_a_change_record_without_a_failure_holds_no_rollback():
    from console.domain.journal import GENESIS_HASH, EventDraft, prepare_payload, seal_chain

    def draft(offset, kind, payload):
        return EventDraft("INC-6", format_ts(NOW + offset), RESPONDER, kind, prepare_payload(payload))

    shadow = seal_chain([
        draft(0, EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV4", "summary": "shadow start"}),
        draft(1, EventKind.ACTION_INTENT, {"action_id": "act-s", "kind": "shadow_start", "plan": {}}),
        draft(2, EventKind.ACTION_APPLIED, {"action_id": "act-s"}),
    ], 0, GENESIS_HASH)
    assert recovery_of(shadow).status is Status.NO_ROLLBACK
    declared = seal_chain([draft(0, EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV2", "summary": "x"})],
                          0, GENESIS_HASH)
    assert recovery_of(declared).status is Status.OPEN  # a responder declared it: a failure until recovered


def test_the_drill_marker_is_read_from_the_opening():
    assert drill_marker("canary-regression") == {"drill": True, "drill_playbook": "canary-regression"}
    drill = recovery_of(rollback_incident("INC-7", NOW - DAY, drill=True, playbook=None))
    assert drill.drill and drill.playbook is None
    named = recovery_of(rollback_incident("INC-8", NOW - DAY, Timing(), drill=True, playbook="canary-regression"))
    assert named.drill and named.playbook == "canary-regression"


# --- summaries ------------------------------------------------------------------------------------

def test_percentiles_are_nearest_rank():
    assert nearest_rank(list(range(1, 11)), 50) == 5 and nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank(list(range(1, 21)), 90) == 18 and nearest_rank([7.0], 90) == 7.0


def test_below_ten_values_every_value_is_listed_instead_of_a_p90():
    few = summarise_phase(Phase.TOTAL, [30.0, 10.0, 20.0])
    assert few.n == 3 and few.p90 is None and few.values == (10.0, 20.0, 30.0)
    assert few.p50 == 20.0 and few.max == 30.0
    many = summarise_phase(Phase.TOTAL, [float(v) for v in range(EVERY_VALUE_BELOW, 0, -1)])
    assert many.n == 10 and many.p90 == 9.0 and many.values is None and many.max == 10.0
    assert not hasattr(many, "mean")


# --- the service over a real journal ----------------------------------------------------------------

def test_an_open_incident_is_counted_with_its_running_time(journal):
    journal.import_incident(rollback_incident("INC-DONE", NOW - 3 * DAY))
    journal.import_incident(rollback_incident("INC-OPEN", NOW - 2 * DAY, Timing(impact_before=60, verified=None,
                                                                                closed=None)))
    report = stats(journal)
    [still] = report.summary.of_status(Status.OPEN)
    assert still.incident_id == "INC-OPEN"
    assert still.running_s(NOW) == pytest.approx(2 * DAY + 60, abs=1e-3)
    [group] = report.summary.by_model
    assert group.recovered == 1 and group.open == 1
    assert report.summary.counted == 2


def test_a_tampered_chain_is_left_out_and_named(journal, tmp_path):
    journal.import_incident(rollback_incident("INC-GOOD", NOW - DAY))
    journal.import_incident(rollback_incident("INC-EDITED", NOW - DAY, Timing(verified=2000)))
    journal.close()
    with sqlite3.connect(tmp_path / "journal.db") as conn:  # a slow recovery made to look fast
        conn.executescript("DROP TRIGGER journal_events_no_update;")
        conn.execute("UPDATE journal_events SET ts = ? WHERE incident_id = 'INC-EDITED' AND kind = 'action.verified'",
                     (format_ts(NOW - DAY + 60),))
    report = stats(journal)
    assert [r.incident_id for r in report.summary.recoveries] == ["INC-GOOD"]
    [left] = report.left_out
    assert left.incident_id == "INC-EDITED" and "INC-EDITED" in left.problem


def test_the_window_counts_an_incident_by_its_opening(journal):
    since = NOW - 90 * DAY
    # Opened a minute before the window, recovered inside it: not counted. Opened a minute inside: counted.
    journal.import_incident(rollback_incident("INC-BEFORE", since - 60, Timing(verified=600)))
    journal.import_incident(rollback_incident("INC-INSIDE", since + 60, Timing(verified=600)))
    report = stats(journal, since="90d")
    assert report.since_at == since
    assert [r.incident_id for r in report.summary.recoveries] == ["INC-INSIDE"]
    assert [r.incident_id for r in stats(journal, since="91d").summary.recoveries] == ["INC-BEFORE", "INC-INSIDE"]


def test_an_empty_window_has_no_rollbacks(journal):
    journal.import_incident(rollback_incident("INC-OLD", NOW - 200 * DAY))
    report = stats(journal, since="90d")
    assert report.summary.recoveries == () and report.summary.by_model == () and report.summary.trend == ()


def test_drills_are_kept_apart_from_real_incidents(journal):
    journal.import_incident(rollback_incident("INC-REAL", NOW - DAY))
    journal.import_incident(rollback_incident("INC-DRILL", NOW - DAY, drill=True, playbook="canary-regression"))
    real, drills = stats(journal), stats(journal, drills=True)
    assert [r.incident_id for r in real.summary.recoveries] == ["INC-REAL"] and real.apart == 1
    assert [r.incident_id for r in drills.summary.recoveries] == ["INC-DRILL"] and drills.apart == 1
    assert [g.key for g in drills.summary.by_playbook] == ["canary-regression"]
    assert [g.key for g in real.summary.by_playbook] == [NO_PLAYBOOK]


def test_model_filter_summaries_and_trend(journal):
    for number in range(12):
        journal.import_incident(rollback_incident(f"INC-A{number:02d}", NOW - (5 + number * 7) * DAY,
                                                  Timing(verified=60.0 + number * 60)))
    journal.import_incident(rollback_incident("INC-B", NOW - DAY, model="ranker"))
    report = stats(journal, model="fraud-detector")
    [group] = report.summary.by_model
    assert group.key == "fraud-detector" and group.recovered == 12
    total = next(s for s in group.phases if s.phase is Phase.TOTAL)
    totals = sorted(120 + 60.0 + n * 60 for n in range(12))  # impact 120 s before the opening
    assert total.n == 12 and total.values is None
    assert total.p50 == pytest.approx(totals[5], abs=1e-5) and total.p90 == pytest.approx(totals[10], abs=1e-5)
    # Over 10 minutes: totals above 600 s.
    assert set(group.slow) == {f"INC-A{n:02d}" for n in range(12) if 180 + n * 60 > 600}
    assert sum(point.n for point in report.summary.trend) == 12
    assert [p.month for p in report.summary.trend] == ["2025-10", "2025-11", "2025-12", "2026-01"]
    from console.commands.stats import render_text

    lines = render_text(report)
    by_model, by_playbook = [line for line in lines if line.split()[:2] == ["total", "12"]]
    row = by_model
    assert row == by_playbook  # every one of them was rolled back by hand
    assert "every value" not in row
    assert "13 min 00 s" in row  # the p90: the 11th of 12 totals, 780 s
    assert "1 real incident" not in "\n".join(lines) and "over 10 min" in "\n".join(lines)


def test_the_since_window_is_a_duration():
    assert window_s("90d") == 90 * DAY and window_s("12h") == 12 * 3600
    from console.domain.errors import UsageError

    for bad in ("soon", "0d", ""):
        with pytest.raises(UsageError, match="--since"):
            window_s(bad)


def test_the_journal_reads_every_chain_as_one_read_chain_would(journal):
    for number in range(3):
        journal.import_incident(rollback_incident(f"INC-R{number}", NOW - number * DAY))
    chains = journal.read_chains()
    assert [head.incident_id for head, _ in chains] == [h.incident_id for h in journal.incidents()]
    assert all(journal.read_chain(head.incident_id) == (head, events) for head, events in chains)
    assert [h.incident_id for h, _ in journal.read_chains(format_ts(NOW - 1.5 * DAY))] == ["INC-R1", "INC-R0"]


# --- the command line -------------------------------------------------------------------------------

@pytest.fixture
def cli_journal(tmp_path):
    """A config naming a journal with a real incident, an open one, a drill and a tampered one (now-relative)."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    now = time.time()
    records = SqlJournal(url)
    records.import_incident(rollback_incident("INC-CLI-1", now - 2 * DAY, Timing(verified=65)))
    records.import_incident(rollback_incident("INC-CLI-2", now - DAY, Timing(verified=None, closed=None)))
    records.import_incident(rollback_incident("INC-CLI-3", now - DAY, drill=True, playbook="canary-regression"))
    records.import_incident(rollback_incident("INC-CLI-4", now - DAY))
    records.close()
    tamper(tmp_path / "journal.db", "INC-CLI-4", 3)
    config = tmp_path / "rewind.yaml"
    config.write_text(f"journal:\n  url: {url}\n", encoding="utf-8")
    return str(config)


def test_stats_json_is_a_stable_document(cli_journal, capsys):
    assert main(["stats", "--config", cli_journal, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "rewind.stats/1" and document["population"] == "incidents"
    assert document["window"]["since"] == "90d" and document["window"]["counted_by"] == "opened_at"
    assert document["counts"] == {"incidents": 2, "recovered": 1, "open": 1, "not_verified": 0, "no_rollback": 0,
                                  "left_out": 1, "kept_apart": 1}
    assert [item["id"] for item in document["left_out"]] == ["INC-CLI-4"]
    assert [item["id"] for item in document["open"]] == ["INC-CLI-2"] and document["open"][0]["running_s"] > DAY
    [model] = document["by_model"]
    assert model["model"] == "fraud-detector" and model["recovered"] == 1 and model["open"] == 1
    assert model["phases"]["total"] == {"n": 1, "p50": 185.0, "p90": None, "max": 185.0, "values": [185.0]}
    assert model["phases"]["execute"] == {"n": 1, "p50": 1.5, "p90": None, "max": 1.5, "values": [1.5]}
    assert set(model["phases"]) == {"detect", "acknowledge", "decide", "execute", "verify", "total"}
    assert [p["n"] for p in document["trend"]] and sum(p["n"] for p in document["trend"]) == 1
    assert "mean" not in json.dumps(document)


def test_stats_text_names_units_open_incidents_and_what_was_left_out(cli_journal, capsys):
    assert main(["stats", "--config", cli_journal]) == 0
    out = capsys.readouterr().out
    assert "1 incident left out: its chain does not verify (INC-CLI-4" in out
    assert "1 open, running for 1 d 00 h (INC-CLI-2)" in out
    assert "1 drill in the window, kept apart (rewind stats --drills)" in out
    assert "every value: 3 min 05 s" in out and "every value: 1.5 s" in out
    assert "Trend by opening month" in out and "n=1" in out
    assert main(["stats", "--config", cli_journal, "--drills", "--model", "fraud-detector"]) == 0
    drills = capsys.readouterr().out
    assert "canary-regression: 1 rolled back and verified" in drills and "2 real incidents in the window" in drills


def test_stats_says_when_the_window_holds_no_rollback(cli_journal, capsys):
    assert main(["stats", "--config", cli_journal, "--model", "ranker", "--since", "12h"]) == 0
    assert "no rollbacks of ranker in the last 12h" in capsys.readouterr().out


def test_stats_usage_and_journal_errors_are_one_line(tmp_path, capsys):
    config = tmp_path / "rewind.yaml"
    config.write_text("journal:\n  url: postgresql://rewind@127.0.0.1:1/journal\n", encoding="utf-8")
    assert main(["stats", "--config", str(config), "--since", "soon"]) == 2
    assert "--since: 'soon' is not a duration" in capsys.readouterr().err
    assert main(["stats", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PostgreSQL journal postgresql://rewind@127.0.0.1:1/journal" in err
    assert "Traceback" not in err
