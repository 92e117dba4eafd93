"""Configuration: one YAML file, every setting overridable by ``REWIND_...`` variables.

Where the file comes from, first match wins:

1. ``--config FILE``
2. ``REWIND_CONFIG``
3. ``$XDG_CONFIG_HOME/rewind/config.yaml`` (usually ``~/.config/rewind/config.yaml``)
4. the config the default sandbox wrote (``rewind sandbox up``)

Any setting can be overridden from the environment with its path in upper case,
sections joined by a double underscore: ``REWIND_METRICS__URL``,
``REWIND_ROUTER__SOCKET``, ``REWIND_DEFAULT_MODEL``. Values are read as YAML
scalars, so ``REWIND_METRICS__TIMEOUT_S=2.5`` is a number.

Secrets never live in this file: the Prometheus token or password, webhook URLs
(``notify.webhooks.NAME.url_env``/``url_file``) and endpoint headers
(``endpoints.NAME.headers_env``) and secret metrics headers (``metrics.headers_env``,
``metrics.headers_file``) are named by the environment variable or file that holds
them, and read only when they are used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from console.domain.authority import Permission, Policy
from console.domain.errors import ConfigError
from console.domain.metrics import (
    Criteria,
    DeltaKind,
    Direction,
    MetricKind,
    MetricSpec,
    Unit,
    validate_window,
    window_seconds,
)
from console.domain.routing import ServerNaming
from console.paths import default_sandbox_dir, shipped_dir, user_config_file, user_state_dir

ENV_PREFIX = "REWIND_"
CONFIG_ENV = "REWIND_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegistryConfig(_Section):
    """Where the model registry is: MLflow (the default), or GTO's git tags (``kind: gto``)."""

    kind: Literal["mlflow", "gto"] = "mlflow"
    tracking_uri: str = Field("", description="mlflow: sqlite:///path/to/mlflow.db or http(s)://mlflow-server")
    registry_uri: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    max_retries: int = Field(1, ge=0, le=10)
    repo: str | None = Field(None, description="gto: the local git repository holding the GTO tags")
    stages: dict[str, str] = Field(default_factory=dict, description="gto: alias -> GTO stage (else the same name)")
    push: bool = Field(False, description="gto: push every tag Rewind creates to origin")

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: dict[str, str]) -> dict[str, str]:
        for alias, stage in value.items():
            if not _GTO_NAME.match(stage):
                raise ValueError(f"{alias}: {stage!r} is not a GTO stage name (letters, digits, -, _, /)")
        doubled = sorted({s for s in value.values() if list(value.values()).count(s) > 1})
        if doubled:
            raise ValueError(f"stage {doubled[0]!r} is given to more than one alias")
        return value

    @model_validator(mode="after")
    def _kind_settings(self) -> RegistryConfig:
        if self.kind == "mlflow" and not self.tracking_uri:
            raise ValueError("tracking_uri is required (registry.kind is mlflow)")
        if self.kind == "gto" and not self.repo:
            raise ValueError("repo is required: the git repository of the GTO tags (registry.kind is gto)")
        if self.kind != "gto" and (self.repo or self.stages or self.push):
            raise ValueError("repo, stages and push are GTO settings: set registry.kind: gto")
        return self


_GTO_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-/_]*[a-zA-Z0-9])?$")


class KubernetesApiConfig(_Section):
    """How to reach the Kubernetes API for the Kubernetes routers (``router.gateway_api``, ``router.kserve``,
    ``router.argo_rollouts``).

    Either a kubeconfig file (and context), or the server URL with a bearer token from an environment
    variable or a file and the cluster's CA file. The token is read at each request, never stored.
    """

    kubeconfig: str | None = Field(None, description="a kubeconfig file; its current context unless `context`")
    context: str | None = None
    server: str | None = Field(None, description="https://host:port of the API server")
    token_env: str | None = None
    token_file: str | None = Field(None, description="e.g. /var/run/secrets/kubernetes.io/serviceaccount/token")
    ca_file: str | None = None
    namespace: str = Field("default", description="the namespace of objects named without one in router.backends")
    readback_timeout_s: float = Field(30.0, gt=0, description="how long a write waits for the controller to "
                                                             "report on it")
    served_query: str = Field(description="PromQL ($model): each (version, segment)'s cumulative requests; "
                                          "rollbacks are verified from it, never from the object's spec")

    @model_validator(mode="after")
    def _one_source(self) -> KubernetesApiConfig:
        if bool(self.kubeconfig) == bool(self.server):
            raise ValueError("give either kubeconfig or server (with token_env or token_file, and ca_file)")
        if self.token_env and self.token_file:
            raise ValueError("give token_env or token_file, not both")
        if "$model" not in self.served_query:
            raise ValueError("served_query must select the model with $model")
        return self


class GatewayApiConfig(KubernetesApiConfig):
    """``router.kind: gateway-api``: HTTPRoute backend weights (router.backends: model -> namespace/HTTPRoute)."""


_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


class _VersionLabelConfig(KubernetesApiConfig):
    version_label: str = Field("rewind.dev/model-version", description="the label carrying the model version")

    @field_validator("version_label")
    @classmethod
    def _label_key(cls, value: str) -> str:
        if not _LABEL_KEY.match(value) or len(value.rsplit("/", 1)[-1]) > 63:
            raise ValueError(f"{value!r} is not a Kubernetes label key (prefix/name)")
        return value


class KServeConfig(_VersionLabelConfig):
    """``router.kind: kserve``: an InferenceService's canaryTrafficPercent (router.backends: model ->
    namespace/InferenceService); the model version is the Knative Revisions' ``version_label``, set in
    ``spec.predictor.labels``."""

    readback_timeout_s: float = Field(60.0, gt=0, description="how long a write waits for the traffic status")


class ArgoRolloutsConfig(_VersionLabelConfig):
    """``router.kind: argo-rollouts``: a Rollout's abort (router.backends: model -> namespace/Rollout); the model
    version is the ReplicaSets' pod-template ``version_label``, set in ``spec.template.metadata.labels``."""

    readback_timeout_s: float = Field(60.0, gt=0, description="how long an abort waits for the controller")


class RouterConfig(_Section):
    """Which traffic router, how to reach its runtime API, and how models map onto it."""

    kind: Literal["haproxy", "gateway-api", "kserve", "argo-rollouts"] = "haproxy"
    socket: str | None = Field(None, description="haproxy: admin socket, a unix socket path or host:port")
    backends: dict[str, str] = Field(description="model name -> backend name (gateway-api: namespace/HTTPRoute; "
                                                 "kserve: namespace/InferenceService; argo-rollouts: "
                                                 "namespace/Rollout)")
    server_template: str = Field("v{version}", description="a version's server (gateway-api: backendRef name; "
                                                           "{model} allowed)")
    gateway_api: GatewayApiConfig | None = None
    kserve: KServeConfig | None = None
    argo_rollouts: ArgoRolloutsConfig | None = None
    timeout_s: float = Field(2.0, gt=0)
    shadow_map: str | None = Field(None, description="the runtime map file of shadow mirrors, as HAProxy names it")
    static_default: bool = Field(False, description="the backends answer a fixed default when no server can")

    @field_validator("server_template")
    @classmethod
    def _template(cls, value: str) -> str:
        ServerNaming(value)
        return value

    @model_validator(mode="after")
    def _kind_settings(self) -> RouterConfig:
        if self.kind == "haproxy" and not self.socket:
            raise ValueError("socket is required for kind haproxy")
        if self.kind == "gateway-api" and self.gateway_api is None:
            raise ValueError("gateway_api (the Kubernetes API's address and credentials) is required for kind "
                             "gateway-api")
        for kind, section in (("kserve", self.kserve), ("argo-rollouts", self.argo_rollouts)):
            if self.kind == kind and section is None:
                raise ValueError(f"{kind.replace('-', '_')} (the Kubernetes API's address and credentials) is "
                                 f"required for kind {kind}")
        return self


class MetricsAuth(_Section):
    """How to authenticate to Prometheus; secrets come from the environment or files only."""

    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None


def _confidence(value: float | None) -> float | None:
    """A confidence level must be strictly between 0.5 and 1."""
    if value is not None and not 0.5 < value < 1:
        raise ValueError(f"{value:g} is not a confidence between 0.5 and 1 (exclusive), such as 0.95")
    return value


def _duration_s(value: str) -> float:
    """Seconds in a PromQL duration such as ``15s`` or ``1m30s``."""
    return window_seconds(value)


class JudgeConfig(_Section):
    """How cells are judged: the defaults every metric's criteria may override."""

    confidence: float = Field(0.95, description="confidence of a ratio's intervals, between 0.5 and 1")
    evaluations: int = Field(4, ge=1, le=60, description="metrics without counts: evaluations over the line for "
                                                         "a breach (1: judge the instant value)")
    step: str = Field("15s", description="metrics without counts: time between those evaluations")

    @field_validator("confidence")
    @classmethod
    def _check_confidence(cls, value: float) -> float:
        return _confidence(value)

    @field_validator("step")
    @classmethod
    def _step(cls, value: str) -> str:
        if _duration_s(value) < 1:
            raise ValueError(f"{value!r} is shorter than one second")
        return value


class CriteriaConfig(_Section):
    """When a cell breaches."""

    threshold: float | None = None
    max_delta: float | None = Field(None, ge=0)
    delta_kind: DeltaKind = DeltaKind.ABSOLUTE
    min_traffic: float | None = Field(None, ge=0)
    confidence: float | None = None
    evaluations: int | None = Field(None, ge=1, le=60)
    step: str | None = None

    @field_validator("confidence")
    @classmethod
    def _check_confidence(cls, value: float | None) -> float | None:
        return _confidence(value)

    @field_validator("step")
    @classmethod
    def _step(cls, value: str | None) -> str | None:
        return None if value is None else JudgeConfig._step(value)


class CountsConfig(_Section):
    """A ratio's two counts over ``$window`` per (version, segment), each a PromQL template."""

    numerator: str = Field(description="e.g. sum by (version, segment) (increase(errors_total{...}[$window]))")
    denominator: str = Field(description="e.g. sum by (version, segment) (increase(requests_total{...}[$window]))")
    counted: str = Field("requests", description="what the denominator counts, for reasons: requests, labels")

    @field_validator("numerator", "denominator")
    @classmethod
    def _template(cls, value: str) -> str:
        if "$model" not in value:
            raise ValueError("the query must select the model with $model")
        if "$window" not in value:
            raise ValueError("the query must count over $window (e.g. increase(x[$window]))")
        return value


class MetricConfig(_Section):
    """One catalogue metric."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    query: str
    unit: Unit
    direction: Direction = Direction.HIGHER_IS_WORSE
    kind: MetricKind = MetricKind.VALUE
    counts: CountsConfig | None = None
    criteria: CriteriaConfig = CriteriaConfig()

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        if "$model" not in value:
            raise ValueError("the query must select the model with $model")
        return value

    @model_validator(mode="after")
    def _counts(self) -> MetricConfig:
        judged = self.criteria.threshold is not None or self.criteria.max_delta is not None
        if self.kind is MetricKind.RATIO and self.counts is None and judged:
            raise ValueError(f"metric {self.name!r} is a ratio with criteria: give its counts "
                             "(counts.numerator and counts.denominator), so it is judged on them")
        if self.counts is not None and self.kind is not MetricKind.RATIO:
            raise ValueError(f"metric {self.name!r} has counts but is a {self.kind.value}: only a ratio has counts")
        return self

    def spec(self, judge: JudgeConfig | None = None) -> MetricSpec:
        """The pure catalogue entry, with the judge's defaults where the criteria set none."""
        judge = judge or JudgeConfig()
        c = self.criteria
        return MetricSpec(
            name=self.name,
            title=self.title,
            query=self.query,
            unit=self.unit,
            direction=self.direction,
            criteria=Criteria(c.threshold, c.max_delta, c.delta_kind, c.min_traffic,
                              confidence=c.confidence if c.confidence is not None else judge.confidence,
                              evaluations=c.evaluations if c.evaluations is not None else judge.evaluations,
                              step_s=_duration_s(c.step or judge.step)),
            kind=self.kind,
            numerator=self.counts.numerator if self.counts else None,
            denominator=self.counts.denominator if self.counts else None,
            counted=self.counts.counted if self.counts else "requests",
        )


class MetricsHeaders(_Section):
    """Extra HTTP headers sent with every query, e.g. the tenant of a multi-tenant store (``X-Scope-OrgID``).

    ``headers`` holds values that are not secret and may live in the file; a value that is a secret
    is named by the environment variable (``headers_env``) or the file (``headers_file``) holding it.
    """

    headers: dict[str, str] = Field(default_factory=dict, description="header name -> value (not a secret)")
    headers_env: dict[str, str] = Field(default_factory=dict,
                                        description="header name -> environment variable holding its value")
    headers_file: dict[str, str] = Field(default_factory=dict, description="header name -> file holding its value")

    @field_validator("headers", "headers_env", "headers_file", mode="before")
    @classmethod
    def _header_spelling(cls, value: object) -> object:
        # REWIND_METRICS__HEADERS__X-SCOPE-ORGID arrives lower-cased after the file's "X-Scope-OrgID":
        # header names are case-insensitive, so keep one entry per header, the later (the override).
        if not isinstance(value, dict):
            return value
        kept: dict[object, object] = {}
        for header, setting in value.items():
            for existing in [k for k in kept if str(k).lower() == str(header).lower()]:
                del kept[existing]
            kept[header] = setting
        return kept

    @field_validator("headers", "headers_env", "headers_file")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for header, setting in value.items():
            if not _HEADER_NAME.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if header.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{header} is set by Rewind itself")
            if any(ord(c) < 32 or ord(c) == 127 for c in setting):
                raise ValueError(f"{header}: the setting holds a control character")
        return value

    @field_validator("headers")
    @classmethod
    def _header_not_secret(cls, value: dict[str, str]) -> dict[str, str]:
        if any(header.lower() in _SECRET_HEADERS for header in value):
            raise ValueError("credentials never live in the config: use headers_env or headers_file "
                             "(or metrics.auth)")
        return value

    @field_validator("headers_env")
    @classmethod
    def _header_env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env in value.items():
            if not _ENV_NAME.match(env):
                raise ValueError(f"{header}: {env!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _header_once(self) -> MetricsHeaders:
        seen: dict[str, str] = {}
        for setting in ("headers", "headers_env", "headers_file"):
            for header in getattr(self, setting):
                if header.lower() in seen:
                    raise ValueError(f"header {header} is given by both {seen[header.lower()]} and {setting}")
                seen[header.lower()] = setting
        return self

    def header_sources(self) -> tuple[SecretSource, ...]:
        """Where each secret header value is read from (to read it, or to redact it from the journal)."""
        return (tuple(SecretSource(f"metrics.headers_env.{h}", env, None) for h, env in self.headers_env.items())
                + tuple(SecretSource(f"metrics.headers_file.{h}", None, f) for h, f in self.headers_file.items()))


class MetricsConfig(MetricsHeaders):
    """Where Prometheus (or a Prometheus-compatible store) is and what to ask it."""

    url: str
    auth: MetricsAuth = MetricsAuth()
    window: str = "5m"
    timeout_s: float = Field(5.0, gt=0)
    version_label: str = "version"
    segment_label: str = "segment"
    model_label: str = Field("model", description="the label that names the model in the catalogue's series "
                                                  "(a fleet refresh groups by it)")
    stable_alias: str = "champion"
    traffic_metric: str | None = None
    judge: JudgeConfig = JudgeConfig()
    catalogue: list[MetricConfig] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        return validate_window(value)

    @model_validator(mode="after")
    def _authorization_once(self) -> MetricsConfig:
        given = [h for h in (*self.headers_env, *self.headers_file) if h.lower() == "authorization"]
        if given and (self.auth.bearer_token_env or self.auth.bearer_token_file or self.auth.username):
            raise ValueError(f"the {given[0]} header and metrics.auth both set the credentials: keep one")
        return self

    @model_validator(mode="after")
    def _names(self) -> MetricsConfig:
        names = [m.name for m in self.catalogue]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"catalogue names metric {duplicates[0]!r} twice")
        if self.traffic_metric is not None and self.traffic_metric not in names:
            raise ValueError(f"traffic_metric {self.traffic_metric!r} is not in the catalogue")
        if self.version_label == self.segment_label:
            raise ValueError(f"version_label and segment_label are both {self.version_label!r}: "
                             "a cell needs two labels")
        if self.model_label in (self.version_label, self.segment_label):
            raise ValueError(f"model_label is {self.model_label!r}, as version_label or segment_label: "
                             "a fleet's series need three labels")
        return self

    def specs(self) -> tuple[MetricSpec, ...]:
        """The catalogue as pure specs, in file order."""
        return tuple(m.spec(self.judge) for m in self.catalogue)


class JournalConfig(_Section):
    """Where the decision journal is kept."""

    url: str | None = Field(None, description="sqlite:///path or postgresql://...; default: XDG state dir")

    def resolved_url(self) -> str:
        """The database URL, defaulting to SQLite under the XDG state dir."""
        return self.url or f"sqlite:///{user_state_dir() / 'journal.db'}"


class RollbackConfig(_Section):
    """How rollbacks are carried out: aliases, gradual steps, gates and verification."""

    candidate_alias: str = "challenger"
    gradual_steps: list[float] = Field(default_factory=lambda: [0.5, 0.25, 0.0], min_length=1)
    gate_window_s: float = Field(20.0, ge=0)
    gate_metrics: list[str] = Field(default_factory=list, description="empty: every metric with criteria")
    verify_window_s: float = Field(10.0, ge=0)
    verify_metrics: list[str] = Field(default_factory=list, description="empty: every metric with criteria")
    poll_interval_s: float = Field(1.0, gt=0)

    @field_validator("gradual_steps")
    @classmethod
    def _steps(cls, value: list[float]) -> list[float]:
        if value[-1] != 0 or any(not 0 <= f < 1 for f in value) or value != sorted(value, reverse=True):
            raise ValueError("must be decreasing fractions below 1 of the leaving weight, ending with 0")
        return value


class ShadowConfig(_Section):
    """Shadow + promote: the registry alias of the shadow, and the promotion gate's window and limits."""

    alias: str = "shadow"
    window: str = Field("10m", description="every segment must pass continuously this long before a promotion")
    evidence_window: str = Field("5m", description="each evaluation judges the counts of this window")
    step_s: float = Field(15.0, gt=0, description="seconds between the evaluations the gate's clock reads")
    price_per_cpu_second: float | None = Field(None, gt=0, description="set to judge cost per 1k predictions")
    max_disagreement: float = Field(0.05, gt=0, lt=1)
    max_score_delta_p95: float = Field(0.10, gt=0)
    max_error_delta: float = Field(0.01, gt=0, lt=1)
    latency_ratio: float = Field(1.2, gt=0)
    latency_slack_s: float = Field(0.02, ge=0)
    min_coverage: float = Field(0.95, gt=0, lt=1)
    min_pairs: int = Field(30, ge=1)
    max_cost_ratio: float = Field(1.5, gt=0)
    max_accuracy_drop: float = Field(0.02, gt=0, lt=1)

    @field_validator("window", "evidence_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        _duration_s(value)
        return value

    @property
    def window_s(self) -> float:
        """The gate's window in seconds."""
        return _duration_s(self.window)


class FeaturesConfig(_Section):
    """Features: where the feature store is, what the servers report of it, and when inputs are abnormal."""

    repo: Path | None = Field(None, description="the Feast repository's directory (its feature_store.yaml); "
                                                "relative to the config file")
    service_tag: str = Field("feast.feature_service", min_length=1)
    binding_metric: str = "rewind_feature_binding_info"
    value_metric: str = "rewind_feature_value"
    missing_metric: str = "rewind_feature_missing_total"
    model_label: str = "model"
    window: str | None = Field(None, description="inputs are judged over this window; default metrics.window")
    recent: str = Field("30m", description="a feature version that landed this recently is a suspect")
    psi_max: float = Field(0.25, gt=0)
    out_of_range_max: float = Field(0.05, gt=0, lt=1)
    missing_max: float = Field(0.05, gt=0, lt=1)
    min_count: int = Field(50, ge=1)
    confidence: float = Field(0.999, ge=0.5, lt=1, description="a shift must be this sure not to be chance")
    verify_window_s: float = Field(90.0, ge=0)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return None if value is None else validate_window(value)

    @field_validator("recent")
    @classmethod
    def _recent(cls, value: str) -> str:
        _duration_s(value)
        return value

    @property
    def recent_s(self) -> float:
        """``recent`` in seconds."""
        return _duration_s(self.recent)

    def resolved_repo(self, config_path: Path | None) -> Path | None:
        """The repository's directory, relative paths taken from the config file's directory."""
        if self.repo is None:
            return None
        repo = self.repo.expanduser()
        base = config_path.parent if config_path is not None else Path.cwd()
        return repo if repo.is_absolute() else base / repo


class PostmortemConfig(_Section):
    """How post-mortems read the metrics' history from Prometheus (on close and on export)."""

    history_margin_s: float = Field(900.0, ge=0, description="read this long before the impact and after the end")
    history_points: int = Field(300, ge=10, le=11000, description="at most this many points per series")


class RolesConfig(_Section):
    """Who may view, act and approve; identity comes from the OS user and its groups."""

    users: dict[str, list[Literal["view", "act", "approve"]]] = Field(default_factory=dict)
    groups: dict[str, list[Literal["view", "act", "approve"]]] = Field(default_factory=dict)
    default: list[Literal["view", "act", "approve"]] = Field(default_factory=lambda: ["view"])
    two_person: list[str] = Field(default_factory=list, description="models whose actions need a second person")
    approval_timeout_s: float = Field(900.0, gt=0)

    def policy(self) -> Policy:
        """The pure policy."""
        def grant(names: list[str]) -> frozenset[Permission]:
            return frozenset(Permission(n) for n in names)

        return Policy(
            users={u: grant(p) for u, p in self.users.items()},
            groups={g: grant(p) for g, p in self.groups.items()},
            default=grant(self.default),
            two_person=frozenset(self.two_person),
        )


_TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "transfer-encoding", "connection",
                               "idempotency-key"})
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _http_url(value: str | None) -> str | None:
    """A literal URL must be an absolute http(s) URL."""
    if value is not None and not re.match(r"^https?://[^/\s?#]+", value):
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


def _target_names(names: Iterable[str], what: str) -> None:
    """Webhook and endpoint names are what playbooks refer to: lower case, as the env overrides give them."""
    for name in names:
        if not _TARGET_NAME.match(name):
            raise ValueError(f"{what} name {name!r} must be lower case letters, digits, '-' and '_'")


@dataclass(frozen=True)
class SecretSource:
    """Where one secret setting's value comes from (for reading it, and for redacting it from the journal).

    Attributes:
        setting: the setting's path without its ``_env``/``_file`` suffix, e.g.
            ``notify.webhooks.oncall.url`` or ``endpoints.pager.headers_env.Authorization``.
        env: the environment variable that holds it, if any.
        file: the file that holds it, if any.
    """

    setting: str
    env: str | None
    file: str | None


class _UrlSource(_Section):
    """A URL given literally (``url``) or, as it usually is a secret, by env var or file (``url_env``, ``url_file``)."""

    url: str | None = Field(None, repr=False, description="literal URL: only for receivers without a secret")
    url_env: str | None = Field(None, description="environment variable holding the URL")
    url_file: str | None = Field(None, description="file holding the URL")
    timeout_s: float = Field(5.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _literal_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("url_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> _UrlSource:
        given = [k for k in ("url", "url_env", "url_file") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f"found {' and '.join(given)}" if given else "found none"
            raise ValueError(f"give exactly one of url, url_env or url_file ({found})")
        return self

    def url_source(self, setting: str) -> SecretSource | None:
        """Where the URL is read from when it is not literal; ``setting`` is this entry's path."""
        if self.url is not None:
            return None
        return SecretSource(f"{setting}.url", self.url_env, self.url_file)


class WebhookConfig(_UrlSource):
    """A Slack-compatible incoming webhook (it takes ``{"text": ...}`` as JSON)."""


class NotifyConfig(_Section):
    """Where playbook ``notify`` steps post: webhooks by name."""

    webhooks: dict[str, WebhookConfig] = Field(default_factory=dict)

    @field_validator("webhooks")
    @classmethod
    def _names(cls, value: dict[str, WebhookConfig]) -> dict[str, WebhookConfig]:
        _target_names(value, "webhook")
        if "copy" in value:
            raise ValueError("'copy' is not a webhook name: a notify step's channel 'copy' shows the message instead")
        return value

    def secret_sources(self) -> tuple[SecretSource, ...]:
        """Every webhook URL read from the environment or a file."""
        found = (w.url_source(f"notify.webhooks.{name}") for name, w in self.webhooks.items())
        return tuple(s for s in found if s is not None)


class EndpointConfig(_UrlSource):
    """An HTTP endpoint a playbook ``http`` action may call with a JSON body."""

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers_env: dict[str, str] = Field(default_factory=dict,
                                        description="header name -> environment variable holding its value")

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("headers_env", mode="before")
    @classmethod
    def _one_spelling(cls, value: object) -> object:
        # Header names are case-insensitive, and REWIND_ENDPOINTS__X__HEADERS_ENV__AUTHORIZATION arrives
        # lower-cased after the file's "Authorization": keep one entry per header, the later (the override).
        if not isinstance(value, dict):
            return value
        kept: dict[str, object] = {}
        for header, env in value.items():
            for existing in [k for k in kept if isinstance(k, str) and isinstance(header, str)
                             and k.lower() == header.lower()]:
                del kept[existing]
            kept[header] = env
        return kept

    @field_validator("headers_env")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for header, env in value.items():
            if not _HEADER_NAME.match(header):
                raise ValueError(f"{header!r} is not an HTTP header name")
            if header.lower() in _RESERVED_HEADERS:
                raise ValueError(f"{header} is set by Rewind itself")
            if not _ENV_NAME.match(env):
                raise ValueError(f"{header}: {env!r} is not an environment variable name (values come from env only)")
        return value

    def secret_sources(self, setting: str) -> tuple[SecretSource, ...]:
        """The URL (unless literal) and every header value; ``setting`` is this entry's path."""
        url = self.url_source(setting)
        headers = tuple(SecretSource(f"{setting}.headers_env.{h}", env, None) for h, env in self.headers_env.items())
        return ((url,) if url else ()) + headers


def default_playbook_dirs() -> list[Path]:
    """The shipped playbooks (``shipped_dir``), then ``$XDG_CONFIG_HOME/rewind/playbooks``."""
    return [shipped_dir("playbooks"), user_config_file().parent / "playbooks"]


class PlaybooksConfig(_Section):
    """Where playbooks are found, and whether their rollbacks must be confirmed."""

    dirs: list[Path] = Field(default_factory=default_playbook_dirs,
                             description="searched in order; relative paths are relative to the config file")
    require_confirmation: bool = Field(True, description="refuse `confirm: false` on rollback and undo actions")

    @field_validator("dirs", mode="before")
    @classmethod
    def _path_list(cls, value: object) -> object:
        # From the environment a list arrives as text: REWIND_PLAYBOOKS__DIRS=/srv/playbooks:~/playbooks
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part.strip()]
        return value

    def resolved_dirs(self, config_path: Path | None = None) -> tuple[Path, ...]:
        """The directories with ``~`` expanded, relative ones taken from the config file's directory."""
        base = config_path.parent if config_path is not None else Path.cwd()
        return tuple(p if p.is_absolute() else base / p for p in (d.expanduser() for d in self.dirs))


class OwnerConfig(_Section):
    """Who owns a model: a named person, how to reach them, the on-call channel, who is paged next.

    Blank values load (a readiness check says what is missing); they never stop the console.
    """

    name: str = Field("", description="a named person, not a team alias")
    contact: str = Field("", description="how to reach them: e-mail, phone, chat handle")
    oncall: str = Field("", description="the notify webhook of the on-call channel (a name under notify.webhooks)")
    escalation: list[str] = Field(default_factory=list, description="who is paged next, in order")


class AlertsConfig(_Section):
    """Where the alerts go: the Alertmanager that routes Prometheus' alerts to people and to Rewind."""

    alertmanager_url: str | None = Field(None, description="e.g. http://127.0.0.1:9093; readiness checks its routes")
    timeout_s: float = Field(5.0, gt=0)
    listen: str = Field("127.0.0.1:9095", description="where `rewind alerts serve` takes Alertmanager's webhook")
    token_file: Path | None = Field(None, description="a file holding the bearer token Alertmanager must send "
                                                      "(its credentials_file); unset: no token is asked for")
    model_label: str = Field("model", description="the alert label that names the model")
    version_label: str = Field("version", description="the alert label that names the version")
    segment_label: str = Field("segment", description="the alert label that names the segment")


class ReadinessConfig(_Section):
    """The ``rewind ready`` checks' settings."""

    freshness_series: str | None = Field(
        None, description='one series every serving version updates in every segment, for its newest sample\'s '
                          'age, e.g. requests_total{model="$model"}; unset: only the catalogue\'s values are checked')
    fresh_s: float = Field(30.0, gt=0, description="a series whose newest sample is older is not fresh")
    drill_max_s: float = Field(600.0, gt=0, description="a drill must reach a verified rollback this fast")
    drill_max_age_days: float = Field(30.0, gt=0, description="a drill older than this no longer counts")


class DiscoverConfig(_Section):
    """Models found by a naming rule: registered models whose names match, and that the router has a backend for."""

    pattern: str = Field(description="shell-style pattern over the registry's model names, such as 'fraud-*'")
    backend: str = Field("{model}", description="a discovered model's backend on the router: {model} is its name, "
                                                "{model_id} its name with '_' for every other character than "
                                                "letters and digits (the sandbox's: be_{model_id})")

    @model_validator(mode="after")
    def _rule(self) -> DiscoverConfig:
        from console.domain.fleet import validate_discovery

        validate_discovery(self.pattern, self.backend)
        return self


class FleetConfig(_Section):
    """Which models make the fleet: those in ``router.backends``, plus with ``discover`` the ones the rule finds."""

    discover: DiscoverConfig | None = None


class Config(_Section):
    """The whole configuration."""

    registry: RegistryConfig
    router: RouterConfig
    metrics: MetricsConfig
    journal: JournalConfig = JournalConfig()
    rollback: RollbackConfig = RollbackConfig()
    shadow: ShadowConfig = ShadowConfig()
    features: FeaturesConfig = FeaturesConfig()
    postmortem: PostmortemConfig = PostmortemConfig()
    roles: RolesConfig | None = None
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    playbooks: PlaybooksConfig = Field(default_factory=lambda: PlaybooksConfig())
    alerts: AlertsConfig = AlertsConfig()
    owners: dict[str, OwnerConfig] = Field(default_factory=dict, description="model name -> its owner")
    readiness: ReadinessConfig = ReadinessConfig()
    fleet: FleetConfig = FleetConfig()
    default_model: str | None = None

    @field_validator("endpoints")
    @classmethod
    def _endpoint_names(cls, value: dict[str, EndpointConfig]) -> dict[str, EndpointConfig]:
        _target_names(value, "endpoint")
        return value

    def outbound_secrets(self) -> tuple[SecretSource, ...]:
        """Where every webhook URL, endpoint credential and metrics header secret is read from
        (to read it, or to redact it)."""
        return self.notify.secret_sources() + tuple(
            s for name, e in self.endpoints.items() for s in e.secret_sources(f"endpoints.{name}")
        ) + self.metrics.header_sources()

    def policy(self) -> Policy:
        """Who may do what; with no ``roles`` section everyone may act (a sandbox, one responder)."""
        return self.roles.policy() if self.roles is not None else Policy(enforced=False)

    @model_validator(mode="after")
    def _discovery_router(self) -> Config:
        if self.fleet.discover is not None and self.router.kind != "haproxy":
            raise ValueError(f"fleet.discover needs a router that lists its backends (haproxy); router.kind "
                             f"{self.router.kind} cannot: list the models in router.backends instead")
        return self

    @model_validator(mode="after")
    def _rollback_metrics(self) -> Config:
        names = {m.name for m in self.metrics.catalogue}
        for setting in ("gate_metrics", "verify_metrics"):
            unknown = [m for m in getattr(self.rollback, setting) if m not in names]
            if unknown:
                raise ValueError(f"rollback.{setting} names {unknown[0]!r}, which is not in metrics.catalogue")
        return self

    def judged_metrics(self, chosen: list[str]) -> tuple[str, ...]:
        """``chosen``, or when empty every catalogue metric that has criteria."""
        return tuple(chosen) or tuple(m.name for m in self.metrics.specs() if m.criteria.judges)

    def model_or_default(self, model: str | None) -> str:
        """The model named on the command line, else ``default_model``.

        Raises:
            ConfigError: when neither names a model.
        """
        chosen = model or self.default_model
        if not chosen:
            raise ConfigError("no model given: pass --model NAME or set default_model in the config")
        return chosen


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and the file it came from."""

    config: Config
    path: Path


def find_config_path(explicit: str | None = None) -> Path:
    """Find the config file by the documented order.

    Raises:
        ConfigError: when no config file can be found.
    """
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    user = user_config_file()
    if user.exists():
        return user
    sandbox = default_sandbox_dir() / "rewind.yaml"
    if sandbox.exists():
        return sandbox
    raise ConfigError(
        f"no config found: pass --config FILE, set {CONFIG_ENV}, create {user}, "
        "or start the sandbox with `rewind sandbox up`"
    )


def _env_overrides(environ: dict[str, str]) -> dict:
    """Nested settings from ``REWIND_SECTION__KEY=value`` variables."""
    top_level = set(Config.model_fields)
    overrides: dict = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        if path[0] not in top_level or not all(path):
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)):
            value = raw
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: conflicts with another REWIND_ variable")
        node[path[-1]] = value
    return overrides


def _merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return f"{where}: {message}"


def parse_config(data: object, source: str, environ: dict[str, str] | None = None) -> Config:
    """Validate config data (already read from YAML), applying environment overrides.

    Raises:
        ConfigError: naming the source and the first setting at fault.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {source}: expected a mapping of sections, found {type(data).__name__}")
    merged = _merge(data, _env_overrides(dict(os.environ if environ is None else environ)))
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"config {source}: {_describe(errors[0])}{more}") from None


def load_config(explicit: str | None = None, environ: dict[str, str] | None = None) -> LoadedConfig:
    """Find, read and validate the config.

    Raises:
        ConfigError: when the file is missing, unreadable, malformed or incomplete.
    """
    path = find_config_path(explicit)
    return LoadedConfig(parse_config(_read_yaml(path), str(path), environ), path)


def _read_yaml(path: Path) -> object:
    """The YAML document in ``path``.

    Raises:
        ConfigError: one line naming the file: missing, unreadable, or not YAML (with the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config {path}: {where}not valid YAML ({problem})") from None


@dataclass(frozen=True)
class JournalSettings:
    """What the journal commands need from the config, read without requiring the rest of it.

    Attributes:
        journal: the journal section (the default one when there is no config file).
        metrics_auth: the metrics credentials' sources, so their values can be
            redacted from events; ``None`` when absent or invalid.
        path: the config file read, or ``None`` when there is none.
        outbound: where the webhook URLs and endpoint credentials are read from,
            so their values can be redacted from events too.
    """

    journal: JournalConfig
    metrics_auth: MetricsAuth | None
    path: Path | None
    outbound: tuple[SecretSource, ...] = ()


def load_journal_settings(explicit: str | None = None, environ: dict[str, str] | None = None) -> JournalSettings:
    """Read only the journal section (and the metrics credentials' sources) of the config.

    The journal must stay readable on a machine with no registry, router or
    metrics configured: with no config file at all, the default journal under
    the XDG state directory is used. ``REWIND_JOURNAL__URL`` overrides as usual.

    Raises:
        ConfigError: when a named config file is missing or unreadable, is not
            YAML, or its journal section is invalid.
    """
    env = dict(os.environ if environ is None else environ)
    try:
        path: Path | None = find_config_path(explicit)
    except ConfigError:
        path = None  # no config anywhere: the default journal
    data: object = {}
    if path is not None:
        data = _read_yaml(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config {path}: expected a mapping of sections, found {type(data).__name__}")
    merged = _merge(data, _env_overrides(env))  # type: ignore[arg-type]
    source = str(path) if path else "environment"
    try:
        journal = JournalConfig.model_validate(merged.get("journal") or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        error = {**error, "loc": ("journal", *error["loc"])}
        raise ConfigError(f"config {source}: {_describe(error)}") from None
    auth_data = (merged.get("metrics") or {}).get("auth") if isinstance(merged.get("metrics"), dict) else None
    try:
        auth = MetricsAuth.model_validate(auth_data) if isinstance(auth_data, dict) else None
    except ValidationError:
        auth = None  # not the journal's business: `rewind status` reports it
    return JournalSettings(journal, auth, path, _outbound_sources(merged))


def _outbound_sources(merged: dict) -> tuple[SecretSource, ...]:
    """The secret sources of every valid webhook, endpoint and metrics header (invalid ones are not the
    journal's business)."""
    found: list[SecretSource] = []
    try:
        found.extend(NotifyConfig.model_validate(merged.get("notify") or {}).secret_sources())
    except ValidationError:
        pass
    endpoints = merged.get("endpoints")
    for name, data in (endpoints.items() if isinstance(endpoints, dict) else ()):
        try:
            found.extend(EndpointConfig.model_validate(data).secret_sources(f"endpoints.{name}"))
        except ValidationError:
            pass
    metrics = merged.get("metrics")
    if isinstance(metrics, dict):
        try:
            found.extend(MetricsHeaders.model_validate(
                {k: v for k, v in metrics.items() if k in MetricsHeaders.model_fields}).header_sources())
        except ValidationError:
            pass
    return tuple(found)
