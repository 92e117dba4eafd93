"""Issue 9's figures: the Textual console, from the real binary in a pseudo-terminal and headless in-process.

- ``tui_first_frame_ms``: process start to the first frame of ``rewind tui`` in a
  120x40 pty (its controlling terminal, TERM=xterm-256color): the first moment its
  output holds the overview's text ("connecting to", the model name or "registry").
  Median of 7 runs with the bytecode cached, as an installed package has it (the
  cache goes to a temporary ``PYTHONPYCACHEPREFIX``, never into the tree); the CPU
  used by then and one run without a bytecode cache ride along. Target 500.
- ``tui_first_metrics_ms``: process start to the first judged matrix (a verdict in
  a row, or the header's "evaluated") on a sandbox started for it. Median of 5. Target 2500.
- ``tui_bytes_per_refresh``: bytes the binary writes per metrics refresh at 120x40
  when a tenth of the cells change: metrics from a stand-in Prometheus (20 versions
  x 200 segments x 6 metrics, two answers that differ in every tenth cell, one per
  evaluation time in turn), registry and router from the sandbox. Bytes between the
  arrival of refresh k's queries and of refresh k+8's, over 8, with the share of
  each screen area (attributed by the cursor moves). Target 2048.
- ``tui_refresh_cpu_ms``: the console's CPU for one refresh at 20 x 200 x 6 on
  answers decoded once: the judge (``LiveStatus.compose``) plus the app applying
  the snapshot (``SnapshotReady``) until its screen update is rendered to terminal
  bytes, headless at 120x40. The two answers alternate so the diff has work; the
  judge keeps no cache across refreshes (real counts change at every scrape).
  Median of 40 (after 6 to warm). Target 10.
- ``tui_keys_to_rollback``: keys pressed from launch to a confirmed rollback on the
  regression scenario (tests/tui/world.py), the typed model name excluded; the
  fake router's weights must have moved. Target 6.
- ``tui_rss_mb`` / ``tui_rss_growth_mb``: resident memory (VmRSS) after start, and
  its growth (after ``gc.collect()``) over up to 14,400 metric refreshes (8 hours
  at 2 s) of the headless app over the fake world (tests/tui/world.py, its values
  changing every refresh), all four polls chained at a tiny interval. At most
  150 s: the refreshes done, the slope after the first thousand and the growth
  extrapolated to 14,400 ride along. Target growth 10.

Figures 4-6 each run in a fresh interpreter (``python -m tests.bench.bench_tui
<figure>``) so one does not see another's memory or warm caches. Wall-clock
figures depend on the machine's load: the 1-minute load average rides along.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import gc
import json
import os
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.bench.fake_prometheus import counts_share

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / ".venv" / "bin" / "rewind"
COLUMNS, ROWS = 120, 40
MODEL = "fraud-detector"
VERSIONS, SEGMENTS = 20, 200
CHANGED_SHARE = 10  # one cell in CHANGED_SHARE differs between the two answers

FIRST_FRAME = (b"connecting to", MODEL.encode(), b"registry")
# A verdict in a matrix row, or the header's evaluation time ("evaluated HH:MM:SSZ", or "HH:MM:SSZ (3s ago)").
JUDGED = ("✓ ok", "✗ BREACH", "! suspect", "? no data", "~ low", "· info", "evaluated ", "s ago)")
JUDGED_BYTES = tuple(word.encode() for word in JUDGED)
# The overview at 120x40 (measured headless), as screen rows: the status header 1-3, the matrix 4-33 (its
# column header on 4), the trend panel 34-39 (a border, a title, a line per version), the footer 40.
AREAS = {"header": (1, 3), "matrix": (4, 33), "trend": (34, 39), "footer": (40, 40)}


# -- the real binary in a pseudo-terminal ----------------------------------------------------------
class PtyConsole:
    """``rewind tui`` on the slave side of a pty (its controlling terminal); everything it writes, timed."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.master = master
        self.output = bytearray()
        self.chunks: list[tuple[float, int]] = []  # (perf_counter, cumulative bytes)
        self._changed = threading.Condition()
        self._ended = False
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BINARY), "tui", "--config", str(config)], stdin=slave, stdout=slave, stderr=slave,
            env=env, cwd=ROOT, start_new_session=True, close_fds=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))  # noqa: PLW1509 - the tty must be the child's own
        os.close(slave)
        self._reader = threading.Thread(target=self._read, name="pty-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the slave side closed
                chunk = b""
            with self._changed:
                if not chunk:
                    self._ended = True
                    self._changed.notify_all()
                    return
                self.output += chunk
                self.chunks.append((time.perf_counter(), len(self.output)))
                self._changed.notify_all()

    def wait_for(self, needles: tuple[bytes, ...], timeout: float, what: str, since: int = 0) -> float:
        """Milliseconds from process start to the first output holding one of ``needles`` (after byte ``since``)."""
        deadline = time.perf_counter() + timeout
        searched = since
        longest = max(len(n) for n in needles)
        with self._changed:
            while True:
                start = max(since, searched - longest)
                found = [at + len(n) for n in needles if (at := self.output.find(n, start)) >= 0]
                if found:  # when the chunk that completed the first match arrived
                    return (self._arrival(min(found)) - self.started) * 1000
                searched = len(self.output)
                if self._ended:
                    raise RuntimeError(f"rewind tui exited (code {self.process.poll()}) before {what}; it wrote: "
                                       f"{_plain(bytes(self.output))[-600:]!r}")
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout:g}s; the console wrote: "
                                       f"{_plain(bytes(self.output))[-600:]!r}")
                self._changed.wait(min(left, 0.5))

    def _arrival(self, end: int) -> float:
        """When the byte before offset ``end`` arrived (a perf_counter reading; call with the lock held)."""
        index = bisect.bisect_left([cumulative for _, cumulative in self.chunks], end)
        return self.chunks[min(index, len(self.chunks) - 1)][0]

    def bytes_at(self, moment: float) -> int:
        """Bytes written up to ``moment`` (a perf_counter reading)."""
        with self._changed:
            total = 0
            for at, cumulative in self.chunks:
                if at > moment:
                    break
                total = cumulative
            return total

    def stop(self) -> None:
        """End the console and its process group (hang-up first, as a closed SSH session would)."""
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGHUP)
                try:
                    self.process.wait(3)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(3)
        except ProcessLookupError:
            pass
        finally:
            self._reader.join(2)
            os.close(self.master)


def _plain(data: bytes) -> str:
    """Terminal output without its escape sequences (for error messages)."""
    escapes = r"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>])"
    return re.sub(escapes, "", data.decode("utf-8", "replace"))


def _console_env(cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("REWIND_", "TEXTUAL", "NO_COLOR", "COLORTERM")) and key != "PYTHONDONTWRITEBYTECODE"}
    env.update(TERM="xterm-256color", PYTHONPYCACHEPREFIX=str(cache), LINES=str(ROWS), COLUMNS=str(COLUMNS))
    return env


def _screen_rows(data: bytes) -> dict[int, int]:
    """Bytes written per screen row, attributed by the cursor moves (``ESC [ row ; col H``) Textual writes."""
    per_row: dict[int, int] = {}
    moves = list(re.finditer(rb"\x1b\[(\d+);(\d+)H", data))
    for index, move in enumerate(moves):
        end = moves[index + 1].start() if index + 1 < len(moves) else len(data)
        row = int(move.group(1))
        per_row[row] = per_row.get(row, 0) + end - move.start()
    return per_row


# -- a stand-in Prometheus whose answer alternates between two variants ------------------------------
def _changed(version: int, segment: int, metric_salt: int) -> bool:
    return (version * 7 + segment * 3 + metric_salt) % CHANGED_SHARE == 0


def _labels(version: int, segment: int) -> dict[str, str]:
    return {"version": str(version), "segment": f"segment-{segment:03d}"}


SAMPLE_AT = 1795321388.279  # as fake_prometheus: the decoder does not read an instant sample's time


def _vector(result: list) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}},
                      separators=(",", ":")).encode()


def _instant(variant: int, salt: int) -> bytes:
    import random

    rng = random.Random(7 + salt)
    result = []
    for v in range(1, VERSIONS + 1):
        for s in range(SEGMENTS):
            value = rng.random()
            if variant and _changed(v, s, salt):
                value *= 0.8
            result.append({"metric": _labels(v, s), "value": [SAMPLE_AT, repr(value)]})
    return _vector(result)


def _counts(variant: int, salt: int, share: float) -> bytes:
    import random

    rng = random.Random(11 + salt)
    result = []
    for v in range(1, VERSIONS + 1):
        for s in range(SEGMENTS):
            requests = rng.randint(20, 600)
            hits = round(requests * share * (0.9 + 0.2 * rng.random()))
            if variant and _changed(v, s, salt):
                hits = round(hits * 0.8)
            for part, value in (("numerator", min(hits, requests)), ("denominator", requests)):
                result.append({"metric": {**_labels(v, s), "rewind_part": part},
                               "value": [SAMPLE_AT, repr(float(value))]})
    return _vector(result)


def _range_template(variant: int, salt: int) -> bytes:
    """A range answer with four points per cell whose times are placeholders ``"@T0@"``..``"@T3@"``."""
    import random

    rng = random.Random(13 + salt)
    result = []
    for v in range(1, VERSIONS + 1):
        for s in range(SEGMENTS):
            factor = 0.8 if variant and _changed(v, s, salt) else 1.0
            result.append({"metric": _labels(v, s),
                           "values": [[f"@T{i}@", repr(rng.random() * factor)] for i in range(4)]})
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}},
                      separators=(",", ":")).encode()


class VaryingPrometheus:
    """Serves Prometheus-shaped answers in a thread; each new evaluation time gets the other variant.

    Every query of one refresh carries the same pinned time, so a refresh sees one
    variant throughout and two refreshes in a row differ in one cell in ten.
    ``refreshes`` records when each refresh's first query arrived.
    """

    def __init__(self) -> None:
        self.variants: dict[str, int] = {}
        self.refreshes: list[float] = []
        self._cache: dict[tuple, bytes] = {}
        self._lock = threading.RLock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                body = owner.answer(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="fake-prometheus", daemon=True)
        self._thread.start()

    def _variant(self, pinned: str) -> int:
        with self._lock:
            if pinned not in self.variants:
                self.variants[pinned] = len(self.variants) % 2
                self.refreshes.append(time.perf_counter())
            return self.variants[pinned]

    def _made(self, key: tuple, make) -> bytes:  # noqa: ANN001 - a zero-argument builder
        with self._lock:
            body = self._cache.get(key)
            if body is None:
                body = self._cache[key] = make()
            return body

    def answer(self, path: str) -> bytes:
        """The answer to one request path (built once per variant and metric, then served from memory)."""
        split = urlsplit(path)
        if not split.path.startswith("/api/v1/query"):
            return _vector([])
        query = parse_qs(split.query)
        promql = query.get("query", [""])[0]
        salt = zlib.crc32(promql.replace("rewind_part", "").encode()) % CHANGED_SHARE
        if split.path == "/api/v1/query_range":
            start, step = float(query["start"][0]), float(query["step"][0])
            variant = self._variant(query["end"][0])
            body = self._made(("range", variant, salt), lambda: _range_template(variant, salt))
            for i in range(4):
                body = body.replace(f'"@T{i}@"'.encode(), repr(round(start + step * i, 3)).encode())
            return body
        variant = self._variant(query.get("time", ["0"])[0])
        if "rewind_part" in promql:
            share = counts_share(promql)
            return self._made(("counts", variant, salt, share), lambda: _counts(variant, salt, share))
        return self._made(("instant", variant, salt), lambda: _instant(variant, salt))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- figures 1-3: the binary on the sandbox --------------------------------------------------------
def _wait_for_sandbox_data(config: Path, timeout: float = 90.0) -> None:
    """Wait until the sandbox's Prometheus has scraped requests (so the first matrix has verdicts to show)."""
    import yaml

    url = yaml.safe_load(config.read_text())["metrics"]["url"]
    query = urllib.request.quote('sum(rate(rewind_requests_total[1m]))')
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/query?query={query}", timeout=2) as answer:
                if json.loads(answer.read())["data"]["result"]:
                    return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the sandbox's Prometheus ({url}) had no request data after {timeout:g}s")


def _cpu_ms(pid: int) -> float:
    """CPU time (user + system, every thread) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _first_frame(config: Path, env: dict[str, str], runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds to the first frame, and the CPU the console had used by then, per run."""
    times, cpu = [], []
    for _ in range(runs):
        console = PtyConsole(config, env)
        try:
            times.append(console.wait_for(FIRST_FRAME, 20, "first frame"))
            cpu.append(_cpu_ms(console.process.pid))
        finally:
            console.stop()
    return times, cpu


def _first_metrics(config: Path, env: dict[str, str], runs: int) -> list[tuple[float, float, float]]:
    """Per run: milliseconds to the first frame, to the first judged matrix, and the CPU used by then."""
    times = []
    for _ in range(runs):
        console = PtyConsole(config, env)
        try:
            frame = console.wait_for(FIRST_FRAME, 20, "first frame")
            judged = console.wait_for(JUDGED_BYTES, 30, "judged matrix")
            times.append((frame, judged, _cpu_ms(console.process.pid)))
        finally:
            console.stop()
    return times


def _bytes_per_refresh(sandbox_config: Path, env: dict[str, str], tmp: Path, refreshes: int = 8) -> dict:
    import yaml

    prometheus = VaryingPrometheus()
    document = yaml.safe_load(sandbox_config.read_text())
    document["metrics"]["url"] = prometheus.url
    config = tmp / "rewind-varying.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    console = PtyConsole(config, env)
    try:
        console.wait_for(JUDGED_BYTES, 60, "judged matrix")
        # Two refreshes to settle (the first repaints everything), then count over ``refreshes``.
        first = len(prometheus.refreshes) + 2
        deadline = time.monotonic() + 120
        while len(prometheus.refreshes) < first + refreshes + 1:
            if console.process.poll() is not None:
                raise RuntimeError(f"rewind tui exited with {console.process.poll()} during the byte count")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(prometheus.refreshes)} metric refreshes in 120 s "
                                   f"(wanted {first + refreshes + 1})")
            time.sleep(0.1)
        begin, end = prometheus.refreshes[first], prometheus.refreshes[first + refreshes]
        start_byte, end_byte = console.bytes_at(begin), console.bytes_at(end)
        written = end_byte - start_byte
        per_row = _screen_rows(bytes(console.output[start_byte:end_byte]))
        seconds = end - begin
    finally:
        console.stop()
        prometheus.close()
    per_area = {name: sum(v for r, v in per_row.items() if low <= r <= high) for name, (low, high) in AREAS.items()}
    return {"per_refresh": written / refreshes, "refreshes": refreshes,
            "seconds_per_refresh": round(seconds / refreshes, 2),
            "bytes_per_row_per_refresh": {str(r): round(v / refreshes) for r, v in sorted(per_row.items())},
            **{f"{name}_bytes_per_refresh": round(v / refreshes) for name, v in per_area.items()}}


def _pty_figures():
    """Figures 1-3 on a sandbox of our own (started here, stopped here)."""
    from console.sandbox.manager import Sandbox

    with tempfile.TemporaryDirectory(prefix="bench-tui-") as name:
        tmp = Path(name)
        env = _console_env(tmp / "pycache")
        box = Sandbox(tmp / "sandbox")
        box.up(say=lambda line: None)
        try:
            config = box.config_path
            load = round(os.getloadavg()[0], 1)
            _first_frame(config, env, 1)  # warm: writes the bytecode cache, as an install would have it
            frames, frame_cpu = _first_frame(config, env, 7)
            cold_env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(tmp / "empty-cache")}
            cold, _ = _first_frame(config, cold_env, 1)
            _wait_for_sandbox_data(config)
            metrics = _first_metrics(config, env, 5)
            traffic = _bytes_per_refresh(config, env, tmp)
        finally:
            box.down()
    judged = [m for _, m, _ in metrics]
    yield ("tui_first_frame_ms", round(statistics.median(frames)), "ms",
           {"min": round(min(frames)), "runs": len(frames),
            "cpu_ms_by_first_frame_median": round(statistics.median(frame_cpu)),
            "no_bytecode_cache_median": round(statistics.median(cold)), "load_average_1m": load})
    yield ("tui_first_metrics_ms", round(statistics.median(judged)), "ms",
           {"min": round(min(judged)), "runs": len(judged),
            "first_frame_median_in_these_runs": round(statistics.median(f for f, _, _ in metrics)),
            "cpu_ms_by_first_metrics_median": round(statistics.median(c for _, _, c in metrics))})
    per_refresh = traffic.pop("per_refresh")
    yield "tui_bytes_per_refresh", round(per_refresh), "bytes", traffic


def _world(tmp: Path):
    """tests/tui/world.py's World (the regression scenario), its journal on the wall clock."""
    from tests.tui.world import World

    world = World(tmp)
    if getattr(world.journal, "clock", time.time) is None:  # a World that leaves the journal without a clock
        world.journal.clock = time.time
    return world


# -- figure 4: CPU per refresh, headless ------------------------------------------------------------
class _StaticMetrics:
    """A metrics source that answers the decoded results it was given."""

    def __init__(self, results: dict) -> None:
        self.results = results

    def describe(self) -> str:
        return "recorded answers"

    def close(self) -> None:
        pass

    def evaluate(self, specs, model, at=None):  # noqa: ANN001, ANN201 - the protocol's signature
        return self.results

    def history(self, specs, model, start, end, step):  # noqa: ANN001, ANN201
        from console.domain.errors import MetricsError

        raise MetricsError("no history here")


class _ManyVersionsRegistry:
    """A registry with versions 1..n: champion on 1, challenger on n."""

    def __init__(self, versions: int) -> None:
        from datetime import UTC, datetime

        from console.domain.versions import ModelVersion

        aliases = {"1": ("champion",), str(versions): ("challenger",)}
        self.versions = [ModelVersion(MODEL, str(v), f"run{v}", datetime(2026, 1, 1, tzinfo=UTC),
                                      aliases=aliases.get(str(v), ())) for v in range(1, versions + 1)]

    def describe(self) -> str:
        return "fake registry"

    def list_versions(self, model, with_signatures=False):  # noqa: ANN001, ANN201
        return list(self.versions)


class _ManyServersRouter:
    def __init__(self, versions: int) -> None:
        from console.domain.routing import RouterState, ServerState

        weights = {str(v): 0 for v in range(1, versions + 1)} | {"1": 90, str(versions): 10}
        self.state = RouterState("be", tuple(ServerState(f"v{v}", v, w, True) for v, w in weights.items()))

    def describe(self) -> str:
        return "fake router"

    def read_state(self, model):  # noqa: ANN001, ANN201
        return self.state


def _sandbox_specs(tmp: Path):
    from console.config import load_config
    from console.sandbox.templates import rewind_config

    path = tmp / "rewind.yaml"
    path.write_text(rewind_config(tmp, MODEL, 9))
    config = load_config(str(path), environ={}).config
    return config.metrics.specs(), config.metrics.traffic_metric, config.metrics.window


def _refresh_cpu(iterations: int = 40, warm: int = 6) -> dict:
    """``tui_refresh_cpu_ms``: compose plus show, per refresh, on two recorded answers in turn.

    The two answers repeat, while a live Prometheus answers new fractional counts
    (``increase``) at every scrape: the judge keeps no cache across refreshes (its interval
    ends and tail probabilities are computed for each refresh's arrays), so every refresh
    pays what one with fresh counts pays.

    The loop starts with the answer the app is *not* showing (it starts on ``answers[0]``),
    so every snapshot, the first included, changes the screen.
    """
    from console.adapters.prometheus import PrometheusMetrics
    from console.domain.verdicts import State
    from console.runtime import tune_gc
    from console.services.live import LiveStatus
    from console.tui.app import ConsoleOptions, create_app
    from console.tui.matrix_model import plan_layout, row_cells, row_keys, summarise
    from console.tui.messages import SnapshotReady
    from tests.tui.conftest import wait_until
    tmp = Path(tempfile.mkdtemp(prefix="bench-tui-cpu-"))
    specs, traffic_metric, window = _sandbox_specs(tmp)
    prometheus = VaryingPrometheus()
    metrics = PrometheusMetrics(prometheus.url, window)
    at = time.time()
    answers = [metrics.evaluate(specs, MODEL, at), metrics.evaluate(specs, MODEL, at + 2)]  # decoded once
    metrics.close()
    prometheus.close()
    registry, router = _ManyVersionsRegistry(VERSIONS), _ManyServersRouter(VERSIONS)
    live = LiveStatus(registry, router, _StaticMetrics(answers[0]), specs, traffic_metric,  # type: ignore[arg-type]
                      clock=lambda: at)
    versions, state = registry.versions, router.state
    snapshots = [live.compose(MODEL, versions, state, results, at + 2 * i) for i, results in enumerate(answers)]
    matrices = [s.matrix for s in snapshots]
    assert len(matrices[0].segments) == SEGMENTS and len(matrices[0].versions) == VERSIONS
    # How much of a screenful differs between the two answers (what the diff has to find).
    layout = plan_layout(COLUMNS, matrices[0].segments, len(specs))
    keys = row_keys(matrices[0])[:ROWS]
    cells = [[row_cells(m, key, layout) for key in keys] for m in matrices]
    shown = sum(len(row) for row in cells[0])
    differ = sum(a != b for ra, rb in zip(cells[0], cells[1], strict=True) for a, b in zip(ra, rb, strict=True))

    world = _world(tmp)
    world.live_status = live
    app = create_app(world, ConsoleOptions(model=MODEL, refresh_s=1e6, clock=lambda: at + 3, watch_terminal=False))
    displays: list[tuple[float, int]] = []
    rows_written: dict[int, int] = {}
    original = app._display

    def display(screen, renderable):  # noqa: ANN001, ANN202 - Textual's private hook, wrapped
        original(screen, renderable)
        if renderable is not None and hasattr(renderable, "render_segments"):
            sent = renderable.render_segments(app.console).encode()  # what a terminal would be sent
            displays.append((time.process_time(), len(sent)))
            for row, count in _screen_rows(sent).items():
                rows_written[row] = rows_written.get(row, 0) + count

    app._display = display  # type: ignore[method-assign]
    compose_ms, apply_ms, total_ms, written, header_ms = [], [], [], [], []

    async def drive() -> None:
        async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, 30, "the headless app's first snapshot")
            await app.workers.wait_for_complete()
            await pilot.pause(0.1)
            tune_gc()
            screen = app.screen

            def painted() -> bool:
                return not (screen._dirty_widgets or screen._layout_required or screen._repaint_required)

            for i in range(iterations + warm):
                if i == warm:
                    rows_written.clear()  # count from the first measured refresh
                turn = (i + 1) % 2  # the app shows answers[0] at start-up: begin with the other one
                results = answers[turn]
                seen = len(displays)
                started = time.process_time()
                snapshot = live.compose(MODEL, versions, state, results, at + 2 * turn)
                summary = summarise(snapshot.matrix)  # the worker summarises what it judged, as the app's does
                composed = time.process_time()
                app.post_message(SnapshotReady(snapshot, summary, 0.0))
                limit = time.monotonic() + 10
                while len(displays) == seen or app.refreshes < i + 2 or not painted():
                    if time.monotonic() > limit:
                        raise TimeoutError("the screen did not update after a snapshot")
                    await pilot.pause(0.001)
                shown_at, size = displays[-1]
                if i >= warm:  # the first ones warm caches
                    compose_ms.append((composed - started) * 1000)
                    apply_ms.append((shown_at - composed) * 1000)
                    total_ms.append((shown_at - started) * 1000)
                    written.append(sum(w for _, w in displays[seen:]))
            # The header is painted again at every registry, router and journal read too (three more per
            # refresh period): its cost on its own.
            for _ in range(15):
                started = time.process_time()
                app._paint_header()
                header_ms.append((time.process_time() - started) * 1000)

    asyncio.run(drive())
    world.close()
    return {"median": statistics.median(total_ms), "min": min(total_ms), "iterations": len(total_ms),
            "compose_median_ms": round(statistics.median(compose_ms), 1),
            "compose_min_ms": round(min(compose_ms), 1),
            "show_render_median_ms": round(statistics.median(apply_ms), 1),
            "show_render_min_ms": round(min(apply_ms), 1),
            "terminal_bytes_per_refresh_headless": round(statistics.median(written)),
            **{f"headless_{name}_bytes_per_refresh": round(sum(v for r, v in rows_written.items() if low <= r <= high)
                                                            / iterations) for name, (low, high) in AREAS.items()},
            "paint_header_alone_median_ms": round(statistics.median(header_ms), 1),
            "visible_cells_changed": f"{differ}/{shown}",
            "breaching_cells": snapshots[0].matrix.counts()[State.BREACH], "cells": VERSIONS * SEGMENTS * len(specs),
            "load_average_1m": round(os.getloadavg()[0], 1)}


# -- figure 5: keys to a confirmed rollback --------------------------------------------------------
def _keys_to_rollback() -> dict:
    from console.domain.verdicts import State
    from tests.tui.conftest import console, wait_until
    from tests.tui.world import MODEL as WORLD_MODEL
    tmp = Path(tempfile.mkdtemp(prefix="bench-tui-keys-"))
    world = _world(tmp)
    before = dict(world.router.weights)
    pressed: list[str] = []

    async def drive() -> None:
        from console.tui.dialogs.confirm import ConfirmDialog

        app = console(world)
        async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
            async def press(*keys: str) -> None:
                pressed.extend(keys)
                await pilot.press(*keys)

            await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.matrix.counts()[State.BREACH] > 0,
                             what="the regression's breach")
            await press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press(*WORLD_MODEL)  # the typed name: not counted
            await press("enter")
            await wait_until(pilot, lambda: world.router.weights != before, timeout=20,
                             what="the router's weights to change")
            await wait_until(pilot, lambda: not app.acting, timeout=20, what="the action to end")

    asyncio.run(drive())
    after = dict(world.router.weights)
    world.close()
    assert after != before, "the rollback did not change the router's weights"
    return {"keys": len(pressed), "pressed": " ".join(pressed), "weights_before": before, "weights_after": after}


# -- figure 6: memory over 8 hours of refreshes ----------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _memory(target: int = 14_400, budget_s: float = 150.0) -> dict:
    """RSS after start and after ``target`` metric refreshes (or ``budget_s`` seconds of them)."""
    from console.domain.metrics import CellCounts, QueryResult
    from console.runtime import tune_gc
    from console.services.live import LiveStatus
    from tests.tui.conftest import console, wait_until
    from tests.tui.world import CATALOGUE, FakeMetrics

    class VaryingMetrics(FakeMetrics):
        """The world's versions and segments; every refresh moves a third of the cells; the regression breaches."""

        def evaluate(self, specs, model, at=None):  # noqa: ANN001, ANN201
            self.calls += 1
            tick = self.calls % 7
            results = {}
            for spec in specs:
                raw, counts = {}, {}
                for vi, version in enumerate(self.versions):
                    for si, segment in enumerate(self.segments):
                        key = (version, segment)
                        moved = (vi + si + tick) % 3 == 0
                        if spec.name == "error_rate":
                            errors = 60.0 if vi == len(self.versions) - 1 and si == 0 else 4.0 + moved
                            counts[key] = CellCounts(errors, 400.0)
                            raw[key] = repr(errors / 400.0)
                        elif spec.name == "latency_p95":
                            raw[key] = repr(0.12 + 0.01 * tick * moved)
                        elif spec.name == "accuracy":
                            raw[key] = repr(0.93 - 0.01 * moved)
                        else:
                            raw[key] = "6.5" if vi == 0 else repr(0.7 + 0.1 * moved)
                results[spec.name] = QueryResult(spec.name, spec.query, at or time.time(), raw, counts=counts)
            return results

    tmp = Path(tempfile.mkdtemp(prefix="bench-tui-rss-"))
    world = _world(tmp)
    # The fake world's size (2 versions x 3 segments): memory per refresh is in workers, timers, messages,
    # history and caches, not in cells; at 5 x 50 a refresh costs three times as long and 14,400 do not fit.
    world.metrics = VaryingMetrics()
    world.live_status = LiveStatus(world.registry, world.router, world.metrics, CATALOGUE, "traffic")
    app = console(world, refresh_s=0.0005, clock=time.time)
    samples: list[tuple[int, float]] = []
    figures: dict = {}

    async def drive() -> None:
        async with app.run_test(size=(COLUMNS, ROWS)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 20, 30, "the headless app's first 20 refreshes")
            tune_gc()
            gc.collect()
            figures["start_mb"] = _rss_mb()
            figures["start_refreshes"] = app.refreshes
            started = time.monotonic()
            next_sample = 0
            while app.refreshes < figures["start_refreshes"] + target and time.monotonic() - started < budget_s:
                await pilot.pause(0.25)
                if app.refreshes >= next_sample:
                    samples.append((app.refreshes, round(_rss_mb(), 1)))
                    next_sample += 500
            figures["seconds"] = time.monotonic() - started
            figures["refreshes"] = app.refreshes
            figures["before_collect_mb"] = _rss_mb()
            gc.collect()
            # A reading can catch a refresh in flight (four polls run all the time): the least of a few.
            readings = []
            for _ in range(5):
                readings.append(_rss_mb())
                await pilot.pause(0.2)
            figures["end_mb"], figures["end_readings_mb"] = min(readings), [round(r, 1) for r in readings]
            samples.append((app.refreshes, round(figures["end_mb"], 1)))

    asyncio.run(drive())
    world.close()
    return {**figures, "samples": samples}


def _in_child(name: str) -> dict:
    """Run one of figures 4-6 in a fresh interpreter; its JSON answer."""
    done = subprocess.run([sys.executable, "-m", "tests.bench.bench_tui", name], cwd=ROOT, capture_output=True,
                          text=True, timeout=400)
    if done.returncode != 0:
        raise RuntimeError(f"bench_tui {name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures():
    """Yield issue 9's figures (with extra fields for the JSON record)."""
    yield from _pty_figures()
    cpu = _in_child("refresh_cpu")
    yield ("tui_refresh_cpu_ms", round(cpu.pop("median"), 1), "ms", {**cpu, "min": round(cpu["min"], 1)})
    keys = _in_child("keys")
    yield "tui_keys_to_rollback", keys.pop("keys"), "keys", keys
    memory = _in_child("memory")
    done = memory["refreshes"] - memory["start_refreshes"]
    growth = memory["end_mb"] - memory["start_mb"]
    # After the first thousand refreshes (caches filling, the allocator's high-water mark), the slope of
    # what is left: a least-squares line through the samples, in MB per thousand refreshes.
    samples = memory["samples"]
    settled = [(n, mb) for n, mb in samples if n >= 1000] or samples
    counts, sizes = [n for n, _ in settled], [mb for _, mb in settled]
    slope = statistics.linear_regression(counts, sizes).slope * 1000 if len(set(counts)) > 1 else 0.0
    extra = {"refreshes": done, "target_refreshes": 14_400, "seconds": round(memory["seconds"], 1),
             "growth_per_1000_refreshes_after_1000": round(slope, 2),
             "growth_extrapolated_to_14400_mb": round(growth + slope * max(0, 14_400 - done) / 1000, 1),
             "before_collect_mb": round(memory["before_collect_mb"], 1), "end_readings_mb": memory["end_readings_mb"],
             "samples_refreshes_mb": samples}
    yield "tui_rss_mb", round(memory["start_mb"], 1), "MB", {"after_refreshes": memory["start_refreshes"]}
    yield "tui_rss_growth_mb", round(growth, 1), "MB", extra


if __name__ == "__main__":
    child = {"refresh_cpu": _refresh_cpu, "keys": _keys_to_rollback, "memory": _memory}[sys.argv[1]]
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as scratch:
        tempfile.tempdir = scratch  # every mkdtemp of the figure lands here and goes with it
        answer = child()
    print(json.dumps(answer))
