"""Confidence intervals for proportions: the statistics behind a ratio's verdict.

Pure functions on counts. Counts may be fractional: Prometheus' ``increase``
extrapolates to the window's edges, so 29.4 requests is an ordinary answer; the
exact interval below is defined for fractional counts through the incomplete
beta function, so nothing is rounded.

The exact (Clopper-Pearson) interval is used rather than Wilson's: a verdict
is a one-sided decision ("is the error rate above 5 %?"), and Wilson's lower
bound is too high for small proportions in small samples. Simulated on cells of
20-60 requests sitting exactly on a 5 % threshold, Wilson's 95 % interval
excluded the threshold from below in 4.2 % of cells, against the 2.5 % it
promises; the exact interval never exceeds what it promises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist
from typing import NamedTuple


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz).

    The cells near a limit need it, a few hundred per refresh: ``abs(v) > tiny`` is
    written ``v > tiny or v < -tiny`` (the same test, NaN included, without a call)
    and ``a + 2m`` is computed once per step. The arithmetic is unchanged, so are
    the results, to the last bit.
    """
    tiny, minus_tiny = 1e-300, -1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if d > tiny or d < minus_tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        a_m2 = a + m2
        aa = m * (b - m) * x / ((qam + m2) * a_m2)
        d = 1.0 + aa * d
        d = 1.0 / (d if d > tiny or d < minus_tiny else tiny)
        c = 1.0 + aa / c
        if not (c > tiny or c < minus_tiny):
            c = tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / (a_m2 * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if d > tiny or d < minus_tiny else tiny)
        c = 1.0 + aa / c
        if not (c > tiny or c < minus_tiny):
            c = tiny
        step = d * c
        h *= step
        if -1e-12 < step - 1.0 < 1e-12:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


@lru_cache(maxsize=64)
def _normal_quantile(p: float) -> float:
    return NormalDist().inv_cdf(p)


@lru_cache(maxsize=8192)
def _beta_quantile(a: float, b: float, target: float) -> float:
    """The x with I_x(a, b) = target: Newton's method on the beta density, kept inside a shrinking bracket.

    Converges in a handful of steps where plain bisection takes some forty: a refresh
    may need thousands of these when a whole version misbehaves.
    """
    low, high = 0.0, 1.0
    # Start from the normal approximation of the beta distribution: a few steps from the answer.
    mean, total = a / (a + b), a + b
    spread = math.sqrt(a * b / (total * total * (total + 1.0)))
    x = min(max(mean + _normal_quantile(target) * spread, 1e-9), 1.0 - 1e-9)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    for _ in range(100):
        error = regularized_beta(a, b, x) - target
        if abs(error) < 1e-12:
            return x
        if error < 0:
            low = x
        else:
            high = x
        density = math.exp(log_norm + (a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x))
        step = x - error / density if density > 0 else None
        x = step if step is not None and low < step < high else (low + high) / 2.0
        if high - low < 1e-12:
            break
    return x


END_TOLERANCE = 1e-10
"""How far from its target the tail probability at an end of :attr:`IntervalTests.lower_end_near` (or
:attr:`~IntervalTests.upper_end_near`) may be."""


def _beta_quantile_near(a: float, b: float, target: float, rough: bool = False) -> tuple[float, float] | None:
    """An x with ``|I_x(a, b) - target| < END_TOLERANCE`` (``rough``: the first x known well enough), and how far
    from the quantile it may be.

    The distance is 1.25 times the remaining error (with the function's own rounding,
    which grows with the counts) over the density at x: the first order, the density
    being known to vary by less than a factor e^0.2 within twice it (``None`` when it may
    vary more: an end pressed against 0 or 1 with a shape below 1, or a first guess too
    far off); ``None`` also when no such x is found (the bracket closes first: at tiny
    counts no float is that close to the target). ``rough``: the first x whose distance
    can be told so (the first guess, most often: one evaluation).

    For a level that a judge then compares with a margin (see
    :func:`~console.domain.verdicts.ratio_states`), not for an interval shown: the
    interval's ends are :func:`_beta_quantile`'s. The inverse function's Taylor series to
    the third order (Halley's method is the second) from Numerical Recipes' first guess
    (``invbetai``; the closed form when a shape is 1: no failures, or no successes), kept
    inside a shrinking bracket, with the beta function's logarithm computed once: two
    evaluations of the incomplete beta function, sometimes three, where
    :func:`_beta_quantile` takes about six.
    """
    log, log1p, exp, fraction = math.log, math.log1p, math.exp, _beta_fraction
    if b == 1.0:  # I_x(a, 1) = x^a: all successes, the lower end
        x = target ** (1.0 / a)
    elif a == 1.0:  # I_x(1, b) = 1 - (1 - x)^b: no successes, the upper end
        x = -math.expm1(log1p(-target) / b)
    elif a >= 1.0 and b >= 1.0:
        pp = target if target < 0.5 else 1.0 - target
        t = math.sqrt(-2.0 * log(pp))
        z = (2.30753 + t * 0.27061) / (1.0 + t * (0.99229 + t * 0.04481)) - t
        if target < 0.5:
            z = -z
        al = (z * z - 3.0) / 6.0
        h = 2.0 / (1.0 / (2.0 * a - 1.0) + 1.0 / (2.0 * b - 1.0))
        w = (z * math.sqrt(al + h) / h
             - (1.0 / (2.0 * b - 1.0) - 1.0 / (2.0 * a - 1.0)) * (al + 5.0 / 6.0 - 2.0 / (3.0 * h)))
        x = a / (a + b * exp(2.0 * w)) if w < 300.0 else 0.0
    else:
        t, u = exp(a * log(a / (a + b))) / a, exp(b * log(b / (a + b))) / b
        w = t + u
        x = (a * w * target) ** (1.0 / a) if target < t / w else 1.0 - (b * w * (1.0 - target)) ** (1.0 / b)
    if not 0.0 < x < 1.0:
        x = 0.5
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    edge = (a + 1.0) / (a + b + 2.0)
    low, high = 0.0, 1.0
    for _ in range(100):
        log_x, log_rest = log(x), log1p(-x)
        log_front = log_norm + a * log_x + b * log_rest
        if x < edge:  # regularized_beta(a, b, x), its beta function computed once
            error = exp(log_front) * fraction(a, b, x) / a - target
        else:
            error = 1.0 - exp(log_front) * fraction(b, a, 1.0 - x) / b - target
        log_density = log_front - log_x - log_rest
        density = exp(log_density) if log_density < 700.0 else math.inf  # a shape below 1, at an edge
        converged = -END_TOLERANCE < error < END_TOLERANCE
        if (converged or rough) and 0.0 < density < math.inf:
            # The first order, with the function's own rounding (which grows with the counts: lgamma's
            # terms): within twice that distance the density's logarithm moves by at most 0.2 (its slope
            # there is at most g's at x plus the distance times a bound of g' there), so the exact quantile
            # is within e^0.2 < 1.25 times that distance.
            off = (abs(error) + 1e-12 + 1e-17 * (a + b)) / density
            reach = 2.0 * off
            if 0.0 < x - reach and x + reach < 1.0:
                bend = (abs(a - 1.0) / ((x - reach) * (x - reach))
                        + abs(b - 1.0) / ((1.0 - x - reach) * (1.0 - x - reach)))
                if reach * (abs((a - 1.0) / x - (b - 1.0) / (1.0 - x)) + reach * bend) <= 0.2:
                    return x, 1.25 * off
        if converged:
            return None  # converged, and yet its distance cannot be told: an end pressed against 0 or 1
        if error < 0.0:
            low = x
        else:
            high = x
        step = None
        if density > 0.0:  # the inverse function's Taylor series to the third order, from the density's
            newton = -error / density  # logarithmic derivative g (the second order alone is Halley's method)
            left, right = (a - 1.0) / x, (b - 1.0) / (1.0 - x)
            g, slope = left - right, left / x + right / (1.0 - x)  # g and -g' (inf, nan: a bisection)
            step = x + newton * (1.0 - 0.5 * g * newton + (2.0 * g * g + slope) / 6.0 * newton * newton)
        x = step if step is not None and low < step < high else (low + high) / 2.0
        if not high - low > 1e-15:
            return None
    return None


def _kl(p: float, q: float) -> float:
    """The Kullback-Leibler divergence of Bernoulli(p) from Bernoulli(q), 0 < q < 1."""
    total = 0.0
    if p > 0.0:
        total += p * math.log(p / q)
    if p < 1.0:
        total += (1.0 - p) * math.log((1.0 - p) / (1.0 - q))
    return total


def _far(successes: float, trials: float, level: float, tail: float) -> bool:
    """Whether the Chernoff bound alone shows ``successes`` of ``trials`` beyond chance at ``level``.

    P(X >= k) <= exp(-n D(k/n || level)) above the level, and likewise below it.
    Counts from ``increase`` are fractional: the bound is taken one count closer to
    the level, so it stays a bound for the continuous extension too. Most cells
    of a refresh are far from every limit and are decided here, without the
    incomplete beta function.
    """
    p = successes / trials
    nearer = (successes - 1.0) / trials if p > level else (successes + 1.0) / trials
    if (nearer - level) * (p - level) <= 0.0:
        return False
    return trials * _kl(min(max(nearer, 0.0), 1.0), level) > -math.log(tail)


def lower_bound_above(successes: float, trials: float, level: float, confidence: float) -> bool:
    """Whether the exact interval's lower bound is above ``level``, without computing it (one tail probability)."""
    tail = (1.0 - confidence) / 2.0
    successes = min(max(successes, 0.0), trials)
    if successes <= 0 or level >= 1.0:
        return False
    if level <= 0.0:
        return True
    if successes / trials <= level:  # the lower bound never exceeds the proportion itself
        return False
    if _far(successes, trials, level, tail):
        return True
    return regularized_beta(successes, trials - successes + 1.0, level) < tail


def upper_bound_above(successes: float, trials: float, level: float, confidence: float) -> bool:
    """Whether the exact interval's upper bound is above ``level``, without computing it."""
    tail = (1.0 - confidence) / 2.0
    successes = min(max(successes, 0.0), trials)
    if successes >= trials or level < 0.0:
        return level < 1.0
    if level >= 1.0:
        return False
    if successes / trials >= level:  # the upper bound is never below the proportion itself
        return True
    if _far(successes, trials, level, tail):
        return False
    return regularized_beta(successes + 1.0, trials - successes, level) < 1.0 - tail


class IntervalTests(NamedTuple):
    """The interval's tests at one confidence, for a refresh's thousands of cells: see :func:`interval_tests`."""

    lower_above: Callable[[float, float, float], bool]
    """``lower_above(successes, trials, level)``: as :func:`lower_bound_above`."""
    upper_above: Callable[[float, float, float], bool]
    """``upper_above(successes, trials, level)``: as :func:`upper_bound_above`."""
    lower_above_quick: Callable[[float, float, float], bool | None]
    """:attr:`lower_above` without the incomplete beta function: ``None`` when only it can tell."""
    upper_above_quick: Callable[[float, float, float], bool | None]
    """:attr:`upper_above` without the incomplete beta function: ``None`` when only it can tell."""
    lower_above_exact: Callable[[float, float, float], bool]
    """:attr:`lower_above` by the incomplete beta function alone, for a cell the quick test left undecided."""
    upper_above_exact: Callable[[float, float, float], bool]
    """:attr:`upper_above` by the incomplete beta function alone, for a cell the quick test left undecided."""
    lower_above_clear: Callable[[float, float, float, float, float], bool | None]
    """``lower_above_clear(successes, trials, level, band, reach)``: :attr:`lower_above_exact`, or ``None`` when
    too close to call: its tail probability within ``band`` of the tail, or the exact end possibly within
    ``reach`` of ``level`` (the tail probability within 1.2 times the density at ``level`` times ``reach``, the
    density known to vary by less than 10 % within ``reach``; else ``None`` too, as for a level within ``reach``
    of 0 or 1; beyond them, the exact answer: the tail probability is 0 or 1)."""
    upper_above_clear: Callable[[float, float, float, float, float], bool | None]
    """``upper_above_clear(successes, trials, level, band, reach)``: as :attr:`lower_above_clear`, for
    :attr:`upper_above_exact`."""
    lower_end: Callable[[float, float], float]
    """``lower_end(successes, trials)``: as :func:`exact_lower`."""
    upper_end: Callable[[float, float], float]
    """``upper_end(successes, trials)``: as :func:`exact_upper`."""
    lower_end_near: Callable[[float, float, bool], tuple[float, float] | None]
    """``lower_end_near(successes, trials, rough)``: :attr:`lower_end` to within :data:`END_TOLERANCE` in
    probability, in two or three evaluations of the incomplete beta function where :attr:`lower_end` takes about
    six (``rough``: most often one, less near), and how far from the exact end it may be (``None``: not found).
    For ``0 < successes <= trials``."""
    upper_end_near: Callable[[float, float, bool], tuple[float, float] | None]
    """``upper_end_near(successes, trials, rough)``: as :attr:`lower_end_near`, for :attr:`upper_end`.
    For ``0 <= successes < trials``."""


def interval_tests(confidence: float) -> IntervalTests:
    """The bound tests and interval ends at one ``confidence`` (below 1), each in one function body.

    :attr:`~IntervalTests.lower_above`, :attr:`~IntervalTests.upper_above`,
    :attr:`~IntervalTests.lower_end` and :attr:`~IntervalTests.upper_end` stand for
    :func:`lower_bound_above`, :func:`upper_bound_above`, :func:`exact_lower` and
    :func:`exact_upper`, which stay as they are: the readable reference, and what the
    explanations use.

    A refresh asks these questions of thousands of cells, and most of a test's cost
    was in its calls (``_far``, ``_kl``, ``min``, ``max``) and in the constants it
    computed again for each cell. Here the tail, ``-log(tail)`` and the quantile
    targets are computed once, the Chernoff pre-check and the clamps are inlined, and
    each test keeps the same floating-point operations in the same order as the
    readable function it stands for, so it answers exactly as that function does
    (``tests/unit/test_judge_equivalence.py`` checks them on many cells, edges included).

    Inlined, two steps of the readable functions simplify: when the Chernoff test is
    reached, the proportion is above the level for the lower bound (so the count one
    closer to the level is ``successes - 1``) and below it for the upper bound
    (``successes + 1``); and when that test applies, the nearer proportion lies
    between the level and the proportion, so inside ``[0, 1]``, where ``_far``'s clamp
    changes nothing.

    The tests are also split in two, the quick decision (clamps, proportion,
    Chernoff bound) and the incomplete beta function, so that a judge with two
    criteria can try the other criterion before paying for the exact interval.
    :attr:`~IntervalTests.lower_above_clear` and :attr:`~IntervalTests.upper_above_clear`
    are the incomplete beta function's test that also says when it is too close to
    call: a judge that asks it in place of another arrangement of the same
    arithmetic (see :func:`~console.domain.verdicts.ratio_states`) falls back to
    that arrangement there, so the two never disagree by rounding; with
    :attr:`~IntervalTests.lower_end_near` and :attr:`~IntervalTests.upper_end_near`, the
    interval's ends to a stated accuracy, faster, for the levels such a judge compares with.

    Two shortcuts decide most cells before the arithmetic they stand for, and only
    where that arithmetic would answer the same: the Chernoff test by a lower bound of
    the divergence (no logarithm), and the exact tests by bounds of the incomplete beta
    function's series from its front factor alone (no continued fraction).
    """
    tail = (1.0 - confidence) / 2.0
    chernoff_limit = -math.log(tail)
    # The divergence D(a || b) is the integral of (t - a) / (t (1 - t)) from a to b, so at least
    # (b - a)^2 / (2 m), m the largest t (1 - t) between them: when that clears the Chernoff limit by
    # 1e-8 (relatively; the computed divergence is within 1e-9 of its value when |b - a| > 1e-6), so does
    # the divergence the test computes, and the test answers as it would.
    wide_limit = 2.0 * chernoff_limit * (1.0 + 1e-8)
    upper_tail = 1.0 - tail
    log, beta, quantile = math.log, regularized_beta, _beta_quantile
    log1p, lgamma, exp, fraction = math.log1p, math.lgamma, math.exp, _beta_fraction

    def lower_above_quick(successes: float, trials: float, level: float) -> bool | None:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if successes <= 0 or level >= 1.0:
            return False
        if level <= 0.0:
            return True
        p = successes / trials
        if p <= level:  # the lower bound never exceeds the proportion itself
            return False
        nearer = (successes - 1.0) / trials
        if (nearer - level) * (p - level) > 0.0:
            gap = nearer - level
            if gap > 1e-6:  # the Chernoff test by a lower bound of the divergence, without logarithms
                spread = 0.25 if level <= 0.5 <= nearer else nearer * (1.0 - nearer) if nearer < 0.5 \
                    else level * (1.0 - level)
                if trials * gap * gap > wide_limit * spread:
                    return True
            divergence = 0.0
            if nearer > 0.0:
                divergence += nearer * log(nearer / level)
            if nearer < 1.0:
                divergence += (1.0 - nearer) * log((1.0 - nearer) / (1.0 - level))
            if trials * divergence > chernoff_limit:
                return True
        return None

    def lower_above_exact(successes: float, trials: float, level: float) -> bool:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if 0.0 < successes and 0.0 < level < 1.0:
            return compare(successes, trials - successes + 1.0, level, tail, 0.0, 0.0) < 0
        return beta(successes, trials - successes + 1.0, level) < tail

    def lower_above(successes: float, trials: float, level: float) -> bool:
        decided = lower_above_quick(successes, trials, level)
        return lower_above_exact(successes, trials, level) if decided is None else decided

    def upper_above_quick(successes: float, trials: float, level: float) -> bool | None:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if successes >= trials or level < 0.0:
            return level < 1.0
        if level >= 1.0:
            return False
        p = successes / trials
        if p >= level:  # the upper bound is never below the proportion itself
            return True
        nearer = (successes + 1.0) / trials
        if (nearer - level) * (p - level) > 0.0:
            gap = level - nearer
            if gap > 1e-6:  # as in lower_above_quick
                spread = 0.25 if nearer <= 0.5 <= level else level * (1.0 - level) if level < 0.5 \
                    else nearer * (1.0 - nearer)
                if trials * gap * gap > wide_limit * spread:
                    return False
            divergence = 0.0
            if nearer > 0.0:
                divergence += nearer * log(nearer / level)
            if nearer < 1.0:
                divergence += (1.0 - nearer) * log((1.0 - nearer) / (1.0 - level))
            if trials * divergence > chernoff_limit:
                return False
        return None

    def upper_above_exact(successes: float, trials: float, level: float) -> bool:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if successes < trials and 0.0 < level < 1.0:
            return compare(successes + 1.0, trials - successes, level, upper_tail, 0.0, 0.0) < 0
        return beta(successes + 1.0, trials - successes, level) < upper_tail

    def upper_above(successes: float, trials: float, level: float) -> bool:
        decided = upper_above_quick(successes, trials, level)
        return upper_above_exact(successes, trials, level) if decided is None else decided

    def compare(a: float, b: float, x: float, target: float, band: float, reach: float) -> int:
        """The sign of ``regularized_beta(a, b, x) - target`` (the same value), 0 within a margin; ``0 < x < 1``.

        The margin is ``band`` (plus the function's own rounding, which grows with the counts) or the
        density times ``reach``, the larger; none when both are 0. The series bounds first: the incomplete
        beta function is rarely needed to tell. I = front / a * F(a + b, 1; a + 1; x) (DLMF 8.17.8), whose
        terms' ratios x (a + b + k) / (a + 1 + k) run from r = x (a + b) / (a + 1) towards x, downwards
        when b >= 1: so the series is between 1 / (1 - x) and 1 / (1 - r) (the other way round when b < 1);
        right of the switch below, 1 - I likewise, with a, b and x, 1 - x exchanged; r < (a + b) / (a + b + 2)
        < 1 on each side of it. Widened by 1e-6: the continued fraction's value is within far less of the
        series' (the front factor is the same number in both), so the bounds never contradict it; not used
        from a + b = 1e5, where the fraction may need nearer its 400 steps (it stops there, short of the
        series, near the mean from a + b = 5e5: the test must answer as regularized_beta does, even there).
        """
        log_x, log_rest = log(x), log1p(-x)
        log_front = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log_x + b * log_rest
        front = exp(log_front)
        margin = 0.0
        if band or reach:
            margin = 1.2 * exp(log_front - log_x - log_rest) * reach
            if margin < band + 1e-17 * (a + b):
                margin = band + 1e-17 * (a + b)
        bounded = a + b < 1e5
        if x < (a + 1.0) / (a + b + 2.0):
            if bounded:
                near, far = front / (a * (1.0 - x)), front / (a * (1.0 - x * (a + b) / (a + 1.0)))
                if b < 1.0:
                    near, far = far, near
                if far * (1.0 + 1e-6) < target - margin:
                    return -1
                if near * (1.0 - 1e-6) > target + margin:
                    return 1
            value = front * fraction(a, b, x) / a  # regularized_beta's operations, from here
        else:
            if bounded:
                near, far = front / (b * x), front / (b * (1.0 - (1.0 - x) * (a + b) / (b + 1.0)))
                if a < 1.0:
                    near, far = far, near
                if 1.0 - near * (1.0 - 1e-6) < target - margin:
                    return -1
                if 1.0 - far * (1.0 + 1e-6) > target + margin:
                    return 1
            value = 1.0 - front * fraction(b, a, 1.0 - x) / b
        return -1 if value < target - margin else 1 if value > target + margin else 0

    def below(a: float, b: float, x: float, target: float, band: float, reach: float) -> bool | None:
        """Whether ``regularized_beta(a, b, x) < target``, or ``None`` when too close to call (see the fields)."""
        if not (0.0 < x - reach and x + reach < 1.0) \
                or reach * (abs(a - 1.0) / (x - reach) + abs(b - 1.0) / (1.0 - x - reach)) > 0.1:
            return None  # the density may vary by more than 10 % within reach: no first-order margin
        sign = compare(a, b, x, target, band, reach)
        return None if sign == 0 else sign < 0

    def lower_above_clear(successes: float, trials: float, level: float, band: float, reach: float) -> bool | None:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if level + reach <= 0.0 or level - reach >= 1.0:  # the tail probability is 0 or 1
            return beta(successes, trials - successes + 1.0, level) < tail
        return below(successes, trials - successes + 1.0, level, tail, band, reach)

    def upper_above_clear(successes: float, trials: float, level: float, band: float, reach: float) -> bool | None:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if level + reach <= 0.0 or level - reach >= 1.0:  # the tail probability is 0 or 1
            return beta(successes + 1.0, trials - successes, level) < upper_tail
        return below(successes + 1.0, trials - successes, level, upper_tail, band, reach)

    def lower_end(successes: float, trials: float) -> float:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        return 0.0 if successes <= 0 else quantile(successes, trials - successes + 1.0, tail)

    def upper_end(successes: float, trials: float) -> float:
        if successes < 0.0:
            successes = 0.0
        if successes > trials:
            successes = trials
        if successes >= trials:
            return 1.0
        return quantile(successes + 1.0, trials - successes, upper_tail)

    def lower_end_near(successes: float, trials: float, rough: bool = False) -> tuple[float, float] | None:
        return _beta_quantile_near(successes, trials - successes + 1.0, tail, rough)

    def upper_end_near(successes: float, trials: float, rough: bool = False) -> tuple[float, float] | None:
        return _beta_quantile_near(successes + 1.0, trials - successes, upper_tail, rough)

    return IntervalTests(lower_above, upper_above, lower_above_quick, upper_above_quick, lower_above_exact,
                         upper_above_exact, lower_above_clear, upper_above_clear, lower_end, upper_end,
                         lower_end_near, upper_end_near)


def exact_interval(successes: float, trials: float, confidence: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a proportion at ``confidence``, two-sided.

    Each bound leaves at most ``(1 - confidence) / 2`` on its side: a breach
    called when the lower bound clears a threshold is wrong at most that often.

    Args:
        successes: events counted by the numerator (0 <= successes <= trials).
        trials: events counted by the denominator (> 0).
        confidence: for example 0.95.

    Returns:
        ``(low, high)``.
    """
    return exact_lower(successes, trials, confidence), exact_upper(successes, trials, confidence)


def exact_lower(successes: float, trials: float, confidence: float) -> float:
    """The lower bound of :func:`exact_interval` alone."""
    successes = min(max(successes, 0.0), trials)
    return 0.0 if successes <= 0 else _beta_quantile(successes, trials - successes + 1.0, (1.0 - confidence) / 2.0)


def exact_upper(successes: float, trials: float, confidence: float) -> float:
    """The upper bound of :func:`exact_interval` alone."""
    successes = min(max(successes, 0.0), trials)
    if successes >= trials:
        return 1.0
    return _beta_quantile(successes + 1.0, trials - successes, 1.0 - (1.0 - confidence) / 2.0)


def difference_beyond(successes_a: float, trials_a: float, successes_b: float, trials_b: float, limit: float,
                      confidence: float, surely: bool) -> bool:
    """Whether ``p_a - p_b`` is above ``limit`` for sure (the interval's lower bound) or possibly (its upper one).

    The same interval as :func:`difference_interval`, without computing all of it:
    the bound of ``b`` (the stable version, the same for every version of a segment,
    so cached) and one tail probability of ``a``. With ``l_a``, ``u_b`` the bounds,
    the lower bound ``d - sqrt((p_a - l_a)^2 + (u_b - p_b)^2)`` is above the limit
    exactly when ``d > limit`` and ``l_a > p_a - sqrt((d - limit)^2 - (u_b - p_b)^2)``;
    likewise for the upper bound.
    """
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    difference = p_a - p_b
    if surely:
        room = difference - limit
        spread_b = exact_upper(successes_b, trials_b, confidence) - p_b
        if room <= 0 or room * room <= spread_b * spread_b:
            return False
        return lower_bound_above(successes_a, trials_a, p_a - math.sqrt(room * room - spread_b * spread_b),
                                 confidence)
    room = limit - difference
    spread_b = p_b - exact_lower(successes_b, trials_b, confidence)
    if room < 0 or room * room < spread_b * spread_b:
        return True
    return upper_bound_above(successes_a, trials_a, p_a + math.sqrt(room * room - spread_b * spread_b), confidence)


def difference_interval(successes_a: float, trials_a: float, successes_b: float, trials_b: float,
                        confidence: float) -> tuple[float, float]:
    """An interval for ``p_a - p_b``, combining each proportion's exact interval (Newcombe's square-and-add).

    Newcombe (1998) builds it from Wilson intervals (his method 10); built from
    exact intervals it inherits their caution at small counts.

    Returns:
        ``(low, high)`` of the difference.
    """
    p_a, p_b = successes_a / trials_a, successes_b / trials_b
    low_a, high_a = exact_interval(successes_a, trials_a, confidence)
    low_b, high_b = exact_interval(successes_b, trials_b, confidence)
    difference = p_a - p_b
    return (difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
            difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2))


def trials_to_bound(level: float, confidence: float) -> int:
    """The fewest trials whose exact upper bound, with no successes at all, is at most ``level``.

    With no successes the exact interval's upper end is ``1 - tail^(1/n)``, ``tail``
    being ``(1 - confidence) / 2``: below this many trials no count, not even zero,
    can show a proportion to be under ``level`` (at 95 %, 72 trials for 5 %).

    Args:
        level: the proportion to prove the rate under (0 < level < 1).
        confidence: for example 0.95.

    Returns:
        The number of trials; 1 for a level of 1 or more.

    Raises:
        ValueError: when ``level`` is not above 0.
    """
    if level <= 0.0:
        raise ValueError(f"no number of trials bounds a proportion at {level:g} or below")
    if level >= 1.0:
        return 1
    return max(1, math.ceil(math.log((1.0 - confidence) / 2.0) / math.log1p(-level) - 1e-9))


def binomial_tail_at_least(successes: float, trials: float, probability: float) -> float:
    """``P(X >= successes)`` for ``X ~ Binomial(trials, probability)``: an exact test's one-sided p-value.

    Written as the regularized incomplete beta function ``I_p(k, n - k + 1)``, which
    equals the binomial sum for whole counts and extends it to the fractional counts
    ``increase`` gives (as the exact interval does).

    Args:
        successes: the count observed (clamped to ``[0, trials]``).
        trials: the number of trials (>= 0).
        probability: the chance of a success under the null hypothesis (0 <= p <= 1).

    Returns:
        The probability; 1 when ``successes`` is 0 (or there are no trials).
    """
    successes = min(max(successes, 0.0), trials)
    if successes <= 0.0:
        return 1.0
    return regularized_beta(successes, trials - successes + 1.0, probability)


def chi_square_survival(statistic: float, degrees: int) -> float:
    """``P(X >= statistic)`` for ``X`` chi-square with ``degrees`` degrees of freedom: a goodness-of-fit p-value.

    The regularized upper incomplete gamma function ``Q(k/2, x/2)``, by its series below
    ``k/2 + 1`` and by its continued fraction above (Numerical Recipes' split), to about 1e-12.
    """
    if statistic <= 0.0:
        return 1.0
    a, x = degrees / 2.0, statistic / 2.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(500):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-14:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-14:
            break
    return min(1.0, math.exp(log_prefix) * h)
