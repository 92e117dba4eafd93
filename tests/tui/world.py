"""A deterministic world for the console's tests: fake registry, router and metrics; a real SQLite journal.

The metrics follow a scenario (``healthy``, ``regression``) and can be made
slow, unreachable or to answer garbage, as the console must show each. A world
made with ``features="feature-bug"`` also has a feature store and the servers'
feature telemetry: ``txn_features`` v1 landed five minutes ago and breaks every
version reading it (their inputs abnormal, every segment breaching) until the
features are rolled back to v0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.domain.authority import Identity, Permission, Policy
from console.domain.delivery import Delivery
from console.domain.errors import ConflictError, ExternalSystemError, MetricsError, NotFoundError
from console.domain.feature_store import Projection, ServiceInfo, ViewInfo, ViewVersion
from console.domain.features import EXPECTED_SHARES, PROBABILITY_LADDER, Binding
from console.domain.journal import Actor
from console.domain.metrics import CellCounts, Criteria, Direction, MetricKind, MetricSpec, QueryResult, Unit
from console.domain.readiness import (
    ALERTS,
    DEPLOYABLE,
    FALLBACK,
    METRICS_FRESH,
    OWNER,
    RUNBOOK,
    Report,
    Waiver,
    apply_waivers,
    fails,
    holds,
    unknown,
)
from console.domain.shadow import (
    CostEvidence,
    GateClock,
    GateReading,
    GateVerdict,
    SegmentEvidence,
    ShadowLimits,
    judge_segments,
)
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
from console.services.recovery import RecoveryStats
from console.services.rollback import RollbackService, RollbackSettings
from console.services.shadow import ShadowService
from tests.fixtures.fakes import FakeRegistry, FakeRouter
from tests.fixtures.recovery_data import Timing, rollback_incident

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
WEBHOOKS = ("oncall", "data-owners", "model-owners")
MODEL = "fraud-detector"
FROZEN_AT = 1_780_000_000.0  # 2026-05-28T20:26:40Z: every snapshot test shows this time
SEGMENTS = ("mobile", "partner-api", "web")

CATALOGUE = (
    MetricSpec("error_rate", "error rate", "sum(rate(errors[$window]))", Unit.RATIO, Direction.HIGHER_IS_WORSE,
               Criteria(threshold=0.05, max_delta=0.02), MetricKind.RATIO, numerator="errors", denominator="requests"),
    MetricSpec("latency_p95", "p95 latency", "histogram_quantile(0.95, ...)", Unit.SECONDS,
               Direction.HIGHER_IS_WORSE, Criteria(threshold=0.5), MetricKind.QUANTILE),
    MetricSpec("accuracy", "accuracy", "sum(correct)/sum(labels)", Unit.RATIO, Direction.HIGHER_IS_BETTER,
               Criteria(threshold=0.8), MetricKind.VALUE),
    MetricSpec("traffic", "traffic", "sum(rate(requests[$window]))", Unit.PER_SECOND, Direction.HIGHER_IS_BETTER,
               Criteria(), MetricKind.RATE),
)


class FakeMetrics:
    """Answers the catalogue from a scenario; ``mode`` makes it slow, unreachable or garbage."""

    def __init__(self, versions: tuple[str, ...] = ("2", "3"), segments: tuple[str, ...] = SEGMENTS) -> None:
        self.scenario = "regression"
        self.mode = "ok"
        self.delay_s = 0.0
        self.versions = versions
        self.segments = segments
        self.calls = 0
        self.lock = threading.Lock()
        self.broken: Callable[[str], bool] | None = None
        """``feature-bug``: whether a version reads the broken transformation (it then breaches everywhere)."""

    def describe(self) -> str:
        return "fake Prometheus"

    def close(self) -> None:
        pass

    def _errors(self, version: str, segment: str) -> tuple[float, float]:
        requests = 400.0
        if self.scenario == "regression" and version == self.versions[-1] and segment == self.segments[0]:
            return 60.0, requests  # 15 %: a breach beyond doubt
        if self.scenario == "feature-bug" and self.broken is not None and self.broken(version):
            return 60.0, requests
        return 4.0, requests  # 1 %

    def evaluate(self, specs: tuple[MetricSpec, ...], model: str, at: float | None = None) -> dict[str, QueryResult]:
        with self.lock:
            self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.mode == "down":
            raise MetricsError("Prometheus at http://127.0.0.1:9/: unreachable (metrics.url)")
        if self.mode == "garbage":
            raise MetricsError("Prometheus at http://127.0.0.1:9/: answered HTTP 200 with a body that is not JSON")
        at = at or FROZEN_AT
        results = {}
        for spec in specs:
            raw: dict[tuple[str, str], str] = {}
            counts: dict[tuple[str, str], CellCounts] = {}
            for version in self.versions:
                for segment in self.segments:
                    key = (version, segment)
                    if spec.name == "error_rate":
                        errors, requests = self._errors(version, segment)
                        counts[key] = CellCounts(errors, requests)
                        raw[key] = repr(errors / requests)
                    elif spec.name == "latency_p95":
                        raw[key] = "0.120" if segment != "web" else "0.180"
                    elif spec.name == "accuracy":
                        raw[key] = "0.93"
                    else:
                        raw[key] = "6.5" if version == self.versions[0] else "0.7"
            results[spec.name] = QueryResult(spec.name, spec.query.replace("$window", "1m"), at, raw, counts=counts)
        return results

    def history(self, specs, model, start, end, step):  # noqa: ANN001, ANN201 - the protocol's signature
        raise MetricsError("fake Prometheus keeps no history")


class FakeNotifier:
    """Posts nothing: keeps each message; ``fail`` makes every post fail as an unreachable webhook would."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, str]] = []
        self.fail = False

    def describe(self) -> str:
        return "fake webhooks"

    def webhooks(self) -> tuple[str, ...]:
        return WEBHOOKS

    def post(self, webhook: str, text: str, dedupe_key: str) -> Delivery:
        if self.fail:
            raise ExternalSystemError(f"webhook {webhook}: unreachable")
        self.posts.append((webhook, text, dedupe_key))
        return Delivery(status=200, ok=True, summary="HTTP 200")


def gate_reading(model: str = MODEL, shadow: str = "3", champion: str = "2", fail_segment: str | None = "mobile",
                 held_for: float = 400.0, window: float = 600.0, at: float = FROZEN_AT,
                 cost: bool = False) -> GateReading:
    """A gate judged on fixed evidence: every segment proven within its limits but ``fail_segment``, whose
    shadow disagrees with the champion on 12 % of its pairs; ``web`` has too few pairs yet (HOLD)."""
    limits = ShadowLimits()
    evidence = []
    for segment in SEGMENTS:
        pairs = 60.0 if segment == "web" else 1200.0
        flipped = pairs * (0.12 if segment == fail_segment else 0.004)
        evidence.append(SegmentEvidence(
            segment, pairs=pairs, disagreements=flipped, shadow_ok=pairs - 1.0, shadow_errors=1.0,
            champion_ok=pairs, champion_errors=1.0, score_delta_p95=0.021, shadow_p95=0.131, champion_p95=0.118,
            cost=CostEvidence(12.0, pairs, 10.0, pairs) if cost else None))
    segments = judge_segments(evidence, limits)
    clock = GateClock(held_for if all(s.verdict is GateVerdict.PASS for s in segments) else 0.0, window)
    return GateReading(model, shadow, champion, at, segments, clock)


class HealthRouter(FakeRouter):
    """The fake router whose servers in ``down`` fail their deep health check (a prediction answered with an
    error): DOWN, not in maintenance."""

    down_check = "L7STS"


class FakeGate:
    """The shadow gate on a fixed reading (``reading``), with the default limits and a 10-minute window."""

    def __init__(self) -> None:
        self.limits = ShadowLimits()
        self.window_s = 600.0
        self.reading: GateReading = gate_reading()
        self.reads = 0

    def over_window(self, model, shadow_version, champion_version, started_at, now, price=None,  # noqa: ANN001, ANN201
                    mirrored_share=1.0):
        self.reads += 1
        return replace(self.reading, shadow_version=shadow_version, champion_version=champion_version)

    def copies_lately(self, model, shadow_version):  # noqa: ANN001, ANN201
        return 100.0


SERVICE = "txn_service"
VIEW = "txn_features"
GOOD_SHA, BAD_SHA, STALE_SHA = "7a41c9d0b3e5", "2f78b0c1e2a3", "0c3e9a4b5d21"
GOOD_SOURCE = """def transform(df):
    df["amount"] = df["amount_cents"] / 100.0
    df["merchant_risk"] = df["merchant_risk"].fillna(0.0)
    return df
"""
BAD_SOURCE = """def transform(df):
    df["amount"] = df["amount_cents"]
    df["merchant_risk"] = df["merchant_risk"].fillna(0.0)
    return df
"""


class TaggedRegistry(FakeRegistry):
    """The fake registry with version tags, compare-and-set like the real one."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[tuple[str, str], str] = {}

    def list_versions(self, model, with_signatures=False):  # noqa: ANN001, ANN201 - the protocol's signature
        return [replace(v, tags={k: t for (version, k), t in self.tags.items() if version == v.version})
                for v in super().list_versions(model, with_signatures)]

    def set_version_tag(self, model, version, key, value):  # noqa: ANN001, ANN201
        self.tags[(version, key)] = value

    def get_version_tag(self, model, version, key):  # noqa: ANN001, ANN201
        return self.tags.get((version, key))

    def swap_version_tag(self, model, version, key, value, expected):  # noqa: ANN001, ANN201
        now = self.tags.get((version, key))
        if now != expected and now != value:
            raise ConflictError(f"tag {key} of v{version} is {now}, not {expected}")
        if value is None:
            self.tags.pop((version, key), None)
        else:
            self.tags[(version, key)] = value
        return self.tags.get((version, key))

    def tagged_versions(self, key, value):  # noqa: ANN001, ANN201
        return [(MODEL, version) for (version, k), t in sorted(self.tags.items()) if k == key and t == value]


class FakeFeatureStore:
    """txn_service reads txn_features following its active version: v1 (the broken release) over v0."""

    def __init__(self) -> None:
        self.views = {VIEW: ViewInfo(VIEW, 1, (ViewVersion(VIEW, 0, GOOD_SHA, FROZEN_AT - 86400.0, GOOD_SOURCE),
                                               ViewVersion(VIEW, 1, BAD_SHA, FROZEN_AT - 300.0, BAD_SOURCE)))}
        self.service_map = {SERVICE: ServiceInfo(SERVICE, (Projection(VIEW),))}

    def describe(self) -> str:
        return "fake feature store"

    def service(self, name: str) -> ServiceInfo:
        if name not in self.service_map:
            raise NotFoundError(f"feature service {name} does not exist")
        return self.service_map[name]

    def services(self) -> list[ServiceInfo]:
        return list(self.service_map.values())

    def view(self, name: str) -> ViewInfo:
        if name not in self.views:
            raise NotFoundError(f"feature view {name} does not exist")
        return self.views[name]

    def ensure_service(self, name: str, projections) -> ServiceInfo:  # noqa: ANN001
        made = ServiceInfo(name, tuple(projections))
        if self.service_map.setdefault(name, made) != made:
            raise ConflictError(f"feature service {name} exists with other projections")
        return made

    def pin_view(self, view: str, version: int, expected: int | None) -> int:
        info = self.views[view]
        if info.active != expected and info.active != version:
            raise ConflictError(f"{view} is at v{info.active}")
        self.views[view] = replace(info, active=version)
        return version


class FakeTelemetry:
    """What the servers report: each version reads what its registry tag names (v1's stale server aside)."""

    def __init__(self, registry: TaggedRegistry, store: FakeFeatureStore, versions: tuple[str, ...]) -> None:
        self.registry = registry
        self.store = store
        self.versions = versions
        self.stale_v1 = True
        """Version 1's idle server reads through its tag's service but still runs v0's transformation: a finding
        (until the rollback pins v0, which it then matches)."""

    def consumed(self, version: str) -> ViewVersion | None:
        service = self.registry.tags.get((version, "feast.feature_service"))
        if service is None or service not in self.store.service_map:
            return None
        projection = self.store.service_map[service].projection(VIEW)
        info = self.store.views[VIEW]
        return info.consumed(projection) if projection is not None else None

    def broken(self, version: str) -> bool:
        consumed = self.consumed(version)
        return consumed is not None and consumed.udf_sha == BAD_SHA

    def bindings(self, model: str, lookback_s: float) -> list[Binding]:
        found = []
        for version in self.versions:
            consumed = self.consumed(version)
            if consumed is None:
                continue
            service = self.registry.tags[(version, "feast.feature_service")]
            found.append(Binding(version, service, VIEW, consumed.label, consumed.udf_sha, consumed.created))
        service_of_v1 = self.registry.tags.get(("1", "feast.feature_service"))
        if self.stale_v1 and service_of_v1 is not None:
            found.append(Binding("1", service_of_v1, VIEW, "v0", GOOD_SHA, FROZEN_AT - 86400.0))
        return found

    def inputs(self, model: str, window: str):  # noqa: ANN201 - the protocol's signature
        cumulative: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
        missing: dict[tuple[str, str, str], float] = {}
        bounds = [*(float(i) for i in range(len(PROBABILITY_LADDER))), float("inf")]
        for version in self.versions:
            for segment in SEGMENTS:
                for feature in ("amount", "merchant_risk"):
                    total = 400.0
                    if feature == "amount" and self.broken(version):  # cents, not euros: far above the range
                        shares = [0.0] * (len(EXPECTED_SHARES) - 1) + [1.0]
                        shares[-2] = 0.02
                        shares[-1] = 0.98
                    else:
                        shares = list(EXPECTED_SHARES)
                    running, rows = 0.0, []
                    for le, share in zip(bounds, shares, strict=True):
                        running += share * total
                        rows.append((le, running))
                    cumulative[(version, segment, feature)] = rows
                    missing[(version, segment, feature)] = 0.0
        return cumulative, missing


def readiness_report(model: str = MODEL) -> Report:
    """The model's readiness as the real checks word it: three conditions true, the runbook never drilled, the
    Alertmanager unreachable (unknown), the owner without an escalation but waived: NOT READY."""
    owner = fails(OWNER, "NoEscalation", "nobody is paged after Dana Rivera",
                  "set owners.MODEL in the config: name, contact, oncall (a notify webhook), escalation",
                  name="Dana Rivera", oncall="oncall", escalation=[])
    conditions = [
        holds(DEPLOYABLE, "Deployable", "v1 loads from the registry (0.4s), v1 accepts every input v2 callers "
              "send, and its server v1 answers predictions", version="1", champion="2", load_seconds=0.4,
              artifact_bytes=2048, servers={"v1": "UP L7OK"}),
        fails(RUNBOOK, "NoDrill", "canary-regression, latency-spike, version-outage never drilled to a verified "
              "rollback", f"rewind drill canary-regression --model {model}",
              playbooks=["canary-regression", "latency-spike", "version-outage"], invalid=0),
        holds(METRICS_FRESH, "Fresh", "every metric has a value for v2, v3 in 3 segments; the newest samples are at "
              "most 4s old", serving=["2", "3"], segments=3, oldest_s=4.0),
        unknown(ALERTS, "AlertmanagerUnreachable", "Alertmanager at http://127.0.0.1:9093: unreachable "
                "(connection refused)", "check Alertmanager (alerts.alertmanager_url)"),
        owner,
        holds(FALLBACK, "FallbackReady", "a backup server is up, its deep check (a real prediction) passes, and "
              "the router answers a fixed default when nothing else can", backup_up=True, deep_check=True),
    ]
    waiver = Waiver(model, OWNER, "Sam Okafor joins the rotation on Monday", "2026-06-01T09:00:00Z", "alice@host",
                    "2026-05-27T10:00:00Z")
    now = datetime.fromtimestamp(FROZEN_AT, UTC)
    waived, active = apply_waivers(conditions, [waiver], now)
    return Report(model, waived, active, "2026-05-28T20:26:40Z")


class FakeReadiness:
    """Answers :func:`readiness_report` (nothing measured): ``hold`` keeps a check waiting until it is set again
    (the view's measuring state), ``error`` makes it raise, and each check takes ``took_s`` on ``now`` (a clock
    the console's tests may read)."""

    def __init__(self) -> None:
        self.report = readiness_report()
        self.error: Exception | None = None
        self.hold = threading.Event()
        self.hold.set()
        self.checks = 0
        self.now = FROZEN_AT
        self.took_s = 3.2

    def check(self, model: str) -> Report:
        self.checks += 1
        if not self.hold.wait(30):
            raise ExternalSystemError("fake registry: the artifact download timed out")
        if self.error is not None:
            raise self.error
        self.now += self.took_s
        return replace(self.report, model=model)


DAY = 86400.0


def journal_recoveries(world: World) -> None:
    """Real incidents and drills of the model, journaled as the services journal them, with known phases.

    Four real incidents rolled back and verified in the last 90 days (one over ten minutes, by hand), one open
    for 42 minutes; twelve weekly drills of canary-regression (n >= 10: a p90).
    """
    incidents = [
        ("INC-20260310-A1B2C3", FROZEN_AT - 79 * DAY, Timing(impact_before=300, breach=42, decide=95, intent=97,
                                                             applied=98.5, verified=131), "canary-regression"),
        ("INC-20260402-D4E5F6", FROZEN_AT - 56 * DAY, Timing(impact_before=180, breach=30, decide=240, intent=242,
                                                             applied=244, verified=300), "latency-spike"),
        ("INC-20260419-0A1B2C", FROZEN_AT - 39 * DAY, Timing(), "canary-regression"),
        ("INC-20260512-3D4E5F", FROZEN_AT - 16 * DAY, Timing(impact_before=600, breach=60, decide=400, intent=402,
                                                             applied=404, verified=460), None),
        # By hand: a playbook run left open would be offered for resuming.
        ("INC-20260528-6A7B8C", FROZEN_AT - 2520, Timing(verified=None, closed=None), None),
    ]
    for incident_id, opened_at, timing, playbook in incidents:
        world.journal.import_events(rollback_incident(incident_id, opened_at, timing, MODEL, playbook))
    for number in range(12):
        opened_at = FROZEN_AT - (5 + 7 * number) * DAY
        timing = Timing(impact_before=60, breach=15 + number, decide=40 + 3 * number, intent=42 + 3 * number,
                        applied=43 + 3 * number, verified=70 + 9 * number)
        incident_id = f"INC-{datetime.fromtimestamp(opened_at, UTC):%Y%m%d}-DR{number:04d}"
        world.journal.import_events(rollback_incident(incident_id, opened_at, timing, MODEL, "canary-regression",
                                                      drill=True))


class World:
    """Every fake a console test needs, and a backend over them."""

    def __init__(self, tmp: Path, user: str = "alice", two_person: bool = False, frozen_journal: bool = False,
                 features: str | None = None) -> None:
        self.registry = TaggedRegistry()
        self.router = HealthRouter()
        self.metrics = FakeMetrics()
        self.feature_settings = FeatureSettings(verify_window_s=0.0, poll_interval_s=0.01)
        self.store: FakeFeatureStore | None = None
        self.telemetry: FakeTelemetry | None = None
        if features is not None:
            self.store = FakeFeatureStore()
            self.telemetry = FakeTelemetry(self.registry, self.store, self.metrics.versions)
            for version in ("1", "2", "3"):
                self.registry.tags[(version, "feast.feature_service")] = SERVICE
            self.metrics.scenario = features
            self.metrics.broken = self.telemetry.broken
        self.evidence = FeatureEvidence(self.telemetry, self.feature_settings, clock=lambda: FROZEN_AT)
        self.records = SqlJournal(f"sqlite:///{tmp / 'journal.db'}")
        self.user = user
        ticks = iter(range(1_000_000))
        clock = (lambda: FROZEN_AT + next(ticks)) if frozen_journal else None  # one second per event
        new_id = (lambda now: "INC-20260528-0000AA") if frozen_journal else None
        self.journal = (JournalService(self.records, Actor(user, "host"), clock=clock, new_id=new_id) if new_id
                        else JournalService(self.records, Actor(user, "host")))
        everything = frozenset(Permission)
        policy = (Policy(default=everything, two_person=frozenset({MODEL})) if two_person
                  else Policy(enforced=False))
        settings = RollbackSettings(gate_window_s=0.0, poll_interval_s=0.01, verify_window_s=0.0)
        self.service = RollbackService(self.registry, self.router, self.metrics, self.journal,
                                       SqlActionLock(self.records), CATALOGUE, "traffic", settings=settings,
                                       policy=policy, identity=Identity(user), holder=f"{user}@host 1",
                                       approval_timeout_s=30,
                                       features=FeatureActions(self.registry, self.store, self.evidence, self.metrics,
                                                               CATALOGUE, "traffic", self.feature_settings))
        self.live_status = LiveStatus(self.registry, self.router, self.metrics, CATALOGUE, "traffic",
                                      clock=lambda: FROZEN_AT,
                                      features=self.evidence if features is not None else None)
        self.notifier = FakeNotifier()
        # A frozen journal dates its events from FROZEN_AT: the runner's clock must agree, or every human
        # step's time would have run out long ago.
        self.runner_clock = (lambda: FROZEN_AT) if frozen_journal else time.time
        self._runner: PlaybookRunner | None = None
        self.gate = FakeGate()
        self.shadow_service = ShadowService(self.service, self.gate, clock=lambda: FROZEN_AT)  # type: ignore[arg-type]
        # The fallback's clock moves only when a drill sleeps: a drill of N seconds ends at once.
        self.fallback_now = FROZEN_AT
        self.fallback_service = FallbackService(self.service, clock=lambda: self.fallback_now, sleep=self._sleep)
        self.readiness_check = FakeReadiness()

    # The Backend protocol
    models = (MODEL,)
    source = "tests/tui/world.py (fakes)"

    def live(self) -> LiveStatus:
        return self.live_status

    def rollback(self) -> RollbackService:
        return self.service

    def postmortems(self) -> PostMortems:
        return PostMortems(self.journal, None, "rewind test")

    def playbooks(self) -> PlaybookRunner:
        """The shipped playbooks, checked against the catalogue's metrics and the fake webhooks."""
        if self._runner is None:
            from console.adapters.playbook_files import PlaybookFiles
            from console.domain.playbook_check import CheckContext

            context = CheckContext(metric_names=frozenset(m.name for m in CATALOGUE),
                                   webhook_names=frozenset(WEBHOOKS))
            # Wait steps wait a hundredth of a second between evaluations instead of seconds.
            self._runner = PlaybookRunner(self.service, PlaybookFiles([PLAYBOOKS], context), self.notifier, None,
                                          is_live=lambda holder: False, clock=self.runner_clock,
                                          sleep=lambda seconds: time.sleep(min(seconds, 0.01)))
        return self._runner

    def _sleep(self, seconds: float) -> None:
        """Time passes in a drill; the fallback answers the requests while the primaries are out."""
        self.fallback_now += seconds
        if all(self.router.admin[f"v{v}"] == "maint" for v, w in self.router.weights.items() if w > 0):
            self.router.counters["fallback"] += 1

    def shadow(self) -> ShadowService:
        return self.shadow_service

    def fallback(self) -> FallbackService:
        return self.fallback_service

    def feature_catalog(self) -> FeatureCatalog:
        return FeatureCatalog(self.registry, self.store, self.evidence, self.feature_settings)

    def feature_rollbacks(self) -> FeatureRollbacks:
        from console.services import rollback

        return FeatureRollbacks(self.feature_catalog(), lambda: rollback.new_action_id())

    def readiness(self) -> FakeReadiness:
        return self.readiness_check

    def recovery_stats(self) -> RecoveryStats:
        return RecoveryStats(self.journal, clock=lambda: FROZEN_AT)

    def close(self) -> None:
        self.records.close()
