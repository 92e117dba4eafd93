"""The fleet use case: every model's state on one screen, for the same number of queries as one model.

:class:`FleetStatus` reads the whole fleet in one refresh: the metrics with one
query per catalogue metric for every model at once
(:meth:`~console.adapters.prometheus.PrometheusMetrics.evaluate_fleet`), each
model's registry versions and router weights side by side, and the journal once
(every incident, every action lock). Each model is then composed and judged as its
own overview judges it (:func:`console.services.live.compose_all`: every model's matrix
judged in one call per metric) and summed up in a
:class:`~console.domain.fleet.FleetRow`, worst first. A system that fails for one
model greys out that model's row only; Prometheus unreachable greys out every row.

Readiness is not measured here: a measurement loads the previous version's
artifacts (seconds per model), so the row shows it as not measured and the model's
readiness view (``y``) measures it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from console.adapters.protocols import BackendListing, FleetMetricsSource
from console.domain.errors import ConfigError, RewindError
from console.domain.fleet import FleetRow, discover_fleet, fleet_row, open_incidents, worst_first
from console.domain.incident import IncidentSummary
from console.domain.metrics import MetricSpec, QueryResult
from console.services.live import compose_all

if TYPE_CHECKING:
    from console.adapters.protocols import ActionLock, MetricsSource, Registry, Router
    from console.services.journal import JournalService

T = TypeVar("T")


@dataclass(frozen=True)
class FleetSnapshot:
    """One fleet refresh.

    Attributes:
        rows: one per model, worst first.
        evaluated_at: the metrics' evaluation time (every model's the same).
        metrics_error: why the metrics could not be read at all (every row then has no data).
        journal_error: why the incidents and locks could not be read.
        took_s: how long the refresh took.
    """

    rows: tuple[FleetRow, ...]
    evaluated_at: float
    metrics_error: str | None = None
    journal_error: str | None = None
    took_s: float = 0.0


def evaluate_fleet(metrics: MetricsSource, specs: tuple[MetricSpec, ...], models: Sequence[str],
                   at: float) -> dict[str, dict[str, QueryResult]]:
    """Every model's results: one query per metric for the whole fleet when the source can (Prometheus can);
    a source that knows only one model at a time (a test's fake) is asked model by model."""
    if isinstance(metrics, FleetMetricsSource):
        return metrics.evaluate_fleet(specs, models, at)
    return {model: metrics.evaluate(specs, model, at) for model in models}


def discover_backends(registry: Registry, router: Router, pattern: str, backend: str,
                      configured: Mapping[str, str]) -> dict[str, str]:
    """The fleet's models and their backends: ``configured``, then the registered models that match ``pattern``
    and whose backend (``backend`` filled in) the router lists (``fleet.discover``).

    Raises:
        ConfigError: the router cannot list its backends, or the rule finds no model at all.
        RewindError: the registry or the router could not be read (their own one-line errors, prefixed).
    """
    if not isinstance(router, BackendListing):
        raise ConfigError(f"fleet.discover: {router.describe()} cannot list its backends; "
                          "list the models in router.backends instead")
    try:
        registered = registry.list_models()
        listed = router.list_backends()
    except RewindError as exc:
        raise type(exc)(f"fleet.discover: {exc}") from None
    found = discover_fleet(pattern, backend, registered, listed, dict(configured))
    if not found:
        raise ConfigError(f"fleet.discover: no model registered in {registry.describe()} matches {pattern!r} "
                          f"with a backend {backend!r} on {router.describe()}")
    return found


class FleetStatus:
    """Reads and judges every model of the fleet in one refresh.

    Args:
        registry, router, metrics: the adapters (protocols).
        catalogue: the metric catalogue.
        traffic_metric: the catalogue metric that measures a cell's traffic.
        stable_alias: the alias deltas are measured against.
        journal: the journal service (open incidents); ``None``: not shown.
        lock: the action lock (who is acting); ``None``: not shown.
        clock: the wall clock (tests freeze it).
        max_parallel: registry and router reads at once.
    """

    def __init__(self, registry: Registry, router: Router, metrics: MetricsSource,
                 catalogue: tuple[MetricSpec, ...], traffic_metric: str | None, stable_alias: str = "champion",
                 journal: JournalService | None = None, lock: ActionLock | None = None,
                 clock: Callable[[], float] = time.time, max_parallel: int = 4) -> None:
        self.registry = registry
        self.router = router
        self.metrics = metrics
        self.catalogue = catalogue
        self.traffic_metric = traffic_metric
        self.stable_alias = stable_alias
        self.journal = journal
        self.lock = lock
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max(2, max_parallel), thread_name_prefix="fleet")

    def read(self, models: Sequence[str]) -> FleetSnapshot:
        """Read every system once for the whole fleet and judge each model; never raises for a failing system."""
        started = time.perf_counter()
        at = self.clock()
        metrics = self._pool.submit(evaluate_fleet, self.metrics, self.catalogue, models, at)
        versions = {model: self._pool.submit(self.registry.list_versions, model) for model in models}
        routers = {model: self._pool.submit(self.router.read_state, model) for model in models}
        incidents, holders, journal_error = self._journal()
        results, metrics_error = _outcome(metrics)
        readings, problems = [], {}
        for model in models:
            model_versions, registry_error = _outcome(versions[model])
            router_state, router_error = _outcome(routers[model])
            problems[model] = [f"{system}: {error}" for system, error in (
                ("metrics", metrics_error), ("registry", registry_error), ("router", router_error)) if error]
            if results is not None and model in results:
                readings.append((model, model_versions, router_state, results[model]))
        # Every model's matrix judged together: one judge call per metric for the whole fleet.
        snapshots = {snapshot.model: snapshot for snapshot in compose_all(
            readings, at, self.catalogue, self.traffic_metric, self.stable_alias)}
        rows = [fleet_row(snapshots.get(model), model, incidents.get(model), holders.get(model), problems[model])
                for model in models]
        return FleetSnapshot(tuple(worst_first(rows)), at, metrics_error, journal_error,
                             time.perf_counter() - started)

    def _journal(self) -> tuple[dict[str, IncidentSummary], dict[str, str], str | None]:
        """Every model's open incident and lock holder, from one listing of each."""
        incidents: dict[str, IncidentSummary] = {}
        holders: dict[str, str] = {}
        try:
            if self.journal is not None:
                incidents = open_incidents(self.journal.incidents())
            if self.lock is not None:
                holders = {model: holder for model, _, holder in self.lock.held()}
        except RewindError as exc:
            return incidents, holders, str(exc)
        return incidents, holders, None

    def close(self) -> None:
        """Stop the reading threads."""
        self._pool.shutdown(wait=False)


def _outcome(future: Future[T]) -> tuple[T, None] | tuple[None, str]:
    try:
        return future.result(), None
    except RewindError as exc:
        return None, str(exc)
