"""Trend lines: the focused metric in the selected segment, one line per version, with value and criterion."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.text import Text

from console.domain.metrics import MetricSpec, format_delta, format_value
from console.domain.verdicts import SYMBOL, Matrix
from console.domain.versions import version_sort_key
from console.tui.widgets.line_stack import LineStack

BLOCKS = "▁▂▃▄▅▆▇█"
POINTS = 60
"""Points kept per line: ten minutes at the default refresh; memory stays bounded whatever the uptime."""


def sparkline(values: Sequence[float | None], width: int, low: float, high: float) -> str:
    """``values`` (the last ``width`` of them) as block characters between ``low`` and ``high``; gaps as spaces."""
    shown = list(values)[-width:]
    span = high - low
    out = []
    for value in shown:
        if value is None:
            out.append(" ")
        elif span <= 0:
            out.append(BLOCKS[0])
        else:
            out.append(BLOCKS[max(0, min(len(BLOCKS) - 1, int((value - low) / span * (len(BLOCKS) - 1) + 0.5)))])
    return "".join(out).rjust(width)


def criterion_text(spec: MetricSpec) -> str:
    """The cell criterion in a few words: ``≤ 5.0%, Δ ≤ +2.0 pt``."""
    c = spec.criteria
    parts = []
    worse_up = spec.direction.value == "higher_is_worse"
    if c.threshold is not None:
        parts.append(f"{'≤' if worse_up else '≥'} {format_value(c.threshold, spec.unit)}")
    if c.max_delta is not None:
        parts.append(f"Δ ≤ {format_delta(c.max_delta, spec.unit, c.delta_kind)}")
    return ", ".join(parts) or "information only"


class TrendHistory:
    """The focused (metric, segment)'s value per version; starts over when the focus moves.

    A point is kept every ``every`` refreshes (the first at once): the sparkline then shifts,
    and is sent to the terminal again, every ten seconds rather than every refresh, and its
    ``points`` span ten minutes at the default refresh.
    """

    def __init__(self, points: int = POINTS, every: int = 5) -> None:
        self.points = points
        self.every = every
        self.focus: tuple[str, str] | None = None
        self.last_refresh = -1
        self.series: dict[str, deque[float | None]] = {}
        self._since_point = 0

    def record(self, matrix: Matrix, metric: str, segment: str) -> None:
        """Count a refresh; keep a point when one is due (a focus change starts over, with a point)."""
        if self.focus != (metric, segment):
            self.focus = (metric, segment)
            self.series = {}
            self._since_point = self.every
        self._since_point += 1
        if self._since_point < self.every:
            return
        self._since_point = 0
        for version in matrix.versions:
            series = self.series.setdefault(version, deque(maxlen=self.points))
            series.append(matrix.value(metric, version, segment))
        for version in [v for v in self.series if v not in matrix.versions]:
            del self.series[version]


class TrendPanel(LineStack):
    """One line per version: sparkline, current value and verdict; above them the criterion."""

    DEFAULT_CSS = """
    TrendPanel { height: auto; max-height: 6; border-top: solid $panel; }
    """

    def draw(self, history: TrendHistory, matrix: Matrix | None, width: int, max_versions: int = 4) -> None:
        """Draw the trend of the focused cell's metric and segment (each line repainted only when it changes)."""
        if matrix is None or history.focus is None:
            self.show([Text(" trend: waiting for the first judged matrix", style="italic")])
            return
        metric, segment = history.focus
        spec = matrix.spec(metric)
        lines = [Text.assemble(" ", (f"{spec.title}", "bold"), f" in {segment} · ", (criterion_text(spec), "dim"))]
        every = [v for v in history.series if any(x is not None for x in history.series[v])]
        numbers = [x for v in every for x in history.series[v] if x is not None]
        low, high = (min(numbers), max(numbers)) if numbers else (0.0, 0.0)
        if spec.criteria.threshold is not None and numbers:
            low, high = min(low, spec.criteria.threshold), max(high, spec.criteria.threshold)
        line_width = max(8, min(POINTS, width - 40))
        versions = sorted(history.series, key=version_sort_key)[:max_versions]
        for version in versions:
            state = matrix.state(metric, version, segment)
            current = matrix.value(metric, version, segment)
            line = Text(f" v{version:<4}")
            line.append(sparkline(history.series[version], line_width, low, high), style="bold")
            line.append(f" {format_value(current, spec.unit):>8} {SYMBOL[state]}")
            lines.append(line)
        if len(history.series) > max_versions:
            lines.append(Text(f" +{len(history.series) - max_versions} more versions", style="dim"))
        self.show(lines)
