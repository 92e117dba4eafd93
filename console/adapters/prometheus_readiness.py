"""What readiness asks Prometheus beyond the catalogue: how fresh a model's series are, its alerting rules,
and whether it sends alerts to an Alertmanager.

Reads through the catalogue's :class:`~console.adapters.prometheus.PrometheusMetrics` (one session, the
same credentials and timeouts).
"""

from __future__ import annotations

import time

from console.adapters.prometheus import PrometheusMetrics
from console.domain.alerting import AlertRule
from console.domain.errors import MetricsError
from console.domain.metrics import parse_sample_value


class PrometheusReadiness:
    """Freshness, alerting rules and alert delivery, as one Prometheus reports them.

    Args:
        metrics: the catalogue's Prometheus.
        freshness_series: one series every serving version updates in every segment (``$model`` is replaced
            by the model's name); ``None``: sample ages are not read.
    """

    def __init__(self, metrics: PrometheusMetrics, freshness_series: str | None = None) -> None:
        self.metrics = metrics
        self.freshness_series = freshness_series

    def describe(self) -> str:
        """Where it is."""
        return self.metrics.describe()

    def _data(self, endpoint: str, params: dict[str, str], what: str) -> dict:
        status, content = self.metrics._get(endpoint, params)
        data, error = self.metrics._answer_data(status, content)
        if error is not None:
            raise MetricsError(f"{self.describe()}: {error} ({what})")
        return data

    def newest_samples(self, model: str) -> tuple[float, dict[tuple[str, str], float]] | None:
        """When Prometheus was asked, and the newest sample's time of every (version, segment) of ``model``;
        ``None`` when no freshness series is configured.

        A series whose target went away is marked stale by Prometheus at once, so it is absent here.
        ``timestamp()`` reads the samples' own times only when given a selector, and drops the metric's
        name: hence one series, not every series of the model.
        """
        if self.freshness_series is None:
            return None
        quoted = model.replace("\\", "\\\\").replace('"', '\\"')
        selector = self.freshness_series.replace("$model", quoted)
        version, segment = self.metrics.version_label, self.metrics.segment_label
        at = time.time()
        promql = f"max by ({version}, {segment}) (timestamp({selector}))"
        data = self._data("query", {"query": promql, "time": f"{at:.3f}"}, f"query {promql[:120]}")
        newest: dict[tuple[str, str], float] = {}
        for sample in data.get("result") or []:
            labels = sample.get("metric", {})
            value = parse_sample_value(sample.get("value", [0, "NaN"])[1])
            if value is not None and labels.get(version):
                newest[(labels[version], labels.get(segment, ""))] = value
        return at, newest

    def alert_rules(self) -> list[AlertRule]:
        """Every alerting rule Prometheus has loaded."""
        data = self._data("rules", {"type": "alert"}, "its alerting rules")
        rules: list[AlertRule] = []
        for group in data.get("groups") or []:
            for rule in group.get("rules") or []:
                if rule.get("type", "alerting") != "alerting":
                    continue
                rules.append(AlertRule(
                    name=str(rule.get("name", "")), query=str(rule.get("query", "")),
                    labels={str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
                    annotations={str(k): str(v) for k, v in (rule.get("annotations") or {}).items()},
                    group=str(group.get("name", "")), file=str(group.get("file", "")),
                ))
        return rules

    def alertmanagers(self) -> list[str]:
        """The Alertmanagers Prometheus sends its alerts to now (their API URLs).

        Raises:
            MetricsError: unreachable, or a store that does not serve the endpoint (VictoriaMetrics sends
                no alerts itself: vmalert does, and its notifiers are not on this API), said so.
        """
        status, content = self.metrics._get("alertmanagers", {})
        if status in (400, 404) and not content.lstrip().startswith(b"{"):
            raise MetricsError(f"{self.describe()}: does not serve /api/v1/alertmanagers, so where it sends "
                               "alerts cannot be read (VictoriaMetrics: vmalert sends them)")
        data, error = self.metrics._answer_data(status, content)
        if error is not None:
            raise MetricsError(f"{self.describe()}: {error} (where it sends alerts)")
        return [str(a.get("url", "")) for a in data.get("activeAlertmanagers") or []]
