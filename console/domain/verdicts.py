"""Verdicts: each (version, segment, metric) cell judged against its criteria.

*No data* is a state of its own, never zero and never a pass; so is a cell
with too little traffic to judge. Every verdict carries a one-line reason that
names the values and the limits it was judged by.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from console.domain.metrics import (
    CellKey,
    DeltaKind,
    Direction,
    MetricSpec,
    QueryResult,
    format_delta,
    format_value,
)


class State(StrEnum):
    """The outcome of judging one cell."""

    PASS = "pass"
    BREACH = "breach"
    NO_DATA = "no_data"
    LOW_TRAFFIC = "low_traffic"
    INFO = "info"


SYMBOL = {
    State.PASS: "✓",
    State.BREACH: "✗",
    State.NO_DATA: "?",
    State.LOW_TRAFFIC: "~",
    State.INFO: "·",
}
"""A symbol per state, so a verdict never relies on colour alone."""

WORD = {
    State.PASS: "ok",
    State.BREACH: "BREACH",
    State.NO_DATA: "no data",
    State.LOW_TRAFFIC: "low traffic",
    State.INFO: "info",
}


@dataclass(frozen=True)
class Verdict:
    """One judged cell, with everything needed to explain it."""

    metric: str
    version: str
    segment: str
    state: State
    value: float | None
    baseline: float | None
    reason: str


def _worse_by(spec: MetricSpec, value: float, reference: float) -> float:
    """How much worse ``value`` is than ``reference`` (positive = worse)."""
    diff = value - reference
    return diff if spec.direction is Direction.HIGHER_IS_WORSE else -diff


def _delta_worsening(spec: MetricSpec, value: float, baseline: float) -> float:
    """How much worse than the baseline, in the criteria's delta kind."""
    if spec.criteria.delta_kind is DeltaKind.RELATIVE:
        if baseline == 0:
            return math.inf if _worse_by(spec, value, 0.0) > 0 else 0.0
        return _worse_by(spec, value, baseline) / abs(baseline)
    return _worse_by(spec, value, baseline)


def judge_state(
    spec: MetricSpec,
    value: float | None,
    baseline: float | None,
    compare_with_baseline: bool,
    traffic: float | None,
) -> State:
    """Judge one cell's state, without building its explanation.

    Args:
        spec: the catalogue metric.
        value: the cell's value, ``None`` for no data.
        baseline: the stable version's value in the same segment, if any.
        compare_with_baseline: whether the delta criterion applies (false for
            the stable version itself, and when no version is stable).
        traffic: the cell's traffic, ``None`` when unknown.
    """
    return cell_judge(spec)(value, baseline, compare_with_baseline, traffic)


def cell_judge(spec: MetricSpec) -> Callable[[float | None, float | None, bool, float | None], State]:
    """A judge for one metric's cells, with its criteria bound once.

    A refresh judges every cell of the matrix (24,000 at 20 versions x 200
    segments x 6 metrics), so the criteria are looked up once per metric, not
    once per cell, and no strings are built: only the cells someone looks at
    need their reason (see :func:`explain`).
    """
    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    no_data, low, breach, passed, info = (
        State.NO_DATA, State.LOW_TRAFFIC, State.BREACH, State.PASS, State.INFO
    )

    if threshold is None and max_delta is None:
        return lambda value, baseline, compare, traffic: no_data if value is None else info

    def judge(value: float | None, baseline: float | None, compare: bool, traffic: float | None) -> State:
        if value is None:
            return no_data
        if min_traffic is not None and (traffic is None or not traffic >= min_traffic):
            return low
        if threshold is not None and (value - threshold) * sign > 0:
            return breach
        if max_delta is None:
            return passed
        if not compare:
            # The stable version itself, or no stable version at all.
            return passed if (threshold is not None or baseline is not None) else no_data
        if baseline is None:
            return passed if threshold is not None else no_data
        worse = (value - baseline) * sign
        if relative:
            worse = (math.inf if worse > 0 else 0.0) if baseline == 0 else worse / abs(baseline)
        return breach if worse > max_delta else passed

    return judge


def explain(
    spec: MetricSpec,
    state: State,
    value: float | None,
    baseline: float | None,
    baseline_version: str | None,
    is_baseline: bool,
    traffic: float | None,
) -> str:
    """One line that says why a cell got its state, with the values and limits used."""
    criteria = spec.criteria
    if state is State.NO_DATA and value is None:
        return "no data: the query returned no sample (or NaN) for this cell"
    shown = format_value(value, spec.unit)
    if state is State.INFO:
        return f"{shown} (no criteria: shown for information)"
    if state is State.LOW_TRAFFIC:
        seen = "no traffic data" if traffic is None else f"{traffic:.2f}/s"
        return (
            f"{shown} not judged: traffic {seen} is below the "
            f"{criteria.min_traffic:g}/s needed for a verdict"
        )
    reasons: list[str] = []
    if criteria.threshold is not None:
        limit = format_value(criteria.threshold, spec.unit)
        worse = _worse_by(spec, value, criteria.threshold) > 0
        higher_worse = spec.direction is Direction.HIGHER_IS_WORSE
        relation = (">" if higher_worse else "<") if worse else ("≤" if higher_worse else "≥")
        reasons.append(f"{shown} {relation} {limit}")
    if criteria.max_delta is not None:
        if is_baseline:
            reasons.append(f"v{baseline_version} is the stable version (no delta)")
        elif baseline_version is None:
            reasons.append("no stable version to compare with")
        elif baseline is None:
            reasons.append(f"no baseline: stable v{baseline_version} has no data here")
        else:
            relative = criteria.delta_kind is DeltaKind.RELATIVE
            delta = (value - baseline) / abs(baseline) if relative and baseline else value - baseline
            allowed = criteria.max_delta if spec.direction is Direction.HIGHER_IS_WORSE else -criteria.max_delta
            over = _delta_worsening(spec, value, baseline) > criteria.max_delta
            reasons.append(
                f"{format_delta(delta, spec.unit, criteria.delta_kind)} vs v{baseline_version} "
                f"({'beyond' if over else 'within'} {format_delta(allowed, spec.unit, criteria.delta_kind)})"
            )
    if not reasons:
        reasons.append(shown)
    return "; ".join(reasons)


@dataclass(frozen=True)
class Matrix:
    """Every verdict of one refresh, by metric and (version, segment).

    States are computed for every cell when the matrix is built; a cell's
    :class:`Verdict`, with its reason, is made when someone asks for it.
    """

    versions: tuple[str, ...]
    segments: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    results: dict[str, QueryResult]
    values: dict[str, dict[CellKey, float | None]]
    states: dict[str, dict[CellKey, State]]
    baseline_version: str | None
    traffic_metric: str | None

    def spec(self, metric: str) -> MetricSpec:
        """The catalogue entry of a metric."""
        return next(m for m in self.metrics if m.name == metric)

    def state(self, metric: str, version: str, segment: str) -> State:
        """The state of one cell."""
        per_cell = self.states.get(metric)
        if per_cell is None:  # a metric without criteria is shown for information
            value = self.values.get(metric, {}).get((version, segment))
            return State.NO_DATA if value is None else State.INFO
        return per_cell.get((version, segment), State.NO_DATA)

    def cell(self, metric: str, version: str, segment: str) -> Verdict:
        """The verdict of one cell, with its explanation."""
        spec = self.spec(metric)
        key = (version, segment)
        state = self.state(metric, version, segment)
        value = self.values[metric].get(key)
        result = self.results.get(metric)
        if result is not None and result.error:
            return Verdict(metric, version, segment, state, None, None,
                           f"no data: the query failed ({result.error})")
        baseline = (
            self.values[metric].get((self.baseline_version, segment))
            if self.baseline_version else None
        )
        traffic_values = self.values.get(self.traffic_metric or "", {})
        reason = explain(
            spec, state, value, baseline, self.baseline_version,
            version == self.baseline_version, traffic_values.get(key),
        )
        return Verdict(metric, version, segment, state, value, baseline, reason)

    def version_state(self, version: str) -> State:
        """A version's overall state: breach if any cell breaches, else pass if any passes."""
        seen = {
            self.state(m.name, version, segment) for m in self.metrics for segment in self.segments
        }
        for state in (State.BREACH, State.PASS, State.LOW_TRAFFIC, State.INFO):
            if state in seen:
                return state
        return State.NO_DATA

    def counts(self) -> dict[State, int]:
        """How many shown cells are in each state."""
        counts = dict.fromkeys(State, 0)
        for m in self.metrics:
            for version in self.versions:
                for segment in self.segments:
                    counts[self.state(m.name, version, segment)] += 1
        return counts

    def breaches(self) -> list[Verdict]:
        """Every breaching cell, explained, in display order."""
        return [
            self.cell(m.name, version, segment)
            for version in self.versions
            for segment in self.segments
            for m in self.metrics
            if self.states.get(m.name, {}).get((version, segment)) is State.BREACH
        ]

    def ordered(self) -> list[Verdict]:
        """Every verdict, explained, ordered by version, segment, then catalogue order."""
        return [
            self.cell(m.name, version, segment)
            for version in self.versions
            for segment in self.segments
            for m in self.metrics
        ]


def build_matrix(
    metrics: tuple[MetricSpec, ...] | list[MetricSpec],
    results: dict[str, QueryResult],
    versions: list[str] | tuple[str, ...],
    baseline_version: str | None,
    traffic_metric: str | None,
    segments: list[str] | tuple[str, ...] = (),
) -> Matrix:
    """Judge every cell of every metric.

    Cells no query returned are *no data* without being stored: :meth:`Matrix.state`
    answers NO_DATA for any key it does not hold.

    Args:
        metrics: the catalogue, in display order.
        results: one query result per metric name.
        versions: the versions to show, in order (versions with no data still get cells).
        baseline_version: the stable version deltas are measured against.
        traffic_metric: the catalogue metric that measures a cell's traffic.
        segments: segments to show even when no query returned them.

    Returns:
        The matrix of verdicts.
    """
    wanted = set(versions)
    all_segments = set(segments)
    values: dict[str, dict[CellKey, float | None]] = {}
    for name, result in results.items():
        if result.error:
            values[name] = {}
            continue
        metric_values = result.values
        if not wanted.issuperset({version for version, _ in result.raw}):
            metric_values = {key: v for key, v in metric_values.items() if key[0] in wanted}
        values[name] = metric_values
        all_segments.update({segment for _, segment in metric_values})
    traffic = values.get(traffic_metric, {}) if traffic_metric else {}
    states: dict[str, dict[CellKey, State]] = {}
    for spec in metrics:
        metric_values = values.get(spec.name, {})
        if not spec.criteria.judges:
            continue  # information only: Matrix.state derives INFO / NO_DATA from the value
        judge = cell_judge(spec)
        baselines = {
            segment: value for (version, segment), value in metric_values.items() if version == baseline_version
        }
        compare_any = baseline_version is not None
        states[spec.name] = {
            key: judge(value, baselines.get(key[1]), compare_any and key[0] != baseline_version, traffic.get(key))
            for key, value in metric_values.items()
        }
    return Matrix(
        versions=tuple(versions),
        segments=tuple(sorted(all_segments)),
        metrics=tuple(metrics),
        results=results,
        values=values,
        states=states,
        baseline_version=baseline_version,
        traffic_metric=traffic_metric,
    )
