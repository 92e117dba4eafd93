"""The fleet view: every model on one screen, worst first; Enter opens the model's overview.

It opens first when more than one model is configured (``w`` comes back to it from
an overview). It owns its poll: a thread worker reads the whole fleet
(:class:`~console.services.fleet.FleetStatus`: one query per catalogue metric for
every model, each model's registry and router, the journal once) and posts a
:class:`FleetRead`; its handler paints and schedules the next read ``refresh_s``
after this one ended, so reads never overlap. A failed read keeps the last rows
on screen, and the header says why.

Each row: the model's state (symbol and word: the worst verdict of its live cells),
how many cells breach (and, when wide, which), the router's split, its open
incident, its readiness, and who is acting (``⚙``: holds the action lock now; else
who opened the incident). Readiness is not measured here (a measurement loads the
previous version's artifacts, seconds per model): the row shows ``—`` and the
model's own readiness view (``y``) measures it. Rows keep their key (the model), so
the highlighted model stays highlighted when the order changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.domain.verdicts import SYMBOL, WORD, State
from console.tui.widgets.marked_options import BLANK, MARK

if TYPE_CHECKING:
    from textual.timer import Timer

    from console.domain.fleet import FleetRow
    from console.services.fleet import FleetSnapshot, FleetStatus

STATE_STYLE = {State.BREACH: "bold red", State.SUSPECT: "bold yellow", State.PASS: "green",
               State.NO_DATA: "dim", State.LOW_TRAFFIC: "dim", State.INFO: "dim"}
"""Each state's style: the symbol and the word say it, the colour only repeats it."""
NOT_MEASURED = "—"
LEGEND = ("↑↓ choose, Enter opens the model · ✗ breach · ! suspect · ✓ ok · ? no data · "
          "⚠ a system could not be read · ⚙ acting now · ready — : not measured here (y on the model)")


@dataclass
class FleetRead(Message):
    """One read of the whole fleet, or why it failed."""

    snapshot: FleetSnapshot | None
    error: str | None = None


@dataclass(frozen=True)
class Columns:
    """Column widths for a terminal width (the model and acting columns take what is left)."""

    model: int
    breaching: int
    split: int
    incident: int
    ready: int
    acting: int

    @classmethod
    def for_width(cls, width: int) -> Columns:
        usable = max(60, width - 4)  # the mark, the scrollbar
        if usable < 110:
            fixed = {"breaching": 5, "split": 13, "incident": 9, "ready": 5}
            rest = usable - 9 - sum(fixed.values()) - 6
            return cls(model=max(10, rest * 5 // 9), acting=max(6, rest - rest * 5 // 9), **fixed)
        fixed = {"breaching": 30, "split": 22, "incident": 26, "ready": 7}
        rest = usable - 9 - sum(fixed.values()) - 6
        return cls(model=max(12, rest // 2), acting=max(8, rest - rest // 2), **fixed)


def _cell(text: str | Text, width: int, style: str = "") -> Text:
    shown = text if isinstance(text, Text) else Text(text, style=style)
    shown = shown.copy()
    shown.truncate(width, overflow="ellipsis", pad=True)
    return shown


def _split(row: FleetRow) -> str:
    return " · ".join(f"v{version} {share * 100:.0f}" for version, share in row.split) or NOT_MEASURED


def _breaching(row: FleetRow, width: int) -> str:
    if not row.breaching:
        return "0" if row.cells else NOT_MEASURED
    count = str(len(row.breaching))
    if width < 12:
        return count
    first = row.breaching[0]
    more = f" +{len(row.breaching) - 1}" if len(row.breaching) > 1 else ""
    return f"{count}: v{first.version} {first.segment} {first.metric}{more}"


def _incident(row: FleetRow, width: int) -> str:
    if row.incident is None:
        return "none"
    if width < 12:
        return row.incident.severity
    return f"{row.incident.severity} {row.incident.summary}"


def row_text(row: FleetRow, columns: Columns) -> Text:
    """One model's line in the given columns."""
    state = Text(f"{'⚠' if row.failing and row.state is not State.BREACH else SYMBOL[row.state]} "
                 f"{WORD[row.state]}", style=STATE_STYLE[row.state])
    acting = NOT_MEASURED if row.acting is None else (f"⚙ {row.acting}" if row.acting_now else row.acting)
    parts = [
        _cell(state, 9), _cell(row.model, columns.model, "bold"),
        _cell(_breaching(row, columns.breaching), columns.breaching, "bold red" if row.breaching else ""),
        _cell(_split(row), columns.split), _cell(_incident(row, columns.incident), columns.incident,
                                                 "bold" if row.incident else "dim"),
        _cell(row.readiness or NOT_MEASURED, columns.ready, "dim" if row.readiness is None else ""),
        _cell(acting, columns.acting, "bold" if row.acting_now else ""),
    ]
    return Text(" ").join(parts)


def heading(columns: Columns) -> Text:
    """The column titles, aligned with :func:`row_text`."""
    breaching = "breaching" if columns.breaching >= 12 else "✗"
    titles = [("state", 9), ("model", columns.model), (breaching, columns.breaching), ("traffic split", columns.split),
              ("incident", columns.incident), ("ready", columns.ready), ("acting", columns.acting)]
    return Text(BLANK) + Text(" ").join(_cell(title, width, "bold") for title, width in titles)


class FleetList(OptionList):
    """The fleet's rows, keyed by model: a refresh keeps the highlighted model, marked ``▸`` (not by colour)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self._shown: list[tuple[str, Text]] = []
        self._marked_index: int | None = None

    def show(self, rows: list[tuple[str, Text]]) -> None:
        """Show ``(model, line)`` rows; nothing is redrawn when nothing changed."""
        if [(m, t.plain, t.spans) for m, t in rows] == [(m, t.plain, t.spans) for m, t in self._shown]:
            return
        highlighted = self.highlighted_model
        self._shown = rows
        self._marked_index = None
        self.set_options([Option(self._marked(text, False), id=model) for model, text in rows])
        models = [model for model, _ in rows]
        self.highlighted = models.index(highlighted) if highlighted in models else (0 if rows else None)

    @property
    def highlighted_model(self) -> str | None:
        """The model of the highlighted row."""
        index = self.highlighted
        return self._shown[index][0] if index is not None and index < len(self._shown) else None

    @staticmethod
    def _marked(text: Text, marked: bool) -> Text:
        return Text(MARK if marked else BLANK, style="bold" if marked else "") + text

    def watch_highlighted(self, highlighted: int | None) -> None:
        super().watch_highlighted(highlighted)
        if highlighted == self._marked_index:
            return
        for index, marked in ((self._marked_index, False), (highlighted, True)):
            if index is not None and index < len(self._shown) and index < self.option_count:
                self.replace_option_prompt_at_index(index, self._marked(self._shown[index][1], marked))
        self._marked_index = highlighted


class FleetScreen(Screen[None]):
    """Every model, worst first."""

    BINDINGS = [
        Binding("enter", "open", "open the model"),
        Binding("R,shift+r", "read", "read again"),
        Binding("escape,w", "back", "overview"),
    ]
    AUTO_FOCUS = "#fleet-rows"
    FLEET = True
    """The console's model actions (roll back, playbooks, ...) are not offered here: they act on one model."""

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: FleetSnapshot | None = None
        self.error: str | None = None
        self.reads = 0
        self._service: FleetStatus | None = None
        self._reading = False
        self._next: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="fleet-header")
        yield Static("", id="fleet-heading")
        yield FleetList(id="fleet-rows")
        yield Static(LEGEND, id="fleet-legend")
        yield Footer()

    def on_mount(self) -> None:
        self._paint()
        self._start_read()

    def _start_read(self) -> None:
        """Read the fleet now, unless a read is under way (its end schedules the next)."""
        if self._next is not None:
            self._next.stop()
            self._next = None
        if not self._reading:
            self._reading = True
            self._read()

    def on_resize(self) -> None:
        self.call_after_refresh(self._paint)

    # -- the poll -------------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, exclusive=False, group="fleet", name="read the fleet")
    def _read(self) -> None:
        """Read the whole fleet (never raises: a failure is a message)."""
        try:
            service = self._service or self._build()
            snapshot = service.read(list(self.app.models))  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a poll must never close the app
            self.post_message(FleetRead(None, str(exc)))
        else:
            self.post_message(FleetRead(snapshot))

    def _build(self) -> FleetStatus:
        from console.services.fleet import FleetStatus

        backend = self.app.backend  # type: ignore[attr-defined]
        live = backend.live()
        rollback = backend.rollback()
        self._service = FleetStatus(live.registry, live.router, live.metrics, live.catalogue, live.traffic_metric,
                                    live.stable_alias, journal=rollback.journal, lock=rollback.lock,
                                    clock=self.app.options.clock)  # type: ignore[attr-defined]
        return self._service

    @on(FleetRead)
    def _fleet_read(self, message: FleetRead) -> None:
        self._reading = False
        self.reads += 1
        if message.snapshot is not None:
            self.snapshot, self.error = message.snapshot, None
        else:
            self.error = message.error
        self._paint()
        if self.is_attached:
            refresh_s = self.app.options.refresh_s  # type: ignore[attr-defined]
            self._next = self.set_timer(refresh_s, self._start_read, name="next fleet read")

    def on_unmount(self) -> None:
        if self._service is not None:
            self._service.close()

    # -- painting -------------------------------------------------------------------------------
    def _paint(self) -> None:
        columns = Columns.for_width(self.size.width or self.app.size.width)
        self.query_one("#fleet-header", Static).update(self._header())
        self.query_one("#fleet-heading", Static).update(heading(columns))
        rows = self.snapshot.rows if self.snapshot is not None else ()
        self.query_one(FleetList).show([(row.model, row_text(row, columns)) for row in rows])

    def _header(self) -> Text:
        models = len(self.app.models)  # type: ignore[attr-defined]
        text = Text.assemble(("Fleet", "bold"), f"  {models} models")
        snapshot = self.snapshot
        if snapshot is None:
            text.append("  reading every model…" if self.error is None else "", style="dim")
        else:
            breaching = sum(1 for row in snapshot.rows if row.state is State.BREACH)
            incidents = sum(1 for row in snapshot.rows if row.incident is not None)
            text.append(f"  ·  {breaching} breaching", style="bold red" if breaching else "")
            text.append(f"  ·  {incidents} open incident{'s' if incidents != 1 else ''}")
            at = datetime.fromtimestamp(snapshot.evaluated_at, UTC)
            text.append(f"  ·  evaluated {at:%H:%M:%S} UTC", style="dim")
            if snapshot.metrics_error:
                text.append(f"\n⚠ metrics: {snapshot.metrics_error}", style="bold yellow")
            if snapshot.journal_error:
                text.append(f"\n⚠ journal: {snapshot.journal_error}", style="yellow")
        if self.error:
            text.append(f"\n⚠ the fleet could not be read: {self.error}", style="bold yellow")
        return text

    # -- keys -----------------------------------------------------------------------------------
    def action_open(self) -> None:
        model = self.query_one(FleetList).highlighted_model
        if model is not None:
            self.app.open_model(model)  # type: ignore[attr-defined]

    @on(OptionList.OptionSelected, "#fleet-rows")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.app.open_model(event.option.id)  # type: ignore[attr-defined]

    def action_read(self) -> None:
        self._start_read()

    def action_back(self) -> None:
        self.app.pop_screen()
