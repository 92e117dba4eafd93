"""The fleet use case: every model judged as its overview judges it, worst first, one metrics read for all."""

from __future__ import annotations

from console.domain.errors import MetricsError, RouterError
from console.domain.fleet import discover_models, worst_first
from console.domain.incident import IncidentSummary
from console.domain.journal import Actor
from console.domain.metrics import CellCounts, Criteria, Direction, MetricKind, MetricSpec, QueryResult, Unit
from console.domain.verdicts import State
from console.services.fleet import FleetStatus
from console.services.live import compose
from tests.fixtures.fakes import FakeRegistry, FakeRouter

AT = 1_780_000_000.0
SEGMENTS = ("mobile", "web")
CATALOGUE = (
    MetricSpec("error_rate", "errors", "q", Unit.RATIO, Direction.HIGHER_IS_WORSE, Criteria(threshold=0.05),
               MetricKind.RATIO, numerator="n", denominator="d"),
    MetricSpec("traffic", "req/s", "q", Unit.PER_SECOND, Direction.HIGHER_IS_BETTER, Criteria(), MetricKind.RATE),
)


class FleetMetrics:
    """Each model's errors by scenario; counts the fleet reads."""

    def __init__(self, scenarios: dict[str, str]) -> None:
        self.scenarios = scenarios
        self.fleet_reads = 0
        self.down = False

    def describe(self) -> str:
        return "fake Prometheus"

    def evaluate(self, specs, model, at=None):  # noqa: ANN001, ANN201 - the protocol's signature
        scenario = self.scenarios.get(model, "healthy")
        results = {}
        for spec in specs:
            raw, counts = {}, {}
            for version in ("2", "3"):
                for segment in SEGMENTS:
                    if spec.name == "error_rate":
                        bad = scenario == "regression" and version == "3" and segment == "mobile"
                        counts[(version, segment)] = CellCounts(60.0 if bad else 4.0, 400.0)
                        raw[(version, segment)] = repr((60.0 if bad else 4.0) / 400.0)
                    else:
                        raw[(version, segment)] = "5.0"
            if scenario == "silent":
                raw, counts = {}, {}
            results[spec.name] = QueryResult(spec.name, spec.query, at or AT, raw, counts=counts)
        return results

    def evaluate_fleet(self, specs, models, at=None):  # noqa: ANN001, ANN201
        if self.down:
            raise MetricsError("Prometheus at http://127.0.0.1:9: unreachable (metrics.url)")
        self.fleet_reads += 1
        return {model: self.evaluate(specs, model, at) for model in models}


class Journal:
    def __init__(self, incidents):  # noqa: ANN001
        self._incidents = incidents

    def incidents(self):  # noqa: ANN201
        return self._incidents


class Lock:
    def held(self):  # noqa: ANN201
        return [("churn", "act-1", "bob@bastion")]


class PartlyDownRouter(FakeRouter):
    def read_state(self, model):  # noqa: ANN001, ANN201
        if model == "broken":
            raise RouterError("HAProxy at /run/h.sock: unreachable (router.socket)")
        return super().read_state(model)


def incident(model: str, opened_at: str = "2026-05-28T20:00:00Z", closed: bool = False) -> IncidentSummary:
    return IncidentSummary(f"inc-{model}", model, "2", "errors up", opened_at, Actor("alice", "bastion"), 3, "h",
                           closed_at="2026-05-28T21:00:00Z" if closed else None)


def service(metrics: FleetMetrics, incidents=()) -> FleetStatus:  # noqa: ANN001
    return FleetStatus(FakeRegistry(), PartlyDownRouter(), metrics, CATALOGUE, "traffic",
                       journal=Journal(list(incidents)), lock=Lock(), clock=lambda: AT)


def test_every_model_is_judged_as_its_overview_and_the_worst_comes_first():
    metrics = FleetMetrics({"fraud-b": "regression", "quiet": "silent", "broken": "healthy"})
    fleet = service(metrics, [incident("fraud-b"), incident("churn", closed=True)])
    snapshot = fleet.read(["churn", "fraud-a", "fraud-b", "quiet", "broken"])
    assert metrics.fleet_reads == 1
    rows = {row.model: row for row in snapshot.rows}
    assert [row.model for row in snapshot.rows] == ["fraud-b", "broken", "quiet", "churn", "fraud-a"]
    # the same verdicts as the model's own overview
    alone = compose("fraud-b", FakeRegistry().list_versions("fraud-b"), FakeRouter().read_state("fraud-b"),
                    metrics.evaluate(CATALOGUE, "fraud-b", AT), AT, CATALOGUE, "traffic", "champion")
    assert len(rows["fraud-b"].breaching) == len(alone.matrix.breaches()) == 1
    cell = rows["fraud-b"].breaching[0]
    assert (cell.version, cell.segment, cell.metric) == ("3", "mobile", "error_rate")
    assert rows["fraud-b"].state is State.BREACH and rows["fraud-b"].incident.incident_id == "inc-fraud-b"
    assert rows["fraud-b"].acting == "alice@bastion" and not rows["fraud-b"].acting_now
    assert rows["churn"].incident is None and rows["churn"].acting == "bob@bastion" and rows["churn"].acting_now
    assert rows["fraud-a"].state is State.PASS and rows["fraud-a"].split == (("2", 0.9), ("3", 0.1))
    assert rows["quiet"].state is State.NO_DATA
    assert rows["broken"].problems == ("router: HAProxy at /run/h.sock: unreachable (router.socket)",)
    assert rows["broken"].split == ()
    assert all(row.readiness is None for row in snapshot.rows)  # not measured here: the model's y view does


def test_prometheus_down_greys_out_every_row_without_raising():
    metrics = FleetMetrics({})
    metrics.down = True
    snapshot = service(metrics).read(["a", "b"])
    assert "unreachable" in snapshot.metrics_error
    assert all(row.state is State.NO_DATA and row.problems[0].startswith("metrics: ") for row in snapshot.rows)


def test_a_source_without_fleet_reads_is_asked_model_by_model():
    class OneAtATime:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def evaluate(self, specs, model, at=None):  # noqa: ANN001, ANN201
            self.asked.append(model)
            return FleetMetrics({}).evaluate(specs, model, at)

    metrics = OneAtATime()
    FleetStatus(FakeRegistry(), FakeRouter(), metrics, CATALOGUE, "traffic").read(["a", "b"])
    assert sorted(metrics.asked) == ["a", "b"]


def test_rows_order_by_state_then_breaches_then_incident():
    from console.domain.fleet import BreachingCell, FleetRow

    one = (BreachingCell("3", "web", "error_rate"),)
    rows = [FleetRow("ok", State.PASS), FleetRow("few", State.BREACH, one),
            FleetRow("many", State.BREACH, one * 3), FleetRow("sus", State.SUSPECT),
            FleetRow("nodata", State.NO_DATA), FleetRow("unread", State.PASS, problems=("router: down",))]
    assert [r.model for r in worst_first(rows)] == ["many", "few", "sus", "unread", "nodata", "ok"]


def test_discovery_keeps_the_registered_names_that_match_and_are_routed():
    assert discover_models("fraud-*", ["fraud-a", "fraud-b", "churn", "fraud-c"], ["fraud-a", "fraud-c", "churn"]) \
        == ("fraud-a", "fraud-c")
