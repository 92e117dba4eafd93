"""The HTML export's charts: each checked metric per version over the incident window, in inline SVG.

One large chart per breaching segment and a row of small ones for the rest, with the impact window shaded,
the limit, a marker at every decision and action, and a legend; each version has its own colour, dash
pattern, point shape and label, so colour is never the only cue.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

from console.domain.metrics import Unit, format_value
from console.domain.versions import version_sort_key
from console.services.timeline.chart_model import (
    Marker,
    MetricChart,
    Point,
    chart_markers,
    drained_spans,
    metric_charts,
    without_drained,
)
from console.services.timeline.evidence import breaches, criterion_text
from console.services.timeline.sentences import history_lines
from console.services.timeline.view import Clock, IncidentView

# Okabe-Ito: distinguishable with the common colour-vision deficiencies; each version also
# has its own dash pattern, point shape and a direct label, so colour is never the only cue.
_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#7F7F7F")
_DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 2", "1 2", "12 4", "6 2 2 2")
_SHAPES = ("circle", "square", "triangle", "diamond", "circle", "square", "triangle", "diamond")


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 12) for i in range(first, max(last, first + 1) + 1)]


def _downsample(points: list[tuple[float, float]], x0: float, x1: float, buckets: int
                ) -> tuple[list[tuple[float, float]], list[tuple[float, float, float]] | None]:
    """Fit a series to about one point per pixel column.

    Returns the points to draw as the line (each column's mean, once there are
    more points than columns) and, when points were merged, each column's
    (time, lowest, highest) so the chart can shade the range: a spike is never
    averaged away unseen.
    """
    if len(points) <= buckets:
        return points, None
    span = (x1 - x0) or 1.0
    columns: dict[int, list[float]] = {}
    for at, value in points:
        column = int((at - x0) / span * buckets)
        kept = columns.get(column)
        if kept is None:
            columns[column] = [at, at, value, value, value, 1.0]  # first t, last t, min, max, sum, count
        else:
            kept[1] = at
            if value < kept[2]:
                kept[2] = value
            if value > kept[3]:
                kept[3] = value
            kept[4] += value
            kept[5] += 1
    line, band = [], []
    for column in sorted(columns):
        first, last, low, high, total, count = columns[column]
        middle = (first + last) / 2
        line.append((middle, total / count))
        band.append((middle, low, high))
    return line, band


def _shape(kind: str, x: float, y: float, colour: str, size: float = 3.6) -> str:
    if kind == "square":
        return (f'<rect x="{x - size:.1f}" y="{y - size:.1f}" width="{2 * size:.1f}" height="{2 * size:.1f}" '
                f'fill="{colour}"/>')
    if kind == "triangle":
        return (f'<path d="M{x:.1f},{y - size - 1:.1f}L{x + size + 0.5:.1f},{y + size:.1f}'
                f'L{x - size - 0.5:.1f},{y + size:.1f}Z" fill="{colour}"/>')
    if kind == "diamond":
        return (f'<path d="M{x:.1f},{y - size - 1:.1f}L{x + size + 1:.1f},{y:.1f}L{x:.1f},{y + size + 1:.1f}'
                f'L{x - size - 1:.1f},{y:.1f}Z" fill="{colour}"/>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{size:.1f}" fill="{colour}"/>'


def _time_label(at: float, with_date: bool) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return f"{moment:%m-%d %H:%M}" if with_date else f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"


def _time_ticks(x0: float, x1: float, count: int = 6) -> list[float]:
    span = max(1.0, x1 - x0)
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    step = next((s for s in steps if span / s <= count), 86400 * math.ceil(span / 86400 / count))
    first = math.ceil(x0 / step) * step
    return [first + i * step for i in range(int((x1 - first) // step) + 1)]


@dataclass(frozen=True)
class _Geo:
    """A chart's size and margins (px), and whether it is a small, compact one."""

    w: int
    h: int
    left: int
    right: int
    top: int
    bottom: int
    compact: bool = False


_WIDE = _Geo(1180, 300, 64, 96, 46, 30)
_SMALL = _Geo(290, 118, 44, 8, 8, 20, compact=True)
_STABLE_COLOUR = "#6e7781"
_SERVED_COLOUR = "#1b1f24"


def _legend_swatch(style: int | None) -> str:
    if style is None:
        return ('<svg width="40" height="12" viewBox="0 0 40 12" aria-hidden="true">'
                f'<line x1="1" y1="6" x2="39" y2="6" stroke="{_STABLE_COLOUR}" stroke-width="3"/></svg>')
    colour, dash, shape = _COLOURS[style % 8], _DASHES[style % 8], _SHAPES[style % 8]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<svg width="40" height="12" viewBox="0 0 40 12" aria-hidden="true">'
            f'<line x1="1" y1="6" x2="39" y2="6" stroke="{colour}" stroke-width="2"{dash_attr}/>'
            f'{_shape(shape, 20, 6, colour)}</svg>')


def _chart_svg(title: str, chart: MetricChart, series: dict[str, list[Point]], styles: dict[str, int],
               x0: float, x1: float, markers: list[Marker], window: tuple[float, float], geo: _Geo,
               served: list[tuple[float, float]] | None = None, drained: Mapping[str, str] | None = None) -> str:
    unit, threshold, stable = chart.unit, chart.threshold, chart.stable
    plot_w, plot_h = geo.w - geo.left - geo.right, geo.h - geo.top - geo.bottom
    values = [v for points in series.values() for _, v in points if v is not None]
    values += [v for _, v in served or ()]
    if threshold is not None:
        values.append(threshold)
    if values:
        low, high = min(values), max(values)
        if low >= 0:
            low = 0.0
        pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
        top = high + pad
        if unit is Unit.RATIO and high <= 1.0:
            top = min(top, 1.0)  # a ratio never goes past 100 %
        ticks = _nice_ticks(low, top, 3 if geo.compact else 5)
    else:
        ticks = [0.0, 1.0]
    y0, y1 = ticks[0], ticks[-1]
    font = 9.5 if geo.compact else 11
    end_labels: list[tuple[float, str, str]] = []

    def sx(t: float) -> float:
        return geo.left + (t - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(v: float) -> float:
        return geo.top + plot_h - (v - y0) / ((y1 - y0) or 1.0) * plot_h

    css = "chart wide" if not geo.compact else "chart small"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{css}" width="{geo.w}" height="{geo.h}" '
             f'viewBox="0 0 {geo.w} {geo.h}" role="img" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<rect x="{geo.left}" y="{geo.top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#8c959f"/>']
    # The impact window, shaded behind everything.
    w0, w1 = max(x0, window[0]), min(x1, window[1])
    if w1 > w0:
        parts.append(f'<rect class="impact" x="{sx(w0):.1f}" y="{geo.top}" width="{sx(w1) - sx(w0):.1f}" '
                     f'height="{plot_h}" fill="#f6e7e7"><title>impact window</title></rect>')
    for tick in ticks:
        y = sy(tick)
        parts.append(f'<line x1="{geo.left}" y1="{y:.1f}" x2="{geo.left + plot_w}" y2="{y:.1f}" stroke="#eaeef2"/>')
        label = format_value(tick, unit) if unit else f"{tick:g}"
        parts.append(f'<text x="{geo.left - 5}" y="{y + 4:.1f}" font-size="{font}" text-anchor="end" '
                     f'fill="#57606a">{escape(label)}</text>')
    with_date = (x1 - x0) > 86400
    for tick in _time_ticks(x0, x1, 3 if geo.compact else 10):
        x = sx(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{geo.top + plot_h}" x2="{x:.1f}" y2="{geo.top + plot_h + 4}" '
                     'stroke="#8c959f"/>')
        parts.append(f'<text x="{x:.1f}" y="{geo.top + plot_h + 15}" font-size="{font}" text-anchor="middle" '
                     f'fill="#57606a">{_time_label(tick, with_date)}</text>')
    if not geo.compact:
        parts.append(f'<text x="{geo.left + plot_w}" y="{geo.h - 2}" font-size="10" text-anchor="end" '
                     'fill="#57606a">UTC</text>')
    if threshold is not None and y0 <= threshold <= y1:
        y = sy(threshold)
        label = format_value(threshold, unit) if unit else f"{threshold:g}"
        parts.append(f'<line class="threshold" x1="{geo.left}" y1="{y:.1f}" x2="{geo.left + plot_w}" y2="{y:.1f}" '
                     f'stroke="#b3261e" stroke-width="1.4" stroke-dasharray="5 3"><title>limit {escape(label)}</title>'
                     '</line>')
        if not geo.compact:
            end_labels.append((y, f"limit {label}", "#b3261e"))
    labels = _marker_parts(parts, markers, sx, x0, x1, geo, plot_h)
    # One line per version: the stable version in grey as the reference, the others in colour, each with a
    # dash pattern, point shape and an end label, so colour is never the only cue.
    ordered = sorted(series, key=lambda v: (v != stable, version_sort_key(v)))
    for version in ordered:
        is_stable = version == stable
        style = styles.get(version, 0)
        colour = _STABLE_COLOUR if is_stable else _COLOURS[style % 8]
        dash = "" if is_stable else _DASHES[style % 8]
        shape = _SHAPES[style % 8]
        width = (2 if geo.compact else 3) if is_stable else (1.6 if geo.compact else 2.2)
        runs: list[list[tuple[float, float]]] = [[]]
        for at, value in series[version]:
            if value is None:
                if runs[-1]:
                    runs.append([])
            else:
                runs[-1].append((at, value))
        label = f"v{version}" + (" stable" if is_stable else "")
        parts.append(f'<g class="series{" stable" if is_stable else ""}"><title>{escape(label)}</title>')
        last_point: tuple[float, float] | None = None
        for run in runs:
            if not run:
                continue
            kept, band = _downsample(run, x0, x1, plot_w)
            if band:
                outline = [f"{sx(t):.1f},{sy(high):.1f}" for t, _, high in band]
                outline += [f"{sx(t):.1f},{sy(low):.1f}" for t, low, _ in reversed(band)]
                parts.append(f'<polygon points="{" ".join(outline)}" fill="{colour}" fill-opacity="0.18" '
                             'stroke="none"/>')
            coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in kept)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="{width}"'
                         f'{dash_attr} stroke-linejoin="round"/>')
            if not geo.compact and not is_stable and len(kept) <= 40:
                parts.extend(_shape(shape, sx(t), sy(v), colour) for t, v in kept)
            elif not geo.compact and not is_stable:
                stride = max(1, len(kept) // 12)
                parts.extend(_shape(shape, sx(t), sy(v), colour, 3.0) for t, v in kept[::stride])
            last_point = kept[-1]
        parts.append("</g>")
        if last_point is not None and not geo.compact:
            ended = last_point[0] < x1 - (x1 - x0) * 0.05
            why = (drained or {}).get(version) or f"no data after {_time_label(last_point[0], with_date)}"
            text = label + (f" ({why})" if ended else "")
            if ended:
                parts.append(f'<text x="{sx(last_point[0]) + 6:.1f}" y="{sy(last_point[1]) - 6:.1f}" '
                             f'font-size="10.5" font-weight="600" fill="{colour}" stroke="#fff" stroke-width="3" '
                             f'paint-order="stroke">{escape(text)}</text>')
            else:
                end_labels.append((sy(last_point[1]), label, colour))
    if served:
        kept, _ = _downsample(served, x0, x1, plot_w)
        coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in kept)
        parts.append(f'<g class="served"><title>what the segment\'s users got: every version, weighted by its '
                     f'traffic</title><polyline points="{coords}" fill="none" stroke="{_SERVED_COLOUR}" '
                     'stroke-width="2" stroke-dasharray="2 3" stroke-linecap="round" stroke-linejoin="round"/>'
                     '</g>')
        end_labels.append((sy(kept[-1][1]), "served", _SERVED_COLOUR))
    end_labels.sort()
    placed: list[float] = []
    for y, label, colour in end_labels:
        y = max(y, placed[-1] + 12) if placed else y
        placed.append(y)
        weight = "400" if label.startswith("limit ") else "600"
        parts.append(f'<text x="{geo.left + plot_w + 4}" y="{y + 4:.1f}" font-size="11" font-weight="{weight}" '
                     f'fill="{colour}">{escape(label)}</text>')
    if not values or (threshold is not None and len(values) == 1):
        parts.append(f'<text x="{geo.left + plot_w / 2}" y="{geo.top + plot_h / 2}" text-anchor="middle" '
                     f'font-size="{font}" fill="#57606a">no data</text>')
    parts.extend(labels)
    parts.append("</svg>")
    return "".join(parts)


def _marker_parts(parts: list[str], markers: list[Marker], sx: Callable[[float], float], x0: float, x1: float,
                  geo: _Geo, plot_h: float) -> list[str]:
    """Draw the decision and action lines; return their labels (drawn last, above the lines).

    Labels of markers a few pixels apart are joined (``D1 A1✓``) and stacked in up to
    three lanes so they never overwrite each other; compact charts draw the lines only.
    """
    groups: list[list[tuple[float, Marker]]] = []
    for marker in markers:
        if not x0 <= marker.at <= x1:
            continue
        x = sx(marker.at)
        if groups and x - groups[-1][0][0] < 8:
            groups[-1].append((x, marker))
        else:
            groups.append([(x, marker)])
    labels: list[str] = []
    lanes: list[float] = []
    for group in groups:
        for x, marker in group:
            dash = "" if marker.kind == "decision" else ' stroke-dasharray="4 2"'
            colour = "#1b1f24" if marker.kind == "decision" else "#57606a"
            parts.append(f'<line class="marker" x1="{x:.1f}" y1="{geo.top}" x2="{x:.1f}" y2="{geo.top + plot_h}" '
                         f'stroke="{colour}" stroke-width="{1 if geo.compact else 1.3}"{dash}>'
                         f'<title>{escape(marker.title)}</title></line>')
        if geo.compact:
            continue
        x = group[0][0]
        text = " ".join(m.label for _, m in group)
        width = 6.5 * len(text) + 6
        lane = next((i for i, end in enumerate(lanes) if end < x - width / 2), None)
        if lane is None:
            lane = len(lanes) if len(lanes) < 3 else min(range(len(lanes)), key=lambda i: lanes[i])
            if lane == len(lanes):
                lanes.append(0.0)
        lanes[lane] = x + width / 2
        y = geo.top - 5 - lane * 12
        anchor = "end" if x + width / 2 > geo.w - 2 else "middle"
        title = "; ".join(m.title for _, m in group)
        labels.append(f'<g><title>{escape(title)}</title><text x="{x:.1f}" y="{y:.1f}" font-size="10.5" '
                      f'font-weight="600" text-anchor="{anchor}" fill="#1b1f24" stroke="#fff" stroke-width="3" '
                      f'paint-order="stroke">{escape(text)}</text></g>')
    return labels


def _peak(chart: MetricChart, segment: str) -> str:
    values = [v for points in chart.segments[segment].values() for _, v in points if v is not None]
    if not values:
        return "no data"
    top = max(values)
    return f"max {format_value(top, chart.unit) if chart.unit else f'{top:g}'}"


def charts_html(view: IncidentView, clock: Clock) -> str:
    """The "Metrics by version" block: where the data comes from, the legend, and each metric's charts."""
    charts, times = metric_charts(view)
    notes = "".join(f'<p class="note">{escape(line)}</p>' if line == view.history_note else
                    f'<p class="muted">{escape(line)}</p>' for line in history_lines(view, clock))
    if not charts:
        return notes + ("<p class=\"muted\">No check was evaluated and no metrics history was captured during "
                        "this incident, so there is nothing to chart.</p>")
    f = view.facts
    window = (f.impact_start.at.timestamp(), f.window_end.timestamp())
    markers = chart_markers(view, clock)
    x0 = min([*times, window[0], *(m.at for m in markers)])
    x1 = max([*times, window[1], *(m.at for m in markers)])
    if x1 - x0 < 60:
        x1 = x0 + 60
    pad = (x1 - x0) * 0.01
    x0, x1 = x0 - pad, x1 + pad
    stable_versions = {c.stable for c in charts if c.stable}
    versions = sorted({v for c in charts for by_version in c.segments.values() for v in by_version},
                      key=version_sort_key)
    others = [v for v in versions if v not in stable_versions]
    styles = {version: index for index, version in enumerate(others)}
    breached = {(b.metric, b.segment) for b in breaches(view)}
    spans = drained_spans(view)
    drained_notes = {span.version: f"drained: {span.marker}" for span in spans}
    out = [notes, '<div class="legend">']
    for version in versions:
        if version in stable_versions:
            out.append(f"<span>{_legend_swatch(None)}v{escape(version)} (stable version: the reference)</span>")
        else:
            out.append(f"<span>{_legend_swatch(styles[version])}v{escape(version)}</span>")
    out.append('<span><svg width="22" height="14" aria-hidden="true"><line x1="11" y1="0" x2="11" y2="14" '
               'stroke="#1b1f24" stroke-width="1.5"/></svg>D1, D2…: decisions</span>')
    out.append('<span><svg width="22" height="14" aria-hidden="true"><line x1="11" y1="0" x2="11" y2="14" '
               'stroke="#57606a" stroke-width="1.5" stroke-dasharray="4 2"/></svg>A1, A2…: actions, when applied '
               '(✓ verified, ✗ not verified, ! failed, ↺ compensated)</span>')
    if any(c.served for c in charts):
        out.append('<span><svg width="22" height="12" aria-hidden="true"><line x1="0" y1="6" x2="22" y2="6" '
                   f'stroke="{_SERVED_COLOUR}" stroke-width="1.6" stroke-dasharray="1 3" stroke-linecap="round"/>'
                   "</svg>served: what the segment's users got (every version, weighted by its traffic)</span>")
    out.append('<span><svg width="22" height="12" aria-hidden="true"><line x1="0" y1="6" x2="22" y2="6" '
               'stroke="#b3261e" stroke-dasharray="5 3"/></svg>limit</span>')
    out.append('<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" fill="#f6e7e7" '
               'stroke="#d0d7de"/></svg>impact window</span>')
    legend_end = len(out)
    out.append("</div>")
    for chart in charts:
        large = [s for s in sorted(chart.segments) if (chart.metric, s) in breached]
        small = [s for s in sorted(chart.segments) if (chart.metric, s) not in breached]
        out.append(f"<h3>{escape(chart.title)} <span class=\"muted\">({escape(chart.metric)})</span></h3>")
        criterion = criterion_text(chart.criterion, chart.unit, chart.direction)
        out.append(f'<p class="muted">PromQL: <code>{escape(chart.promql)}</code> · criterion: '
                   f'{escape(criterion)} · from the {escape(chart.source)}</p>')
        for segment in large:
            svg = _chart_svg(f"{chart.title}, segment {segment}: breached", chart,
                             without_drained(chart.segments[segment], spans), styles, x0, x1, markers, window, _WIDE,
                             chart.served.get(segment), drained_notes)
            out.append(f'<figure class="wide"><figcaption>segment {escape(segment)} '
                       f'<span class="bad">✗ breached</span></figcaption>{svg}</figure>')
        if small:
            word = "never breached" if large else "no segment breached"
            out.append(f'<p class="muted small-note">{escape(chart.title)}: {word} in '
                       f'{escape(", ".join(small))}.</p><div class="smalls">')
            for segment in small:
                svg = _chart_svg(f"{chart.title}, segment {segment}: never breached", chart,
                                 without_drained(chart.segments[segment], spans), styles, x0, x1, markers, window,
                                 _SMALL)
                out.append(f'<figure class="small"><figcaption>{escape(segment)} '
                           f'<span class="muted">· {escape(_peak(chart, segment))}</span></figcaption>{svg}</figure>')
            out.append("</div>")
    if any("<polygon" in part for part in out[legend_end:]):
        out.insert(legend_end, '<span><svg width="22" height="12" aria-hidden="true"><rect width="22" height="12" '
                   'fill="#0072B2" fill-opacity="0.18"/></svg>range of the values merged into one pixel column '
                   '(the line is their mean)</span>')
    return "".join(out)
