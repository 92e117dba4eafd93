"""A destructive action's confirmation: the preview on the dialog, the model's name typed, Cancel focused.

Enter on the dialog as it opens presses Cancel; the action's button stays
disabled until the name is typed exactly (GitHub's danger-zone pattern).
Typing while Cancel is focused goes into the name field, so no extra key is
needed to start typing.
"""

from __future__ import annotations

from rich.console import RenderableType
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Key
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.tui.widgets.steady_input import SteadyInput


class ConfirmDialog(ModalScreen[bool]):
    """Ask for ``expected`` to be typed before ``verb`` is allowed; dismisses with whether it was."""

    BINDINGS = [
        Binding("escape", "cancel", "cancel"),
        Binding("ctrl+c", "cancel", show=False),
        Binding("pageup", "scroll_body(-1)", show=False),
        Binding("pagedown", "scroll_body(1)", show=False),
    ]

    def __init__(self, title: str, body: RenderableType, expected: str, verb: str, note: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.expected = expected
        self.verb = verb
        self.note = note
        """A line under the hint (a playbook step's time limit)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="confirm"):
            yield Static(self.title_text, id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static(self.body)
            hint = f"Type {self.expected} to {self.verb.lower()} · Esc: nothing changes · PgDn: more"
            yield Label(hint + (f"\n{self.note}" if self.note else ""), id="dialog-hint")
            with Horizontal(id="dialog-buttons"):
                yield SteadyInput(placeholder=self.expected, id="typed")
                yield Button("Cancel", id="cancel", variant="primary")
                yield Button(self.verb, id="confirm", variant="error", disabled=True)

    def action_scroll_body(self, direction: int) -> None:
        body = self.query_one("#dialog-body", VerticalScroll)
        body.scroll_page_down(animate=False) if direction > 0 else body.scroll_page_up(animate=False)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def _matches(self) -> bool:
        return self.query_one("#typed", Input).value.strip() == self.expected

    @on(Input.Changed, "#typed")
    def _typed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self._matches()

    @on(Input.Submitted, "#typed")
    def _submitted(self) -> None:
        if self._matches():
            self.dismiss(True)
        else:
            self.notify(f"type {self.expected} exactly to {self.verb.lower()}", severity="warning")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self._matches():
            self.dismiss(True)

    def on_key(self, event: Key) -> None:
        # The field stops every printable key it is sent, so one that reaches the dialog was sent to
        # something else: to Cancel as the dialog opened, or to Cancel before the first typed letter's
        # move of the focus took effect (a burst of typing on a busy host). Either way it is the name's.
        if event.is_printable and event.character and event.character != " ":
            field = self.query_one("#typed", Input)
            self.set_focus(field)  # at once, so the next keys go to the field itself
            field.insert_text_at_cursor(event.character)
            event.stop()
            event.prevent_default()
