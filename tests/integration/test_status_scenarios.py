"""``rewind status`` on the live sandbox, through every failure scenario.

The scenarios run in one test, in order, because they share one sandbox and
each one's effect must be told apart from the last one's (the metric window
still holds the previous scenario for a minute).
"""

from __future__ import annotations

import json
import time

import pytest

from console.config import load_config
from console.domain.verdicts import State
from console.sandbox.scenarios import DRIFT_SEGMENTS, REGRESSION_SEGMENTS
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
    # Earlier tests may have left faults in the metric window (it spans a minute): start from a
    # calm baseline, where no watched cell breaches or is even suspect.
    sandbox.set_scenario("healthy")
    watched = [(v, s, m) for v in ("2", "3") for s in REGRESSION_SEGMENTS for m in ("error_rate", "accuracy")]

    def calm() -> bool:
        matrix = service.snapshot(MODEL).matrix
        # Nothing of v2 or v3 breaches anywhere (the assertion below is about all of them: a drill just before,
        # such as the drift playbook's, stays in the one-minute window), and the watched cells are not suspect.
        return (all(matrix.state(m, v, s) in (State.PASS, State.LOW_TRAFFIC) for v, s, m in watched)
                and not [c for c in matrix.breaches() if c.version in ("2", "3")])

    wait_for(calm, 90, "a calm baseline: nothing of v2 or v3 breaching, no watched cell suspect", interval=1)

    # Regression: the challenger's errors and accuracy degrade in two segments only.
    sandbox.set_scenario("regression")
    wanted = {("3", segment, metric) for segment in REGRESSION_SEGMENTS for metric in ("error_rate", "accuracy")}

    def regression_seen():
        now = {cell for cell in breaching(service) if cell[2] in ("error_rate", "accuracy")}
        return now if wanted <= now else None

    # How fast is measured by `make bench-judge` (regression_detect_s, 12-19 s here); a test only needs it
    # to happen: a loaded CI machine once took over 30 s.
    found = wait_for(regression_seen, 60, "the challenger's degraded segments to breach")
    # Nothing else breaches on what the regression touches: not the champion, not v3's other segments.
    # (Versions that only the previous tests sent traffic to are left out.)
    assert {cell for cell in found if cell[0] in ("2", "3")} == wanted

    # Drift: every version degrades alike in one segment; rolling back would not help.
    sandbox.set_scenario("drift")
    drift = {(version, DRIFT_SEGMENTS[0], "accuracy") for version in ("2", "3")}
    wait_for(lambda: drift <= breaching(service, "accuracy"), 60, "every version to breach in the drifting segment")

    # Latency and outage hit the challenger everywhere. A p95 has no counts: it breaches once over
    # the line in 4 evaluations 15 s apart, so the wait covers the window's turn plus those 45 s.
    sandbox.set_scenario("latency")
    wait_for(lambda: len({s for v, s, _ in breaching(service, "latency_p95") if v == "3"}) >= 4, 75,
             "the challenger's latency to breach")
    assert not {v for v, _, _ in breaching(service, "latency_p95")} - {"3"}
    sandbox.set_scenario("outage")
    wait_for(lambda: len({s for v, s, _ in breaching(service, "error_rate") if v == "3"}) == 6, 30,
             "the challenger's errors to breach in every segment")
    sandbox.set_scenario("healthy")
    assert json.loads((sandbox.dir / "scenario.json").read_text())["name"] == "healthy"
