"""Fault injection for drills and tests: stop or kill this process at a named step boundary.

- ``REWIND_FAULT_KILL_AT=after-intent`` (or ``after-router-step-1``,
  ``after-alias-challenger``, ``after-applied``...) makes the console SIGKILL
  itself exactly there, so crash recovery can be exercised against real systems.
- ``REWIND_FAULT_PAUSE_AT=after-intent`` with ``REWIND_FAULT_PAUSE_FILE=PATH``
  creates PATH at that boundary and waits (up to ten minutes) until it is
  removed, so a second console can be started while the first holds the lock.

Unset, they do nothing.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

KILL_ENV = "REWIND_FAULT_KILL_AT"
PAUSE_ENV = "REWIND_FAULT_PAUSE_AT"
PAUSE_FILE_ENV = "REWIND_FAULT_PAUSE_FILE"
PAUSE_LIMIT_S = 600


def checkpoint_from_env() -> Callable[[str], None]:
    """A checkpoint acting on the boundaries the environment names."""
    kill_at = os.environ.get(KILL_ENV)
    pause_at = os.environ.get(PAUSE_ENV)
    pause_file = os.environ.get(PAUSE_FILE_ENV)
    if not kill_at and not (pause_at and pause_file):
        return lambda name: None

    def checkpoint(name: str) -> None:
        if name == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if name == pause_at and pause_file:
            marker = Path(pause_file)
            marker.write_text(str(os.getpid()))
            deadline = time.monotonic() + PAUSE_LIMIT_S
            while marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    return checkpoint
