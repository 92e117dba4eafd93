"""The diagnosis with its evidence: what the overview's one line stands on, one key (``d``) away."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.tui.widgets.diagnosis_line import cause_text

if TYPE_CHECKING:
    from console.domain.features import Diagnosis


def _items(mark: str, lines: tuple[str, ...], style: str = "") -> Table:
    """Lines under a mark, each wrapped under its own text (a hanging indent), not under the mark."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, style=style)
    table.add_column(style=style)
    for line in lines:
        table.add_row(mark, line)
    return table


def diagnosis_body(diagnosis: Diagnosis, problem: str | None = None) -> Group:
    """The summary, what to do, what is missing (a "not sure"), then every evidence line, and where to act.

    The advice and what is missing come before the evidence: they are what the responder acts on, and they
    stay in view at 80x24 without scrolling.
    """
    parts: list[RenderableType] = [cause_text(diagnosis)]
    if diagnosis.versions or diagnosis.segments:
        parts.append(Text(f"versions {', '.join(diagnosis.versions) or '-'} · segments "
                          f"{', '.join(diagnosis.segments) or '-'}", style="dim"))
    if diagnosis.advice:
        parts.append(_items("→", (diagnosis.advice,), "bold"))
    if diagnosis.missing:
        parts.append(Text("\nWhat would settle it", style="bold underline"))
        parts.append(_items("?", diagnosis.missing, "yellow"))
    parts.append(Text("\nEvidence", style="bold underline"))
    parts.append(_items("·", diagnosis.evidence or ("none",)))
    if diagnosis.cause.value == "feature":
        parts.append(Text("\nF: the features view (bindings, inputs, the transformation's diff; r there rolls "
                          "the features back)", style="dim"))
    if problem:
        parts.append(Text(f"\n? the feature telemetry could not be read: {problem}", style="yellow"))
    return Group(*parts)


class DiagnosisDialog(ModalScreen[None]):
    """The diagnosis of the snapshot on screen when it was opened; Esc, q or d closes it."""

    BINDINGS = [Binding("escape,q,d", "close", "close")]

    def __init__(self, model: str, diagnosis: Diagnosis, problem: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.diagnosis = diagnosis
        self.problem = problem

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="diagnosis"):
            yield Static(f"Diagnosis of {self.model}", id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(diagnosis_body(self.diagnosis, self.problem), id="diagnosis-body")
            yield Static("Esc / q / d: close · ↑↓ PgUp PgDn: scroll", id="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#dialog-body", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)
