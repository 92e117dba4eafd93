"""The version x segment matrix: a few Line-API column widgets with a strip cache per row and column.

A Textual ``DataTable`` repaints its whole visible area on any cell update,
and Textual writes a changed line of a widget from that widget's left edge.
So the matrix is one focusable container (cursor, scrolling, layout) over one
column widget for the row labels and one per metric shown: a changed cell
repaints only its own column's line, a refresh where a tenth of the cells
change writes about a tenth of the matrix. Only rows on screen are formatted.
Never a widget per cell: that multiplies layout and garbage-collection costs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from console.domain.verdicts import Matrix, State
from console.tui.matrix_model import (
    Cell,
    Layout,
    RowKey,
    column_title,
    plan_layout,
    row_cells,
    row_keys,
    row_state,
    verdict_word,
)

STATE_CLASS = {
    State.PASS: "matrix--pass",
    State.BREACH: "matrix--breach",
    State.SUSPECT: "matrix--suspect",
    State.NO_DATA: "matrix--no-data",
    State.LOW_TRAFFIC: "matrix--low-traffic",
    State.INFO: "matrix--info",
}

LABELS = -1
"""The column index of the row labels (segment, version, verdict)."""
REST = -2
"""The column index of the filler on the right (it says how many metrics are scrolled out of view)."""


@dataclass(frozen=True)
class _RowContent:
    """What a drawn row depends on; each column's part of it decides whether that column repaints."""

    key: RowKey
    verdict: State
    stable: bool
    cells: tuple[Cell, ...]
    cursor_column: int | None
    drained: bool = False
    stale: bool = False

    def part(self, column: int) -> object:
        if column == LABELS:
            return (self.key, self.verdict, self.stable, self.drained, self.stale)
        if column == REST:
            return None
        return (self.cells[column], self.cursor_column == column)


class MatrixColumn(Widget):
    """One column of the matrix; it draws what its :class:`MatrixView` tells it."""

    DEFAULT_CSS = """
    MatrixColumn { height: 100%; }
    """

    def __init__(self, column: int, width: int | None) -> None:
        super().__init__()
        self.column = column
        if width is not None:
            self.styles.width = width
        else:
            self.styles.width = "1fr"

    def render_line(self, y: int) -> Strip:
        view = self.parent
        assert isinstance(view, MatrixView)
        return view.column_line(self.column, y, self.size.width)


class MatrixView(Widget, can_focus=True):
    """Rows of (segment, version), columns of metrics, a cell cursor; the header on the first line."""

    COMPONENT_CLASSES = {
        "matrix--header", "matrix--pass", "matrix--breach", "matrix--suspect", "matrix--no-data",
        "matrix--low-traffic", "matrix--info", "matrix--cursor", "matrix--stable", "matrix--dim",
    }

    DEFAULT_CSS = """
    MatrixView { height: 1fr; min-height: 3; layout: horizontal; }
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
        self.columns_layout: Layout = plan_layout(80, (), 0)
        self._columns: list[MatrixColumn] = []
        self._contents: dict[int, _RowContent] = {}
        self._drawn: dict[tuple[int, int], tuple[object, int, Strip]] = {}
        self._headers: dict[int, tuple[object, Strip]] = {}
        self.lines_repainted = 0
        self.stale = False
        """The metrics are too old to say anything about now: every verdict reads unknown (:meth:`mark_stale`)."""
        self.matrix_seen = False

    def compose(self) -> ComposeResult:
        yield from self._make_columns()

    def _make_columns(self) -> list[MatrixColumn]:
        layout = self.columns_layout
        columns = [MatrixColumn(LABELS, layout.left_width)]
        columns += [MatrixColumn(position, layout.cell_width + 1) for position in range(len(layout.metric_indexes))]
        columns.append(MatrixColumn(REST, None))
        self._columns = columns
        return columns

    # -- data ----------------------------------------------------------------------------------
    def show(self, matrix: Matrix | None, empty_text: str | None = None) -> None:
        """Show a new matrix, repainting only the cells on screen whose content changed."""
        if empty_text is not None:
            self.empty_text = empty_text
        previous_key = self.current_key
        self.matrix = matrix
        keys = row_keys(matrix, self.segment_filter, self.worst_first) if matrix is not None else []
        if matrix is not None and not self.matrix_seen:
            self.matrix_seen = True
            judged = [i for i, spec in enumerate(matrix.metrics) if spec.criteria.judges]
            self.cursor_metric = judged[0] if judged else 0
        relaid = self._relayout()
        if keys != self.keys:
            self.keys = keys
            # The cursor stays on its (segment, version) when that row is still shown.
            if previous_key in keys and self.keys:
                self.cursor_row = keys.index(previous_key)
            self.cursor_row = max(0, min(self.cursor_row, len(keys) - 1))
            self._scroll_to_cursor()
            self._repaint_all()
        elif not relaid:
            self._refresh_changed()
        self.post_message(self.CursorMoved(self.current_key, self.cursor_metric))

    def mark_stale(self, stale: bool) -> None:
        """Say whether the matrix shown is too old to judge now; the cells on screen repaint when it changes."""
        if stale != self.stale:
            self.stale = stale
            self._refresh_changed()

    def reorder(self, segment_filter: str | None = None, worst_first: bool | None = None) -> None:
        """Filter segments by a substring, or sort worst-first; the new order starts at its top."""
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

    def line_text(self, y: int) -> str:
        """The plain text of screen line ``y`` across every column (for tests and logs)."""
        return "".join(column.render_line(y).text for column in self._columns if column.size.width)

    # -- layout --------------------------------------------------------------------------------
    def _wanted_layout(self) -> Layout:
        """The columns that fit the width, keeping the cursor's metric on screen."""
        matrix = self.matrix
        segments = matrix.segments if matrix else ()
        count = len(matrix.metrics) if matrix else 0
        shown = self.columns_layout.metric_indexes
        first = shown[0] if shown else 0
        if shown and self.cursor_metric > shown[-1]:
            first = self.cursor_metric - len(shown) + 1
        if self.cursor_metric < first:
            first = self.cursor_metric
        return plan_layout(self.size.width or 80, segments, count, first)

    def _relayout(self) -> bool:
        """Make the columns fit the width and the metrics; whether they changed (everything repaints then)."""
        wanted = self._wanted_layout()
        if wanted == self.columns_layout:
            return False
        old = self.columns_layout
        same_shape = (len(wanted.metric_indexes) == len(old.metric_indexes)
                      and wanted.left_width == old.left_width and wanted.cell_width == old.cell_width)
        self.columns_layout = wanted
        if self.is_mounted and not same_shape:
            self.remove_children()
            self.mount_all(self._make_columns())
        self._repaint_all()
        return True

    def on_resize(self) -> None:
        self._relayout()
        self._scroll_to_cursor()
        self._repaint_all()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._drawn.clear()
        self._headers.clear()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(3, len(self.keys) + 1)

    def _repaint_all(self) -> None:
        self._drawn.clear()
        self._headers.clear()
        self._contents.clear()
        for column in self._columns:
            column.refresh()

    # -- drawing -------------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def _content(self, index: int) -> _RowContent:
        assert self.matrix is not None
        layout = self.columns_layout
        key = self.keys[index]
        cells = row_cells(self.matrix, key, layout, self.stale)
        column = None
        if index == self.cursor_row and self.cursor_metric in layout.metric_indexes:
            column = layout.metric_indexes.index(self.cursor_metric)
        return _RowContent(key, row_state(self.matrix, key), key[1] == self.matrix.baseline_version, cells, column,
                           key[1] in self.matrix.drained, self.stale)

    def _part_strip(self, column: int, content: _RowContent, width: int, base: Style) -> Strip:
        layout = self.columns_layout
        if column == LABELS:
            segment, version = content.key
            label = f"v{version}" + ("*" if content.stable else "")
            verdict = verdict_word(content.verdict, content.drained, content.stale)
            parts = [
                Segment(f"{segment[:layout.segment_width]:<{layout.segment_width}} ", base),
                Segment(f"{label:<{layout.version_width}} ",
                        base + self._style("matrix--stable") if content.stable else base),
                Segment(f"{verdict[:layout.verdict_width]:<{layout.verdict_width}} ",
                        base + self._style("matrix--dim" if content.drained or content.stale
                                           else STATE_CLASS[content.verdict])),
            ]
            return Strip(parts).adjust_cell_length(width, base)
        if column == REST:
            return Strip.blank(width, base)
        shown = content.cells[column]
        style = base + self._style("matrix--dim" if shown.muted else STATE_CLASS[shown.state])
        if content.cursor_column == column:
            style += self._style("matrix--cursor")
        text = f"{shown.text[:layout.cell_width]:<{layout.cell_width}}"
        return Strip([Segment(text, style), Segment(" ", base)]).adjust_cell_length(width, base)

    def _header_strip(self, column: int, width: int, base: Style) -> Strip:
        layout, matrix = self.columns_layout, self.matrix
        if column >= 0:
            index = layout.metric_indexes[column] if column < len(layout.metric_indexes) else None
            title = matrix.metrics[index].title if matrix is not None and index is not None else ""
            signature: object = (title, index == self.cursor_metric, width)
        else:
            hidden = len(matrix.metrics) - len(layout.metric_indexes) if matrix is not None else 0
            signature = (column, hidden, width, layout.left_width)
        cached = self._headers.get(column)
        if cached is not None and cached[0] == signature:
            return cached[1]
        style = base + self._style("matrix--header")
        if column == LABELS:
            text = (f"{'segment':<{layout.segment_width}} {'ver':<{layout.version_width}} "
                    f"{'verdict':<{layout.verdict_width}} ")
            strip = Strip([Segment(text, style)])
        elif column == REST:
            strip = Strip([Segment(f"+{hidden} ←→", base + self._style("matrix--dim"))] if hidden else [])
        else:
            mark = "▸" if index == self.cursor_metric else " "
            shown = column_title(title, layout.cell_width - len(mark))
            strip = Strip([Segment(f"{mark}{shown}".ljust(layout.cell_width) + " ", style)])
        strip = strip.adjust_cell_length(width, base)
        self._headers[column] = (signature, strip)
        return strip

    def column_line(self, column: int, y: int, width: int) -> Strip:
        """Line ``y`` of one column (``y`` 0 is the header)."""
        base = self.rich_style
        if y == 0:
            return self._header_strip(column, width, base)
        if self.matrix is None or not self.keys:
            if y == 1 and column == LABELS:
                text = self.empty_text if self.matrix is None else "no rows: no segment matches the filter"
                return Strip([Segment(text, base + self._style("matrix--dim"))])  # spills over the next columns
            return Strip.blank(width, base)
        index = self.top + y - 1
        if index >= len(self.keys):
            return Strip.blank(width, base)
        content = self._contents.get(index)
        if content is None:
            content = self._contents[index] = self._content(index)
        part = content.part(column)
        drawn = self._drawn.get((index, column))
        if drawn is not None and drawn[1] == width and drawn[0] == part:
            return drawn[2]
        strip = self._part_strip(column, content, width, base)
        self._drawn[(index, column)] = (part, width, strip)
        self.lines_repainted += 1
        return strip

    def _refresh_changed(self) -> None:
        """Repaint, column by column, the lines on screen whose part of the row changed since drawn."""
        if self.matrix is None:
            self._repaint_all()
            return
        visible = range(self.top, min(len(self.keys), self.top + self.page_height))
        for index in visible:
            content = self._content(index)
            self._contents[index] = content
            y = index - self.top + 1
            for column in self._columns:
                if column.column == REST:
                    continue
                drawn = self._drawn.get((index, column.column))
                if drawn is None or drawn[0] != content.part(column.column):
                    column.refresh(Region(0, y, column.size.width, 1))
        # Only rows on screen are kept: a long list scrolled through does not grow the caches.
        for index in [i for i in self._contents if i not in visible]:
            del self._contents[index]
        for key in [k for k in self._drawn if k[0] not in visible]:
            del self._drawn[key]

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
        relaid = self._relayout()
        if self.top != old_top and not relaid:
            self._repaint_all()  # scrolled: every line shows another row
        elif not relaid:
            for row in {old_row, self.cursor_row}:
                if 0 <= row < len(self.keys):
                    self._contents.pop(row, None)
            if old_metric != self.cursor_metric:
                self._headers.clear()
                for column in self._columns:
                    column.refresh(Region(0, 0, column.size.width, 1))
            self._refresh_changed()
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
