"""Confidence intervals for proportions: the statistics behind a ratio's verdict.

Pure functions on counts, on numpy arrays (a refresh judges thousands of cells at
once) or on plain numbers (an explanation, a shadow gate): the same functions, so
a verdict and the interval its explanation shows come from one arithmetic.

Counts may be fractional: Prometheus' ``increase`` extrapolates to the window's
edges, so 29.4 requests is an ordinary answer; the exact interval below is defined
for fractional counts through the regularized incomplete beta function, so nothing
is rounded. That function, its inverse and the incomplete gamma function are
scipy's (``scipy.special.betainc``, ``betaincinv``, ``gammaincc``: the beta
distribution's cdf and quantile), maintained and tested by others. numpy and scipy
are imported when a number is first asked for, not with this module: the console
paints its first frame without them, and its worker pays for them at the first
judgement.

The exact (Clopper-Pearson) interval is used rather than Wilson's: a verdict
is a one-sided decision ("is the error rate above 5 %?"), and Wilson's lower
bound is too high for small proportions in small samples. Simulated on cells of
20-60 requests sitting exactly on a 5 % threshold, Wilson's 95 % interval
excluded the threshold from below in 4.2 % of cells, against the 2.5 % it
promises; the exact interval never exceeds what it promises.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    Floats = NDArray[np.float64]
    Flags = NDArray[np.bool_]


def _arrays(*values: ArrayLike) -> list[Floats]:
    """``values`` as float arrays of one shape, at least one-dimensional (numpy imported here, at first use)."""
    import numpy as np

    return [np.array(a, dtype=np.float64) for a in np.broadcast_arrays(*map(np.atleast_1d, values))]


def _clamped(successes: Floats, trials: Floats) -> Floats:
    import numpy as np

    return np.minimum(np.maximum(successes, 0.0), trials)


def lower_above(successes: ArrayLike, trials: ArrayLike, level: ArrayLike, confidence: float) -> Flags:
    """Whether the exact interval's lower bound is above ``level``, cell by cell, without computing it.

    One tail probability per cell, and only where the counts alone cannot tell: the
    bound is 0 with no successes (above a negative level, then) and never exceeds the
    proportion itself. ``l > level`` exactly when ``I_level(x, n - x + 1) < tail``, the
    bound's own definition.
    """
    from numpy import errstate

    x, n, at = _arrays(successes, trials, level)
    x = _clamped(x, n)
    with errstate(divide="ignore", invalid="ignore"):
        above = (at < 0.0) | (x > 0.0) & (at < 1.0) & ((at <= 0.0) | (x / n > at))
    ask = above & (at > 0.0)
    if ask.any():
        from scipy.special import betainc

        tail = (1.0 - confidence) / 2.0
        xa = x[ask]
        above[ask] = betainc(xa, n[ask] - xa + 1.0, at[ask]) < tail
    return above


def upper_above(successes: ArrayLike, trials: ArrayLike, level: ArrayLike, confidence: float) -> Flags:
    """Whether the exact interval's upper bound is above ``level``, cell by cell, without computing it.

    The bound is 1 with every trial a success and never below the proportion itself;
    elsewhere ``u > level`` exactly when ``I_level(x + 1, n - x) < 1 - tail``.
    """
    from numpy import errstate, where

    x, n, at = _arrays(successes, trials, level)
    x = _clamped(x, n)
    whole = (x >= n) | (at < 0.0)
    with errstate(divide="ignore", invalid="ignore"):
        at_least = x / n >= at
    above = where(whole, at < 1.0, (at < 1.0) & at_least)
    ask = ~whole & (at < 1.0) & ~at_least
    if ask.any():
        from scipy.special import betainc

        xa = x[ask]
        above[ask] = betainc(xa + 1.0, n[ask] - xa, at[ask]) < 1.0 - (1.0 - confidence) / 2.0
    return above


def lower_ends(successes: ArrayLike, trials: ArrayLike, confidence: float) -> Floats:
    """The exact interval's lower bounds: ``I^-1_tail(x, n - x + 1)``, 0 with no successes."""
    import numpy as np

    x, n = _arrays(successes, trials)
    x = _clamped(x, n)
    ends = np.zeros_like(x)
    ask = x > 0.0
    if ask.any():
        from scipy.special import betaincinv

        xa = x[ask]
        ends[ask] = betaincinv(xa, n[ask] - xa + 1.0, (1.0 - confidence) / 2.0)
    return ends


def upper_ends(successes: ArrayLike, trials: ArrayLike, confidence: float) -> Floats:
    """The exact interval's upper bounds: ``I^-1_{1 - tail}(x + 1, n - x)``, 1 with every trial a success."""
    import numpy as np

    x, n = _arrays(successes, trials)
    x = _clamped(x, n)
    ends = np.ones_like(x)
    ask = x < n
    if ask.any():
        from scipy.special import betaincinv

        xa = x[ask]
        ends[ask] = betaincinv(xa + 1.0, n[ask] - xa, 1.0 - (1.0 - confidence) / 2.0)
    return ends


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
    return float(lower_ends(successes, trials, confidence)[0])


def exact_upper(successes: float, trials: float, confidence: float) -> float:
    """The upper bound of :func:`exact_interval` alone."""
    return float(upper_ends(successes, trials, confidence)[0])


def lower_bound_above(successes: float, trials: float, level: float, confidence: float) -> bool:
    """:func:`lower_above` for one cell."""
    return bool(lower_above(successes, trials, level, confidence)[0])


def upper_bound_above(successes: float, trials: float, level: float, confidence: float) -> bool:
    """:func:`upper_above` for one cell."""
    return bool(upper_above(successes, trials, level, confidence)[0])


def difference_beyond(successes_a: ArrayLike, trials_a: ArrayLike, successes_b: ArrayLike, trials_b: ArrayLike,
                      limit: ArrayLike, confidence: float, surely: bool, spread: ArrayLike | None = None,
                      spread_of: str = "b") -> Flags:
    """Whether ``p_a - p_b`` is above ``limit`` for sure (the interval's lower bound) or possibly (its upper one).

    The interval of :func:`difference_interval`, without computing all of it: one side's
    end (``spread_of``, the stable version in a judge: one per segment), and a tail
    probability of the other. With ``d = p_a - p_b`` and the spreads ``s_a``, ``s_b`` of
    each proportion towards the bound asked about (``p_a - l_a`` and ``u_b - p_b`` for the
    lower bound), the bound ``d -/+ sqrt(s_a^2 + s_b^2)`` is beyond the limit exactly when
    the room ``d - limit`` (``limit - d``) leaves ``g = room^2 - s^2`` for the other side's
    spread: ``s_other^2 < g``, which is one bound test of the other proportion at the level
    ``p_other -/+ sqrt(g)``.

    Args:
        successes_a, trials_a, successes_b, trials_b: the counts of ``a`` and ``b``.
        limit: the difference's limit.
        confidence: for example 0.95.
        surely: the lower bound (a breach) rather than the upper one (possibly beyond).
        spread: the ``spread_of`` side's spread on the asked side, when the caller has it (else computed).
        spread_of: ``"b"`` (the end of ``b`` computed, ``a`` tested by its tail) or ``"a"``.
    """
    import numpy as np

    x_a, n_a, x_b, n_b, limit_ = _arrays(successes_a, trials_a, successes_b, trials_b, limit)
    p_a, p_b = x_a / n_a, x_b / n_b
    room = (p_a - p_b) - limit_ if surely else limit_ - (p_a - p_b)
    known = spread_of == "b"
    if spread is None:
        if surely:
            spread = (upper_ends(x_b, n_b, confidence) - p_b if known
                      else p_a - lower_ends(x_a, n_a, confidence))
        else:
            spread = (p_b - lower_ends(x_b, n_b, confidence) if known
                      else upper_ends(x_a, n_a, confidence) - p_a)
    (s,) = _arrays(np.broadcast_to(spread, room.shape))
    if surely:
        open_ = (room > 0.0) & (room * room > s * s)
        result = open_.copy()
    else:
        open_ = ~((room < 0.0) | (room * room < s * s))
        result = ~open_
    if open_.any():
        room_open, s_open = room[open_], s[open_]
        gap = np.sqrt(room_open * room_open - s_open * s_open)
        if surely:  # a's lower end above p_a - gap, or b's upper end below p_b + gap
            result[open_] = (lower_above(x_a[open_], n_a[open_], p_a[open_] - gap, confidence) if known
                             else ~upper_above(x_b[open_], n_b[open_], p_b[open_] + gap, confidence))
        else:  # a's upper end above p_a + gap, or b's lower end below p_b - gap
            result[open_] = (upper_above(x_a[open_], n_a[open_], p_a[open_] + gap, confidence) if known
                             else ~lower_above(x_b[open_], n_b[open_], p_b[open_] - gap, confidence))
    return result


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
    if probability <= 0.0:
        return 0.0
    if probability >= 1.0:
        return 1.0
    from scipy.special import betainc

    return float(betainc(successes, trials - successes + 1.0, probability))


def chi_square_survival(statistic: float, degrees: int) -> float:
    """``P(X >= statistic)`` for ``X`` chi-square with ``degrees`` degrees of freedom: a goodness-of-fit p-value.

    The regularized upper incomplete gamma function ``Q(k/2, x/2)``.
    """
    if statistic <= 0.0:
        return 1.0
    from scipy.special import gammaincc

    return float(gammaincc(degrees / 2.0, statistic / 2.0))
