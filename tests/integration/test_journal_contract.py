"""The journal's contract, run against SQLite and a real PostgreSQL server alike.

Durability (an event reported written survives ``kill -9`` of its writer) and
concurrency (two processes appending to one incident never repeat a sequence
number nor break the chain) are tested with real child processes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from console.adapters.journal_sql import SqlJournal
from console.domain.errors import ConflictError, JournalError, NotFoundError
from console.domain.journal import EventKind
from console.services.journal import JournalService
from tests.fixtures.journal_data import ACTOR, synthetic_incident

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'journal.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def journal(journal_url):
    journal = SqlJournal(journal_url)
    yield journal
    journal.close()


@pytest.fixture
def service(journal) -> JournalService:
    return JournalService(journal, ACTOR)


def test_append_and_read_back(service, journal):
    opened = service.open_incident("fraud-detector", "sev2", "errors up", impact_started_at="2025-03-14T09:00:00Z")
    incident = opened.incident_id
    assert opened.seq == 1 and opened.payload["severity"] == "SEV2"
    more = service.record_many(incident, [(EventKind.NOTE, {"text": "looking"}),
                                          (EventKind.DECISION, {"option": "roll back", "reason": "v2 breaches"})])
    closed = service.close_incident(incident, "rolled back")
    head, events = journal.read_chain(incident)
    assert events == [opened, *more, closed]
    assert [e.payload for e in events][1] == {"text": "looking"}
    assert (head.seq, head.hash) == (4, closed.hash)
    assert [e.seq for e in journal.events(incident, [EventKind.NOTE, EventKind.DECISION])] == [2, 3]
    assert [r.ok for r in service.verify()] == [True]
    [summary] = service.incidents()
    assert (summary.incident_id, summary.status, summary.events, summary.resolution) == (
        incident, "closed", 4, "rolled back")
    with pytest.raises(ConflictError, match="already closed"):
        service.close_incident(incident)


def test_unknown_and_duplicate_incidents_are_refused(service, journal):
    with pytest.raises(NotFoundError, match="INC-NOPE"):
        service.note("INC-NOPE", "hello")
    with pytest.raises(NotFoundError):
        journal.read_chain("INC-NOPE")
    opened = service.open_incident("m", "1", "x")
    draft = service.draft(opened.incident_id, EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV1",
                                                                         "summary": "again"})
    with pytest.raises(ConflictError):
        journal.append(opened.incident_id, [draft], new_incident=True)
    assert journal.incidents()[0].seq == 1


def test_events_are_append_only_in_the_database(service, journal):
    incident = service.open_incident("m", "1", "x").incident_id
    service.note(incident, "keep me")
    for statement in ("UPDATE journal_events SET payload = '{}' WHERE seq = 2", "DELETE FROM journal_events"):
        with pytest.raises(Exception, match="append-only"):  # noqa: B017,PT011 - the driver's own error class
            with journal._engine.begin() as conn:
                conn.execute(text(statement))
    assert service.verify()[0].ok


def test_import_is_all_or_nothing(service, journal):
    events = synthetic_incident(2500, "INC-20250314-IMPORT")
    broken = events[:2400] + [events[2300]] + events[2401:]  # a repeated sequence number in the second chunk
    with pytest.raises(ConflictError, match="nothing was imported"):
        journal.import_incident(broken)
    assert journal.incidents() == []
    head = service.import_events(events)
    assert (head.seq, head.hash) == (2500, events[-1].hash)
    assert journal.read_chain("INC-20250314-IMPORT")[1] == events
    with pytest.raises(ConflictError, match="nothing was imported"):
        service.import_events(events)
    assert journal.incidents()[0].seq == 2500


def test_first_use_from_many_connections_at_once(journal_url):
    journals = [SqlJournal(journal_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda j: j.incidents(), journals)) == [[]] * 4
    finally:
        for j in journals:
            j.close()


def _writer(url: str, incident: str, count: int, hold: bool = False) -> subprocess.Popen:
    argv = [sys.executable, "-m", "tests.integration.journal_writer", url, incident, str(count)]
    argv += ["--hold"] if hold else ["--pause"]
    process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.strip() == "ready", process.stderr.read()
    return process


def test_two_processes_appending_to_one_incident(service, journal, journal_url):
    incident = service.open_incident("m", "2", "concurrent writers").incident_id
    count = 150
    writers = [_writer(journal_url, incident, count) for _ in range(2)]
    for writer in writers:  # both are connected and waiting: start them together
        writer.stdin.write("go\n")
        writer.stdin.flush()
    reported = []
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        reported += [int(line.split()[1]) for line in out.splitlines() if line.startswith("written")]
    head, events = journal.read_chain(incident)
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, 2 * count + 2))
    assert sorted(reported) == seqs[1:]  # every reported sequence number is there, none twice
    writers_in_order = [e.actor.user for e in events[1:]]
    switches = sum(1 for a, b in zip(writers_in_order, writers_in_order[1:], strict=False) if a != b)
    assert switches >= 10, f"the two writers barely overlapped ({switches} switches), so little was tested"
    assert service.verify(incident)[0].ok


def test_an_event_reported_written_survives_kill_9(service, journal, journal_url):
    incident = service.open_incident("m", "2", "durability").incident_id
    writer = _writer(journal_url, incident, 1, hold=True)
    writer.stdin.write("go\n")
    writer.stdin.flush()
    line = writer.stdout.readline()
    os.kill(writer.pid, signal.SIGKILL)  # right after it reported the event, before anything else
    writer.wait(10)
    assert writer.returncode == -signal.SIGKILL
    _, seq, digest = line.split()
    fresh = SqlJournal(journal_url)
    try:
        head, events = fresh.read_chain(incident)
    finally:
        fresh.close()
    assert (events[-1].seq, events[-1].hash) == (int(seq), digest)
    assert (head.seq, head.hash) == (int(seq), digest)


def test_messages_never_show_the_database_password(postgres_server):
    url = postgres_server.url("rewind_pw_test").replace("rewind@", "rewind:Sup3rSecretPw@")
    journal = SqlJournal(url)
    assert "Sup3rSecretPw" not in journal.describe()
    with pytest.raises(JournalError) as caught:
        journal.incidents()  # the database does not exist
    assert "Sup3rSecretPw" not in str(caught.value)
    unreachable = SqlJournal("postgresql://rewind:Sup3rSecretPw@127.0.0.1:1/journal", connect_timeout_s=1)
    with pytest.raises(JournalError) as caught:
        unreachable.incidents()
    assert "Sup3rSecretPw" not in str(caught.value) and "127.0.0.1" in str(caught.value)
