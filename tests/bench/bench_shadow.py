"""Issue 15's shadow figures: what the HAProxy mirror costs the champion, and how much of its traffic it copies.

Each measurement starts a sandbox of its own in a temporary directory and stops it (and only it) at the end.
The shadow is v3 behind the champion v2, mirrored at 100 % through the runtime map ``shadow.map`` (an entry
``<backend> "<shadow server> <baseline server> <percent>"``, added and deleted over the admin socket). v3's
weight is set to 0 first: a shadow is silent, so every answer the client times is the champion's.

- ``shadow_mirror_overhead_p50_ms`` / ``shadow_mirror_overhead_p95_ms``: the champion's client-side latency
  with the mirror on minus off. The bench's own open-loop client (keep-alive connections through the frontend,
  sandbox-like requests; the sandbox's own traffic is cut to 0.5 req/s) sends at the sandbox's rate (80 req/s)
  and at 500 req/s; the mirror is toggled in blocks, ordered ABBA so a drift of the machine's load falls on
  both arms alike. A pair of blocks gives one difference; the figure is the median difference at the worse
  rate, with the minimum and each rate's numbers alongside. Targets 1.0 and 2.0 ms.
- ``shadow_slow_champion_p95_delta_ms``: the same with the scenario ``shadow-slow`` on v3 (0.5 s per
  prediction, so copies pile up against HAProxy's cap of 16 in flight and are shed): the champion's p95
  with the slow shadow mirrored minus without. Target 2 ms.
- ``shadow_coverage``: over 5 minutes of the sandbox's own traffic (80 req/s), the copies the shadow
  received (``rewind_shadow_requests_total`` of v3 with baseline 2, every outcome) over the requests the
  champion answered ok (``rewind_requests_total{outcome="ok"}`` of v2), both read from the servers'
  own /metrics. The minimum and median over 30 s windows ride along. Target 0.99.

Knobs (environment): ``REWIND_BENCH_QUICK=1`` shortens everything for a smoke run (coverage over 60 s,
fewer and shorter blocks); ``REWIND_BENCH_CHECK_DELAY_MS=N`` adds N ms inside the timed region of every
request sent with the mirror on, to check that the overhead figures move (a self-check; never set in a
real run; on a loaded machine the sleep itself overshoots by the scheduler's delay, so they move by more).
``REWIND_BENCH_MIRROR_PERCENT=P`` mirrors P % instead of 100 (coverage should follow).

One measurement alone: ``python -m tests.bench.bench_shadow overhead|slow|coverage [--quick]``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import socket
import statistics
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from tests.bench.sandbox_env import sandbox

MODEL = "fraud-detector"
CHAMPION, SHADOW = "2", "3"
SANDBOX_RATE = 80.0  # the healthy sandbox's request rate
HIGH_RATE = 500.0
QUIET_RATE = 0.5  # the sandbox's own traffic while the bench's client is the load
SETTLE_S = 1.0  # answers sent this long after a toggle are not counted (copies of the last block in flight)


def quick() -> bool:
    """Whether a shortened smoke run was asked for (``REWIND_BENCH_QUICK=1``)."""
    return os.environ.get("REWIND_BENCH_QUICK", "") not in ("", "0")


# -- the sandbox's router ----------------------------------------------------------------------------
class Admin:
    """HAProxy's Runtime API on the sandbox's admin socket: the raw commands, read back where it matters.

    The bench speaks the protocol itself rather than through Rewind's adapter, so what it measures
    is HAProxy and the sandbox, whatever state the adapter is in.
    """

    def __init__(self, box) -> None:
        from console.sandbox.templates import backend_name, shadow_map_path

        self.socket = str(box.dir / "haproxy.sock")
        self.backend = backend_name(MODEL)
        self.map = str(shadow_map_path(box.dir))

    def command(self, line: str) -> str:
        """One command line; HAProxy's whole answer."""
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(self.socket)
            conn.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def set_weight(self, version: str, weight: int) -> None:
        """Set one version's weight and check it took."""
        self.command(f"set weight {self.backend}/v{version} {weight}")
        answer = self.command(f"get weight {self.backend}/v{version}")
        if not answer.startswith(f"{weight} "):
            raise RuntimeError(f"HAProxy did not take weight {weight} for v{version}: {answer.strip()}")

    def mirror(self, on: bool, percent: int = 100) -> None:
        """Put the map entry (shadow v3 of baseline v2) in place or remove it, and read the map back."""
        commands = [f"del map {self.map} {self.backend}"]
        if on:
            commands.append(f"add map {self.map} {self.backend} v{SHADOW}\\ v{CHAMPION}\\ {percent}")
        self.command("; ".join(commands))
        entries = [line for line in self.command(f"show map {self.map}").splitlines() if line.startswith("0x")]
        wanted = [f"{self.backend} v{SHADOW} v{CHAMPION} {percent}"] if on else []
        if [line.split(" ", 1)[1] for line in entries] != wanted:
            raise RuntimeError(f"the mirror map reads {entries}, not {wanted}")

    def stat(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the model's backend: server name -> its fields."""
        lines = self.command(f"show stat {self.backend} 4 -1").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise RuntimeError(f"unexpected answer to show stat: {' '.join(lines)[:120]}")
        header = lines[0][2:].split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line.strip()]
        return {row["svname"]: row for row in rows if row.get("pxname") == self.backend}


def scrape(port: int) -> dict[str, float]:
    """A model server's /metrics as ``name{labels}`` -> value (the exposition's own text of each sample)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # noqa: S310 - loopback
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(value for key, value in samples.items()
               if key.split("{", 1)[0] == name and all(w in key for w in wanted))


# -- the bench's own load generator ------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One request as the client saw it."""

    tag: object  # the block it was sent in (``None``: not counted)
    sent: float  # time.time() when it was sent
    done: float  # time.time() when its answer was read
    seconds: float  # latency (perf_counter)
    status: int  # HTTP status, 0 when the connection failed
    version: str | None  # the version that answered ("version" in the JSON), the answer's "source", or the error


class Load:
    """An open-loop client on keep-alive connections: each thread sends on its own fixed schedule.

    Thread i of n sends at ``start + (i + k n) / rate``; a thread held up by a slow answer sends at once
    and skips the slots it missed rather than bursting, so the rate stays bounded. Requests look like the
    sandbox's traffic (a random segment, four features, the label).
    """

    def __init__(self, port: int, rate: float, threads: int, check_delay_ms: float = 0.0) -> None:
        self.port = port
        self.rate = rate
        self.threads = threads
        self.tag: object = None
        self.delayed: set[object] = set()  # tags whose requests get the self-check's artificial delay
        self.check_delay_s = check_delay_ms / 1000
        self.answers: list[Answer] = []
        self.late = 0  # requests sent more than 10 ms after their slot (the client could not keep up)
        self._late_lock = threading.Lock()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> Load:
        start = time.perf_counter() + 0.05
        self._workers = [threading.Thread(target=self._run, args=(i, start), daemon=True, name=f"load-{i}")
                         for i in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(10)

    def _run(self, index: int, start: float) -> None:
        from console.sandbox.scenarios import SEGMENTS, random_features, true_label

        rng = random.Random(index)
        interval = self.threads / self.rate
        slot = start + index / self.rate
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self._stop.is_set():
            now = time.perf_counter()
            if slot > now:
                time.sleep(slot - now)
            elif now - slot > 0.01:
                with self._late_lock:
                    self.late += 1
                slot += (now - slot) // interval * interval  # skip the missed slots
            slot += interval
            features = random_features(rng)
            body = json.dumps({"segment": rng.choice(SEGMENTS), "features": features,
                               "label": true_label(features, False, rng)})
            tag, sent = self.tag, time.time()
            began = time.perf_counter()
            status, version = 0, None
            try:
                conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                status = response.status
                if tag is not None and tag in self.delayed:
                    time.sleep(self.check_delay_s)
            except (OSError, http.client.HTTPException) as exc:
                version = f"error:{type(exc).__name__}"  # what broke, for the failures' detail
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            seconds = time.perf_counter() - began
            if status == 200:
                with contextlib.suppress(ValueError, AttributeError):
                    answer = json.loads(data)
                    version = str(answer.get("version") or answer.get("source"))
            self.answers.append(Answer(tag, sent, time.time(), seconds, status, version))
        conn.close()


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0..100) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# -- mirror on against off -----------------------------------------------------------------------------
def _blocks(admin: Admin, load: Load, pairs: int, block_s: float, percent: int) -> None:
    """Toggle the mirror in ABBA order: pair p's blocks are tagged ``("on"|"off", p)``."""
    for pair in range(pairs):
        for on in ((True, False) if pair % 2 == 0 else (False, True)):
            load.tag = ("settle", on)  # sent with the mirror on (or off), but not timed
            admin.mirror(on, percent)
            time.sleep(SETTLE_S)
            load.tag = ("on" if on else "off", pair)
            time.sleep(block_s)
    load.tag = None


def _differences(answers: list[Answer], pairs: int) -> dict[str, object]:
    """Per pair: the champion's p50 and p95 with the mirror on minus off; their median and minimum."""
    by_tag: dict[object, list[float]] = {}
    for answer in answers:
        if answer.tag is not None and answer.status == 200 and answer.version == CHAMPION:
            by_tag.setdefault(answer.tag, []).append(answer.seconds * 1000)
    result: dict[str, object] = {}
    for q in (50, 95):
        deltas, on_ms, off_ms = [], [], []
        for pair in range(pairs):
            on, off = by_tag.get(("on", pair), []), by_tag.get(("off", pair), [])
            if len(on) < 20 or len(off) < 20:
                raise RuntimeError(f"pair {pair}: too few champion answers ({len(on)} on, {len(off)} off)")
            on_ms.append(percentile(on, q))
            off_ms.append(percentile(off, q))
            deltas.append(on_ms[-1] - off_ms[-1])
        result[f"p{q}"] = {"median": round(statistics.median(deltas), 3), "min": round(min(deltas), 3),
                           "max": round(max(deltas), 3), "on_ms": round(statistics.median(on_ms), 3),
                           "off_ms": round(statistics.median(off_ms), 3)}
    result["answers"] = sum(len(v) for tag, v in by_tag.items() if tag[0] in ("on", "off"))
    return result


def mirror_on_off(scenario: str | None) -> dict[float, dict[str, object]]:
    """The champion's latency, mirror on against off, at the sandbox's rate and at 500 req/s."""
    check_delay = float(os.environ.get("REWIND_BENCH_CHECK_DELAY_MS") or 0)
    plan = {SANDBOX_RATE: (2, 8.0), HIGH_RATE: (2, 4.0)} if quick() else {SANDBOX_RATE: (6, 15.0),
                                                                         HIGH_RATE: (6, 6.0)}
    results: dict[float, dict[str, object]] = {}
    with sandbox(QUIET_RATE) as box:
        admin = Admin(box)
        admin.set_weight(SHADOW, 0)
        if scenario:
            box.set_scenario(scenario, SHADOW)
        port = box.load_state()["ports"]["frontend"]
        for rate, (pairs, block_s) in plan.items():
            threads = 16 if rate <= SANDBOX_RATE else 32
            copies_before = total(scrape(box.load_state()["ports"]["models"][SHADOW]),
                                  "rewind_shadow_requests_total", version=SHADOW, baseline=CHAMPION)
            with Load(port, rate, threads, check_delay) as load:
                load.delayed = {("on", pair) for pair in range(pairs)} if check_delay else set()
                time.sleep(2.0)  # connections open, servers warm
                started = time.perf_counter()
                _blocks(admin, load, pairs, block_s, 100)
                elapsed = time.perf_counter() - started
            admin.mirror(False)
            result = _differences(load.answers, pairs)
            sent = sum(1 for a in load.answers if a.tag is not None)
            result.update(rate=rate, achieved_rate=round(sent / elapsed, 1),
                          late=load.late, failed=sum(1 for a in load.answers if a.status != 200))
            # Copies the shadow took against the champion's answers in the mirrored blocks: below 1 where
            # HAProxy shed copies at its cap of 16 in flight (the last copies have a second to arrive).
            time.sleep(1.2)
            received = total(scrape(box.load_state()["ports"]["models"][SHADOW]),
                             "rewind_shadow_requests_total", version=SHADOW, baseline=CHAMPION)
            mirrored = {("settle", True)} | {("on", pair) for pair in range(pairs)}
            on = sum(1 for a in load.answers if a.tag in mirrored and a.version == CHAMPION)
            result["copies_per_mirrored_answer"] = round((received - copies_before) / max(on, 1), 3)
            results[rate] = result
    return results


def _worst(results: dict[float, dict[str, object]], q: int) -> tuple[float, dict[str, object]]:
    """The rate whose median difference at ``q`` is the larger: its median, and the extras for the record."""
    rate = max(results, key=lambda r: results[r][f"p{q}"]["median"])
    chosen = results[rate][f"p{q}"]
    splits = {f"at_{r:g}_req_s": {**results[r][f"p{q}"],
                                   **{k: v for k, v in results[r].items() if not k.startswith("p")}}
              for r in results}
    return chosen["median"], {"min": chosen["min"], "worst_rate": rate, "splits": splits}


# -- coverage ----------------------------------------------------------------------------------------
def coverage(seconds: float, window_s: float = 30.0) -> tuple[float, dict[str, object]]:
    """Copies the shadow received over the champion's ok answers, from the servers' own counters."""
    percent = int(os.environ.get("REWIND_BENCH_MIRROR_PERCENT") or 100)
    with sandbox(SANDBOX_RATE) as box:
        admin = Admin(box)
        admin.set_weight(SHADOW, 0)
        ports = box.load_state()["ports"]["models"]
        admin.mirror(True, percent)
        time.sleep(5.0)  # past the copies of requests answered before the map entry existed

        def reading() -> tuple[float, float]:
            champion = total(scrape(ports[CHAMPION]), "rewind_requests_total", version=CHAMPION, outcome="ok")
            # The copy of a request follows its answer by a few ms: read the shadow a moment after.
            time.sleep(0.2)
            shadow = total(scrape(ports[SHADOW]), "rewind_shadow_requests_total", version=SHADOW,
                           baseline=CHAMPION)
            return champion, shadow

        readings = [reading()]
        started = time.monotonic()
        for window in range(1, max(1, round(seconds / window_s)) + 1):
            time.sleep(max(0.0, started + window * window_s - time.monotonic()))
            readings.append(reading())
        elapsed = time.monotonic() - started
        admin.mirror(False)
    champion = readings[-1][0] - readings[0][0]
    shadow = readings[-1][1] - readings[0][1]
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(readings, readings[1:], strict=False) if b[0] > a[0]]
    if champion <= 0:
        raise RuntimeError("the champion answered nothing ok during the coverage run")
    return round(shadow / champion, 4), {
        "min": round(min(windows), 4), "median": round(statistics.median(windows), 4),
        "champion_ok": int(champion), "copies": int(shadow), "seconds": round(elapsed, 1),
        "window_s": window_s, "percent": percent,
    }


def figures():
    """Yield issue 15's shadow figures (``promote_e2e_ms`` and ``revert_promotion_e2e_ms`` are not measured here)."""
    yield from overhead_figures()
    yield from slow_figures()
    yield from coverage_figures()


def overhead_figures():
    """``shadow_mirror_overhead_p50_ms`` and ``_p95_ms``."""
    results = mirror_on_off(None)
    for q in (50, 95):
        value, extra = _worst(results, q)
        yield f"shadow_mirror_overhead_p{q}_ms", value, "ms", extra


def slow_figures():
    """``shadow_slow_champion_p95_delta_ms``."""
    results = mirror_on_off("shadow-slow")
    value, extra = _worst(results, 95)
    yield "shadow_slow_champion_p95_delta_ms", value, "ms", extra


def coverage_figures():
    """``shadow_coverage``."""
    value, extra = coverage(60.0 if quick() else 300.0)
    yield "shadow_coverage", value, "ratio", extra


def main(argv: list[str]) -> int:
    """Run some of the measurements alone and print their figures with their extras."""
    if "--quick" in argv:
        os.environ["REWIND_BENCH_QUICK"] = "1"
    chosen = {"overhead": overhead_figures, "slow": slow_figures, "coverage": coverage_figures}
    names = [a for a in argv if not a.startswith("--")] or list(chosen)
    for name in names:
        for figure, value, unit, extra in chosen[name]():
            print(f"{figure} {value:g} {unit} {json.dumps(extra)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
