"""What the charts show, read from the incident: no drawing here.

Per metric, per segment, per version, the ``(time, value)`` points (from the metrics history where it was
captured, else from the journaled checks), the line of what each segment's users were served, a marker at
every decision and action, and the spans during which a version was drained of its traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from console.domain.incident import compact
from console.domain.journal import CheckEvidence, Event, EventKind, check_evidence, parse_ts
from console.domain.metrics import Unit
from console.services.timeline.evidence import as_number, unit_of
from console.services.timeline.sentences import plan_of
from console.services.timeline.view import Clock, IncidentView

Point = tuple[float, float | None]
"""A chart point: ``(Unix time, value)``, the value ``None`` where there is no data."""


def _chart_data(events: Sequence[Event]) -> tuple[dict[str, dict[str, dict[str, list[Point]]]],
                                                   dict[str, CheckEvidence], list[float]]:
    """metric -> segment -> version -> [(t, value)], the latest evidence per metric, all check times.

    Reads the payloads directly rather than through :func:`check_evidence`: an
    incident can hold tens of thousands of checks.
    """
    data: dict[str, dict[str, dict[str, list[Point]]]] = {}
    latest_payload: dict[str, Mapping[str, Any]] = {}
    times: list[float] = []
    isfinite = math.isfinite
    for event in events:
        if event.kind is not EventKind.CHECK_EVALUATED:
            continue
        payload = event.payload
        metric = str(payload.get("metric", "?"))
        at = payload.get("evaluated_at")
        if not isinstance(at, (int, float)) or isinstance(at, bool):
            at = parse_ts(event.ts).timestamp()
        times.append(at)
        latest_payload[metric] = payload
        by_segment = data.get(metric)
        if by_segment is None:
            by_segment = data[metric] = {}
        cells = payload.get("values")
        if isinstance(cells, Mapping) or not isinstance(cells, list):
            cells = check_evidence(payload).values
            cells = [{"version": c.version, "segment": c.segment, "raw": c.raw} for c in cells]
        for cell in cells:
            if not isinstance(cell, Mapping):
                continue
            raw = cell.get("raw", cell.get("value"))
            try:
                value: float | None = float(raw)
            except (TypeError, ValueError):
                value = None
            if value is not None and not isfinite(value):
                value = None  # NaN is no data; an infinite value cannot be drawn
            segment, version = str(cell.get("segment", "all")), str(cell.get("version", "?"))
            by_version = by_segment.get(segment)
            if by_version is None:
                by_version = by_segment[segment] = {}
            points = by_version.get(version)
            if points is None:
                points = by_version[version] = []
            points.append((at, value))
    latest = {metric: check_evidence(payload) for metric, payload in latest_payload.items()}
    return data, latest, times


@dataclass(frozen=True)
class Marker:
    """A decision or an action on the charts' time axis: where, its label, and the tooltip that tells it."""

    at: float
    label: str
    kind: str  # "decision" or "action"
    title: str


_OUTCOME_MARK = {"verified": "✓", "not verified": "✗", "failed": "!", "compensated": "↺"}


def chart_markers(view: IncidentView, clock: Clock) -> list[Marker]:
    """A marker per decision, and per action at the moment it changed something (or failed).

    An action's label carries its outcome: ``A1✓`` verified, ``A1✗`` not
    verified, ``A1!`` failed, ``A1↺`` compensated.
    """
    markers = []
    for decision in view.decisions:
        e = decision.event
        markers.append(Marker(parse_ts(e.ts).timestamp(), decision.marker, "decision",
                              f"{decision.marker}: decision at {clock.utc(e.ts)}: {compact(e.payload.get('option'))}"))
    for action in view.actions:
        moment = (action.first(EventKind.ACTION_APPLIED) or action.first(EventKind.ACTION_FAILED)
                  or action.events[0])
        label = action.marker + _OUTCOME_MARK.get(action.outcome, "")
        markers.append(Marker(parse_ts(moment.ts).timestamp(), label, "action",
                              f"{label}: action {action.action_id} at {clock.utc(moment.ts)} ({action.outcome})"))
    return sorted(markers, key=lambda m: m.at)


@dataclass
class MetricChart:
    """One metric's chart data: per segment, per version, ``(time, value)`` points."""

    metric: str
    title: str
    unit: Unit | None
    promql: str
    criterion: object
    threshold: float | None
    stable: str | None
    source: str
    segments: dict[str, dict[str, list[Point]]]
    served: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    direction: str | None = None


_SERVED_UNITS = (Unit.RATIO, Unit.SCORE)
"""Units whose traffic-weighted mean over versions is what a segment's users got (not so for a quantile)."""


def _served(chart: MetricChart, traffic: MetricChart | None) -> dict[str, list[tuple[float, float]]]:
    """Per segment, the versions' values weighted by their traffic at each time: what the segment's users got."""
    if traffic is None or traffic is chart or chart.unit not in _SERVED_UNITS:
        return {}
    served: dict[str, list[tuple[float, float]]] = {}
    for segment, by_version in chart.segments.items():
        rates = traffic.segments.get(segment, {})
        times: dict[float, list[float]] = {}
        for version, points in by_version.items():
            weights = dict(rates.get(version, ()))
            for at, value in points:
                rate = weights.get(at)
                if value is None or rate is None or rate <= 0:
                    continue
                cell = times.setdefault(at, [0.0, 0.0])
                cell[0] += value * rate
                cell[1] += rate
        if len(by_version) > 1 and times:
            served[segment] = [(at, total / weight) for at, (total, weight) in sorted(times.items())]
    return served


def _history_chart(event: Event) -> MetricChart:
    p = event.payload
    start, step = as_number(p.get("start")) or 0.0, as_number(p.get("step")) or 1.0
    segments: dict[str, dict[str, list[Point]]] = {}
    for series in p.get("series") or []:
        if not isinstance(series, Mapping):
            continue
        points = []
        for i, raw in enumerate(series.get("values") or []):
            value = as_number(raw)
            points.append((start + i * step, value if value is not None and math.isfinite(value) else None))
        segments.setdefault(str(series.get("segment", "all")), {})[str(series.get("version", "?"))] = points
    criterion = p.get("criterion")
    threshold = as_number(criterion.get("threshold")) if isinstance(criterion, Mapping) else None
    return MetricChart(str(p.get("metric", "?")), str(p.get("title") or p.get("metric", "?")), unit_of(p.get("unit")),
                       str(p.get("promql", "")), criterion, threshold,
                       None if p.get("stable_version") is None else str(p.get("stable_version")),
                       f"metrics history (event #{event.seq})", segments,
                       direction=None if p.get("direction") is None else str(p.get("direction")))


def metric_charts(view: IncidentView) -> tuple[list[MetricChart], list[float]]:
    """The charts to draw (history where captured, else the journaled checks) and every time they cover."""
    data, latest, times = _chart_data(view.events)
    charts: dict[str, MetricChart] = {}
    for metric, event in view.history.items():
        if event.payload.get("error") and metric in data:
            continue  # the capture failed for this metric: its checks are all there is
        if event.payload.get("error"):
            continue
        chart = _history_chart(event)
        charts[metric] = chart
        # The span the history has data for: the margin asked of Prometheus before a service existed
        # (a new deployment, a fresh sandbox) would only draw empty axes.
        seen = [t for by_version in chart.segments.values() for points in by_version.values()
                for t, value in points if value is not None]
        p = event.payload
        times += [min(seen), max(seen)] if seen else \
            [t for t in (as_number(p.get("start")), as_number(p.get("end"))) if t is not None]
    for metric, by_segment in data.items():
        if metric in charts:
            continue
        evidence = latest[metric]
        charts[metric] = MetricChart(metric, evidence.title, unit_of(evidence.unit), evidence.promql,
                                     evidence.criterion, evidence.threshold, evidence.stable_version,
                                     "journaled checks", by_segment, direction=evidence.direction)
    for metric, event in view.history.items():
        drawn = charts.get(metric)
        traffic_name = event.payload.get("traffic_metric")
        if drawn is not None and drawn.source.startswith("metrics history") and isinstance(traffic_name, str):
            traffic = charts.get(traffic_name)
            if traffic is not None and traffic.source.startswith("metrics history"):
                drawn.served = _served(drawn, traffic)
    order = list(dict.fromkeys([*data, *view.history]))
    return [charts[m] for m in order if m in charts], times


@dataclass(frozen=True)
class Drained:
    """A time a version took no traffic: from the verification of the action that drained it, to the next
    action that gave it traffic again (or the end of the chart)."""

    version: str
    start: float
    end: float
    marker: str


def drained_spans(view: IncidentView) -> list[Drained]:
    """When each version was drained, from the journaled plans: its weight 0 at the end of a verified action.

    A drained version's one-minute window still holds what it served before, so its line would keep
    moving (and read as "the rollback did not work"); the charts stop it at the verification instead.
    """
    spans: list[Drained] = []
    open_spans: dict[str, Drained] = {}
    for action in view.actions:
        plan = plan_of(action)
        steps = plan.get("steps") if isinstance(plan, Mapping) else None
        if not isinstance(plan, Mapping) or not isinstance(steps, list) or not steps \
                or not isinstance(steps[-1], Mapping):
            continue
        given = plan.get("weights_before")
        before: Mapping[str, object] = given if isinstance(given, Mapping) else {}
        after = {str(v): as_number(w) for v, w in steps[-1].items()}
        applied = action.first(EventKind.ACTION_APPLIED)
        verified = action.first(EventKind.ACTION_VERIFIED)
        if applied is not None and applied.payload.get("changed") is not False:
            for version, weight in after.items():
                if weight and version in open_spans:  # traffic again (an undo): the line goes on from here
                    spans.append(replace(open_spans.pop(version), end=parse_ts(applied.ts).timestamp()))
        if verified is None:
            continue
        for version, weight in after.items():
            if weight == 0 and (as_number(before.get(version)) or 0) > 0 and version not in open_spans:
                open_spans[version] = Drained(version, parse_ts(verified.ts).timestamp(), math.inf,
                                              action.marker + _OUTCOME_MARK["verified"])
    return spans + list(open_spans.values())


def without_drained(series: dict[str, list[Point]], spans: list[Drained]) -> dict[str, list[Point]]:
    """The series with no point while its version was drained: each line stops where its drain was verified."""
    if not spans:
        return series
    cut = dict(series)
    for span in spans:
        points = cut.get(span.version)
        if points is not None:
            cut[span.version] = [(at, None if span.start < at < span.end else value) for at, value in points]
    return cut
