"""Fault injection for drills and tests: kill this process at a named step boundary.

``REWIND_FAULT_KILL_AT=after-intent`` (or ``after-router-step-1``,
``after-alias-challenger``, ``after-applied``...) makes the console SIGKILL
itself exactly there, so crash recovery can be exercised against real systems.
Unset, it does nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

FAULT_ENV = "REWIND_FAULT_KILL_AT"


def checkpoint_from_env() -> Callable[[str], None]:
    """A checkpoint that kills the process at the boundary ``$REWIND_FAULT_KILL_AT`` names."""
    target = os.environ.get(FAULT_ENV)
    if not target:
        return lambda name: None

    def checkpoint(name: str) -> None:
        if name == target:
            os.kill(os.getpid(), signal.SIGKILL)

    return checkpoint
