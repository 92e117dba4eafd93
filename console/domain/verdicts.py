"""Verdicts: each (version, segment, metric) cell judged against its criteria.

*No data* is a state of its own, never zero and never a pass; so is a cell
with too little traffic to judge. Every verdict carries a one-line reason that
names the values and the limits it was judged by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from console.domain.cells import Columns, LazyCells
from console.domain.metrics import (
    CellCounts,
    CellKey,
    DeltaKind,
    Direction,
    MetricSpec,
    QueryResult,
    Unit,
    format_count,
    format_delta,
    format_value,
    spec_from_document,
)
from console.domain.stats import difference_interval, exact_interval

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    from console.domain.cells import CellIndex


class State(StrEnum):
    """The outcome of judging one cell."""

    PASS = "pass"
    BREACH = "breach"
    SUSPECT = "suspect"
    NO_DATA = "no_data"
    LOW_TRAFFIC = "low_traffic"
    INFO = "info"


SYMBOL = {
    State.PASS: "✓",
    State.BREACH: "✗",
    State.SUSPECT: "!",
    State.NO_DATA: "?",
    State.LOW_TRAFFIC: "~",
    State.INFO: "·",
}
"""A symbol per state, so a verdict never relies on colour alone."""

SEVERITY = (State.BREACH, State.SUSPECT, State.PASS, State.LOW_TRAFFIC, State.INFO, State.NO_DATA)
"""States from the most to the least telling: a group of cells takes the first state any of them has."""


def overall_state(states: Collection[State]) -> State:
    """The state of a group of cells (a version, a check): the most telling one among them."""
    return next((state for state in SEVERITY if state in states), State.NO_DATA)

WORD = {
    State.PASS: "ok",
    State.BREACH: "BREACH",
    State.SUSPECT: "suspect",
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
    counts: CellCounts | None = None
    interval: tuple[float, float] | None = None
    over_in: tuple[int, int] | None = None
    """For a persistence judgement: in how many of the last evaluations the cell was over the line, of how many."""


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


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _none_for_nan(value: float) -> float | None:
    return None if value != value else value


def cell_judge(spec: MetricSpec) -> Callable[[float | None, float | None, bool, float | None], State]:
    """:func:`judge_value_cells` for one cell: ``judge(value, baseline, compare, traffic)``."""
    def judge(value: float | None, baseline: float | None, compare: bool, traffic: float | None) -> State:
        code = judge_value_cells(spec, [_nan(value)], [_nan(baseline)], [compare], [_nan(traffic)])
        return CODES[int(code[0])]

    return judge


def _sign(spec: MetricSpec) -> float:
    """1 when higher is worse, -1 when lower is: a difference times this is positive when it is worse."""
    return 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0


def _worse(spec: MetricSpec, value: NDArray[np.float64], baseline: NDArray[np.float64]) -> NDArray[np.float64]:
    """How much worse than the stable version, in the criteria's delta kind (NaN where either is missing).

    Relative to a stable value of 0, anything worse is infinitely worse and anything else not worse at all.
    """
    import numpy as np

    sign = _sign(spec)
    with np.errstate(invalid="ignore", divide="ignore"):
        worse = (value - baseline) * sign
        if spec.criteria.delta_kind is DeltaKind.RELATIVE:
            worse = np.where(baseline == 0, np.where(worse > 0, np.inf, 0.0), worse / np.abs(baseline))
    return worse


def _over_threshold(spec: MetricSpec, value: ArrayLike) -> NDArray[np.bool_]:
    """Whether each value is over the threshold, on its worse side (NaN never is); all false with no threshold.

    The judges and the explanations ask this one function, so a cell's words never disagree with its state.
    """
    import numpy as np

    threshold = spec.criteria.threshold
    if threshold is None:
        return np.zeros(np.shape(value), dtype=bool)
    sign = _sign(spec)
    with np.errstate(invalid="ignore"):
        return (np.asarray(value, dtype=np.float64) - threshold) * sign > 0


def _ratio_limit(spec: MetricSpec, base_value: ArrayLike) -> NDArray[np.float64]:
    """How far a ratio may move past the stable version's proportion: ``max_delta``, times it when relative."""
    import numpy as np

    max_delta = spec.criteria.max_delta or 0.0
    if spec.criteria.delta_kind is DeltaKind.RELATIVE:
        return max_delta * np.abs(np.asarray(base_value, dtype=np.float64))
    return np.full(np.shape(base_value), max_delta)


def _over_ratio_delta(spec: MetricSpec, value: ArrayLike, base_value: ArrayLike, limit: ArrayLike
                      ) -> NDArray[np.bool_]:
    """Whether a ratio's proportion is worse than the stable version's by more than ``limit``."""
    import numpy as np

    sign = _sign(spec)
    with np.errstate(invalid="ignore"):
        return (np.asarray(value, dtype=np.float64) - np.asarray(base_value, dtype=np.float64)) * sign \
            > np.asarray(limit, dtype=np.float64)


def judge_value_cells(spec: MetricSpec, value: ArrayLike, baseline: ArrayLike, compare: ArrayLike,
                      traffic: ArrayLike) -> NDArray[np.int8]:
    """Cells judged on their value now, all at once: every judge of a value without counts.

    - **no data** when the cell has no value;
    - **low traffic** when ``min_traffic`` asks for more traffic than the cell has (or its traffic is unknown);
    - **breach** when the value is over the threshold, or worse than the stable
      version's value in the same segment by more than ``max_delta``;
    - **pass** otherwise, and **no data** when the only criterion is a delta and
      there is no stable value to measure it against.

    Args:
        spec: the catalogue metric.
        value: each cell's value (NaN: no data).
        baseline: the stable version's value in the cell's segment (NaN: none).
        compare: whether the delta applies (false for the stable version itself, and with no stable version).
        traffic: each cell's traffic (NaN: unknown).

    Returns:
        One code per cell, an index into :data:`CODES`.
    """
    import numpy as np

    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    value_ = np.asarray(value, dtype=np.float64)
    missing = np.isnan(value_)
    if not criteria.judges:
        return np.where(missing, _NO_DATA, _INFO).astype(np.int8)
    codes = np.full(value_.shape, _PASS, dtype=np.int8)
    if max_delta is not None:
        base = np.asarray(baseline, dtype=np.float64)
        if threshold is None:  # nothing to judge by without a stable value
            codes[np.isnan(base)] = _NO_DATA
        codes[np.asarray(compare, dtype=bool) & (_worse(spec, value_, base) > max_delta)] = _BREACH
    if threshold is not None:
        codes[_over_threshold(spec, value_)] = _BREACH
    if min_traffic is not None:
        with np.errstate(invalid="ignore"):
            codes[~(np.asarray(traffic, dtype=np.float64) >= min_traffic)] = _LOW_TRAFFIC
    codes[missing] = _NO_DATA
    return codes


CODES = (State.NO_DATA, State.LOW_TRAFFIC, State.BREACH, State.SUSPECT, State.PASS, State.INFO)
"""The states as the array judges give them: a cell's code is an index into this."""
_NO_DATA, _LOW_TRAFFIC, _BREACH, _SUSPECT, _PASS, _INFO = range(len(CODES))


def judge_ratio_cells(spec: MetricSpec, value: ArrayLike, successes: ArrayLike, trials: ArrayLike,
                      compare: ArrayLike, traffic: ArrayLike, segment_of: ArrayLike,
                      stable_successes: ArrayLike, stable_trials: ArrayLike) -> NDArray[np.int8]:
    """A ratio's cells judged on their counts, all at once: every ratio cell's judge, a refresh's or a post-mortem's.

    - **breach** when the whole confidence interval is over the line: the
      proportion's exact (Clopper-Pearson) interval beyond the threshold, or the
      interval of its difference with the stable version (Newcombe's
      square-and-add on the exact intervals) beyond ``max_delta``;
    - **suspect** when the proportion itself is over the line but its interval
      still reaches back across it (chance could explain it);
    - **pass** when the proportion is within every limit, and either the cell
      has the traffic ``min_traffic`` asks for or its interval is within too;
    - **low traffic** when it is within but too few counts to say so with confidence.

    Only the cells over the line, or within it on too little traffic, need an interval,
    and of it only one tail probability each (:mod:`console.domain.stats`): the stable
    version's end is computed once per segment, and only for the segments that need it.

    Args:
        spec: a ratio judged on counts.
        value: each cell's value (NaN: no data).
        successes, trials: each cell's counts (NaN: none).
        compare: whether the cell is compared with the stable version (not the stable version itself).
        traffic: each cell's traffic (NaN: unknown).
        segment_of: the index of each cell's segment in ``stable_successes`` and ``stable_trials``.
        stable_successes, stable_trials: the stable version's counts per segment (NaN: none).

    Returns:
        One code per cell, an index into :data:`CODES`.
    """
    import numpy as np

    from console.domain.stats import difference_beyond, lower_above, lower_ends, upper_above, upper_ends

    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    confidence = criteria.confidence
    higher_is_worse = spec.direction is Direction.HIGHER_IS_WORSE
    level = threshold if threshold is not None else 0.0  # tested only when there is a threshold
    value_, x, n, flow = (np.asarray(a, dtype=np.float64) for a in (value, successes, trials, traffic))
    codes = np.full(value_.shape, _PASS, dtype=np.int8)
    present = ~np.isnan(value_) & ~np.isnan(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        over_threshold = _over_threshold(spec, value_)
        if max_delta is not None:
            segment = np.asarray(segment_of, dtype=np.intp)
            base_x = np.asarray(stable_successes, dtype=np.float64)
            base_n = np.asarray(stable_trials, dtype=np.float64)
            cell_base_x, cell_base_n = base_x[segment], base_n[segment]
            stable = np.asarray(compare, dtype=bool) & (cell_base_n > 0.0)
            base_value = np.where(stable, cell_base_x / cell_base_n, 0.0)
            limit = _ratio_limit(spec, base_value)
            over_delta = stable & _over_ratio_delta(spec, value_, base_value, limit)
        else:
            stable = over_delta = np.zeros_like(present)
    # The stable version's spread on either side of its proportion, per segment, when first needed.
    spreads: dict[bool, NDArray[np.float64]] = {}

    def beyond_threshold(cells: NDArray[np.bool_], surely: bool) -> NDArray[np.bool_]:
        """Beyond the threshold for sure (the interval's far end clears it) or possibly (its near end)."""
        tested = (lower_above if surely == higher_is_worse else upper_above)(x[cells], n[cells], level, confidence)
        return tested if higher_is_worse else ~tested

    def beyond_delta(cells: NDArray[np.bool_], surely: bool) -> NDArray[np.bool_]:
        """Worse than the stable version by more than the limit, for sure or possibly (Newcombe's interval)."""
        upper = surely == higher_is_worse  # which of the stable version's ends bounds the difference
        known = spreads.get(upper)
        if known is None:
            known = spreads[upper] = np.full(base_x.shape, np.nan)
        wanted = segment[cells]
        needed = np.zeros(known.shape, dtype=bool)
        needed[wanted] = True
        todo = np.flatnonzero(needed & np.isnan(known))
        if todo.size:
            bx, bn = base_x[todo], base_n[todo]
            known[todo] = upper_ends(bx, bn, confidence) - bx / bn if upper else bx / bn - lower_ends(bx, bn,
                                                                                                    confidence)
        if higher_is_worse:  # p - p_stable: the stable version is the second term
            return difference_beyond(x[cells], n[cells], cell_base_x[cells], cell_base_n[cells], limit[cells],
                                     confidence, surely, spread=known[wanted], spread_of="b")
        return difference_beyond(cell_base_x[cells], cell_base_n[cells], x[cells], n[cells], limit[cells],
                                 confidence, surely, spread=known[wanted], spread_of="a")

    over = present & (over_threshold | over_delta)
    if over.any():
        breach = np.zeros_like(over)
        asked = over & over_threshold
        if asked.any():
            breach[asked] = beyond_threshold(asked, surely=True)
        asked = over & over_delta & ~breach
        if asked.any():
            breach[asked] = beyond_delta(asked, surely=True)
        codes[over] = _SUSPECT
        codes[breach] = _BREACH
    within = present & ~over
    if max_delta is not None and threshold is None:  # a delta-only criterion with nothing to compare with
        codes[within & ~stable] = _NO_DATA
        within &= stable
    if min_traffic is not None:
        # Few requests: a pass only when the counts say so with confidence (either criterion may say no).
        with np.errstate(invalid="ignore"):
            few = within & ~(flow >= min_traffic)
        if few.any():
            low = np.zeros_like(few)
            if threshold is not None:
                low[few] = beyond_threshold(few, surely=False)
            asked = few & stable & ~low
            if asked.any():
                low[asked] = beyond_delta(asked, surely=False)
            codes[low] = _LOW_TRAFFIC
    codes[~present] = _NO_DATA
    return codes


RatioJudge = Callable[[float | None, CellCounts | None, CellCounts | None, bool, float | None], State]


def ratio_judge(spec: MetricSpec) -> RatioJudge:
    """:func:`judge_ratio_cells` for one cell: ``judge(value, counts, baseline_counts, compare, traffic)``."""
    nan = math.nan

    def judge(value: float | None, counts: CellCounts | None, base: CellCounts | None, compare: bool,
              traffic: float | None) -> State:
        x, n = counts if counts is not None else (nan, nan)
        base_x, base_n = base if base is not None else (nan, nan)
        code = judge_ratio_cells(spec, [nan if value is None else value], [x], [n], [compare],
                                 [nan if traffic is None else traffic], [0], [base_x], [base_n])
        return CODES[int(code[0])]

    return judge


PersistenceJudge = Callable[[tuple[float | None, ...] | None, tuple[float | None, ...] | None, bool, float | None],
                            State]


def _over_line(spec: MetricSpec, rows: NDArray[np.float64], base_rows: NDArray[np.float64] | None,
               compare: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Whether each value of ``rows`` is over the line: the threshold, or the delta to ``base_rows`` (same shape).

    NaN (no value) is never over the line; the delta counts only where ``compare`` (one flag per row) holds.
    """
    import numpy as np

    criteria = spec.criteria
    over = _over_threshold(spec, rows)
    with np.errstate(invalid="ignore"):
        if criteria.max_delta is not None and base_rows is not None:
            flags = compare.reshape(compare.shape + (1,) * (rows.ndim - compare.ndim))
            over |= flags & (_worse(spec, rows, base_rows) > criteria.max_delta)
    return over


def _over_flags(spec: MetricSpec, recent: tuple[float | None, ...], baseline: tuple[float | None, ...] | None,
                compare: bool) -> list[bool]:
    """Whether each of a cell's recent evaluations is over the line (threshold, or delta at the same time)."""
    import numpy as np

    row = np.array([_nan(value) for value in recent], dtype=np.float64)
    base = None
    if baseline is not None:
        base = np.full(row.shape, np.nan)
        known = [_nan(value) for value in baseline[:len(recent)]]
        base[:len(known)] = known
    flags: list[bool] = _over_line(spec, row, base, np.asarray(compare)).tolist()
    return flags


def judge_persistence_cells(spec: MetricSpec, value: ArrayLike, baseline: ArrayLike, rows: ArrayLike,
                            base_rows: ArrayLike | None, compare: ArrayLike, traffic: ArrayLike,
                            row_lengths: ArrayLike | None = None) -> NDArray[np.int8]:
    """Cells without counts judged on their recent evaluations, all at once.

    A cell is judged on its value now as :func:`judge_value_cells` judges it; a
    cell that judge calls a **breach** stays one only when it was over the line
    (the threshold, or the delta to the stable version at the same evaluation) at
    every one of its last ``criteria.evaluations`` evaluations, and is
    **suspect** otherwise: a moment over the line may be chance.

    Args:
        spec: a metric judged on its recent evaluations.
        value, baseline, compare, traffic: as :func:`judge_value_cells`.
        rows: each cell's values at the evaluation times, oldest first (NaN: no sample).
        base_rows: the stable version's rows in each cell's segment (NaN: none), or ``None``.
        row_lengths: how many evaluations each row holds (the rest is padding); ``None``: every row is whole.

    Returns:
        One code per cell, an index into :data:`CODES`.
    """
    import numpy as np

    codes = judge_value_cells(spec, value, baseline, compare, traffic)
    breach = codes == _BREACH
    if not breach.any():
        return codes
    cells = np.flatnonzero(breach)
    rows_ = np.asarray(rows, dtype=np.float64).reshape(len(codes), -1)[cells]
    base = None if base_rows is None else np.asarray(base_rows, dtype=np.float64).reshape(len(codes), -1)[cells]
    over = _over_line(spec, rows_, base, np.asarray(compare, dtype=bool)[cells])
    width = rows_.shape[1]
    if row_lengths is None:
        stayed = over.all(axis=1) if width >= spec.criteria.evaluations else np.zeros(len(cells), dtype=bool)
    else:
        lengths = np.asarray(row_lengths, dtype=np.intp)[cells]
        padding = np.arange(width) >= lengths[:, None]  # beyond a short row's end: not asked about
        stayed = (over | padding).all(axis=1) & (lengths >= spec.criteria.evaluations)
    codes[cells[~stayed]] = _SUSPECT
    return codes


def persistence_judge(spec: MetricSpec) -> PersistenceJudge:
    """:func:`judge_persistence_cells` for one cell: ``judge(recent, baseline_recent, compare, traffic)``.

    ``recent`` holds the cell's values at the last evaluation times, oldest first,
    the last one now; ``baseline_recent`` the stable version's at the same times.
    """
    def judge(recent: tuple[float | None, ...] | None, baseline: tuple[float | None, ...] | None, compare: bool,
              traffic: float | None) -> State:
        row = [_nan(value) for value in recent or ()] or [math.nan]
        base = [math.nan] * len(row)
        for index, known in enumerate((baseline or ())[:len(row)]):
            base[index] = _nan(known)
        code = judge_persistence_cells(spec, [row[-1]], [_nan(baseline[-1]) if baseline else math.nan], [row],
                                       [base] if baseline is not None else None, [compare], [_nan(traffic)],
                                       [len(recent or ())])
        return CODES[int(code[0])]

    return judge


def _share(value: float) -> str:
    return f"{value * 100:.1f}%"


def _interval_text(spec: MetricSpec, low: float, high: float, delta: bool) -> str:
    level = f"{spec.criteria.confidence * 100:g}% interval"
    if delta:
        if spec.unit is Unit.RATIO:
            return f"{level} {low * 100:+.1f} to {high * 100:+.1f} pt"
        return f"{level} {low:+.3g} to {high:+.3g}"
    if spec.unit is Unit.RATIO:
        return f"{level} {low * 100:.1f}–{high * 100:.1f}%"
    return f"{level} {low:.3g}–{high:.3g}"


def _counted(counts: CellCounts, spec: MetricSpec) -> str:
    return f"{format_count(counts.denominator)} {spec.counted}"


def explain_ratio(spec: MetricSpec, state: State, value: float | None, counts: CellCounts | None,
                  base: CellCounts | None, baseline_version: str | None, is_baseline: bool,
                  traffic: float | None) -> tuple[str, tuple[float, float] | None]:
    """Why a ratio's cell got its state, in words, with its interval; and that interval."""
    criteria = spec.criteria
    if value is None or counts is None:
        return (f"no data: the counts (metrics.catalogue[{spec.name}].counts) have no sample for this cell "
                "in the window"), None
    confidence = criteria.confidence
    sign = _sign(spec)
    low, high = exact_interval(counts.numerator, counts.denominator, confidence)
    reasons: list[str] = []
    if criteria.threshold is not None:
        over = bool(_over_threshold(spec, value))
        relation = (">" if sign > 0 else "<") if over else ("≤" if sign > 0 else "≥")
        text = (f"{spec.title} {_share(value)} {relation} {_share(criteria.threshold)} "
                f"({_interval_text(spec, low, high, False)}, {_counted(counts, spec)})")
        if over and state is not State.BREACH:
            text += ": not significant yet"
        reasons.append(text)
    else:
        reasons.append(f"{spec.title} {_share(value)} ({_interval_text(spec, low, high, False)}, "
                       f"{_counted(counts, spec)})")
    if criteria.max_delta is not None:
        if is_baseline:
            reasons.append(f"v{baseline_version} is the stable version (no delta)")
        elif baseline_version is None:
            reasons.append("no stable version to compare with")
        elif base is None or base.denominator <= 0:
            reasons.append(f"no baseline: stable v{baseline_version} has no counts here")
        else:
            base_value = base.numerator / base.denominator
            d_low, d_high = difference_interval(counts.numerator, counts.denominator, base.numerator,
                                                base.denominator, confidence)
            limit = float(_ratio_limit(spec, base_value))
            over = bool(_over_ratio_delta(spec, value, base_value, limit))
            allowed = limit * sign
            text = (f"{format_delta(value - base_value, spec.unit, DeltaKind.ABSOLUTE)} vs v{baseline_version} "
                    f"({'beyond' if over else 'within'} {format_delta(allowed, spec.unit, DeltaKind.ABSOLUTE)}; "
                    f"{_interval_text(spec, d_low, d_high, True)}, {_counted(base, spec)} on v{baseline_version})")
            if over and state is not State.BREACH:
                text += ": not significant yet"
            reasons.append(text)
    if state is State.LOW_TRAFFIC:
        seen = "no traffic data" if traffic is None else f"{traffic:.2f}/s"
        reasons.append(f"too few {spec.counted} to call it a pass (traffic {seen}, "
                       f"{criteria.min_traffic:g}/s trusted without counts)")
    return "; ".join(reasons), (low, high)


def explain_persistence(spec: MetricSpec, state: State, recent: tuple[float | None, ...] | None,
                        baseline: tuple[float | None, ...] | None, baseline_version: str | None,
                        is_baseline: bool, traffic: float | None) -> tuple[str, tuple[int, int] | None]:
    """Why a cell judged on consecutive evaluations got its state; and (over, of) evaluations."""
    value = recent[-1] if recent else None
    base_now = baseline[-1] if baseline else None
    reason = explain(spec, State.BREACH if state is State.SUSPECT else state, value, base_now, baseline_version,
                     is_baseline, traffic)
    if state not in (State.BREACH, State.SUSPECT) or not recent:
        return reason, None
    flags = _over_flags(spec, recent, baseline, not is_baseline and baseline_version is not None)
    over, of = sum(flags), spec.criteria.evaluations
    step = f"{spec.criteria.step_s:g} s apart"
    if state is State.BREACH:
        return f"{reason}: over the line in {over} of the last {of} evaluations ({step})", (over, of)
    return (f"{reason}: over the line in {over} of the last {of} evaluations ({step}), not persistent yet",
            (over, of))


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
    if value is None:
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
        worse = bool(_over_threshold(spec, value))
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
            import numpy as np

            over = bool(_worse(spec, np.array([value]), np.array([baseline]))[0] > criteria.max_delta)
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

    States are computed for every cell when the matrix is built, as arrays over
    the refresh's cells (:class:`~console.domain.cells.CellIndex`); a cell's
    :class:`Verdict`, with its reason, is made when someone asks for it.

    A *drained* version receives no traffic now (the router gives it none), yet its
    one-minute window still holds what it served before: its cells keep what they
    last showed, but they say nothing about now, so they are left out of
    :meth:`counts`, :meth:`breaches` and :meth:`in_state`.
    """

    versions: tuple[str, ...]
    segments: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    results: dict[str, QueryResult]
    index: CellIndex
    """The refresh's cells: the arrays below hold one entry per cell, in its order."""
    columns: dict[str, NDArray[np.float64]]
    """Each metric's value per cell (NaN: no data), the versions not shown left out."""
    listed: dict[str, NDArray[np.bool_]]
    """Per metric, the cells its answer lists among the versions shown (with or without a value)."""
    codes: dict[str, NDArray[np.int8]]
    """Each judged metric's state per cell, an index into :data:`CODES` (no data where not listed)."""
    baseline_version: str | None
    traffic_metric: str | None
    drained: frozenset[str] = frozenset()
    """Shown versions the router sends no traffic now (see above)."""
    _lists: dict[str, list[Any]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def spec(self, metric: str) -> MetricSpec:
        """The catalogue entry of a metric."""
        return next(m for m in self.metrics if m.name == metric)

    def _list(self, name: str, array: NDArray[Any]) -> list[Any]:
        """An array as a list, made once: one cell at a time, a list is read faster than an array."""
        made = self._lists.get(name)
        if made is None:
            made = self._lists[name] = array.tolist()
        return made

    def value(self, metric: str, version: str, segment: str) -> float | None:
        """A cell's value, ``None`` for no data."""
        column = self.columns.get(metric)
        number = self.index.position.get((version, segment))
        if column is None or number is None:
            return None
        value = self._list("value:" + metric, column)[number]
        return None if value != value else value

    def state(self, metric: str, version: str, segment: str) -> State:
        """The state of one cell."""
        codes = self.codes.get(metric)
        if codes is None:  # a metric without criteria is shown for information
            return State.NO_DATA if self.value(metric, version, segment) is None else State.INFO
        number = self.index.position.get((version, segment))
        return State.NO_DATA if number is None else CODES[self._list("code:" + metric, codes)[number]]

    @cached_property
    def values(self) -> dict[str, Mapping[CellKey, float | None]]:
        """Each metric's listed cells' values by cell (made for a metric when first read)."""
        return {name: self._by_cell(name, self.columns[name], _none_for_nan) for name in self.columns}

    @cached_property
    def states(self) -> dict[str, Mapping[CellKey, State]]:
        """Each judged metric's listed cells' states by cell (made for a metric when first read)."""
        return {name: self._by_cell(name, self.codes[name], CODES.__getitem__) for name in self.codes}

    def _by_cell(self, name: str, column: NDArray[Any], read: Callable[[Any], Any]) -> LazyCells[Any]:
        def make() -> dict[CellKey, Any]:
            import numpy as np

            cells = np.flatnonzero(self.listed[name]).tolist()
            keys = self.index.keys
            return {keys[i]: read(v) for i, v in zip(cells, column[cells].tolist(), strict=True)}

        return LazyCells(make)

    def _live_cells(self, versions: Collection[str]) -> NDArray[np.bool_]:
        """The cells of ``versions`` in the segments shown."""
        import numpy as np

        version_names, version_of, segment_names, segment_of = self.index.labels()
        shown = set(self.segments)
        live_version = np.array([name in versions for name in version_names] + [False], dtype=bool)
        live_segment = np.array([name in shown for name in segment_names] + [False], dtype=bool)
        cells: NDArray[np.bool_] = live_version[version_of] & live_segment[segment_of]
        return cells

    @cached_property
    def _live(self) -> NDArray[np.bool_]:
        """The shown cells of the versions that take traffic now (what the tallies count)."""
        return self._live_cells({version for version in self.versions if version not in self.drained})

    def version_state(self, version: str) -> State:
        """A version's overall state: breach if any cell breaches, else suspect, else pass (:data:`SEVERITY`)."""
        import numpy as np

        cells = self._live_cells({version})
        found = int(cells.sum())
        states: set[State] = set()
        for m in self.metrics:
            codes = self.codes.get(m.name)
            if codes is None:
                with_value = int((~np.isnan(self.columns.get(m.name, np.full(cells.shape, np.nan))) & cells).sum())
                states.update(([State.INFO] if with_value else []) + ([State.NO_DATA] if with_value < found else []))
            else:
                states.update(CODES[code] for code in np.unique(codes[cells]).tolist())
            if found < len(self.segments):
                states.add(State.NO_DATA)
        return overall_state(states)

    def counts(self) -> dict[State, int]:
        """How many shown cells of the versions that take traffic now are in each state."""
        import numpy as np

        counts = dict.fromkeys(State, 0)
        cells = self._live
        found = int(cells.sum())
        total = sum(version not in self.drained for version in self.versions) * len(self.segments)
        for m in self.metrics:
            codes = self.codes.get(m.name)
            if codes is None:
                column = self.columns.get(m.name)
                with_value = 0 if column is None else int((~np.isnan(column) & cells).sum())
                counts[State.INFO] += with_value
                counts[State.NO_DATA] += total - with_value
                continue
            for code, number in enumerate(np.bincount(codes[cells], minlength=len(CODES)).tolist()):
                counts[CODES[code]] += number
            counts[State.NO_DATA] += total - found
        return counts

    def first_in_state(self, state: State) -> tuple[str, str, MetricSpec] | None:
        """The first cell in ``state`` of the versions that take traffic now, in display order (version, segment
        in sorted order, then catalogue order): its version, segment and metric; ``None`` when there is none."""
        import numpy as np

        live = [version for version in self.versions if version not in self.drained]
        cells = self._live
        version_names, version_of, _, _ = self.index.labels()
        rank = {version: i for i, version in enumerate(live)}
        order = np.array([rank.get(name, len(live)) for name in version_names] + [len(live)], dtype=np.intp)
        code, keys = CODES.index(state), self.index.keys
        best: tuple[int, str, int] | None = None
        for place, m in enumerate(self.metrics):
            codes = self.codes.get(m.name)
            if codes is None:
                continue
            found = np.flatnonzero((codes == code) & cells & self.listed[m.name])
            if found.size:
                orders = order[version_of[found]]
                first = int(orders.min())
                segment = min(keys[i][1] for i in found[orders == first].tolist())
                if best is None or (first, segment, place) < best:
                    best = (first, segment, place)
        return None if best is None else (live[best[0]], best[1], self.metrics[best[2]])

    def live_tally(self) -> tuple[int, set[State], list[tuple[str, str, int]]]:
        """The judged cells of the versions that take traffic now: how many, their states, and the breaching
        ones as (version, segment, catalogue index)."""
        import numpy as np

        cells = self._live
        keys = self.index.keys
        count, seen, breaching = 0, set[State](), list[tuple[str, str, int]]()
        for place, m in enumerate(self.metrics):
            codes = self.codes.get(m.name)
            if codes is None:
                continue
            judged = cells & self.listed[m.name]
            tally = np.bincount(codes[judged], minlength=len(CODES))
            count += int(tally.sum())
            seen.update(CODES[code] for code in np.flatnonzero(tally).tolist())
            if tally[_BREACH]:
                breaching += [(keys[i][0], keys[i][1], place)
                              for i in np.flatnonzero(judged & (codes == _BREACH)).tolist()]
        return count, seen, breaching

    def worst_by_cell(self) -> dict[CellKey, State]:
        """Each (version, segment)'s most telling judged state over the metrics (:data:`SEVERITY`), for the
        cells any judged metric lists."""
        import numpy as np

        rank = np.array([SEVERITY.index(state) for state in CODES], dtype=np.int8)
        worst = np.full(len(self.index), len(SEVERITY), dtype=np.int8)
        for name, codes in self.codes.items():
            np.minimum(worst, np.where(self.listed[name], rank[codes], len(SEVERITY)), out=worst)
        cells = np.flatnonzero(worst < len(SEVERITY)).tolist()
        keys = self.index.keys
        return {keys[i]: SEVERITY[r] for i, r in zip(cells, worst[cells].tolist(), strict=True)}

    def breaches(self) -> list[Verdict]:
        """Every breaching cell of the versions that take traffic now, explained, in display order."""
        return self.in_state(State.BREACH)

    def in_state(self, state: State) -> list[Verdict]:
        """Every judged cell in ``state`` of the versions that take traffic now, explained, in display order."""
        import numpy as np

        live = [version for version in self.versions if version not in self.drained]
        cells = self._live
        order = {version: i for i, version in enumerate(live)}
        code = CODES.index(state)
        keys = self.index.keys
        found: list[tuple[int, str, int, str, CellKey]] = []
        for place, m in enumerate(self.metrics):
            codes = self.codes.get(m.name)
            if codes is not None:
                found.extend((order[keys[i][0]], keys[i][1], place, m.name, keys[i])
                             for i in np.flatnonzero((codes == code) & cells & self.listed[m.name]).tolist())
        found.sort(key=lambda hit: hit[:3])
        return [self.cell(name, version, segment) for _, _, _, name, (version, segment) in found]

    def cell(self, metric: str, version: str, segment: str) -> Verdict:
        """The verdict of one cell, with its explanation."""
        spec = self.spec(metric)
        key = (version, segment)
        state = self.state(metric, version, segment)
        value = self.value(metric, version, segment)
        result = self.results.get(metric)
        if result is not None and result.error:
            return Verdict(metric, version, segment, state, None, None,
                           f"no data: the query failed ({result.error})")
        if result is not None and key in result.problems:
            return Verdict(metric, version, segment, state, None, None, result.problems[key])
        base_key = (self.baseline_version or "", segment)
        baseline = self.value(metric, *base_key) if self.baseline_version else None
        traffic = self.value(self.traffic_metric or "", version, segment)
        is_baseline = version == self.baseline_version
        if result is not None and spec.counts:
            counts = result.counts.get(key)
            reason, interval = explain_ratio(spec, state, value, counts, result.counts.get(base_key),
                                             self.baseline_version, is_baseline, traffic)
            return Verdict(metric, version, segment, state, value, baseline, reason, counts=counts,
                           interval=interval)
        if result is not None and spec.persists:
            reason, over_in = explain_persistence(spec, state, result.recent.get(key),
                                                  result.recent.get(base_key) if self.baseline_version else None,
                                                  self.baseline_version, is_baseline, traffic)
            return Verdict(metric, version, segment, state, value, baseline, reason, over_in=over_in)
        reason = explain(spec, state, value, baseline, self.baseline_version, is_baseline, traffic)
        return Verdict(metric, version, segment, state, value, baseline, reason)

    def ordered(self) -> list[Verdict]:
        """Every verdict, explained, ordered by version, segment, then catalogue order."""
        return [
            self.cell(m.name, version, segment)
            for version in self.versions
            for segment in self.segments
            for m in self.metrics
        ]


def _columns_of(result: QueryResult, index: CellIndex) -> Columns:
    """A result's mappings by cell as columns over ``index`` (a result the adapter did not give columns)."""
    import numpy as np

    from console.domain.cells import Columns

    nan = math.nan
    values = result.values
    at = index.place(list(values))
    value = np.fromiter((nan if v is None else v for v in values.values()), np.float64, len(values))
    successes = trials = counts_at = rows = rows_at = lengths = None
    if result.counts:
        counts_at = index.place(list(result.counts))
        pairs = np.array(list(result.counts.values()), dtype=np.float64).reshape(-1, 2)
        successes, trials = pairs[:, 0], pairs[:, 1]
    if result.recent:
        recent = dict(result.recent)
        rows_at = index.place(list(recent))
        lengths = np.fromiter(map(len, recent.values()), np.intp, len(recent))
        rows = np.full((len(recent), max(1, int(lengths.max()))), nan)
        for number, row in enumerate(recent.values()):
            rows[number, :len(row)] = [nan if v is None else v for v in row]
    return Columns(index, at, value, successes, trials, rows, lengths,
                   counts_at=at if counts_at is None else counts_at, rows_at=at if rows_at is None else rows_at)


def _refresh_columns(results: Mapping[str, QueryResult]) -> tuple[CellIndex, dict[str, Columns]]:
    """Every answer as columns over one index: the adapter's own when it gave them, made from the mappings else."""
    from console.domain.cells import CellIndex

    given = [r.columns for r in results.values() if r.columns is not None and not r.error]
    shared = given[0].index if given else None
    index = shared if shared is not None else CellIndex()
    columns: dict[str, Columns] = {}
    for name, result in results.items():
        if result.error:
            continue
        if result.columns is not None and result.columns.index is shared:
            columns[name] = result.columns
            continue
        if index is shared:  # the adapter's index stays as it gave it: more cells go into a copy
            index = index.copy()
        columns[name] = _columns_of(result, index)
    return index, columns


def build_matrix(
    metrics: tuple[MetricSpec, ...] | list[MetricSpec],
    results: dict[str, QueryResult],
    versions: list[str] | tuple[str, ...],
    baseline_version: str | None,
    traffic_metric: str | None,
    segments: list[str] | tuple[str, ...] = (),
    drained: frozenset[str] = frozenset(),
) -> Matrix:
    """Judge every cell of every metric, as arrays over the refresh's cells.

    A cell no answer lists is *no data*; so is a listed cell without a value.

    Args:
        metrics: the catalogue, in display order.
        results: one query result per metric name.
        versions: the versions to show, in order (versions with no data still get cells).
        baseline_version: the stable version deltas are measured against.
        traffic_metric: the catalogue metric that measures a cell's traffic.
        segments: segments to show even when no query returned them.
        drained: the versions the router sends no traffic now (:attr:`Matrix.drained`).

    Returns:
        The matrix of verdicts.
    """
    return build_matrices(metrics, [MatrixInput(results, versions, baseline_version, segments, drained)],
                          traffic_metric)[0]


@dataclass(frozen=True)
class MatrixInput:
    """One matrix's readings, for :func:`build_matrices` (the arguments of :func:`build_matrix`)."""

    results: dict[str, QueryResult]
    versions: Sequence[str]
    baseline_version: str | None
    segments: Sequence[str] = ()
    drained: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class _Placed:
    """One matrix's cells made ready for the judge: its columns spread over its index, the stable cells found."""

    index: CellIndex
    columns: dict[str, Columns]
    values: dict[str, NDArray[np.float64]]
    listed: dict[str, NDArray[np.bool_]]
    segments: tuple[str, ...]
    segment_of: NDArray[np.intp]
    stable_cell: NDArray[np.intp]
    """Per segment of the index, the stable version's cell (-1: none)."""
    compare: NDArray[np.bool_]
    traffic: NDArray[np.float64]

    @property
    def size(self) -> int:
        return len(self.index)

    def value(self, name: str) -> NDArray[np.float64]:
        import numpy as np

        known = self.values.get(name)
        return np.full(self.size, np.nan) if known is None else known


def _gather(full: NDArray[np.float64], cells: NDArray[np.intp]) -> NDArray[np.float64]:
    """``full``'s entries at ``cells`` (NaN where a cell is -1: none)."""
    import numpy as np

    out = full[cells] if len(full) else np.full(cells.shape + full.shape[1:], np.nan)
    out[cells < 0] = np.nan
    return out


def _place(item: MatrixInput, traffic_metric: str | None) -> _Placed:
    """One matrix's answers as columns over one index, the versions not shown left out, its stable cells found."""
    import numpy as np

    index, columns = _refresh_columns(item.results)
    size = len(index)
    version_names, version_of, segment_names, segment_of = index.labels()
    wanted = set(item.versions)
    shown = np.array([name in wanted for name in version_names] + [False], dtype=bool)[version_of]
    values: dict[str, NDArray[np.float64]] = {}
    listed: dict[str, NDArray[np.bool_]] = {}
    listed_any = np.zeros(size, dtype=bool)
    for name, placed in columns.items():
        mask = np.zeros(size, dtype=bool)
        mask[placed.at] = True
        mask &= shown
        full = placed.spread(placed.value, placed.at, size)
        full[~mask] = np.nan
        values[name], listed[name] = full, mask
        listed_any |= mask
    stable_cell = np.full(len(segment_names), -1, dtype=np.intp)
    compare = np.zeros(size, dtype=bool)
    if item.baseline_version is not None:
        stable = version_names.index(item.baseline_version) if item.baseline_version in version_names else -1
        compare = version_of != stable
        if stable >= 0:
            cells = np.flatnonzero(version_of == stable)
            stable_cell[segment_of[cells]] = cells
    found = {segment_names[i] for i in np.unique(segment_of[listed_any]).tolist()}
    return _Placed(index, columns, values, listed, tuple(sorted(set(item.segments) | found)), segment_of,
                   stable_cell, compare,
                   values.get(traffic_metric or "", np.full(size, np.nan)))


@dataclass(frozen=True, eq=False)
class _Together:
    """Every placed matrix's cells laid end to end, for one call of each metric's array judge.

    Attributes:
        placed: the matrices, in order; ``starts`` gives each one's first cell.
        segment_of: per cell, its segment, numbered over every matrix's segments.
        stable_cell: per segment, its stable version's cell (-1: none).
        stable_of: per cell, the stable version's cell in its segment (-1: none).
        compare, traffic: per cell, as :class:`_Placed` has them.
    """

    placed: Sequence[_Placed]
    starts: list[int]
    size: int
    segment_of: NDArray[np.intp]
    stable_cell: NDArray[np.intp]
    stable_of: NDArray[np.intp]
    compare: NDArray[np.bool_]
    traffic: NDArray[np.float64]

    @staticmethod
    def of(placed: Sequence[_Placed]) -> _Together:
        import numpy as np

        starts = [end - p.size for end, p in zip(accumulate(p.size for p in placed), placed, strict=True)]
        segment_starts = [end - len(p.stable_cell)
                          for end, p in zip(accumulate(len(p.stable_cell) for p in placed), placed, strict=True)]
        segment_of = np.concatenate([p.segment_of + first for p, first in zip(placed, segment_starts, strict=True)])
        stable_cell = np.concatenate([np.where(p.stable_cell >= 0, p.stable_cell + start, -1)
                                      for p, start in zip(placed, starts, strict=True)])
        return _Together(placed, starts, sum(p.size for p in placed), segment_of, stable_cell,
                         stable_cell[segment_of] if len(segment_of) else np.zeros(0, dtype=np.intp),
                         np.concatenate([p.compare for p in placed]), np.concatenate([p.traffic for p in placed]))

    def value(self, name: str) -> NDArray[np.float64]:
        import numpy as np

        return np.concatenate([p.value(name) for p in self.placed])

    def counts(self, name: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """A ratio's successes and trials per cell (NaN: none)."""
        import numpy as np

        at, successes, trials = [], [], []
        for p, start in zip(self.placed, self.starts, strict=True):
            column = p.columns.get(name)
            if column is not None and column.successes is not None and column.trials is not None:
                at.append(column.counts_at + start)
                successes.append(column.successes)
                trials.append(column.trials)
        if not at:
            return np.full(self.size, np.nan), np.full(self.size, np.nan)
        cells = np.concatenate(at)
        return (Columns.spread(np.concatenate(successes), cells, self.size),
                Columns.spread(np.concatenate(trials), cells, self.size))

    def rows(self, name: str, value: NDArray[np.float64]
             ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
        """A persistence metric's rows per cell (oldest first, NaN-padded), the stable version's rows in the
        cell's segment, and each row's length. A matrix without recent evaluations has each cell judged on its
        value now alone; so has a listed cell without them."""
        import numpy as np

        columns = [p.columns.get(name) for p in self.placed]
        width = max([1] + [c.rows.shape[1] for c in columns if c is not None and c.rows is not None])
        rows = np.full((self.size, width), np.nan)
        lengths = np.zeros(self.size, dtype=np.intp)
        alone = np.zeros(self.size, dtype=bool)
        listed = np.zeros(self.size, dtype=bool)
        for p, start, column in zip(self.placed, self.starts, columns, strict=True):
            if column is None or column.rows is None:
                alone[start:start + p.size] = True
                continue
            cells = column.rows_at + start
            rows[cells, :column.rows.shape[1]] = column.rows
            lengths[cells] = column.rows.shape[1] if column.row_lengths is None else column.row_lengths
            listed[start:start + p.size] = p.listed[name]
        base = _gather(rows, self.stable_of)
        base[alone] = np.nan
        alone |= listed & (lengths == 0)
        rows[alone, 0], lengths[alone] = value[alone], 1
        return rows, base, lengths


def _judge_placed(spec: MetricSpec, together: _Together) -> NDArray[np.int8]:
    """Every cell of every placed matrix judged on ``spec``, in one call of the metric's array judge."""
    value = together.value(spec.name)
    compare, traffic = together.compare, together.traffic
    if spec.counts:
        successes, trials = together.counts(spec.name)
        return judge_ratio_cells(spec, value, successes, trials, compare, traffic, together.segment_of,
                                 _gather(successes, together.stable_cell), _gather(trials, together.stable_cell))
    stable_value = _gather(value, together.stable_of)
    if not spec.persists:
        return judge_value_cells(spec, value, stable_value, compare, traffic)
    rows, base_rows, lengths = together.rows(spec.name, value)
    return judge_persistence_cells(spec, value, stable_value, rows, base_rows, compare, traffic, lengths)


def build_matrices(metrics: Sequence[MetricSpec], inputs: Sequence[MatrixInput], traffic_metric: str | None
                   ) -> list[Matrix]:
    """Several matrices judged together: each metric's cells of every matrix in one call of its array judge.

    A fleet refresh judges 50 models' small matrices; one judge call per metric for all of
    them costs what one matrix's does, where a call per model would pay numpy's fixed cost
    fifty times. Each matrix is the one :func:`build_matrix` gives for its input.
    """
    import numpy as np

    if not inputs:
        return []
    placed = [_place(item, traffic_metric) for item in inputs]
    together = _Together.of(placed)
    ends = list(accumulate(p.size for p in placed))
    codes: list[dict[str, NDArray[np.int8]]] = [{} for _ in placed]
    for spec in metrics:
        if not spec.criteria.judges:
            continue  # information only: Matrix.state derives INFO / NO_DATA from the value
        judged = _judge_placed(spec, together)
        for number, end in enumerate(ends):
            codes[number][spec.name] = judged[end - placed[number].size:end]
            if spec.name not in placed[number].listed:  # no answer (or a failed one): no cell listed
                placed[number].listed[spec.name] = np.zeros(placed[number].size, dtype=bool)
    return [
        Matrix(versions=tuple(item.versions), segments=p.segments, metrics=tuple(metrics), results=item.results,
               index=p.index, columns=p.values, listed=p.listed, codes=codes[number],
               baseline_version=item.baseline_version, traffic_metric=traffic_metric,
               drained=frozenset(item.drained) & frozenset(item.versions))
        for number, (item, p) in enumerate(zip(inputs, placed, strict=True))
    ]


def history_breaches(payload: Mapping[str, Any], traffic: Mapping[str, Any] | None = None) -> dict[CellKey, list[int]]:
    """The points of a ``metrics.history`` payload the judge calls breaches, by cell.

    The same judge as a refresh: a ratio whose counts were recorded is judged on
    them at each point (against the stable version's counts at the same point);
    any other metric breaches at a point when it was over the line at that point
    and at the evaluations before it, ``step_s`` apart, that its criterion asks
    for. So a post-mortem never calls a breach what the console would have called
    chance. ``traffic`` is the traffic metric's history payload, for ``min_traffic``.

    A confirmed breach is dated from the start of its excursion: the points just
    before it that were already over the line belong to it (the judge needed them
    to be sure), while an excursion the judge never confirmed is left out.

    Returns:
        (version, segment) -> the indexes of the breaching points, in order.
    """
    spec = spec_from_document(payload)
    if not spec.criteria.judges or payload.get("error"):
        return {}
    step = payload.get("step")
    step = float(step) if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0 else None
    if step is None:
        return {}
    stable = payload.get("stable_version")
    stable = None if stable is None else str(stable)

    def floats(values: object) -> list[float | None]:
        if not isinstance(values, list):
            return []
        out: list[float | None] = []
        for value in values:
            try:
                number = float(value) if value is not None and not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            out.append(None if number is None or number != number else number)
        return out

    cells: dict[CellKey, dict[str, list[float | None]]] = {}
    for series in payload.get("series") or []:
        if isinstance(series, Mapping):
            key = (str(series.get("version", "?")), str(series.get("segment", "all")))
            cells[key] = {name: floats(series.get(name)) for name in ("values", "numerators", "denominators")}
    traffic_by_cell: dict[CellKey, list[float | None]] = {}
    if isinstance(traffic, Mapping) and traffic.get("start") == payload.get("start") and traffic.get("step") == step:
        for series in traffic.get("series") or []:
            if isinstance(series, Mapping):
                key = (str(series.get("version", "?")), str(series.get("segment", "all")))
                traffic_by_cell[key] = floats(series.get("values"))

    def at(values: list[float | None], index: int) -> float | None:
        return values[index] if 0 <= index < len(values) else None

    found: dict[CellKey, list[int]] = {}
    if spec.counts:
        # Every point of every cell judged at once, each against the stable version's counts at that point.
        nan = math.nan
        points: list[tuple[CellKey, int]] = []
        columns: list[tuple[float, float, float, bool, float, float]] = []
        for key, cell in cells.items():
            base = cells.get((stable, key[1])) if stable is not None else None
            compare = stable is not None and key[0] != stable
            for index, value in enumerate(cell["values"]):
                num, den = at(cell["numerators"], index), at(cell["denominators"], index)
                x, n = (num, den) if num is not None and den else (nan, nan)
                base_x = base_n = nan
                if base is not None:
                    b_num, b_den = at(base["numerators"], index), at(base["denominators"], index)
                    if b_num is not None and b_den:
                        base_x, base_n = b_num, b_den
                points.append((key, index))
                columns.append((nan if value is None else value, x, n, compare, base_x, base_n))
        if not points:
            return found
        values_, xs, ns, compares, base_xs, base_ns = zip(*columns, strict=True)
        codes = judge_ratio_cells(spec, values_, xs, ns, compares, [nan] * len(points), range(len(points)),
                                  base_xs, base_ns)
        for (key, index), code in zip(points, codes.tolist(), strict=True):
            if code == _BREACH:
                found.setdefault(key, []).append(index)
        for key, hits in found.items():
            base = cells.get((stable, key[1])) if stable is not None else None
            compare = stable is not None and key[0] != stable
            found[key] = _with_excursions(spec, hits, cells[key]["values"], base["values"] if base else None, compare)
        return found
    import numpy as np

    stride = max(1, round(spec.criteria.step_s / step))
    back = spec.criteria.evaluations
    unknown_flow = math.nan if spec.criteria.min_traffic else 0.0  # no traffic history: unknown when it matters

    def column(values: list[float | None] | None, size: int, missing: float = math.nan) -> NDArray[np.float64]:
        out = np.full(size, missing)
        if values:
            out[:min(size, len(values))] = [_nan(v) for v in values[:size]]
        return out

    for key, cell in cells.items():
        size = len(cell["values"])
        if not size:
            continue
        stable_cell = cells.get((stable, key[1])) if stable is not None else None
        stable_values = stable_cell["values"] if stable_cell is not None else None
        compared = np.full(size, stable is not None and key[0] != stable)
        now, stable_line = column(cell["values"], size), column(stable_values, size)
        flow = column(traffic_by_cell.get(key), size) if traffic_by_cell.get(key) else np.full(size, unknown_flow)
        if back <= 1:
            codes = judge_value_cells(spec, now, stable_line, compared, flow)
        else:
            # Each point's evaluations: the points stride apart before it, itself last (NaN before the start).
            picks = np.arange(size)[:, None] - (back - 1 - np.arange(back))[None, :] * stride
            outside = picks < 0
            rows = np.where(outside, np.nan, now[np.maximum(picks, 0)])
            base_rows = np.where(outside, np.nan, stable_line[np.maximum(picks, 0)]) if stable_values else None
            codes = judge_persistence_cells(spec, now, stable_line, rows, base_rows, compared, flow)
        hits = np.flatnonzero(codes == _BREACH).tolist()
        if hits:
            found[key] = _with_excursions(spec, hits, cell["values"], stable_values, bool(compared[0]))
    return found


def _with_excursions(spec: MetricSpec, hits: list[int], values: list[float | None],
                     baseline: list[float | None] | None, compare: bool) -> list[int]:
    """Breaching points, each run extended back over the points already over the line before it."""
    over = _over_flags(spec, tuple(values), tuple(baseline) if baseline else None, compare)
    kept = set(hits)
    for index in hits:
        before = index - 1
        while before >= 0 and over[before] and before not in kept:
            kept.add(before)
            before -= 1
    return sorted(kept)
