"""How fast the playbook checker answers, on the inputs that could make it slow.

- ``playbook_refusal_ms``: the slowest refusal of a hostile file (10 MB, 10,000 levels deep, a
  100,000-character line, too many values, a FIFO, a directory, a missing file), each
  the median of its runs; the JSON carries every kind's median and minimum. Target: at
  most 1000 (a responder's ``playbook validate`` answers at once).
- ``playbook_misspellings_ms``: a playbook with 1,500 steps each naming an output that
  does not exist, its 3,000 problems found and worded (suggestions included). Target:
  at most 1000.
- ``playbook_validate_ms``: checking a valid shipped playbook, read and parsed. Target:
  at most 50.

In-process timings (the checker's own work, no interpreter start), median of ``RUNS``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from console.adapters.playbook_yaml import load_playbook, read_playbook_text
from console.domain.playbook_check import CheckContext
from console.paths import shipped_dir
from tests.fixtures.hostile_playbooks import HOSTILE, misspelled_playbook

RUNS = 7


def _timed(run: Callable[[], object]) -> list[float]:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def figures() -> Iterator[tuple]:
    context = CheckContext()
    kinds = {}
    with tempfile.TemporaryDirectory(prefix="rewind-bench-playbooks-") as tmp:
        for name, make, _ in HOSTILE:
            path = make(Path(tmp) / f"{name}.yaml")
            times = _timed(lambda path=path: load_playbook(path, context))
            kinds[name] = {"median": round(statistics.median(times), 2), "min": round(min(times), 2)}
    slowest = max(kinds, key=lambda name: kinds[name]["median"])
    yield ("playbook_refusal_ms", kinds[slowest]["median"], "ms", {"slowest": slowest, "kinds": kinds})
    text = misspelled_playbook(1500)
    times = _timed(lambda: read_playbook_text(text, "typos.yaml", context))
    yield ("playbook_misspellings_ms", round(statistics.median(times), 2), "ms", {"min": round(min(times), 2)})
    shipped = sorted(shipped_dir("playbooks").glob("*.yaml"))[0]
    times = _timed(lambda: load_playbook(shipped, context))
    yield ("playbook_validate_ms", round(statistics.median(times), 2), "ms",
           {"min": round(min(times), 2), "playbook": shipped.name})
