"""A model's status at one instant: aliases, router weights and the verdict matrix.

:func:`status_document` is the stable, documented JSON shape of ``rewind status
--json`` (schema ``rewind.status/1``); scripts rely on it, so fields are only
ever added, never renamed or removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from console.domain.features import Diagnosis
from console.domain.metrics import criterion_document
from console.domain.routing import RouterState
from console.domain.verdicts import WORD, Matrix, State, Verdict
from console.domain.versions import AliasMap, ModelVersion, version_sort_key

STATUS_SCHEMA = "rewind.status/1"


@dataclass(frozen=True)
class StatusSnapshot:
    """Everything ``rewind status`` shows for one model."""

    model: str
    stable_alias: str
    aliases: AliasMap
    versions: tuple[ModelVersion, ...]
    router: RouterState
    matrix: Matrix
    evaluated_at: float
    diagnosis: Diagnosis | None = None
    """The likely cause of the breaches (model, world, feature, not sure); ``None`` without breaches."""
    diagnosis_problem: str | None = None
    """Why the feature evidence could not be read, when it could not."""

    @property
    def stable_version(self) -> str | None:
        """The version deltas are measured against (the stable alias's version)."""
        return self.aliases.version_of(self.stable_alias)


FALLBACK_ALIAS = "fallback"
"""The registry alias of a model's fallback version: served by the router's backup server only when no primary can."""


def shown_versions(
    versions: list[str], aliases: AliasMap, weights: dict[str, int], with_data: set[str]
) -> list[str]:
    """The versions worth a row: aliased, weighted above zero, or seen in the metrics.

    A version whose only alias is the fallback's is shown once it serves (it then has data):
    idle, its rows would be nothing but *no data*.
    """
    keep = {
        v for v in versions
        if set(aliases.aliases_of(v)) - {FALLBACK_ALIAS} or weights.get(v, 0) > 0 or v in with_data
    }
    return sorted(keep, key=version_sort_key)


DRAINING_ADMIN_STATES = ("drain", "maint")
"""Router admin states in which a server takes no new traffic, by an operator's choice (not a failure)."""


def drained_versions(router: RouterState) -> frozenset[str]:
    """The versions the router sends no traffic now by choice: weight 0, or set to drain or maintenance.

    A server that is down but still weighted is not drained: it is failing, and its cells must keep counting.
    A router not heard from (no servers) drains nothing.
    """
    return frozenset(s.version for s in router.servers
                     if s.version is not None and (s.weight == 0 or s.admin_state in DRAINING_ADMIN_STATES))


def _json_number(value: float | None) -> float | str | None:
    """JSON has no infinity: an infinite value is written as the string ``"+Inf"``/``"-Inf"``."""
    if value is None or math.isfinite(value):
        return value
    return "+Inf" if value > 0 else "-Inf"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _cell_evidence(verdict: Verdict) -> dict[str, object]:
    """What a cell's verdict rests on besides its value: a ratio's counts and interval, persistence's tally."""
    extra: dict[str, object] = {}
    if verdict.counts is not None:
        extra["numerator"] = round(verdict.counts.numerator, 3)
        extra["denominator"] = round(verdict.counts.denominator, 3)
    if verdict.interval is not None:
        extra["interval"] = [round(verdict.interval[0], 6), round(verdict.interval[1], 6)]
    if verdict.over_in is not None:
        extra["evaluations_over"], extra["evaluations"] = verdict.over_in
    return extra


def status_document(snapshot: StatusSnapshot) -> dict[str, object]:
    """The JSON document of ``rewind status --json`` (schema ``rewind.status/1``)."""
    matrix = snapshot.matrix
    shares = snapshot.router.shares()
    by_version = {v.version: v for v in snapshot.versions}
    router_versions = {s.version for s in snapshot.router.servers if s.version}
    all_versions = sorted(set(by_version) | router_versions, key=version_sort_key)
    versions = []
    for version in all_versions:
        info = by_version.get(version)
        server = snapshot.router.server_for(version)
        versions.append(
            {
                "version": version,
                "aliases": list(snapshot.aliases.aliases_of(version)),
                "in_registry": info is not None,
                "run_id": info.run_id if info else None,
                "created_at": info.created_at.isoformat() if info and info.created_at else None,
                "tags": dict(info.tags) if info else {},
                "router": None if server is None else {
                    "server": server.server,
                    "weight": server.weight,
                    "share": round(shares.get(version, 0.0), 6),
                    "operational": server.operational,
                    "admin_state": server.admin_state,
                    "endpoints": server.endpoints,
                },
                "state": matrix.version_state(version).value if version in matrix.versions else None,
                "drained": version in matrix.drained,
            }
        )
    metrics = []
    for spec in matrix.metrics:
        result = matrix.results.get(spec.name)
        metrics.append(
            {
                "name": spec.name,
                "title": spec.title,
                "unit": spec.unit.value,
                "direction": spec.direction.value,
                "query": result.promql if result else None,
                "evaluated_at": _iso(result.evaluated_at) if result else None,
                "error": result.error if result else "not queried",
                "kind": spec.kind.value,
                "criteria": criterion_document(spec),
            }
        )
    cells = [
        {
            "version": v.version,
            "segment": v.segment,
            "metric": v.metric,
            "value": _json_number(v.value),
            "raw": (matrix.results[v.metric].raw.get((v.version, v.segment))
                    if v.metric in matrix.results else None),
            "baseline": _json_number(v.baseline),
            "state": v.state.value,
            "reason": v.reason,
            "drained": v.version in matrix.drained,
            **_cell_evidence(v),
        }
        for v in matrix.ordered()
    ]
    counts = {state.value: n for state, n in matrix.counts().items()}
    overall = (
        State.BREACH if counts["breach"] else State.PASS if counts["pass"] else State.NO_DATA
    )
    return {
        "schema": STATUS_SCHEMA,
        "model": snapshot.model,
        "evaluated_at": _iso(snapshot.evaluated_at),
        "stable_alias": snapshot.stable_alias,
        "stable_version": snapshot.stable_version,
        "aliases": dict(sorted(snapshot.aliases.aliases.items())),
        # Who else last wrote the weights (Kubernetes' managedFields; empty elsewhere): added in 18.
        "router": {"backend": snapshot.router.backend, "also_written_by": list(snapshot.router.also_written_by)},
        "versions": versions,
        "segments": list(matrix.segments),
        "shown_versions": list(matrix.versions),
        "metrics": metrics,
        "cells": cells,
        # The counts and the state are the versions that take traffic now; a drained version's cells show
        # what it served before it was drained (``drained`` on its version and cells).
        "summary": {"state": overall.value, "word": WORD[overall], "counts": counts,
                    "drained": sorted(matrix.drained, key=version_sort_key)},
        # The likely cause of the breaches: null without breaches (schema rewind.status/1, added in 16).
        "diagnosis": snapshot.diagnosis.to_dict() if snapshot.diagnosis is not None else None,
        "diagnosis_problem": snapshot.diagnosis_problem,
    }
