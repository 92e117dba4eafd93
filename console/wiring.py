"""The composition root: concrete adapters built from the config, for the CLI and the TUI."""

from __future__ import annotations

from console.adapters.haproxy import HAProxyRouter
from console.adapters.mlflow_registry import MlflowRegistry
from console.adapters.prometheus import PrometheusMetrics, read_secret
from console.config import Config
from console.services.status import StatusService


def build_registry(config: Config) -> MlflowRegistry:
    """The model registry the config names."""
    r = config.registry
    return MlflowRegistry(r.tracking_uri, r.registry_uri, timeout_s=r.timeout_s, max_retries=r.max_retries)


def build_router(config: Config) -> HAProxyRouter:
    """The traffic router the config names."""
    r = config.router
    return HAProxyRouter(r.socket, r.backends, r.server_template, r.timeout_s)


def build_metrics(config: Config) -> PrometheusMetrics:
    """The metrics source the config names, with its secrets read from env or files."""
    m = config.metrics
    token = read_secret(m.auth.bearer_token_env, m.auth.bearer_token_file, "metrics.auth.bearer_token")
    password = read_secret(m.auth.password_env, m.auth.password_file, "metrics.auth.password")
    basic = (m.auth.username, password or "") if m.auth.username else None
    return PrometheusMetrics(
        m.url, m.window, m.version_label, m.segment_label, m.timeout_s,
        bearer_token=token, basic_auth=basic,
    )


def build_status_service(config: Config) -> StatusService:
    """The status use case over the configured systems."""
    return StatusService(
        build_registry(config),
        build_router(config),
        build_metrics(config),
        config.metrics.specs(),
        config.metrics.traffic_metric,
        config.metrics.stable_alias,
    )
