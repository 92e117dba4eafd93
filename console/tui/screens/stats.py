"""The stats view: how fast the model's rollbacks recover, phase by phase, from the journal's verified chains.

It owns its reads, its keys and its messages. A thread worker reads the journal
(:meth:`RecoveryStats.report`: every chain of the window verified, then
summarised) and posts a :class:`StatsRead`; the handler keeps it and paints. The
next read is chained to the end of the previous one, every
:data:`MIN_INTERVAL_S` (an open incident's running time moves; the rest changes
only when an incident does). ``d`` switches between real incidents and drills,
which are kept apart as ``rewind stats --drills`` keeps them; each population's
last read stays, so switching back shows it at once while it is read again.

Layout: the model, the population and the window; the counts (open incidents
"N open, running for …", never dropped; those closed without a verified
rollback; those over ten minutes; chains left out); per phase n, p50, p90 (every
value while n < 10) and max; the same for the total per playbook; the monthly
trend, a bar per month with its n; what each phase measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from console.domain.recovery import (
    EVERY_VALUE_BELOW,
    PHASE_MEANING,
    SLOW_RECOVERY_S,
    Phase,
    PhaseSummary,
    Status,
    TrendPoint,
    duration_text,
)
from console.tui.polling import PolledScreen
from console.tui.widgets.line_stack import LineStack

if TYPE_CHECKING:
    from console.services.recovery import RecoveryReport
    from console.tui.backend import Backend

MIN_INTERVAL_S = 60.0
"""The journal is read at most this often (``stats_wall_ms`` is up to a second over 1,000 incidents)."""
WINDOW = "90d"
"""The window, as ``rewind stats`` reads it by default."""
LISTED = 4
"""How many incident ids a line names before it counts the rest."""
BAR_WIDTH = 24
"""The longest trend bar, in cells (the slowest month's p50)."""
EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass
class StatsRead(Message):
    """The speed to rollback of one population (real incidents, or drills) as read now, or why not.

    Attributes:
        model: the model read.
        drills: whether it is of drills.
        report: the recoveries and their summaries (``None``: the read failed).
        error: why there is no report.
    """

    model: str
    drills: bool
    report: RecoveryReport | None
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatsRead) and message.drills == self.drills


def _utc(unix_seconds: float, form: str) -> str:
    return f"{datetime.fromtimestamp(unix_seconds, UTC):{form}}"


def _ids(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def population(drills: bool, n: int = 2) -> str:
    """``real incidents`` / ``drills`` (``real incident`` / ``drill`` for one)."""
    word = "drill" if drills else "real incident"
    return word if n == 1 else word + "s"


def counts_part(report: RecoveryReport) -> RenderableType:
    """How many were counted and how they stand: open ones with their running time, unverified, slow, left out."""
    summary = report.summary
    kind = population(report.drills)
    lines: list[Text] = []
    if report.left_out:
        ids = [item.incident_id for item in report.left_out]
        lines.append(Text(f"? {len(ids)} left out: the chain does not verify ({_ids(ids)}; rewind journal verify)",
                          style="bold yellow"))
    recovered = summary.of_status(Status.RECOVERED)
    opened = summary.of_status(Status.OPEN)
    unverified = summary.of_status(Status.NOT_VERIFIED)
    untimed = summary.of_status(Status.NO_ROLLBACK)
    if not summary.counted:
        lines.append(Text(f"no rollback of {report.model or 'any model'} among the {kind} of the last "
                          f"{report.since}", style="italic"))
        return Group(*lines)
    said = [f"{len(recovered)} rolled back and verified", f"{len(opened)} open"]
    if unverified:
        said.append(f"{len(unverified)} closed without a verified rollback")
    if untimed:
        said.append(f"{len(untimed)} without a rollback (not timed)")
    lines.append(Text.assemble((f"{summary.counted + len(untimed)} {kind}", "bold"), ": " + ", ".join(said)))
    if opened:
        running = [f"{duration_text(r.running_s(report.now))} ({r.incident_id})" for r in opened]
        lines.append(Text(f"⚠ {len(opened)} open, running for {_ids(running)}", style="bold yellow"))
    if unverified:
        lines.append(Text(f"✗ closed without a verified rollback: {_ids([r.incident_id for r in unverified])}",
                          style="bold red"))
    if summary.slow:
        lines.append(Text(f"⚠ {len(summary.slow)} over {SLOW_RECOVERY_S / 60:g} min: {_ids(summary.slow)}",
                          style="yellow"))
    return Group(*lines)


def spread_cell(summary: PhaseSummary, width: int) -> Text:
    """The p90, or every value (ascending) while n < :data:`EVERY_VALUE_BELOW`, in lines of at most ``width``
    that break only between two values (never inside ``3 min 30 s``)."""
    if summary.n == 0:
        return Text("-")
    if summary.values is None:
        return Text(duration_text(summary.p90))
    cell = Text()
    cell.append("every value:", style="dim")
    used = cell.cell_len
    values = [duration_text(v) for v in summary.values]
    for index, value in enumerate(values):
        piece = value + ("," if index < len(values) - 1 else "")
        if used + 1 + len(piece) > width:
            cell.append("\n" + piece)
            used = len(piece)
        else:
            cell.append(" " + piece)
            used += 1 + len(piece)
    return cell


SPREAD_TITLE = f"p90 (every value while n < {EVERY_VALUE_BELOW})"


def _spread_table(title: str, first: str, rows: Sequence[tuple[Text, PhaseSummary, tuple[str, ...]]],
                  extra: tuple[str, ...], width: int) -> Table:
    """``first``, n, p50, the spread, max (and ``extra`` columns): the spread takes what the others leave of
    ``width``, so a list of every value wraps between values."""
    columns: list[tuple[str, list[str]]] = [
        (first, [label.plain for label, _, _ in rows]),
        ("n", [str(s.n) for _, s, _ in rows]),
        ("p50", [duration_text(s.p50) for _, s, _ in rows]),
        ("max", [duration_text(s.max) for _, s, _ in rows]),
        *((name, [more[index] for _, _, more in rows]) for index, name in enumerate(extra)),
    ]
    fixed = sum(max([len(name), *(len(cell) for cell in cells)]) for name, cells in columns)
    gaps = 3 * len(columns)  # between two columns: a cell of padding each side and the box's divider
    natural = max([len(SPREAD_TITLE), *(spread_cell(s, 1_000).cell_len for _, s, _ in rows)])
    spread = max(12, min(natural, width - fixed - gaps))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title=title, title_justify="left",
                  title_style="bold")
    table.add_column(first, no_wrap=True, overflow="ellipsis")
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("p50", justify="right", no_wrap=True)
    table.add_column(SPREAD_TITLE if spread >= len(SPREAD_TITLE) else "p90, or every value (n < 10)", width=spread)
    table.add_column("max", justify="right", no_wrap=True)
    for name in extra:
        table.add_column(name, justify="right", no_wrap=True)
    for index, (label, summary, more) in enumerate(rows):
        table.add_row(label, columns[1][1][index], columns[2][1][index], spread_cell(summary, spread),
                      columns[3][1][index], *more)
    return table


def phases_part(report: RecoveryReport, width: int) -> RenderableType | None:
    """Per phase of the model's recoveries: n, p50, p90 or every value, max (``None``: none recovered)."""
    groups = report.summary.by_model
    if not groups or not groups[0].recovered:
        return None
    group = groups[0]
    rows = [(Text(str(p.phase), style="bold" if p.phase is Phase.TOTAL else ""), p, ()) for p in group.phases]
    return _spread_table(f"Phases of the {group.recovered} rolled back and verified", "phase", rows, (), width)


def playbooks_part(report: RecoveryReport, width: int) -> RenderableType | None:
    """Per playbook, the total: n, p50, p90 or every value, max, and how many are open."""
    groups = [g for g in report.summary.by_playbook if g.recovered or g.open]
    if not groups:
        return None
    rows = [(Text(g.key), next(p for p in g.phases if p.phase is Phase.TOTAL), (str(g.open) if g.open else "-",))
            for g in groups]
    return _spread_table("Total per playbook", "playbook", rows, ("open",), width)


def trend_bar(value: float | None, longest: float, width: int = BAR_WIDTH) -> str:
    """A bar of ``value`` against ``longest`` in eighths of a cell; at least a sliver for any value."""
    if value is None or longest <= 0:
        return ""
    eighths = max(1, round(value / longest * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[rest] if rest else "")


def trend_part(points: Sequence[TrendPoint], width: int = BAR_WIDTH) -> RenderableType | None:
    """Per opening month: n, the total's p50 and max, and the p50 as a bar (the slowest month's the longest);
    a month without a rollback says so."""
    if not points:
        return None
    longest = max((p.p50 for p in points if p.p50 is not None), default=0.0)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title="Trend of the total by opening month",
                  title_justify="left", title_style="bold")
    table.add_column("month", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("p50", justify="right", no_wrap=True)
    table.add_column("max", justify="right", no_wrap=True)
    table.add_column("p50 as a bar", no_wrap=True, width=width)
    for point in points:
        if not point.n:
            table.add_row(point.month, "0", "-", "-", Text("no rollback", style="dim"))
            continue
        table.add_row(point.month, str(point.n), duration_text(point.p50), duration_text(point.max),
                      trend_bar(point.p50, longest, width))
    return table


def meaning_part() -> RenderableType:
    """What each phase measures, between which journal events."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True, style="bold")
    table.add_column(style="dim")
    for phase, meaning in PHASE_MEANING.items():
        table.add_row(str(phase), meaning)
    return Group(Text("What each phase measures (seconds between journal events; nearest rank, no means)",
                      style="bold"), table)


def read_stats(model: str, backend: Backend, drills: bool) -> StatsRead:
    """In a thread: the window's chains verified and summarised, of one population."""
    return StatsRead(model, drills, backend.recovery_stats().report(model, WINDOW, drills=drills))


class StatsScreen(PolledScreen):
    """The model's speed to rollback: counts, phases, per playbook, the monthly trend; ``d`` real incidents ⇄ drills."""

    BINDINGS = [
        # One key, two meanings: the footer names the population ``d`` switches to.
        Binding("d", "population(True)", "drills"),
        Binding("d", "population(False)", "real incidents"),
        Binding("escape,b,S,shift+s", "app.pop_screen", "back"),
    ]

    GROUP = "stats-read"
    AUTO_FOCUS = "#stats-body"  # the keys (↑↓ PgUp PgDn) scroll the body at once

    def __init__(self) -> None:
        super().__init__()
        self.drills = False
        self.reads_of: dict[tuple[str, bool], StatsRead] = {}
        """Each model's and population's last good read."""
        self.error: str | None = None
        self._painted: tuple[object, ...] | None = None

    @property
    def interval_s(self) -> float:
        return max(MIN_INTERVAL_S, self.host.options.refresh_s)

    def fetch(self, model: str, backend: Backend, now: float) -> StatsRead:
        return read_stats(model, backend, self.drills)

    def failed(self, model: str, error: str, now: float) -> StatsRead:
        return StatsRead(model, self.drills, None, error)

    def compose(self) -> ComposeResult:
        yield LineStack(id="stats-header")
        with VerticalScroll(id="stats-body"):
            yield Static("", id="stats-counts")
            yield Static("", id="stats-phases")
            yield Static("", id="stats-playbooks")
            yield Static("", id="stats-trend")
            yield Static("", id="stats-meaning")
        yield Footer()

    @on(StatsRead)
    def _stats_read(self, message: StatsRead) -> None:
        if message.model == self.host.model:
            if message.report is not None:
                self.reads_of[(message.model, message.drills)] = message
            if message.drills == self.drills:
                self.error = message.error
            self.paint()
        self.poll.done()

    # -- keys ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "population":
            return parameters != (self.drills,)
        return True

    def action_population(self, drills: bool) -> None:
        """Show drills (or real incidents): the last read of them at once, and a new read."""
        self.drills = drills
        self.error = None
        self.refresh_bindings()
        self.paint()
        self.poll.soon()

    # -- painting --------------------------------------------------------------------------------
    def paint(self) -> None:
        if not self.is_mounted:
            return
        shown = self.reads_of.get((self.host.model, self.drills))
        report = shown.report if shown is not None else None
        width = self.size.width or 80
        key = (self.host.model, self.drills, report, self.error, width)
        if key == self._painted:
            return
        self._painted = key
        kind = population(self.drills)
        header = [Text.assemble(" ", ("Speed to rollback of ", "bold"), (self.host.model, "bold"),
                                f": {kind} opened in the last {WINDOW}")]
        state = Text(" ")
        if self.error is not None:
            state.append(f"✗ could not read the journal: {self.error}", style="bold red")
        elif report is None:
            state.append("reading the journal…", style="italic")
        else:
            state.append(f"since {_utc(report.since_at, '%Y-%m-%d')} · read {_utc(report.now, '%H:%M:%S')} UTC")
            if report.apart:
                other = population(not self.drills, report.apart)
                state.append(f" · {report.apart} {other} kept apart")
        header.append(state)
        self.query_one("#stats-header", LineStack).show(header)
        parts: dict[str, RenderableType | None] = dict.fromkeys(
            ("#stats-counts", "#stats-phases", "#stats-playbooks", "#stats-trend"))
        if report is not None:
            body = width - 5  # the body's padding, and room for its scrollbar
            parts = {"#stats-counts": counts_part(report), "#stats-phases": phases_part(report, body),
                     "#stats-playbooks": playbooks_part(report, body),
                     "#stats-trend": trend_part(report.summary.trend, BAR_WIDTH if width >= 100 else 16)}
        if self.error is not None:  # in full (the header cuts it), above the last read of this population
            error = Text.assemble(("✗ could not read the journal: ", "bold red"), self.error)
            if report is not None:
                error.append(f"\nas read at {_utc(report.now, '%H:%M:%S')} UTC:", style="dim")
            parts["#stats-counts"] = Group(error, parts["#stats-counts"] or Text(""))
        for selector, part in parts.items():
            static = self.query_one(selector, Static)
            static.display = part is not None
            static.update(part if part is not None else "")
        meaning = self.query_one("#stats-meaning", Static)
        meaning.display = report is not None
        meaning.update(meaning_part() if report is not None else "")
