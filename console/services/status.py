"""The status use case: aliases, router weights and judged metrics for one model."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from console.adapters.protocols import MetricsSource, Registry, Router
from console.domain.errors import RewindError
from console.domain.metrics import MetricSpec
from console.domain.status import StatusSnapshot, shown_versions
from console.domain.verdicts import build_matrix
from console.domain.versions import AliasMap
from console.services.live import versions_with_traffic

T = TypeVar("T")


class StatusService:
    """Builds a :class:`StatusSnapshot` from the registry, the router and the metrics."""

    def __init__(self, registry: Registry, router: Router, metrics: MetricsSource,
                 catalogue: tuple[MetricSpec, ...], traffic_metric: str | None,
                 stable_alias: str = "champion") -> None:
        self.registry = registry
        self.router = router
        self.metrics = metrics
        self.catalogue = catalogue
        self.traffic_metric = traffic_metric
        self.stable_alias = stable_alias
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
        aliases = AliasMap.of_versions(model, versions)
        weights = router_state.weights()
        with_data = versions_with_traffic(results, self.traffic_metric)
        all_versions = sorted({v.version for v in versions} | set(weights), key=int)
        shown = shown_versions(all_versions, aliases, weights, with_data)
        matrix = build_matrix(
            self.catalogue, results, shown, aliases.version_of(self.stable_alias), self.traffic_metric
        )
        return StatusSnapshot(
            model=model,
            stable_alias=self.stable_alias,
            aliases=aliases,
            versions=tuple(versions),
            router=router_state,
            matrix=matrix,
            evaluated_at=at,
        )

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False)
