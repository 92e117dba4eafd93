"""Following a PostgreSQL journal live: LISTEN/NOTIFY, catch-up by sequence number after a dropped connection,
the upgrade of an older journal, and the index behind the lookups across every incident (EXPLAIN).

The server restart has a file of its own (``test_journal_restart.py``): it needs a server of its own.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text

from console.adapters.journal_sql import SCHEMA_REVISION, SqlJournal
from console.domain.journal import EventKind
from console.services.journal import JournalService
from tests.fixtures.journal_data import ACTOR
from tests.fixtures.postgres import DB_USER

pytestmark = pytest.mark.integration


@pytest.fixture
def service(postgres_url):
    service = JournalService(SqlJournal(postgres_url), ACTOR)
    yield service
    service.close()


def _admin(port: int) -> psycopg.Connection:
    return psycopg.connect(f"host=127.0.0.1 port={port} user={DB_USER} dbname=postgres", autocommit=True)


def _collect(follower, until_seq: int, timeout: float = 10.0) -> list[int]:
    """Wait on the follower until it holds ``until_seq``; the sequence numbers it returned, in order."""
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while follower.last_seq < until_seq and time.monotonic() < deadline:
        got += [e.seq for e in follower.wait(0.5)]
    return got


def _notified_within(follower, service, incident: str, seconds: float) -> float:
    """Write one note and return how long the follower took to get it (it must, within ``seconds``)."""
    wanted = service.note(incident, "after the catch-up").seq
    started = time.monotonic()
    fresh = follower.wait(seconds)
    took = time.monotonic() - started
    assert [e.seq for e in fresh] == [wanted], f"the follower got {fresh} instead of #{wanted}"
    return took


def test_a_dropped_connection_is_followed_by_a_catch_up_that_loses_nothing(service, postgres_server):
    incident = service.open_incident("m", "2", "follow").incident_id
    follower = service.follower()
    follower.follow(incident)
    assert follower.live
    for number in range(3):
        service.note(incident, f"before {number}")
    assert _collect(follower, 4) == [1, 2, 3, 4]

    with _admin(postgres_server.port) as admin:  # the LISTEN connection is cut, as a proxy or a failover would
        cut = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = 'rewind-watch'").fetchall()
    assert cut == [(True,)]
    for number in range(3):  # written while nobody listens: no notification will ever say so
        service.note(incident, f"while cut {number}")

    assert _collect(follower, 7) == [5, 6, 7]
    assert [e.seq for e in follower.events] == list(range(1, 8))
    assert _notified_within(follower, service, incident, 2.0) < 1.0
    follower.close()


def test_an_older_journal_is_upgraded_on_first_use(postgres_url):
    first = SqlJournal(postgres_url)
    service = JournalService(first, ACTOR)
    incident = service.open_incident("m", "2", "made by revision 1").incident_id
    with first._engine.begin() as conn:  # what a revision-1 Rewind left: no index, no trigger, no revision row
        conn.execute(text("DROP INDEX journal_events_kind"))
        conn.execute(text("DROP TRIGGER journal_incidents_notify ON journal_incidents"))
        conn.execute(text("DELETE FROM journal_meta WHERE key = 'schema_revision'"))
    first.close()

    upgraded = JournalService(SqlJournal(postgres_url), ACTOR)
    follower = upgraded.follower()
    follower.follow(incident)
    assert _collect(follower, 1) == [1]  # first use: upgraded under the write lock
    with upgraded.journal._engine.connect() as conn:  # type: ignore[attr-defined]
        indexes = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'journal_events'")).scalars()
        assert "journal_events_kind" in set(indexes)
        revision = conn.execute(text("SELECT value FROM journal_meta WHERE key = 'schema_revision'")).scalar()
        assert revision == str(SCHEMA_REVISION)
    assert _notified_within(follower, upgraded, incident, 2.0) < 1.0  # the NOTIFY trigger is back
    follower.close()
    upgraded.close()


def _explain(journal: SqlJournal, sql: str, values: dict) -> str:
    with journal._engine.connect() as conn:
        return "\n".join(conn.exec_driver_sql(f"EXPLAIN {sql}", values).scalars())


def test_the_lookups_across_every_incident_use_the_kind_index(postgres_url):
    from sqlalchemy import select

    from console.adapters.journal_sql import _EVENT_COLUMNS, events_table

    database = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" SET synchronous_commit = off')  # 300 incidents, quickly
    service = JournalService(SqlJournal(postgres_url), ACTOR)
    journal = service.journal
    # 300 incidents of 40 events: checks and notes, with an opening and an action or two in each.
    for number in range(300):
        incident = service.open_incident("m", "3", f"incident {number}").incident_id
        service.record_many(incident, [(EventKind.NOTE, {"text": f"n{k}"}) for k in range(38)]
                            + [(EventKind.INCIDENT_CLOSED, {"summary": "done"})])
    with journal._engine.connect() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("ANALYZE journal_events")
        conn.commit()

    # Opened and closed (every incident list); intent and applied (last action, previous champion), which
    # nothing has here: the index either way, never a scan of every event.
    for kinds in ([EventKind.INCIDENT_OPENED, EventKind.INCIDENT_CLOSED],
                  [EventKind.ACTION_INTENT, EventKind.ACTION_APPLIED]):
        query = select(*_EVENT_COLUMNS).where(events_table.c.kind.in_(sorted(str(k) for k in kinds))).order_by(
            events_table.c.incident_id, events_table.c.seq)
        compiled = query.compile(dialect=journal._engine.dialect,  # type: ignore[attr-defined]
                                 compile_kwargs={"render_postcompile": True})
        plan = _explain(journal, compiled.string, compiled.params)  # type: ignore[arg-type]
        print(plan)
        assert "journal_events_kind" in plan and "Seq Scan" not in plan, plan
    service.close()
