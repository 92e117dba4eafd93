"""A read of the console's backend repeated in a thread worker, each one chained to the end of the previous.

The views and the overview's fallback line each own one: ``fetch`` runs in a
thread worker of the owning widget and returns the message to post (whatever it
raises becomes the ``failed`` message instead: a read never closes the console);
the owner's handler changes its state, then calls :meth:`ChainedPoll.done`, which
schedules the next read ``interval()`` seconds later. Reads never overlap: a read
asked for while one is under way (:meth:`ChainedPoll.soon`) starts when it ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual import events
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget

from console.domain.errors import RewindError
from console.tui.widgets.status_header import STALE_REFRESHES

if TYPE_CHECKING:
    from console.tui.acting import ConsoleHost
    from console.tui.backend import Backend

Fetch = Callable[[str, "Backend", float], Message]
"""``(model, backend, now) -> message``, in the worker's thread."""
Failed = Callable[[str, str, float], Message]
"""``(model, error, now) -> message`` for a read that raised."""


class ChainedPoll:
    """Repeated reads for ``owner`` (a widget or a screen of the console).

    Args:
        owner: runs the workers and timers, and receives the messages.
        group: the workers' group (to tell whether a read is under way).
        fetch: the read.
        failed: the message for a read that raised.
        interval: seconds from the end of one read to the start of the next.
    """

    def __init__(self, owner: Widget, group: str, fetch: Fetch, failed: Failed,
                 interval: Callable[[], float]) -> None:
        self.owner = owner
        self.group = group
        self.fetch = fetch
        self.failed = failed
        self.interval = interval
        self.reads = 0
        self._timer: Timer | None = None
        self._again = False

    @property
    def host(self) -> ConsoleHost:
        return cast("ConsoleHost", self.owner.app)

    def start(self) -> None:
        """The first read, once the current frame is on the terminal (never on its path)."""
        self.owner.call_after_refresh(self._poll)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def busy(self) -> bool:
        return any(w.group == self.group and not w.is_finished for w in self.owner.workers)

    def soon(self) -> None:
        """Read now, or as soon as the read under way ends."""
        if self.busy():
            self._again = True
            return
        self.stop()
        self._poll()

    def done(self) -> None:
        """The owner handled a read's message: schedule the next one."""
        self.reads += 1
        if self._again:
            self._again = False
            self._poll()
        else:
            self._timer = self.owner.set_timer(self.interval(), self._poll)

    def _poll(self) -> None:
        host = self.host
        if not host.backend_ready or not host.model:  # the config is still loading
            self._timer = self.owner.set_timer(0.5, self._poll)
            return
        model, backend, clock = host.model, host.backend, host.options.clock
        self.owner.run_worker(lambda: self._read(model, backend, clock), thread=True, exit_on_error=False,
                              group=self.group, name=self.group)

    def _read(self, model: str, backend: Backend, clock: Callable[[], float]) -> None:
        try:
            message = self.fetch(model, backend, clock())
        except RewindError as exc:
            message = self.failed(model, str(exc), clock())
        except Exception as exc:  # noqa: BLE001 - a read's failure is shown, never a crash
            message = self.failed(model, f"{exc.__class__.__name__}: {exc}", clock())
        self.owner.post_message(message)


class PolledScreen(Screen[None]):
    """A view that reads its model on a :class:`ChainedPoll` and paints each reading.

    A subclass gives ``fetch`` (in the worker's thread: it never touches a widget), ``failed``, a
    handler of its message that keeps the reading, paints and calls ``self.poll.done()``, and ``paint``.
    """

    GROUP = "view-read"

    def __init__(self) -> None:
        super().__init__()
        self.poll = ChainedPoll(self, self.GROUP, self.fetch, self.failed, lambda: self.interval_s)

    @property
    def host(self) -> ConsoleHost:
        return cast("ConsoleHost", self.app)

    @property
    def reads(self) -> int:
        """Reads handled so far."""
        return self.poll.reads

    @property
    def interval_s(self) -> float:
        """Seconds between the end of one read and the start of the next."""
        return self.host.options.refresh_s

    @property
    def stale_after_s(self) -> float:
        """A reading older than this reads as unknown, with its age."""
        return STALE_REFRESHES * self.interval_s

    def fetch(self, model: str, backend: Backend, now: float) -> Message:
        raise NotImplementedError

    def failed(self, model: str, error: str, now: float) -> Message:
        raise NotImplementedError

    def paint(self) -> None:
        raise NotImplementedError

    def on_mount(self) -> None:
        self.paint()
        self.poll.start()  # never on the first frame's path
        # A read that never returns must still age into unknown: paint looks again each interval (it
        # sends nothing unless what it shows changed).
        self.set_interval(self.interval_s, self.paint, name="age the reading")

    def on_unmount(self) -> None:
        self.poll.stop()

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        if self.reads:  # back from an action's dialog: read the new state now rather than at the next turn
            self.poll.soon()
