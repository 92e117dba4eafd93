"""A fleet of models: one query per catalogue metric for every model, and each model's row.

A catalogue template selects one model (``model="$model"``) and groups by version and
segment. :func:`fleet_template` rewrites it once for the whole fleet: the model's
matcher becomes a regex over the fleet's names (``model=~"$fleet"``) and every
``by (...)`` and ``on (...)`` keeps the model label as well, so the answer holds one
series per (model, version, segment) and the adapter splits it by model. A template
that would merge the models (an aggregation with no ``by``, ``scalar()``, the model
label in ``without``/``ignoring``, ``$model`` used other than as the matcher) is
refused with the reason, never guessed at.

:class:`FleetRow` is what the fleet view shows of a model: its state (the worst
verdict of its live cells), its breaching cells, the router's split, its open
incident, readiness and who is acting. :func:`worst_first` orders the rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from console.domain.incident import IncidentSummary
from console.domain.metrics import COUNT_PART_LABEL, MetricSpec, escape_label_value, validate_window
from console.domain.status import StatusSnapshot
from console.domain.verdicts import State, overall_state
from console.domain.versions import version_sort_key

FLEET = "$fleet"
"""The placeholder of a fleet template: the regex that matches every model of the fleet."""

_AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                           "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
_MERGING = frozenset({"scalar", "absent", "absent_over_time"})
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _skip_string(text: str, start: int) -> int:
    """The index after the string literal opening at ``start`` (PromQL's "...", '...' or `...`)."""
    quote, index = text[start], start + 1
    while index < len(text):
        if text[index] == "\\" and quote != "`":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    raise ValueError("a string literal is not closed")


def _closing(text: str, start: int) -> int:
    """The index of the bracket closing the one at ``start``, strings skipped."""
    pairs = {"(": ")", "{": "}", "[": "]"}
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char in "\"'`":
            index = _skip_string(text, index)
            continue
        if char in pairs:
            depth += 1
        elif char in pairs.values():
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise ValueError("a bracket is not closed")


def _next_non_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def fleet_template(template: str, model_label: str) -> str:
    """A catalogue template rewritten to ask for every model of the fleet at once.

    Args:
        template: the catalogue's template, selecting one model with ``<model_label>="$model"``.
        model_label: the label that names the model in the series (``metrics.model_label``).

    Returns:
        The template with ``<model_label>=~"$fleet"`` for the model's matcher and
        ``model_label`` added to every ``by (...)`` and ``on (...)`` list.

    Raises:
        ValueError: the template cannot be asked for the whole fleet without merging
            the models; the message says why.
    """
    out: list[str] = []
    index = 0
    matchers = 0
    # (position of an aggregation's opening bracket) -> whether a by/without clause came before it
    while index < len(template):
        char = template[index]
        if char in "\"'`":
            end = _skip_string(template, index)
            out.append(template[index:end])
            index = end
            continue
        if char == "{":
            end = _closing(template, index)
            out.append(_rewrite_selector(template[index:end + 1], model_label))
            matchers += template[index:end + 1].count("$model")
            index = end + 1
            continue
        if char == "$" and template.startswith("$model", index):
            raise ValueError(f'$model is used outside a label matcher: select the model with {model_label}="$model"')
        word = _IDENT.match(template, index) if (char.isalpha() or char == "_") and (
            index == 0 or not (template[index - 1].isalnum() or template[index - 1] in "_:")) else None
        if word is None:
            out.append(char)
            index += 1
            continue
        name = word.group()
        after = _next_non_space(template, word.end())
        lowered = name.lower()
        if lowered in ("by", "on", "without", "ignoring") and after < len(template) and template[after] == "(":
            end = _closing(template, after)
            labels = [label.strip() for label in template[after + 1:end].split(",") if label.strip()]
            if lowered in ("without", "ignoring"):
                if model_label in labels:
                    raise ValueError(f"{name} ({model_label}) would merge the models")
                out.append(template[index:end + 1])
            else:
                if model_label not in labels:
                    labels.append(model_label)
                out.append(f"{name} ({', '.join(labels)})")
            index = end + 1
            continue
        if lowered in _MERGING and after < len(template) and template[after] == "(":
            raise ValueError(f"{name}() would merge the models")
        if lowered in _AGGREGATIONS:
            _check_grouped(template, name, word.end(), after)
        out.append(name)
        index = word.end()
    if matchers == 0:
        raise ValueError(f'the template does not select the model with {model_label}="$model"')
    return "".join(out)


def _check_grouped(template: str, name: str, name_end: int, after: int) -> None:
    """An aggregation must keep the models apart: ``sum by (...) (x)`` or ``sum (x) by (...)``."""
    if after >= len(template):
        return
    if template[after] != "(":
        clause = _IDENT.match(template, after)
        if clause is not None and clause.group().lower() in ("by", "without"):
            return  # its clause is rewritten (or checked) when the loop reaches it
        return  # not an aggregation call here (a metric or label named like one)
    end = _closing(template, after)
    trailing = _IDENT.match(template, _next_non_space(template, end + 1))
    if trailing is not None and trailing.group().lower() in ("by", "without"):
        return
    raise ValueError(f"{name}(...) aggregates without by (...): it would merge the models")


_MATCHER = re.compile(r'(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!=|!~|=)\s*"\$model"')


def _rewrite_selector(selector: str, model_label: str) -> str:
    """``{model="$model", ...}`` with the model's matcher over the fleet."""
    if "$model" not in selector:
        return selector

    def replace(match: re.Match[str]) -> str:
        if match.group("label") != model_label or match.group("op") != "=":
            raise ValueError(f'{match.group()} is not {model_label}="$model" (metrics.model_label is '
                             f'{model_label!r})')
        return f'{model_label}=~"{FLEET}"'

    rewritten = _MATCHER.sub(replace, selector)
    if "$model" in rewritten:
        raise ValueError(f'$model is used other than as {model_label}="$model"')
    return rewritten


def models_regex(models: Iterable[str]) -> str:
    """An RE2 alternation that matches exactly these model names (Prometheus anchors it)."""
    def escaped(name: str) -> str:
        return "".join(f"\\{c}" if c.isascii() and not c.isalnum() and c != "_" else c for c in name)

    return "|".join(escaped(name) for name in sorted(set(models)))


def render_fleet_query(template: str, models: Sequence[str], window: str, model_label: str) -> str:
    """A catalogue template for every model at once (:func:`fleet_template`), its window filled.

    Raises:
        ValueError: as :func:`fleet_template`, or when ``window`` is not a PromQL duration.
    """
    validate_window(window)
    rewritten = fleet_template(template, model_label)
    return rewritten.replace(FLEET, escape_label_value(models_regex(models))).replace("$window", window)


def fleet_refresh_query(spec: MetricSpec, models: Sequence[str], window: str, model_label: str) -> str:
    """The one query a fleet refresh sends for a metric (as :func:`~console.domain.metrics.refresh_query`).

    Raises:
        ValueError: as :func:`fleet_template`.
    """
    if not spec.counts:
        return render_fleet_query(spec.query, models, window, model_label)
    numerator = render_fleet_query(spec.numerator or "", models, window, model_label)
    denominator = render_fleet_query(spec.denominator or "", models, window, model_label)
    return (f'label_replace({numerator}, "{COUNT_PART_LABEL}", "numerator", "__name__", ".*")'
            f' or label_replace({denominator}, "{COUNT_PART_LABEL}", "denominator", "__name__", ".*")')


def discover_models(pattern: str, registered: Iterable[str], routed: Iterable[str]) -> tuple[str, ...]:
    """The registered model names that match ``pattern`` (shell-style: ``fraud-*``) and have a router backend."""
    routed_names = set(routed)
    return tuple(sorted(name for name in set(registered) if fnmatchcase(name, pattern) and name in routed_names))


BACKEND_FIELDS = ("model", "model_id")
"""The placeholders of a discovered model's backend name: the name itself, and the name with every character
but letters and digits as ``_`` (``fraud-detector-2`` -> ``fraud_detector_2``), as HAProxy backends are often named."""


def validate_discovery(pattern: str, backend: str) -> None:
    """Refuse a naming rule that can never work: an empty pattern, a backend name with no placeholder or an unknown one.

    Raises:
        ValueError: what is wrong, in one line.
    """
    if not pattern.strip():
        raise ValueError("the pattern is empty: give a shell-style pattern over model names, such as 'fraud-*'")
    fields = re.findall(r"\{([^{}]*)\}", backend)
    unknown = [name for name in fields if name not in BACKEND_FIELDS]
    if unknown:
        raise ValueError(f"backend {backend!r} has an unknown placeholder {{{unknown[0]}}}: use {{model}} or "
                         "{model_id}")
    if not fields:
        raise ValueError(f"backend {backend!r} names no model: put {{model}} or {{model_id}} in it, such as "
                         "'be_{model_id}'")


def discovered_backend(template: str, model: str) -> str:
    """The backend name a discovery rule gives ``model``."""
    model_id = "".join(c if c.isalnum() else "_" for c in model)
    return template.replace("{model_id}", model_id).replace("{model}", model)


def discover_fleet(pattern: str, backend: str, registered: Iterable[str], listed: Iterable[str],
                   configured: dict[str, str]) -> dict[str, str]:
    """Every model of the fleet and its backend: the configured ones first, then each registered model that
    matches ``pattern`` and whose backend (``backend`` filled in) the router lists, by name.

    A configured model keeps its configured backend; a matching model without a backend on the router is
    left out (it is not served through this router).
    """
    listed_names = set(listed)
    candidates = {name: discovered_backend(backend, name) for name in registered}
    routed = [name for name, named in candidates.items() if named in listed_names] + list(configured)
    found = {name: candidates[name] for name in discover_models(pattern, candidates, routed) if name not in configured}
    return {**configured, **found}


@dataclass(frozen=True)
class BreachingCell:
    """One breaching cell of a model: its version, segment and metric."""

    version: str
    segment: str
    metric: str


@dataclass(frozen=True)
class FleetIncident:
    """A model's open incident, as the fleet row shows it."""

    incident_id: str
    severity: str
    summary: str
    opened_at: str
    opened_by: str


@dataclass(frozen=True)
class FleetRow:
    """What the fleet view shows of one model.

    Attributes:
        model: the model's name.
        state: the worst verdict of its live cells (a version the router drains does not count).
        breaching: its breaching cells, in version, segment, catalogue order.
        split: each version's share of the router's traffic, in version order (``()``: not read).
        incident: its open incident (``None``: none).
        readiness: its last known readiness (``None``: not measured here; the model's ``y`` view measures it).
        acting: who holds the model's action lock now, else who opened its incident (``None``: nobody).
        problems: what could not be read for this model (a system and its one-line error).
        stable_version: the version deltas are measured against (``None``: no stable alias).
        cells: how many live cells were judged.
    """

    model: str
    state: State
    breaching: tuple[BreachingCell, ...] = ()
    split: tuple[tuple[str, float], ...] = ()
    incident: FleetIncident | None = None
    readiness: str | None = None
    acting: str | None = None
    problems: tuple[str, ...] = ()
    stable_version: str | None = None
    cells: int = 0
    acting_now: bool = False
    """Whether :attr:`acting` holds the action lock now (an action is under way), not only the incident."""

    @property
    def failing(self) -> bool:
        """Whether something could not be read for this model (its state may then be incomplete)."""
        return bool(self.problems)


_RANK = {State.BREACH: 0, State.SUSPECT: 1, State.NO_DATA: 3, State.LOW_TRAFFIC: 4, State.PASS: 5, State.INFO: 6}


def fleet_rank(row: FleetRow) -> tuple[int, int, int, int, str]:
    """The sort key of worst first: breach, suspect, unreadable, no data, low traffic, ok; then the most
    breaching cells, an open incident, someone acting; then the name."""
    rank = _RANK[row.state]
    if row.failing and rank > 1:
        rank = 2
    return (rank, -len(row.breaching), 0 if row.incident else 1, 0 if row.acting else 1, row.model)


def worst_first(rows: Iterable[FleetRow]) -> list[FleetRow]:
    """The rows, the model that most needs a responder first."""
    return sorted(rows, key=fleet_rank)


def open_incidents(incidents: Iterable[IncidentSummary]) -> dict[str, IncidentSummary]:
    """Each model's most recently opened incident that is still open (drills left out), from one listing."""
    newest: dict[str, IncidentSummary] = {}
    for incident in incidents:
        if incident.status != "open" or incident.drill:
            continue
        known = newest.get(incident.model)
        if known is None or incident.opened_at >= known.opened_at:
            newest[incident.model] = incident
    return newest


def fleet_row(snapshot: StatusSnapshot | None, model: str, incident: IncidentSummary | None = None,
              lock_holder: str | None = None, problems: Sequence[str] = (),
              readiness: str | None = None) -> FleetRow:
    """A model's fleet row from its status snapshot (``None``: nothing could be composed), judged as its overview.

    Only the live cells count (a version the router drains says nothing about now, as in
    :meth:`~console.domain.verdicts.Matrix.counts`); information-only metrics do not judge.
    """
    opened = None if incident is None else FleetIncident(incident.incident_id, incident.severity, incident.summary,
                                                         incident.opened_at, incident.opened_by.label())
    acting = lock_holder or (incident.opened_by.label() if incident is not None else None)
    if snapshot is None:
        return FleetRow(model, State.NO_DATA, incident=opened, readiness=readiness, acting=acting,
                        problems=tuple(problems), acting_now=lock_holder is not None)
    cells, seen, breaching = snapshot.matrix.live_tally()
    order = {version: version_sort_key(version) for version in {version for version, _, _ in breaching}}
    breaching.sort(key=lambda cell: (order[cell[0]], cell[1], cell[2]))
    metrics = snapshot.matrix.metrics
    shares = snapshot.router.shares()
    split = tuple((version, shares[version]) for version in sorted(shares, key=version_sort_key) if shares[version] > 0)
    return FleetRow(model, overall_state(seen) if seen else State.NO_DATA,
                    breaching=tuple(BreachingCell(version, segment, metrics[index].name)
                                    for version, segment, index in breaching),
                    split=split, incident=opened, readiness=readiness, acting=acting, problems=tuple(problems),
                    stable_version=snapshot.stable_version, cells=cells, acting_now=lock_holder is not None)


FLEET_SCHEMA = "rewind.fleet/1"
"""The schema of ``rewind status --fleet --json``."""


def fleet_document(rows: Sequence[FleetRow], evaluated_at: str, metrics_error: str | None = None,
                   journal_error: str | None = None) -> dict[str, object]:
    """The fleet as a stable JSON document: one entry per model, worst first, as the fleet view lists them.

    Args:
        rows: the fleet's rows, worst first.
        evaluated_at: when the metrics were evaluated (ISO 8601, UTC).
        metrics_error, journal_error: why a system could not be read at all.
    """
    return {
        "schema": FLEET_SCHEMA,
        "evaluated_at": evaluated_at,
        "errors": {name: error for name, error in (("metrics", metrics_error), ("journal", journal_error)) if error},
        "models": [
            {
                "model": row.model,
                "state": row.state.value,
                "stable_version": row.stable_version,
                "split": {version: round(share, 4) for version, share in row.split},
                "cells": row.cells,
                "breaching": [{"version": c.version, "segment": c.segment, "metric": c.metric}
                              for c in row.breaching],
                "incident": None if row.incident is None else {
                    "id": row.incident.incident_id, "severity": row.incident.severity,
                    "summary": row.incident.summary, "opened_at": row.incident.opened_at,
                    "opened_by": row.incident.opened_by},
                "acting": row.acting,
                "acting_now": row.acting_now,
                "problems": list(row.problems),
            }
            for row in rows
        ],
    }
