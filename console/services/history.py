"""An incident's metric history, read from the metrics source and journaled for the post-mortem.

When an incident is closed, and when it is exported while still open, each
catalogue metric is read with ONE range query from the impact start minus a
margin to the end (the close, or now) plus the margin, capped at now, at a step
that keeps each series to at most ``history_points`` points. Each metric's
answer becomes one ``metrics.history`` event (see :mod:`console.domain.journal`
for the payload), recorded through :class:`JournalService` so it is redacted
and hash-chained like every other event. The exports then draw from the
journal alone: a post-mortem exported after Prometheus' retention shows the
same charts and still verifies.

Compact payloads: values rounded to 6 significant digits, timestamps implied by
``start + i * step``, ``null`` for a gap or NaN (*no data*); an infinite value
(a quantile beyond the largest bucket) is written ``"+Inf"`` by
:func:`~console.domain.journal.prepare_payload`, and read back as infinity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from console.adapters.protocols import MetricsSource
from console.domain.incident import incident_facts
from console.domain.journal import Event, EventKind, IncidentHead, verify_chain
from console.domain.metrics import MetricSpec, RangeResult, criterion_document
from console.services.journal import JournalService

SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class HistoryWindow:
    """The span and step of one capture (Unix seconds)."""

    start: float
    end: float
    step: float

    @property
    def points(self) -> int:
        """How many evaluation times the span holds."""
        return int((self.end - self.start) // self.step) + 1


def history_window(impact_start: float, end: float, now: float, margin_s: float, max_points: int) -> HistoryWindow:
    """From ``impact_start - margin`` to ``end + margin`` (capped at ``now``), at most ``max_points`` points.

    The step is a whole number of seconds (at least 1), and the start is a
    multiple of it, so the same incident read twice lands on the same times.
    """
    max_points = max(2, int(max_points))
    last = min(now, end + margin_s)
    first = min(impact_start - margin_s, last - 1.0)
    step = max(1, math.ceil((last - first) / (max_points - 1)))
    while True:
        aligned = math.floor(first / step) * step
        if int((last - aligned) // step) + 1 <= max_points:
            return HistoryWindow(float(aligned), float(last), float(step))
        step += 1


def _round(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    if math.isinf(value) or value == 0:
        return value
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def history_payload(spec: MetricSpec, result: RangeResult, stable_version: str | None,
                    traffic_metric: str | None = None) -> dict[str, object]:
    """The ``metrics.history`` payload of one metric's range answer (before :func:`prepare_payload`).

    ``traffic_metric`` names the catalogue's traffic metric, so a chart can weigh the
    versions' values by their traffic (what the segment's users got, all versions together).
    """
    count = int(round((result.end - result.start) / result.step)) + 1 if result.step > 0 else 0
    def slot(at: float) -> int | None:
        index = int(round((at - result.start) / result.step))
        return index if 0 <= index < count else None

    series = []
    for (version, segment), points in sorted(result.series.items()):
        values: list[float | None] = [None] * count
        for at, value in points:
            if (index := slot(at)) is not None:
                values[index] = _round(value)
        item: dict[str, object] = {"version": version, "segment": segment, "values": values}
        counted = result.counts.get((version, segment))
        if counted is not None:  # a ratio's counts, so the post-mortem judges each point as a refresh does
            numerators: list[float | None] = [None] * count
            denominators: list[float | None] = [None] * count
            for at, num, den in counted:
                if (index := slot(at)) is not None:
                    numerators[index], denominators[index] = round(num, 3), round(den, 3)
            item["numerators"], item["denominators"] = numerators, denominators
        series.append(item)
    payload: dict[str, object] = {
        "metric": spec.name,
        "title": spec.title,
        "unit": str(spec.unit),
        "direction": str(spec.direction),
        "kind": str(spec.kind),
        "promql": result.promql,
        "criterion": criterion_document(spec),
        "stable_version": stable_version,
        "start": result.start,
        "end": result.end,
        "step": result.step,
        "series": series,
    }
    if traffic_metric:
        payload["traffic_metric"] = traffic_metric
    if result.error:
        payload["error"] = result.error
    return payload


def latest_stable_version(events: Sequence[Event]) -> str | None:
    """The ``stable_version`` of the incident's latest ``check.evaluated`` event that names one."""
    for event in reversed(events):
        if event.kind is EventKind.CHECK_EVALUATED and event.payload.get("stable_version"):
            return str(event.payload["stable_version"])
    return None


def latest_history(events: Sequence[Event]) -> dict[str, Event]:
    """The newest ``metrics.history`` event per metric; a failed capture only where no good one exists."""
    good: dict[str, Event] = {}
    failed: dict[str, Event] = {}
    for event in events:
        if event.kind is not EventKind.METRICS_HISTORY:
            continue
        metric = str(event.payload.get("metric", "?"))
        (failed if event.payload.get("error") else good)[metric] = event
    return {**{m: e for m, e in failed.items() if m not in good}, **good}


def has_history(events: Sequence[Event]) -> bool:
    """Whether the incident holds a successful history capture."""
    return any(e.kind is EventKind.METRICS_HISTORY and not e.payload.get("error") for e in events)


def is_closed(events: Sequence[Event]) -> bool:
    """Whether the incident has been closed."""
    return any(e.kind is EventKind.INCIDENT_CLOSED for e in events)


def needs_capture(head: IncidentHead, events: Sequence[Event]) -> bool:
    """Whether an export should read the history afresh before it renders.

    A closed incident's history was captured when it closed: the journal is enough
    (no Prometheus, and the same charts after Prometheus' retention). An open one is
    read afresh and journaled. A broken chain is never extended: it is shown as it is.
    """
    return not (is_closed(events) and has_history(events)) and verify_chain(head.incident_id, list(events), head).ok


def fallback_note(problem: str, events: Sequence[Event]) -> str:
    """What an export says when the history could not be read now, and what its charts show instead."""
    fallback = "earlier captures and the journaled checks" if has_history(events) else \
        "the checks journaled during the incident"
    return f"Metrics history could not be read now ({problem}); the charts show {fallback}."


@dataclass(frozen=True)
class Capture:
    """What one capture journaled."""

    window: HistoryWindow
    events: list[Event]
    failed: dict[str, str]

    def summary(self) -> str:
        """``6 metrics, 12 series, 300 points each every 12 s``."""
        series = sum(len(e.payload.get("series") or []) for e in self.events)
        text = (f"{len(self.events) - len(self.failed)} metric(s), {series} series, up to "
                f"{self.window.points} points each every {self.window.step:g} s")
        if self.failed:
            text += "; failed: " + "; ".join(f"{m}: {why}" for m, why in self.failed.items())
        return text


class HistoryService:
    """Reads each catalogue metric's history over an incident and journals it.

    Args:
        metrics: the metrics source (one range query per metric).
        journal: records the events (redacted, hash-chained).
        specs: the metric catalogue.
        margin_s: read this long before the impact start and after the end.
        max_points: at most this many points per series.
        clock: the current Unix time (default: the journal's clock).
        traffic_metric: the catalogue's traffic metric (``metrics.traffic_metric``), named in each payload.
    """

    def __init__(self, metrics: MetricsSource, journal: JournalService, specs: Sequence[MetricSpec],
                 margin_s: float = 900.0, max_points: int = 300, clock: Callable[[], float] | None = None,
                 traffic_metric: str | None = None) -> None:
        self.metrics = metrics
        self.journal = journal
        self.specs = tuple(specs)
        self.margin_s = margin_s
        self.max_points = max_points
        self.clock = clock or journal.clock
        self.traffic_metric = traffic_metric

    def window(self, events: Sequence[Event], now: float | None = None) -> HistoryWindow:
        """The span to read for an incident: its impact start, and its close (or now)."""
        now = self.clock() if now is None else now
        facts = incident_facts(events)
        end = facts.closed.at.timestamp() if facts.closed else now
        return history_window(facts.impact_start.at.timestamp(), end, now, self.margin_s, self.max_points)

    def capture(self, incident_id: str, events: Sequence[Event] | None = None,
                stable_version: str | None = None) -> Capture:
        """Read every catalogue metric's history over the incident and journal one event per metric.

        Args:
            incident_id: the incident.
            events: its events, if already read.
            stable_version: the model's stable version; default: the latest check's.

        Raises:
            MetricsError: the metrics source cannot be reached at all (nothing is journaled).
            NotFoundError: no such incident.
            UsageError: the catalogue is empty.
        """
        from console.domain.errors import UsageError

        if events is None:
            _, events = self.journal.chain(incident_id)
        if not self.specs:
            raise UsageError("the metric catalogue is empty (metrics.catalogue): no history to capture")
        model = _model(events)
        window = self.window(events)
        stable = stable_version or latest_stable_version(events)
        results = self.metrics.history(self.specs, model, window.start, window.end, window.step)
        items: list[tuple[EventKind, Mapping[str, object]]] = []
        failed = {}
        for spec in self.specs:
            result = results.get(spec.name) or RangeResult(spec.name, "", window.start, window.end, window.step,
                                                           error="the metrics source returned no answer")
            if result.error:
                failed[spec.name] = result.error
            items.append((EventKind.METRICS_HISTORY, history_payload(spec, result, stable, self.traffic_metric)))
        recorded = self.journal.record_many(incident_id, items)
        return Capture(window, recorded, failed)


def _model(events: Sequence[Event]) -> str:
    opened = next((e for e in events if e.kind is EventKind.INCIDENT_OPENED), None)
    model = opened.payload.get("model") if opened is not None else None
    if not model:
        from console.domain.errors import UsageError

        raise UsageError("the incident names no model (its incident.opened event has none)")
    return str(model)
