"""The Gateway API router's reading of the API server's answers, and its config, without a server."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml

from console.adapters.k8s_gateway import GatewayRouter, KubeAccess, acceptance, kubeconfig_access
from console.config import parse_config
from console.domain.errors import ConfigError, ConflictError, RouterError
from tests.fixtures.k8s_api import sample_route

ROUTE = sample_route("ns", "r", "m", {"2": 90, "3": 10})
ROUTE["metadata"].update(generation=1, resourceVersion="5")


def router_answering(code: int, body: dict) -> GatewayRouter:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer t0ken"
        if request.method == "GET":
            return httpx.Response(200, json=ROUTE)
        return httpx.Response(code, json=body)

    return GatewayRouter(KubeAccess("https://k8s.example:6443", lambda: "t0ken"), {"m": "ns/r"},
                         transport=httpx.MockTransport(answer))


def status(code: int, reason: str, message: str, causes: list | None = None) -> dict:
    body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message}
    if causes:
        body["details"] = {"causes": causes}
    return body


def test_409_and_a_failed_test_are_a_moved_state():
    for code, reason in ((409, "Conflict"), (422, "")):
        router = router_answering(code, status(code, reason, "the object has been modified"))
        with pytest.raises(ConflictError, match=f"HTTP {code}.*re-plan"):
            router.set_weights("m", {"3": 0}, expected={"3": 10})


def test_a_422_naming_invalid_fields_is_a_refusal_not_a_conflict():
    router = router_answering(422, status(422, "Invalid", "HTTPRoute is invalid",
                                          [{"type": "FieldValueInvalid", "field": "spec.rules[0].backendRefs[1]"}]))
    with pytest.raises(RouterError, match="HTTP 422: HTTPRoute is invalid"):
        router.set_weights("m", {"3": 0}, expected={"3": 10})


def test_401_and_403_say_what_to_check():
    with pytest.raises(RouterError, match="token_env/token_file"):
        router_answering(401, status(401, "Unauthorized", "Unauthorized")).set_weights("m", {"3": 0}, None)
    with pytest.raises(RouterError, match="RBAC"):
        router_answering(403, status(403, "Forbidden", "forbidden")).set_weights("m", {"3": 0}, None)


def test_acceptance_reads_every_parent_for_the_current_generation():
    route = json.loads(json.dumps(ROUTE))
    assert acceptance(route) == (False, "no controller has reported on the route (status.parents is empty)")
    condition = {"type": "Accepted", "status": "True", "observedGeneration": 1}
    route["status"] = {"parents": [{"parentRef": {"name": "a"}, "conditions": [condition]},
                                   {"parentRef": {"name": "b"}, "conditions": [dict(condition, observedGeneration=0)]}]}
    accepted, why = acceptance(route)
    assert not accepted and "b: Accepted observed generation 0 of 1" in why
    route["status"]["parents"][1]["conditions"][0]["observedGeneration"] = 1
    assert acceptance(route)[0]


def load_config_text(text: str):
    return parse_config(yaml.safe_load(text), "rewind.yaml", {})


GATEWAY = """
registry: {tracking_uri: "sqlite:///x.db"}
router:
  kind: gateway-api
  backends: {m: models/m-route}
  server_template: "{model}-v{version}"
  gateway_api: %s
metrics:
  url: "http://127.0.0.1:9090"
  catalogue: [{name: rate, title: req/s, unit: per_second, query: 'x{model="$model"}'}]
"""


def test_config_needs_the_api_server_and_the_served_query_for_gateway_api():
    good = ('{server: "https://k8s:6443", token_env: K8S_TOKEN, '
            'served_query: "sum by (version, segment) (x{model=\\"$model\\"})"}')
    config = load_config_text(GATEWAY % good)
    assert config.router.kind == "gateway-api" and config.router.socket is None
    with pytest.raises(ConfigError, match="served_query"):
        load_config_text(GATEWAY % '{server: "https://k8s:6443"}')
    with pytest.raises(ConfigError, match="either kubeconfig or server"):
        load_config_text(GATEWAY % '{served_query: "x{model=\\"$model\\"}"}')
    with pytest.raises(ConfigError, match="socket is required for kind haproxy"):
        load_config_text(GATEWAY.replace("kind: gateway-api", "kind: haproxy") % good)


def test_kubeconfig_exec_plugins_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
                    "clusters: [{name: k, cluster: {server: 'https://k:6443'}}]\n"
                    "users: [{name: u, user: {exec: {command: aws}}}]\n")
    with pytest.raises(ConfigError, match=f"kubeconfig {path}: user 'u' authenticates with exec"):
        kubeconfig_access(str(path))
    path.write_text(path.read_text().replace("{exec: {command: aws}}", "{token: abc}"))
    access = kubeconfig_access(str(path))
    assert access.server == "https://k:6443" and access.token() == "abc"


@pytest.mark.parametrize("code", [403, 404])
def test_endpointslices_the_account_may_not_list_leave_the_backends_unreported_not_down(code):
    def answer(request: httpx.Request) -> httpx.Response:
        if "endpointslices" in request.url.path:
            return httpx.Response(code, json=status(code, "Forbidden", "endpointslices is forbidden"))
        return httpx.Response(200, json=ROUTE)

    router = GatewayRouter(KubeAccess("https://k8s.example:6443", lambda: "t0ken"), {"m": "ns/r"},
                           transport=httpx.MockTransport(answer))
    state = router.read_state("m")
    assert [(s.version, s.operational, s.endpoints) for s in state.servers] == [("2", True, None), ("3", True, None)]


def test_an_endpointslice_server_error_is_a_router_error_not_a_guess():
    def answer(request: httpx.Request) -> httpx.Response:
        if "endpointslices" in request.url.path:
            return httpx.Response(500, json=status(500, "InternalError", "etcd timeout"))
        return httpx.Response(200, json=ROUTE)

    router = GatewayRouter(KubeAccess("https://k8s.example:6443", lambda: "t0ken"), {"m": "ns/r"},
                           transport=httpx.MockTransport(answer))
    with pytest.raises(RouterError, match="reading the EndpointSlices of m-v2, m-v3: HTTP 500: etcd timeout"):
        router.read_state("m")
