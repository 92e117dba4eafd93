"""Issue 15's fallback figures: what a client sees when the champion cannot answer and the backup takes over.

One sandbox of its own (stopped at the end, even on failure), its own traffic cut to 0.5 req/s; the bench's
client sends the sandbox's rate (80 req/s, open loop, keep-alive, sandbox-like requests; tests/bench/
bench_shadow.py's ``Load``) through the frontend the whole time and records every answer: its status and
the version that gave it. v3's weight is set to 0 first, so the champion v2 is the only primary serving and
HAProxy's backup server ``fallback`` (the version of the registry alias ``fallback``) takes over when v2 is out.
The scenario switch is the moment ``scenario.json`` is written (its ``since``); the servers read it within 0.5 s.

- ``fallback_failed_requests``: with ``broken-predictions`` (v2 answers 500 to every prediction while its
  /health stays 200), the non-2xx answers (and failed connections) the client saw from the switch until the
  fallback answered, and for 60 s after. Target 5.
- ``fallback_engage_ms``: the switch to the first answer from the fallback (the client's read of it). The time
  from the first failed answer rides along. Target 1000.
- ``fallback_flaps_60s``: in those 60 s, how often v2 went back UP (HAProxy's ``show stat``, polled every
  0.1 s; its ``chkdown`` count rides along), the fallback server left UP, or the client got a run of answers
  that were not the fallback's. Target 0.
- ``champion_down_failed_requests``: the same count with ``champion-down`` (v2's server killed with SIGKILL),
  up to 20 s after the fallback answered (nothing changes later: the server stays dead). Target 0.

Each scenario runs several times (3 each; 1 with ``REWIND_BENCH_QUICK=1``, with a 15 s window), back to the
healthy scenario and v2 UP between runs; a figure is the median of its runs, with the minimum and maximum.
Alone: ``python -m tests.bench.bench_fallback [--quick]``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field

from tests.bench.bench_shadow import CHAMPION, QUIET_RATE, SANDBOX_RATE, SHADOW, Admin, Load, quick
from tests.bench.sandbox_env import sandbox

ENGAGE_TIMEOUT_S = 20.0
POLL_S = 0.1


@dataclass
class Trial:
    """One scenario switch as the client and HAProxy saw it."""

    scenario: str
    failed: int = 0
    engage_ms: float | None = None  # None: the fallback never answered within ENGAGE_TIMEOUT_S
    engage_after_first_error_ms: float | None = None
    flaps: int = 0
    detail: dict[str, object] = field(default_factory=dict)


def _wait_healthy(admin: Admin, load: Load, timeout: float = 60.0) -> None:
    """Until v2 is UP in HAProxy and the client's last 2 s of answers are all v2's, with 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.time()
        recent = [a for a in load.answers[-400:] if a.sent >= now - 2.0]
        if (admin.stat().get(f"v{CHAMPION}", {}).get("status") == "UP" and len(recent) > 50
                and all(a.status == 200 and a.version == CHAMPION for a in recent)):
            return
        time.sleep(0.2)
    raise RuntimeError(f"v{CHAMPION} did not serve healthily again within {timeout:g}s")


def _trial(box, admin: Admin, load: Load, scenario: str, fallback: str, window_s: float) -> Trial:
    """Switch to ``scenario``, follow the client's answers and HAProxy's states until ``window_s`` after engagement."""
    trial = Trial(scenario)
    seen = len(load.answers)
    polls: list[tuple[float, str, str, int]] = []  # (time, v2 status, fallback status, v2 chkdown)
    counters = ("hrsp_5xx", "eresp", "econ", "wretr", "wredis", "srv_abrt", "cli_abrt")
    before = admin.stat().get(f"v{CHAMPION}", {})
    t0 = float(box.set_scenario(scenario, CHAMPION)["since"])
    engaged_at: float | None = None
    end = t0 + ENGAGE_TIMEOUT_S
    while time.time() < end:
        rows = admin.stat()
        champion, backup = rows.get(f"v{CHAMPION}", {}), rows.get("fallback", {})
        polls.append((time.time(), champion.get("status", ""), backup.get("status", ""),
                      int(champion.get("chkdown") or 0)))
        if engaged_at is None:
            first = next((a for a in load.answers[seen:] if a.done >= t0 and a.version == fallback), None)
            if first is not None:
                engaged_at = first.done
                end = engaged_at + window_s
        time.sleep(POLL_S)
    after_stat = admin.stat().get(f"v{CHAMPION}", {})
    # HAProxy's own count of v2's 5xx answers, errors, retries, redispatches and aborts over the trial.
    trial.detail["haproxy_v2"] = {k: int(after_stat.get(k) or 0) - int(before.get(k) or 0) for k in counters}
    answers = [a for a in load.answers[seen:] if a.done >= t0 and a.sent <= end]
    failures = [a for a in answers if a.status != 200]
    trial.failed = len(failures)
    statuses: dict[str, int] = {}
    for a in failures:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    # The first failures, seconds from the switch to when each was sent and answered, and what it was.
    first = [(round(a.sent - t0, 3), round(a.done - t0, 3), a.status or a.version)
             for a in sorted(failures, key=lambda a: a.done)[:10]]
    trial.detail.update(answers=len(answers), failed_by_status=statuses, window_s=window_s, first_failures=first)
    if engaged_at is None:
        trial.detail["engaged"] = False
        return trial
    trial.engage_ms = round((engaged_at - t0) * 1000, 1)
    if failures:
        trial.engage_after_first_error_ms = round((engaged_at - min(a.done for a in failures)) * 1000, 1)
    # Flaps after engagement: v2 back UP, the fallback leaving UP, or a run of answers not from the fallback.
    after = [p for p in polls if p[0] >= engaged_at]
    back_up = sum(1 for a, b in zip(after, after[1:], strict=False)
                  if not a[1].startswith("UP") and b[1].startswith("UP"))
    backup_out = sum(1 for a, b in zip(after, after[1:], strict=False)
                     if a[2].startswith("UP") and not b[2].startswith("UP"))
    served = [a for a in sorted(answers, key=lambda a: a.done) if a.done > engaged_at]
    other_runs = sum(1 for a, b in zip(served, served[1:], strict=False)
                     if a.version == fallback and b.version != fallback)
    trial.flaps = back_up + backup_out + other_runs
    trial.detail.update(champion_back_up=back_up, fallback_left_up=backup_out, non_fallback_runs=other_runs,
                        chkdown=(after[-1][3] - polls[0][3]) if after else None,
                        champion_status_at_end=after[-1][1] if after else None)
    return trial


def run(trials: int, window_s: float, down_window_s: float) -> tuple[list[Trial], list[Trial]]:
    """The broken-predictions and champion-down runs on one sandbox, the client sending throughout."""
    with sandbox(QUIET_RATE) as box:
        admin = Admin(box)
        admin.set_weight(SHADOW, 0)  # the backup serves only when no primary with weight > 0 is up
        state = box.load_state()
        fallback = str(state["fallback_version"])
        broken, down = [], []
        with Load(state["ports"]["frontend"], SANDBOX_RATE, 16) as load:
            for name, window, results in (("broken-predictions", window_s, broken),
                                          ("champion-down", down_window_s, down)):
                for _ in range(trials):
                    _wait_healthy(admin, load)
                    results.append(_trial(box, admin, load, name, fallback, window))
                    box.set_scenario("healthy")  # starts a killed server again and waits until it answers
            _wait_healthy(admin, load)
    return broken, down


def _summary(values: list[float | None], missing: float) -> tuple[float, dict[str, object]]:
    """The median of the runs (a run with no value counts as ``missing``), with the minimum, maximum and runs."""
    filled = [missing if v is None else v for v in values]
    return statistics.median(filled), {"min": min(filled), "max": max(filled), "runs": values}


def figures():
    """Yield issue 15's fallback figures."""
    short = quick()
    broken, down = run(1 if short else 3, 15.0 if short else 60.0, 10.0 if short else 20.0)
    value, extra = _summary([t.failed for t in broken], 0)
    yield "fallback_failed_requests", value, "requests", extra | {"detail": [t.detail for t in broken]}
    value, extra = _summary([t.engage_ms for t in broken], ENGAGE_TIMEOUT_S * 1000)
    after_error = [t.engage_after_first_error_ms for t in broken if t.engage_after_first_error_ms is not None]
    yield "fallback_engage_ms", value, "ms", extra | {"after_first_error_ms": after_error}
    value, extra = _summary([t.flaps for t in broken], 0)
    yield "fallback_flaps_60s", value, "flaps", extra
    value, extra = _summary([t.failed for t in down], 0)
    yield "champion_down_failed_requests", value, "requests", extra | {
        "engage_ms": [t.engage_ms for t in down], "detail": [t.detail for t in down]}


def main(argv: list[str]) -> int:
    """Run the fallback figures alone and print them with their extras."""
    if "--quick" in argv:
        os.environ["REWIND_BENCH_QUICK"] = "1"
    for figure, value, unit, extra in figures():
        print(f"{figure} {value:g} {unit} {json.dumps(extra)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
