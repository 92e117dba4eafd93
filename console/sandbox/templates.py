"""The files the sandbox writes: HAProxy and Prometheus configs, and Rewind's own config.

The Rewind config doubles as the reference example of a metric catalogue.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from console.sandbox.features import SERVICE_TAG, repo_dir

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

CHECK_BODY = '{"segment":"eu-ios","features":{"amount":0.1,"velocity":0.2,"account_age":0.3,"hour":0.4}}'
"""The deep health check's prediction: a real one, so a server whose predictions fail is taken out."""

STATIC_DEFAULT = '{"score":0.5,"prediction":0,"source":"static-default"}'
"""HAProxy's own answer when no server at all can answer: a fixed, safe default instead of a 503."""


def shadow_map_path(state_dir: Path) -> Path:
    """The runtime map of mirrors: backend -> ``<shadow server> <baseline server> <percent>``."""
    return state_dir / "shadow.map"


def haproxy_config(state_dir: Path, model: str, frontend_port: int, exporter_port: int, admin_port: int,
                   servers: dict[str, int], weights: dict[str, int], fallback_port: int | None = None,
                   protected: str | None = None) -> str:
    """HAProxy in front of the model servers: weights, deep checks, fallback, mirror, admin sockets, exporter.

    The Runtime API listens on a unix socket (the default) and on a loopback TCP
    port, the two ways an operator may reach a real HAProxy. The ``protected``
    version's server (the champion at start) is checked with a real prediction (a
    ``/health`` that stays green while predictions fail would flap it in and out) and
    observed: four errors in a row take it out at once (callers then see four or five
    failed answers, those in flight included). When no primary with weight is up the
    backup ``fallback`` server answers, and when it is out too HAProxy answers a fixed
    default itself. HAProxy cannot change a server's checks at runtime: after a
    promotion the protection stays with the server it started on until the sandbox
    restarts.
    """
    backend = backend_name(model)
    shadow_map = shadow_map_path(state_dir)
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
        f"    default_backend {backend}",
        "",
        "frontend exporter",
        f"    bind 127.0.0.1:{exporter_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "",
        f"backend {backend}",
        "    balance roundrobin",
        # A dead server refuses at once, so retries come within milliseconds: more of them than the errors
        # that take a server out (4), each free to go elsewhere, and the last ones reach the fallback.
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
        # out by itself, and the canary's failures are the responder's to see and act on (the drills).
        guard = (" check inter 1s fastinter 250ms fall 2 rise 2 observe layer7 error-limit 4 on-error mark-down"
                 if version == protected else "")
        lines.append(f"    server v{version} 127.0.0.1:{port} weight {weights.get(version, 0)}{guard}")
    if fallback_port is not None:
        lines.append(f"    server {FALLBACK_SERVER} 127.0.0.1:{fallback_port} backup check inter 1s fall 2 rise 2")
    return "\n".join(lines) + "\n"


def prometheus_config(model_ports: dict[str, int], exporter_port: int) -> str:
    """Prometheus scraping the model servers and HAProxy every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "models",
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for _, p in sorted(model_ports.items())]}],
            },
            {"job_name": "haproxy", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


SANDBOX_WEBHOOKS = {
    "oncall": "REWIND_WEBHOOK_ONCALL",
    "data-owners": "REWIND_WEBHOOK_DATA_OWNERS",
    "model-owners": "REWIND_WEBHOOK_MODEL_OWNERS",
}
"""The webhooks the sandbox's config names, and the environment variables that hold their URLs."""


def rewind_config(state_dir: Path, model: str, prometheus_port: int) -> str:
    """The Rewind config that points every other command at this sandbox."""
    config = {
        "default_model": model,
        "registry": {"tracking_uri": f"sqlite:///{state_dir / 'mlflow.db'}"},
        "router": {
            "kind": "haproxy",
            "socket": str(state_dir / "haproxy.sock"),
            "backends": {model: backend_name(model)},
            "server_template": "v{version}",
            "shadow_map": str(shadow_map_path(state_dir)),
            "static_default": True,
        },
        "metrics": {
            "url": f"http://127.0.0.1:{prometheus_port}",
            "window": WINDOW,
            "version_label": "version",
            "segment_label": "segment",
            "stable_alias": "champion",
            "traffic_metric": "request_rate",
            "judge": JUDGE,
            "catalogue": CATALOGUE,
        },
        "journal": {"url": f"sqlite:///{state_dir / 'journal.db'}"},
        # The Feast repo the model servers resolve their inputs through, and the registry tag linking them.
        "features": {"repo": str(repo_dir(state_dir)), "service_tag": SERVICE_TAG},
        # The shipped playbooks post to these. A webhook URL is a secret: it is read from the environment
        # when a notify step runs; unset, the step says the message was not posted and shows it.
        "notify": {"webhooks": {name: {"url_env": env} for name, env in SANDBOX_WEBHOOKS.items()}},
    }
    header = "# Written by `rewind sandbox up`; rewritten on every start.\n"
    return header + yaml.safe_dump(config, sort_keys=False, width=120)
