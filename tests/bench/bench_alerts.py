"""Issue 17's paging figure.

- ``alert_to_incident_ms``: Alertmanager's POST to ``rewind alerts serve`` → the incident
  journaled. The real command runs as its own process (a bearer token, a SQLite journal
  in WAL with ``synchronous=FULL``, the shipped playbooks, the sandbox's config shape);
  each POST carries one firing alert of a model with no open incident, captured from a
  real Alertmanager 0.25 (tests/fixtures/alerts/firing.json) and given its own model and
  fingerprint, so each opens an incident (``incident.opened`` and the alert's note, both
  committed) with ``version-outage`` suggested by its annotation. The time is the POST's
  round trip, which ends only after the commit. Median of 20 POSTs after one warm-up on a
  fresh journal, with the minimum, the maximum and the warm-up in the JSON, and the same
  again (median, minimum) on a journal that already holds 1,000 incidents (finding the
  model's open incident reads them all); afterwards every incident is checked in the
  journal. Target: at most 200.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

POSTS = 20
HISTORY = 1000
"""The incidents already in the journal of the second measurement (``bench_stats``' synthetic year)."""
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "alerts" / "firing.json"
TOKEN = "bench-alerts-token-7c1d9e"


def _alert(number: int) -> bytes:
    document = json.loads(FIXTURE.read_bytes())
    alert = document["alerts"][0]
    alert["labels"]["model"] = f"bench-model-{number:02d}"
    alert["fingerprint"] = f"{number:016x}"
    for labels in (document["groupLabels"], document["commonLabels"]):
        labels["model"] = alert["labels"]["model"]
    return json.dumps(document).encode()


def _free_port() -> int:
    from console.sandbox.manager import free_port

    return free_port()


def _post_alerts(directory: Path, journal_db: Path) -> list[float]:
    """Serve on ``journal_db``, POST ``POSTS + 1`` alerts each opening an incident; their round trips, in s."""
    from console.adapters.journal_sql import SqlJournal
    from console.sandbox.templates import rewind_config

    config = yaml.safe_load(rewind_config(directory, "fraud-detector", _free_port()))
    config["journal"] = {"url": f"sqlite:///{journal_db}"}
    config["playbooks"] = {"dirs": [str(Path(__file__).resolve().parents[2] / "playbooks")]}
    (directory / "token").write_text(TOKEN)
    (directory / "token").chmod(0o600)
    config["alerts"] = {"token_file": str(directory / "token")}
    (directory / "rewind.yaml").write_text(yaml.safe_dump(config))
    journal = SqlJournal(f"sqlite:///{journal_db}")
    try:
        before = len(journal.incidents())
    finally:
        journal.close()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}
    server = subprocess.Popen([sys.executable, "-m", "console", "--config", str(directory / "rewind.yaml"),
                               "alerts", "serve", "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    times: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rewind alerts serve did not start: "
                                   + (server.stderr.read().decode(errors="replace") if server.stderr else ""))
            time.sleep(0.05)
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                          timeout=10) as client:
            for number in range(POSTS + 1):
                body = _alert(number)
                started = time.perf_counter()
                answer = client.post(f"{url}/alerts", content=body)
                elapsed = time.perf_counter() - started
                outcomes = answer.json().get("alerts", []) if answer.status_code == 200 else []
                if [(o["outcome"], o["playbook"]) for o in outcomes] != [("opened", "version-outage")]:
                    raise RuntimeError(f"POST {number}: HTTP {answer.status_code} {answer.text[:300]}")
                times.append(elapsed)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    journal = SqlJournal(f"sqlite:///{journal_db}")
    try:
        opened = len(journal.incidents()) - before
    finally:
        journal.close()
    if opened != POSTS + 1:
        raise RuntimeError(f"{opened} incidents journaled for {POSTS + 1} POSTs")
    return times


def figures() -> Iterator[tuple]:
    """Time the POSTs on a fresh journal, then on one that holds 1,000 incidents."""
    from tests.bench.bench_stats import build_journal

    with tempfile.TemporaryDirectory(prefix="rewind-bench-alerts-") as tmp:
        fresh = _post_alerts(Path(tmp), Path(tmp) / "journal.db")
    with tempfile.TemporaryDirectory(prefix="rewind-bench-alerts-") as tmp:
        build_journal(Path(tmp) / "journal.db", HISTORY)
        busy = _post_alerts(Path(tmp), Path(tmp) / "journal.db")[1:]
    warm_up, measured = fresh[0], fresh[1:]
    yield "alert_to_incident_ms", round(statistics.median(measured) * 1000, 1), "ms", {
        "min": round(min(measured) * 1000, 1), "max": round(max(measured) * 1000, 1),
        "first_ms": round(warm_up * 1000, 1), "posts": POSTS, "target": 200,
        f"median_with_{HISTORY}_incidents_ms": round(statistics.median(busy) * 1000, 1),
        f"min_with_{HISTORY}_incidents_ms": round(min(busy) * 1000, 1)}
