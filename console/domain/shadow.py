"""The shadow promotion gate: a shadow version judged against the champion, per segment, on its evidence.

A promotion gate is not a breach detector. A breach is called when the evidence
shows a version is *outside* its limits; a segment passes this gate only when the
evidence *proves* the shadow is *within* them. Too little evidence is HOLD, never
PASS: a disagreement rate is judged on the upper end of its exact interval, so a
segment with too few pairs cannot pass whatever it shows.

Per segment, over the evidence window, each criterion gives PASS, HOLD or FAIL
with a reason: coverage (the share of the champion's answers the shadow received),
disagreement, the score difference's p95, errors against the champion's, latency
against the champion's, McNemar's exact test on the labelled pairs, and the cost
per 1k predictions when a price is configured. A segment FAILs when any criterion
fails, HOLDs when any holds, and passes otherwise.

The gate over time: the shadow is healthy for a window when every segment has
passed at every evaluation of the last ``window`` seconds (:func:`gate_clock`).

Counts come from Prometheus' ``increase`` and are fractional: the statistics use
them as they are, and everything meant for a human shows whole numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum

from console.domain.metrics import Unit, format_value
from console.domain.stats import binomial_tail_at_least, exact_lower, exact_upper, trials_to_bound


class GateVerdict(StrEnum):
    """The outcome of one criterion, one segment or the whole gate."""

    PASS = "pass"
    HOLD = "hold"
    FAIL = "fail"


GATE_SYMBOL = {GateVerdict.PASS: "✓", GateVerdict.HOLD: "~", GateVerdict.FAIL: "✗"}
"""A symbol per verdict, so a verdict never relies on colour alone. HOLD's is ASCII: an ellipsis is of
ambiguous width, and terminals that draw it two cells wide shift the rest of the row."""


def worst_verdict(verdicts: Iterable[GateVerdict]) -> GateVerdict:
    """FAIL if any fails, else HOLD if any holds, else PASS; HOLD when there is nothing to judge."""
    seen = set(verdicts)
    if not seen:
        return GateVerdict.HOLD
    for verdict in (GateVerdict.FAIL, GateVerdict.HOLD):
        if verdict in seen:
            return verdict
    return GateVerdict.PASS


@dataclass(frozen=True)
class ShadowLimits:
    """What a shadow's segment must be proven within to pass the gate.

    Attributes:
        max_disagreement: the largest share of pairs labelled differently (at the
            serving threshold); passes when the exact interval's upper end is at most this.
        max_score_delta_p95: the largest p95 of |shadow score - champion score|.
        max_error_delta: how far the shadow's error rate may exceed the champion's
            (absolute: 0.01 is one percentage point).
        latency_ratio: the shadow's p95 may be at most the champion's p95 times this ...
        latency_slack_s: ... plus this many seconds.
        min_coverage: the least share of the champion's answers the shadow must
            have received (copies shed or not mirrored make a sample that may not
            represent the traffic).
        confidence: the confidence of the exact intervals (0.95: 95 % two-sided).
        min_pairs: the least pairs (or predictions) before a point estimate (a p95,
            a cost) is trusted.
        mcnemar_alpha: the significance at which McNemar's test calls the shadow worse.
        max_accuracy_drop: the largest accuracy drop on labelled pairs tolerated even when significant.
        max_cost_ratio: the shadow's cost per 1k predictions may be at most the
            champion's times this (judged only when a price is configured).
    """

    max_disagreement: float = 0.05
    max_score_delta_p95: float = 0.10
    max_error_delta: float = 0.01
    latency_ratio: float = 1.2
    latency_slack_s: float = 0.02
    min_coverage: float = 0.95
    confidence: float = 0.95
    min_pairs: int = 30
    mcnemar_alpha: float = 0.05
    max_cost_ratio: float = 1.5
    max_accuracy_drop: float = 0.02

    def __post_init__(self) -> None:
        for name in ("max_disagreement", "max_error_delta", "min_coverage", "mcnemar_alpha", "max_accuracy_drop"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)!r}")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be at least 0.5 and below 1, not {self.confidence!r}")
        for name in ("max_score_delta_p95", "latency_ratio", "max_cost_ratio"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be above 0, not {getattr(self, name)!r}")
        if self.latency_slack_s < 0.0 or self.min_pairs < 1:
            raise ValueError("latency_slack_s must be 0 or more, and min_pairs at least 1")

    def latency_limit(self, champion_p95: float) -> float:
        """The largest p95 the shadow may have (seconds), given the champion's."""
        return champion_p95 * self.latency_ratio + self.latency_slack_s


def _known(value: float | None) -> float | None:
    """``None`` for no data (absent or NaN), else the value."""
    return None if value is None or value != value else value


def _no_nan(evidence: CostEvidence | SegmentEvidence) -> None:
    """Read every NaN figure of a frozen evidence dataclass as ``None`` (no data)."""
    for item in fields(evidence):
        value = getattr(evidence, item.name)
        if isinstance(value, float) and value != value:
            object.__setattr__(evidence, item.name, None)


def _whole(count: float) -> str:
    """A count as people count: a whole number (``increase`` extrapolates to fractions)."""
    return str(round(count))


@dataclass(frozen=True)
class CostEvidence:
    """The CPU seconds and predictions of the shadow's and the champion's servers over the evidence window.

    Per version, not per segment: a server's CPU is not split by segment. The
    shadow's predictions are its mirrored copies plus whatever it serves; its CPU
    covers both. ``None`` is no data.
    """

    shadow_cpu_seconds: float | None = None
    shadow_predictions: float | None = None
    champion_cpu_seconds: float | None = None
    champion_predictions: float | None = None

    def __post_init__(self) -> None:
        _no_nan(self)


def cost_per_thousand(cpu_seconds: float | None, predictions: float | None, price: float = 1.0) -> float | None:
    """The cost of 1,000 predictions: CPU seconds per prediction x 1,000 x the price of a CPU-second.

    Over one window, CPU seconds over predictions is the rate of one over the rate
    of the other. With the default price of 1, CPU-seconds per 1k predictions.

    Returns:
        The cost, or ``None`` when either figure is missing or there were no predictions.
    """
    cpu_seconds, predictions = _known(cpu_seconds), _known(predictions)
    if cpu_seconds is None or predictions is None or predictions <= 0.0:
        return None
    return cpu_seconds / predictions * 1000.0 * price


@dataclass(frozen=True)
class SegmentEvidence:
    """One segment's numbers over the evidence window; ``None`` (or NaN, read as ``None``) is no data.

    Attributes:
        segment: the traffic segment.
        pairs: shadow and champion answers compared.
        disagreements: pairs labelled differently at the serving threshold.
        shadow_ok: mirrored copies the shadow predicted.
        shadow_errors: mirrored copies the shadow failed to predict.
        champion_ok: requests the champion answered.
        champion_errors: requests the champion failed.
        score_delta_p95: the p95 of |shadow score - champion score|.
        shadow_p95: the shadow's own p95 time to predict (seconds).
        champion_p95: the champion's p95 request latency (seconds).
        both_right, champion_only, shadow_only, both_wrong: the labelled pairs'
            2x2 table (``champion_only``: the champion right and the shadow wrong).
        cost: the servers' CPU and predictions, for the cost per 1k predictions.
    """

    segment: str
    pairs: float | None = None
    disagreements: float | None = None
    shadow_ok: float | None = None
    shadow_errors: float | None = None
    champion_ok: float | None = None
    champion_errors: float | None = None
    score_delta_p95: float | None = None
    shadow_p95: float | None = None
    champion_p95: float | None = None
    both_right: float | None = None
    champion_only: float | None = None
    shadow_only: float | None = None
    both_wrong: float | None = None
    cost: CostEvidence | None = None

    def __post_init__(self) -> None:
        _no_nan(self)

    @property
    def copies(self) -> float | None:
        """Mirrored copies the shadow received (predicted or failed), ``None`` when neither was counted."""
        if self.shadow_ok is None and self.shadow_errors is None:
            return None
        return (self.shadow_ok or 0.0) + (self.shadow_errors or 0.0)

    @property
    def champion_requests(self) -> float | None:
        """Requests the champion answered or failed, ``None`` when neither was counted."""
        if self.champion_ok is None and self.champion_errors is None:
            return None
        return (self.champion_ok or 0.0) + (self.champion_errors or 0.0)

    @property
    def coverage(self) -> float | None:
        """Copies the shadow received over requests the champion answered ok (``None``: no answers)."""
        if self.champion_ok is None or self.champion_ok <= 0.0:
            return None
        return (self.copies or 0.0) / self.champion_ok

    @property
    def disagreement(self) -> float | None:
        """The share of pairs labelled differently (``None``: no pairs)."""
        if self.pairs is None or self.pairs <= 0.0:
            return None
        return min(max(self.disagreements or 0.0, 0.0), self.pairs) / self.pairs


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's outcome in one segment.

    Attributes:
        criterion: ``coverage``, ``disagreement``, ``score_delta``, ``errors``,
            ``latency``, ``mcnemar``, ``cost``, ``traffic`` or ``metrics``.
        verdict: PASS, HOLD or FAIL; ``None`` for a figure shown but not judged
            (McNemar without labelled pairs, cost without a price).
        reason: the values and the limit, in words.
    """

    criterion: str
    verdict: GateVerdict | None
    reason: str


@dataclass(frozen=True)
class SegmentVerdict:
    """One segment's verdict, each criterion's outcome, and the evidence they were judged on."""

    segment: str
    verdict: GateVerdict
    reason: str
    criteria: tuple[CriterionResult, ...]
    evidence: SegmentEvidence

    def criterion(self, name: str) -> CriterionResult | None:
        """The outcome of one criterion, ``None`` when it was not reached."""
        return next((item for item in self.criteria if item.criterion == name), None)


def _few(what: str, count: float, needed: int) -> str:
    """``too few pairs (40 of ≥ 72 needed)``, the count shown whole yet never as many as needed."""
    return f"too few {what} ({min(round(count), needed - 1)} of ≥ {needed} needed)"


def _coverage(evidence: SegmentEvidence, limits: ShadowLimits) -> CriterionResult:
    coverage = evidence.coverage
    answered = _whole(evidence.champion_ok or 0.0)
    if evidence.copies is None or coverage is None:
        return CriterionResult("coverage", GateVerdict.HOLD,
                               f"no data: no shadow copies counted ({answered} answered by the champion)")
    counted = f"{_whole(evidence.copies)} copies of {answered} answered"
    if coverage < limits.min_coverage:
        return CriterionResult("coverage", GateVerdict.HOLD,
                               f"copies shed or not mirrored: coverage {coverage:.2f} < {limits.min_coverage:g} "
                               f"({counted})")
    return CriterionResult("coverage", GateVerdict.PASS, f"coverage {coverage:.2f} ({counted})")


def _share(value: float) -> str:
    return format_value(value, Unit.RATIO)


def _proven_under(criterion: str, events: float, trials: float, level: float, confidence: float, seen: str,
                  allowed: str, counted: str) -> CriterionResult:
    """A proportion judged as a gate judges: PASS when its exact upper end is at most ``level``, FAIL when its
    lower end is above it, HOLD otherwise, saying so when too few ``counted`` could ever prove it."""
    low = exact_lower(events, trials, confidence)
    if low > level:
        return CriterionResult(criterion, GateVerdict.FAIL, f"{seen}, at least {_share(low)} > {allowed}")
    high = exact_upper(events, trials, confidence)
    if high <= level:
        return CriterionResult(criterion, GateVerdict.PASS, f"{seen}, bound {_share(high)} ≤ {allowed}")
    needed = trials_to_bound(level, confidence)
    if trials < needed:
        return CriterionResult(criterion, GateVerdict.HOLD, f"{_few(counted, trials, needed)}; {seen}")
    return CriterionResult(criterion, GateVerdict.HOLD, f"{seen}, bound {_share(high)} > {allowed}: not proven yet")


def _disagreement(evidence: SegmentEvidence, limits: ShadowLimits) -> CriterionResult:
    pairs, rate, limit = evidence.pairs, evidence.disagreement, limits.max_disagreement
    if pairs is None or rate is None:
        return CriterionResult("disagreement", GateVerdict.HOLD, "no data: no pairs compared")
    flipped = rate * pairs
    seen = f"{_share(rate)} of pairs ({_whole(flipped)} of {_whole(pairs)})"
    return _proven_under("disagreement", flipped, pairs, limit, limits.confidence, seen, _share(limit), "pairs")


def _score_delta(evidence: SegmentEvidence, limits: ShadowLimits) -> CriterionResult:
    p95, limit = evidence.score_delta_p95, limits.max_score_delta_p95
    if p95 is None:
        return CriterionResult("score_delta", GateVerdict.HOLD, "no data: no score difference p95")
    if (evidence.pairs or 0.0) < limits.min_pairs:
        return CriterionResult("score_delta", GateVerdict.HOLD,
                               f"{_few('pairs for a p95', evidence.pairs or 0.0, limits.min_pairs)}")
    if p95 > limit:
        return CriterionResult("score_delta", GateVerdict.FAIL, f"score difference p95 {p95:.3f} > {limit:.3f}")
    return CriterionResult("score_delta", GateVerdict.PASS, f"score difference p95 {p95:.3f} ≤ {limit:.3f}")


def _errors(evidence: SegmentEvidence, limits: ShadowLimits) -> CriterionResult:
    copies, champion = evidence.copies, evidence.champion_requests
    if copies is None or copies <= 0.0:
        return CriterionResult("errors", GateVerdict.HOLD, "no data: no shadow predictions")
    if champion is None or champion <= 0.0:
        return CriterionResult("errors", GateVerdict.HOLD, "no data: no champion requests")
    failed = min(max(evidence.shadow_errors or 0.0, 0.0), copies)
    champion_rate = min(max(evidence.champion_errors or 0.0, 0.0), champion) / champion
    level = champion_rate + limits.max_error_delta
    seen = f"{_share(failed / copies)} of copies ({_whole(failed)} of {_whole(copies)})"
    allowed = f"champion {_share(champion_rate)} + {limits.max_error_delta * 100:g} pt"
    if level >= 1.0:
        return CriterionResult("errors", GateVerdict.PASS, f"{seen} ≤ {allowed}")
    return _proven_under("errors", failed, copies, level, limits.confidence, seen, allowed, "predictions")


def _latency(evidence: SegmentEvidence, limits: ShadowLimits) -> CriterionResult:
    shadow, champion = evidence.shadow_p95, evidence.champion_p95
    if shadow is None or champion is None:
        missing = "the shadow's" if shadow is None else "the champion's"
        return CriterionResult("latency", GateVerdict.HOLD, f"no data: no p95 latency for {missing} predictions")
    fewest = min(evidence.shadow_ok or 0.0, evidence.champion_ok or 0.0)
    if fewest < limits.min_pairs:
        return CriterionResult("latency", GateVerdict.HOLD, _few("predictions for a p95", fewest, limits.min_pairs))
    limit = limits.latency_limit(champion)
    rule = (f"champion {format_value(champion, Unit.SECONDS)} × {limits.latency_ratio:g} + "
            f"{format_value(limits.latency_slack_s, Unit.SECONDS)}")
    shown = f"p95 {format_value(shadow, Unit.SECONDS)}"
    if shadow > limit:
        return CriterionResult("latency", GateVerdict.FAIL,
                               f"{shown} > {format_value(limit, Unit.SECONDS)} ({rule})")
    return CriterionResult("latency", GateVerdict.PASS, f"{shown} ≤ {format_value(limit, Unit.SECONDS)} ({rule})")


def mcnemar_p(champion_only: float, shadow_only: float) -> float:
    """McNemar's exact test, one-sided: the chance of at least ``champion_only`` flips against the shadow.

    Under the hypothesis that the two are equally accurate, each discordant pair
    (one right, the other wrong) is as likely to go either way: the count against
    the shadow is Binomial(``champion_only + shadow_only``, 1/2).

    Args:
        champion_only: labelled pairs the champion got right and the shadow wrong.
        shadow_only: labelled pairs the shadow got right and the champion wrong.

    Returns:
        The one-sided p-value (1 when there are no discordant pairs).
    """
    against, favour = max(champion_only, 0.0), max(shadow_only, 0.0)
    return binomial_tail_at_least(against, against + favour, 0.5)


def _mcnemar(evidence: SegmentEvidence, limits: ShadowLimits) -> CriterionResult:
    cells = (evidence.both_right, evidence.champion_only, evidence.shadow_only, evidence.both_wrong)
    against, favour = evidence.champion_only or 0.0, evidence.shadow_only or 0.0
    flips = f"flips: {_whole(favour)} to the shadow's favour, {_whole(against)} against"
    if sum(cell or 0.0 for cell in cells) <= 0.0:
        return CriterionResult("mcnemar", None, f"{flips} (no labelled pairs: not judged)")
    p = mcnemar_p(against, favour)
    labelled = sum(cell or 0.0 for cell in cells)
    drop = (against - favour) / labelled
    # Significance alone is not enough: against a champion that is right more often, any different model
    # loses more flips than it wins, and enough pairs make a drop of 0.1 pt "significant". The shadow fails
    # when it is surely worse (McNemar) by more than the allowed accuracy drop.
    shown = f"{flips}, accuracy {drop * -100:+.1f} pt (p = {p:.2g})"
    if p < limits.mcnemar_alpha and drop > limits.max_accuracy_drop:
        return CriterionResult("mcnemar", GateVerdict.FAIL,
                               f"{shown}: surely worse, by more than {limits.max_accuracy_drop * 100:g} pt")
    return CriterionResult("mcnemar", GateVerdict.PASS,
                           f"{shown}: not worse by more than {limits.max_accuracy_drop * 100:g} pt")


def _cost(evidence: SegmentEvidence, limits: ShadowLimits, price: float | None) -> CriterionResult | None:
    cost = evidence.cost
    if cost is None:
        return None
    shadow = cost_per_thousand(cost.shadow_cpu_seconds, cost.shadow_predictions, price or 1.0)
    champion = cost_per_thousand(cost.champion_cpu_seconds, cost.champion_predictions, price or 1.0)
    if price is None:
        if shadow is None or champion is None:
            return CriterionResult("cost", None, "CPU per 1k predictions: no data (not judged: no price configured)")
        return CriterionResult("cost", None, f"CPU {shadow:.3g} s per 1k predictions against the champion's "
                                             f"{champion:.3g} s (not judged: no price configured)")
    if shadow is None or champion is None or champion <= 0.0:
        return CriterionResult("cost", GateVerdict.HOLD, "no data: CPU seconds or predictions missing")
    predictions = cost.shadow_predictions or 0.0
    if predictions < limits.min_pairs:
        return CriterionResult("cost", GateVerdict.HOLD,
                               _few("predictions for a cost", predictions, limits.min_pairs))
    shown = f"cost {shadow:.3g} per 1k predictions, {shadow / champion:.2f} × the champion's {champion:.3g}"
    if shadow > champion * limits.max_cost_ratio:
        return CriterionResult("cost", GateVerdict.FAIL, f"{shown} > {limits.max_cost_ratio:g} ×")
    return CriterionResult("cost", GateVerdict.PASS, f"{shown} ≤ {limits.max_cost_ratio:g} ×")


def _verdict(segment: str, criteria: Sequence[CriterionResult], evidence: SegmentEvidence) -> SegmentVerdict:
    verdict = worst_verdict(item.verdict for item in criteria if item.verdict is not None)
    if verdict is GateVerdict.PASS:
        reason = "every criterion proven within its limit"
    else:
        ordered = [item for wanted in (GateVerdict.FAIL, GateVerdict.HOLD)
                   for item in criteria if item.verdict is wanted]
        reason = "; ".join(f"{item.criterion}: {item.reason}" for item in ordered)
    return SegmentVerdict(segment, verdict, reason, tuple(criteria), evidence)


def judge_segment(evidence: SegmentEvidence, limits: ShadowLimits, price: float | None = None,
                  problems: Sequence[str] = ()) -> SegmentVerdict:
    """Judge one segment's evidence against the limits.

    Args:
        evidence: the segment's numbers over the evidence window.
        limits: what the shadow must be proven within.
        price: the price of a CPU-second; the cost is judged only when it is given.
        problems: why some of the evidence could not be read (a query the metrics
            source rejected): each makes the segment HOLD, whatever the rest shows.

    Returns:
        The segment's verdict: FAIL if any criterion fails, else HOLD if any
        holds, else PASS; HOLD "no champion traffic" when the champion served nothing.
    """
    requests = evidence.champion_requests
    if requests is None or requests <= 0.0:
        criteria: list[CriterionResult] = [CriterionResult("traffic", GateVerdict.HOLD, "no champion traffic")]
    else:
        criteria = [_coverage(evidence, limits), _disagreement(evidence, limits), _score_delta(evidence, limits),
                    _errors(evidence, limits), _latency(evidence, limits), _mcnemar(evidence, limits)]
        cost = _cost(evidence, limits, price)
        if cost is not None:
            criteria.append(cost)
    if problems:
        criteria.insert(0, CriterionResult("metrics", GateVerdict.HOLD,
                                           "metrics unavailable: " + "; ".join(problems)))
    return _verdict(evidence.segment, criteria, evidence)


def warming_up(verdicts: Sequence[SegmentVerdict], seconds_since_start: float, evidence_window_s: float,
               window: str) -> tuple[SegmentVerdict, ...]:
    """Segments judged before the evidence window is full since the shadow started: a PASS is a HOLD then.

    The window's counts then include time before any copy was made (the champion's
    requests count, the shadow's copies do not), so coverage and the bounds are not
    yet the shadow's own: nothing passes until the window holds only shadowed time.
    """
    if seconds_since_start >= evidence_window_s:
        return tuple(verdicts)
    reason = (f"warming up: the evidence window ({window}) is not yet full since the shadow started "
              f"({format_clock(max(seconds_since_start, 0.0))} of {format_clock(evidence_window_s)})")
    warming = CriterionResult("window", GateVerdict.HOLD, reason)
    # What the window cannot show yet (coverage, bounds still loose) goes unsaid; a proven failure is said.
    return tuple(_verdict(v.segment, (warming, *(c for c in v.criteria if c.verdict is GateVerdict.FAIL)),
                          v.evidence) if v.evidence is not None else v for v in verdicts)


def unavailable_segment(segment: str, reason: str) -> SegmentVerdict:
    """A segment whose evidence could not be read at all: HOLD ``metrics unavailable: <reason>``."""
    criteria = (CriterionResult("metrics", GateVerdict.HOLD, f"metrics unavailable: {reason}"),)
    return _verdict(segment, criteria, SegmentEvidence(segment))


def format_clock(seconds: float) -> str:
    """``6:40`` (minutes and seconds) or ``25:06:40`` from an hour; whole seconds, rounded down."""
    whole = max(0, math.floor(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class GateClock:
    """How long every segment has passed, against the window it must pass for.

    Attributes:
        held_for: seconds every segment has passed continuously up to now.
        window: seconds they must have passed for the gate to hold.
    """

    held_for: float
    window: float

    @property
    def holds(self) -> bool:
        """Whether every segment has passed for the whole window."""
        return self.held_for >= self.window

    @property
    def text(self) -> str:
        """``6:40 / 10:00``."""
        return f"{format_clock(self.held_for)} / {format_clock(self.window)}"


def gate_clock(evaluations: Iterable[tuple[float, Mapping[str, GateVerdict]]], started_at: float, now: float,
               window: float) -> GateClock:
    """How long every segment has passed continuously up to ``now``.

    An evaluation counts as passed when it judged every segment of the latest
    evaluation and each of them (and everything else it judged) passed; one with
    no segments at all never passes. The run of passed evaluations that ends with
    the latest one starts at its first evaluation's time.

    Args:
        evaluations: ``(evaluation time, {segment: verdict})``, in any order;
            those after ``now`` are ignored.
        started_at: when the shadow started: nothing passed before it.
        now: the time the clock is read.
        window: the seconds the gate must hold for.

    Returns:
        The clock: ``held_for`` is 0 when the latest evaluation is not all PASS,
        and never more than ``now - started_at``.
    """
    ordered = sorted((item for item in evaluations if item[0] <= now), key=lambda item: item[0])
    if not ordered:
        return GateClock(0.0, window)
    segments = set(ordered[-1][1])
    run_start: float | None = None
    for at, verdicts in reversed(ordered):
        passed = (bool(segments) and segments <= set(verdicts)
                  and all(verdict is GateVerdict.PASS for verdict in verdicts.values()))
        if not passed:
            break
        run_start = at
    if run_start is None:
        return GateClock(0.0, window)
    return GateClock(max(0.0, min(now - run_start, now - started_at)), window)


@dataclass(frozen=True)
class GateReading:
    """The gate read once: each segment's verdict and evidence, and the clock when read over the window.

    Attributes:
        model: the model.
        shadow_version: the version in shadow.
        champion_version: the version whose answers it was compared with.
        evaluated_at: the evaluation time (Unix seconds).
        segments: each segment's verdict, by segment name.
        clock: how long every segment has passed (``None``: read at one instant only).
        error: why the evidence could not be read at all, or ``None``.
        queries: ``(quantity, PromQL)`` of every query read, for the journal and explanations.
    """

    model: str
    shadow_version: str
    champion_version: str
    evaluated_at: float
    segments: tuple[SegmentVerdict, ...]
    clock: GateClock | None = None
    error: str | None = None
    queries: tuple[tuple[str, str], ...] = ()

    @property
    def verdict(self) -> GateVerdict:
        """FAIL if a segment fails, else HOLD if one holds (or none was judged), else PASS."""
        return worst_verdict(segment.verdict for segment in self.segments)

    @property
    def holds(self) -> bool:
        """Whether the gate holds: every segment passes now and has passed for the whole window."""
        return self.verdict is GateVerdict.PASS and self.clock is not None and self.clock.holds

    def segment(self, name: str) -> SegmentVerdict | None:
        """One segment's verdict, ``None`` when it was not judged."""
        return next((item for item in self.segments if item.segment == name), None)

    @property
    def summary(self) -> str:
        """One line: whether the gate holds, and which segments hold or fail and why.

        ``FAIL in eu: disagreement: …; HOLD in us: coverage: …; held 0:00 / 10:00``.
        """
        clock = self.clock
        if not self.segments:
            lead = f"HOLD: metrics unavailable: {self.error}" if self.error else "HOLD: no segment has evidence yet"
        elif self.verdict is GateVerdict.PASS:
            count = f"every segment passes ({len(self.segments)})"
            if clock is None:
                return count
            if clock.holds:
                return f"gate held: every segment passed for {format_clock(clock.window)} ({len(self.segments)})"
            lead = count
        else:
            # Segments that say the same are said once: "HOLD in eu-ios, us-web: …", "HOLD in every segment: …".
            said: dict[tuple[GateVerdict, str], list[str]] = {}
            for wanted in (GateVerdict.FAIL, GateVerdict.HOLD):
                for segment in self.segments:
                    if segment.verdict is wanted:
                        said.setdefault((wanted, segment.reason), []).append(segment.segment)
            lead = "; ".join(
                f"{verdict.name} in {'every segment' if len(names) == len(self.segments) > 1 else ', '.join(names)}: "
                f"{reason}" for (verdict, reason), names in said.items())
        return lead if clock is None else f"{lead}; held {clock.text}"


def judge_segments(evidence: Iterable[SegmentEvidence], limits: ShadowLimits, price: float | None = None,
                   problems: Sequence[str] = ()) -> tuple[SegmentVerdict, ...]:
    """:func:`judge_segment` for every segment, in segment order."""
    return tuple(judge_segment(item, limits, price, problems)
                 for item in sorted(evidence, key=lambda item: item.segment))
