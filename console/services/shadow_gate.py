"""The shadow promotion gate read from the metrics: the evidence per segment, judged now or over the window.

The evidence is one query per quantity for every segment at once (never one per
segment), each returning one series per (version, segment) like a catalogue
metric, through the :class:`~console.adapters.protocols.MetricsSource` protocol:
an instant evaluation for the gate now, and one range evaluation of the same
queries for the gate's clock. Each query's value *is* its quantity (a count over
the evidence window, a p95), so its history is the quantity's history.

The evidence window is written into the queries literally: the adapter fills
``$window`` from its own setting (``metrics.window``), one for every query it
sends, and the gate's window (``shadow.evidence_window``) is its own.

The shadow's series (exported by its model server) carry ``model``, ``version``
(the shadow's), ``baseline`` (the champion whose answers were compared) and
``segment``; the champion's are its served ``rewind_requests_total`` and
``rewind_request_latency_seconds``. Each query selects one version, so its
answer is read by segment alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from console.adapters.protocols import MetricsSource
from console.domain.errors import ConfigError, MetricsError
from console.domain.metrics import (
    Direction,
    MetricSpec,
    QueryResult,
    RangeResult,
    Unit,
    escape_label_value,
    validate_window,
    window_seconds,
)
from console.domain.shadow import (
    CostEvidence,
    GateClock,
    GateReading,
    SegmentEvidence,
    SegmentVerdict,
    ShadowLimits,
    gate_clock,
    judge_segments,
    unavailable_segment,
    warming_up,
)

MAX_POINTS = 2000
"""The most evaluations a clock reads over its window: a longer window is read at a coarser step."""

WHOLE_SERVER = "*"
"""The segment a per-version quantity (CPU seconds, predictions) is read under."""


@dataclass(frozen=True)
class _Quantity:
    """One query of the evidence: its PromQL, and which field of the evidence it fills."""

    name: str
    title: str
    query: str
    unit: Unit = Unit.SCORE


def _counted(metric: str, selector: str, extra: str, window: str) -> str:
    """The increase of a counter's series matching ``extra`` per (version, segment), 0 where only others moved.

    A series that was never incremented may not exist at all: ``or 0 * (all of the
    counter's series)`` makes such a segment read 0 rather than *no data* when the
    counter moved there at all (a segment where nothing moved stays *no data*).
    """
    everything = f"sum by (version, segment) (increase({metric}{{{selector}}}[{window}]))"
    if not extra:
        return everything
    return f"sum by (version, segment) (increase({metric}{{{selector},{extra}}}[{window}])) or 0 * {everything}"


def _p95(metric: str, selector: str, window: str) -> str:
    return f"histogram_quantile(0.95, sum by (version, segment, le) (rate({metric}_bucket{{{selector}}}[{window}])))"


def _per_server(metric_matcher: str, window: str) -> str:
    """The increase per version of the model's servers, under the segment :data:`WHOLE_SERVER`."""
    return (f'label_replace(sum by (version) (increase({{{metric_matcher},model="$model"}}[{window}])), '
            f'"segment", "{WHOLE_SERVER}", "version", ".*")')


def _quantities(shadow_version: str, champion_version: str, window: str) -> tuple[_Quantity, ...]:
    shadow = f'model="$model",version="{escape_label_value(shadow_version)}",' \
             f'baseline="{escape_label_value(champion_version)}"'
    champion = f'model="$model",version="{escape_label_value(champion_version)}"'
    paired = "rewind_shadow_paired_total"
    return (
        _Quantity("pairs", "pairs compared", _counted("rewind_shadow_agreement_total", shadow, "", window)),
        _Quantity("disagreements", "pairs labelled differently",
                  _counted("rewind_shadow_agreement_total", shadow, 'agree="false"', window)),
        _Quantity("shadow_copies", "copies the shadow received",
                  _counted("rewind_shadow_requests_total", shadow, "", window)),
        _Quantity("shadow_errors", "copies the shadow failed",
                  _counted("rewind_shadow_requests_total", shadow, 'outcome="error"', window)),
        _Quantity("score_delta_p95", "score difference p95", _p95("rewind_shadow_score_delta", shadow, window)),
        _Quantity("shadow_p95", "shadow p95 latency", _p95("rewind_shadow_latency_seconds", shadow, window),
                  Unit.SECONDS),
        _Quantity("champion_ok", "champion answers",
                  _counted("rewind_requests_total", champion, 'outcome="ok"', window)),
        _Quantity("champion_errors", "champion failures",
                  _counted("rewind_requests_total", champion, 'outcome="error"', window)),
        _Quantity("champion_p95", "champion p95 latency", _p95("rewind_request_latency_seconds", champion, window),
                  Unit.SECONDS),
        _Quantity("both_right", "both right",
                  _counted(paired, shadow, 'champion_correct="true",shadow_correct="true"', window)),
        _Quantity("champion_only", "only the champion right",
                  _counted(paired, shadow, 'champion_correct="true",shadow_correct="false"', window)),
        _Quantity("shadow_only", "only the shadow right",
                  _counted(paired, shadow, 'champion_correct="false",shadow_correct="true"', window)),
        _Quantity("both_wrong", "both wrong",
                  _counted(paired, shadow, 'champion_correct="false",shadow_correct="false"', window)),
        _Quantity("cpu_seconds", "CPU seconds per server",
                  _per_server('__name__="rewind_process_cpu_seconds_total"', window), Unit.SECONDS),
        _Quantity("predictions", "predictions per server",
                  _per_server('__name__=~"rewind_requests_total|rewind_shadow_requests_total"', window)),
    )


def shadow_specs(shadow_version: str, champion_version: str, evidence_window: str) -> tuple[MetricSpec, ...]:
    """The gate's queries as metric specs (kind ``value``, no criteria): one per quantity, every segment at once.

    Each spec's ``query`` returns the quantity itself per (version, segment), with
    ``$model`` for the adapter to fill and the evidence window written in.

    Raises:
        ConfigError: when ``evidence_window`` is not a PromQL duration (``shadow.evidence_window``).
    """
    try:
        validate_window(evidence_window)
    except ValueError as exc:
        raise ConfigError(f"shadow.evidence_window: {exc}") from None
    return tuple(MetricSpec(f"shadow.{item.name}", item.title, item.query, item.unit, Direction.HIGHER_IS_WORSE)
                 for item in _quantities(shadow_version, champion_version, evidence_window))


def _canonical(version: str) -> str:
    """A version as the metrics adapter keys it (``03`` is ``3``)."""
    return str(int(version)) if version.isdigit() else version


def _evidence(values: Mapping[str, Mapping[tuple[str, str], float | None]], segments: set[str],
              shadow_version: str, champion_version: str) -> list[SegmentEvidence]:
    """Each segment's evidence from the quantities' values, keyed by (version, segment) as the adapter keys them.

    Every per-segment query selects one version, so its cells are read by segment.
    """
    by_segment: dict[str, dict[str, float]] = {}
    for name, cells in values.items():
        if name in ("shadow.cpu_seconds", "shadow.predictions"):
            continue
        field = name.removeprefix("shadow.")
        for (_, segment), value in cells.items():
            if value is not None:
                by_segment.setdefault(segment, {})[field] = value

    def server(name: str, version: str) -> float | None:
        return values.get(f"shadow.{name}", {}).get((_canonical(version), WHOLE_SERVER))

    cost = CostEvidence(server("cpu_seconds", shadow_version), server("predictions", shadow_version),
                        server("cpu_seconds", champion_version), server("predictions", champion_version))
    evidence = []
    for segment in sorted(segments):
        found = by_segment.get(segment, {})
        copies, errors = found.get("shadow_copies"), found.get("shadow_errors")
        shadow_ok = None if copies is None else max(copies - (errors or 0.0), 0.0)
        evidence.append(SegmentEvidence(
            segment, pairs=found.get("pairs"), disagreements=found.get("disagreements"), shadow_ok=shadow_ok,
            shadow_errors=errors if copies is not None else None, champion_ok=found.get("champion_ok"),
            champion_errors=found.get("champion_errors"), score_delta_p95=found.get("score_delta_p95"),
            shadow_p95=found.get("shadow_p95"), champion_p95=found.get("champion_p95"),
            both_right=found.get("both_right"), champion_only=found.get("champion_only"),
            shadow_only=found.get("shadow_only"), both_wrong=found.get("both_wrong"), cost=cost))
    return evidence


def _segments_of(cells: Mapping[tuple[str, str], object]) -> set[str]:
    return {segment for _, segment in cells if segment != WHOLE_SERVER}


class ShadowGate:
    """Reads a shadow's evidence and judges the promotion gate, now or over its window.

    Args:
        metrics: the metrics source (Prometheus in production, a fake in tests).
        limits: what each segment must be proven within.
        window_s: seconds every segment must pass for the gate to hold (``shadow.window``).
        evidence_window: the PromQL duration each evaluation's counts cover
            (``shadow.evidence_window``, e.g. ``5m``).
        step_s: seconds between the evaluations the clock reads.
        clock: the current time (Unix seconds), for tests.

    Raises:
        ConfigError: when ``evidence_window`` is not a PromQL duration, or ``window_s``
            or ``step_s`` is not positive.
    """

    def __init__(self, metrics: MetricsSource, limits: ShadowLimits, window_s: float, evidence_window: str,
                 step_s: float = 15.0, clock: Callable[[], float] = time.time) -> None:
        if not window_s > 0 or not step_s > 0:
            raise ConfigError(f"shadow.window ({window_s:g} s) and the gate's step ({step_s:g} s) must be above 0")
        shadow_specs("0", "0", evidence_window)  # validates the window once, here
        self.metrics = metrics
        self.limits = limits
        self.window_s = float(window_s)
        self.evidence_window = evidence_window
        self.evidence_window_s = window_seconds(evidence_window)
        self.step_s = float(step_s)
        self.clock = clock
        self._segments: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def specs(self, shadow_version: str, champion_version: str) -> tuple[MetricSpec, ...]:
        """The queries read for one shadow against one champion."""
        return shadow_specs(shadow_version, champion_version, self.evidence_window)

    def now(self, model: str, shadow_version: str, champion_version: str, price: float | None = None,
            at: float | None = None) -> GateReading:
        """Each segment's verdict and evidence at one instant (no clock).

        Args:
            model: the model.
            shadow_version: the version in shadow.
            champion_version: the champion whose answers it is compared with.
            price: the price of a CPU-second; the cost is judged only when given.
            at: the evaluation time; now when ``None``.

        Returns:
            The reading; when the metrics cannot be read, every segment last seen
            HOLDs ``metrics unavailable: …``.
        """
        at = self.clock() if at is None else at
        specs = self.specs(shadow_version, champion_version)
        queries = tuple((spec.name, spec.query) for spec in specs)
        try:
            results = self.metrics.evaluate(specs, model, at)
        except MetricsError as exc:
            return self._unavailable(model, shadow_version, champion_version, at, str(exc), queries, None)
        problems = _problems(results)
        values = {name: result.values for name, result in results.items()}
        segments = set().union(*(_segments_of(cells) for cells in values.values()))
        verdicts = judge_segments(_evidence(values, segments, shadow_version, champion_version), self.limits, price,
                                  problems)
        return self._reading(model, shadow_version, champion_version, at, verdicts, None, queries)

    def copies_lately(self, model: str, shadow_version: str, champion_version: str) -> float | None:
        """Copies the shadow received from the champion in the last 20 seconds, every segment (to verify a start).

        ``None`` when the metrics cannot tell (unreachable, or no series yet).
        """
        recent = ShadowGate(self.metrics, self.limits, self.window_s, "20s", self.step_s, self.clock)
        reading = recent.now(model, shadow_version, champion_version)
        copies = [item.evidence.copies for item in reading.segments if item.evidence is not None]
        return sum(c for c in copies if c) if copies else None

    def over_window(self, model: str, shadow_version: str, champion_version: str, started_at: float, now: float,
                    price: float | None = None, mirrored_share: float = 1.0) -> GateReading:
        """Each segment's verdict now, and the clock: how long every segment has passed, from one range evaluation.

        ``mirrored_share`` is the share of the champion's answers the mirror copies (its
        percent / 100): coverage is judged against that share of ``min_coverage``.

        The same queries as :meth:`now` are evaluated every ``step_s`` over the last
        ``window_s`` (or since ``started_at``, when the shadow is younger), the last
        evaluation at ``now``; each evaluation is judged as :meth:`now` would.

        Returns:
            The reading at ``now`` with its clock; when the metrics cannot be read,
            every segment last seen HOLDs ``metrics unavailable: …`` and the clock is at 0.
        """
        limits = self.limits if mirrored_share >= 1.0 else \
            replace(self.limits, min_coverage=self.limits.min_coverage * mirrored_share)
        step = max(self.step_s, math.ceil(self.window_s / MAX_POINTS))
        span = now - started_at
        points = math.ceil(self.window_s / step - 1e-9) if span >= self.window_s else max(0, math.floor(span / step))
        start = now - points * step
        specs = self.specs(shadow_version, champion_version)
        queries = tuple((spec.name, spec.query) for spec in specs)
        try:
            history = self.metrics.history(specs, model, start, now, step)
        except MetricsError as exc:
            return self._unavailable(model, shadow_version, champion_version, now, str(exc), queries,
                                     GateClock(0.0, self.window_s))
        problems = _problems(history)
        # values[k][quantity][(version, segment)]: each quantity's cells at the k-th evaluation
        values: list[dict[str, dict[tuple[str, str], float | None]]] = [{} for _ in range(points + 1)]
        segments: set[str] = set()
        for name, result in history.items():
            segments |= _segments_of(result.series)
            for key, series in result.series.items():
                for t, value in series:
                    index = round((t - start) / step)
                    if 0 <= index <= points:
                        values[index].setdefault(name, {})[key] = value
        evaluations = []
        for index, at_index in enumerate(values):
            at = start + index * step
            judged = judge_segments(_evidence(at_index, segments, shadow_version, champion_version), limits,
                                    price, problems)
            evaluations.append((at, warming_up(judged, at - started_at, self.evidence_window_s,
                                               self.evidence_window)))
        clock = gate_clock(((t, {item.segment: item.verdict for item in judged}) for t, judged in evaluations),
                           started_at, now, self.window_s)
        return self._reading(model, shadow_version, champion_version, now, evaluations[-1][1], clock, queries)

    def _reading(self, model: str, shadow_version: str, champion_version: str, at: float,
                 verdicts: tuple[SegmentVerdict, ...], clock: GateClock | None,
                 queries: tuple[tuple[str, str], ...]) -> GateReading:
        if verdicts:
            self._segments[(model, shadow_version, champion_version)] = tuple(item.segment for item in verdicts)
        return GateReading(model, shadow_version, champion_version, at, verdicts, clock, queries=queries)

    def _unavailable(self, model: str, shadow_version: str, champion_version: str, at: float, reason: str,
                     queries: tuple[tuple[str, str], ...], clock: GateClock | None) -> GateReading:
        """Every segment last seen HOLDs: an absence of evidence is never a pass."""
        segments = self._segments.get((model, shadow_version, champion_version), ())
        return GateReading(model, shadow_version, champion_version, at,
                           tuple(unavailable_segment(segment, reason) for segment in segments), clock,
                           error=reason, queries=queries)


def _problems(results: Mapping[str, QueryResult | RangeResult]) -> tuple[str, ...]:
    """The queries the metrics source rejected, each named with its reason."""
    return tuple(f"{name}: {result.error}" for name, result in sorted(results.items()) if result.error)

