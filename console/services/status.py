"""The status use case: aliases, router weights and judged metrics for one model."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from console.adapters.protocols import MetricsSource, Registry, Router
from console.domain.errors import RewindError
from console.domain.metrics import MetricSpec
from console.domain.status import StatusSnapshot
from console.services.features import FeatureEvidence
from console.services.live import compose

T = TypeVar("T")


class StatusService:
    """Builds a :class:`StatusSnapshot` from the registry, the router and the metrics."""

    def __init__(self, registry: Registry, router: Router, metrics: MetricsSource,
                 catalogue: tuple[MetricSpec, ...], traffic_metric: str | None,
                 stable_alias: str = "champion", features: FeatureEvidence | None = None) -> None:
        self.registry = registry
        self.router = router
        self.metrics = metrics
        self.catalogue = catalogue
        self.traffic_metric = traffic_metric
        self.stable_alias = stable_alias
        self.features = features
        self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="status")

    def snapshot(self, model: str) -> StatusSnapshot:
        """Read all three systems side by side and judge every cell.

        Raises:
            RewindError: the first failure of each failing system, joined in one line.
        """
        at = time.time()
        registry = self._pool.submit(self.registry.list_versions, model)
        router = self._pool.submit(self.router.read_state, model)
        metrics = self._pool.submit(self.metrics.evaluate, self.catalogue, model, at)
        failures: list[RewindError] = []

        def outcome(future: Future[T]) -> T | None:
            try:
                return future.result()
            except RewindError as exc:
                failures.append(exc)
                return None

        versions, router_state, results = outcome(registry), outcome(router), outcome(metrics)
        if failures or versions is None or router_state is None or results is None:
            if len(failures) == 1:
                raise failures[0]
            error = type(failures[0])("; ".join(str(f) for f in failures))
            raise error
        snapshot = compose(model, versions, router_state, results, at, self.catalogue, self.traffic_metric,
                           self.stable_alias)
        # The features explain breaches: without one there is nothing to diagnose, and nothing more to read.
        if self.features is None or not snapshot.matrix.breaches():
            return snapshot
        return self.features.diagnosed(snapshot)

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False)
