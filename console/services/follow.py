"""Following an incident's timeline live: its events in order, read by sequence number after the last one held.

A follower holds the events it has read and the last sequence number. It never
re-reads the whole timeline: each catch-up reads only the events after that
number. What wakes it depends on the journal:

- PostgreSQL: the journal announces every head move at its commit (LISTEN/NOTIFY,
  :meth:`~console.adapters.protocols.Journal.watch`); the follower catches up when
  its incident's head passes what it holds, and after every (re)connection, since a
  notification sent while it was not listening is never replayed.
- SQLite, or while the watch cannot listen: a catch-up on a timer (``poll_s``).

The console, ``rewind`` tools and the soak tests follow incidents through this one
class; only the waking differs, never the reading.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from console.adapters.protocols import Journal, JournalWatch
from console.domain.errors import RewindError
from console.domain.journal import Event


class IncidentFollower:
    """Follows one incident at a time (:meth:`follow` switches) for one console.

    Args:
        journal: where the events are.
        poll_s: how often to catch up without a watch (SQLite, or while the watch is down).
        safety_s: with a watch, catch up this often anyway (a notification lost on a
            silently cut network costs at most this long).
        clock: monotonic seconds (injectable for tests).

    :meth:`catch_up` may be called from any thread; :meth:`wait` from one thread at a time.
    """

    def __init__(self, journal: Journal, poll_s: float = 1.0, safety_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.journal = journal
        self.poll_s = poll_s
        self.safety_s = safety_s
        self.clock = clock
        self.incident_id: str | None = None
        self.events: list[Event] = []
        """The incident's events read so far, in sequence order (replaced, never mutated: safe to hand out)."""
        self.error: str | None = None
        """Why :meth:`wait` could not read or listen lately (cleared by its next successful read)."""
        self._lock = threading.Lock()
        self._watch: JournalWatch | None = journal.watch()
        self._last_read = clock()

    @property
    def live(self) -> bool:
        """Whether commits wake the follower (PostgreSQL) rather than a timer."""
        return self._watch is not None

    @property
    def last_seq(self) -> int:
        """The sequence number of the last event held (0 before any)."""
        events = self.events
        return events[-1].seq if events else 0

    def follow(self, incident_id: str | None, head_seq: int | None = None) -> None:
        """Follow ``incident_id`` from now on (``None``: nothing); a different incident starts from its first event.

        ``head_seq``: the incident's head as just read elsewhere; a head below what the
        follower holds means the journal under it was replaced, and it starts over.
        """
        with self._lock:
            if incident_id != self.incident_id or (head_seq is not None and head_seq < self.last_seq):
                self.incident_id, self.events = incident_id, []

    def catch_up(self) -> list[Event]:
        """Read the events after the last one held and return them (``[]`` when none).

        The first new event must link to the last one held (its ``prev_hash``); when it
        does not, the journal changed under the follower, which starts over.

        Raises:
            RewindError: the journal could not be read (the next catch-up starts from the same place).
        """
        with self._lock:
            incident_id = self.incident_id
            if incident_id is None:
                return []
            self._last_read = self.clock()
            held = self.events
            fresh = self.journal.events_after(incident_id, held[-1].seq if held else 0)
            if fresh and held and fresh[0].prev_hash != held[-1].hash:
                held, fresh = [], self.journal.events_after(incident_id, 0)
            if fresh:
                self.events = [*held, *fresh]
            return fresh

    def _catch_up_quietly(self) -> list[Event]:
        try:
            fresh = self.catch_up()
        except RewindError as exc:
            self.error = str(exc)
            return []
        self.error = None
        return fresh

    def wait(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for the followed incident's next events and return them (``[]``: none).

        With a watch it returns as soon as a commit moves the incident's head past what is
        held; without one, or while the watch cannot listen, it catches up every ``poll_s``.
        It never raises: a read or listen that fails is in :attr:`error` until a read succeeds.
        """
        deadline = self.clock() + max(0.0, timeout)
        while True:
            remaining = max(0.0, deadline - self.clock())
            watch = self._watch
            fresh = self._poll(remaining) if watch is None else self._listen(watch, remaining)
            if fresh or self.clock() >= deadline:
                return fresh

    def _listen(self, watch: JournalWatch, remaining: float) -> list[Event]:
        news = watch.wait(min(remaining, self.safety_s))
        if news.error is not None:  # it retries on the next wait; meanwhile read on the timer
            self.error = news.error
            return self._catch_up_quietly() if self.clock() - self._last_read >= self.poll_s else []
        incident_id = self.incident_id
        moved = incident_id is not None and news.heads.get(incident_id, 0) > self.last_seq
        if news.resync or moved or self.clock() - self._last_read >= self.safety_s:
            return self._catch_up_quietly()
        return []

    def _poll(self, remaining: float) -> list[Event]:
        due = self._last_read + self.poll_s - self.clock()
        if due > remaining:
            time.sleep(remaining)
            return []
        if due > 0:
            time.sleep(due)
        return self._catch_up_quietly()

    def close(self) -> None:
        """Stop listening (the journal itself stays open: it is the caller's)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.close()
