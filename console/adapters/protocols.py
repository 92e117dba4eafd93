"""The small protocols the services depend on; the concrete adapters implement them.

Services import this module and :mod:`console.domain`, never a concrete adapter,
so tests can hand them fakes and the CLI and TUI can hand them real systems.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from console.domain.alerting import AlertRouting, AlertRule
from console.domain.delivery import Delivery
from console.domain.feature_store import Projection, ServiceInfo, ViewInfo
from console.domain.journal import Event, EventDraft, EventKind, IncidentHead, JournalNews, LockChange
from console.domain.metrics import MetricSpec, QueryResult, RangeResult
from console.domain.routing import FallbackState, Mirror, RouterState
from console.domain.versions import AliasMap, ModelVersion

if TYPE_CHECKING:  # the playbook language loads only where playbooks are used
    from console.domain.features import Binding
    from console.domain.playbook import LoadedPlaybook, Playbook
    from console.domain.playbook_check import Problem


class Registry(Protocol):
    """A model registry with versions, aliases and version tags."""

    def describe(self) -> str:
        """Where the registry is, for messages (never with credentials)."""

    def list_versions(self, model: str, with_signatures: bool = False) -> list[ModelVersion]:
        """Every version of ``model``, each with the aliases pointing at it; NotFoundError for an unknown model."""

    def list_models(self) -> list[str]:
        """Every registered model's name, sorted (what ``fleet.discover`` matches its pattern against)."""

    def get_aliases(self, model: str) -> AliasMap:
        """The model's aliases; raises NotFoundError for an unknown model."""

    def get_signature(self, model: str, version: str) -> dict | None:
        """A version's model signature (``inputs``/``outputs`` as JSON text), or ``None``."""

    def get_alias(self, model: str, alias: str) -> str | None:
        """The version one alias points to, or ``None``."""

    def set_alias(self, model: str, alias: str, version: str, expected: str | None,
                  checked: bool = False) -> str | None:
        """Point ``alias`` at ``version`` if it still points at ``expected``; return the read-back.

        ``checked``: the caller compared ``expected`` with a read made under its
        action lock just before, so the alias is written without reading it again.
        """

    def delete_alias(self, model: str, alias: str, expected: str | None, checked: bool = False) -> str | None:
        """Remove ``alias`` if it still points at ``expected``; return the read-back (``None``)."""

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Write one tag on one version."""

    def get_version_tag(self, model: str, version: str, key: str) -> str | None:
        """One tag of one version (``None``: absent); NotFoundError for an unknown model or version."""

    def swap_version_tag(self, model: str, version: str, key: str, value: str | None,
                         expected: str | None) -> str | None:
        """Set (``value`` ``None``: delete) a version's tag if it still is ``expected``; return the read-back.

        Raises ConflictError when the tag is neither ``expected`` nor ``value`` already.
        """

    def tagged_versions(self, key: str, value: str) -> list[tuple[str, str]]:
        """Every ``(model, version)`` in the registry whose tag ``key`` is ``value``."""

    def load(self, model: str, version: str) -> dict[str, object]:
        """Fetch a version's artifacts and load the model; what was loaded (``seconds``, ``bytes``...).

        Raises RegistryError when an artifact is missing or the model does not load.
        """


class FeatureStore(Protocol):
    """A feature store's registry (Feast): services, feature views and their saved versions."""

    def describe(self) -> str:
        """Where the store's registry is, for messages."""

    def service(self, name: str) -> ServiceInfo:
        """A feature service and its projections; NotFoundError when it does not exist."""

    def services(self) -> list[ServiceInfo]:
        """Every feature service of the project."""

    def view(self, name: str) -> ViewInfo:
        """A feature view's saved versions and its active one; NotFoundError when it does not exist."""

    def ensure_service(self, name: str, projections: Sequence[Projection]) -> ServiceInfo:
        """Create the service unless it exists with the same projections (ConflictError when it differs); read back."""

    def pin_view(self, view: str, version: int, expected: int | None) -> int:
        """Make ``version`` the view's active one if the active one still is ``expected``; the read-back."""


class FeatureTelemetry(Protocol):
    """What the model servers report of the features they consume (Prometheus)."""

    def bindings(self, model: str, lookback_s: float) -> list[Binding]:
        """Each version's observed binding per feature view, with when it was first seen within ``lookback_s``."""

    def inputs(self, model: str, window: str) -> tuple[dict[tuple[str, str, str], list[tuple[float, float]]],
                                                       dict[tuple[str, str, str], float]]:
        """Per (version, segment, feature): the value histogram's increase per bucket, and missing values."""


class Router(Protocol):
    """A traffic router that splits a model's traffic between versions by weight."""

    counts_from_metrics: bool
    """Whether :meth:`served` counts from the per-version metrics, which lag a scrape or more (a Kubernetes
    object counts nothing), rather than from the router's own counters: then no request counted proves nothing."""

    reports_health: bool
    """Whether :meth:`fallback` reports each server's health checks (HAProxy); a Kubernetes object reports none
    (the cluster's readiness probes decide which pods get traffic), and its :meth:`fallback` refuses."""

    def describe(self) -> str:
        """Where the router is, for messages."""

    def read_state(self, model: str) -> RouterState:
        """Every server of the model's backend with its weight and state."""

    def set_weights(
        self, model: str, weights: dict[str, int], expected: dict[str, int] | None, checked: bool = False
    ) -> RouterState:
        """Set several versions' weights as one operation, if they still are ``expected``; return the read-back.

        ``checked``: the caller compared ``expected`` (every version set) with a
        state read under its action lock just before; the router is not read again.
        """

    def served(self, model: str) -> dict[str, int]:
        """Requests each version has been sent so far (a counter, for measuring drains)."""

    def read_mirror(self, model: str) -> Mirror | None:
        """Which version shadows which for the model, or ``None``; RouterError when no mirror is configured."""

    def set_mirror(self, model: str, mirror: Mirror | None, expected: Mirror | None) -> Mirror | None:
        """Replace the model's mirror if it still is ``expected`` (ConflictError otherwise); the read-back."""

    def fallback(self, model: str) -> FallbackState:
        """Every server's health and counters (the backups among them) and the router's own default answers."""

    def set_admin_state(self, model: str, servers: dict[str, str], expected: dict[str, str] | None) -> FallbackState:
        """Put servers in ``maint`` or back to ``ready`` if they still are ``expected``; the state read back."""


@runtime_checkable
class BackendListing(Protocol):
    """A router that can list its backends by name (HAProxy can; ``fleet.discover`` needs it)."""

    def list_backends(self) -> list[str]:
        """Every backend's name, sorted."""


class ActionLock(Protocol):
    """One action at a time per model, across every console that shares the journal.

    The lock is taken and released with the action's intent and outcome
    (``Journal.append(..., lock=...)``); this protocol reads it and releases
    what a dead console left.
    """

    def release(self, model: str, action_id: str) -> None:
        """Give the lock back if ``action_id`` holds it."""

    def holder(self, model: str) -> tuple[str, str] | None:
        """``(action_id, holder)`` of the model's lock, or ``None``."""

    def held(self) -> list[tuple[str, str, str]]:
        """Every lock held now: ``(model, action_id, holder)``."""


class MetricsSource(Protocol):
    """Evaluates the metric catalogue."""

    def describe(self) -> str:
        """Where the metrics come from, for messages (never with credentials)."""

    def evaluate(self, specs: tuple[MetricSpec, ...], model: str, at: float | None = None) -> dict[str, QueryResult]:
        """One query per metric, all pinned to one evaluation time."""

    def history(self, specs: tuple[MetricSpec, ...], model: str, start: float, end: float,
                step: float) -> dict[str, RangeResult]:
        """Each metric's value (its ``query``) from ``start`` to ``end`` every ``step`` seconds.

        One range query per metric. A query Prometheus rejects becomes a result
        with an error; MetricsError when Prometheus cannot be reached at all.
        """


@runtime_checkable
class FleetMetricsSource(Protocol):
    """Evaluates the metric catalogue for many models at once (Prometheus does)."""

    def evaluate_fleet(self, specs: tuple[MetricSpec, ...], models: Sequence[str],
                       at: float | None = None) -> dict[str, dict[str, QueryResult]]:
        """One query per metric for every model, split into model -> metric -> result."""


class Journal(Protocol):
    """The append-only decision journal: one hash chain of events per incident."""

    def describe(self) -> str:
        """Which database holds the journal, for messages (never with its password)."""

    def append(self, incident_id: str, drafts: Sequence[EventDraft], new_incident: bool = False,
               lock: LockChange | None = None) -> list[Event]:
        """Seal ``drafts`` after the incident's last event and commit them durably, all or none.

        Concurrent appends to one incident are serialised: sequence numbers never
        repeat and each event's ``prev_hash`` is its predecessor's hash. With
        ``new_incident`` the incident must not exist yet (ConflictError); without
        it, it must (NotFoundError). Returns the sealed events once committed.
        """

    def import_incident(self, events: Sequence[Event]) -> IncidentHead:
        """Store an already-sealed incident whole, in one transaction; ConflictError if it exists."""

    def incidents(self) -> list[IncidentHead]:
        """Every incident's head, oldest first."""

    def read_chain(self, incident_id: str) -> tuple[IncidentHead, list[Event]]:
        """An incident's head and events in sequence order, read from one snapshot; NotFoundError if unknown."""

    def read_chains(self, opened_since: str | None = None) -> list[tuple[IncidentHead, list[Event]]]:
        """Every incident's head and events (opened at or after ``opened_since`` only, when given), in
        one snapshot and a few queries, oldest first; events without a head come last with ``seq`` -1."""

    def events(self, incident_id: str, kinds: Collection[EventKind] | None = None) -> Iterator[Event]:
        """An incident's events (of ``kinds`` only, when given) in sequence order, streamed."""

    def find_events(self, kinds: Collection[EventKind], containing: str | None = None) -> list[Event]:
        """Every event of ``kinds`` in every incident (those whose payload's canonical JSON holds ``containing``
        only, when given: an alert's episode key), by incident and sequence number, in one query."""

    def events_after(self, incident_id: str, after_seq: int) -> list[Event]:
        """An incident's events with sequence numbers above ``after_seq``, in order (a follower's catch-up)."""

    def watch(self) -> JournalWatch | None:
        """A watch that hears every head move as it is committed, by any process; ``None`` when the
        database cannot announce them (SQLite: followers read on a timer). Opening it does no I/O."""

    def close(self) -> None:
        """Release the connections."""


class JournalWatch(Protocol):
    """Hears the journal's commits as they happen (PostgreSQL LISTEN); used by one thread at a time."""

    def wait(self, timeout: float) -> JournalNews:
        """Block until some incident's head moves or ``timeout`` seconds pass (empty news).

        (Re)connecting is part of waiting: news with ``resync`` says the watch listens again and
        may have missed commits; news with ``error`` says it cannot listen now (it retries on the
        next wait, never faster than a short back-off).
        """

    def close(self) -> None:
        """Stop listening and release the connection."""


class Notifier(Protocol):
    """Posts notifications to named chat webhooks (config ``notify.webhooks``).

    Results and errors name a webhook by its config name, never by its URL (a secret).
    """

    def describe(self) -> str:
        """The configured webhooks by name, for messages (never their URLs)."""

    def webhooks(self) -> tuple[str, ...]:
        """The configured webhook names."""

    def post(self, webhook: str, text: str, dedupe_key: str) -> Delivery:
        """Post ``text`` to the named webhook, with ``dedupe_key`` as its ``Idempotency-Key``.

        Raises NotifyError (one line naming the webhook) when the name is unknown, the
        receiver is unreachable or silent, or it answers non-2xx; ConfigError when the
        webhook's URL cannot be read from its env var or file.
        """


class Endpoints(Protocol):
    """Calls named HTTP endpoints with a JSON body (config ``endpoints``, playbook ``http`` actions).

    Results and errors name an endpoint by its config name, never its URL or headers.
    """

    def names(self) -> tuple[str, ...]:
        """The configured endpoint names."""

    def call(self, endpoint: str, body: Mapping[str, object], *, dedupe_key: str | None = None) -> Delivery:
        """Send ``body`` as JSON to the named endpoint; ``dedupe_key``, if given, as its ``Idempotency-Key``.

        Raises EndpointError (one line naming the endpoint) when the name is unknown, the
        body is not JSON, the endpoint is unreachable or silent, or it answers non-2xx;
        ConfigError when its URL or a header value cannot be read.
        """


class ReadinessSource(Protocol):
    """What readiness reads from Prometheus beyond the catalogue."""

    def describe(self) -> str:
        """Where it is."""

    def newest_samples(self, model: str) -> tuple[float, dict[tuple[str, str], float]] | None:
        """When it was asked, and the newest sample's time of every (version, segment) of the model
        (``None``: no freshness series is configured)."""

    def alert_rules(self) -> list[AlertRule]:
        """Every alerting rule loaded."""

    def alertmanagers(self) -> list[str]:
        """The Alertmanagers alerts are sent to now."""


class AlertRouter(Protocol):
    """Alertmanager's routing tree and receivers."""

    def describe(self) -> str:
        """Where it is."""

    def routing(self) -> AlertRouting:
        """The routes and receivers it runs now (AlertingError when unreachable)."""


class FaultInjector(Protocol):
    """What injects a drill's fault (the sandbox's failure scenarios)."""

    def describe(self) -> str:
        """Where the faults are injected."""

    def scenarios(self) -> tuple[str, ...]:
        """The faults it knows, ``healthy`` included."""

    def inject(self, scenario: str) -> None:
        """Switch to ``scenario`` (``healthy``: no fault)."""


class PlaybookSource(Protocol):
    """The playbook files (config ``playbooks.dirs``), read and validated against the config's names."""

    def describe(self) -> str:
        """Where the playbooks are read from."""

    def load(self) -> tuple[list[LoadedPlaybook], list[Problem]]:
        """Every valid playbook (ids unique, the first directory wins) and every problem of the others."""

    def find(self, playbook_id: str) -> LoadedPlaybook:
        """The valid playbook with this id, or read from this file path.

        Raises UsageError naming the playbook, with the close matches or its first problem.
        """

    def parse(self, text: str, source: str) -> Playbook:
        """A journaled copy of a playbook, checked again; UsageError when it no longer validates."""
