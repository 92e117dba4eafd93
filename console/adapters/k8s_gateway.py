"""Gateway API ``HTTPRoute`` backend weights over the Kubernetes API (httpx).

One route per model (``router.backends``: model -> ``namespace/name``), one
``backendRef`` per version, named by ``router.server_template`` (``{model}`` and
``{version}``). Every rule of the route that refers to a version's Service carries
the model's split; they must agree, and a write changes them together.

A write is one JSON Patch (RFC 6902): for each backendRef it changes, a ``test`` of
the whole ref exactly as it was read (so a concurrent edit fails the patch on the
server, atomically), then an ``add`` of its ``weight``. The API server answers a
failed ``test`` with 422 and an optimistic-lock failure with 409: both mean the
state moved, so the caller re-plans (ConflictError). The read-back waits until the
route's controller reports ``Accepted`` for the new ``metadata.generation`` in
every parent's ``status.parents[].conditions[].observedGeneration``.

An accepted route is the control plane's word, not the data plane's: weights set to
0 have kept serving (istio#31745, kgateway#11548). A route keeps no request
counters either, so :meth:`GatewayRouter.served` counts each version's requests
from the per-version metrics (``router.gateway_api.served_query``), and the
rollback's verification judges the traffic from them, never from the spec.

A backend's health is its Service's ready endpoints (EndpointSlices, read with the
route): none ready is DOWN, so a rollback to it is refused; slices the account may
not list leave the backend as the route alone says.
"""

from __future__ import annotations

import copy
import time
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

import httpx

from console.adapters.k8s_api import (
    JSON_PATCH,
    KubeAccess,
    KubeRouter,
    explicit_access,
    kubeconfig_access,
    other_writers,
)
from console.adapters.protocols import MetricsSource
from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.routing import RouterState, ServerNaming, ServerState

GROUP = "gateway.networking.k8s.io"
API_VERSION = "v1"
MAX_ROUTE_WEIGHT = 1_000_000
"""The HTTPRoute schema's bound on ``backendRefs[].weight`` (gateway-api v1)."""
SETTING = "router.gateway_api"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""The label that ties an EndpointSlice to its Service."""

__all__ = ["GatewayRouter", "KubeAccess", "acceptance", "explicit_access", "kubeconfig_access", "route_path"]


def route_path(namespace: str, name: str) -> str:
    """The API path of one HTTPRoute."""
    return f"/apis/{GROUP}/{API_VERSION}/namespaces/{namespace}/httproutes/{name}"


@dataclass(frozen=True)
class _Ref:
    """One backendRef of one rule, as read."""

    rule: int
    index: int
    ref: dict[str, Any]

    @property
    def weight(self) -> int:
        return int(self.ref.get("weight", 1))  # the schema's default


def endpointslices_path(namespace: str, services: list[str]) -> str:
    """The API path listing the EndpointSlices of ``services`` in ``namespace`` (one label selector for all)."""
    selector = f"{SERVICE_NAME_LABEL} in ({','.join(sorted(set(services)))})"
    return (f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices?"
            + urllib.parse.urlencode({"labelSelector": selector}))


def ready_endpoints(listing: dict[str, Any]) -> dict[str, int]:
    """Ready endpoints per Service in an EndpointSlice list. An endpoint whose ``ready`` is unset counts as ready,
    as the EndpointSlice API asks of its readers; a Service with no slice is not in the answer."""
    found: dict[str, int] = {}
    for item in listing.get("items") or []:
        service = ((item.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not isinstance(service, str):
            continue
        ready = sum(1 for e in item.get("endpoints") or []
                    if isinstance(e, dict) and (e.get("conditions") or {}).get("ready") is not False)
        found[service] = found.get(service, 0) + ready
    return found


def _parent_name(parent: dict[str, Any]) -> str:
    ref = parent.get("parentRef") or {}
    return "/".join(str(p) for p in (ref.get("namespace"), ref.get("name")) if p) + (
        f" ({ref['sectionName']})" if ref.get("sectionName") else "")


def acceptance(route: dict[str, Any]) -> tuple[bool, str]:
    """Whether every parent accepted the route's current generation, and what the status says if not.

    A parent that reports ``Accepted`` (and ``ResolvedRefs``, when it reports it) as ``True`` with an
    ``observedGeneration`` at least ``metadata.generation`` has taken the spec; ``False`` for that
    generation is a refusal (the message starts with ``refused``); anything older is still pending.
    """
    generation = int((route.get("metadata") or {}).get("generation") or 0)
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return False, "no controller has reported on the route (status.parents is empty)"
    pending = []
    for parent in parents:
        conditions = {c.get("type"): c for c in parent.get("conditions") or [] if isinstance(c, dict)}
        for kind in ("Accepted", "ResolvedRefs"):
            condition = conditions.get(kind)
            if condition is None:
                if kind == "Accepted":
                    pending.append(f"{_parent_name(parent)}: no Accepted condition")
                continue
            seen = int(condition.get("observedGeneration") or 0)
            if seen < generation:
                pending.append(f"{_parent_name(parent)}: {kind} observed generation {seen} of {generation}")
            elif condition.get("status") != "True":
                return False, (f"refused by {_parent_name(parent)}: {kind} is {condition.get('status')} "
                               f"({condition.get('reason')}: {condition.get('message', '')})")
    return (not pending), "; ".join(pending)


class GatewayRouter(KubeRouter):
    """A model router on Gateway API HTTPRoutes: one route per model, one weighted backendRef per version.

    Args: as :class:`~console.adapters.k8s_api.KubeRouter`'s,
    ``routes`` (the base's ``objects``) maps each model to its HTTPRoute;
    ``server_template`` names a version's backendRef (Service): ``{version}`` once, ``{model}`` optional;
    ``readback_timeout_s`` is how long a write waits for the controller to accept the new generation.
    """

    product, setting, kind = "Gateway API", SETTING, "route"
    mirrors_on, one_object = "Gateway API routes", "a Gateway API route"

    def __init__(self, access: KubeAccess, routes: dict[str, str], namespace: str = "default",
                 server_template: str = "{model}-v{version}", timeout_s: float = 5.0,
                 readback_timeout_s: float = 30.0, counters: MetricsSource | None = None,
                 served_query: str | None = None, poll_interval_s: float = 0.2,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.server_template = server_template
        ServerNaming(server_template)
        super().__init__(access, routes, namespace, timeout_s, readback_timeout_s, counters, served_query,
                         poll_interval_s, transport)

    def naming(self, model: str) -> ServerNaming:
        """Version <-> backendRef name for ``model``."""
        return ServerNaming(self.server_template.replace("{model}", model))

    def get_route(self, model: str) -> dict[str, Any]:
        """The model's HTTPRoute object as the API server has it.

        Raises:
            NotFoundError: the route does not exist. RouterError: the server refused or cannot be reached.
        """
        namespace, name = self.object_name(model)
        return self._kube.get_object(route_path(namespace, name), f"HTTPRoute {namespace}/{name}",
                                     f" (router.backends.{model})")

    # -- reads ------------------------------------------------------------------------------
    def _version_refs(self, model: str, route: dict[str, Any]) -> dict[str, list[_Ref]]:
        """Version -> its backendRefs, one per rule that splits the model's traffic.

        Raises:
            RouterError: no rule refers to a version, or the rules disagree on the weights.
        """
        naming = self.naming(model)
        found: dict[str, list[_Ref]] = {}
        for r, rule in enumerate((route.get("spec") or {}).get("rules") or []):
            for i, ref in enumerate(rule.get("backendRefs") or []):
                if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
                    continue
                version = naming.version(str(ref.get("name", "")))
                if version is not None:
                    found.setdefault(version, []).append(_Ref(r, i, ref))
        if not found:
            raise RouterError(f"{self.describe()}: HTTPRoute {self.object_path(model)} has no backendRef "
                              f"named like {self.server_template.replace('{model}', model)!r} "
                              "(router.server_template)")
        rules = sorted({ref.rule for refs in found.values() for ref in refs})
        for version, refs in found.items():
            weights = {ref.weight for ref in refs}
            if len(weights) > 1 or len(refs) != len(rules):
                detail = ", ".join(f"rule {ref.rule}: {ref.weight}" for ref in refs)
                raise RouterError(f"{self.describe()}: HTTPRoute {self.object_path(model)}: the rules "
                                  f"{rules} split v{version} differently ({detail}); Rewind will not guess which "
                                  "one counts")
        return found

    def _state(self, model: str, route: dict[str, Any]) -> RouterState:
        namespace, name = self.object_name(model)
        refs = self._version_refs(model, route)
        servers = tuple(
            ServerState(server=str(first.ref["name"]), version=version, weight=first.weight, operational=True,
                        address=f"{first.ref.get('namespace', namespace)}/{first.ref['name']}:{first.ref.get('port')}")
            for version, (first, *_) in sorted(refs.items(), key=lambda item: int(item[0]))
        )
        return RouterState(backend=f"{namespace}/{name}", servers=servers,
                           also_written_by=other_writers(route, ("spec", "rules")))

    def read_state(self, model: str) -> RouterState:
        """Every version's backendRef in the model's route, with its weight (the spec: what was asked for), and the
        ready endpoints behind each backend's Service (its EndpointSlices), where they can be read.

        A Service with no ready endpoint is not operational: traffic sent there goes nowhere, and a rollback
        to it is refused at its preview. A Service without EndpointSlices, or slices the account may not
        list (RBAC), leaves its backend as it was: operational, its endpoints not reported.

        Raises:
            NotFoundError: the route does not exist. RouterError: unreachable, refused, or ambiguous.
        """
        state = self._state(model, self.get_route(model))
        services: dict[str, list[str]] = {}
        for server in state.servers:
            namespace, service = self._service_of(server)
            services.setdefault(namespace, []).append(service)
        ready: dict[tuple[str, str], int] = {}
        for namespace, names in services.items():
            listing = self._kube.get_readable(endpointslices_path(namespace, names),
                                              f"the EndpointSlices of {', '.join(sorted(names))}")
            if listing is not None:
                ready.update(((namespace, name), count) for name, count in ready_endpoints(listing).items())
        servers = []
        for server in state.servers:
            count = ready.get(self._service_of(server))
            servers.append(server if count is None else replace(server, endpoints=count, operational=count > 0))
        return replace(state, servers=tuple(servers))

    @staticmethod
    def _service_of(server: ServerState) -> tuple[str, str]:
        """The namespace and name of a backend's Service (its address: ``namespace/name:port``)."""
        namespace, _, rest = (server.address or "").partition("/")
        return namespace, rest.rsplit(":", 1)[0]

    # -- writes -----------------------------------------------------------------------------
    def weight_patch(self, model: str, route: dict[str, Any], weights: dict[str, int]) -> list[dict[str, Any]]:
        """The JSON Patch that sets ``weights``: per backendRef, a test of the ref as read, then its weight.

        Raises:
            NotFoundError: a version with no backendRef in the route.
        """
        refs = self._version_refs(model, route)
        missing = sorted(v for v in weights if v not in refs)
        if missing:
            raise NotFoundError(f"{self.describe()}: HTTPRoute {self.object_path(model)} has no backendRef "
                                f"for version {missing[0]} (expected {self.naming(model).server(missing[0])!r})")
        ops: list[dict[str, Any]] = []
        for version, weight in sorted(weights.items()):
            for ref in refs[version]:
                path = f"/spec/rules/{ref.rule}/backendRefs/{ref.index}"
                ops.append({"op": "test", "path": path, "value": copy.deepcopy(ref.ref)})
                ops.append({"op": "add", "path": f"{path}/weight", "value": weight})
        return ops

    def set_weights(
        self, model: str, weights: dict[str, int], expected: dict[str, int] | None = None, checked: bool = False
    ) -> RouterState:
        """Set several versions' weights in one JSON Patch, with compare-and-set; wait for the controller.

        Args:
            model: the model whose route to change.
            weights: version -> new weight (0..1,000,000).
            expected: version -> the weight the caller last saw; any difference aborts before writing.
            checked: the caller compared ``expected`` under its lock just before. The route is read
                anyway (the patch needs each ref's place), and the patch's tests guard the gap.

        Returns:
            The route's state read back once every parent accepted the new generation.

        Raises:
            ConflictError: a weight is no longer what the caller expected, or the route changed between the
                read and the write (the API server's 422 on a failed test, or 409): re-plan.
            NotFoundError: a version with no backendRef. RouterError: refused, unreachable, or not accepted
                within ``readback_timeout_s`` (the spec may be changed: the message says what it reads).
        """
        for version, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_ROUTE_WEIGHT:
                raise UsageError(f"version {version}: weight {weight!r} is not a whole number from 0 to "
                                 f"{MAX_ROUTE_WEIGHT:,}")
        if checked and (expected is None or set(weights) - set(expected)):
            raise UsageError("set_weights(checked=True) needs an expected weight for every version it sets")
        route = self.get_route(model)
        if not weights:
            return self._state(model, route)
        current = self._state(model, route).weights()
        if expected is not None:
            changed = {v: (w, current.get(v)) for v, w in expected.items() if current.get(v) != w}
            if changed:
                detail = ", ".join(f"v{v} is {now} (expected {was})" for v, (was, now) in sorted(changed.items()))
                raise ConflictError(f"{self.describe()}: weights changed since they were read: {detail}")
        patch = self.weight_patch(model, route, weights)
        namespace, name = self.object_name(model)
        written = self._kube.patch(route_path(namespace, name), patch, f"HTTPRoute {namespace}/{name}", JSON_PATCH)
        return self._read_back(model, written, weights)

    def _read_back(self, model: str, written: dict[str, Any], weights: dict[str, int]) -> RouterState:
        """Poll the route until every parent accepted the written generation; the state then."""
        generation = int((written.get("metadata") or {}).get("generation") or 0)
        deadline = time.monotonic() + self.readback_timeout_s
        route = written
        while True:
            accepted, why = acceptance(route) if _generation(route) >= generation else (False, "older generation")
            state = self._state(model, route)
            if accepted or why.startswith("refused"):
                break
            if time.monotonic() >= deadline:
                raise RouterError(f"{self.describe()}: generation {generation} of HTTPRoute "
                                  f"{self.object_path(model)} not accepted within {self.readback_timeout_s:g}s "
                                  f"(router.gateway_api.readback_timeout_s): {why}; the spec reads "
                                  f"{state.weights()}")
            self.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))
            route = self.get_route(model)
        if not accepted:
            raise RouterError(f"{self.describe()}: HTTPRoute {self.object_path(model)} generation {generation} "
                              f"{why}; the spec reads {state.weights()}")
        wrong = {v: state.weights().get(v) for v, w in weights.items() if state.weights().get(v) != w}
        if wrong:
            raise RouterError(f"{self.describe()}: read-back shows weights {wrong}, not {weights}")
        return state

def _generation(route: dict[str, Any]) -> int:
    return int((route.get("metadata") or {}).get("generation") or 0)
