"""Readiness and drills on a sandbox of their own: ``drill_time_to_verified_s`` and ``ready_wall_ms``.

Drills of ``canary-regression`` (``REWIND_BENCH_DRILLS`` of them, default 3; 20 for the
issue's "n = 20 in rewind stats") each wait for a calm model (the last drill's regression out of the metric window),
inject the regression, wait for the breach, drain
the challenger through the playbook, verify, and put everything back; the figure is each
drill's fault → verified time, as ``rewind stats --drills`` reports it (its ``total``).
Then ``rewind ready`` for the model, as whole processes (artifact loading included), once
the drills made the runbook condition true.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench.sandbox_env import sandbox

ANSWERS = "decide: {option: drain, reason: 'bench drill'}\n"


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "console", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)


def figures() -> list[tuple]:
    drills = int(os.environ.get("REWIND_BENCH_DRILLS", "3"))
    with sandbox(rate=80) as box:
        env = {**os.environ, "REWIND_JOURNAL__URL": f"sqlite:///{box.dir / 'bench-journal.db'}",
               "REWIND_ROLLBACK__VERIFY_WINDOW_S": "5"}
        env.pop("REWIND_CONFIG", None)
        config = str(box.config_path)
        answers = Path(box.dir) / "answers.yaml"
        answers.write_text(ANSWERS)
        time.sleep(20)  # a first minute of traffic in the window: the judge needs counts to see a breach
        for number in range(drills):
            done = _cli("drill", "canary-regression", "--config", config, "--scenario", "regression",
                        "--answers", str(answers), "--yes", env=env)
            if done.returncode != 0:
                raise RuntimeError(f"drill {number + 1} failed: {done.stdout[-800:]} {done.stderr[-800:]}")
        stats = json.loads(_cli("stats", "--drills", "--json", "--config", config, env=env).stdout)
        totals = sorted(i["phases"]["total"] for i in stats["incidents"] if i["phases"].get("total") is not None)
        walls = []
        for _ in range(5):
            started = time.perf_counter()
            ready = _cli("ready", "--config", config, env=env)
            walls.append((time.perf_counter() - started) * 1000)
            if ready.returncode != 0:
                raise RuntimeError(f"rewind ready said {ready.returncode}: {ready.stdout[-1500:]}")
    return [
        ("drill_time_to_verified_s", round(statistics.median(totals), 1), "s",
         {"min": round(totals[0], 1), "max": round(totals[-1], 1), "n": len(totals), "values": totals,
          "stats_n": stats["by_model"][0]["phases"]["total"]["n"] if stats["by_model"] else 0}),
        ("ready_wall_ms", round(statistics.median(walls)), "ms", {"min": round(min(walls)), "runs": len(walls)}),
    ]
