"""Which version to put in shadow of the champion, and what share of its requests to copy.

Nothing changes here: the choice goes to the shadow view, which asks the console
to preview the plan and to have the model's name typed before anything moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from console.tui.widgets.steady_input import SteadyInput


@dataclass(frozen=True)
class ShadowStart:
    """The version to shadow the champion and the percent of its answered requests copied (1..100)."""

    version: str
    percent: int


def parse_percent(text: str) -> int | None:
    """``100``, ``25 %`` → the percent; ``None`` when it is not a whole number from 1 to 100."""
    cleaned = text.strip().rstrip("%").strip()
    if not cleaned.isdigit():
        return None
    value = int(cleaned)
    return value if 1 <= value <= 100 else None


class ShadowStartDialog(ModalScreen[ShadowStart | None]):
    """Pick a version (Enter) with the percent in its field; Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, model: str, champion: str | None, candidates: tuple[str, ...], percent: int = 100) -> None:
        super().__init__()
        self.model = model
        self.champion = champion
        self.candidates = candidates
        self.percent = percent

    def compose(self) -> ComposeResult:
        champion = f"the champion v{self.champion}" if self.champion else "the champion"
        with Vertical(id="dialog", classes="prompt shadow-start"):
            yield Static(f"Start a shadow of {champion} ({self.model})", id="dialog-title")
            yield OptionList(*(Option(f"v{version}", id=version) for version in self.candidates),
                             id="shadow-versions")
            with Horizontal(id="shadow-percent-row"):
                yield Label("copy % of the champion's answered requests", id="shadow-percent-label")
                yield SteadyInput(str(self.percent), id="shadow-percent")
            yield Static("↑↓ version · Tab: percent · Enter: preview (nothing changes yet) · Esc: cancel",
                         id="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one("#shadow-versions", OptionList)
        options.highlighted = 0
        options.focus()

    def _choose(self) -> None:
        options = self.query_one("#shadow-versions", OptionList)
        percent = parse_percent(self.query_one("#shadow-percent", Input).value)
        if percent is None:
            self.notify("the percent is a whole number from 1 to 100", severity="warning")
            return
        index = options.highlighted
        if index is None:
            self.notify("choose a version", severity="warning")
            return
        version = options.get_option_at_index(index).id
        if version is not None:
            self.dismiss(ShadowStart(version, percent))

    @on(OptionList.OptionSelected, "#shadow-versions")
    def _selected(self) -> None:
        self._choose()

    @on(Input.Submitted, "#shadow-percent")
    def _submitted(self) -> None:
        self._choose()

    def action_cancel(self) -> None:
        self.dismiss(None)
