"""``rewind status`` on the live sandbox: its JSON and tables, and the latency and outage scenarios.

The scenarios run in one test, in order, because they share one sandbox and
each one's effect must be told apart from the last one's (the metric window
still holds the previous scenario for a minute). Regression and drift are judged
in test_features_e2e, with the diagnosis each one gets.
"""

from __future__ import annotations

import json
import time

import pytest

from console.config import load_config
from console.domain.verdicts import State
from console.wiring import build_status_service
from tests.fixtures.servers import run_cli, wait_for

MODEL = "fraud-detector"


@pytest.fixture(scope="module")
def service(sandbox_config):
    service = build_status_service(load_config(sandbox_config, environ={}).config)
    yield service
    service.close()


def breaching(service, metric: str | None = None) -> set[tuple[str, str, str]]:
    """(version, segment, metric) of every breaching cell right now."""
    matrix = service.snapshot(MODEL).matrix
    return {(v.version, v.segment, v.metric) for v in matrix.breaches() if metric in (None, v.metric)}


def test_status_json_reports_aliases_weights_and_every_metric(sandbox_config):
    completed = run_cli("status", "--json", "--config", sandbox_config)
    assert completed.returncode == 0, completed.stderr
    doc = json.loads(completed.stdout)
    assert doc["schema"] == "rewind.status/1"
    assert doc["aliases"] == {"champion": "2", "challenger": "3", "fallback": "4"}
    # The fallback's version has no server of its own name: the backup server serves it.
    assert [v["router"] for v in doc["versions"] if v["version"] == "4"] == [None]
    weights = {v["version"]: v["router"]["weight"] for v in doc["versions"] if v["router"]}
    assert weights == {"1": 0, "2": 90, "3": 10}
    # Versions with an alias or a weight are shown (v1 too, while it has had traffic of its own).
    assert {"2", "3"} <= set(doc["shown_versions"])
    assert len(doc["segments"]) == 6
    metrics = {m["name"] for m in doc["metrics"]}
    assert metrics == {"traffic_share", "request_rate", "error_rate", "latency_p95", "accuracy", "score_mean"}
    assert all('model="fraud-detector"' in m["query"] for m in doc["metrics"])
    assert len(doc["cells"]) == len(doc["shown_versions"]) * 6 * 6
    cell = next(c for c in doc["cells"] if c["metric"] == "error_rate" and c["version"] == "3")
    assert cell["reason"] and cell["state"] in {s.value for s in State}


def test_status_text_shows_the_tables(sandbox_config):
    completed = run_cli("status", "--config", sandbox_config, env={"COLUMNS": "100"})
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    for expected in ("champion", "challenger", "Versions", "eu-android", "accuracy", "✓"):
        assert expected in out


def test_scenarios_show_as_breaches_where_they_happen(sandbox, service):
    wait_for(lambda: time.time() - sandbox.load_state()["started_at"] > 20, 30, "a few scrapes of traffic",
             interval=0.5)
    # Earlier tests may have left faults in the metric window (it spans a minute): start from a baseline
    # where nothing of v2 or v3 breaches (a drill just before, such as the drift playbook's, stays a minute).
    # The regression and drift scenarios are judged, with their diagnosis, in test_features_e2e.
    sandbox.set_scenario("healthy")
    wait_for(lambda: not [c for c in service.snapshot(MODEL).matrix.breaches() if c.version in ("2", "3")], 90,
             "a calm baseline: nothing of v2 or v3 breaching", interval=1)

    # Latency: the challenger alone slows down.
    sandbox.set_scenario("latency")
    wait_for(lambda: len({s for v, s, _ in breaching(service, "latency_p95") if v == "3"}) >= 4, 75,
             "the challenger's latency to breach")
    assert not {v for v, _, _ in breaching(service, "latency_p95")} - {"3"}
    # Outage: the challenger's errors in every segment.
    sandbox.set_scenario("outage")
    wait_for(lambda: len({s for v, s, _ in breaching(service, "error_rate") if v == "3"}) == 6, 30,
             "the challenger's errors to breach in every segment")
    sandbox.set_scenario("healthy")
    assert json.loads((sandbox.dir / "scenario.json").read_text())["name"] == "healthy"
