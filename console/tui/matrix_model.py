"""What the matrix shows, computed without Textual: rows, their order, columns that fit, cell texts.

The matrix has one row per (segment, version) and one column per catalogue
metric. Ordering and filtering look only at states (cheap for every row);
cell texts are formatted only for the rows on screen, so a refresh at 20
versions x 200 segments x 6 metrics formats a screenful, not 24,000 cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from console.domain.metrics import DeltaKind, MetricSpec, format_delta, format_value
from console.domain.verdicts import SEVERITY, SYMBOL, Matrix, State

RowKey = tuple[str, str]
"""(segment, version)."""

SHORT_WORD = {
    State.PASS: "ok",
    State.BREACH: "BREACH",
    State.SUSPECT: "suspect",
    State.NO_DATA: "no data",
    State.LOW_TRAFFIC: "low",
    State.INFO: "info",
}
"""The word beside each cell's symbol: never colour alone."""

_RANK = {state: index for index, state in enumerate(SEVERITY)}
_DRAINED_RANK = len(SEVERITY)
"""Worst-first puts drained rows last: what they show is not happening now."""

DRAINED_WORD = "⊘ DRAINED"
"""The verdict column of a version the router sends no traffic now (its cells keep what they last showed)."""
UNKNOWN_WORD = "? unknown"
"""The verdict column, and the cells' symbol and word, while the metrics are too old to say anything about now."""


@dataclass(frozen=True)
class Cell:
    """One cell as drawn: its text and its state (the state picks the style, unless the cell is muted).

    Attributes:
        muted: drawn dimmed: a drained version's last reading, or any reading once the metrics are stale.
    """

    text: str
    state: State
    muted: bool = False


@dataclass(frozen=True)
class Layout:
    """Column widths for a given screen width.

    Attributes:
        segment_width, version_width, verdict_width: the fixed columns on the left.
        cell_width: each metric column.
        style: ``full`` (symbol, word, value, delta), ``medium`` (symbol, value, delta) or ``small`` (symbol, value).
        metric_indexes: the catalogue metrics shown, left to right.
    """

    segment_width: int
    version_width: int
    verdict_width: int
    cell_width: int
    style: str
    metric_indexes: tuple[int, ...]

    @property
    def left_width(self) -> int:
        """Width of the fixed columns, separators included."""
        return self.segment_width + 1 + self.version_width + 1 + self.verdict_width + 1


CELL_WIDTHS = (("full", 27), ("medium", 19), ("small", 10))


def plan_layout(width: int, segments: Sequence[str], metric_count: int, first_metric: int = 0) -> Layout:
    """The widest cell style at which every metric fits, else the small style from ``first_metric`` on."""
    segment_width = max(7, min(18, max((len(s) for s in segments), default=7)))
    version_width, verdict_width = 5, 9
    left = segment_width + version_width + verdict_width + 3
    room = max(0, width - left)
    for style, cell_width in CELL_WIDTHS:
        if metric_count and room >= metric_count * (cell_width + 1):
            return Layout(segment_width, version_width, verdict_width, cell_width, style,
                          tuple(range(metric_count)))
    cell_width = CELL_WIDTHS[-1][1]
    fits = max(1, room // (cell_width + 1))
    start = max(0, min(first_metric, metric_count - fits))
    return Layout(segment_width, version_width, verdict_width, cell_width, "small",
                  tuple(range(start, min(metric_count, start + fits))))


def row_keys(matrix: Matrix, segment_filter: str = "", worst_first: bool = False) -> list[RowKey]:
    """The rows to show, in order: by segment then version, or worst-first (then by segment and version)."""
    wanted = segment_filter.strip().lower()
    segments = [s for s in matrix.segments if wanted in s.lower()] if wanted else list(matrix.segments)
    order = {v: i for i, v in enumerate(matrix.versions)}
    keys = [(segment, version) for segment in segments for version in matrix.versions]
    if worst_first:
        ranks = row_ranks(matrix)
        drained = matrix.drained
        keys.sort(key=lambda key: (_DRAINED_RANK if key[1] in drained else
                                   ranks.get((key[1], key[0]), _RANK[State.NO_DATA]), key[0], order[key[1]]))
    return keys


def row_ranks(matrix: Matrix) -> dict[tuple[str, str], int]:
    """Each (version, segment)'s worst state as a rank (0: breach), from the judged states only."""
    return {key: _RANK[state] for key, state in matrix.worst_by_cell().items()}


def row_state(matrix: Matrix, key: RowKey) -> State:
    """A row's worst state over every metric."""
    segment, version = key
    states = [matrix.state(spec.name, version, segment) for spec in matrix.metrics]
    return min(states, key=lambda s: _RANK[s]) if states else State.NO_DATA


def cell(matrix: Matrix, spec: MetricSpec, key: RowKey, style: str, stale: bool = False) -> Cell:
    """One cell's text in ``style``: symbol, (word,) value and delta against the stable version.

    ``stale``: the metrics are too old to judge now: the cell says ``?``/``unknown`` beside its last value.
    """
    segment, version = key
    state = matrix.state(spec.name, version, segment)
    value = matrix.value(spec.name, version, segment)
    shown = "–" if value is None else format_value(value, spec.unit)
    symbol, word = ("?", "unknown") if stale else (SYMBOL[state], SHORT_WORD[state])
    parts = [symbol]
    if style == "full":
        parts.append(f"{word:<7}")
    parts.append(f"{shown:>8}")
    if style != "small":
        baseline_version = matrix.baseline_version
        baseline = matrix.value(spec.name, baseline_version or "", segment)
        if value is not None and baseline is not None and version != baseline_version:
            parts.append(f"{format_delta(value - baseline, spec.unit, DeltaKind.ABSOLUTE):>8}")
        elif version == baseline_version and value is not None:
            parts.append(f"{'stable':>8}")
        else:
            parts.append(" " * 8)
    return Cell(" ".join(parts), state, muted=stale or version in matrix.drained)


def row_cells(matrix: Matrix, key: RowKey, layout: Layout, stale: bool = False) -> tuple[Cell, ...]:
    """The cells of one row, as the layout shows them (``stale``: as :func:`cell` says)."""
    return tuple(cell(matrix, matrix.metrics[i], key, layout.style, stale) for i in layout.metric_indexes)


def column_title(title: str, width: int) -> str:
    """A metric's title in ``width`` columns, whole words first: ``error rate`` → ``err. rate``, never ``error rat``.

    The longest word is shortened first to its first three letters and a dot (``lat.``), then the next
    longest, until it fits; only a title that still does not fit is cut.
    """
    words = title.split()
    while len(" ".join(words)) > width:
        longest = max(range(len(words)), key=lambda i: (0 if words[i].endswith(".") else len(words[i]), -i))
        if words[longest].endswith(".") or len(words[longest]) <= 4:
            break  # every word is as short as it reads
        words[longest] = words[longest][:3] + "."
    return " ".join(words)[:width]


def verdict_word(state: State, drained: bool = False, stale: bool = False) -> str:
    """The row's verdict column: symbol and word; unknown while the metrics are stale, drained without traffic."""
    if stale:
        return UNKNOWN_WORD
    if drained:
        return DRAINED_WORD
    return f"{SYMBOL[state]} {SHORT_WORD[state]}"


@dataclass(frozen=True)
class Summary:
    """The matrix in one line's worth of facts: how many cells in each state, and the first breach.

    Computed in the worker that judged the matrix, so the event loop never walks 24,000 cells.
    """

    counts: dict[State, int]
    first_breach: tuple[str, str, str] | None  # (version, segment, metric title)
    failed_metrics: tuple[str, ...]
    drained: tuple[str, ...] = ()
    """The versions that take no traffic now: their cells are not in ``counts``."""


def summarise(matrix: Matrix) -> Summary:
    """Count the shown cells by state (from the judged states; unjudged metrics are info or no data), and name
    the first breach in display order.

    A drained version's cells are left out: they tell what it served before, not what happens now.
    Counted on the matrix's arrays (:meth:`~console.domain.verdicts.Matrix.counts`), never cell by cell.
    """
    first = matrix.first_in_state(State.BREACH)
    named = None if first is None else (first[0], first[1], first[2].title)
    failed = tuple(r.metric for r in matrix.results.values() if r.error)
    drained = matrix.drained
    return Summary(matrix.counts(), named, failed, tuple(v for v in matrix.versions if v in drained))
