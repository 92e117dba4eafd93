"""A list of options whose highlighted one is marked with ``▸``, not by its colour alone (16 colours, NO_COLOR)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import OptionList
from textual.widgets.option_list import Option

MARK = "▸ "
BLANK = "  "


class MarkedOptionList(OptionList):
    """``OptionList`` of rich texts; the highlighted option's first line starts with ``▸``.

    Continuation lines of a multi-line option are indented by the mark's width.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, markup=False)
        self._prompts: list[Text] = []
        self._marked: int | None = None

    def show(self, entries: list[tuple[str | None, Text, bool]]) -> None:
        """Replace the options: ``(id, prompt, disabled)`` each; the first enabled one is highlighted."""
        self._prompts = [prompt for _, prompt, _ in entries]
        self._marked = None
        self.set_options([Option(self._with_mark(prompt, False), id=option_id, disabled=disabled)
                          for option_id, prompt, disabled in entries])
        first = next((index for index, (_, _, disabled) in enumerate(entries) if not disabled), None)
        self.highlighted = first
        if first is not None:
            self._mark(first)
            # Highlighting scrolls the option to the top of the view, which would hide the notes above it
            # (why the list is not ranked); they are few and short, and the option stays in view below them.
            self.call_after_refresh(self.scroll_home, animate=False, immediate=True)

    @staticmethod
    def _with_mark(prompt: Text, marked: bool) -> Text:
        lines = prompt.split("\n", allow_blank=True)
        shown = Text(MARK if marked else BLANK, style="bold" if marked else "")
        for index, line in enumerate(lines):
            if index:
                shown.append("\n" + BLANK)
            shown.append_text(line)
        return shown

    def _mark(self, index: int | None) -> None:
        if index == self._marked:
            return
        for old, marked in ((self._marked, False), (index, True)):
            if old is not None and old < len(self._prompts) and old < self.option_count:
                self.replace_option_prompt_at_index(old, self._with_mark(self._prompts[old], marked))
        self._marked = index

    def watch_highlighted(self, highlighted: int | None) -> None:
        super().watch_highlighted(highlighted)
        self._mark(highlighted)
