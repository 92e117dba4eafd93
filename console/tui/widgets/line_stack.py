"""A few lines of rich text that repaint one line at a time: only a line whose text changed is sent again.

A ``Static`` repaints its whole area when any character changes; the header's
clock line or a trend's sparkline would then send every line each refresh.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget


class LineStack(Widget):
    """Lines of ``rich.text.Text``, one per row, cut with an ellipsis at the widget's width."""

    DEFAULT_CSS = """
    LineStack { height: auto; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: list[Text] = []
        self._drawn: dict[int, tuple[Text, int, Strip]] = {}

    def show(self, lines: list[Text]) -> None:
        """Show ``lines``, repainting only those that differ from what is on screen."""
        old, self.lines = self.lines, lines
        if len(old) != len(lines):
            self._drawn.clear()
            self.refresh(layout=True)
            return
        width = self.size.width
        for y, (before, after) in enumerate(zip(old, lines, strict=True)):
            if before != after:
                self.refresh(Region(0, y, width, 1))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self.lines))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn.clear()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y >= len(self.lines):
            return Strip.blank(width, base)
        line = self.lines[y]
        drawn = self._drawn.get(y)
        if drawn is not None and drawn[1] == width and drawn[0] == line:
            return drawn[2]
        shown = line.copy()
        shown.truncate(width, overflow="ellipsis")
        segments = [Segment(s.text, base + s.style if s.style else base)
                    for s in shown.render(self.app.console) if s.text != "\n"]
        strip = Strip(segments).adjust_cell_length(width, base)
        self._drawn[y] = (line, width, strip)
        return strip
