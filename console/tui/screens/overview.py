"""The overview: header, the version x segment matrix, the selected cell's explanation, trend lines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.domain.metrics import format_count, format_value
from console.domain.verdicts import SYMBOL, WORD, Matrix
from console.tui.matrix_model import RowKey
from console.tui.widgets.matrix import MatrixView
from console.tui.widgets.status_header import StatusHeader
from console.tui.widgets.trend import TrendPanel, criterion_text


def explanation(matrix: Matrix, key: RowKey, metric_index: int) -> Text:
    """The selected cell's PromQL, values, criterion and reason."""
    segment, version = key
    spec = matrix.metrics[metric_index]
    verdict = matrix.cell(spec.name, version, segment)
    result = matrix.results.get(spec.name)
    text = Text.assemble((f"{SYMBOL[verdict.state]} {WORD[verdict.state]}", "bold"),
                         f"  {spec.title}  v{version}  {segment}\n")
    text.append(f"value {format_value(verdict.value, spec.unit)}")
    if verdict.baseline is not None and matrix.baseline_version and version != matrix.baseline_version:
        text.append(f"   stable v{matrix.baseline_version}: {format_value(verdict.baseline, spec.unit)}")
    if verdict.counts is not None:
        counts = verdict.counts
        text.append(f"   counts {format_count(counts.numerator)}/{format_count(counts.denominator)} {spec.counted}")
    text.append(f"\ncriterion: {criterion_text(spec)}\nreason: {verdict.reason}\n")
    text.append(f"PromQL: {result.promql if result else 'not queried'}", style="dim")
    return text


class OverviewScreen(Screen[None]):
    """The console's main screen."""

    def compose(self) -> ComposeResult:
        yield Static("", id="banner")
        yield StatusHeader(id="status-header")
        yield MatrixView(id="matrix")
        yield Static("", id="explain")
        yield TrendPanel(id="trend")
        yield Footer()

    def on_mount(self) -> None:
        self.header = self.query_one(StatusHeader)
        self.matrix = self.query_one(MatrixView)
        self.trend = self.query_one(TrendPanel)
        self.explain = self.query_one("#explain", Static)
        self.explain.display = False
        self.query_one("#banner").display = False
        self.matrix.focus()
        ready = getattr(self.app, "overview_ready", None)
        if ready is not None:
            ready(self)
