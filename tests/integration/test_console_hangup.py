"""A dropped SSH connection ends the real console cleanly, quickly, and without spinning a core.

The real ``rewind tui`` runs in a pseudo-terminal of its own, as the leader
of its own session with the pty as its controlling terminal, as under sshd.
Closing the master side is the dropped connection: the kernel hangs the
terminal up and sends the session leader SIGHUP (then SIGCONT). Three ways
the process may meet that:

- SIGHUP as it comes: the console's own handler ends it;
- SIGHUP ignored by whoever started it (``nohup``-style): the console installs
  its own handler over the inherited SIG_IGN, so it still ends;
- SIGHUP blocked (the mask survives ``exec`` and ``signal.signal``): no signal
  handler ever runs, and only the HangupWatch thread, finding the terminal
  dead, can end the process.

The systems are unreachable ports: the console still paints, showing them so.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from console.sandbox.manager import free_port

pytestmark = pytest.mark.integration

MODEL = "fraud-detector"
HANGUP_EXIT = 129  # what the console exits with when its terminal went away
EXIT_WITHIN_S = 10.0
CPU_BUDGET_S = 1.5  # CPU the process may use between the hangup and its exit (teardown and final GC included)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ESCAPES = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][A-Z0-9]|\x1b[=>]")
PAINTED = (MODEL, "registry unreachable", "router unreachable", "metrics unreachable")

EXEC_REST = "os.execv(sys.argv[1], sys.argv[1:])"
WRAPPERS = {
    "sighup": [],
    "sighup-ignored": [sys.executable, "-c",
                       f"import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); {EXEC_REST}"],
    "sighup-blocked": [sys.executable, "-c",
                       f"import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGHUP}}); "
                       f"{EXEC_REST}"],
}


def unreachable_config(directory: Path) -> Path:
    """A valid config whose registry, router and metrics are loopback ports nobody listens on."""
    path = directory / "rewind.yaml"
    path.write_text(f"""\
default_model: {MODEL}
registry:
  tracking_uri: http://127.0.0.1:{free_port()}
  timeout_s: 1
  max_retries: 0
router:
  socket: 127.0.0.1:{free_port()}
  backends:
    {MODEL}: be_fraud_detector
  timeout_s: 1
metrics:
  url: http://127.0.0.1:{free_port()}
  timeout_s: 1
  catalogue:
  - name: request_rate
    title: req/s
    unit: per_second
    kind: rate
    query: sum by (version, segment) (rate(rewind_requests_total{{model="$model"}}[$window]))
journal:
  url: sqlite:///{directory / "journal.db"}
""", encoding="utf-8")
    return path


def take_the_terminal() -> None:
    """In the child, a session leader already: make its standard input the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def cpu_s(pid: int, task: int | None = None) -> float:
    """User plus system CPU seconds of a process (or of one of its threads), from /proc."""
    stat = Path(f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def threads(pid: int) -> dict[int, tuple[str, str, float]]:
    """Each thread's state, kernel wait channel and CPU seconds."""
    found = {}
    for entry in Path(f"/proc/{pid}/task").iterdir():
        try:
            state = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
            found[int(entry.name)] = (state, entry.joinpath("wchan").read_text(), cpu_s(pid, int(entry.name)))
        except OSError:
            continue
    return found


def spinning_threads(pid: int) -> str:
    """Evidence for a process that did not exit: every thread's CPU over one second, busiest first."""
    try:
        before = threads(pid)
        time.sleep(1.0)
        after = threads(pid)
    except OSError as exc:
        return f"(could not read /proc/{pid}: {exc})"
    rows = sorted(((after[t][2] - before.get(t, after[t])[2], t, *after[t][:2]) for t in after), reverse=True)
    return "\n".join(f"  thread {tid}: {busy:.2f}s CPU in the last second, state {state}, waiting in {wchan or '-'}"
                     for busy, tid, state, wchan in rows)


def session_members(session: int) -> list[str]:
    """Processes still in ``session`` (the console's own): pid, state and command line."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session:
                command = proc.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                members.append(f"{proc.name} ({fields[0]}) {command}")
        except (OSError, ValueError, IndexError):
            continue
    return members


def read_until_painted(master: int, process: subprocess.Popen, timeout: float) -> str:
    """What the console wrote (escapes removed) once its header shows every system; fail after ``timeout``."""
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                output += os.read(master, 65536)
            except OSError:  # EIO: the console closed the terminal
                break
        text = ESCAPES.sub("", output.decode("utf-8", "replace"))
        if all(part in text for part in PAINTED):
            return text
        if process.poll() is not None:
            break
    pytest.fail(f"the console did not paint its header with {PAINTED} (exit status {process.poll()}); "
                f"it wrote:\n{ESCAPES.sub('', output.decode('utf-8', 'replace'))[-3000:]}", pytrace=False)


def drain(master: int, seconds: float) -> None:
    """Read whatever the console writes for ``seconds``, so it never blocks on a full terminal."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([master], [], [], left)[0]:
            os.read(master, 65536)


@pytest.mark.parametrize("signals", list(WRAPPERS))
def test_a_dropped_connection_ends_the_console_without_spinning(tmp_path, signals):
    rewind = Path(sys.executable).with_name("rewind")
    assert rewind.exists(), f"{rewind} is missing: run `make install`"
    config = unreachable_config(tmp_path)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    # os.environ, not the C environment: pytest imports readline, which exports LINES/COLUMNS to children.
    env = {k: v for k, v in os.environ.items() if k not in ("REWIND_CONFIG", "COLUMNS", "LINES")}
    env.update(TERM="xterm-256color", REWIND_EXPORT_DIR=str(tmp_path))
    process = subprocess.Popen([*WRAPPERS[signals], str(rewind), "tui", "--config", str(config)],
                               stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env,
                               start_new_session=True, preexec_fn=take_the_terminal)
    os.close(slave)
    master_open = True
    try:
        read_until_painted(master, process, 60)
        if signals == "sighup-blocked":  # the set-up is what it claims: no SIGHUP handler can ever run
            status = Path(f"/proc/{process.pid}/status").read_text()
            blocked = int(re.search(r"^SigBlk:\s*([0-9a-f]+)", status, re.M).group(1), 16)
            assert blocked & (1 << (signal.SIGHUP - 1)), status
        drain(master, 1.0)  # let the first reads settle: the console idles on its overview

        cpu_before = cpu_s(process.pid)
        hung_up = time.monotonic()
        os.close(master)  # the SSH connection drops
        master_open = False
        exited = None
        while time.monotonic() - hung_up < EXIT_WITHIN_S:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                exited = os.waitstatus_to_exitcode(status), time.monotonic() - hung_up, usage
                process.returncode = exited[0]
                break
            time.sleep(0.05)
        if exited is None:
            evidence = spinning_threads(process.pid)
            pytest.fail(f"the console ({signals}) still runs {EXIT_WITHIN_S:.0f}s after the hangup, having used "
                        f"{cpu_s(process.pid) - cpu_before:.2f}s of CPU since; its threads:\n{evidence}",
                        pytrace=False)
        code, took, usage = exited
        used = usage.ru_utime + usage.ru_stime - cpu_before
        print(f"{signals}: exit status {code} {took:.2f}s after the hangup, {used:.2f}s of CPU")
        assert code == HANGUP_EXIT, f"exit status {code} after the hangup ({signals}), expected {HANGUP_EXIT}"
        assert used <= CPU_BUDGET_S, (f"the console used {used:.2f}s of CPU in the {took:.2f}s between the hangup "
                                      f"and its exit ({signals}): something spun")
        assert session_members(process.pid) == [], "processes of the console's session outlived it"
    finally:
        if master_open:
            os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
