"""Trend lines: the focused metric in the selected segment, one line per version, with value and criterion."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import Static

from console.domain.metrics import MetricSpec, format_delta, format_value
from console.domain.verdicts import SYMBOL, Matrix
from console.domain.versions import version_sort_key

BLOCKS = "▁▂▃▄▅▆▇█"
POINTS = 60
"""Points kept per line: two minutes at the default refresh; memory stays bounded whatever the uptime."""


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
    """The focused (metric, segment)'s value per version at each refresh; starts over when the focus moves."""

    def __init__(self, points: int = POINTS) -> None:
        self.points = points
        self.focus: tuple[str, str] | None = None
        self.last_refresh = -1
        self.series: dict[str, deque[float | None]] = {}

    def record(self, matrix: Matrix, metric: str, segment: str) -> None:
        """Append this refresh's values (a focus change drops the old series)."""
        if self.focus != (metric, segment):
            self.focus = (metric, segment)
            self.series = {}
        values = matrix.values.get(metric, {})
        for version in matrix.versions:
            series = self.series.setdefault(version, deque(maxlen=self.points))
            series.append(values.get((version, segment)))
        for version in [v for v in self.series if v not in matrix.versions]:
            del self.series[version]


class TrendPanel(Static):
    """One line per version: sparkline, current value and verdict, the criterion."""

    DEFAULT_CSS = """
    TrendPanel { height: auto; max-height: 6; padding: 0 1; border-top: solid $panel; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self._shown: str | None = None

    def show(self, history: TrendHistory, matrix: Matrix | None, width: int, max_versions: int = 4) -> None:
        """Draw the trend of the focused cell's metric and segment."""
        if matrix is None or history.focus is None:
            text = Text("trend: waiting for the first judged matrix", style="italic")
        else:
            metric, segment = history.focus
            spec = matrix.spec(metric)
            text = Text.assemble((f"{spec.title}", "bold"), f" in {segment} · ", (criterion_text(spec), "dim"))
            every = [v for v in history.series if any(x is not None for x in history.series[v])]
            numbers = [x for v in every for x in history.series[v] if x is not None]
            low, high = (min(numbers), max(numbers)) if numbers else (0.0, 0.0)
            if spec.criteria.threshold is not None and numbers:
                low, high = min(low, spec.criteria.threshold), max(high, spec.criteria.threshold)
            line_width = max(8, min(POINTS, width - 40))
            versions = sorted(history.series, key=version_sort_key)[:max_versions]
            for version in versions:
                state = matrix.state(metric, version, segment)
                current = matrix.values.get(metric, {}).get((version, segment))
                text.append(f"\nv{version:<4}")
                text.append(sparkline(history.series[version], line_width, low, high), style="bold")
                text.append(f" {format_value(current, spec.unit):>8} {SYMBOL[state]}")
            if len(history.series) > max_versions:
                text.append(f"\n+{len(history.series) - max_versions} more versions", style="dim")
        signature = text.markup
        if signature != self._shown:
            self._shown = signature
            self.update(text)
