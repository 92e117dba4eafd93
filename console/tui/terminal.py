"""Noticing that the terminal went away, so a dropped SSH connection never leaves an orphan console.

When the terminal hangs up without a signal reaching the process (a client
that just closes), Textual's input thread reads end-of-file forever and spins
a core (Dolphie #101). A small watch thread asks the terminal for its
attributes every half second: on a hung-up or closed terminal that fails, and
the console exits. SIGHUP is handled by the app the same way.
"""

from __future__ import annotations

import os
import sys
import termios
import threading
from collections.abc import Callable


def terminal_alive(fd: int) -> bool:
    """Whether ``fd`` is still a working terminal."""
    try:
        termios.tcgetattr(fd)
        os.fstat(fd)
    except (termios.error, OSError, ValueError):
        return False
    return True


class HangupWatch:
    """Calls ``on_hangup`` once, from its own thread, when the terminal stops answering.

    Args:
        on_hangup: called with a reason (``the terminal went away``).
        fd: the terminal's file descriptor (default: standard input's).
        interval_s: how often to look.
    """

    def __init__(self, on_hangup: Callable[[str], None], fd: int | None = None, interval_s: float = 0.5) -> None:
        self.on_hangup = on_hangup
        self.fd = sys.__stdin__.fileno() if fd is None and sys.__stdin__ is not None else (fd or 0)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hangup-watch", daemon=True)

    def start(self) -> None:
        """Start watching (does nothing when standard input is not a terminal to begin with)."""
        if terminal_alive(self.fd):
            self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if not terminal_alive(self.fd):
                self.on_hangup("the terminal went away")
                return
