"""Alerts as Prometheus and Alertmanager describe them: alerting rules, and Alertmanager's routing tree.

Pure: the adapters read ``/api/v1/rules`` and Alertmanager's configuration; this
module says which rules cover a model's metrics and which receivers an alert with
given labels reaches, following Alertmanager's routing (depth first, the first
matching child wins unless it says ``continue``; a route no child of which matches
keeps the alert itself).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

METRIC_LABEL = "rewind_metric"
"""The label an alerting rule carries to say which catalogue metric it watches."""
MODEL_LABEL = "model"
"""The label that names the model an alert is about."""


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule as Prometheus has loaded it.

    Attributes:
        name: the alert's name.
        query: its PromQL expression.
        labels: the labels it adds to its alerts.
        annotations: its annotations (``rewind_playbook``, ``runbook_url``...).
        group: the rule group it belongs to.
        file: the rules file it was loaded from.
    """

    name: str
    query: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str = ""
    file: str = ""

    def watches(self, model: str) -> str | None:
        """The catalogue metric this rule watches for ``model``, or ``None``.

        A rule without a ``model`` label watches every model whose series its query selects;
        one that names a model watches that one only.
        """
        named = self.labels.get(MODEL_LABEL)
        if named is not None and named != model:
            return None
        return self.labels.get(METRIC_LABEL) or None


def covering_rules(rules: Sequence[AlertRule], model: str, metrics: Sequence[str]) -> dict[str, list[AlertRule]]:
    """Each of ``metrics`` with the rules that watch it for ``model`` (an empty list: not covered)."""
    covered: dict[str, list[AlertRule]] = {metric: [] for metric in metrics}
    for rule in rules:
        metric = rule.watches(model)
        if metric in covered:
            covered[metric].append(rule)
    return covered


_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')


@dataclass(frozen=True)
class Matcher:
    """One label matcher of a route: ``name op value``."""

    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy it (an absent label reads as the empty string, as in Alertmanager)."""
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        found = re.fullmatch(self.value, got) is not None
        return found if self.op == "=~" else not found


def parse_matcher(text: str) -> Matcher:
    """A matcher from Alertmanager's text form (``severity="page"``, ``team=~"ml|data"``).

    Raises:
        ValueError: the text is not a matcher.
    """
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"not a label matcher: {text!r}")
    name, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = json.loads(value)
    return Matcher(name, op, value)


def _route_matchers(route: Mapping[str, object]) -> list[Matcher]:
    matchers: list[Matcher] = []
    for name, value in dict(route.get("match") or {}).items():  # type: ignore[call-overload]
        matchers.append(Matcher(str(name), "=", str(value)))
    for name, value in dict(route.get("match_re") or {}).items():  # type: ignore[call-overload]
        matchers.append(Matcher(str(name), "=~", str(value)))
    for text in list(route.get("matchers") or []):  # type: ignore[call-overload]
        matchers.append(parse_matcher(str(text)))
    return matchers


def route_receivers(route: Mapping[str, object], labels: Mapping[str, str]) -> list[str]:
    """The receivers an alert with ``labels`` reaches through the routing tree rooted at ``route``.

    Raises:
        ValueError: a route holds a matcher that cannot be read.
    """
    def walk(node: Mapping[str, object], inherited: str) -> list[str]:
        receiver = str(node.get("receiver") or inherited)
        found: list[str] = []
        for child in list(node.get("routes") or []):  # type: ignore[call-overload]
            if all(m.matches(labels) for m in _route_matchers(child)):
                found.extend(walk(child, receiver))
                if not child.get("continue"):
                    break
        return found or [receiver]

    return walk(route, "")


def receiver_notifies(receivers: Sequence[Mapping[str, object]], name: str) -> bool:
    """Whether the receiver ``name`` exists and sends somewhere (at least one ``*_configs`` entry)."""
    for receiver in receivers:
        if receiver.get("name") == name:
            return any(key.endswith("_configs") and value for key, value in receiver.items())
    return False


@dataclass(frozen=True)
class AlertRouting:
    """Alertmanager's routing tree and its receivers, secrets left out.

    Attributes:
        route: the root route, as in the configuration (matchers, ``routes``, ``continue``).
        receivers: each receiver's name with the kinds of integration it has (``webhook_configs``...),
            each kind mapped to how many entries it holds.
    """

    route: Mapping[str, object]
    receivers: tuple[Mapping[str, object], ...]
