"""Journal benchmarks (issue 3): durable appends, export of a 50,000-event incident, verify.

Figures, on SQLite and (with the ``_postgres`` suffix) on a throwaway PostgreSQL
server started the way the test fixture starts it:

- ``journal_appends_per_s``: notes appended one at a time by one process, each in
  its own transaction that returns only after the commit (SQLite: WAL with
  ``synchronous=FULL``; PostgreSQL: default synchronous commit, fsync on).
  Target on SQLite: at least 2,000.
- ``journal_export_50k_{md,json,html}_s``: read a 50,000-event incident from the
  journal, analyse it and write the export to a file, the path
  ``rewind incident export`` takes (without the interpreter's start-up).
  Target: at most 3 s each.
- ``journal_verify_50k_s``: read and verify the chain of that incident, as
  ``rewind journal verify --incident ID`` does. Target: at most 1 s.

Times are the median of three runs. The 50,000-event incident is the synthetic
rollback of ``tests/fixtures/journal_data.py`` (mostly check evaluations with
three metrics, two versions and three segments each, plus decisions, actions,
notes and notifications), imported in one batch before the measurements.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from console.adapters.journal_sql import SqlJournal
from console.services.journal import JournalService
from console.services.timeline import build_view, export
from tests.fixtures.journal_data import ACTOR, synthetic_incident
from tests.fixtures.postgres import create_database, find_postgres_bin, start_postgres, stop_postgres

BIG = 50_000
APPENDS = 3_000
RUNS = 3


def _median_seconds(action: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _measure(url: str, suffix: str, directory: Path) -> Iterator[tuple[str, float, str]]:
    journal = SqlJournal(url)
    service = JournalService(journal, ACTOR)
    try:
        incident = service.open_incident("bench-model", "3", "append benchmark").incident_id
        service.note(incident, "warm-up")
        started = time.perf_counter()
        for number in range(APPENDS):
            service.note(incident, f"note {number}")
        yield f"journal_appends_per_s{suffix}", round(APPENDS / (time.perf_counter() - started)), "appends/s"

        events = synthetic_incident(BIG, f"INC-BENCH{suffix.upper() or '-SQLITE'}")
        service.import_events(events)
        big = events[0].incident_id

        def export_to(fmt: str) -> None:
            view = build_view(*service.chain(big))
            with open(directory / f"export.{fmt}", "w", encoding="utf-8") as out:
                export(view, fmt, out)

        for fmt in ("md", "json", "html"):
            yield f"journal_export_50k_{fmt}_s{suffix}", round(_median_seconds(lambda fmt=fmt: export_to(fmt)), 3), "s"

        def verify() -> None:
            [result] = service.verify(big)
            assert result.ok and result.events == BIG

        yield f"journal_verify_50k_s{suffix}", round(_median_seconds(verify), 3), "s"
    finally:
        service.close()


def figures() -> Iterator[tuple[str, float, str]]:
    """Measure on SQLite, then on PostgreSQL when its server binaries are installed."""
    with tempfile.TemporaryDirectory(prefix="rewind-bench-") as tmp:
        directory = Path(tmp)
        yield from _measure(f"sqlite:///{directory / 'journal.db'}", "", directory)
        bin_dir = find_postgres_bin()
        if bin_dir is None:
            print("bench_journal: PostgreSQL binaries not found, no _postgres figures "
                  "(apt-get install postgresql)", file=sys.stderr)
            return
        server = start_postgres(bin_dir)
        try:
            yield from _measure(create_database(server), "_postgres", directory)
        finally:
            stop_postgres(server)
