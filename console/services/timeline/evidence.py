"""What the journaled checks say, read once for every format.

A check's values and verdicts as text, its criterion as a sentence, the evidence rows a decision rests on
(each flagged cell with its reason, the rest counted), and every cell that breached during the incident,
judged by a journaled check or by the same judge on the metrics' history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from console.domain.incident import DecisionRecord, compact, describe
from console.domain.journal import Event, EventKind, check_evidence, parse_ts
from console.domain.metrics import Unit, criterion_sentence, format_count, format_value
from console.domain.verdicts import history_breaches
from console.domain.versions import version_sort_key
from console.services.timeline.view import IncidentView


def unit_of(text: object) -> Unit | None:
    """The unit a payload names (``ratio``, ``seconds``...), or ``None`` for none or one this version does not know."""
    try:
        return Unit(str(text)) if text else None
    except ValueError:
        return None


def as_number(value: object) -> float | None:
    """A payload number (``"+Inf"`` included); ``None`` for null, NaN and anything else."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


def value_text(value: float | None, raw: str | None, unit: Unit | None) -> str:
    """A value in its unit (``12.5%``); ``no data`` (with what was read, when something was) for none."""
    if value is None:
        return "no data" if raw is None else f"no data ({raw})"
    return format_value(value, unit) if unit else f"{value:g}"


_VERDICT_SYMBOL = {"pass": "✓", "breach": "✗", "suspect": "!", "no_data": "?", "low_traffic": "~", "info": "·"}
_FLAGGED = ("breach", "suspect")


def _verdict(text: str | None) -> str:
    word = (text or "?").lower()
    shown = "BREACH" if word == "breach" else word.replace("_", " ")
    return f"{_VERDICT_SYMBOL.get(word, '·')} {shown}"


_CRITERION_ORDER = ("threshold", "max_delta", "delta_kind", "min_traffic")


def criterion_text(criterion: object, unit: str | None = None, direction: str | None = None) -> str:
    """A check's criterion as a sentence; a criterion of another shape as its keys and values."""
    if isinstance(criterion, Mapping):
        if "threshold" in criterion or "max_delta" in criterion:
            return criterion_sentence(criterion, unit, direction)
        keys = [k for k in _CRITERION_ORDER if k in criterion] + [k for k in criterion if k not in _CRITERION_ORDER]
        parts = [f"{k} {criterion[k]}" for k in keys if criterion[k] is not None]
        return ", ".join(parts) or "-"
    return compact(criterion)


@dataclass(frozen=True)
class Flagged:
    """One breaching or suspect cell of a check, with the reason a reader needs."""

    cell: str
    value: str
    verdict: str
    reason: str

    @property
    def breach(self) -> bool:
        """Whether the cell breached (else it is suspect)."""
        return self.verdict.startswith(_VERDICT_SYMBOL["breach"])


@dataclass(frozen=True)
class EvidenceRow:
    """One check (or other event) a decision rests on: its flagged cells, and a count of the rest.

    ``check`` is false for evidence that is not a metric check (``values`` then says what it is).
    """

    seq: int
    what: str
    verdict: str | None
    values: str
    criterion: str = ""
    age: str = ""
    promql: str = ""
    check: bool = True
    flagged: tuple[Flagged, ...] = ()
    rest: str = ""

    @property
    def summary_verdict(self) -> str:
        """The verdict on the row that sums the check up: none when its flagged cells have rows of their own."""
        return "" if self.flagged else _verdict(self.verdict)

    @property
    def summary_cells(self) -> str:
        """The cells the summing-up row stands for."""
        return "other cells" if self.flagged else "all cells"


def cell_reason(cell: Mapping[str, object], value: float | None, unit: Unit | None, threshold: float | None,
                direction: str) -> str:
    """The cell's own reason when the judge wrote one; else what can be said from its value and threshold."""
    if cell.get("reason"):
        return " ".join(str(cell["reason"]).split())
    counts = ""
    if cell.get("numerator") is not None and cell.get("denominator") is not None:
        counts = f" ({_count(cell['numerator'])} of {_count(cell['denominator'])})"
    if value is not None and threshold is not None:
        worse = value < threshold if direction == "higher_is_better" else value > threshold
        if worse:
            sign = "<" if direction == "higher_is_better" else ">"
            return f"{value_text(value, None, unit)} {sign} {value_text(threshold, None, unit)}{counts}"
    return f"{value_text(value, None, unit)}{counts}; beyond its criterion against the stable version" \
        if value is not None else "no data"


def _count(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return format_count(number)


def _tally(states: Sequence[str], flagged: int) -> str:
    """``34 other cells pass, 2 low traffic``."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    if not counts:
        return "no other cell" if flagged else "no cells"
    order = ["pass", "low_traffic", "no_data", "info"]
    words = sorted(counts, key=lambda s: order.index(s) if s in order else len(order))
    total = sum(counts.values())
    parts = [f"{counts[w]} {w.replace('_', ' ')}" for w in words]
    lead = f"{total} other cell{'s' if total != 1 else ''}" if flagged else f"{total} cell{'s' if total != 1 else ''}"
    if len(parts) == 1:
        only = words[0]
        return f"{lead}: all {only.replace('_', ' ')}" if total > 1 else f"{lead}: {only.replace('_', ' ')}"
    return f"{lead}: " + ", ".join(parts)


def check_row(ev: Event) -> EvidenceRow:
    """A ``check.evaluated`` event as evidence: its flagged cells first (breaches before suspects), the rest counted."""
    c = check_evidence(ev.payload)
    unit = unit_of(c.unit)
    direction = str(ev.payload.get("direction", "higher_is_worse"))
    given = ev.payload.get("values")
    raw_cells: list[object] = given if isinstance(given, list) else []
    by_key = {(str(r.get("version", "?")), str(r.get("segment", "all"))): r for r in raw_cells
              if isinstance(r, Mapping)}
    flagged = []
    others = []
    for cell in sorted(c.values, key=lambda v: (version_sort_key(v.version), v.segment)):
        state = (cell.verdict or "").lower() or "info"
        if state in _FLAGGED:
            raw = by_key.get((cell.version, cell.segment), {})
            flagged.append(Flagged(f"v{cell.version} {cell.segment}", value_text(cell.value, cell.raw, unit),
                                   _verdict(state), cell_reason(raw, cell.value, unit, c.threshold, direction)))
        else:
            others.append(state)
    flagged.sort(key=lambda f: 0 if f.breach else 1)
    rest = _tally(others, len(flagged))
    return EvidenceRow(ev.seq, c.title, c.verdict, rest, criterion_text(c.criterion, c.unit, direction),
                       "-" if c.data_age_s is None else f"{c.data_age_s:g} s", c.promql,
                       flagged=tuple(flagged), rest=rest)


def evidence_rows(decision: DecisionRecord) -> list[EvidenceRow]:
    """The evidence a decision rests on, one row per event (a check, or another event described)."""
    rows = []
    for ev in decision.evidence:
        if ev.kind is EventKind.CHECK_EVALUATED:
            rows.append(check_row(ev))
        else:
            rows.append(EvidenceRow(ev.seq, str(ev.kind), None, describe(ev), check=False))
    return rows


@dataclass
class Breach:
    """One (metric, version, segment) cell that breached during the incident."""

    metric: str
    title: str
    version: str
    segment: str
    unit: Unit | None
    first: float
    last: float
    worst: float | None = None
    reason: str = ""
    source: str = "checks"


def _worse(a: float | None, b: float | None, better_high: bool) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b) if better_high else max(a, b)


def breaches(view: IncidentView) -> list[Breach]:
    """Every cell that breached: judged so by a journaled check, or by the same judge on the history.

    Computed once per view: an incident can hold tens of thousands of checks.
    """
    return view.once("breaches", _find_breaches)


def _find_breaches(view: IncidentView) -> list[Breach]:
    found: dict[tuple[str, str, str], Breach] = {}
    for event in view.events:
        if event.kind is not EventKind.CHECK_EVALUATED:
            continue
        p = event.payload
        if str(p.get("verdict", "")).lower() != "breach" or not isinstance(p.get("values"), list):
            continue  # a check has a breaching cell only when its verdict is breach
        at = _event_time(event)
        metric = str(p.get("metric", "?"))
        better_high = str(p.get("direction")) == "higher_is_better"
        for raw in p["values"]:
            if not isinstance(raw, Mapping) or str(raw.get("verdict", "")).lower() != "breach":
                continue
            key = (metric, str(raw.get("version", "?")), str(raw.get("segment", "all")))
            value = as_number(raw.get("raw", raw.get("value")))
            b = found.get(key)
            if b is None:  # the first breach of a cell: its reason, read the careful way
                c = check_evidence(p)
                unit = unit_of(c.unit)
                reason = cell_reason(raw, value, unit, c.threshold, str(p.get("direction")))
                b = found[key] = Breach(metric, c.title, key[1], key[2], unit, at, at, reason=reason)
            b.first, b.last = min(b.first, at), max(b.last, at)
            if value is not None and math.isfinite(value):
                b.worst = _worse(b.worst, value, better_high)
    for metric, event in view.history.items():
        p = event.payload
        start, step = as_number(p.get("start")), as_number(p.get("step"))
        if start is None or not step:
            continue
        traffic = view.history.get(str(p.get("traffic_metric")))
        judged = history_breaches(p, traffic.payload if traffic else None)
        if not judged:
            continue
        better_high = str(p.get("direction")) == "higher_is_better"
        unit = unit_of(p.get("unit"))
        values_of = {(str(x.get("version", "?")), str(x.get("segment", "all"))): x.get("values") or []
                     for x in p.get("series") or [] if isinstance(x, Mapping)}
        for (version, segment), indexes in judged.items():
            values = values_of.get((version, segment), [])
            hit = [x for i in indexes if i < len(values) and (x := as_number(values[i])) is not None]
            worst = (min(hit) if better_high else max(hit)) if hit else None
            first, last = start + indexes[0] * step, start + indexes[-1] * step
            key = (metric, version, segment)
            b = found.get(key)
            if b is None:
                rule = criterion_sentence(p.get("criterion") or {}, p.get("unit"), p.get("direction"))
                b = found[key] = Breach(metric, str(p.get("title") or metric), version, segment, unit, first, last,
                                        reason=f"judged a breach at {len(indexes)} point(s) of the history: {rule}",
                                        source="history")
            b.first, b.last = min(b.first, first), max(b.last, last)
            b.worst = _worse(b.worst, worst, better_high)
            if b.source == "checks":
                b.source = "checks and history"
    return sorted(found.values(), key=lambda b: (b.first, b.metric, version_sort_key(b.version), b.segment))


def _event_time(event: Event) -> float:
    at = event.payload.get("evaluated_at")
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    return parse_ts(event.ts).timestamp()
