"""The Gateway API router against a loopback fake Kubernetes API server, the published HTTPRoute schema,
and the weight-0 incidents replayed; plus one opt-in test against a real cluster.

No Kubernetes API server can run on these machines, so CI never talks to a real control plane: the fake
(tests/fixtures/k8s_api.py) keeps the semantics Rewind relies on, and the machine's ``kubectl`` is shown to
accept it as a server. The opt-in test runs only when ``REWIND_K8S_TEST_KUBECONFIG`` names a kubeconfig.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from console.adapters.k8s_gateway import GatewayRouter, KubeAccess, kubeconfig_access
from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.journal import EventKind
from console.domain.routing import writers_note
from console.services.rollback import RollbackService
from tests.fixtures.k8s_api import apply_json_patch, fake_kube_api, sample_endpoints, sample_route, schema_errors
from tests.fixtures.k8s_plane import SERVED, DataPlane, contract_rollbacks
from tests.fixtures.servers import require_binary

pytestmark = pytest.mark.integration

NS, ROUTE, MODEL = "models", "m-route", "m"


def router_for(url: str, **kwargs) -> GatewayRouter:
    return GatewayRouter(KubeAccess(url, lambda: "test-token"), {MODEL: f"{NS}/{ROUTE}"},
                         server_template="{model}-v{version}", poll_interval_s=0.05, **kwargs)


@pytest.fixture
def kube():
    with fake_kube_api(accept_delay_s=0.3) as (api, url):
        api.create(sample_route(NS, ROUTE, MODEL, {"1": 0, "2": 90, "3": 10}))
        yield api, url


def kubectl(url: str, *args: str, tmp_path) -> subprocess.CompletedProcess:
    binary = require_binary("kubectl", "kubernetes-client")
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "no-kubeconfig"), HOME=str(tmp_path))
    return subprocess.run([binary, "--server", url, *args], capture_output=True, text=True, env=env, timeout=30,
                          check=False)


# -- the fake is a server kubectl accepts ----------------------------------------------------------------
def test_kubectl_accepts_the_fake_server_and_sees_rewinds_writes(kube, tmp_path):
    api, url = kube
    version = subprocess.run([require_binary("kubectl", "kubernetes-client"), "version", "--client"],
                             capture_output=True, text=True, timeout=30, check=False).stdout.split("\n")[0]
    got = kubectl(url, "get", "httproutes.gateway.networking.k8s.io", "-n", NS, "-o", "json", tmp_path=tmp_path)
    assert got.returncode == 0, f"{version}: {got.stderr}"
    (item,) = json.loads(got.stdout)["items"]
    assert [r["weight"] for r in item["spec"]["rules"][0]["backendRefs"]] == [0, 90, 10]

    router_for(url).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    route = json.loads(kubectl(url, "get", "httproute.gateway.networking.k8s.io", ROUTE, "-n", NS, "-o", "json",
                               tmp_path=tmp_path).stdout)
    assert [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]] == [0, 100, 0]
    assert route["metadata"]["generation"] == 2
    assert {c["observedGeneration"] for p in route["status"]["parents"] for c in p["conditions"]} == {2}

    # The server's semantics, seen from kubectl: a failed test is refused (422), a stale resourceVersion too (409).
    patch = json.dumps([{"op": "test", "path": "/spec/rules/0/backendRefs/2/weight", "value": 10},
                        {"op": "replace", "path": "/spec/rules/0/backendRefs/2/weight", "value": 50}])
    refused = kubectl(url, "patch", "httproute.gateway.networking.k8s.io", ROUTE, "-n", NS, "--type", "json",
                      "-p", patch, tmp_path=tmp_path)
    assert refused.returncode != 0 and "test failed" in refused.stderr
    stale = dict(route, metadata={**route["metadata"], "resourceVersion": "1"})
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    replaced = kubectl(url, "replace", "--validate=false", "-f", str(tmp_path / "stale.json"), tmp_path=tmp_path)
    assert replaced.returncode != 0 and "the object has been modified" in replaced.stderr, replaced.stderr
    assert api.get(NS, ROUTE)["spec"] == route["spec"]


# -- compare-and-set, read-back --------------------------------------------------------------------------
def test_weights_are_written_in_one_patch_and_read_back_once_the_controller_accepts(kube):
    api, url = kube
    router = router_for(url)
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 90, "3": 10}
    started = time.monotonic()
    state = router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90}, checked=True)
    waited = time.monotonic() - started
    assert state.weights() == {"1": 0, "2": 100, "3": 0}
    assert waited >= 0.25, "the read-back returned before the controller observed the new generation"
    patches = [r for r in api.requests if r[0] == "PATCH"]
    assert [p[2] for p in patches] == ["application/json-patch+json"]
    route = api.get(NS, ROUTE)
    assert route["metadata"]["generation"] == 2
    assert all(c["observedGeneration"] == 2 and c["status"] == "True"
               for p in route["status"]["parents"] for c in p["conditions"])


def test_whoever_else_wrote_the_weights_is_named_and_rewinds_own_writes_carry_its_name(kube, tmp_path):
    api, url = kube
    router = router_for(url)
    assert router.read_state(MODEL).also_written_by == ()  # created outside any field manager's record

    def sync(route):  # a GitOps sync writes the route's weights, as its field manager
        route["spec"]["rules"][0]["backendRefs"][2]["weight"] = 20

    api.edit("httproutes", NS, ROUTE, sync, settled=True, manager="argocd-controller")
    state = router.read_state(MODEL)
    (writer,) = state.also_written_by
    assert writer.startswith("argocd-controller (Update, 20")
    note = writers_note(state)
    assert note is not None and note.startswith(f"{NS}/{ROUTE}: its weights were last written by argocd-controller")
    assert "may write them back" in note

    router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 20, "2": 90})
    assert [path for method, path, _ in api.requests if method == "PATCH"] == [
        f"/apis/gateway.networking.k8s.io/v1/namespaces/{NS}/httproutes/{ROUTE}?fieldManager=rewind"]
    assert router.read_state(MODEL).also_written_by == ()  # the weights are Rewind's now
    shown = kubectl(url, "get", "httproute.gateway.networking.k8s.io", ROUTE, "-n", NS, "-o", "json",
                    "--show-managed-fields", tmp_path=tmp_path)
    assert shown.returncode == 0, shown.stderr
    managers = {e["manager"]: e["fieldsV1"] for e in json.loads(shown.stdout)["metadata"]["managedFields"]}
    assert managers == {"rewind": {"f:spec": {"f:rules": {}}}}  # the sync's only field was taken over


def test_a_weight_moved_by_someone_else_is_a_conflict_and_nothing_is_written(kube):
    api, url = kube
    api.set_spec_weight(NS, ROUTE, 0, 2, 20)  # someone else, before Rewind's read
    with pytest.raises(ConflictError, match=r"v3 is 20 \(expected 10\)"):
        router_for(url).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    assert not [r for r in api.requests if r[0] == "PATCH"]


def test_a_change_between_the_read_and_the_patch_fails_the_patchs_test_on_the_server(kube):
    api, url = kube
    router = router_for(url)
    read = router.get_route

    def read_then_someone_writes(model):
        route = read(model)
        api.set_spec_weight(NS, ROUTE, 0, 2, 20)  # lands after Rewind's read, before its patch
        return route

    router.get_route = read_then_someone_writes  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="HTTP 422.*test failed.*re-plan"):
        router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    assert [r["weight"] for r in api.get(NS, ROUTE)["spec"]["rules"][0]["backendRefs"]] == [0, 90, 20]


def test_a_controller_that_never_observes_the_generation_fails_the_read_back(kube):
    api, url = kube
    api.controller_running = False
    with pytest.raises(RouterError, match=r"generation 2 .* not accepted within 0.5s .*readback_timeout_s.*"
                                          r"observed generation 1 of 2.*the spec reads \{'1': 0, '2': 100, '3': 0\}"):
        router_for(url, readback_timeout_s=0.5).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})


def test_a_controller_that_refuses_the_route_fails_the_read_back(kube):
    api, url = kube
    api.refuse = ("UnsupportedValue", "weights of 0 are not supported here")
    with pytest.raises(RouterError, match="refused by gateways/models-gateway: Accepted is False "
                                          r"\(UnsupportedValue: weights of 0"):
        router_for(url).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})


def test_unknown_routes_and_versions_are_named(kube):
    api, url = kube
    router = GatewayRouter(KubeAccess(url, lambda: None), {MODEL: f"{NS}/gone"}, server_template="{model}-v{version}")
    with pytest.raises(NotFoundError, match="HTTPRoute models/gone .*does not exist"):
        router.read_state(MODEL)
    with pytest.raises(NotFoundError, match="no backendRef for version 7 .*'m-v7'"):
        router_for(url).set_weights(MODEL, {"7": 1}, expected=None)


# -- every patch Rewind emits is valid against the published schema --------------------------------------
@pytest.mark.parametrize("weights", [{"3": 0, "2": 100}, {"3": 5, "2": 95}, {"1": 1_000_000, "2": 0, "3": 0},
                                     {"2": 0}, {"1": 50, "3": 50}])
def test_every_emitted_patch_gives_a_route_the_httproute_schema_accepts(weights):
    route = sample_route(NS, ROUTE, MODEL, {"1": 0, "2": 90, "3": 10})
    second = json.loads(json.dumps(route["spec"]["rules"][0]))
    second["matches"] = [{"path": {"type": "PathPrefix", "value": "/explain"}}]
    route["spec"]["rules"].append(second)  # a second rule with the same split: both are patched
    assert schema_errors(route) == []
    patch = router_for("http://127.0.0.1:1").weight_patch(MODEL, route, weights)
    assert [op["op"] for op in patch] == ["test", "add"] * (2 * len(weights))
    patched = apply_json_patch(route, patch)
    assert schema_errors(patched) == []
    refs = {r["name"]: r["weight"] for rule in patched["spec"]["rules"] for r in rule["backendRefs"]}
    assert all(refs[f"m-v{v}"] == w for v, w in weights.items())


def test_a_patch_on_a_ref_without_a_weight_adds_it_and_stays_valid():
    route = sample_route(NS, ROUTE, MODEL, {"2": 1, "3": 1})
    del route["spec"]["rules"][0]["backendRefs"][1]["weight"]  # weight omitted: 1 by the schema's default
    router = router_for("http://127.0.0.1:1")
    assert router._state(MODEL, route).weights() == {"2": 1, "3": 1}
    patched = apply_json_patch(route, router.weight_patch(MODEL, route, {"3": 0, "2": 1}))
    assert schema_errors(patched) == [] and patched["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0


def test_the_schema_fixture_really_checks_weights():
    route = sample_route(NS, ROUTE, MODEL, {"2": 1_000_001, "3": -1})
    assert {field for field, _ in schema_errors(route)} == {"spec.rules.0.backendRefs.0.weight",
                                                            "spec.rules.0.backendRefs.1.weight"}


# -- contract: weight 0 that still serves (istio#31745, kgateway#11548) -----------------------------------
def spec_weights(api) -> dict[str, int]:
    """The split the route's spec asks for (a data plane that follows the control plane)."""
    refs = api.get(NS, ROUTE)["spec"]["rules"][0]["backendRefs"]
    return {r["name"].rsplit("-v", 1)[1]: r.get("weight", 1) for r in refs}


@pytest.fixture
def rollback(kube, tmp_path):
    api, url = kube
    with contract_rollbacks(tmp_path, MODEL) as (records, service_for):
        def build(plane: DataPlane) -> tuple[RollbackService, str]:
            return service_for(router_for(url, counters=plane, served_query=SERVED), plane)

        yield api, build, records


def roll_back_and_verify(service, incident):
    preview = service.preview(MODEL)
    assert (preview.plan.leave, preview.plan.target) == ("3", "2")
    applied = service.apply(preview, incident)
    assert applied.status == "applied" and applied.weights["3"] == 0
    return service.verify(incident, preview.plan)


def test_each_backends_ready_endpoints_come_from_its_services_endpointslices(kube, tmp_path):
    api, url = kube
    router = router_for(url)
    assert {s.version: s.endpoints for s in router.read_state(MODEL).servers} == {"1": None, "2": None, "3": None}
    for version, ready, not_ready in (("1", 0, 2), ("2", 2, 1), ("3", 1, 0)):
        api.create(sample_endpoints(NS, f"{MODEL}-v{version}", ready, not_ready))
    api.create({**sample_endpoints(NS, "other-service", 5), "metadata": {
        "name": "other", "namespace": NS, "labels": {"kubernetes.io/service-name": "other-service"}}})
    before = len(api.requests)
    state = router.read_state(MODEL)
    assert {s.version: (s.endpoints, s.operational) for s in state.servers} == {
        "1": (0, False), "2": (2, True), "3": (1, True)}
    assert state.shares()["1"] == 0.0
    listed = [path for method, path, _ in api.requests[before:] if "endpointslices" in path]
    assert len(listed) == 1 and "labelSelector=kubernetes.io%2Fservice-name+in+%28m-v1%2Cm-v2%2Cm-v3%29" in listed[0]
    # kubectl lists the same slices with the same selector
    got = kubectl(url, "get", "endpointslices.discovery.k8s.io", "-n", NS, "-l",
                  "kubernetes.io/service-name in (m-v1,m-v2)", "-o", "json", tmp_path=tmp_path)
    assert got.returncode == 0, got.stderr
    assert sorted(i["metadata"]["name"] for i in json.loads(got.stdout)["items"]) == ["m-v1-abcde", "m-v2-abcde"]


def test_a_rollback_to_a_version_whose_pods_are_not_ready_is_refused_at_the_preview(rollback):
    api, build, records = rollback
    api.create(sample_endpoints(NS, f"{MODEL}-v2", 0, 3))  # v2's pods all fail their readiness probe
    service, incident = build(DataPlane(lambda: spec_weights(api)))
    with pytest.raises(UsageError, match=r"v2 is DOWN at the router \(Gateway API at .*server m-v2"):
        service.preview(MODEL)
    api.edit("endpointslices", NS, f"{MODEL}-v2-abcde",
             lambda s: s["endpoints"][0]["conditions"].update(ready=True))  # one pod passes now
    assert (service.preview(MODEL).plan.leave, service.preview(MODEL).plan.target) == ("3", "2")


def test_a_rollback_whose_traffic_really_moved_is_verified_from_the_metrics(rollback):
    api, build, records = rollback
    service, incident = build(DataPlane(lambda: spec_weights(api)))
    outcome = roll_back_and_verify(service, incident)
    assert outcome.status == "verified", outcome.message
    assert "v3 got 0.0% of" in outcome.message


def test_istio_31745_weight_0_accepted_but_still_served_is_not_verified(rollback):
    """istio#31745: an HTTPRoute backend at weight 0 still got requests. The spec and the status say
    rolled back; the per-version counters say otherwise, and verification must side with them."""
    api, build, records = rollback
    service, incident = build(DataPlane(lambda: {"1": 0, "2": 90, "3": 10}))
    outcome = roll_back_and_verify(service, incident)
    route = api.get(NS, ROUTE)
    assert route["spec"]["rules"][0]["backendRefs"][2]["weight"] == 0  # the spec says rolled back
    assert all(c["status"] == "True" for p in route["status"]["parents"] for c in p["conditions"])
    assert outcome.status == "not_verified"
    assert "NOT verified: v3 got 10.0% of" in outcome.message
    assert "although the router reads weight 0 for it" in outcome.message
    (event,) = list(records.journal.events(incident, [EventKind.ACTION_NOT_VERIFIED]))
    assert event.payload["observed"]["leave_share"] == pytest.approx(0.1, abs=0.01)
    assert event.payload["observed"]["weights"]["3"] == 0


def test_kgateway_11548_a_lone_backend_at_weight_0_taking_everything_is_not_verified(rollback):
    """kgateway#11548 (and the fix kgateway PR 13833 describes): a backend at weight 0 got all the traffic."""
    api, build, _ = rollback
    service, incident = build(DataPlane(lambda: {"1": 0, "2": 0, "3": 1}))
    outcome = roll_back_and_verify(service, incident)
    assert outcome.status == "not_verified"
    assert "v3 got 100.0% of" in outcome.message and "weight 0" in outcome.message


def test_no_counts_from_the_metrics_is_never_a_drain(rollback):
    api, build, _ = rollback
    plane = DataPlane(lambda: spec_weights(api))
    service, incident = build(plane)
    preview = service.preview(MODEL)
    service.apply(preview, incident)
    plane.no_data = True
    outcome = service.verify(incident, preview.plan)
    assert outcome.status == "not_verified"
    assert "could not be counted" in outcome.message and "served_query: no data" in outcome.message

    plane.no_data, plane.per_read = False, 0  # counters that do not move: the metrics lag
    outcome = service.verify(incident, preview.plan)
    assert outcome.status == "not_verified" and "no request was counted" in outcome.message


# -- opt-in: a real cluster ------------------------------------------------------------------------------
@pytest.mark.skipif(not os.environ.get("REWIND_K8S_TEST_KUBECONFIG"),
                    reason="opt-in: set REWIND_K8S_TEST_KUBECONFIG (and REWIND_K8S_TEST_ROUTE=namespace/name, "
                           "REWIND_K8S_TEST_MODEL, REWIND_K8S_TEST_TEMPLATE) to run against your own cluster; "
                           "skipped even with CI=true, since no cluster exists in CI")
def test_opt_in_real_cluster_reads_and_rewrites_the_same_weights():
    """Against a real API server and Gateway controller: read the route, then write the same weights back
    (a patch that changes nothing, so traffic is untouched) through compare-and-set and the read-back, and
    check that a stale expectation is refused before anything is written."""
    route = os.environ.get("REWIND_K8S_TEST_ROUTE", "")
    assert "/" in route, "REWIND_K8S_TEST_ROUTE must be namespace/name of an HTTPRoute"
    access = kubeconfig_access(os.environ["REWIND_K8S_TEST_KUBECONFIG"], os.environ.get("REWIND_K8S_TEST_CONTEXT"))
    model = os.environ.get("REWIND_K8S_TEST_MODEL", "model")
    router = GatewayRouter(access, {model: route},
                           server_template=os.environ.get("REWIND_K8S_TEST_TEMPLATE", "{model}-v{version}"),
                           readback_timeout_s=60)
    weights = router.read_state(model).weights()
    assert weights, "the route has no backendRef named by REWIND_K8S_TEST_TEMPLATE"
    assert router.set_weights(model, dict(weights), expected=dict(weights)).weights() == weights
    version = next(iter(weights))
    with pytest.raises(ConflictError):
        router.set_weights(model, {version: weights[version]}, expected={version: weights[version] + 1})
