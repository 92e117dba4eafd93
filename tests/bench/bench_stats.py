"""Issue 17's speed-to-rollback figure.

- ``stats_wall_ms``: wall time of the whole ``rewind stats --json`` process (interpreter
  start, imports, config, reading and verifying every chain, summarising, printing)
  over a SQLite journal of 1,000 incidents opened over the last 120 days: 10-22
  events each, as the services journal them (evidence, decision, intent, applied,
  verified, notes; a third through a playbook run, some opened by an alert
  receiver), one in ten a drill, one in twenty-five still open. Median of 7 runs
  after one warm-up run, with the minimum and maximum in the JSON. Target: at most
  1000.

The journal is built once, in a temporary directory, before the runs.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

INCIDENTS = 1000
RUNS = 7
DAYS = 120
MODELS = ("fraud-detector", "churn-model", "ranker")
PLAYBOOKS = ("canary-regression", "version-outage")


def build_journal(path: Path, incidents: int = INCIDENTS, now: float | None = None) -> dict[str, int]:
    """Write ``incidents`` synthetic incidents into a SQLite journal at ``path``; how many of each sort."""
    from console.adapters.journal_sql import SqlJournal
    from tests.fixtures.recovery_data import Timing, rollback_incident

    rng = random.Random(17)
    now = time.time() if now is None else now
    journal = SqlJournal(f"sqlite:///{path}")
    sorts = {"drills": 0, "open": 0, "events": 0}
    try:
        for number in range(incidents):
            drill = number % 10 == 0
            still_open = number % 25 == 3
            breach = rng.uniform(5, 240)
            decide = breach + rng.lognormvariate(3.5, 0.8)
            intent = decide + rng.uniform(0.5, 5)
            applied = intent + rng.lognormvariate(0.3, 0.6)
            verified = None if still_open else applied + rng.uniform(10, 120)
            timing = Timing(impact_before=rng.choice((None, rng.uniform(30, 900))), breach=breach, decide=decide,
                            intent=intent, applied=applied, verified=verified,
                            closed=None if still_open else verified + rng.uniform(60, 3600),
                            ack=rng.uniform(20, 180), checks=rng.randint(2, 8))
            events = rollback_incident(f"INC-BENCH-{number:05d}", now - rng.uniform(0, DAYS * 86400), timing,
                                       model=MODELS[number % len(MODELS)],
                                       playbook=PLAYBOOKS[number % 2] if number % 3 == 0 or drill else None,
                                       drill=drill, automated=number % 4 == 1, action_id=f"act-{number:08x}")
            journal.import_incident(events)
            sorts["drills"] += drill
            sorts["open"] += still_open
            sorts["events"] += len(events)
    finally:
        journal.close()
    return sorts


def figures() -> Iterator[tuple]:
    """Build the journal, then time ``rewind stats --json`` as a whole process."""
    with tempfile.TemporaryDirectory(prefix="rewind-bench-stats-") as tmp:
        directory = Path(tmp)
        sorts = build_journal(directory / "journal.db")
        config = directory / "rewind.yaml"
        config.write_text(f"journal:\n  url: sqlite:///{directory / 'journal.db'}\n", encoding="utf-8")
        env = {key: value for key, value in os.environ.items() if not key.startswith("REWIND_")}
        env["REWIND_CONFIG"] = str(config)
        command = [sys.executable, "-m", "console", "stats", "--since", f"{DAYS + 1}d", "--json"]
        times = []
        for run in range(RUNS + 1):  # the first warms the disk cache and the bytecode
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=env, timeout=60, check=False)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"rewind stats failed: {done.stderr.decode(errors='replace')}")
            document = json.loads(done.stdout)
            counted = document["counts"]["incidents"] + document["counts"]["kept_apart"]
            if counted != INCIDENTS or document["counts"]["left_out"]:
                raise RuntimeError(f"rewind stats counted {counted} incidents of {INCIDENTS}: {document['counts']}")
            if run:
                times.append(elapsed)
    yield "stats_wall_ms", round(statistics.median(times) * 1000, 1), "ms", {
        "min": round(min(times) * 1000, 1), "max": round(max(times) * 1000, 1), "incidents": INCIDENTS,
        "events": sorts["events"], "drills": sorts["drills"], "open": sorts["open"], "runs": RUNS}
