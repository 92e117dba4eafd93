"""Alertmanager's HTTP API v2: its loaded configuration (the routing tree and the receivers), and its alerts.

Alertmanager serves the configuration it runs, as YAML text, at ``/api/v2/status``;
readiness reads it to follow an alert's labels to a receiver, the same tree
Alertmanager itself follows. Receivers' settings (URLs with tokens, API keys) are
parsed but never returned: only each receiver's name and which kinds of
integration it has. ``/api/v2/alerts`` gives the alerts a webhook notification
left out (``max_alerts``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import httpx
import yaml

from console.domain.alerting import AlertRouting
from console.domain.errors import AlertingError


class Alertmanager:
    """An Alertmanager reached over HTTP.

    Args:
        url: its base URL (``http://127.0.0.1:9093``).
        timeout_s: how long to wait for an answer.
    """

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def describe(self) -> str:
        """Where it is."""
        return f"Alertmanager at {self.url}"

    def _get(self, path: str, params: list[tuple[str, str]] | None = None) -> httpx.Response:
        """A 200 answer to ``GET path``, else AlertingError."""
        try:
            answer = httpx.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise AlertingError(f"{self.describe()}: unreachable ({exc.__class__.__name__}, alerts.alertmanager_url)"
                                ) from None
        if answer.status_code != 200:
            raise AlertingError(f"{self.describe()}: HTTP {answer.status_code} from {path}")
        return answer

    def routing(self) -> AlertRouting:
        """The routing tree and receivers it runs now.

        Raises:
            AlertingError: it is unreachable, or its answer is not a configuration.
        """
        answer = self._get("/api/v2/status")
        try:
            original = answer.json()["config"]["original"]
            config = yaml.safe_load(original)
        except (ValueError, KeyError, TypeError, yaml.YAMLError):
            raise AlertingError(f"{self.describe()}: /api/v2/status holds no readable configuration") from None
        if not isinstance(config, dict) or not isinstance(config.get("route"), dict):
            raise AlertingError(f"{self.describe()}: its configuration has no route")
        # Each receiver's name and how many integrations of each kind: their settings hold the secrets.
        receivers = tuple(
            {"name": r.get("name"),
             **{kind: len(v) for kind, v in r.items() if kind.endswith("_configs") and isinstance(v, list)}}
            for r in config.get("receivers") or [] if isinstance(r, dict)
        )
        return AlertRouting(config["route"], receivers)

    def alerts(self, labels: Mapping[str, str], receiver: str | None = None) -> list[object]:
        """The active alerts (neither silenced nor inhibited) whose labels include ``labels``, as the API gives
        them (``receiver``: only those routed to it).

        Raises:
            AlertingError: it is unreachable, or its answer is not a list of alerts.
        """
        params: list[tuple[str, str]] = [("filter", f"{name}={json.dumps(value)}") for name, value in labels.items()]
        params += [("active", "true"), ("silenced", "false"), ("inhibited", "false")]
        if receiver:
            params.append(("receiver", f"^{re.escape(receiver)}$"))
        answer = self._get("/api/v2/alerts", params)
        try:
            found = answer.json()
        except ValueError:
            found = None
        if not isinstance(found, list):
            raise AlertingError(f"{self.describe()}: /api/v2/alerts did not answer a list of alerts")
        return found
