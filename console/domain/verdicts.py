"""Verdicts: each (version, segment, metric) cell judged against its criteria.

*No data* is a state of its own, never zero and never a pass; so is a cell
with too little traffic to judge. Every verdict carries a one-line reason that
names the values and the limits it was judged by.
"""

from __future__ import annotations

import math
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
    parse_sample_value,
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

    Kept free of string work: a refresh judges every cell of the matrix, and only
    the cells someone looks at need their reason (see :func:`explain`).

    Args:
        spec: the catalogue metric.
        value: the cell's value, ``None`` for no data.
        baseline: the stable version's value in the same segment, if any.
        compare_with_baseline: whether the delta criterion applies (false for
            the stable version itself, and when no version is stable).
        traffic: the cell's traffic, ``None`` when unknown.
    """
    if value is None:
        return State.NO_DATA
    criteria = spec.criteria
    if criteria.threshold is None and criteria.max_delta is None:
        return State.INFO
    if criteria.min_traffic is not None and (traffic is None or not traffic >= criteria.min_traffic):
        return State.LOW_TRAFFIC
    if criteria.threshold is not None and _worse_by(spec, value, criteria.threshold) > 0:
        return State.BREACH
    if criteria.max_delta is not None and compare_with_baseline:
        if baseline is None:
            return State.PASS if criteria.threshold is not None else State.NO_DATA
        if _delta_worsening(spec, value, baseline) > criteria.max_delta:
            return State.BREACH
    elif criteria.max_delta is not None and criteria.threshold is None and baseline is None:
        return State.NO_DATA
    return State.PASS


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
        return self.states[metric][(version, segment)]

    def cell(self, metric: str, version: str, segment: str) -> Verdict:
        """The verdict of one cell, with its explanation."""
        spec = self.spec(metric)
        key = (version, segment)
        state = self.states[metric][key]
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
            state
            for per_cell in self.states.values()
            for (cell_version, _), state in per_cell.items()
            if cell_version == version
        }
        for state in (State.BREACH, State.PASS, State.LOW_TRAFFIC, State.INFO):
            if state in seen:
                return state
        return State.NO_DATA

    def breaches(self) -> list[Verdict]:
        """Every breaching cell, explained, in display order."""
        return [
            self.cell(m.name, version, segment)
            for version in self.versions
            for segment in self.segments
            for m in self.metrics
            if self.states[m.name][(version, segment)] is State.BREACH
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
        parsed = {key: parse_sample_value(raw) for key, raw in result.raw.items() if key[0] in wanted}
        values[name] = parsed
        all_segments.update(seg for _, seg in parsed)
    ordered_segments = tuple(sorted(all_segments))
    traffic = values.get(traffic_metric) if traffic_metric else None
    states: dict[str, dict[CellKey, State]] = {}
    for spec in metrics:
        result = results.get(spec.name)
        metric_values = values.get(spec.name, {})
        per_cell: dict[CellKey, State] = {}
        failed = result is None or result.error is not None
        for version in versions:
            compare = baseline_version is not None and version != baseline_version
            for segment in ordered_segments:
                key = (version, segment)
                if failed:
                    per_cell[key] = State.NO_DATA
                    continue
                per_cell[key] = judge_state(
                    spec,
                    metric_values.get(key),
                    metric_values.get((baseline_version, segment)) if baseline_version else None,
                    compare,
                    traffic.get(key) if traffic is not None else None,
                )
        states[spec.name] = per_cell
    return Matrix(
        versions=tuple(versions),
        segments=ordered_segments,
        metrics=tuple(metrics),
        results=results,
        values=values,
        states=states,
        baseline_version=baseline_version,
        traffic_metric=traffic_metric,
    )
