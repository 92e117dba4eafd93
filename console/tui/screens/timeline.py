"""The timeline of the model's current incident: events as they are journaled, by any console or machine."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from console.domain.incident import IncidentSummary, timeline_rows
from console.domain.journal import Event

MARK_STYLE = {"D": "bold cyan", "A": "bold magenta"}


class TimelineScreen(Screen[None]):
    """Events appended as they arrive (only new ones are written: nothing is repainted every refresh)."""

    BINDINGS = [
        Binding("n", "app.note", "note"),
        Binding("o", "app.open_incident", "open"),
        Binding("c", "app.close_incident", "close"),
        Binding("x", "app.export", "export"),
        Binding("escape,t", "app.pop_screen", "back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.shown_seq = 0
        self.incident_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="timeline-header")
        yield RichLog(id="timeline-log", wrap=True, markup=False, highlight=False, auto_scroll=True)
        yield Footer()

    def show(self, incident: IncidentSummary | None, events: list[Event], note: str | None = None) -> None:
        """Show the incident's facts and append the events not shown yet."""
        header = self.query_one("#timeline-header", Static)
        log = self.query_one("#timeline-log", RichLog)
        if incident is None:
            header.update(Text.assemble(("No open incident for this model.", "bold"),
                                        "  o: open one  ·  Esc: back to the overview"))
            if self.incident_id is not None:
                log.clear()
            self.incident_id, self.shown_seq = None, 0
            return
        if incident.incident_id != self.incident_id:
            log.clear()
            self.incident_id, self.shown_seq = incident.incident_id, 0
        header.update(Text.assemble(
            (incident.incident_id, "bold"), f"  {incident.severity}  {incident.status}  ",
            (incident.summary, "italic"), f"  ·  {len(events)} events",
            ("" if note is None else f"\n{note}", "yellow")))
        # Rows fold runs of checks; a run still growing is rewritten from its first event on.
        rows = timeline_rows(events)
        fresh = [row for row in rows if row.last_seq > self.shown_seq]
        if fresh and fresh[0].first_seq <= self.shown_seq:
            fresh = fresh[1:]  # the run's first line is shown already; its growth shows in the next row
        width = self.size.width
        who_width = 18 if width >= 100 else 12
        for row in fresh:
            line = Table.grid(padding=(0, 1), expand=True)
            line.add_column(width=9, style="dim", no_wrap=True)
            line.add_column(width=who_width, no_wrap=True, overflow="ellipsis")
            line.add_column(width=3, no_wrap=True)
            line.add_column(ratio=1)
            line.add_row(f"{row.ts[11:19]}Z", row.actor.label(),
                         Text(row.marker, style=MARK_STYLE.get(row.marker[:1], "")), row.text)
            # Rendered at the log's width less its padding and scrollbar: never clipped on the right.
            log.write(line, width=max(20, (log.size.width or width) - 3))
        if rows:
            self.shown_seq = max(self.shown_seq, rows[-1].last_seq)
