"""The fallback's readiness panel: is it ready before it is needed, does it serve now, and its actions.

It owns its reads, its keys and its messages. A thread worker reads the router's
view of the fallback and the journal's last drill (:meth:`FallbackService.readiness`,
cheap: HAProxy's stats and the journal) every refresh, chained so reads never
overlap, and posts a :class:`FallbackRead`. Engage, restore and drill are
:class:`~console.tui.acting.ActionRequest` objects the console carries out in its
own worker, through the one action procedure and the typed confirmation.

Layout: the verdict (READY, NOT READY, ENGAGED), one line per condition (backup
up, deep check, default armed, engaged now, last drill with its result and age),
the router's servers with what each answered, the footer's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from console.domain.journal import parse_ts
from console.tui.acting import ActionRequest, Carrier, procedure_request
from console.tui.polling import PolledScreen
from console.tui.widgets.line_stack import LineStack

if TYPE_CHECKING:
    from console.services.actions import ActionResult
    from console.services.fallback import Readiness
    from console.services.journal import Placement
    from console.services.rollback import Preview, RollbackService
    from console.tui.backend import Backend

DRILL_SECONDS = 10
"""A drill's length when the responder does not say otherwise."""


@dataclass
class FallbackRead(Message):
    """The fallback's readiness as read now, or why it could not be read."""

    model: str
    readiness: Readiness | None
    fallback_version: str | None = None
    at: float = 0.0
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FallbackRead)


def age_text(seconds: float) -> str:
    """``42s``, ``16m``, ``3h``, ``2d`` ago."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _mark(ok: bool, stale: bool) -> Text:
    if stale:
        return Text("?", style="dim")
    return Text("✓", style="green") if ok else Text("✗", style="bold red")


def readiness_lines(readiness: Readiness, fallback_version: str | None, now: float, stale: bool) -> Table:
    """One line per readiness condition: its mark, its name, and what the router (or the journal) says."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, style="bold")
    table.add_column()
    backups = readiness.state.backups
    listed = ", ".join(f"{s.server} {s.status}" for s in backups) or "no backup server in the backend"
    named = f" (fallback alias → v{fallback_version})" if fallback_version else ""
    table.add_row(_mark(readiness.backup_up, stale), "backup up", listed + named)
    checks = ", ".join(f"{s.server}: {s.check or 'not checked'}" for s in backups) or "nothing checked"
    table.add_row(_mark(readiness.deep_check, stale), "deep check", f"a real prediction · {checks}")
    table.add_row(_mark(readiness.default_armed, stale), "default armed",
                  "the router answers a fixed default when nothing can" if readiness.default_armed
                  else "no fixed default: callers get 503 when nothing answers")
    if readiness.engaged:
        engaged = Text(f"YES: the fallback serves {readiness.model} "
                       f"({readiness.state.fallback_served()} answered so far)", style="bold yellow")
    else:
        engaged = Text("no: the primaries serve")
    table.add_row(Text("⚠", style="bold yellow") if readiness.engaged and not stale else _mark(True, stale),
                  "engaged now", engaged)
    last = readiness.last_drill
    if last is None:
        table.add_row(Text("·", style="dim"), "last drill", Text("never drilled (d runs one)", style="yellow"))
    else:
        ts, result = last
        ago = age_text(now - parse_ts(ts).timestamp())
        table.add_row(_mark(result.passed, stale), "last drill",
                      Text(f"{ts[:19].replace('T', ' ')}Z, {ago} ago: {result.describe()}",
                           style="" if result.passed else "bold red"))
    return table


def servers_table(readiness: Readiness) -> Table:
    """The backend's servers: role, status, last check, what each answered since the router started."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title="Router servers",
                  title_justify="left", title_style="bold")
    for column, justify in (("server", "left"), ("role", "left"), ("status", "left"), ("check", "left"),
                            ("served", "right"), ("2xx", "right"), ("5xx", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for s in readiness.state.servers:
        role = "backup" if s.backup else "primary"
        table.add_row(s.server, role, Text(s.status, style="" if s.up else "bold red"), s.check or "-",
                      str(s.served), str(s.answered_2xx), str(s.answered_5xx))
    return table


def verdict_line(readiness: Readiness | None, error: str | None, age: float, stale: bool) -> Text:
    """``✓ READY``, ``✗ NOT READY``, ``⚠ ENGAGED``, or unknown with its age."""
    if readiness is None:
        return Text(f"✗ could not read the fallback: {error}" if error else "reading the fallback…",
                    style="bold red" if error else "italic")
    if stale:
        return Text(f"? unknown (read {age:.0f}s ago{': ' + error if error else ''})", style="bold yellow")
    if readiness.engaged:
        return Text("⚠ ENGAGED: the fallback serves the model's traffic", style="bold yellow")
    if readiness.ready:
        return Text("✓ READY: a backup is up, its deep check passes, a default is armed", style="bold green")
    return Text("✗ NOT READY: " + ", ".join(what for ok, what in (
        (readiness.backup_up, "no backup up"), (readiness.deep_check, "deep check failing"),
        (readiness.default_armed, "no default armed")) if not ok), style="bold red")


# -- the actions -----------------------------------------------------------------------------------
def engage_request() -> ActionRequest:
    """Take the serving primaries out (maintenance): the fallback answers."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        fallback = carrier.backend.fallback()
        return fallback.rollback, fallback.engage_preview(carrier.model), fallback.rollback.journal.place(
            carrier.model, "2", f"Engage the fallback of {carrier.model}")

    return procedure_request("Engage the fallback", "Engage", plan)


def restore_request() -> ActionRequest:
    """Put the primaries taken out back in service."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        fallback = carrier.backend.fallback()
        return fallback.rollback, fallback.restore_preview(carrier.model), fallback.rollback.journal.place(
            carrier.model, "2", f"Restore the primaries of {carrier.model}")

    return procedure_request("Restore the primaries", "Restore", plan)


def drill_request(seconds: float) -> ActionRequest:
    """Engage for ``seconds`` (typed confirmation), count what callers got, restore, journal the result."""
    def carry(carrier: Carrier) -> ActionResult:
        from console.services.actions import ActionResult

        fallback = carrier.backend.fallback()
        journal = fallback.rollback.journal
        placement = journal.place(carrier.model, "2", f"fallback drill of {carrier.model}")
        # The engagement's preview is what the responder confirms; the drill's own restore needs no second one.
        face = carrier.face(fallback.engage_preview(carrier.model, f"fallback drill ({seconds:g}s)"),
                            "Fallback drill", "Drill")
        carrier.say(f"the primaries go out for {seconds:g}s once confirmed; the drill then restores them")
        result, actions = fallback.drill(carrier.model, seconds, placement, face, carrier.options())
        if result is not None:
            carrier.say(f"fallback drill {result.describe()}", "good" if result.passed else "bad")
        last = actions[-1]
        return ActionResult(last.placement, [o for action in actions for o in action.outcomes], last.cancelled)

    return ActionRequest("Fallback drill", carry, undoable=False)


def read_fallback(model: str, backend: Backend, now: float) -> FallbackRead:
    """In a thread: the fallback's readiness (the router's stats, the journal's last drill) and its version."""
    from console.domain.status import FALLBACK_ALIAS

    service = backend.fallback()
    readiness = service.readiness(model)
    version = service.rollback.registry.get_aliases(model).version_of(FALLBACK_ALIAS)
    return FallbackRead(model, readiness, version, now)


ACTING = ("engage", "restore", "drill")


class FallbackScreen(PolledScreen):
    """The model's fallback: ready or not, engaged or not, the last drill; keys to engage, restore, drill."""

    BINDINGS = [
        Binding("e", "engage", "engage"),
        Binding("r", "restore", "restore"),
        Binding("d", "drill", "drill"),
        Binding("escape,b,f", "app.pop_screen", "back"),
    ]

    GROUP = "fallback-read"
    AUTO_FOCUS = "#fallback-body"  # the keys (↑↓ PgUp PgDn) scroll the body at once

    def __init__(self) -> None:
        super().__init__()
        self.readiness: Readiness | None = None
        self.fallback_version: str | None = None
        self.at: float | None = None
        self.error: str | None = None
        self._painted: tuple[object, ...] | None = None

    def fetch(self, model: str, backend: Backend, now: float) -> FallbackRead:
        return read_fallback(model, backend, now)

    def failed(self, model: str, error: str, now: float) -> FallbackRead:
        return FallbackRead(model, None, at=now, error=error)

    def compose(self) -> ComposeResult:
        yield LineStack(id="fallback-header")
        with VerticalScroll(id="fallback-body"):
            yield Static("", id="fallback-readiness")
            yield Static("", id="fallback-servers")
        yield Footer()

    @on(FallbackRead)
    def _fallback_read(self, message: FallbackRead) -> None:
        if message.model == self.host.model:
            if message.readiness is not None:
                self.readiness, self.fallback_version, self.at, self.error = (
                    message.readiness, message.fallback_version, message.at, None)
            else:  # the last reading stays, with its time: unknown once too old
                self.error = message.error
            self.paint()
        self.poll.done()

    # -- painting --------------------------------------------------------------------------------
    def paint(self) -> None:
        if not self.is_mounted:
            return
        now = self.host.options.clock()
        age = now - self.at if self.at is not None else 0.0
        stale = self.readiness is not None and age > self.stale_after_s
        key = (self.readiness, self.fallback_version, self.error, stale, int(age) if stale else 0)
        if key == self._painted:
            return
        self._painted = key
        title = Text.assemble(("Fallback of ", "bold"), (self.host.model, "bold"))
        self.query_one("#fallback-header", LineStack).show(
            [Text(" ") + title, Text(" ") + verdict_line(self.readiness, self.error, age, stale)])
        readiness = self.query_one("#fallback-readiness", Static)
        servers = self.query_one("#fallback-servers", Static)
        if self.readiness is None:
            readiness.update("")
            servers.update("")
            return
        lines = readiness_lines(self.readiness, self.fallback_version, now, stale)
        readiness.update(Group(lines, Text(f"\nas last read, {age:.0f}s ago", style="bold yellow")) if stale
                         else lines)
        state = self.readiness.state
        default = Text(f"answered by the router's fixed default: {state.default_answers} · failed answers "
                       f"callers got: {state.failed_answers}", style="dim")
        servers.update(Group(servers_table(self.readiness), default))

    # -- keys ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ACTING and self.host.read_only:
            return False
        return True

    def action_engage(self) -> None:
        self.host.act(engage_request())

    def action_restore(self) -> None:
        self.host.act(restore_request())

    def action_drill(self) -> None:
        from console.tui.dialogs.prompt import TextPrompt

        def asked(text: str | None) -> None:
            if text is None:
                return
            try:
                seconds = float(text or DRILL_SECONDS)
            except ValueError:
                seconds = 0.0
            if not 1 <= seconds <= 300:
                self.notify("a drill lasts 1 to 300 seconds", severity="warning")
                return
            self.host.act(drill_request(seconds))

        self.app.push_screen(TextPrompt(f"Drill the fallback of {self.host.model}: seconds with the primaries out",
                                        str(DRILL_SECONDS), allow_empty=True), asked)
