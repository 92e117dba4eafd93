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
from typing import Any

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
from console.domain.stats import (
    difference_beyond,
    difference_interval,
    exact_interval,
    interval_tests,
    lower_bound_above,
    upper_bound_above,
)

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


def _beyond_threshold(counts: CellCounts, threshold: float, sign: float, confidence: float, surely: bool) -> bool:
    """Whether a ratio's cell is beyond the threshold for sure (its whole interval), or possibly (any of it)."""
    x, n = counts.numerator, counts.denominator
    if sign > 0:
        return lower_bound_above(x, n, threshold, confidence) if surely else upper_bound_above(x, n, threshold,
                                                                                              confidence)
    return not upper_bound_above(x, n, threshold, confidence) if surely else not lower_bound_above(x, n, threshold,
                                                                                                   confidence)


def _beyond_delta(counts: CellCounts, base: CellCounts, limit: float, sign: float, confidence: float,
                  surely: bool) -> bool:
    """Whether a ratio's cell is worse than the stable version by more than ``limit``, for sure or possibly."""
    if sign > 0:  # worse is higher: is p - p_stable above the limit?
        return difference_beyond(counts.numerator, counts.denominator, base.numerator, base.denominator, limit,
                                 confidence, surely)
    # worse is lower: is p_stable - p above the limit?
    return difference_beyond(base.numerator, base.denominator, counts.numerator, counts.denominator, limit,
                             confidence, surely)


RatioJudge = Callable[[float | None, CellCounts | None, CellCounts | None, bool, float | None], State]


def ratio_judge(spec: MetricSpec) -> RatioJudge:
    """A judge for a ratio's cells on their counts: ``judge(value, counts, baseline_counts, compare, traffic)``.

    - **breach** when the whole confidence interval is over the line: the
      proportion's exact (Clopper-Pearson) interval beyond the threshold, or the
      interval of its difference with the stable version (Newcombe's
      square-and-add on the exact intervals) beyond ``max_delta``;
    - **suspect** when the proportion itself is over the line but its interval
      still reaches back across it (chance could explain it);
    - **pass** when the proportion is within every limit, and either the cell
      has the traffic ``min_traffic`` asks for or its interval is within too;
    - **low traffic** when it is within but too few counts to say so with confidence.

    Most cells of a healthy matrix are within their limits with traffic to
    spare: they are decided without computing an interval.
    """
    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    confidence = criteria.confidence

    def delta_limit(baseline_value: float) -> float:
        allowed = max_delta or 0.0
        return allowed * abs(baseline_value) if relative else allowed

    def judge(value: float | None, counts: CellCounts | None, base: CellCounts | None, compare: bool,
              traffic: float | None) -> State:
        if value is None or counts is None:
            return State.NO_DATA
        stable = base if max_delta is not None and compare and base is not None and base.denominator > 0 else None
        base_value = stable.numerator / stable.denominator if stable is not None else 0.0

        over_threshold = threshold is not None and (value - threshold) * sign > 0
        over_delta = stable is not None and (value - base_value) * sign > delta_limit(base_value)
        if over_threshold or over_delta:
            if threshold is not None and over_threshold \
                    and _beyond_threshold(counts, threshold, sign, confidence, surely=True) \
                    or stable is not None and over_delta \
                    and _beyond_delta(counts, stable, delta_limit(base_value), sign, confidence, True):
                return State.BREACH
            return State.SUSPECT
        if max_delta is not None and threshold is None and stable is None:
            return State.NO_DATA  # a delta-only criterion with nothing to compare with
        if min_traffic is None or (traffic is not None and traffic >= min_traffic):
            return State.PASS
        # Few requests: a pass only when the counts say so with confidence.
        if threshold is not None and _beyond_threshold(counts, threshold, sign, confidence, surely=False) \
                or stable is not None and _beyond_delta(counts, stable, delta_limit(base_value), sign, confidence,
                                                        False):
            return State.LOW_TRAFFIC
        return State.PASS

    return judge


def ratio_states(spec: MetricSpec, values: Mapping[CellKey, float | None], counts: Mapping[CellKey, CellCounts],
                 baseline_version: str | None, traffic: Mapping[CellKey, float | None],
                 segments: Collection[str] | None = None) -> dict[CellKey, State]:
    """Every ratio cell of a refresh judged on its counts: :func:`ratio_judge`'s states, cell for cell, faster.

    A refresh judges 8,000 ratio cells (20 versions x 200 segments x 2 ratios), most
    of them decided at once, so the cost was in the calls around the arithmetic. This
    is the same judge as ``{key: ratio_judge(spec)(value, counts.get(key), the stable
    version's counts in the segment, key[0] != baseline_version, traffic.get(key))}``,
    with:

    - one loop instead of a call per cell, the criteria bound once;
    - the stable version's counts, proportion and delta limit found once per segment,
      and its interval's end (when it is the difference's second term: higher is
      worse) computed once per segment, not once per cell;
    - the interval tests of :func:`~console.domain.stats.interval_tests`, each in one
      function body, with the arithmetic of :func:`~console.domain.stats.difference_beyond`
      written out here in the same order;
    - higher is better, where the cell is the difference's second term and the readable
      arithmetic needs the cell's own interval end (a quantile per cell: most of a
      refresh's cost when the counts are new, as they are at every scrape), the same
      decision by one tail probability of the cell against a level set by the stable
      version's end (one per segment), with the cells too close to the boundary to tell
      the two roundings apart left to the readable arithmetic (see the comment below);
    - of two criteria over (or near) the line, the exact interval of the threshold is
      computed only when the delta's test has not already decided the cell: "either
      criterion" is the same answer whichever is asked first.

    ``tests/unit/test_judge_equivalence.py`` checks that every state equals the
    readable judge's on many random cells and edge cases, and on cells built to sit on
    the difference interval's ends.

    Args:
        spec: a ratio judged on counts.
        values: the cells to judge (``None``: no data).
        counts: each cell's counts.
        baseline_version: the stable version, or ``None``.
        traffic: each cell's traffic.
        segments: every segment of ``values`` (more do no harm), when the caller knows them already.
    """
    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    if not criteria.confidence < 1.0:  # no tail to test (the configuration never allows it): the readable judge
        judge = ratio_judge(spec)
        return {key: judge(value, counts.get(key),
                           counts.get((baseline_version, key[1])) if baseline_version is not None else None,
                           baseline_version is not None and key[0] != baseline_version, traffic.get(key))
                for key, value in values.items()}
    tests = interval_tests(criteria.confidence)
    higher_is_worse = spec.direction is Direction.HIGHER_IS_WORSE
    sign = 1.0 if higher_is_worse else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    allowed = max_delta or 0.0
    delta_only = max_delta is not None and threshold is None
    no_data, low, breach, suspect, passed = (
        State.NO_DATA, State.LOW_TRAFFIC, State.BREACH, State.SUSPECT, State.PASS
    )
    # Beyond the threshold for sure when the interval's far end clears it: the lower bound above a
    # higher-is-worse threshold, the upper bound not above a higher-is-better one; possibly, its near end.
    if higher_is_worse:
        surely_quick, surely_exact, surely_when = tests.lower_above_quick, tests.lower_above_exact, True
        possibly_quick, possibly_exact, possibly_when = tests.upper_above_quick, tests.upper_above_exact, True
    else:
        surely_quick, surely_exact, surely_when = tests.upper_above_quick, tests.upper_above_exact, False
        possibly_quick, possibly_exact, possibly_when = tests.lower_above_quick, tests.lower_above_exact, False
    lower_above, upper_above, lower_end, upper_end = (
        tests.lower_above, tests.upper_above, tests.lower_end, tests.upper_end
    )
    lower_above_quick, upper_above_quick, lower_above_clear, upper_above_clear = (
        tests.lower_above_quick, tests.upper_above_quick, tests.lower_above_clear, tests.upper_above_clear
    )
    lower_end_near, upper_end_near = tests.lower_end_near, tests.upper_end_near
    # Too close to call (see below): a hundred times the readable quantile's tolerances, in probability and in x.
    band, reach = 1e-10, 1e-10
    fast_ends = band <= (1.0 - criteria.confidence) / 20.0  # a tail far wider than the band (not 1 - 1e-9)
    sqrt = math.sqrt
    level = threshold if threshold is not None else 0.0  # tested only when there is a threshold

    # Per segment: the stable version's counts, its proportion and the delta limit it sets.
    stable_of: dict[str, tuple[float, float, float, float]] = {}
    if max_delta is not None and baseline_version is not None:
        for segment in set(map(itemgetter(1), values)) if segments is None else segments:
            base = counts.get((baseline_version, segment))
            if base is not None and base.denominator > 0:
                base_value = base.numerator / base.denominator
                stable_of[segment] = (base.numerator, base.denominator, base_value,
                                      allowed * abs(base_value) if relative else allowed)
    # The stable version's interval is per segment. Higher is worse: the difference is p - p_stable, and the
    # stable version's end is its spread (the second term). Higher is better: p_stable - p, and the stable
    # version is the first term: see below.
    stable_upper: dict[str, float] = {}
    stable_lower: dict[str, float] = {}
    # Higher is better: the stable version's spread as a bracket, roughly (one evaluation, most often), then,
    # where a cell needs it, to END_TOLERANCE (None: the readable arithmetic for the segment).
    spread_below: dict[str, tuple[float, float] | None] = {}
    spread_above: dict[str, tuple[float, float] | None] = {}
    fine_below: dict[str, tuple[float, float] | None] = {}
    fine_above: dict[str, tuple[float, float] | None] = {}
    unknown = (0.0, 0.0)  # not computed yet (compared by identity)

    # Higher is better, the cell is the difference's second term ("b" in difference_beyond), and the readable
    # arithmetic needs the cell's exact interval end: a quantile (Newton's method on the incomplete beta
    # function, some six evaluations) per cell, a thousand or more per refresh when the counts are new. The
    # same decision is taken here with one tail probability of the cell (often none: the Chernoff test),
    # against a level set by the stable version's end (per segment), as difference_beyond does for its "a"
    # side. With s the stable version's spread on the difference's side and t the cell's:
    # - surely: s = p_stable - l_stable, t = u - p, room = d - limit > 0; the difference's lower bound is
    #   above the limit, d - sqrt(s^2 + t^2) > limit, exactly when t^2 < room^2 - s^2 = g, that is when
    #   g > 0 and u < p + sqrt(g): "not upper_above(x, n, p + sqrt(g))" (that test is "u > level");
    # - possibly: s = u_stable - p_stable, t = p - l, room = limit - d >= 0; the upper bound is above the
    #   limit, d + sqrt(s^2 + t^2) > limit, exactly when t^2 > g: g < 0, or l < p - sqrt(g), "not lower_above".
    # The stable version's end is known within a bracket (its first guess and how far it may be, then, for
    # the segments where a cell needs it, to END_TOLERANCE), so the level is too: a cell is decided when its
    # end is beyond the whole range of levels, by the Chernoff test at the range's far end, or by the tail
    # probability at its middle, with the half-width added to the margin.
    # These are the readable decisions in exact arithmetic, not in floating point. At a tie the two differ
    # by their comparisons alone: the cell's tail probability equal to the tail makes "u < level" false and
    # "not u > level" true, and the readable side compares a quantile with a level. Near a tie they may differ
    # by rounding, within what each end is computed to: the readable quantile stops within 1e-12 of its target
    # in probability, or with its bracket 1e-12 wide in x (an end pressed against 1, where floats are too
    # coarse to reach the target: far from it in probability), and its function rounds too (more with more
    # counts). So no side is chosen at or near a tie: a cell that close is too close to call, and takes the
    # readable arithmetic, word for word, which gives the reference's answer whichever way the rounding falls
    # (the tests build cells on the very ends the readable arithmetic computes, and a few ulps either side).
    # Too close is: the cell's tail probability within ``band`` (plus the rounding) of the tail, or within the
    # density times ``reach`` (plus the half-width); the stable version's spread within ``reach`` of the room;
    # a level within ``reach`` of 0 or 1. The Chernoff test decides only cells whose tail probability is far from
    # the tail (below a fifth of it, measured on a million cells), at a level where that is so for every level
    # of the range. Cells outside the cases worked out here (at 0 or all of their trials, or beyond) take the
    # readable arithmetic too: it is cheap there (the cell's end is 0 or 1), or they do not occur (the adapter
    # clamps counts into range).

    def stable_spread(segment: str, base_x: float, base_n: float, base_value: float, above: bool, fine: bool
                      ) -> tuple[float, float] | None:
        """The stable version's spread ``(low, high)``: from its lower end (``above``: upper); kept."""
        ends = (fine_above if fine else spread_above) if above else (fine_below if fine else spread_below)
        end: tuple[float, float] | None
        if not fast_ends:
            end = None
        elif above:
            end = (upper_end_near(base_x, base_n, not fine) if 0.0 <= base_x < base_n
                   else (1.0, 0.0) if base_x == base_n else None)
        else:
            end = lower_end_near(base_x, base_n, not fine) if 0.0 < base_x <= base_n else None
        if end is None:
            ends[segment] = None
            return None
        centre, radius = end
        spread = centre - base_value if above else base_value - centre
        known = ends[segment] = (spread - radius if spread > radius else 0.0, spread + radius)
        return known

    def better_surely(x: float, n: float, p_b: float, room: float, spread: tuple[float, float]) -> bool | None:
        """Higher is better, room > 0: whether the difference's lower bound is above the limit (None: too close)."""
        s_low, s_high = spread
        if s_low - room > reach:
            return False  # the stable version's spread alone is wider than the room
        wide, narrow = room * room - s_high * s_high, room * room - s_low * s_low
        if narrow <= 0.0:
            return None
        top = p_b + sqrt(narrow)  # u below the level: a breach; the level is between bottom and top
        if wide <= 0.0:
            return False if upper_above_clear(x, n, top, band, reach) else None
        bottom = p_b + sqrt(wide)
        if not bottom < 1.0 - reach:
            return None  # an end may be 1
        if upper_above_quick(x, n, bottom) is False:
            return True
        half = 0.5 * (top - bottom)
        decided = upper_above_clear(x, n, bottom + half, band, reach + half)
        return None if decided is None else not decided

    def better_possibly(x: float, n: float, p_b: float, room: float, spread: tuple[float, float]) -> bool | None:
        """Higher is better, room >= 0: whether the difference's upper bound is above the limit (None: too close)."""
        s_low, s_high = spread
        if s_low - room > reach:
            return True  # the stable version's spread alone is wider than the room
        wide, narrow = room * room - s_high * s_high, room * room - s_low * s_low
        if narrow <= 0.0:
            return None
        bottom = p_b - sqrt(narrow)  # l below the level: above the limit; the level is between bottom and top
        if wide <= 0.0:
            return True if lower_above_clear(x, n, bottom, band, reach) is False else None
        top = p_b - sqrt(wide)
        if lower_above_quick(x, n, top):
            return False
        half = 0.5 * (top - bottom)
        decided = lower_above_clear(x, n, bottom + half, band, reach + half)
        return None if decided is None else not decided

    def delta_surely(x: float, n: float, segment: str, stable: tuple[float, float, float, float]) -> bool:
        """``_beyond_delta(..., surely=True)``: ``difference_beyond`` of the worse-is-higher proportion first."""
        base_x, base_n, base_value, limit = stable  # stable_of[segment]
        if higher_is_worse:
            p_a = x / n
            room = (p_a - base_value) - limit
            if room <= 0:
                return False
            spread = stable_upper.get(segment)
            if spread is None:
                spread = stable_upper[segment] = upper_end(base_x, base_n) - base_value
            if room * room <= spread * spread:
                return False
            return lower_above(x, n, p_a - sqrt(room * room - spread * spread))
        p_b = x / n
        room = (base_value - p_b) - limit
        if room <= 0:
            return False
        if base_x <= 0.0:
            return False  # as difference_beyond: the stable version's lower bound is 0, never above a level
        if 0.0 <= x < n:
            known = spread_below.get(segment, unknown)
            if known is unknown:
                known = stable_spread(segment, base_x, base_n, base_value, False, False)
            decided = None if known is None else better_surely(x, n, p_b, room, known)
            if decided is None:
                known = fine_below.get(segment, unknown)
                if known is unknown:
                    known = stable_spread(segment, base_x, base_n, base_value, False, True)
                if known is not None:
                    decided = better_surely(x, n, p_b, room, known)
            if decided is not None:
                return decided
        # The readable arithmetic (difference_beyond's), for the cases above.
        spread = upper_end(x, n) - p_b
        if room * room <= spread * spread:
            return False
        return lower_above(base_x, base_n, base_value - sqrt(room * room - spread * spread))

    def delta_possibly(x: float, n: float, segment: str, stable: tuple[float, float, float, float]) -> bool:
        """``_beyond_delta(..., surely=False)``: ``difference_beyond`` of the worse-is-higher proportion first."""
        base_x, base_n, base_value, limit = stable  # stable_of[segment]
        if higher_is_worse:
            p_a = x / n
            room = limit - (p_a - base_value)
            if room < 0:
                return True
            spread = stable_lower.get(segment)
            if spread is None:
                spread = stable_lower[segment] = base_value - lower_end(base_x, base_n)
            if room * room < spread * spread:
                return True
            return upper_above(x, n, p_a + sqrt(room * room - spread * spread))
        p_b = x / n
        room = limit - (base_value - p_b)
        if room < 0:
            return True
        if 0.0 < x <= n:
            known = spread_above.get(segment, unknown)
            if known is unknown:
                known = stable_spread(segment, base_x, base_n, base_value, True, False)
            decided = None if known is None else better_possibly(x, n, p_b, room, known)
            if decided is None:
                known = fine_above.get(segment, unknown)
                if known is unknown:
                    known = stable_spread(segment, base_x, base_n, base_value, True, True)
                if known is not None:
                    decided = better_possibly(x, n, p_b, room, known)
            if decided is not None:
                return decided
        # The readable arithmetic (difference_beyond's), for the cases above.
        spread = p_b - lower_end(x, n)
        if room * room < spread * spread:
            return True
        return upper_above(base_x, base_n, base_value + sqrt(room * room - spread * spread))

    states: dict[CellKey, State] = {}
    counts_of, traffic_of, stable_in = counts.get, traffic.get, stable_of.get
    for key, value in values.items():
        cell = counts_of(key) if value is not None else None
        if value is None or cell is None:
            states[key] = no_data
            continue
        x, n = cell
        # Over the threshold with its whole interval: a breach, whatever the delta says.
        over_threshold = threshold is not None and (value - threshold) * sign > 0
        decided = None  # the threshold test's answer without the exact interval (None: it alone can tell)
        if over_threshold:
            decided = surely_quick(x, n, level)
            if decided is surely_when:
                states[key] = breach
                continue
        segment = key[1]
        stable = stable_in(segment) if stable_of and key[0] != baseline_version else None
        over_delta = stable is not None and (value - stable[2]) * sign > stable[3]
        if over_threshold or over_delta:
            if over_delta and stable is not None and delta_surely(x, n, segment, stable) \
                    or decided is None and over_threshold \
                    and surely_exact(x, n, level) is surely_when:
                states[key] = breach
            else:
                states[key] = suspect
            continue
        if delta_only and stable is None:
            states[key] = no_data  # a delta-only criterion with nothing to compare with
            continue
        if min_traffic is None:
            states[key] = passed
            continue
        flow = traffic_of(key)
        if flow is not None and flow >= min_traffic:
            states[key] = passed
            continue
        # Few requests: a pass only when the counts say so with confidence (either criterion may say no).
        if threshold is not None:
            decided = possibly_quick(x, n, level)
            if decided is possibly_when:
                states[key] = low
                continue
        if stable is not None and delta_possibly(x, n, segment, stable) \
                or decided is None and threshold is not None \
                and possibly_exact(x, n, level) is possibly_when:
            states[key] = low
        else:
            states[key] = passed
    return states


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
        judge_counts = ratio_judge(spec)
        for key, cell in cells.items():
            base = cells.get((stable, key[1])) if stable is not None else None
            compare = stable is not None and key[0] != stable
            hits = []
            for index, value in enumerate(cell["values"]):
                num, den = at(cell["numerators"], index), at(cell["denominators"], index)
                counts = CellCounts(num, den) if num is not None and den else None
                base_counts = None
                if base is not None:
                    b_num, b_den = at(base["numerators"], index), at(base["denominators"], index)
                    base_counts = CellCounts(b_num, b_den) if b_num is not None and b_den else None
                state = judge_counts(value, counts, base_counts, compare, None)
                if state is State.BREACH:
                    hits.append(index)
            if hits:
                found[key] = _with_excursions(spec, hits, cell["values"], base["values"] if base else None, compare)
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
