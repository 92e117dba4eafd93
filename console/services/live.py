"""The live console's reads: each system on its own, timed and classified, then composed.

``rewind status`` reads the three systems together and fails as a whole; the
console cannot: a slow or broken system must delay or grey out its own panel
only. :class:`LiveStatus` reads the registry, the router and the metrics one at
a time (the console runs each read in its own worker), turns each outcome into
a :class:`Reading` with a :class:`Health`, and composes the last good readings
into the same :class:`~console.domain.status.StatusSnapshot` ``rewind status``
shows, with the same judge.

:class:`HealthWatch` remembers each system's last health so that a change of
state (Prometheus went down, came back) is said once, not at every refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from console.adapters.protocols import MetricsSource, Registry, Router
from console.domain.errors import RewindError
from console.domain.metrics import MetricSpec, QueryResult
from console.domain.routing import RouterState
from console.domain.status import StatusSnapshot, drained_versions, shown_versions
from console.domain.verdicts import MatrixInput, build_matrices
from console.domain.versions import AliasMap, ModelVersion, version_sort_key
from console.services.features import FeatureEvidence, FeatureRead, FeatureReading

T = TypeVar("T")

SYSTEMS = ("registry", "router", "metrics")
"""The systems the console reads, in the order its header shows them."""


class Health(StrEnum):
    """How a system answered its last read."""

    CONNECTING = "connecting"
    OK = "ok"
    SLOW = "slow"
    UNREACHABLE = "unreachable"
    GARBAGE = "garbage"
    FAILING = "failing"

    @property
    def usable(self) -> bool:
        """Whether the reading carries a value (a slow answer is still an answer)."""
        return self in (Health.OK, Health.SLOW)


_UNREACHABLE = ("unreachable", "connection refused", "does not exist", "no answer within", "no database at",
                "permission denied", "timed out")
_GARBAGE = ("not json", "unexpected answer", "not a success", "not an instant vector", "not a matrix",
            "cannot be decoded", "malformed")


def classify(error: RewindError) -> Health:
    """The health an adapter's error means: unreachable, garbage (an answer that makes no sense), or failing."""
    text = str(error).lower()
    if any(word in text for word in _UNREACHABLE):
        return Health.UNREACHABLE
    if any(word in text for word in _GARBAGE):
        return Health.GARBAGE
    return Health.FAILING


@dataclass(frozen=True)
class Reading(Generic[T]):
    """One system's answer to one read.

    Attributes:
        system: ``registry``, ``router`` or ``metrics``.
        health: how it answered.
        value: what it said (``None`` unless :attr:`Health.usable`).
        error: the one-line error of a failed read.
        took_s: how long the read took.
        at: when the read started (epoch seconds).
    """

    system: str
    health: Health
    value: T | None
    error: str | None
    took_s: float
    at: float


def connecting(system: str) -> Reading[None]:
    """The placeholder reading of a system not heard from yet."""
    return Reading(system, Health.CONNECTING, None, None, 0.0, 0.0)


class LiveStatus:
    """Reads each system separately and composes the latest good readings into a snapshot.

    Args:
        registry, router, metrics: the adapters (protocols).
        catalogue: the metric catalogue, in display order.
        traffic_metric: the catalogue metric that measures a cell's traffic.
        stable_alias: the alias deltas are measured against.
        slow_after_s: a read that takes longer than this is ``slow``.
        clock: the wall clock (tests freeze it).
    """

    def __init__(self, registry: Registry, router: Router, metrics: MetricsSource,
                 catalogue: tuple[MetricSpec, ...], traffic_metric: str | None, stable_alias: str = "champion",
                 slow_after_s: float = 2.0, clock: Callable[[], float] = time.time,
                 features: FeatureEvidence | None = None) -> None:
        self.registry = registry
        self.features = features
        self.router = router
        self.metrics = metrics
        self.catalogue = catalogue
        self.traffic_metric = traffic_metric
        self.stable_alias = stable_alias
        self.slow_after_s = slow_after_s
        self.clock = clock

    def _read(self, system: str, call: Callable[[], T]) -> Reading[T]:
        at = self.clock()
        started = time.perf_counter()
        try:
            value = call()
        except RewindError as exc:
            return Reading(system, classify(exc), None, str(exc), time.perf_counter() - started, at)
        took = time.perf_counter() - started
        return Reading(system, Health.SLOW if took > self.slow_after_s else Health.OK, value, None, took, at)

    def read_registry(self, model: str) -> Reading[list[ModelVersion]]:
        """The model's versions and aliases."""
        return self._read("registry", lambda: self.registry.list_versions(model))

    def read_router(self, model: str) -> Reading[RouterState]:
        """The model's router servers and weights."""
        return self._read("router", lambda: self.router.read_state(model))

    def read_metrics(self, model: str) -> Reading[dict[str, QueryResult]]:
        """Every catalogue metric, one query each, pinned to one evaluation time."""
        at = self.clock()
        return self._read("metrics", lambda: self.metrics.evaluate(self.catalogue, model, at))

    def read_features(self, model: str) -> FeatureRead:
        """What the servers report of their features (bindings, input health); empty without telemetry.

        A failure is part of the result (its third item), never raised: the features only explain.
        """
        if self.features is None:
            return (), (), None
        return self.features.read(model)

    def diagnose(self, snapshot: StatusSnapshot, read: FeatureRead | None) -> FeatureReading | None:
        """The diagnosis of a composed snapshot from the last feature read (``None`` before the first)."""
        if self.features is None or read is None:
            return None
        return self.features.reading(snapshot, read)

    def compose(self, model: str, versions: list[ModelVersion] | None, router: RouterState | None,
                results: dict[str, QueryResult], evaluated_at: float) -> StatusSnapshot:
        """The snapshot of the latest readings, judged as ``rewind status`` judges (:func:`compose`)."""
        return compose(model, versions, router, results, evaluated_at, self.catalogue, self.traffic_metric,
                       self.stable_alias)


def compose(model: str, versions: list[ModelVersion] | None, router: RouterState | None,
            results: dict[str, QueryResult], evaluated_at: float, catalogue: tuple[MetricSpec, ...],
            traffic_metric: str | None, stable_alias: str) -> StatusSnapshot:
    """Judge the metrics against the registry's aliases and the router's weights: the one status snapshot.

    ``rewind status`` and the console both build their snapshot here. A registry or
    router not heard from yet counts as empty: no aliases (so no baseline) or no
    weights; the matrix still shows every version with traffic.
    """
    return compose_all([(model, versions, router, results)], evaluated_at, catalogue, traffic_metric,
                       stable_alias)[0]


def compose_all(readings: Sequence[tuple[str, list[ModelVersion] | None, RouterState | None,
                                         dict[str, QueryResult]]],
                evaluated_at: float, catalogue: tuple[MetricSpec, ...], traffic_metric: str | None,
                stable_alias: str) -> list[StatusSnapshot]:
    """:func:`compose` for several models (a fleet) at once: their matrices judged together
    (:func:`~console.domain.verdicts.build_matrices`), each the snapshot :func:`compose` gives it."""
    inputs, parts = [], []
    for model, versions, router, results in readings:
        known_versions = list(versions or [])
        router_state = router or RouterState("", ())
        aliases = AliasMap.of_versions(model, known_versions)
        weights = router_state.weights()
        with_data = versions_with_traffic(results, traffic_metric)
        every = {v.version for v in known_versions} | set(weights) | with_data
        shown = shown_versions(sorted(every, key=version_sort_key), aliases, weights, with_data)
        inputs.append(MatrixInput(results, shown, aliases.version_of(stable_alias),
                                  drained=drained_versions(router_state)))
        parts.append((model, aliases, known_versions, router_state))
    matrices = build_matrices(catalogue, inputs, traffic_metric)
    return [StatusSnapshot(model=model, stable_alias=stable_alias, aliases=aliases, versions=tuple(known_versions),
                           router=router_state, matrix=matrix, evaluated_at=evaluated_at)
            for (model, aliases, known_versions, router_state), matrix in zip(parts, matrices, strict=True)]


def versions_with_traffic(results: dict[str, QueryResult], traffic_metric: str | None) -> set[str]:
    """Versions that served traffic (any sample at all when no traffic metric is configured)."""
    traffic = results.get(traffic_metric) if traffic_metric else None
    if traffic is None or traffic.error:
        return {key[0] for result in results.values() for key in result.raw}
    if traffic.columns is not None:  # a refresh's columns: no mapping made for it
        return traffic.columns.versions_above(0.0)
    return {key[0] for key, value in traffic.values.items() if value is not None and value > 0.0}


class HealthWatch:
    """Each system's last health, to say a change of state once."""

    def __init__(self) -> None:
        self._last: dict[str, Health] = {}

    def change(self, reading: Reading[object]) -> str | None:
        """A sentence when ``reading`` changes its system's health (the first reading only when it is bad)."""
        before = self._last.get(reading.system)
        now = reading.health
        self._last[reading.system] = now
        # Slow and ok are both answers: flapping between them is not worth a line in the journal.
        if before is None:
            return None if now.usable else f"{reading.system} is {now.value}: {reading.error}"
        if before == now or (before.usable and now.usable):
            return None
        if now.usable:
            return f"{reading.system} is back ({now.value}) after being {before.value}"
        return f"{reading.system} is {now.value}: {reading.error}"
