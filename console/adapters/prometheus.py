"""The metric catalogue evaluated on Prometheus through prometheus-api-client.

One instant query per catalogue metric per refresh, whatever the number of
versions and segments, every query pinned to the same evaluation time so the
numbers on screen belong together. The queries of one refresh run side by side.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from console.domain.errors import ConfigError, MetricsError
from console.domain.metrics import MetricSpec, QueryResult, collect_series, render_query


def read_secret(env_name: str | None, file_name: str | None, setting: str) -> str | None:
    """A secret from the named environment variable or file, never from the config itself.

    Raises:
        ConfigError: when the named variable is unset or the file cannot be read.
    """
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise ConfigError(f"{setting}_env names {env_name}, which is not set")
        return value.strip()
    if file_name:
        try:
            return Path(file_name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{setting}_file {file_name}: cannot be read ({exc.strerror})") from None
    return None


class PrometheusMetrics:
    """A :class:`~console.adapters.protocols.MetricsSource` on Prometheus."""

    def __init__(self, url: str, window: str, version_label: str = "version", segment_label: str = "segment",
                 timeout_s: float = 5.0, bearer_token: str | None = None,
                 basic_auth: tuple[str, str] | None = None, max_parallel: int = 6) -> None:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url
        self.window = window
        self.version_label = version_label
        self.segment_label = segment_label
        self.timeout_s = timeout_s
        self.max_parallel = max_parallel
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None
        self._prom = PrometheusConnect(
            url=url,
            headers=headers,
            auth=basic_auth,
            retry=Retry(total=0, connect=0, read=0),
            timeout=timeout_s,
        )
        self._pool: ThreadPoolExecutor | None = None

    def describe(self) -> str:
        """Where the metrics come from (the URL never carries credentials here)."""
        return f"Prometheus at {self.url}"

    def close(self) -> None:
        """Release the HTTP session and the query threads."""
        self._prom.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def _query(self, spec: MetricSpec, model: str, at: float) -> QueryResult:
        promql = render_query(spec.query, model, self.window)
        import requests
        from prometheus_api_client import PrometheusApiClientException

        try:
            series = self._prom.custom_query(promql, params={"time": f"{at:.3f}"})
        except requests.exceptions.ConnectionError:
            raise MetricsError(f"{self.describe()}: unreachable (metrics.url)") from None
        except requests.exceptions.Timeout:
            raise MetricsError(f"{self.describe()}: no answer within {self.timeout_s:g}s (metrics.timeout_s)") from None
        except requests.exceptions.RequestException as exc:
            raise MetricsError(f"{self.describe()}: {exc.__class__.__name__}") from None
        except PrometheusApiClientException as exc:
            text = str(exc)
            if "401" in text[:40] or "403" in text[:40]:
                raise MetricsError(f"{self.describe()}: refused the credentials (metrics.auth)") from None
            return QueryResult(spec.name, promql, at, error=_prometheus_error(text))
        except ValueError as exc:  # a 200 whose body is not Prometheus JSON
            raise MetricsError(f"{self.describe()}: answered with something that is not Prometheus JSON ({exc})") from None
        raw, unplaced = collect_series(series, self.version_label, self.segment_label)
        error = None
        if unplaced and not raw:
            error = (
                f"{unplaced} series lack the {self.version_label!r} or {self.segment_label!r} label "
                "(metrics.version_label / segment_label)"
            )
        return QueryResult(spec.name, promql, at, raw=raw, error=error)

    def evaluate(self, specs: tuple[MetricSpec, ...], model: str, at: float | None = None) -> dict[str, QueryResult]:
        """Evaluate every catalogue metric once, all at the same instant.

        Returns:
            One result per metric; a query Prometheus rejects becomes a result
            with an error (its cells show *no data*), not an exception.

        Raises:
            MetricsError: when Prometheus cannot be reached at all.
        """
        at = time.time() if at is None else at
        if len(specs) <= 1 or self.max_parallel <= 1:
            return {spec.name: self._query(spec, model, at) for spec in specs}
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="promql")
        futures = [self._pool.submit(self._query, spec, model, at) for spec in specs]
        results = [f.result() for f in futures]
        return {r.metric: r for r in results}


def _prometheus_error(text: str) -> str:
    """Prometheus's own error message out of the client's exception text."""
    import json
    import re

    match = re.search(r"\(b'(.*)'\)$", text, re.S)
    if match:
        try:
            body = json.loads(match.group(1).encode().decode("unicode_escape"))
            return f"{body.get('errorType', 'error')}: {body.get('error', '')}"[:300]
        except ValueError:
            pass
    return text[:300]
