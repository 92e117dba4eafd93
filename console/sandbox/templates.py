"""The files the sandbox writes: HAProxy, Prometheus and Alertmanager configs, alert rules, Rewind's own config.

The Rewind config doubles as the reference example of a metric catalogue, and
the alert rules are generated from that catalogue, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import yaml

from console.domain.metrics import Direction, MetricSpec, Unit, format_delta, format_value, render_query
from console.sandbox.features import SERVICE_TAG, repo_dir
from console.sandbox.traffic import MODEL_HEADER

if TYPE_CHECKING:
    from console.config import MetricsConfig

WINDOW = "1m"
MIN_TRAFFIC = 0.5  # requests per second in a cell before a point estimate is trusted
# Ratios are judged on 95 % intervals of their counts; p95 and the mean score (no counts) breach
# only when over the line in 4 evaluations 15 s apart (45 s), so one slow minute does not page anyone.
JUDGE = {"confidence": 0.95, "evaluations": 4, "step": "15s"}

CATALOGUE = [
    {
        "name": "traffic_share",
        "title": "share",
        "unit": "ratio",
        "kind": "ratio",
        "query": (
            'sum by (version, segment) (rate(rewind_requests_total{model="$model"}[$window]))'
            ' / on (segment) group_left'
            ' sum by (segment) (rate(rewind_requests_total{model="$model"}[$window]))'
        ),
    },
    {
        "name": "request_rate",
        "title": "req/s",
        "unit": "per_second",
        "kind": "rate",
        "query": 'sum by (version, segment) (rate(rewind_requests_total{model="$model"}[$window]))',
    },
    {
        "name": "error_rate",
        "title": "errors",
        "unit": "ratio",
        "kind": "ratio",
        "direction": "higher_is_worse",
        "query": (
            'sum by (version, segment) (rate(rewind_requests_total{model="$model",outcome="error"}[$window]))'
            ' / sum by (version, segment) (rate(rewind_requests_total{model="$model"}[$window]))'
        ),
        "counts": {
            "numerator": 'sum by (version, segment) '
                         '(increase(rewind_requests_total{model="$model",outcome="error"}[$window]))',
            "denominator": 'sum by (version, segment) (increase(rewind_requests_total{model="$model"}[$window]))',
            "counted": "requests",
        },
        "criteria": {"threshold": 0.05, "max_delta": 0.03, "min_traffic": MIN_TRAFFIC},
    },
    {
        "name": "latency_p95",
        "title": "p95",
        "unit": "seconds",
        "kind": "quantile",
        "direction": "higher_is_worse",
        "query": (
            "histogram_quantile(0.95, sum by (version, segment, le)"
            ' (rate(rewind_request_latency_seconds_bucket{model="$model"}[$window])))'
        ),
        "criteria": {"threshold": 0.25, "max_delta": 0.1, "min_traffic": MIN_TRAFFIC},
    },
    {
        "name": "accuracy",
        "title": "accuracy",
        "unit": "ratio",
        "kind": "ratio",
        "direction": "higher_is_better",
        "query": (
            'sum by (version, segment) (rate(rewind_label_correct_total{model="$model"}[$window]))'
            ' / sum by (version, segment) (rate(rewind_labels_total{model="$model"}[$window]))'
        ),
        "counts": {
            "numerator": 'sum by (version, segment) (increase(rewind_label_correct_total{model="$model"}[$window]))',
            "denominator": 'sum by (version, segment) (increase(rewind_labels_total{model="$model"}[$window]))',
            "counted": "labels",
        },
        "criteria": {"threshold": 0.85, "max_delta": 0.08, "min_traffic": MIN_TRAFFIC},
    },
    {
        "name": "score_mean",
        "title": "score",
        "unit": "score",
        "kind": "mean",
        "direction": "higher_is_worse",
        "query": (
            'sum by (version, segment) (rate(rewind_prediction_score_sum{model="$model"}[$window]))'
            ' / sum by (version, segment) (rate(rewind_prediction_score_count{model="$model"}[$window]))'
        ),
        "criteria": {"max_delta": 0.15, "min_traffic": MIN_TRAFFIC},
    },
]


def backend_name(model: str) -> str:
    """The HAProxy backend of a model."""
    return "be_" + "".join(c if c.isalnum() else "_" for c in model)


SHADOW_LUA = Path(__file__).with_name("haproxy_shadow.lua")
"""HAProxy's mirror action (Lua): the request and the baseline's answer, sent to the shadow in the background."""

FALLBACK_SERVER = "fallback"
"""The backup server's name in every model backend: it answers when no primary server can."""

OBSERVE_ERROR_LIMIT = 4
"""Errors in a row that take the protected server out at once (HAProxy's ``observe layer7 error-limit``)."""

CHECK_BODY = '{"segment":"eu-ios","features":{"amount":0.1,"velocity":0.2,"account_age":0.3,"hour":0.4}}'
"""The deep health check's prediction: a real one, so a server whose predictions fail is taken out."""

STATIC_DEFAULT = '{"score":0.5,"prediction":0,"source":"static-default"}'
"""HAProxy's own answer when no server at all can answer: a fixed, safe default instead of a 503."""


def shadow_map_path(state_dir: Path) -> Path:
    """The runtime map of mirrors: backend -> ``<shadow server> <baseline server> <percent>``."""
    return state_dir / "shadow.map"


@dataclass(frozen=True)
class FleetBackend:
    """A fleet's further model behind HAProxy: its servers' ports and weights by version, and its champion."""

    servers: dict[str, int]
    weights: dict[str, int]
    protected: str | None = None


def haproxy_config(state_dir: Path, model: str, frontend_port: int, exporter_port: int, admin_port: int,
                   servers: dict[str, int], weights: dict[str, int], fallback_port: int | None = None,
                   protected: str | None = None, fleet: dict[str, FleetBackend] | None = None) -> str:
    """HAProxy in front of the model servers: weights, deep checks, fallback, mirror, admin sockets, exporter.

    The Runtime API listens on a unix socket (the default) and on a loopback TCP
    port, the two ways an operator may reach a real HAProxy. The ``protected``
    version's server (the champion at start) is checked with a real prediction (a
    ``/health`` that stays green while predictions fail would flap it in and out) and
    observed: ``OBSERVE_ERROR_LIMIT`` errors in a row take it out at once (callers then
    see that many failed answers, and at most one more for each other request already
    in flight). When no primary with weight is up the backup ``fallback`` server
    answers, and when it is out too HAProxy answers a fixed default itself. HAProxy
    cannot change a server's checks at runtime: after a promotion the protection stays
    with the server it started on until the sandbox restarts.

    A ``fleet`` adds one backend per further model, built alike but with no fallback server; the
    frontend sends a request to it when its ``X-Rewind-Model`` header names the model.
    """
    backend = backend_name(model)
    lines = [
        "global",
        f"    stats socket {state_dir / 'haproxy.sock'} mode 600 level admin",
        f"    stats socket ipv4@127.0.0.1:{admin_port} level admin",
        "    stats timeout 30s",
        "    maxconn 512",
        "    log stderr format raw local0",
        f"    lua-load {SHADOW_LUA}",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout check 1s",
        "    option http-keep-alive",
        # Only requests that went wrong are logged (to haproxy.log): what a drill or a test needs to explain.
        "    log global",
        "    option httplog",
        "    option dontlog-normal",
        "",
        "frontend models",
        f"    bind 127.0.0.1:{frontend_port}",
        *(f"    use_backend {backend_name(other)} if {{ req.hdr({MODEL_HEADER}) -m str {other} }}"
          for other in (fleet or {})),
        f"    default_backend {backend}",
        "",
        "frontend exporter",
        f"    bind 127.0.0.1:{exporter_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "",
        *_backend_lines(state_dir, model, servers, weights, fallback_port, protected),
    ]
    for other, spec in (fleet or {}).items():
        lines += ["", *_backend_lines(state_dir, other, spec.servers, spec.weights, None, spec.protected)]
    return "\n".join(lines) + "\n"


def _backend_lines(state_dir: Path, model: str, servers: dict[str, int], weights: dict[str, int],
                   fallback_port: int | None, protected: str | None) -> list[str]:
    """One model's backend: its servers with their weights and checks, the mirror, the fallback and the default."""
    backend = backend_name(model)
    shadow_map = shadow_map_path(state_dir)
    lines = [
        f"backend {backend}",
        "    balance roundrobin",
        # A dead server refuses at once, so retries come within milliseconds: more of them than the errors
        # that take a server out (OBSERVE_ERROR_LIMIT), each free to go elsewhere, the last to the fallback.
        "    retry-on conn-failure empty-response junk-response response-timeout",
        "    retries 12",
        "    option redispatch 1",
        "    option httpchk",
        "    http-check send meth POST uri /predict ver HTTP/1.1 hdr Host rewind-check"
        f" hdr Content-Type application/json hdr X-Rewind-Check 1 body '{CHECK_BODY}'",
        "    http-check expect status 200",
        # The mirror: the map names the shadow; only then are bodies kept and copied.
        "    option http-buffer-request",
        f"    http-request set-var(txn.shadow) be_name,map({shadow_map})",
        "    http-request set-var(txn.reqbody) req.body if { var(txn.shadow) -m found }",
        "    http-response wait-for-body time 1s if { var(txn.shadow) -m found }",
        "    http-response lua.shadow_copy if { var(txn.shadow) -m found }",
        f"    http-request return status 200 content-type application/json string '{STATIC_DEFAULT}'"
        f" if {{ nbsrv({backend}) eq 0 }}",
    ]
    for version, port in sorted(servers.items(), key=lambda kv: int(kv[0])):
        # Only the protected server is checked and observed: HAProxy would otherwise take a failing canary
        # out by itself, and the canary's failures are the responder's to see and act on (the drills). A
        # standby (weight 0: the version a rollback of the champion goes back to) is checked, not observed:
        # it takes no traffic, and its check, a real prediction, tells readiness it would answer.
        guard = (" check inter 1s fastinter 250ms fall 2 rise 2 observe layer7"
                 f" error-limit {OBSERVE_ERROR_LIMIT} on-error mark-down"
                 if version == protected else " check inter 2s fall 2 rise 2" if not weights.get(version) else "")
        lines.append(f"    server v{version} 127.0.0.1:{port} weight {weights.get(version, 0)}{guard}")
    if fallback_port is not None:
        lines.append(f"    server {FALLBACK_SERVER} 127.0.0.1:{fallback_port} backup check inter 1s fall 2 rise 2")
    return lines


def prometheus_config(model_ports: dict[str, int], exporter_port: int, rules_path: Path | None = None,
                      alertmanager_port: int | None = None) -> str:
    """Prometheus scraping the model servers and HAProxy every second, evaluating ``rules_path`` every second
    and sending the alerts to the Alertmanager on ``alertmanager_port``."""
    config: dict = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "models",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for _, p in sorted(model_ports.items())]}],
            },
            {"job_name": "haproxy", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
        ],
    }
    if rules_path is not None:
        config["rule_files"] = [str(rules_path)]
    if alertmanager_port is not None:
        config["alerting"] = {"alertmanagers": [
            {"api_version": "v2", "static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]}
    return yaml.safe_dump(config, sort_keys=False)


ALERT_HOLD = "30s"
"""How long a rule's condition must hold before its alert fires (the rules' ``for``): short, for drills.
A ratio's condition is a confidence bound on its counts, so chance alone seldom meets it, let alone for 30 s."""

ALERT_SEVERITY = {"error_rate": "page", "latency_p95": "page"}
"""The severity of each metric's alerts; ``ticket`` for the others. Failed or slow answers hurt the model's
callers now: someone is paged. Accuracy and score shifts are read from labels that arrive later and do not
stop a caller: a ticket, for the owner to look at within the day."""

ALERT_PLAYBOOKS = {"error_rate": "version-outage", "latency_p95": "latency-spike",
                   "accuracy": "canary-regression", "score_mean": "canary-regression"}
"""The shipped playbook each metric's alerts suggest (annotation ``rewind_playbook``). ``canary-regression``
compares the versions first and hands a degradation every version shares over to ``data-drift``."""


def _score_test(counted: str, total: str, line: str, z: float, worse: bool, per_cell: str = "") -> str:
    """PromQL: ``counted`` out of ``total`` is beyond the proportion ``line``, ``z`` standard errors away.

    The score test with continuity correction, ``(|k - n·L| - 0.5) / sqrt(n·L·(1-L)) > z``, holds
    exactly when the whole continuity-corrected Wilson interval of ``k/n`` lies beyond ``L``: what the
    console asks of a ratio's exact interval (which PromQL cannot compute), in closed form. Without
    the correction one error in the first three requests after a start breaches a 5 % line. ``line``
    is a number, or a vector matched to each cell with ``per_cell`` (``on (segment) group_left()``);
    a line outside (0, 1) makes the square root NaN, and nothing breaches it.
    """
    k, n = f"({counted})", f"({total})"
    excess = f"{k} - {n} * {per_cell}{line}" if worse else f"{n} * {per_cell}{line} - {k}"
    try:
        spread = f"{z * (float(line) * (1 - float(line))) ** 0.5:.4g} * sqrt({n})"
    except ValueError:
        spread = f"{z:.4g} * sqrt({n} * {per_cell}({line} * (1 - {line})))"
    return f"{excess} - 0.5 > {spread}"


def breach_expression(spec: MetricSpec, model: str, window: str, traffic: MetricSpec | None = None,
                      version_label: str = "version", segment_label: str = "segment") -> str:
    """PromQL that returns a metric's value in every (version, segment) cell that breaches its criteria.

    As the console judges: a ratio with counts breaches when its confidence interval lies wholly beyond the
    threshold, or beyond the stable version's value by more than ``max_delta`` (see :func:`_score_test`);
    any other metric when its value does, in a cell with at least ``min_traffic`` of the traffic metric.
    PromQL does not know the aliases: the stable version is taken to be the one that serves most of the
    segment's traffic (the champion, as a rule), and the busiest version is never worse than itself.

    Raises:
        ValueError: the metric has no criteria, or a delta on a metric without counts and no traffic metric.
    """
    criteria, cell = spec.criteria, f"on ({version_label}, {segment_label})"
    if not criteria.judges:
        raise ValueError(f"metric {spec.name!r} has no criteria: nothing to alert on")
    worse = spec.direction is Direction.HIGHER_IS_WORSE
    per_segment = f"on ({segment_label}) group_left() "
    value = render_query(spec.query, model, window)
    counted = render_query(spec.numerator or "", model, window) if spec.counts else ""
    total = render_query(spec.denominator or "", model, window) if spec.counts else ""
    flow = render_query(traffic.query, model, window) if traffic is not None else ""
    reference = ""
    if criteria.max_delta is not None:
        if not spec.counts and not flow:
            raise ValueError(f"metric {spec.name!r} has a max_delta: its rule needs the catalogue's traffic_metric "
                             "to tell the stable version (the busiest) from the others")
        weight, compared = (total, f"({counted}) / ({total})") if spec.counts else (flow, value)
        busiest = (f"max by ({segment_label}) (({compared}) and {cell} "
                   f"topk by ({segment_label}) (1, {weight}))")
        step = criteria.max_delta if worse else -criteria.max_delta
        reference = (f"({busiest} * {1 + step:g})" if criteria.delta_kind.value == "relative"
                     else f"({busiest} {'+' if step >= 0 else '-'} {abs(step):g})")
    conditions = []
    if spec.counts:
        z = NormalDist().inv_cdf(1.0 - (1.0 - criteria.confidence) / 2.0)
        if criteria.threshold is not None:
            conditions.append(_score_test(counted, total, f"{criteria.threshold:g}", z, worse))
        if reference:
            conditions.append(_score_test(counted, total, reference, z, worse, per_segment))
    else:
        beyond = ">" if worse else "<"
        if criteria.threshold is not None:
            conditions.append(f"({value}) {beyond} {criteria.threshold:g}")
        if reference:
            conditions.append(f"({value}) {beyond} {per_segment}{reference}")
    # A comparison keeps its left side's value: a value metric's conditions return the value itself, a ratio's
    # return counts, so the ratio is taken where they hold (the alert's $value is always the metric's value).
    joined = "\n  or\n  ".join(conditions)
    expression = f"({value})\nand {cell} (\n  {joined}\n)" if spec.counts else f"(\n  {joined}\n)"
    if not spec.counts and criteria.min_traffic is not None and flow:
        expression += f"\nand {cell} (({flow}) >= {criteria.min_traffic:g})"
    return expression


def _alert_name(metric: str) -> str:
    return "Rewind" + "".join(part.capitalize() for part in metric.split("_")) + "Breach"


_SHOWN = {Unit.RATIO: "humanizePercentage", Unit.SECONDS: "humanizeDuration"}


def _criteria_text(spec: MetricSpec, window: str, hold: str, traffic: MetricSpec | None) -> str:
    criteria, worse = spec.criteria, spec.direction is Direction.HIGHER_IS_WORSE
    limits = []
    if criteria.threshold is not None:
        limits.append(f"{'above' if worse else 'below'} {format_value(criteria.threshold, spec.unit)}"
                      + (f" with {criteria.confidence * 100:g}% confidence on its {spec.counted}" if spec.counts
                         else ""))
    if criteria.max_delta is not None:
        delta = format_delta(criteria.max_delta, spec.unit, criteria.delta_kind).lstrip("+")
        limits.append(f"{delta} {'above' if worse else 'below'} the version with most of the segment's traffic")
    text = f"For {hold}, over a {window} window: {', or '.join(limits)}"
    if not spec.counts and criteria.min_traffic is not None and traffic is not None:
        text += f", with at least {format_value(criteria.min_traffic, traffic.unit)} of {traffic.name}"
    return text + "."


def alert_rules(model: str, metrics: MetricsConfig, hold: str = ALERT_HOLD) -> dict:
    """Prometheus alerting rules for ``model``: one per judged catalogue metric, one alert per breaching cell.

    Each rule's alerts carry ``model``, ``rewind_metric``, ``severity`` and the cell's version and segment
    labels, and annotations ``summary``, ``description`` and ``rewind_playbook`` (the shipped playbook that
    fits, see :data:`ALERT_PLAYBOOKS`; left out for a metric it does not name).

    Returns:
        The rules file's document (``groups``), for :func:`rules_yaml`.
    """
    specs = metrics.specs()
    traffic = next((s for s in specs if s.name == metrics.traffic_metric), None)
    version, segment = metrics.version_label, metrics.segment_label
    rules = []
    for spec in specs:
        if not spec.criteria.judges:
            continue
        shown, what = _SHOWN.get(spec.unit, 'printf "%.3f"'), spec.name.replace("_", " ")
        annotations = {
            "summary": f"{model} v{{{{ $labels.{version} }}}}: {what} {{{{ $value | {shown} }}}} "
                       f"in {{{{ $labels.{segment} }}}}",
            "description": _criteria_text(spec, metrics.window, hold, traffic),
        }
        if spec.name in ALERT_PLAYBOOKS:
            annotations["rewind_playbook"] = ALERT_PLAYBOOKS[spec.name]
        rules.append({
            "alert": _alert_name(spec.name),
            "expr": breach_expression(spec, model, metrics.window, traffic, version, segment),
            "for": hold,
            "labels": {"model": model, "rewind_metric": spec.name,
                       "severity": ALERT_SEVERITY.get(spec.name, "ticket")},
            "annotations": annotations,
        })
    return {"groups": [{"name": f"rewind-{model}", "rules": rules}]}


class _BlockDumper(yaml.SafeDumper):
    """YAML with multi-line strings (PromQL) as literal blocks, which a person can read."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def rules_yaml(rules: dict) -> str:
    """A rules file's text, expressions as readable blocks."""
    header = "# Written by `rewind sandbox up` from the metric catalogue in rewind.yaml; rewritten on every start.\n"
    return header + yaml.dump(rules, Dumper=_BlockDumper, sort_keys=False, width=120, allow_unicode=True)


ALERT_ROUTE = {"group_by": ["alertname", "model", "version"], "group_wait": "1s", "group_interval": "5s",
               "repeat_interval": "1m"}
"""The sandbox's grouping and timings: one notification per alert, model and version, within seconds (drills
need quick pages; Alertmanager's defaults are 30 s, 5 min and 4 h)."""


def alertmanager_config(alerts_port: int) -> str:
    """Alertmanager sending every alert to Rewind's receiver (``rewind alerts serve``) on ``alerts_port``."""
    config = {
        "route": {"receiver": "rewind", **ALERT_ROUTE},
        "receivers": [{"name": "rewind", "webhook_configs": [
            {"url": f"http://127.0.0.1:{alerts_port}/alerts", "send_resolved": True, "max_alerts": 0}]}],
    }
    return "# Written by `rewind sandbox up`; rewritten on every start.\n" + yaml.safe_dump(config, sort_keys=False)


SANDBOX_WEBHOOKS = {
    "oncall": "REWIND_WEBHOOK_ONCALL",
    "data-owners": "REWIND_WEBHOOK_DATA_OWNERS",
    "model-owners": "REWIND_WEBHOOK_MODEL_OWNERS",
}
"""The webhooks the sandbox's config names, and the environment variables that hold their URLs."""


SANDBOX_OWNER = {"name": "Maya Lindqvist", "contact": "maya.lindqvist@example.com", "oncall": "oncall",
                 "escalation": ["Jonas Okafor"]}
"""The sandbox model's owner; ``oncall`` names one of :data:`SANDBOX_WEBHOOKS`."""


def sandbox_metrics(prometheus_port: int) -> dict:
    """The config's ``metrics`` section: the sandbox's Prometheus and the catalogue."""
    return {
        "url": f"http://127.0.0.1:{prometheus_port}",
        "window": WINDOW,
        "version_label": "version",
        "segment_label": "segment",
        "stable_alias": "champion",
        "traffic_metric": "request_rate",
        "judge": JUDGE,
        "catalogue": CATALOGUE,
    }


def sandbox_rules(models: list[str], prometheus_port: int) -> str:
    """The sandbox's ``rules.yml``: :func:`alert_rules` for its catalogue, a group for each of its models."""
    from console.config import MetricsConfig

    metrics = MetricsConfig.model_validate(sandbox_metrics(prometheus_port))
    return rules_yaml({"groups": [group for model in models for group in alert_rules(model, metrics)["groups"]]})


def rewind_config(state_dir: Path, model: str, prometheus_port: int, alertmanager_port: int | None = None,
                  alerts_port: int | None = None, fleet: list[str] | None = None) -> str:
    """The Rewind config that points every other command at this sandbox: with ``alertmanager_port``, its
    Alertmanager too, and `rewind alerts serve` listening on ``alerts_port``, where that Alertmanager posts.
    A ``fleet`` (the further models of ``--models N``) is listed in ``router.backends`` after ``model``, so
    the console opens on the fleet view."""
    models = [model, *(fleet or [])]
    config: dict = {
        "default_model": model,
        "registry": {"tracking_uri": f"sqlite:///{state_dir / 'mlflow.db'}"},
        "router": {
            "kind": "haproxy",
            "socket": str(state_dir / "haproxy.sock"),
            "backends": {name: backend_name(name) for name in models},
            "server_template": "v{version}",
            "shadow_map": str(shadow_map_path(state_dir)),
            "static_default": True,
        },
        "metrics": sandbox_metrics(prometheus_port),
        "journal": {"url": f"sqlite:///{state_dir / 'journal.db'}"},
        # The Feast repo the model servers resolve their inputs through, and the registry tag linking them.
        "features": {"repo": str(repo_dir(state_dir)), "service_tag": SERVICE_TAG},
        # The shipped playbooks post to these. A webhook URL is a secret: it is read from the environment
        # when a notify step runs; unset, the step says the message was not posted and shows it.
        "notify": {"webhooks": {name: {"url_env": env} for name, env in SANDBOX_WEBHOOKS.items()}},
        "owners": {name: SANDBOX_OWNER for name in models},
        # Readiness reads each serving version's newest sample per segment from the requests counter.
        "readiness": {"freshness_series": 'rewind_requests_total{model="$model"}'},
    }
    if alertmanager_port is not None:
        config["alerts"] = {"alertmanager_url": f"http://127.0.0.1:{alertmanager_port}"}
        if alerts_port is not None:
            config["alerts"]["listen"] = f"127.0.0.1:{alerts_port}"
    header = "# Written by `rewind sandbox up`; rewritten on every start.\n"
    return header + yaml.safe_dump(config, sort_keys=False, width=120)
