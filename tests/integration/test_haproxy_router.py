"""The HAProxy adapter against a real HAProxy: weights really change, traffic really follows."""

from __future__ import annotations

import pytest

from console.adapters.haproxy import HAProxyRouter
from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.sandbox.templates import backend_name
from tests.fixtures.servers import wait_for

MODEL = "fraud-detector"


@pytest.fixture
def router(sandbox):
    """The sandbox's router; its weights are put back after each test."""
    router = HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {MODEL: backend_name(MODEL)})
    before = router.read_state(MODEL).weights()
    yield router
    router.set_weights(MODEL, before, expected=None)


def served_totals(router: HAProxyRouter) -> dict[str, int]:
    """Requests each server of the backend has answered, from HAProxy's own counters."""
    lines = router.command("show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    totals = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == backend_name(MODEL) and row.get("svname", "").startswith("v"):
            totals[row["svname"][1:]] = int(row["stot"])
    return totals


def test_reads_the_backend_as_haproxy_reports_it(router):
    state = router.read_state(MODEL)
    assert state.backend == "be_fraud_detector"
    assert state.weights() == {"1": 0, "2": 90, "3": 10}
    assert all(server.operational for server in state.servers)
    # The same figure through HAProxy's own command.
    assert router.command(f"get weight {state.backend}/v2").startswith("90 ")


def test_set_weights_changes_haproxy_and_traffic_follows(router):
    after = router.set_weights(MODEL, {"2": 100, "3": 0}, expected={"2": 90, "3": 10})
    assert after.weights() == {"1": 0, "2": 100, "3": 0}
    assert router.command("get weight be_fraud_detector/v3").startswith("0 ")
    # Traffic really stops reaching v3. Requests already on their way may still land
    # (at most one per generator connection); after those, v3 serves nothing at all.
    first = served_totals(router)
    wait_for(lambda: served_totals(router)["2"] - first["2"] >= 100, 10, "v2 to serve 100 requests")
    second = served_totals(router)
    assert second["3"] - first["3"] <= 8
    wait_for(lambda: served_totals(router)["2"] - second["2"] >= 100, 10, "v2 to serve 100 more")
    assert served_totals(router)["3"] == second["3"]


def test_traffic_splits_by_the_new_weights(router):
    router.set_weights(MODEL, {"2": 50, "3": 50}, expected={"2": 90, "3": 10})
    # HAProxy's weighted round robin lets a server whose weight just rose catch up for a
    # while (longer after a jump from 0, as the test before leaves v3: 67 v2 to 135 v3 was
    # seen over the 200 requests after a 100-request settle); the split is measured over
    # 400 requests after the first 300 under the new weights.
    settled = served_totals(router)
    wait_for(lambda: sum(served_totals(router).values()) - sum(settled.values()) >= 300, 30, "300 requests")
    first = served_totals(router)
    wait_for(lambda: sum(served_totals(router).values()) - sum(first.values()) >= 400, 30, "400 requests")
    last = served_totals(router)
    v2, v3 = last["2"] - first["2"], last["3"] - first["3"]
    assert abs(v3 / (v2 + v3) - 0.5) < 0.1, (v2, v3)


def test_compare_and_set_refuses_a_stale_expectation_and_changes_nothing(router):
    with pytest.raises(ConflictError, match="v2 is 90 \\(expected 80\\)"):
        router.set_weights(MODEL, {"2": 0, "3": 100}, expected={"2": 80, "3": 10})
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 90, "3": 10}


def test_an_unknown_version_changes_nothing(router):
    with pytest.raises(NotFoundError, match="no server for version 7"):
        router.set_weights(MODEL, {"2": 0, "7": 100}, expected=None)
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 90, "3": 10}


def test_a_write_haproxy_refuses_is_reported_with_the_state_read_back_in_the_same_exchange(router):
    # checked=True: the caller vouches for the comparison, so HAProxy itself meets the unknown server.
    refused = r"refused set weight: No such server\..*weights now \{'1': 0, '2': 90, '3': 10\}"
    with pytest.raises(RouterError, match=refused):
        router.set_weights(MODEL, {"7": 100}, expected={"7": 0}, checked=True)


def test_a_checked_write_skips_the_read_and_returns_the_read_back(router):
    after = router.set_weights(MODEL, {"2": 80, "3": 20}, expected={"2": 90, "3": 10}, checked=True)
    assert after.weights() == {"1": 0, "2": 80, "3": 20} == router.read_state(MODEL).weights()
    with pytest.raises(UsageError, match="expected weight for every version"):
        router.set_weights(MODEL, {"2": 90}, expected=None, checked=True)
    assert router.set_weights(MODEL, {}, expected={}, checked=True).weights() == {"1": 0, "2": 80, "3": 20}


def test_invalid_weight_is_refused_before_anything_is_sent(router):
    with pytest.raises(UsageError, match="0 to 256"):
        router.set_weights(MODEL, {"2": 300}, expected=None)
    assert router.read_state(MODEL).weights()["2"] == 90


def test_the_runtime_api_over_tcp(sandbox, router):
    tcp = HAProxyRouter(f"127.0.0.1:{sandbox.load_state()['ports']['admin']}", {MODEL: backend_name(MODEL)})
    assert tcp.read_state(MODEL).weights() == router.read_state(MODEL).weights()
    tcp.set_weights(MODEL, {"3": 20}, expected={"3": 10})
    assert router.read_state(MODEL).weights()["3"] == 20


def test_haproxy_errors_become_clear_exceptions(sandbox):
    wrong_backend = HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {MODEL: "be_nope"})
    with pytest.raises(NotFoundError, match="backend 'be_nope'.*does not exist"):
        wrong_backend.read_state(MODEL)
    unmapped = HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {})
    with pytest.raises(NotFoundError, match="no backend in router.backends"):
        unmapped.read_state(MODEL)
    missing = HAProxyRouter(str(sandbox.dir / "nope.sock"), {MODEL: "be_fraud_detector"})
    with pytest.raises(RouterError, match="does not exist"):
        missing.read_state(MODEL)
