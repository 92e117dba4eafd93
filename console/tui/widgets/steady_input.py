"""A text field whose cursor does not blink: a blinking cursor repaints forever and costs bytes over SSH."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Input


class SteadyInput(Input):
    """``Input`` with a steady cursor (and no select-all on focus, so typing never replaces a first letter)."""

    cursor_blink = reactive(False, init=False)

    def __init__(self, value: str | None = None, placeholder: str = "", *, id: str | None = None) -> None:
        super().__init__(value, placeholder, id=id, select_on_focus=False)
