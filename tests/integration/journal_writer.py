"""A child process that appends notes to a journal, for the concurrency and kill -9 tests (not a test module).

Usage: ``python -m tests.integration.journal_writer URL INCIDENT COUNT [--hold] [--pause] [--every SECONDS]``

Waits for a line on standard input (so several writers start together), then
appends COUNT notes one by one, each in its own durable transaction, printing
``written SEQ HASH`` after each commit. With ``--pause`` it rests up to 2 ms
after every other append, and after every tenth append it waits (up to 1 s)
until some other writer has appended since: SQLite's busy handler backs off
for up to tens of milliseconds, so a writer that never lets go of the database
would starve the other one and the two would run one after the other instead
of side by side (random pauses alone left too few switches now and then).
With ``--hold`` it waits to be killed after the last append. With ``--every`` it
rests that long after each append (a steady writer, for the follow soak).
"""

from __future__ import annotations

import os
import random
import sys
import time


def main(argv: list[str]) -> int:
    """Append the notes; see the module docstring."""
    from console.adapters.journal_sql import SqlJournal
    from console.domain.journal import Actor
    from console.services.journal import JournalService

    url, incident, count = argv[0], argv[1], int(argv[2])
    hold = "--hold" in argv
    pause = "--pause" in argv
    every = float(argv[argv.index("--every") + 1]) if "--every" in argv else 0.0
    service = JournalService(SqlJournal(url), Actor(f"writer-{os.getpid()}", "test"))
    service.journal.incidents()  # connect and check the tables before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    for number in range(count):
        event = service.note(incident, f"note {number} from {os.getpid()}")
        print(f"written {event.seq} {event.hash}", flush=True)
        if pause and number % 2:
            time.sleep(random.uniform(0.0, 0.002))
        if pause and number % 10 == 9:
            _wait_for_another_writer(service, incident, event.seq)
        if every:
            time.sleep(every)
    if hold:
        while True:
            time.sleep(60)
    return 0


def _wait_for_another_writer(service, incident: str, own_seq: int) -> None:  # noqa: ANN001
    """Wait until the incident's head is past ``own_seq`` (someone else appended), for at most 1 s."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        if any(head.incident_id == incident and head.seq > own_seq for head in service.journal.incidents()):
            return
        time.sleep(0.001)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
