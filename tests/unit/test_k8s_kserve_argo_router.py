"""The KServe and Argo Rollouts routers' reading of the API server's answers, and their config, without a
server (httpx's MockTransport)."""

from __future__ import annotations

import copy
import json

import httpx
import pytest
import yaml

from console.adapters.k8s_api import KubeAccess
from console.adapters.k8s_argo import ArgoRolloutsRouter, aborted, step_weight
from console.adapters.k8s_kserve import KServeRouter, read_split
from console.config import parse_config
from console.domain.errors import ConfigError, ConflictError, RouterError, UsageError

LABEL = "rewind.dev/model-version"
ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "m", "namespace": "ns", "generation": 2, "resourceVersion": "7"},
    "spec": {"predictor": {"canaryTrafficPercent": 10, "labels": {LABEL: "3"},
                           "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "gs://m/v3"}}},
    "status": {"observedGeneration": 2, "components": {"predictor": {
        "latestCreatedRevision": "m-predictor-00002", "latestRolledoutRevision": "m-predictor-00001",
        "traffic": [{"latestRevision": True, "revisionName": "m-predictor-00002", "percent": 10},
                    {"latestRevision": False, "revisionName": "m-predictor-00001", "percent": 90, "tag": "prev"}]}}},
}
REVISION_VERSIONS = {"m-predictor-00001": "v2", "m-predictor-00002": "3"}


def status(code: int, reason: str, message: str, causes: list | None = None) -> dict:
    body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message}
    if causes:
        body["details"] = {"causes": causes}
    return body


def kserve_answering(code: int = 200, body: dict | None = None, isvc: dict | None = None,
                     seen: list | None = None) -> KServeRouter:
    isvc = isvc or ISVC

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t0ken"
        if seen is not None:
            seen.append((request.method, request.url.path, request.content))
        if "/revisions/" in request.url.path:
            name = request.url.path.rsplit("/", 1)[1]
            return httpx.Response(200, json={"metadata": {"name": name, "labels": {LABEL: REVISION_VERSIONS[name]}}})
        if request.method == "GET":
            return httpx.Response(200, json=isvc)
        return httpx.Response(code, json=body or {})

    return KServeRouter(KubeAccess("https://k8s.example:6443", lambda: "t0ken"), {"m": "ns/m"},
                        transport=httpx.MockTransport(answer))


def test_kserve_reads_the_split_from_the_traffic_status_and_versions_from_the_revisions():
    state = kserve_answering().read_state("m")
    assert state.weights() == {"2": 90, "3": 10}  # the label may say v2 or 2
    assert [s.server for s in state.servers] == ["m-predictor-00001", "m-predictor-00002"]
    split = read_split(ISVC)
    assert (split.latest, split.rolled_out, split.canary_percent, split.observed) == (
        "m-predictor-00002", "m-predictor-00001", 10, 2)
    assert split.other == "m-predictor-00001"
    promoted = copy.deepcopy(ISVC)
    promoted["status"]["components"]["predictor"].update(
        latestRolledoutRevision="m-predictor-00002", previousRolledoutRevision="m-predictor-00001",
        traffic=[{"latestRevision": True, "revisionName": "m-predictor-00002", "percent": 100}])
    assert read_split(promoted).other == "m-predictor-00001"  # after a promotion, the way back
    assert kserve_answering(isvc=promoted).read_state("m").weights() == {"2": 0, "3": 100}


def test_kserve_409_and_a_failed_test_are_a_moved_state_and_a_422_naming_fields_is_a_refusal():
    for code, reason in ((409, "Conflict"), (422, "")):
        with pytest.raises(ConflictError, match=f"HTTP {code}.*re-plan"):
            kserve_answering(code, status(code, reason, "modified")).set_weights("m", {"3": 0, "2": 100}, None)
    invalid = status(422, "Invalid", "InferenceService is invalid",
                     [{"type": "FieldValueInvalid", "field": "spec.predictor.canaryTrafficPercent"}])
    with pytest.raises(RouterError, match="HTTP 422: InferenceService is invalid"):
        kserve_answering(422, invalid).set_weights("m", {"3": 0, "2": 100}, None)
    with pytest.raises(RouterError, match="RBAC"):
        kserve_answering(403, status(403, "Forbidden", "forbidden")).set_weights("m", {"3": 0, "2": 100}, None)


def test_kserve_the_patch_tests_the_predictor_and_both_revisions_then_sets_the_percent():
    seen: list = []
    with pytest.raises(ConflictError):  # the mock answers the PATCH with 409: only the request matters here
        kserve_answering(409, status(409, "Conflict", "x"), seen=seen).set_weights("m", {"3": 0, "2": 100}, None)
    (patch,) = [json.loads(body) for method, _, body in seen if method == "PATCH"]
    assert patch == [
        {"op": "test", "path": "/spec/predictor", "value": ISVC["spec"]["predictor"]},
        {"op": "test", "path": "/status/components/predictor/latestCreatedRevision", "value": "m-predictor-00002"},
        {"op": "test", "path": "/status/components/predictor/latestRolledoutRevision", "value": "m-predictor-00001"},
        {"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 0},
    ]


def test_kserve_percentages_must_be_percents_that_make_100_and_no_op_writes_nothing():
    seen: list = []
    router = kserve_answering(seen=seen)
    with pytest.raises(UsageError, match="not a percent"):
        router.set_weights("m", {"3": 101}, None)
    with pytest.raises(UsageError, match="v2 90 \\+ v3 0 must make 100"):
        router.set_weights("m", {"3": 0}, None)
    assert router.set_weights("m", {"3": 10, "2": 90}, {"3": 10, "2": 90}).weights() == {"2": 90, "3": 10}
    assert not [s for s in seen if s[0] == "PATCH"]


def test_kserve_refuses_what_it_cannot_read_safely():
    no_traffic = copy.deepcopy(ISVC)
    no_traffic["status"] = {}
    with pytest.raises(RouterError, match="reports no predictor traffic yet"):
        kserve_answering(isvc=no_traffic).read_state("m")
    REVISION_VERSIONS["m-predictor-00001"] = "3"
    try:
        with pytest.raises(RouterError, match="both carry rewind.dev/model-version=3"):
            kserve_answering().read_state("m")
    finally:
        REVISION_VERSIONS["m-predictor-00001"] = "v2"


ROLLOUT = {
    "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
    "metadata": {"name": "m", "namespace": "ns", "generation": 2},
    "spec": {"strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}}},
    "status": {"stableRS": "aaa", "currentPodHash": "bbb", "currentStepIndex": 1, "observedGeneration": "2"},
}


def argo_answering(rollout: dict, status_code: int = 200, seen: list | None = None) -> ArgoRolloutsRouter:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append((request.method, request.url.path))
        if "/replicasets/" in request.url.path:
            version = {"m-aaa": "2", "m-bbb": "3"}[request.url.path.rsplit("/", 1)[1]]
            return httpx.Response(200, json={"spec": {"template": {"metadata": {"labels": {LABEL: version}}}}})
        if request.method == "GET":
            return httpx.Response(200, json=rollout)
        if request.url.path.endswith("/status") and status_code != 200:
            return httpx.Response(status_code, json=status(status_code, "NotFound", "not found"))
        done = copy.deepcopy(rollout)
        done["status"].update(abort=True, abortedAt="2026-01-01T00:00:00Z", phase="Degraded",
                              message="RolloutAborted: Rollout aborted update to revision 2")
        return httpx.Response(200, json=done)

    return ArgoRolloutsRouter(KubeAccess("https://k8s.example:6443", lambda: None), {"m": "ns/m"},
                              transport=httpx.MockTransport(answer))


def test_argo_weights_without_traffic_routing_come_from_the_steps():
    assert argo_answering(ROLLOUT).read_state("m").weights() == {"2": 80, "3": 20}
    assert step_weight({**ROLLOUT, "status": {**ROLLOUT["status"], "currentStepIndex": 3}}) == 100
    assert step_weight({**ROLLOUT, "status": {**ROLLOUT["status"], "abort": True}}) == 0
    promoted = {**ROLLOUT, "status": {**ROLLOUT["status"], "currentPodHash": "aaa"}}
    assert argo_answering(promoted).read_state("m").weights() == {"2": 100}


def test_argo_abort_falls_back_to_the_main_resource_like_the_plugin_when_there_is_no_status_subresource():
    seen: list = []
    state = argo_answering(ROLLOUT, status_code=404, seen=seen).set_weights("m", {"3": 0, "2": 100}, None)
    assert [p for m, p in seen if m == "PATCH"] == ["/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/m/status",
                                                    "/apis/argoproj.io/v1alpha1/namespaces/ns/rollouts/m"]
    assert state.weights() == {"2": 100, "3": 0}


def test_argo_aborted_reads_the_controllers_status():
    assert aborted(ROLLOUT) == (False, "status.abort is not set (someone retried or promoted the rollout?)")
    pending = copy.deepcopy(ROLLOUT)
    pending["status"].update(abort=True, observedGeneration="1")
    assert aborted(pending) == (False, "status.observedGeneration is 1 (generation 2)")
    pending["status"].update(observedGeneration="2", abortedAt="t", phase="Paused")
    assert aborted(pending) == (False, "status.phase is 'Paused', not 'Degraded'")


def load_config_text(text: str):
    return parse_config(yaml.safe_load(text), "rewind.yaml", {})


CONFIG = """
registry: {tracking_uri: "sqlite:///x.db"}
router:
  kind: %s
  backends: {m: models/m}
  %s
metrics:
  url: "http://127.0.0.1:9090"
  catalogue: [{name: rate, title: req/s, unit: per_second, query: 'x{model="$model"}'}]
"""
SECTION = '{server: "https://k8s:6443", token_env: K8S_TOKEN, served_query: "x{model=\\"$model\\"}"%s}'


@pytest.mark.parametrize(("kind", "key", "router_class"), [("kserve", "kserve", KServeRouter),
                                                           ("argo-rollouts", "argo_rollouts", ArgoRolloutsRouter)])
def test_config_and_wiring_for_kserve_and_argo_rollouts(kind, key, router_class):
    from console.wiring import build_router

    config = load_config_text(CONFIG % (kind, f"{key}: " + SECTION % ""))
    section = getattr(config.router, key)
    assert section.version_label == LABEL and section.readback_timeout_s == 60
    router = build_router(config)
    assert isinstance(router, router_class) and router.describe().endswith("at https://k8s:6443")
    # No server health, no counters of its own: readiness and verification read the cluster's side otherwise.
    assert router.reports_health is False and router.counts_from_metrics is True
    with pytest.raises(ConfigError, match=f"{key} .*is required for kind {kind}"):
        load_config_text(CONFIG % (kind, ""))
    with pytest.raises(ConfigError, match="not a Kubernetes label key"):
        load_config_text(CONFIG % (kind, f"{key}: " + SECTION % ', version_label: "bad label"'))
    custom = load_config_text(CONFIG % (kind, f"{key}: " + SECTION % ', version_label: "example.com/model_v"'))
    assert getattr(custom.router, key).version_label == "example.com/model_v"
