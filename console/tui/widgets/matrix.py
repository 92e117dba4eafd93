"""The version x segment matrix: one Line-API widget with a strip cache per row.

A Textual ``DataTable`` repaints its whole visible area on any cell update;
this widget repaints only the rows whose text changed (``refresh(region)``
per row), so a refresh where a tenth of the cells change writes a tenth of
the screen. Only rows on screen are ever formatted.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from console.domain.verdicts import Matrix, State
from console.tui.matrix_model import Layout, RowKey, plan_layout, row_cells, row_keys, row_state, verdict_word

STATE_CLASS = {
    State.PASS: "matrix--pass",
    State.BREACH: "matrix--breach",
    State.SUSPECT: "matrix--suspect",
    State.NO_DATA: "matrix--no-data",
    State.LOW_TRAFFIC: "matrix--low-traffic",
    State.INFO: "matrix--info",
}


@dataclass(frozen=True)
class _RowContent:
    """What a drawn row depends on: its strip is reused while this stays equal."""

    key: RowKey
    verdict: State
    cells: tuple
    cursor_column: int | None
    width: int


class MatrixView(Widget, can_focus=True):
    """Rows of (segment, version), columns of metrics, a cell cursor; header on the first line."""

    COMPONENT_CLASSES = {
        "matrix--header", "matrix--pass", "matrix--breach", "matrix--suspect", "matrix--no-data",
        "matrix--low-traffic", "matrix--info", "matrix--cursor", "matrix--stable", "matrix--dim",
    }

    DEFAULT_CSS = """
    MatrixView { height: 1fr; min-height: 3; }
    MatrixView > .matrix--header { text-style: bold; }
    MatrixView > .matrix--pass { color: $pass; }
    MatrixView > .matrix--breach { color: $breach; text-style: bold; }
    MatrixView > .matrix--suspect { color: $suspect; }
    MatrixView > .matrix--no-data { color: $no-data; }
    MatrixView > .matrix--low-traffic { color: $low-traffic; }
    MatrixView > .matrix--info { color: $info; }
    MatrixView > .matrix--cursor { background: $selected; text-style: bold; }
    MatrixView > .matrix--stable { text-style: italic; }
    MatrixView > .matrix--dim { color: $no-data; }
    """

    BINDINGS = [
        Binding("up,k", "move(-1, 0)", "up", show=False),
        Binding("down,j", "move(1, 0)", "down", show=False),
        Binding("left,h", "move(0, -1)", "metric ←", show=False),
        Binding("right,l", "move(0, 1)", "metric →", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "edge(-1)", show=False),
        Binding("end", "edge(1)", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, repaint=False)
    cursor_metric: reactive[int] = reactive(0, repaint=False)

    class CursorMoved(Message):
        """The cursor is on another cell: ``key`` is (segment, version), ``metric`` a catalogue index."""

        def __init__(self, key: RowKey | None, metric: int) -> None:
            super().__init__()
            self.key = key
            self.metric = metric

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.matrix: Matrix | None = None
        self.keys: list[RowKey] = []
        self.segment_filter = ""
        self.worst_first = False
        self.top = 0
        self.empty_text = "connecting to Prometheus…"
        self._layout: Layout | None = None
        self._drawn: dict[int, tuple[_RowContent, Strip]] = {}
        self._header: tuple[tuple, Strip] | None = None
        self.lines_repainted = 0
        self.matrix_seen = False

    # -- data ----------------------------------------------------------------------------------
    def show(self, matrix: Matrix | None, empty_text: str | None = None) -> None:
        """Show a new matrix, repainting only the rows on screen whose content changed."""
        if empty_text is not None:
            self.empty_text = empty_text
        previous_key = self.current_key
        self.matrix = matrix
        keys = row_keys(matrix, self.segment_filter, self.worst_first) if matrix is not None else []
        if matrix is not None and self.matrix_seen is False:
            self.matrix_seen = True
            judged = [i for i, spec in enumerate(matrix.metrics) if spec.criteria.judges]
            self.cursor_metric = judged[0] if judged else 0
        if keys != self.keys:
            self.keys = keys
            # The cursor stays on its (segment, version) when that row is still shown.
            if previous_key in keys and self.keys:
                self.cursor_row = keys.index(previous_key)
            self.cursor_row = max(0, min(self.cursor_row, len(keys) - 1))
            self._scroll_to_cursor()
            self._drawn.clear()
            self.refresh()
        else:
            self._refresh_changed_rows()
        self.post_message(self.CursorMoved(self.current_key, self.cursor_metric))

    def reorder(self, segment_filter: str | None = None, worst_first: bool | None = None) -> None:
        """Filter segments by a substring, or sort worst-first; the cursor stays on its row when shown."""
        if segment_filter is not None:
            self.segment_filter = segment_filter
        if worst_first is not None:
            self.worst_first = worst_first
        # A new order asked for by the responder starts at its top (the worst row when sorted worst-first).
        self.cursor_row, self.top = 0, 0
        self.keys = []
        self.show(self.matrix)

    @property
    def current_key(self) -> RowKey | None:
        """The (segment, version) under the cursor."""
        return self.keys[self.cursor_row] if 0 <= self.cursor_row < len(self.keys) else None

    @property
    def page_height(self) -> int:
        """Data rows on screen (the first line is the header)."""
        return max(1, self.size.height - 1)

    # -- layout --------------------------------------------------------------------------------
    def layout_for(self, width: int) -> Layout:
        """The columns that fit ``width``, keeping the cursor's metric on screen."""
        matrix = self.matrix
        segments = matrix.segments if matrix else ()
        count = len(matrix.metrics) if matrix else 0
        layout = self._layout
        first = layout.metric_indexes[0] if layout and layout.metric_indexes else 0
        if layout is not None and layout.metric_indexes and self.cursor_metric > layout.metric_indexes[-1]:
            first = self.cursor_metric - len(layout.metric_indexes) + 1
        if self.cursor_metric < first:
            first = self.cursor_metric
        return plan_layout(width, segments, count, first)

    def on_resize(self) -> None:
        self._drawn.clear()
        self._header = None
        self._scroll_to_cursor()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn.clear()
        self._header = None

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(3, len(self.keys) + 1)

    # -- drawing -------------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _content(self, index: int, layout: Layout, width: int) -> _RowContent:
        assert self.matrix is not None
        key = self.keys[index]
        cells = row_cells(self.matrix, key, layout)
        column = None
        if index == self.cursor_row and self.cursor_metric in layout.metric_indexes:
            column = layout.metric_indexes.index(self.cursor_metric)
        return _RowContent(key, row_state(self.matrix, key), cells, column, width)

    def _row_strip(self, content: _RowContent, layout: Layout, base: Style) -> Strip:
        segment, version = content.key
        matrix = self.matrix
        stable = matrix is not None and version == matrix.baseline_version
        label = f"v{version}" + ("*" if stable else "")
        parts = [
            Segment(f"{segment[:layout.segment_width]:<{layout.segment_width}} ", base),
            Segment(f"{label:<{layout.version_width}} ", base + self._style("matrix--stable") if stable else base),
            Segment(f"{verdict_word(content.verdict)[:layout.verdict_width]:<{layout.verdict_width}} ",
                    base + self._style(STATE_CLASS[content.verdict])),
        ]
        cursor = self._style("matrix--cursor")
        for column, shown in enumerate(content.cells):
            style = base + self._style(STATE_CLASS[shown.state])
            if column == content.cursor_column:
                style += cursor
            parts.append(Segment(f"{shown.text[:layout.cell_width]:<{layout.cell_width}}", style))
            parts.append(Segment(" ", base))
        return Strip(parts).adjust_cell_length(content.width, base)

    def _header_strip(self, layout: Layout, width: int, base: Style) -> Strip:
        matrix = self.matrix
        titles = tuple(matrix.metrics[i].title for i in layout.metric_indexes) if matrix else ()
        signature = (titles, layout, width, len(self.keys), self.top)
        if self._header is not None and self._header[0] == signature:
            return self._header[1]
        style = base + self._style("matrix--header")
        parts = [Segment(f"{'segment':<{layout.segment_width}} {'ver':<{layout.version_width}} "
                         f"{'verdict':<{layout.verdict_width}} ", style)]
        for index, title in zip(layout.metric_indexes, titles, strict=True):
            mark = "▸" if index == self.cursor_metric else " "
            parts.append(Segment(f"{mark}{title}"[:layout.cell_width].ljust(layout.cell_width) + " ", style))
        if matrix is not None and len(layout.metric_indexes) < len(matrix.metrics):
            hidden = len(matrix.metrics) - len(layout.metric_indexes)
            parts.append(Segment(f"+{hidden} ←→", base + self._style("matrix--dim")))
        strip = Strip(parts).adjust_cell_length(width, base)
        self._header = (signature, strip)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        layout = self.layout_for(width)
        if layout != self._layout:
            self._layout = layout
            self._drawn.clear()
        if y == 0:
            return self._header_strip(layout, width, base)
        if self.matrix is None or not self.keys:
            if y == 1:
                text = self.empty_text if self.matrix is None else "no rows: no segment matches the filter"
                return Strip([Segment(text, base + self._style("matrix--dim"))]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        index = self.top + y - 1
        if index >= len(self.keys):
            return Strip.blank(width, base)
        content = self._content(index, layout, width)
        drawn = self._drawn.get(index)
        if drawn is not None and drawn[0] == content:
            return drawn[1]
        strip = self._row_strip(content, layout, base)
        self._drawn[index] = (content, strip)
        self.lines_repainted += 1
        return strip

    def _refresh_changed_rows(self) -> None:
        """Repaint the rows on screen whose content changed since they were drawn."""
        layout = self._layout
        if layout is None or self.matrix is None:
            self.refresh()
            return
        width = self.size.width
        for y in range(1, self.size.height):
            index = self.top + y - 1
            if index >= len(self.keys):
                break
            drawn = self._drawn.get(index)
            if drawn is None or drawn[0] != self._content(index, layout, width):
                self.refresh(Region(0, y, width, 1))
        # Only rows on screen are kept: a long list scrolled through does not grow the cache.
        for index in [i for i in self._drawn if not self.top <= i < self.top + self.page_height]:
            del self._drawn[index]

    # -- cursor --------------------------------------------------------------------------------
    def _scroll_to_cursor(self) -> None:
        height = self.page_height
        if self.cursor_row < self.top:
            self.top = self.cursor_row
        elif self.cursor_row >= self.top + height:
            self.top = self.cursor_row - height + 1
        self.top = max(0, min(self.top, max(0, len(self.keys) - height)))

    def _moved(self, old_row: int, old_metric: int) -> None:
        old_top = self.top
        self._scroll_to_cursor()
        old_layout = self._layout
        new_layout = self.layout_for(self.size.width)
        if self.top != old_top or new_layout != old_layout or old_metric != self.cursor_metric:
            self.refresh()  # scrolled, columns shifted, or the header's ▸ moved
        else:
            width = self.size.width
            for row in {old_row, self.cursor_row}:
                self.refresh(Region(0, row - self.top + 1, width, 1))
        self.post_message(self.CursorMoved(self.current_key, self.cursor_metric))

    def action_move(self, rows: int, metrics: int) -> None:
        old_row, old_metric = self.cursor_row, self.cursor_metric
        if self.keys:
            self.cursor_row = max(0, min(len(self.keys) - 1, self.cursor_row + rows))
        if self.matrix is not None and self.matrix.metrics:
            self.cursor_metric = max(0, min(len(self.matrix.metrics) - 1, self.cursor_metric + metrics))
        if (old_row, old_metric) != (self.cursor_row, self.cursor_metric):
            self._moved(old_row, old_metric)

    def action_page(self, direction: int) -> None:
        self.action_move(direction * self.page_height, 0)

    def action_edge(self, direction: int) -> None:
        self.action_move(direction * len(self.keys), 0)

    def focus_metric(self, index: int) -> None:
        """Put the cursor on the metric at catalogue ``index``."""
        if self.matrix is not None and 0 <= index < len(self.matrix.metrics):
            old = self.cursor_metric
            self.cursor_metric = index
            self._moved(self.cursor_row, old)
