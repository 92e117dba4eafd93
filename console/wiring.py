"""The composition root: concrete adapters built from the config, for the CLI and the TUI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from console.adapters.haproxy import HAProxyRouter
from console.adapters.prometheus import PrometheusMetrics, read_headers, read_secret
from console.adapters.protocols import Registry, Router
from console.config import Config, JournalConfig, JournalSettings, LoadedConfig
from console.domain.errors import ConfigError
from console.services.status import StatusService

if TYPE_CHECKING:  # the journal's modules (and SQLAlchemy) load only when a journal is built
    from console.adapters.feast_store import FeastStore
    from console.adapters.journal_sql import SqlJournal
    from console.adapters.notify import HttpEndpoints, WebhookNotifier
    from console.adapters.playbook_files import PlaybookFiles
    from console.domain.alert_events import Alert
    from console.domain.playbook import Playbook
    from console.domain.playbook_run import EntryMatch
    from console.services.alerts import AlertIntake
    from console.services.fallback import FallbackService
    from console.services.features import (
        FeatureActions,
        FeatureCatalog,
        FeatureEvidence,
        FeatureRollbacks,
        FeatureSettings,
    )
    from console.services.journal import JournalService
    from console.services.live import LiveStatus
    from console.services.playbooks import PlaybookRunner
    from console.services.postmortem import PostMortems
    from console.services.readiness import ReadinessService
    from console.services.recovery import RecoveryStats
    from console.services.rollback import RollbackService
    from console.services.shadow import ShadowService
    from console.services.shadow_gate import ShadowGate


def build_registry(config: Config) -> Registry:
    """The model registry the config names.

    An MLflow server (``http(s)://``) is read and written over its REST API with httpx; any
    other store (``sqlite:///``, files, a database) through the MLflow client. Either way
    MLflow itself is imported only when the client adapter first needs it, so ``rewind status``
    against a server never imports it.
    """
    r = config.registry
    if r.kind == "gto":  # DVC's GTO: versions and stages are git tags (gto is imported on first use)
        from console.adapters.gto_registry import GtoRegistry

        return GtoRegistry(r.repo or "", r.stages, push=r.push)
    from console.adapters.mlflow_rest import MlflowRestRegistry, is_rest_uri

    if is_rest_uri(r.registry_uri or r.tracking_uri):
        return MlflowRestRegistry(r.tracking_uri, r.registry_uri, timeout_s=r.timeout_s, max_retries=r.max_retries)
    from console.adapters.mlflow_registry import MlflowRegistry

    return MlflowRegistry(r.tracking_uri, r.registry_uri, timeout_s=r.timeout_s, max_retries=r.max_retries)


def build_router(config: Config, metrics: PrometheusMetrics | None = None) -> Router:
    """The traffic router the config names (``router.kind``).

    A Kubernetes object (an HTTPRoute, an InferenceService, a Rollout) counts no requests: those adapters
    count them with their section's ``served_query`` on ``metrics`` (built from the config when not given),
    so rollbacks are verified from the metrics.
    """
    r = config.router
    kube = {"gateway-api": r.gateway_api, "kserve": r.kserve, "argo-rollouts": r.argo_rollouts}.get(r.kind)
    if kube is not None:
        from console.adapters.k8s_api import explicit_access, kubeconfig_access

        setting = f"router.{r.kind.replace('-', '_')}"
        access = (kubeconfig_access(kube.kubeconfig, kube.context, setting) if kube.kubeconfig
                  else explicit_access(kube.server or "", kube.token_env, kube.token_file, kube.ca_file, setting))
        counters = metrics or build_metrics(config)
        if r.kind == "kserve" and r.kserve is not None:
            from console.adapters.k8s_kserve import KServeRouter

            return KServeRouter(access, r.backends, r.kserve.namespace, r.kserve.version_label, r.timeout_s,
                                r.kserve.readback_timeout_s, counters=counters, served_query=r.kserve.served_query)
        if r.kind == "argo-rollouts" and r.argo_rollouts is not None:
            from console.adapters.k8s_argo import ArgoRolloutsRouter

            a = r.argo_rollouts
            return ArgoRolloutsRouter(access, r.backends, a.namespace, a.version_label, r.timeout_s,
                                      a.readback_timeout_s, counters=counters, served_query=a.served_query)
        from console.adapters.k8s_gateway import GatewayRouter

        return GatewayRouter(access, r.backends, kube.namespace, r.server_template, r.timeout_s,
                             kube.readback_timeout_s, counters=counters, served_query=kube.served_query)
    return HAProxyRouter(r.socket or "", r.backends, r.server_template, r.timeout_s, r.shadow_map, r.static_default)


def build_metrics(config: Config) -> PrometheusMetrics:
    """The metrics source the config names, with its secrets read from env or files."""
    m = config.metrics
    token = read_secret(m.auth.bearer_token_env, m.auth.bearer_token_file, "metrics.auth.bearer_token")
    password = read_secret(m.auth.password_env, m.auth.password_file, "metrics.auth.password")
    basic = (m.auth.username, password or "") if m.auth.username else None
    return PrometheusMetrics(
        m.url, m.window, m.version_label, m.segment_label, m.timeout_s,
        bearer_token=token, basic_auth=basic, headers=read_headers(m.headers, m.headers_env, m.headers_file),
        model_label=m.model_label,
    )


def build_status_service(config: Config) -> StatusService:
    """The status use case over the configured systems."""
    metrics = build_metrics(config)
    return StatusService(
        build_registry(config),
        build_router(config, metrics),
        metrics,
        config.metrics.specs(),
        config.metrics.traffic_metric,
        config.metrics.stable_alias,
        features=build_feature_evidence(config, metrics),
    )


def feature_settings(config: Config) -> FeatureSettings:
    """The ``features:`` section as the feature services take it."""
    from console.domain.features import HealthCriteria
    from console.services.features import FeatureSettings

    f = config.features
    return FeatureSettings(
        service_tag=f.service_tag, recent_s=f.recent_s, window=f.window or config.metrics.window,
        criteria=HealthCriteria(psi_max=f.psi_max, out_of_range_max=f.out_of_range_max,
                                missing_max=f.missing_max, min_count=f.min_count, confidence=f.confidence),
        verify_window_s=f.verify_window_s, poll_interval_s=config.rollback.poll_interval_s,
    )


def build_feature_evidence(config: Config, metrics: PrometheusMetrics | None = None) -> FeatureEvidence:
    """What the model servers report of their features, read from the configured Prometheus."""
    from console.adapters.prometheus import PrometheusFeatures
    from console.services.features import FeatureEvidence

    f = config.features
    telemetry = PrometheusFeatures(metrics or build_metrics(config), f.binding_metric, f.value_metric,
                                   f.missing_metric, f.model_label)
    return FeatureEvidence(telemetry, feature_settings(config))


def build_feature_store(loaded: LoadedConfig) -> FeastStore | None:
    """The feature store the config names (``features.repo``), or ``None``; Feast is imported on first use."""
    from console.adapters.feast_store import FeastStore

    repo = loaded.config.features.resolved_repo(loaded.path)
    return FeastStore(repo) if repo is not None else None


def build_feature_catalog(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> FeatureCatalog:
    """The declared side of a model's features: registry tags, the feature store, and the journal's rollbacks."""
    from console.services.features import FeatureCatalog

    config = loaded.config
    settings = JournalSettings(journal=config.journal, metrics_auth=config.metrics.auth, path=loaded.path,
                               outbound=config.outbound_secrets())
    return FeatureCatalog(build_registry(config), build_feature_store(loaded), build_feature_evidence(config),
                          feature_settings(config), journal=build_journal_service(settings, environ))


def feature_catalog_of(rollback: RollbackService, loaded: LoadedConfig) -> FeatureCatalog:
    """The feature catalog over a rollback service's own registry, feature store and journal (one Feast load)."""
    from console.services.features import FeatureCatalog

    actions = rollback.features
    if actions is None:
        return build_feature_catalog(loaded)
    return FeatureCatalog(rollback.registry, actions.store, actions.evidence, actions.settings,
                          journal=rollback.journal)


def build_feature_actions(loaded: LoadedConfig, registry: Registry, metrics: PrometheusMetrics
                          ) -> FeatureActions:
    """The feature side of the action procedure over the given registry and metrics."""
    from console.services.features import FeatureActions

    config = loaded.config
    return FeatureActions(registry, build_feature_store(loaded), build_feature_evidence(config, metrics),
                          metrics, config.metrics.specs(), config.metrics.traffic_metric, feature_settings(config))


def build_notifier(config: Config, environ: Mapping[str, str] | None = None) -> WebhookNotifier:
    """The webhooks playbook ``notify`` steps post to (config ``notify.webhooks``).

    Nothing is read yet: each webhook's URL comes from its env var or file when it is posted to.

    Args:
        config: the validated config.
        environ: where ``url_env`` is looked up; default ``os.environ``.
    """
    from console.adapters.notify import HttpTarget, WebhookNotifier

    targets = {
        name: HttpTarget(name=name, setting=f"notify.webhooks.{name}", url=w.url, url_env=w.url_env,
                         url_file=w.url_file, timeout_s=w.timeout_s)
        for name, w in config.notify.webhooks.items()
    }
    return WebhookNotifier(targets, environ)


def build_endpoints(config: Config, environ: Mapping[str, str] | None = None) -> HttpEndpoints:
    """The HTTP endpoints playbook ``http`` actions may call (config ``endpoints``).

    Nothing is read yet: URLs and header values come from env vars or files at each call.

    Args:
        config: the validated config.
        environ: where ``url_env`` and ``headers_env`` are looked up; default ``os.environ``.
    """
    from console.adapters.notify import HttpEndpoints, HttpTarget

    targets = {
        name: HttpTarget(name=name, setting=f"endpoints.{name}", url=e.url, url_env=e.url_env,
                         url_file=e.url_file, timeout_s=e.timeout_s, method=e.method,
                         headers_env=tuple(e.headers_env.items()))
        for name, e in config.endpoints.items()
    }
    return HttpEndpoints(targets, environ)


def build_journal(journal: JournalConfig) -> SqlJournal:
    """The decision journal the config names (SQLite under the XDG state dir by default)."""
    from console.adapters.journal_sql import SqlJournal

    return SqlJournal(journal.resolved_url())


def known_secrets(settings: JournalSettings, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every secret value the journal must never record.

    The journal database's password, the metrics credentials the config names,
    the webhook URLs and endpoint header values read from env or files, and the
    values of the environment's secret-named variables (``*_TOKEN``...).
    """
    from console.adapters.identity import environment_secrets
    from console.adapters.journal_sql import journal_url
    from console.domain.journal import usable_secrets

    values: list[str | None] = [journal_url(settings.journal.resolved_url()).password]
    auth = settings.metrics_auth
    if auth is not None:
        for env_name, file_name, setting in ((auth.bearer_token_env, auth.bearer_token_file, "bearer_token"),
                                             (auth.password_env, auth.password_file, "password")):
            try:
                values.append(read_secret(env_name, file_name, f"metrics.auth.{setting}"))
            except ConfigError:
                pass  # an unset secret cannot leak
    if settings.outbound:
        from console.adapters.notify import secret_value

        for source in settings.outbound:
            try:
                values.append(secret_value(source.env, source.file, source.setting, environ))
            except ConfigError:
                pass  # an unset secret cannot leak
    values.extend(environment_secrets(environ))
    return usable_secrets(values)


def build_journal_service(settings: JournalSettings, environ: Mapping[str, str] | None = None,
                          journal: SqlJournal | None = None) -> JournalService:
    """The journal use cases, recording as the current OS user, with every known secret redacted.

    ``journal``: the journal to record in, when the caller needs it too (the action lock lives beside it).
    """
    from console.adapters.identity import current_actor
    from console.services.journal import JournalService

    return JournalService(journal or build_journal(settings.journal), current_actor(environ),
                          known_secrets=known_secrets(settings, environ))


def build_rollback_service(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> RollbackService:
    """The rollback use case over the configured systems, journal and lock."""
    from console.adapters.faults import checkpoint_from_env
    from console.adapters.identity import lock_holder, os_identity
    from console.adapters.journal_sql import SqlActionLock
    from console.services.rollback import RollbackService, RollbackSettings

    config = loaded.config
    settings = JournalSettings(journal=config.journal, metrics_auth=config.metrics.auth, path=loaded.path,
                               outbound=config.outbound_secrets())
    records = build_journal(config.journal)
    journal = build_journal_service(settings, environ, journal=records)
    r = config.rollback
    registry, metrics = build_registry(config), build_metrics(config)
    return RollbackService(
        registry,
        build_router(config, metrics),
        metrics,
        journal,
        SqlActionLock(records),
        config.metrics.specs(),
        config.metrics.traffic_metric,
        RollbackSettings(
            stable_alias=config.metrics.stable_alias,
            candidate_alias=r.candidate_alias,
            gradual_steps=tuple(r.gradual_steps),
            gate_window_s=r.gate_window_s,
            gate_metrics=tuple(r.gate_metrics),
            verify_window_s=r.verify_window_s,
            verify_metrics=tuple(r.verify_metrics),
            poll_interval_s=r.poll_interval_s,
        ),
        checkpoint=checkpoint_from_env(),
        holder=lock_holder(journal.actor),
        policy=config.policy(),
        identity=os_identity(),
        approval_timeout_s=config.roles.approval_timeout_s if config.roles else 900.0,
        shadow_copies=build_shadow_gate(config).copies_lately,
        features=build_feature_actions(loaded, registry, metrics),
    )


def build_shadow_gate(config: Config) -> ShadowGate:
    """The shadow promotion gate over the configured metrics, with the config's limits and windows."""
    from console.domain.shadow import ShadowLimits
    from console.services.shadow_gate import ShadowGate

    s = config.shadow
    limits = ShadowLimits(
        max_disagreement=s.max_disagreement, max_score_delta_p95=s.max_score_delta_p95,
        max_error_delta=s.max_error_delta, latency_ratio=s.latency_ratio, latency_slack_s=s.latency_slack_s,
        min_coverage=s.min_coverage, confidence=config.metrics.judge.confidence, min_pairs=s.min_pairs,
        max_cost_ratio=s.max_cost_ratio, max_accuracy_drop=s.max_accuracy_drop,
    )
    return ShadowGate(build_metrics(config), limits, s.window_s, s.evidence_window, s.step_s)


def build_shadow_service(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> ShadowService:
    """Shadow + promote over the configured systems: plans carried out by the rollback service."""
    from console.services.shadow import ShadowService, ShadowSettings

    config = loaded.config
    settings = ShadowSettings(alias=config.shadow.alias, price_per_cpu_second=config.shadow.price_per_cpu_second)
    return ShadowService(build_rollback_service(loaded, environ), build_shadow_gate(config), settings)


def build_playbook_source(loaded: LoadedConfig | None) -> PlaybookFiles:
    """The playbook files of the configured directories, checked against the config's names."""
    from console.adapters.playbook_files import PlaybookFiles, check_context

    if loaded is None:
        from console.config import default_playbook_dirs
        from console.domain.playbook_check import CheckContext

        return PlaybookFiles(default_playbook_dirs(), CheckContext())
    return PlaybookFiles(loaded.config.playbooks.resolved_dirs(loaded.path), check_context(loaded.config))


def build_playbook_runner(loaded: LoadedConfig, environ: Mapping[str, str] | None = None,
                          rollback: RollbackService | None = None) -> PlaybookRunner:
    """The playbook runner over the rollback use case, the playbook files, the webhooks and the endpoints,
    with shadow + promote over the same rollback use case (for shadow and promote steps and gate checks),
    and the feature evidence and rollback planner over its registry (for diagnosis checks and conditions,
    and features actions; Feast is imported only when a features action plans)."""
    from console.adapters.identity import holder_alive
    from console.services.features import FeatureCatalog, FeatureRollbacks
    from console.services.playbooks import PlaybookRunner
    from console.services.rollback import new_action_id
    from console.services.shadow import ShadowService, ShadowSettings

    config = loaded.config
    rollback = rollback or build_rollback_service(loaded, environ)
    shadow = ShadowService(rollback, build_shadow_gate(config),
                           ShadowSettings(alias=config.shadow.alias,
                                          price_per_cpu_second=config.shadow.price_per_cpu_second))
    evidence = rollback.features.evidence if rollback.features is not None else build_feature_evidence(config)
    features = FeatureRollbacks(FeatureCatalog(rollback.registry, build_feature_store(loaded), evidence,
                                               feature_settings(config)), new_action_id)
    return PlaybookRunner(rollback, build_playbook_source(loaded), build_notifier(config, environ),
                          build_endpoints(config, environ), is_live=holder_alive, shadow=shadow,
                          features=features, evidence=evidence)


def build_alert_intake(loaded: LoadedConfig, environ: Mapping[str, str] | None = None,
                       extra_secrets: tuple[str, ...] = ()) -> AlertIntake:
    """Alertmanager's notifications into the journal: the playbook library for suggestions, and the verdict
    ranking over the configured systems, built (MLflow imported) only when an alert names no playbook.

    ``extra_secrets``: values the journal must redact besides the usual ones (the webhook's bearer token).
    """
    from console.adapters.playbook_files import PlaybookFiles, check_context
    from console.domain.alert_events import AlertLabels
    from console.domain.journal import usable_secrets
    from console.services.alerts import AlertIntake

    config = loaded.config
    settings = JournalSettings(journal=config.journal, metrics_auth=config.metrics.auth, path=loaded.path,
                               outbound=config.outbound_secrets())
    journal = build_journal_service(settings, environ)
    journal.known_secrets = usable_secrets([*journal.known_secrets, *extra_secrets])
    source = PlaybookFiles(config.playbooks.resolved_dirs(loaded.path), check_context(config), remember=True)
    runner: list[PlaybookRunner] = []

    def rank(playbooks: Sequence[Playbook], model: str) -> list[tuple[Playbook, EntryMatch]]:
        if not runner:
            runner.append(build_playbook_runner(loaded, environ))
        return runner[0].rank(list(playbooks), model)

    a = config.alerts
    read_group = None
    if a.alertmanager_url:
        import time

        from console.adapters.alertmanager import Alertmanager
        from console.domain.alert_events import Notification, api_alerts

        alertmanager = Alertmanager(a.alertmanager_url, a.timeout_s)

        def read_group(notification: Notification) -> list[Alert]:
            return api_alerts(alertmanager.alerts(notification.group_labels, notification.receiver), time.time())

    return AlertIntake(journal, lambda: [item.playbook for item in source.load()[0]],
                       AlertLabels(a.model_label, a.version_label, a.segment_label), rank, read_group)


def resolve_fleet(loaded: LoadedConfig) -> LoadedConfig:
    """The config with ``fleet.discover``'s models added to ``router.backends`` (the config itself without it).

    Reads the registry's model names and the router's backends once (MLflow's client adapter loads MLflow).

    Raises:
        RewindError: one line naming ``fleet.discover`` and what failed.
    """
    rule = loaded.config.fleet.discover
    if rule is None:
        return loaded
    from dataclasses import replace

    from console.services.fleet import discover_backends

    config = loaded.config
    backends = discover_backends(build_registry(config), build_router(config), rule.pattern, rule.backend,
                                 config.router.backends)
    router = config.router.model_copy(update={"backends": backends})
    return replace(loaded, config=config.model_copy(update={"router": router}))


def for_model(loaded: LoadedConfig, model: str | None) -> tuple[LoadedConfig, str]:
    """The model a command acts on (``--model``, else ``default_model``) and the config that routes it.

    A model ``router.backends`` does not list is looked for by ``fleet.discover`` (the registry and the
    router are read only then), so that every command reaches the models the fleet view shows.

    Raises:
        ConfigError: no model given and no ``default_model``; RewindError: discovery failed (:func:`resolve_fleet`).
    """
    chosen = loaded.config.model_or_default(model)
    if chosen not in loaded.config.router.backends and loaded.config.fleet.discover is not None:
        loaded = resolve_fleet(loaded)
    return loaded, chosen


class ConsoleBackend:
    """The console's services over the configured systems, each built on first use.

    Built in the console's workers, never on its event loop: the registry
    adapter loads MLflow (about a second) on its first call.

    Args:
        loaded: the validated config and its path.
        environ: the environment (secrets, identity); default ``os.environ``.
    """

    def __init__(self, loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> None:
        import threading

        loaded = resolve_fleet(loaded)  # fleet.discover: the models its rule finds join the configured ones
        self.loaded = loaded
        self.config = loaded.config
        self.environ = environ
        self._lock = threading.Lock()
        self._live: LiveStatus | None = None
        self._features: FeatureCatalog | None = None
        self._rollback: RollbackService | None = None
        self._playbooks: PlaybookRunner | None = None
        self._shadow: ShadowService | None = None
        self._readiness: ReadinessService | None = None

    @property
    def models(self) -> tuple[str, ...]:
        """The models the router config names, the default one first."""
        names = list(self.config.router.backends)
        default = self.config.default_model
        if default:
            names = [default, *(n for n in names if n != default)]
        return tuple(names)

    @property
    def source(self) -> str:
        """The config file, for the console's header and help."""
        return str(self.loaded.path)

    def live(self) -> LiveStatus:
        """The per-system reads of the overview."""
        from console.services.live import LiveStatus

        with self._lock:
            if self._live is None:
                config = self.config
                metrics = build_metrics(config)
                self._live = LiveStatus(build_registry(config), build_router(config, metrics), metrics,
                                        config.metrics.specs(), config.metrics.traffic_metric,
                                        config.metrics.stable_alias,
                                        features=build_feature_evidence(config, metrics))
            return self._live

    def feature_catalog(self) -> FeatureCatalog:
        """The declared side of the features (registry tags, the feature store): Feast loads on first use.

        It shares the rollback service's registry and feature store, so one console loads Feast once.
        """
        rollback = self.rollback()
        with self._lock:
            if self._features is None:
                self._features = feature_catalog_of(rollback, self.loaded)
            return self._features

    def feature_rollbacks(self) -> FeatureRollbacks:
        """Plans feature rollbacks; the console carries them out with :meth:`rollback`'s procedure."""
        from console.services.features import FeatureRollbacks
        from console.services.rollback import new_action_id

        return FeatureRollbacks(self.feature_catalog(), new_action_id)

    def rollback(self) -> RollbackService:
        """The rollback use case (with the journal and the action lock)."""
        with self._lock:
            if self._rollback is None:
                self._rollback = build_rollback_service(self.loaded, self.environ)
            return self._rollback

    def playbooks(self) -> PlaybookRunner:
        """The playbook runner, over the same rollback use case (and journal) as the console's actions."""
        rollback = self.rollback()
        with self._lock:
            if self._playbooks is None:
                self._playbooks = build_playbook_runner(self.loaded, self.environ, rollback)
            return self._playbooks

    def shadow(self) -> ShadowService:
        """Shadow + promote over the same rollback use case (and journal) as the console's actions."""
        from console.services.shadow import ShadowService, ShadowSettings

        rollback = self.rollback()
        with self._lock:
            if self._shadow is None:
                s = self.config.shadow
                self._shadow = ShadowService(rollback, build_shadow_gate(self.config),
                                             ShadowSettings(alias=s.alias, price_per_cpu_second=s.price_per_cpu_second))
            return self._shadow

    def readiness(self) -> ReadinessService:
        """Rollback readiness over the same rollback use case (registry, router, metrics, journal)."""
        rollback = self.rollback()
        with self._lock:
            if self._readiness is None:
                self._readiness = build_readiness(self.loaded, self.environ, rollback)
            return self._readiness

    def recovery_stats(self) -> RecoveryStats:
        """Speed to rollback, read from the console's journal."""
        from console.services.recovery import RecoveryStats

        return RecoveryStats(self.rollback().journal)

    def fallback(self) -> FallbackService:
        """The fallback's readiness and actions over the same rollback use case (and journal)."""
        from console.services.fallback import FallbackService

        return FallbackService(self.rollback())

    def postmortems(self) -> PostMortems:
        """Closing and exporting incidents, with their metric history."""
        from console import __version__
        from console.services.history import HistoryService
        from console.services.postmortem import PostMortems

        journal = self.rollback().journal
        config = self.config

        def history() -> HistoryService:
            return HistoryService(self.live().metrics, journal, config.metrics.specs(),
                                  config.postmortem.history_margin_s, config.postmortem.history_points,
                                  traffic_metric=config.metrics.traffic_metric)

        return PostMortems(journal, history if config.metrics.specs() else None, f"rewind {__version__}")

    def close(self) -> None:
        """Close the journal's connections."""
        if self._rollback is not None:
            self._rollback.journal.close()


def build_readiness(loaded: LoadedConfig, environ: Mapping[str, str] | None = None,
                    rollback: RollbackService | None = None) -> ReadinessService:
    """The readiness checks over the configured systems, playbooks, owners and journal."""
    from console.adapters.alertmanager import Alertmanager
    from console.adapters.prometheus_readiness import PrometheusReadiness
    from console.domain.readiness import Owner
    from console.services.readiness import ReadinessService, ReadinessSettings

    config = loaded.config
    rollback = rollback or build_rollback_service(loaded, environ)
    metrics = rollback.metrics
    prometheus = (PrometheusReadiness(metrics, config.readiness.freshness_series)
                  if isinstance(metrics, PrometheusMetrics) else None)
    alerts = config.alerts
    alertmanager = Alertmanager(alerts.alertmanager_url, alerts.timeout_s) if alerts.alertmanager_url else None
    r = config.readiness
    settings = ReadinessSettings(
        owners={model: Owner(o.name, o.contact, o.oncall, tuple(o.escalation)) for model, o in config.owners.items()},
        webhooks=tuple(config.notify.webhooks), fresh_s=r.fresh_s, drill_max_s=r.drill_max_s,
        drill_max_age_s=r.drill_max_age_days * 86400, service_tag=config.features.service_tag,
    )
    return ReadinessService(rollback, prometheus, alertmanager, build_playbook_source(loaded), settings)
