"""Start the sandbox's processes detached, and stop exactly those, by pid and start time.

A pid alone can be reused by an unrelated process after ours exits; each
record also keeps the process's start time from ``/proc``, and a process is
only signalled when both still match.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from console.adapters.identity import process_start_ticks


@dataclass(frozen=True)
class ProcessRecord:
    """One process the sandbox started."""

    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: str

    def alive(self) -> bool:
        """Whether this very process (not a reuse of its pid) still runs."""
        return process_start_ticks(self.pid) == self.start_ticks

    def to_dict(self) -> dict:
        """As stored in ``state.json``."""
        return asdict(self)


def start(name: str, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> ProcessRecord:
    """Start a process in its own session (Ctrl-C in the terminal does not reach it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True, close_fds=True,
        )
    ticks = None
    for _ in range(50):
        ticks = process_start_ticks(proc.pid)
        if ticks is not None:
            break
        time.sleep(0.01)
    return ProcessRecord(name, proc.pid, ticks or -1, list(argv), str(log))


def stop(record: ProcessRecord, timeout: float = 5.0) -> bool:
    """Stop one recorded process: SIGTERM, then SIGKILL after ``timeout``.

    Returns:
        True when the process was ours and is now gone (or was already gone).
    """
    if not record.alive():
        _reap(record.pid)
        return True
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not record.alive():
            return True
        time.sleep(0.05)
    if record.alive():
        try:
            os.kill(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
    for _ in range(100):
        _reap(record.pid)
        if not record.alive():
            return True
        time.sleep(0.02)
    return False


def kill(record: ProcessRecord) -> None:
    """SIGKILL one recorded process, as a crash would, if it is still ours; wait until it is gone."""
    if record.alive():
        try:
            os.kill(record.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
    for _ in range(200):
        _reap(record.pid)
        if not record.alive():
            return
        time.sleep(0.01)


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (it then leaves no zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
