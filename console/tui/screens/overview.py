"""The overview: header and the fallback's line, the version x segment matrix, the diagnosis line, the cell's
explanation, trends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.domain.errors import RewindError
from console.domain.metrics import format_count, format_value
from console.domain.verdicts import SYMBOL, WORD, Matrix
from console.tui.acting import ActionRequest, Carrier, procedure_request
from console.tui.matrix_model import RowKey
from console.tui.widgets.diagnosis_line import DiagnosisLine
from console.tui.widgets.fallback_line import FallbackLine
from console.tui.widgets.matrix import MatrixView
from console.tui.widgets.status_header import StatusHeader
from console.tui.widgets.trend import TrendPanel, criterion_text

if TYPE_CHECKING:  # the actions' modules load when an action is first asked for
    from console.services.journal import Placement
    from console.services.rollback import Preview, RollbackService


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


def rollback_request(gradual: bool) -> ActionRequest:
    """The overview's rollback (``r``) or gradual rollback (``g``) of the model to its rollback target."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        from console.domain.rollback import Mode

        service = carrier.backend.rollback()
        carrier.say("reading the registry and the router for the preview…")
        preview = service.preview(carrier.model, None, None, Mode.GRADUAL if gradual else Mode.IMMEDIATE, "")
        summary = f"rollback of {carrier.model}: v{preview.plan.leave} → v{preview.plan.target}"
        return service, preview, service.journal.place(carrier.model, "2", summary)

    if gradual:
        return procedure_request("Gradual rollback", "Roll back gradually", plan)
    return procedure_request("Rollback", "Roll back", plan)


def undo_request(action_id: str | None) -> ActionRequest:
    """The undo of ``action_id``, or of the model's latest action (``u``)."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        service = carrier.backend.rollback()
        undone = action_id
        if undone is None:
            last = service.last_action(carrier.model)
            if last is None:
                raise RewindError(f"nothing to undo: the journal has no action on {carrier.model}")
            undone = last.action_id
        carrier.say(f"preparing the undo of {undone}…")
        placement = service.undo_placement(undone)
        preview, _ = service.undo_preview(undone, "", placement)
        return service, preview, placement

    return procedure_request("Undo", "Undo", plan)


class OverviewScreen(Screen[None]):
    """The console's main screen."""

    def compose(self) -> ComposeResult:
        yield Static("", id="banner")
        yield StatusHeader(id="status-header")
        yield FallbackLine(id="fallback-line")
        yield MatrixView(id="matrix")
        yield DiagnosisLine(id="diagnosis")
        yield Static("", id="explain")
        yield TrendPanel(id="trend")
        yield Footer()

    def on_mount(self) -> None:
        self.header = self.query_one(StatusHeader)
        self.matrix = self.query_one(MatrixView)
        self.trend = self.query_one(TrendPanel)
        self.explain = self.query_one("#explain", Static)
        self.diagnosis = self.query_one(DiagnosisLine)
        self.explain.display = False
        self.query_one("#banner").display = False
        self.matrix.focus()
        ready = getattr(self.app, "overview_ready", None)
        if ready is not None:
            ready(self)
