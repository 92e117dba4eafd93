"""The traffic generator: a steady rate of labelled requests spread over the segments.

Each request carries the raw transaction (``amount_cents`` and the other fields), which
the model servers turn into the model's inputs through Feast; the label follows the true,
standardised values the transaction was drawn from.

Sends through HAProxy on loopback only, from a few keep-alive connections,
paced to a fixed rate; it stops by itself after ``--max-seconds`` (and when
the state directory disappears), so a forgotten sandbox does not run forever.

Run as ``python -m console.sandbox.traffic --state-dir D --url http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from console.sandbox.features import amount_cents
from console.sandbox.scenarios import SEGMENTS, ScenarioWatcher, random_features, true_label

WORKERS = 8  # keep-alive connections, each with at most one request in flight


def raw_transaction(features: dict[str, float]) -> dict[str, float | int]:
    """The raw transaction behind standardised features: the amount in cents, the other fields as they are."""
    raw: dict[str, float | int] = {name: value for name, value in features.items() if name != "amount"}
    return {"amount_cents": amount_cents(features["amount"]), **raw}


class Pacer:
    """Hands out send times at a fixed rate to any number of workers."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()
        self.lock = threading.Lock()

    def wait_turn(self) -> None:
        """Sleep until this caller's slot; a late caller skips missed slots instead of bursting."""
        with self.lock:
            now = time.monotonic()
            self.next_at = max(self.next_at + self.interval, now - self.interval)
            slot = self.next_at
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)


MODEL_HEADER = "X-Rewind-Model"
"""The request header HAProxy's frontend routes a fleet's further models by (no header: the first model)."""


def worker(host: str, port: int, pacer: Pacer, scenario: ScenarioWatcher, stop: threading.Event,
           counts: dict[str, int], seed: int, models: tuple[str, ...] = ()) -> None:
    """Send paced requests on one keep-alive connection until ``stop`` is set.

    With ``models`` (a fleet), each request goes to one of them at random, named in :data:`MODEL_HEADER`;
    the scenario's drift reaches the first model's labels only, as every other scenario does.
    """
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(host, port, timeout=5)
    while not stop.is_set():
        pacer.wait_turn()
        segment = rng.choice(SEGMENTS)
        features = random_features(rng)
        model = rng.choice(models) if models else None
        first = model is None or model == models[0]
        label = true_label(features, first and scenario.get().drifting(segment), rng)
        body = json.dumps({"segment": segment, "transaction": raw_transaction(features), "label": label})
        headers = {"Content-Type": "application/json", **({MODEL_HEADER: model} if model and not first else {})}
        try:
            conn.request("POST", "/predict", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            counts["ok" if response.status == 200 else "error"] += 1
        except (OSError, http.client.HTTPException):
            counts["failed"] += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
            stop.wait(0.2)
    conn.close()


def main(argv: list[str] | None = None) -> None:
    """Generate traffic until terminated or ``--max-seconds`` pass."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--url", required=True, help="the router's frontend, on loopback")
    parser.add_argument("--rate", type=float, default=60.0, help="requests per second")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--max-seconds", type=float, default=6 * 3600)
    parser.add_argument("--models", default="", help="a fleet's models, comma-separated, the first one first")
    args = parser.parse_args(argv)
    target = urlsplit(args.url)
    if target.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("traffic: the sandbox only sends traffic to loopback")
    pacer = Pacer(args.rate)
    scenario = ScenarioWatcher(args.state_dir)
    stop = threading.Event()
    counts = {"ok": 0, "error": 0, "failed": 0}
    threads = [
        threading.Thread(target=worker, daemon=True,
                         args=(target.hostname, target.port, pacer, scenario, stop, counts, seed,
                               tuple(m for m in args.models.split(",") if m)))
        for seed in range(args.workers)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + args.max_seconds
    try:
        while time.monotonic() < deadline and args.state_dir.exists():
            time.sleep(5)
            print(f"traffic: {counts}", flush=True)
    except KeyboardInterrupt:
        pass
    stop.set()


if __name__ == "__main__":
    main()
