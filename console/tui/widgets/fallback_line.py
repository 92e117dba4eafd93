"""The overview's fallback line: when the fallback serves and how much, or that it is not ready.

It owns its poll: every refresh a thread worker asks the fallback service to
``observe`` the model (an engagement the router made on its own is journaled,
once) and reads its readiness; the widget keeps the reading and shows one line,
or nothing while the fallback is ready and idle (a row saved at 80×24). An
engagement journaled while the console is open is also a notification. How much
the fallback serves is measured: its share of the answers the router gave since
the previous read (all of them while it is engaged and nothing was asked).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.message import Message

from console.tui.polling import ChainedPoll
from console.tui.widgets.line_stack import LineStack
from console.tui.widgets.status_header import STALE_REFRESHES

if TYPE_CHECKING:  # the services load after the first frame
    from console.domain.routing import FallbackState
    from console.services.fallback import Readiness
    from console.tui.acting import ConsoleHost
    from console.tui.backend import Backend


@dataclass
class FallbackObserved(Message):
    """The model's fallback as read now (after ``observe``), or why it could not be read."""

    model: str
    readiness: Readiness | None
    fallback_version: str | None = None
    journaled: str | None = None
    at: float = 0.0
    error: str | None = None


def _answered(state: FallbackState) -> int:
    return sum(s.served for s in state.servers) + state.default_answers


def fallback_line(readiness: Readiness | None, previous: FallbackState | None, version: str | None,
                  error: str | None, age: float, stale: bool) -> Text | None:
    """The line, or ``None`` when there is nothing to say (ready and idle, or no fallback configured).

    ``previous`` is the state read before this one: the fallback's share is measured over the answers
    the router gave in between.
    """
    if readiness is None:
        return Text(f"? fallback unknown: {error}", style="bold yellow") if error else None
    if stale:
        return Text(f"? fallback unknown (read {age:.0f}s ago)", style="bold yellow")
    state = readiness.state
    named = f" (v{version})" if version else ""
    answered = _answered(state) - _answered(previous) if previous is not None else 0
    by_fallback = state.fallback_served() - previous.fallback_served() if previous is not None else 0
    by_default = state.default_answers - previous.default_answers if previous is not None else 0
    if by_default > 0:
        return Text(f"⚠ FIXED DEFAULT answered {by_default} of {answered} requests since the last read: "
                    "nothing else could · f: fallback", style="bold red")
    if readiness.engaged:
        share = by_fallback / answered if answered > 0 else 1.0
        return Text(f"⚠ FALLBACK serving {share * 100:.0f} %{named}: no serving primary is up · f: fallback",
                    style="bold yellow")
    if by_fallback > 0 and answered > 0:
        return Text(f"⚠ fallback answered {by_fallback / answered * 100:.0f} %{named} since the last read · "
                    "f: fallback", style="yellow")
    if not state.backups and not readiness.default_armed:
        return None  # this model has no fallback configured
    if not readiness.ready:
        missing = ", ".join(what for ok, what in ((readiness.backup_up, "no backup up"),
                                                  (readiness.deep_check, "deep check failing"),
                                                  (readiness.default_armed, "no default armed")) if not ok)
        return Text(f"! fallback not ready: {missing} · f: fallback", style="yellow")
    return None


def observe(model: str, backend: Backend, now: float) -> FallbackObserved:
    """In a thread: journal an engagement the router made on its own, then read the readiness."""
    from console.domain.status import FALLBACK_ALIAS

    service = backend.fallback()
    journaled = service.observe(model)
    readiness = service.readiness(model)
    version = None
    if readiness.engaged or readiness.state.fallback_served():
        version = service.rollback.registry.get_aliases(model).version_of(FALLBACK_ALIAS)
    return FallbackObserved(model, readiness, version, journaled, now)


class FallbackLine(LineStack):
    """One line under the overview's header about the fallback; hidden while there is nothing to say."""

    DEFAULT_CSS = """
    FallbackLine { height: auto; background: $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.readiness: Readiness | None = None
        self.previous: FallbackState | None = None
        self.version: str | None = None
        self.error: str | None = None
        self.at: float | None = None
        self.model = ""
        self.poll = ChainedPoll(self, "fallback-watch", observe, lambda model, error, at: FallbackObserved(
            model, None, at=at, error=error), lambda: self.host.options.refresh_s)

    @property
    def reads(self) -> int:
        """Reads handled so far."""
        return self.poll.reads

    @property
    def host(self) -> ConsoleHost:
        return cast("ConsoleHost", self.app)

    def on_mount(self) -> None:
        self.display = False
        self.poll.start()
        # A read that never returns must still age into unknown.
        self.set_interval(self.host.options.refresh_s, self.paint, name="age the reading")

    def on_unmount(self) -> None:
        self.poll.stop()

    @on(FallbackObserved)
    def _observed(self, message: FallbackObserved) -> None:
        message.stop()
        if message.model != self.model:  # another model: nothing read before counts
            self.model, self.readiness, self.previous, self.at = message.model, None, None, None
        if message.readiness is not None:
            self.previous = self.readiness.state if self.readiness is not None else None
            self.readiness, self.version, self.at, self.error = (message.readiness, message.fallback_version,
                                                                 message.at, None)
        else:
            self.error = message.error
        if message.journaled:
            self.notify(message.journaled, title="fallback journaled", severity="warning", timeout=20)
        self.paint()
        self.poll.done()

    def paint(self) -> None:
        """Show the line for the latest reading (or hide it when there is nothing to say)."""
        if self.at is None and self.error is None:
            return  # nothing read yet
        now = self.host.options.clock()
        age = now - self.at if self.at is not None else 0.0
        stale = self.readiness is not None and age > STALE_REFRESHES * self.host.options.refresh_s
        line = fallback_line(self.readiness, self.previous, self.version, self.error, age, stale)
        if line is None:
            self.display = False
            return
        self.show([Text(" ") + line])
        self.display = True
