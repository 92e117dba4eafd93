"""Verdicts: each (version, segment, metric) cell judged against its criteria.

*No data* is a state of its own, never zero and never a pass; so is a cell
with too little traffic to judge. Every verdict carries a one-line reason that
names the values and the limits it was judged by.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import TYPE_CHECKING, Any

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

_first, _second = itemgetter(0), itemgetter(1)
"""A cell key's version and segment."""


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


RATIO_STATES = (State.NO_DATA, State.LOW_TRAFFIC, State.BREACH, State.SUSPECT, State.PASS)
"""The states a ratio's cell can take, indexed by :func:`judge_ratio_cells`' codes."""
_NO_DATA, _LOW_TRAFFIC, _BREACH, _SUSPECT, _PASS = range(len(RATIO_STATES))


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
        One code per cell, an index into :data:`RATIO_STATES`.
    """
    import numpy as np

    from console.domain.stats import difference_beyond, lower_above, lower_ends, upper_above, upper_ends

    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    confidence = criteria.confidence
    higher_is_worse = spec.direction is Direction.HIGHER_IS_WORSE
    sign = 1.0 if higher_is_worse else -1.0
    level = threshold if threshold is not None else 0.0  # tested only when there is a threshold
    value_, x, n, flow = (np.asarray(a, dtype=np.float64) for a in (value, successes, trials, traffic))
    codes = np.full(value_.shape, _PASS, dtype=np.int8)
    present = ~np.isnan(value_) & ~np.isnan(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        over_threshold = (value_ - threshold) * sign > 0 if threshold is not None else np.zeros_like(present)
        if max_delta is not None:
            segment = np.asarray(segment_of, dtype=np.intp)
            base_x = np.asarray(stable_successes, dtype=np.float64)
            base_n = np.asarray(stable_trials, dtype=np.float64)
            cell_base_x, cell_base_n = base_x[segment], base_n[segment]
            stable = np.asarray(compare, dtype=bool) & (cell_base_n > 0.0)
            base_value = np.where(stable, cell_base_x / cell_base_n, 0.0)
            limit = (max_delta or 0.0) * np.abs(base_value) if criteria.delta_kind is DeltaKind.RELATIVE \
                else np.full(value_.shape, max_delta or 0.0)
            over_delta = stable & ((value_ - base_value) * sign > limit)
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
        return RATIO_STATES[int(code[0])]

    return judge


def ratio_states(spec: MetricSpec, values: Mapping[CellKey, float | None], counts: Mapping[CellKey, CellCounts],
                 baseline_version: str | None, traffic: Mapping[CellKey, float | None],
                 segments: Collection[str] | None = None) -> dict[CellKey, State]:
    """Every ratio cell of a refresh judged on its counts: :func:`judge_ratio_cells` on the mappings a query gives.

    Args:
        spec: a ratio judged on counts.
        values: the cells to judge (``None``: no data).
        counts: each cell's counts.
        baseline_version: the stable version, or ``None``.
        traffic: each cell's traffic.
        segments: every segment of ``values`` (more do no harm), when the caller knows them already.
    """
    if not values:
        return {}
    import numpy as np

    criteria = spec.criteria
    keys = list(values)
    cells = len(keys)
    nan, missing = math.nan, (math.nan, math.nan)
    value = np.array(list(values.values()), dtype=np.float64)  # None: NaN
    cells_counts: list[tuple[float, float] | None] = list(map(counts.get, keys))
    if None in cells_counts:
        cells_counts = [missing if c is None else c for c in cells_counts]
    successes, trials = (np.array(column, dtype=np.float64) for column in zip(*cells_counts, strict=True))
    flow = (np.array(list(map(traffic.get, keys)), dtype=np.float64) if criteria.min_traffic is not None
            else np.full(cells, nan))
    if criteria.max_delta is not None and baseline_version is not None:
        names = sorted(set(map(_second, keys)))  # the cells' own segments (``segments``: kept for callers)
        index = {name: i for i, name in enumerate(names)}
        stable = np.array([missing if c is None else c
                           for c in (counts.get((baseline_version, name)) for name in names)] + [missing],
                          dtype=np.float64)
        segment_of = np.fromiter(map(index.__getitem__, map(_second, keys)), dtype=np.intp, count=cells)
        compare = np.fromiter(map(baseline_version.__ne__, map(_first, keys)), dtype=bool, count=cells)
    else:
        stable = np.array([missing])
        segment_of = np.zeros(cells, dtype=np.intp)
        compare = np.zeros(cells, dtype=bool)
    codes = judge_ratio_cells(spec, value, successes, trials, compare, flow, segment_of, stable[:, 0],
                              stable[:, 1])
    return dict(zip(keys, map(RATIO_STATES.__getitem__, codes.tolist()), strict=True))


PersistenceJudge = Callable[[tuple[float | None, ...] | None, tuple[float | None, ...] | None, bool, float | None],
                            State]


def _over_flags(spec: MetricSpec, recent: tuple[float | None, ...], baseline: tuple[float | None, ...] | None,
                compare: bool) -> list[bool]:
    """Whether each of a cell's recent evaluations is over the line (threshold, or delta at the same time)."""
    criteria = spec.criteria
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    flags = []
    for index, value in enumerate(recent):
        if value is None:
            flags.append(False)
            continue
        over = criteria.threshold is not None and (value - criteria.threshold) * sign > 0
        base = baseline[index] if compare and baseline is not None and index < len(baseline) else None
        if not over and criteria.max_delta is not None and base is not None:
            worse = (value - base) * sign
            if relative:
                worse = (math.inf if worse > 0 else 0.0) if base == 0 else worse / abs(base)
            over = worse > criteria.max_delta
        flags.append(over)
    return flags


def persistence_judge(spec: MetricSpec) -> PersistenceJudge:
    """A judge for cells without counts: ``judge(recent, baseline_recent, compare, traffic)``.

    ``recent`` holds the cell's values at the last ``criteria.evaluations``
    evaluation times, ``step_s`` apart, oldest first. A cell over the line now
    is a **breach** only when it was over the line in every one of them, else
    **suspect**; a cell within the line now is judged as an instant value is.
    """
    instant = cell_judge(spec)
    evaluations = spec.criteria.evaluations

    def judge(recent: tuple[float | None, ...] | None, baseline: tuple[float | None, ...] | None, compare: bool,
              traffic: float | None) -> State:
        value = recent[-1] if recent else None
        base_now = baseline[-1] if baseline else None
        state = instant(value, base_now, compare, traffic)
        if state is not State.BREACH:
            return state
        flags = _over_flags(spec, recent, baseline, compare)  # type: ignore[arg-type]
        return State.BREACH if len(flags) >= evaluations and all(flags) else State.SUSPECT

    return judge


def persistence_states(spec: MetricSpec, values: Mapping[CellKey, float | None],
                       recent: Mapping[CellKey, tuple[float | None, ...]], baseline_version: str | None,
                       traffic: Mapping[CellKey, float | None], segments: Collection[str] | None = None
                       ) -> dict[CellKey, State]:
    """Every cell of a metric judged on its recent evaluations: :func:`persistence_judge`'s states, faster.

    The same judge as :func:`cell_judge` on each cell's value now, then, for the
    cells it calls a breach, :func:`_over_flags` on their recent evaluations (a
    breach only when over the line in every one of the last ``evaluations``, else
    suspect). Here in one loop with the criteria bound once, the stable version's
    value and recent row found once per segment, and the recent evaluations read
    only until one is within the line. ``recent`` rows are read only for the cells
    over the line now (few, usually: the rows may be built when asked for).

    ``tests/unit/test_judge_equivalence.py`` checks that every state equals the
    readable judges' on many random cells and edge cases. ``segments``: as for
    :func:`ratio_states`.
    """
    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    evaluations = criteria.evaluations
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    no_data, low, breach, suspect, passed = (
        State.NO_DATA, State.LOW_TRAFFIC, State.BREACH, State.SUSPECT, State.PASS
    )
    if not criteria.judges:  # information only, as cell_judge says
        return {key: no_data if value is None else State.INFO for key, value in values.items()}
    inf = math.inf
    stable_version = baseline_version or ""
    stable_value: dict[str, float | None] = {}
    stable_recent: dict[str, tuple[float | None, ...] | None] = {}
    if baseline_version is not None:
        stable_value = {segment: values.get((stable_version, segment))
                        for segment in (set(map(itemgetter(1), values)) if segments is None else segments)}

    def stayed_over(row: tuple[float | None, ...], base_row: tuple[float | None, ...] | None) -> bool:
        """Whether every evaluation of ``row`` is over the line (``_over_flags`` all true), and enough of them."""
        if len(row) < evaluations:
            return False
        for index, value in enumerate(row):
            if value is None:
                return False
            if threshold is not None and (value - threshold) * sign > 0:
                continue
            base = base_row[index] if base_row is not None and index < len(base_row) else None
            if max_delta is None or base is None:
                return False
            worse = (value - base) * sign
            if relative:
                worse = (inf if worse > 0 else 0.0) if base == 0 else worse / abs(base)
            if not worse > max_delta:
                return False
        return True

    states: dict[CellKey, State] = {}
    traffic_of = traffic.get
    for key, value in values.items():
        if value is None:
            states[key] = no_data
            continue
        if min_traffic is not None:
            flow = traffic_of(key)
            if flow is None or not flow >= min_traffic:
                states[key] = low
                continue
        version, segment = key
        compare = baseline_version is not None and version != baseline_version
        if threshold is None or not (value - threshold) * sign > 0:
            if max_delta is None:
                states[key] = passed
                continue
            baseline = stable_value.get(segment)
            if not compare:
                # The stable version itself, or no stable version at all.
                states[key] = passed if (threshold is not None or baseline is not None) else no_data
                continue
            if baseline is None:
                states[key] = passed if threshold is not None else no_data
                continue
            worse = (value - baseline) * sign
            if relative:
                worse = (inf if worse > 0 else 0.0) if baseline == 0 else worse / abs(baseline)
            if not worse > max_delta:
                states[key] = passed
                continue
        # Over the line now: a breach only when it was over the line at every recent evaluation.
        if compare:
            if segment in stable_recent:
                base_row = stable_recent[segment]
            else:
                base_row = stable_recent[segment] = recent.get((stable_version, segment))
        else:
            base_row = None
        try:  # recent.get(key), without Mapping.get's extra call (the rows may be a lazy Mapping)
            row = recent[key] or (value,)
        except KeyError:
            row = (value,)
        states[key] = breach if stayed_over(row, base_row) else suspect
    return states


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
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    low, high = exact_interval(counts.numerator, counts.denominator, confidence)
    reasons: list[str] = []
    if criteria.threshold is not None:
        over = (value - criteria.threshold) * sign > 0
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
            relative = criteria.delta_kind is DeltaKind.RELATIVE
            limit = criteria.max_delta * abs(base_value) if relative else criteria.max_delta
            over = (value - base_value) * sign > limit
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

    A *drained* version receives no traffic now (the router gives it none), yet its
    one-minute window still holds what it served before: its cells keep what they
    last showed, but they say nothing about now, so they are left out of
    :meth:`counts`, :meth:`breaches` and :meth:`in_state`.
    """

    versions: tuple[str, ...]
    segments: tuple[str, ...]
    metrics: tuple[MetricSpec, ...]
    results: dict[str, QueryResult]
    values: dict[str, dict[CellKey, float | None]]
    states: dict[str, dict[CellKey, State]]
    baseline_version: str | None
    traffic_metric: str | None
    drained: frozenset[str] = frozenset()
    """Shown versions the router sends no traffic now (see above)."""

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
        if result is not None and key in result.problems:
            return Verdict(metric, version, segment, state, None, None, result.problems[key])
        base_key = (self.baseline_version or "", segment)
        baseline = self.values[metric].get(base_key) if self.baseline_version else None
        traffic = self.values.get(self.traffic_metric or "", {}).get(key)
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

    def version_state(self, version: str) -> State:
        """A version's overall state: breach if any cell breaches, else suspect, else pass (:data:`SEVERITY`)."""
        return overall_state({
            self.state(m.name, version, segment) for m in self.metrics for segment in self.segments
        })

    def counts(self) -> dict[State, int]:
        """How many shown cells of the versions that take traffic now are in each state."""
        counts = dict.fromkeys(State, 0)
        live = [version for version in self.versions if version not in self.drained]
        for m in self.metrics:
            for version in live:
                for segment in self.segments:
                    counts[self.state(m.name, version, segment)] += 1
        return counts

    def breaches(self) -> list[Verdict]:
        """Every breaching cell of the versions that take traffic now, explained, in display order."""
        return self.in_state(State.BREACH)

    def in_state(self, state: State) -> list[Verdict]:
        """Every judged cell in ``state`` of the versions that take traffic now, explained, in display order."""
        return [
            self.cell(m.name, version, segment)
            for version in self.versions if version not in self.drained
            for segment in self.segments
            for m in self.metrics
            if self.states.get(m.name, {}).get((version, segment)) is state
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
    drained: frozenset[str] = frozenset(),
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
        drained: the versions the router sends no traffic now (:attr:`Matrix.drained`).

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
        # map(itemgetter) builds these sets at C speed: 24,000 keys a refresh at 20 x 200 x 6.
        if not wanted.issuperset(map(_first, result.raw)):
            metric_values = {key: v for key, v in metric_values.items() if key[0] in wanted}
        values[name] = metric_values
        all_segments.update(map(_second, metric_values))
    traffic = values.get(traffic_metric, {}) if traffic_metric else {}
    states: dict[str, dict[CellKey, State]] = {}
    for spec in metrics:
        metric_values = values.get(spec.name, {})
        if not spec.criteria.judges:
            continue  # information only: Matrix.state derives INFO / NO_DATA from the value
        compare_any = baseline_version is not None
        answer = results.get(spec.name)
        if answer is not None and spec.counts:
            # As ratio_judge on every cell (tests/unit/test_judge_equivalence.py), in one loop.
            states[spec.name] = ratio_states(spec, metric_values, answer.counts, baseline_version, traffic,
                                             all_segments)
            continue
        if answer is not None and spec.persists:
            # As persistence_judge on every cell (tests/unit/test_judge_equivalence.py): the recent rows are
            # read only for the cells over the line now (few, usually; their rows are read lazily).
            states[spec.name] = persistence_states(spec, metric_values, answer.recent, baseline_version, traffic,
                                                   all_segments)
            continue
        judge = cell_judge(spec)
        baselines = {
            segment: value for (version, segment), value in metric_values.items() if version == baseline_version
        }
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
        drained=frozenset(drained) & frozenset(versions),
    )


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
    judge_recent = persistence_judge(spec) if spec.criteria.evaluations > 1 else None
    judge_now = cell_judge(spec)
    stride = max(1, round(spec.criteria.step_s / step))
    back = spec.criteria.evaluations
    for key, cell in cells.items():
        stable_cell = cells.get((stable, key[1])) if stable is not None else None
        stable_values = stable_cell["values"] if stable_cell is not None else None
        compare = stable is not None and key[0] != stable
        traffic_values = traffic_by_cell.get(key, [])
        hits = []
        for index, value in enumerate(cell["values"]):
            if value is None:
                continue
            flow = at(traffic_values, index) if traffic_values else (None if spec.criteria.min_traffic else 0.0)
            if judge_recent is None:
                state = judge_now(value, at(stable_values, index) if stable_values else None, compare, flow)
            else:
                picks = [index - (back - 1 - i) * stride for i in range(back)]
                recent = tuple(at(cell["values"], i) for i in picks)
                base_recent = tuple(at(stable_values, i) for i in picks) if stable_values else None
                state = judge_recent(recent, base_recent, compare, flow)
            if state is State.BREACH:
                hits.append(index)
        if hits:
            found[key] = _with_excursions(spec, hits, cell["values"], stable_values, compare)
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
