"""Readiness, drills and paging on a sandbox of their own: ``drill_time_to_verified_s``, ``ready_wall_ms`` and
``alert_page_to_playbook_s``.

Drills of ``canary-regression`` (``REWIND_BENCH_DRILLS`` of them, default 3; 20 for the
issue's "n = 20 in rewind stats") each wait for a calm model (the last drill's regression out of the metric window),
inject the regression, wait for the breach, drain
the challenger through the playbook, verify, and put everything back; the figure is each
drill's fault → verified time, as ``rewind stats --drills`` reports it (its ``total``).
Then ``rewind ready`` for the model, as whole processes (artifact loading included), once
the drills made the runbook condition true. Last, the sandbox's ``outage`` with ``rewind alerts serve``
listening where its Alertmanager posts: the switch → the incident journaled with ``version-outage``
suggested (the rule's ``for`` is 30 s; the target is ``for`` + 10 s).
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
        time.sleep(20)  # some traffic in the window first: the judge needs counts to see a breach
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
        paged_s = _page(box, env)
    return [
        ("alert_page_to_playbook_s", round(paged_s, 1), "s", {"rule_for_s": 30}),
        ("drill_time_to_verified_s", round(statistics.median(totals), 1), "s",
         {"min": round(totals[0], 1), "max": round(totals[-1], 1), "n": len(totals), "values": totals,
          "stats_n": stats["by_model"][0]["phases"]["total"]["n"] if stats["by_model"] else 0}),
        ("ready_wall_ms", round(statistics.median(walls)), "ms", {"min": round(min(walls)), "runs": len(walls)}),
    ]


def _page(box, env: dict[str, str]) -> float:
    """Seconds from the switch to ``outage`` until the alert is journaled with ``version-outage`` suggested."""
    from console.adapters.journal_sql import SqlJournal
    from console.domain.journal import EventKind

    port = box.load_state()["ports"]["alerts"]
    journal_url = f"sqlite:///{box.dir / 'paging-journal.db'}"
    serving = subprocess.Popen([sys.executable, "-m", "console", "--config", str(box.config_path), "alerts", "serve",
                                "--listen", f"127.0.0.1:{port}"], env={**env, "REWIND_JOURNAL__URL": journal_url},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}/healthz"):
            if time.monotonic() > deadline or serving.poll() is not None:
                raise RuntimeError("rewind alerts serve did not start")
            time.sleep(0.2)
        started = time.monotonic()
        box.set_scenario("outage")
        while time.monotonic() - started < 120:
            journal = SqlJournal(journal_url)
            try:
                suggested = [e for head in journal.incidents() for e in journal.events(head.incident_id,
                                                                                        [EventKind.NOTE])
                             if (e.payload.get("alert") or {}).get("suggestion", {}).get("playbook")
                             == "version-outage"]
            finally:
                journal.close()
            if suggested:
                return time.monotonic() - started
            time.sleep(0.5)
        raise RuntimeError("the outage was not paged within 120 s")
    finally:
        box.set_scenario("healthy")
        serving.terminate()
        serving.wait(timeout=10)


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
