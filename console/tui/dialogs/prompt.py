"""Small dialogs: a line of text (a note, a summary, a filter) and the export format."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from console.tui.widgets.steady_input import SteadyInput


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text; Enter submits, Esc cancels (dismisses with ``None``)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "", allow_empty: bool = False) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder
        self.allow_empty = allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="prompt"):
            yield Static(self.question, id="dialog-title")
            yield SteadyInput(self.value, placeholder=self.placeholder, id="answer")
            yield Static("Enter: OK  ·  Esc: cancel", id="dialog-hint")

    @on(Input.Submitted, "#answer")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text or self.allow_empty:
            self.dismiss(text)
        else:
            self.notify("type something, or Esc to cancel", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportDialog(ModalScreen[str | None]):
    """Pick the export format: m(arkdown), j(son), h(tml)."""

    BINDINGS = [
        Binding("m", "pick('md')", "Markdown"),
        Binding("j", "pick('json')", "JSON"),
        Binding("h", "pick('html')", "HTML"),
        Binding("escape", "pick('')", "cancel"),
    ]

    def __init__(self, incident_id: str, directory: str) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.directory = directory

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="prompt"):
            yield Static(f"Export incident {self.incident_id} to {self.directory}", id="dialog-title")
            with Horizontal(id="dialog-buttons"):
                yield Button("Markdown (m)", id="md")
                yield Button("JSON (j)", id="json")
                yield Button("HTML (h)", id="html")
            yield Static("m / j / h, or Esc to cancel", id="dialog-hint")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_pick(self, fmt: str) -> None:
        self.dismiss(fmt or None)
