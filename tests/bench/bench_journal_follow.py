"""Live timelines on a PostgreSQL journal (issue 18): how fast a console holds another process's event, and the soak.

Figures, on a throwaway PostgreSQL server started the way the test fixture starts it:

- ``journal_event_to_console_ms``: a writer process appends 50 notes, one every 50 ms;
  a follower (the console's follow use case: LISTEN/NOTIFY, then a read of the events
  after the last sequence number held) holds each one this long after its write (from
  the event's timestamp, stamped before the commit, so the commit counts). Median, with
  the min and max in the JSON record. Target: at most 1000.
- ``journal_soak_events_lost``: four writer processes append 100 notes each to one
  incident while three followers follow it; events reported written but not stored,
  plus, per follower, stored events it never got. Target: 0. The JSON record also gives
  the soak's longest lag and whether the chain verified.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator

from console.adapters.journal_sql import SqlJournal
from console.domain.journal import Actor, parse_ts
from console.services.journal import JournalService
from tests.fixtures.journal_soak import run_soak, start_writer
from tests.fixtures.postgres import create_database, find_postgres_bin, start_postgres, stop_postgres

EVENTS = 50
EVERY_S = 0.05


def _event_to_console(url: str) -> tuple[float, dict]:
    service = JournalService(SqlJournal(url), Actor("bench", "host"))
    try:
        incident = service.open_incident("bench-model", "3", "follow benchmark").incident_id
        follower = service.follower()
        follower.follow(incident)
        follower.wait(0.2)  # listening, and holding the opening event
        writer = start_writer(url, incident, EVENTS, EVERY_S)
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
        lags_ms: list[float] = []
        deadline = time.monotonic() + 60
        while follower.last_seq < EVENTS + 1 and time.monotonic() < deadline:
            fresh = follower.wait(1.0)
            now = time.time()
            lags_ms += [(now - parse_ts(event.ts).timestamp()) * 1000 for event in fresh]
        writer.communicate(timeout=30)
        follower.close()
        if len(lags_ms) != EVENTS:
            raise RuntimeError(f"the follower held {len(lags_ms)} of {EVENTS} events")
        return round(statistics.median(lags_ms), 2), {"min": round(min(lags_ms), 2), "max": round(max(lags_ms), 2),
                                                      "events": EVENTS}
    finally:
        service.close()


def figures() -> Iterator[tuple[str, float, str, dict]]:
    """Measure on PostgreSQL (the figures are PostgreSQL's: SQLite has no NOTIFY)."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        print("bench_journal_follow: PostgreSQL binaries not found (apt-get install postgresql)", file=sys.stderr)
        return
    server = start_postgres(bin_dir)
    try:
        median, extra = _event_to_console(create_database(server))
        yield "journal_event_to_console_ms", median, "ms", extra
        soak = run_soak(create_database(server), writers=4, per_writer=100, followers=3, timeout_s=60)
        yield "journal_soak_events_lost", soak.lost, "events", {
            "events": len(soak.stored), "followers": len(soak.followers), "chain_ok": soak.verified.ok,
            "max_lag_ms": round(soak.max_lag_s * 1000, 1), "seconds": round(soak.seconds, 2)}
    finally:
        stop_postgres(server)
