"""The KServe and Argo Rollouts routers against the loopback fake Kubernetes API server, the published
InferenceService and Rollout schemas, and the weight-0 and abort incidents replayed; plus opt-in tests
against a real cluster.

No Kubernetes API server can run on these machines, so CI never talks to a real control plane: the fake
(tests/fixtures/k8s_api.py) keeps the semantics Rewind relies on (resourceVersion, generation, JSON Patch
``test``, the status subresource, a KServe and an Argo Rollouts controller), and the machine's ``kubectl`` is
shown to accept it as a server. The opt-in tests run only when ``REWIND_K8S_TEST_KUBECONFIG`` is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from console.adapters.k8s_api import KubeAccess, kubeconfig_access
from console.adapters.k8s_argo import ArgoRolloutsRouter
from console.adapters.k8s_kserve import KServeRouter
from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.journal import EventKind
from console.services.rollback import RollbackService
from tests.fixtures.k8s_api import (
    VERSION_LABEL,
    apply_json_patch,
    fake_kube_api,
    sample_isvc,
    sample_rollout,
    schema_errors,
)
from tests.fixtures.k8s_plane import SERVED, DataPlane, contract_rollbacks
from tests.fixtures.servers import require_binary

pytestmark = pytest.mark.integration

NS, MODEL = "models", "m"
ISVC, ROLLOUT = "inferenceservices", "rollouts"


def kserve_for(url: str, **kwargs) -> KServeRouter:
    return KServeRouter(KubeAccess(url, lambda: "test-token"), {MODEL: f"{NS}/{MODEL}"}, poll_interval_s=0.05,
                        **kwargs)


def argo_for(url: str, **kwargs) -> ArgoRolloutsRouter:
    return ArgoRolloutsRouter(KubeAccess(url, lambda: "test-token"), {MODEL: f"{NS}/{MODEL}"}, poll_interval_s=0.05,
                              **kwargs)


def roll_out_canary(api, version: str = "3", percent: int = 10, settled: bool = True,
                    manager: str | None = None) -> dict:
    """Someone rolls out ``version`` as a canary: a new predictor with canaryTrafficPercent (``manager``: their
    field manager, for ``managedFields``)."""
    def change(isvc):
        isvc["spec"]["predictor"] = sample_isvc(NS, MODEL, version, percent)["spec"]["predictor"]

    return api.edit(ISVC, NS, MODEL, change, settled=settled, manager=manager)


@pytest.fixture
def kube():
    """v2 rolled out, v3 a canary at 10 % (KServe); v2 stable, v3 a canary paused at 20 % (Argo Rollouts)."""
    with fake_kube_api(accept_delay_s=0.3) as (api, url):
        api.create(sample_isvc(NS, MODEL, "2"))
        roll_out_canary(api)
        api.create(sample_rollout(NS, MODEL, MODEL))
        api.start_canary(NS, MODEL, "2", "3")
        yield api, url


def kubectl(url: str, *args: str, tmp_path) -> subprocess.CompletedProcess:
    binary = require_binary("kubectl", "kubernetes-client")
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "no-kubeconfig"), HOME=str(tmp_path))
    return subprocess.run([binary, "--server", url, "-n", NS, *args], capture_output=True, text=True, env=env,
                          timeout=30, check=False)


def traffic(isvc: dict) -> dict[str, int]:
    return {t["revisionName"]: t["percent"] for t in isvc["status"]["components"]["predictor"]["traffic"]}


# -- the fake is a server kubectl accepts ----------------------------------------------------------------
def test_kubectl_gets_inferenceservices_and_sees_the_rollback(kube, tmp_path):
    api, url = kube
    got = kubectl(url, "get", "inferenceservices", "-o", "json", tmp_path=tmp_path)
    assert got.returncode == 0, got.stderr
    (item,) = json.loads(got.stdout)["items"]
    assert item["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert traffic(item) == {"m-predictor-00002": 10, "m-predictor-00001": 90}
    short = kubectl(url, "get", "isvc", MODEL, tmp_path=tmp_path)
    assert short.returncode == 0 and MODEL in short.stdout, short.stderr

    kserve_for(url).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    isvc = json.loads(kubectl(url, "get", "inferenceservice", MODEL, "-o", "json", tmp_path=tmp_path).stdout)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert traffic(isvc) == {"m-predictor-00002": 0, "m-predictor-00001": 100}
    assert isvc["status"]["observedGeneration"] == isvc["metadata"]["generation"] == 3

    # A failed test is refused (422) for kubectl too, and nothing changes.
    patch = json.dumps([{"op": "test", "path": "/spec/predictor/canaryTrafficPercent", "value": 10},
                        {"op": "replace", "path": "/spec/predictor/canaryTrafficPercent", "value": 50}])
    refused = kubectl(url, "patch", "isvc", MODEL, "--type", "json", "-p", patch, tmp_path=tmp_path)
    assert refused.returncode != 0 and "test failed" in refused.stderr
    assert api.get(NS, MODEL, ISVC)["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_kubectl_gets_rollouts_and_aborts_through_the_status_subresource_as_the_plugin_does(kube, tmp_path):
    api, url = kube
    got = kubectl(url, "get", "rollouts", "-o", "json", tmp_path=tmp_path)
    assert got.returncode == 0, got.stderr
    (item,) = json.loads(got.stdout)["items"]
    assert item["status"]["canary"]["weights"]["canary"]["weight"] == 20 and not item["status"].get("abort")
    generation = item["metadata"]["generation"]

    # Through the main resource, status cannot change (the CRD has the status subresource).
    main = kubectl(url, "patch", "rollout", MODEL, "--type", "merge", "-p", '{"status":{"abort":true}}',
                   tmp_path=tmp_path)
    assert main.returncode == 0, main.stderr
    assert not api.get(NS, MODEL, ROLLOUT)["status"].get("abort")
    # The plugin's own write: {"status":{"abort":true}} as a merge patch on the status subresource.
    plugin = kubectl(url, "patch", "rollout", MODEL, "--subresource=status", "--type", "merge",
                     "-p", '{"status":{"abort":true}}', tmp_path=tmp_path)
    assert plugin.returncode == 0, plugin.stderr
    rollout = api.get(NS, MODEL, ROLLOUT)
    assert rollout["status"]["abort"] is True and rollout["metadata"]["generation"] == generation

    state = argo_for(url).read_state(MODEL)  # once the controller reconciled it, the router reads it
    deadline = time.monotonic() + 5
    while state.weights().get("3") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        state = argo_for(url).read_state(MODEL)
    assert state.weights() == {"2": 100, "3": 0}
    table = kubectl(url, "get", "ro", tmp_path=tmp_path)
    assert table.returncode == 0 and MODEL in table.stdout, table.stderr


# -- KServe: compare-and-set, read-back ------------------------------------------------------------------
def test_kserve_rollback_sets_canary_traffic_percent_0_in_one_patch_and_waits_for_the_traffic_status(kube):
    api, url = kube
    router = kserve_for(url)
    assert router.read_state(MODEL).weights() == {"2": 90, "3": 10}
    started = time.monotonic()
    state = router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90}, checked=True)
    assert time.monotonic() - started >= 0.25, "the read-back returned before the controller reported"
    assert state.weights() == {"2": 100, "3": 0}
    (patch,) = [r for r in api.requests if r[0] == "PATCH"]
    assert patch[1].endswith(f"/inferenceservices/{MODEL}?fieldManager=rewind")
    assert patch[2] == "application/json-patch+json"
    isvc = api.get(NS, MODEL, ISVC)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert isvc["status"]["components"]["predictor"]["latestRolledoutRevision"] == "m-predictor-00001"


def test_kserve_names_whoever_else_set_the_canary_percent_until_rewinds_write_takes_it_over(kube):
    api, url = kube
    roll_out_canary(api, percent=20, manager="kubectl-client-side-apply")  # a person's kubectl apply
    router = kserve_for(url)
    state = router.read_state(MODEL)
    (writer,) = state.also_written_by
    assert writer.startswith("kubectl-client-side-apply (Update, 20") and state.weights() == {"2": 80, "3": 20}
    router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 20, "2": 80})
    assert router.read_state(MODEL).also_written_by == ()
    (entry,) = api.get(NS, MODEL, ISVC)["metadata"]["managedFields"][-1:]
    assert entry["manager"] == "rewind" and entry["fieldsV1"] == {
        "f:spec": {"f:predictor": {"f:canaryTrafficPercent": {}}}}


def test_kserve_promotion_removes_canary_traffic_percent_and_a_promoted_model_can_be_rolled_back(kube):
    api, url = kube
    router = kserve_for(url)
    state = router.set_weights(MODEL, {"3": 100, "2": 0}, expected={"3": 10, "2": 90})
    assert state.weights() == {"2": 0, "3": 100}  # v2 is out of the traffic, shown at 0 as the way back
    isvc = api.get(NS, MODEL, ISVC)
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    assert traffic(isvc) == {"m-predictor-00002": 100}
    component = isvc["status"]["components"]["predictor"]
    assert (component["latestRolledoutRevision"], component["previousRolledoutRevision"]) == (
        "m-predictor-00002", "m-predictor-00001")

    # The promoted model misbehaves: canaryTrafficPercent 0 sends everything back to the previous rollout.
    state = router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 100, "2": 0})
    assert state.weights() == {"2": 100, "3": 0}
    isvc = api.get(NS, MODEL, ISVC)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert traffic(isvc) == {"m-predictor-00002": 0, "m-predictor-00001": 100}


def test_kserve_a_canary_percent_moved_between_the_read_and_the_patch_fails_the_test_on_the_server(kube):
    api, url = kube
    router = kserve_for(url)
    read = router.get_isvc

    def read_then_someone_writes(model):
        isvc = read(model)
        api.edit(ISVC, NS, MODEL, lambda o: o["spec"]["predictor"].update(canaryTrafficPercent=50))
        return isvc

    router.get_isvc = read_then_someone_writes  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="HTTP 422.*test failed.*re-plan"):
        router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    assert api.get(NS, MODEL, ISVC)["spec"]["predictor"]["canaryTrafficPercent"] == 50


def test_kserve_a_new_model_rolled_out_before_the_write_is_a_conflict_and_nothing_is_written(kube):
    api, url = kube
    roll_out_canary(api, "4", 10)  # v4 replaces v3 as the latest revision
    with pytest.raises(ConflictError, match=r"v3 is None \(expected 10\)"):
        kserve_for(url).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    assert not [r for r in api.requests if r[0] == "PATCH"]


def test_kserve_read_back_accepts_an_observed_generation_that_trails_the_generation(kube):
    """KServe copies the Knative Service's observedGeneration, which can trail the InferenceService's."""
    api, url = kube
    api.observed_generation_lag = 1
    state = kserve_for(url, readback_timeout_s=5).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})
    assert state.weights() == {"2": 100, "3": 0}


def test_kserve_a_controller_that_never_reports_fails_the_read_back_with_what_it_reads(kube):
    api, url = kube
    api.controller_running = False
    with pytest.raises(RouterError, match=r"not shown within 0.5s \(router.kserve.readback_timeout_s\): "
                                          r"status.observedGeneration is 2 \(generation 3\); "
                                          r"canaryTrafficPercent reads 0"):
        kserve_for(url, readback_timeout_s=0.5).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 10, "2": 90})


def test_kserve_versions_come_from_the_revision_label_never_guessed(kube):
    api, url = kube
    with pytest.raises(NotFoundError, match=r"splits traffic between v2 .*m-predictor-00001.* and v3 .*"
                                            r"m-predictor-00002.*v1 is not one of them"):
        kserve_for(url).set_weights(MODEL, {"1": 100, "3": 0}, expected=None)
    api.edit("revisions", NS, "m-predictor-00002", lambda rev: rev["metadata"]["labels"].pop(VERSION_LABEL))
    with pytest.raises(RouterError, match=f"Revision {NS}/m-predictor-00002 has no such label for "
                                          f"{VERSION_LABEL} \\(router.kserve.version_label\\).*spec.predictor.labels"):
        kserve_for(url).read_state(MODEL)


# -- Argo Rollouts: abort, read-back ---------------------------------------------------------------------
def test_argo_abort_patches_the_status_subresource_with_tests_and_waits_for_the_controller(kube):
    api, url = kube
    router = argo_for(url)
    assert router.read_state(MODEL).weights() == {"2": 80, "3": 20}
    generation = api.get(NS, MODEL, ROLLOUT)["metadata"]["generation"]
    started = time.monotonic()
    state = router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 20, "2": 80}, checked=True)
    assert time.monotonic() - started >= 0.25, "the read-back returned before the controller reconciled the abort"
    assert state.weights() == {"2": 100, "3": 0}
    (patch,) = [r for r in api.requests if r[0] == "PATCH"]
    assert patch[1].endswith(f"/rollouts/{MODEL}/status?fieldManager=rewind")
    assert patch[2] == "application/json-patch+json"
    rollout = api.get(NS, MODEL, ROLLOUT)
    assert rollout["metadata"]["generation"] == generation  # an abort changes no spec
    assert (rollout["status"]["abort"], rollout["status"]["phase"]) == (True, "Degraded")
    assert rollout["status"]["message"].startswith("RolloutAborted")
    assert router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 0, "2": 100}).weights() == state.weights()
    assert len([r for r in api.requests if r[0] == "PATCH"]) == 1, "a second abort wrote again"


def test_argo_a_new_canary_between_the_read_and_the_abort_fails_the_test_on_the_server(kube):
    api, url = kube
    router = argo_for(url)
    read = router.get_rollout

    def read_then_a_new_canary(model):
        rollout = read(model)
        api.start_canary(NS, MODEL, "2", "4")
        return rollout

    router.get_rollout = read_then_a_new_canary  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="HTTP 422.*test failed.*re-plan"):
        router.set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 20, "2": 80})
    assert not api.get(NS, MODEL, ROLLOUT)["status"].get("abort")


def test_argo_only_aborts_other_weights_are_refused_before_any_write(kube):
    api, url = kube
    with pytest.raises(RouterError, match=r"only aborts a canary .*asked v2 to 90, v3 to 10.*retry/promote"):
        argo_for(url).set_weights(MODEL, {"3": 10, "2": 90}, expected={"3": 20, "2": 80})
    with pytest.raises(ConflictError, match=r"v3 is 20 \(expected 30\)"):
        argo_for(url).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 30, "2": 70})
    assert not [r for r in api.requests if r[0] == "PATCH"]


def test_argo_a_controller_that_never_reconciles_the_abort_fails_the_read_back(kube):
    api, url = kube
    api.controller_running = False
    with pytest.raises(RouterError, match=r"status.abort is set but the controller has not reconciled it within "
                                          r"0.5s \(router.argo_rollouts.readback_timeout_s\): status.abortedAt"):
        argo_for(url, readback_timeout_s=0.5).set_weights(MODEL, {"3": 0, "2": 100}, expected={"3": 20, "2": 80})


# -- every patch Rewind emits is valid against the published schemas ------------------------------------
@pytest.mark.parametrize("percent", [0, 5, 50, 99, 100])
def test_every_kserve_patch_gives_an_inferenceservice_the_published_schema_accepts(kube, percent):
    api, url = kube
    router = kserve_for(url)
    isvc = api.get(NS, MODEL, ISVC)
    assert schema_errors(isvc) == []
    from console.adapters.k8s_kserve import read_split

    patch = router.percent_patch(isvc, read_split(isvc), percent)
    assert [op["op"] for op in patch[:3]] == ["test"] * 3
    patched = apply_json_patch(isvc, patch)
    assert schema_errors(patched) == []
    assert patched["spec"]["predictor"].get("canaryTrafficPercent", 100) == percent


def test_every_argo_patch_gives_a_rollout_the_published_schema_accepts(kube):
    api, _ = kube
    rollout = api.get(NS, MODEL, ROLLOUT)
    assert schema_errors(rollout) == []
    patched = apply_json_patch(rollout, ArgoRolloutsRouter.abort_patch(rollout))
    assert schema_errors(patched) == [] and patched["status"]["abort"] is True


def test_the_schema_fixtures_really_check_the_fields_rewind_writes(kube):
    api, _ = kube
    isvc = api.get(NS, MODEL, ISVC)
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = "10"
    assert ("spec.predictor.canaryTrafficPercent", "'10' is not of type 'integer'") in schema_errors(isvc)
    rollout = api.get(NS, MODEL, ROLLOUT)
    rollout["status"]["abort"] = "yes"
    assert ("status.abort", "'yes' is not of type 'boolean'") in schema_errors(rollout)
    rollout["status"]["observedGeneration"] = 2
    assert ("status.observedGeneration", "2 is not of type 'string'") in schema_errors(rollout)


# -- contract: a weight of 0 that still serves; an abort that left the canary's weight -------------------
@pytest.fixture
def rollback(kube, tmp_path):
    api, url = kube
    with contract_rollbacks(tmp_path, MODEL) as (records, service_for):
        def build(make_router, real=None) -> tuple[RollbackService, str, DataPlane]:
            plane = DataPlane(real or (lambda: make_router(url).read_state(MODEL).weights()))
            return (*service_for(make_router(url, counters=plane, served_query=SERVED), plane), plane)

        yield api, build, records


def roll_back_and_verify(service, incident):
    preview = service.preview(MODEL)
    assert (preview.plan.leave, preview.plan.target) == ("3", "2")
    applied = service.apply(preview, incident)
    assert applied.status == "applied", applied.message
    return applied, service.verify(incident, preview.plan)


@pytest.mark.parametrize("make_router", [kserve_for, argo_for], ids=["kserve", "argo-rollouts"])
def test_a_rollback_whose_traffic_really_moved_is_verified_from_the_metrics(rollback, make_router):
    api, build, _ = rollback
    service, incident, _ = build(make_router)
    applied, outcome = roll_back_and_verify(service, incident)
    assert applied.weights == {"2": 100, "3": 0}
    assert outcome.status == "verified", outcome.message
    assert "v3 got 0.0% of" in outcome.message


def test_kserve_a_revision_that_is_not_ready_is_down_and_a_rollback_to_it_is_refused(rollback, kube):
    api, build, _ = rollback
    _, url = kube
    rolled_out = api.get(NS, MODEL, ISVC)["status"]["components"]["predictor"]["latestRolledoutRevision"]
    assert {s.version: s.operational for s in kserve_for(url).read_state(MODEL).servers} == {"2": True, "3": True}

    def failing(revision):  # its pods cannot start: Knative reports the revision not Ready
        revision["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": "ContainerMissing",
                                             "message": "image gs://models/m/v2 not found"}]

    api.edit("revisions", NS, rolled_out, failing, subresource="status")
    assert {s.version: s.operational for s in kserve_for(url).read_state(MODEL).servers} == {"2": False, "3": True}
    service, _, _ = build(kserve_for)
    with pytest.raises(UsageError, match=rf"v2 is DOWN at the router \(KServe at .*server {rolled_out}"):
        service.preview(MODEL)


def test_kserve_canary_traffic_percent_0_accepted_but_still_served_is_not_verified(rollback):
    """The weight-0 incidents (istio#31745, kgateway#11548) on KServe's mesh: canaryTrafficPercent 0 is in the
    spec and in KServe's traffic status, yet the proxies keep the canary's 10 %. The per-version counters say
    so, and verification sides with them."""
    api, build, records = rollback
    service, incident, _ = build(kserve_for, real=lambda: {"2": 90, "3": 10})
    applied, outcome = roll_back_and_verify(service, incident)
    isvc = api.get(NS, MODEL, ISVC)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0 and applied.weights["3"] == 0
    assert outcome.status == "not_verified"
    assert "NOT verified: v3 got 10.0% of" in outcome.message
    assert "although the router reads weight 0" in outcome.message
    (event,) = list(records.journal.events(incident, [EventKind.ACTION_NOT_VERIFIED]))
    assert event.payload["observed"]["leave_share"] == pytest.approx(0.1, abs=0.01)


def test_argo_4841_abort_that_kept_the_canary_weight_is_not_verified(rollback):
    """argo-rollouts#4841 (v1.9.0, dynamicStableScale + minPodsPerReplicaSet): the abort is reconciled (abort,
    abortedAt, Degraded) but the canary keeps 30 % of the traffic. Verified from the metrics: not verified."""
    api, build, records = rollback
    api.abort_keeps_canary_weight = 30
    service, incident, _ = build(argo_for)
    applied, outcome = roll_back_and_verify(service, incident)
    rollout = api.get(NS, MODEL, ROLLOUT)
    assert (rollout["status"]["abort"], rollout["status"]["phase"]) == (True, "Degraded")  # the object says aborted
    assert outcome.status == "not_verified"
    assert "NOT verified: v3 got 30.0% of" in outcome.message
    (event,) = list(records.journal.events(incident, [EventKind.ACTION_NOT_VERIFIED]))
    assert event.payload["observed"]["leave_share"] == pytest.approx(0.3, abs=0.01)


def test_argo_abort_recorded_as_weight_0_while_the_traffic_router_kept_the_canary_is_not_verified(rollback):
    """The same incident seen from the traffic router: the Rollout records the canary at 0 (what a spec- or
    status-based check would trust) while the mesh keeps routing the canary's 20 %."""
    api, build, _ = rollback
    service, incident, _ = build(argo_for, real=lambda: {"2": 80, "3": 20})
    applied, outcome = roll_back_and_verify(service, incident)
    assert api.get(NS, MODEL, ROLLOUT)["status"]["canary"]["weights"]["canary"]["weight"] == 0
    assert outcome.status == "not_verified"
    assert "v3 got 20.0% of" in outcome.message and "although the router reads weight 0" in outcome.message


# -- opt-in: a real cluster ------------------------------------------------------------------------------
REAL = os.environ.get("REWIND_K8S_TEST_KUBECONFIG")


@pytest.mark.skipif(not REAL or not os.environ.get("REWIND_K8S_TEST_ISVC"),
                    reason="opt-in: set REWIND_K8S_TEST_KUBECONFIG and REWIND_K8S_TEST_ISVC=namespace/name (an "
                           "InferenceService in serverless mode with a canary, its revisions labelled "
                           "rewind.dev/model-version) to run against your own cluster; skipped even with CI=true")
def test_opt_in_real_cluster_kserve_reads_and_rewrites_the_same_split():
    """Read the split, write the same percentages back (nothing changes for traffic) through compare-and-set
    and the read-back, and check that a stale expectation is refused before anything is written."""
    access = kubeconfig_access(REAL or "", os.environ.get("REWIND_K8S_TEST_CONTEXT"), "router.kserve")
    router = KServeRouter(access, {"model": os.environ["REWIND_K8S_TEST_ISVC"]}, readback_timeout_s=120,
                          version_label=os.environ.get("REWIND_K8S_TEST_LABEL", VERSION_LABEL))
    weights = router.read_state("model").weights()
    assert len(weights) == 2, f"no canary in progress: {weights}"
    assert router.set_weights("model", dict(weights), expected=dict(weights)).weights() == weights
    version = next(iter(weights))
    with pytest.raises(ConflictError):
        router.set_weights("model", {version: weights[version]}, expected={version: weights[version] + 1})


@pytest.mark.skipif(not REAL or not os.environ.get("REWIND_K8S_TEST_ROLLOUT"),
                    reason="opt-in: set REWIND_K8S_TEST_KUBECONFIG and REWIND_K8S_TEST_ROLLOUT=namespace/name (a "
                           "Rollout whose pod template is labelled rewind.dev/model-version) to run against your own "
                           "cluster; it only reads; skipped even with CI=true")
def test_opt_in_real_cluster_argo_reads_the_rollout_and_refuses_what_is_not_an_abort():
    """Read-only against a real cluster (an abort would change traffic): the versions and weights are read, and
    a weight change that is not an abort is refused before anything is written."""
    access = kubeconfig_access(REAL or "", os.environ.get("REWIND_K8S_TEST_CONTEXT"), "router.argo_rollouts")
    router = ArgoRolloutsRouter(access, {"model": os.environ["REWIND_K8S_TEST_ROLLOUT"]},
                                version_label=os.environ.get("REWIND_K8S_TEST_LABEL", VERSION_LABEL))
    weights = router.read_state("model").weights()
    assert weights and sum(weights.values()) == 100, weights
    version = max(weights, key=int)
    with pytest.raises(RouterError, match="only aborts a canary"):
        router.set_weights("model", {version: 1}, expected=None)
