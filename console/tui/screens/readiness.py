"""The readiness view: could the model be rolled back now? Every condition measured on the real systems.

It owns its measurement, its keys and its messages. The check takes seconds (it
downloads and loads the previous version's artifacts), so a thread worker runs
:meth:`ReadinessService.check` when the view opens and again on ``R``, while the
header says "measuring…" and the last report stays on screen; the worker posts a
:class:`ReadinessMeasured`, whose handler keeps it and paints. A check that fails
is shown as such (the last report stays, with its time), never a crash. Nothing
is polled: a measurement loads artifacts, so it runs only when asked for.

The view is read-only: a waiver is journaled with ``rewind ready --waive``, which
the selected condition's details spell out.

Layout: the model, the verdict (``✓ READY``, ``✗ NOT READY (4/6 true, 1
unknown)``, ``? UNKNOWN (...)``) and when it was measured; one row per condition
(its mark and status word, type, reason and what was measured, cut at the width),
with a second row for each that does not hold: how to fix it, or its waiver; under
them, the selected condition in full, wrapped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static

from console.domain.errors import RewindError
from console.domain.readiness import Condition, Report, Status, Waiver
from console.tui.widgets.line_stack import LineStack
from console.tui.widgets.marked_options import MarkedOptionList

if TYPE_CHECKING:
    from console.tui.acting import ConsoleHost
    from console.tui.backend import Backend

STATUS_MARK = {Status.TRUE: ("✓", "green"), Status.FALSE: ("✗", "bold red"), Status.UNKNOWN: ("?", "bold yellow")}
"""Each status' symbol and style: the symbol and the word say it, the colour only repeats it."""
VERDICT_MARK = {0: ("✓", "bold green"), 1: ("✗", "bold red"), 2: ("?", "bold yellow")}
"""The verdict's symbol and style by the report's exit code (0 ready, 1 not ready, 2 unknown)."""
STATUS_WIDTH = 9
"""``? unknown``: the widest mark and status word."""
SLOW_NOTE = "the previous version's artifacts are downloaded and loaded: this takes a few seconds"
LEGEND = ("✓ true: measured, it holds · ✗ false: measured, it does not · ? unknown: it could not be measured "
          "(never a pass) · ≈ waived: accepted until the waiver expires")


@dataclass
class ReadinessMeasured(Message):
    """A measurement of the model's readiness, or why it could not be made.

    Attributes:
        model: the model measured.
        report: the conditions and waivers (``None``: the check failed).
        took_s: how long the check took, on the console's clock.
        error: why there is no report.
    """

    model: str
    report: Report | None
    took_s: float = 0.0
    error: str | None = None


def utc_time(stamp: str) -> str:
    """``20:26:40 UTC`` of an ISO 8601 time (``2026-05-28T20:26:40Z``); the text itself when it is not one."""
    try:
        return f"{datetime.fromisoformat(stamp):%H:%M:%S} UTC"
    except ValueError:
        return stamp


def verdict_text(report: Report) -> Text:
    """``✓ READY``, ``✗ NOT READY (4/6 true, 1 unknown)`` or ``? UNKNOWN (...)``, in the verdict's style."""
    mark, style = VERDICT_MARK[report.exit_code]
    return Text(f"{mark} {report.verdict()}", style=style)


def measured_text(report: Report | None, took_s: float | None, measuring: bool, error: str | None) -> Text:
    """When the report on screen was measured and how long it took; measuring now, or why it failed."""
    line = Text()
    if report is not None:
        line.append(f"measured {utc_time(report.checked_at)}")
        if took_s is not None:
            line.append(f", took {took_s:.1f} s")
    if measuring:
        if line:
            line.append(" · ")
        line.append("measuring…", style="bold italic")
        line.append(" (a few seconds: the previous version's artifacts load)" if report is None
                    else " (the last report stays until then)", style="italic")
    elif error is not None:
        if line:
            line.append(" · ")
        line.append(f"✗ could not measure: {error}", style="bold red")
        line.append(" · R: try again")
    elif report is not None:
        line.append(" · R: measure again", style="dim")
    return line


def status_cell(condition: Condition) -> Text:
    """``✓ true``, ``✗ false`` or ``? unknown``, padded to one width."""
    mark, style = STATUS_MARK[condition.status]
    cell = Text()
    cell.append(f"{mark} {condition.status.value}".ljust(STATUS_WIDTH), style=style)
    return cell


def waiver_text(waiver: Waiver) -> str:
    """``waived until 2026-06-04 09:00 UTC by dana@host: the owner is on leave``."""
    try:
        until = f"{datetime.fromisoformat(waiver.expires_at):%Y-%m-%d %H:%M} UTC"
    except ValueError:
        until = waiver.expires_at
    return f"waived until {until} by {waiver.by}: {waiver.reason}"


def condition_prompt(condition: Condition, width: int, type_width: int) -> Text:
    """A condition's row, cut at ``width``: its status, type, reason and what was measured; for one that does
    not hold, a second row with how to fix it, or its waiver."""
    row = status_cell(condition)
    row.append("  ")
    row.append(condition.type.ljust(type_width), style="bold")
    row.append("  ")
    row.append(condition.reason, style="" if condition.status is Status.TRUE else "bold")
    row.append(f": {condition.message}")
    row.truncate(width, overflow="ellipsis")
    follow = None
    if condition.waiver is not None:
        follow = Text.assemble(("≈ ", "bold"), waiver_text(condition.waiver))
    elif condition.status is not Status.TRUE and condition.remedy:
        follow = Text.assemble(("fix: ", "bold"), condition.remedy)
    if follow is None:
        return row
    second = Text(" " * (STATUS_WIDTH + 2)) + follow
    second.truncate(width, overflow="ellipsis")
    return Text("\n").join([row, second])


def _value(value: object) -> str:
    """A measured value for people: lists and mappings spelled out, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_value(item)}" for key, item in value.items()) or "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def condition_details(condition: Condition, model: str) -> Group:
    """The selected condition in full, wrapped: status and reason, what was measured, how to fix it, its waiver,
    the measured values, and how to waive it (from the command line: the console never waives)."""
    mark, style = STATUS_MARK[condition.status]
    title = Text.assemble((condition.type, "bold"), "  ", (f"{mark} {condition.status.value}", style), "  ",
                          (condition.reason, "bold"))
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("measured", condition.message)
    if condition.status is not Status.TRUE and condition.remedy:
        table.add_row("fix", condition.remedy)
    if condition.waiver is not None:
        table.add_row("waiver", waiver_text(condition.waiver))
    if condition.measured:
        table.add_row("values", " · ".join(f"{key}: {_value(value)}" for key, value in condition.measured.items()))
    if condition.status is not Status.TRUE and condition.waiver is None:
        table.add_row("waive", Text(f"rewind ready --model {model} --waive {condition.type} --reason TEXT --days N "
                                    "(journaled, with its expiry; the console never waives)", style="dim"))
    return Group(title, table)


class ReadinessScreen(Screen[None]):
    """The model's rollback readiness: the verdict, every condition, the selected one in full; R measures again."""

    BINDINGS = [
        Binding("R,shift+r", "measure", "measure again"),
        Binding("S,shift+s", "app.stats", "stats"),
        Binding("escape,b,y", "app.pop_screen", "back"),
    ]

    AUTO_FOCUS = "#ready-conditions"  # ↑↓ choose the condition shown in full (focused again at the first report)
    OFFERS_STATS = True  # the console's ``S`` (speed to rollback) works here too

    def __init__(self) -> None:
        super().__init__()
        self.report: Report | None = None
        self.took_s: float | None = None
        self.error: str | None = None
        self.measuring = False
        self.measurements = 0
        """Measurements handled (a report or an error)."""
        self._shown: tuple[object, ...] | None = None
        self._listed_once = False

    @property
    def host(self) -> ConsoleHost:
        return cast("ConsoleHost", self.app)

    def compose(self) -> ComposeResult:
        yield LineStack(id="ready-header")
        yield MarkedOptionList(id="ready-conditions")
        with VerticalScroll(id="ready-detail"):
            yield Static("", id="ready-detail-text")
        yield Footer()

    def on_mount(self) -> None:
        self.paint()
        self.call_after_refresh(self.action_measure)  # never on the first frame's path

    def on_resize(self, event: events.Resize) -> None:
        self._shown = None
        self.paint()

    # -- measuring -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "measure" and self.measuring:
            return None  # shown, dimmed, while a measurement is under way
        return True

    def action_measure(self) -> None:
        """Measure again, in a thread worker; a measurement under way is not started twice."""
        host = self.host
        if self.measuring:
            self.notify("measuring already", timeout=2)
            return
        if not host.backend_ready or not host.model:
            self.error = "the config is still loading: try again in a moment"
            self.paint()
            return
        self.measuring = True
        self.refresh_bindings()
        self.paint()
        self._measure(host.model, host.backend, host.options.clock)

    @work(thread=True, exit_on_error=False, group="readiness", name="measure readiness")
    def _measure(self, model: str, backend: Backend, clock: Callable[[], float]) -> None:
        """In a thread: the check (artifacts loaded, systems asked); whatever it raises becomes the view's error."""
        started = clock()
        try:
            report = backend.readiness().check(model)
        except RewindError as exc:
            self.post_message(ReadinessMeasured(model, None, clock() - started, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a failed check is shown, never a crash
            self.post_message(ReadinessMeasured(model, None, clock() - started,
                                                f"{exc.__class__.__name__}: {exc}"))
        else:
            self.post_message(ReadinessMeasured(model, report, clock() - started))

    @on(ReadinessMeasured)
    def _measured(self, message: ReadinessMeasured) -> None:
        self.measuring = False
        self.measurements += 1
        if message.report is not None:
            self.report, self.took_s, self.error = message.report, message.took_s, None
        else:  # the last report stays, with its time, under the error
            self.error = message.error
        self.refresh_bindings()
        self.paint()

    # -- painting ------------------------------------------------------------------------------
    def paint(self) -> None:
        if not self.is_mounted:
            return
        report = self.report
        header = [Text.assemble(" ", ("Rollback readiness of ", "bold"),
                                (report.model if report is not None else self.host.model, "bold"))]
        if report is not None:
            header.append(Text(" ") + verdict_text(report))
        header.append(Text(" ") + measured_text(report, self.took_s, self.measuring, self.error))
        self.query_one("#ready-header", LineStack).show(header)
        conditions = self.query_one("#ready-conditions", MarkedOptionList)
        key = (report, conditions.size.width)
        if key != self._shown:
            self._shown = key
            self._list(report, conditions)
        self._detail()

    def _list(self, report: Report | None, conditions: MarkedOptionList) -> None:
        """One option per condition (its rows cut at the list's width), the waivers of conditions that hold."""
        selected = conditions.highlighted
        conditions.display = report is not None
        if report is None:
            conditions.show([])
            return
        # The list's width less its padding and the highlight mark; a scrollbar may take one more column.
        width = max(20, (conditions.size.width or self.size.width or 80) - 5)
        type_width = max(len(c.type) for c in report.conditions)
        entries: list[tuple[str | None, Text, bool]] = [
            (condition.type, condition_prompt(condition, width, type_width), False)
            for condition in report.conditions]
        for waiver in report.waivers:
            if not any(c.waiver == waiver for c in report.conditions):
                line = Text(f"waiver of {waiver.condition} (it holds now anyway): {waiver_text(waiver)}", style="dim")
                line.truncate(width, overflow="ellipsis")
                entries.append((None, line, True))
        conditions.show(entries)
        if selected is not None and selected < len(report.conditions):
            conditions.highlighted = selected
        if not self._listed_once:  # hidden until the first report, the list could not take the focus on mount
            self._listed_once = True
            conditions.focus()

    def _detail(self) -> None:
        """The selected condition in full; above it, the whole error of a failed measurement."""
        detail = self.query_one("#ready-detail-text", Static)
        conditions = self.query_one("#ready-conditions", MarkedOptionList)
        report = self.report
        index = conditions.highlighted
        parts: list[RenderableType] = []
        if self.error is not None and not self.measuring:
            parts.append(Text.assemble(("✗ could not measure: ", "bold red"), self.error))
            parts.append(Text("R tries again" + ("; the last report stays above, with its time" if report else ""),
                              style="dim"))
        if self.measuring and report is None:
            parts.append(Text(SLOW_NOTE, style="italic"))
        if report is not None and index is not None and index < len(report.conditions):
            if parts:
                parts.append(Text(""))
            parts += [condition_details(report.conditions[index], report.model), Text(""), Text(LEGEND, style="dim")]
        detail.update(Group(*parts))

    @on(OptionList.OptionHighlighted, "#ready-conditions")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._detail()
