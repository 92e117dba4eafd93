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
"""

from __future__ import annotations

import base64
import copy
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from console.adapters.protocols import MetricsSource
from console.domain.errors import ConfigError, ConflictError, NotFoundError, RouterError, UsageError
from console.domain.metrics import Direction, MetricSpec, Unit
from console.domain.routing import FallbackState, Mirror, RouterState, ServerNaming, ServerState

GROUP = "gateway.networking.k8s.io"
API_VERSION = "v1"
MAX_ROUTE_WEIGHT = 1_000_000
"""The HTTPRoute schema's bound on ``backendRefs[].weight`` (gateway-api v1)."""
JSON_PATCH = "application/json-patch+json"


def route_path(namespace: str, name: str) -> str:
    """The API path of one HTTPRoute."""
    return f"/apis/{GROUP}/{API_VERSION}/namespaces/{namespace}/httproutes/{name}"


@dataclass(frozen=True)
class KubeAccess:
    """How to reach one Kubernetes API server: its URL, a bearer token and the TLS material.

    Attributes:
        server: ``https://host:port`` (``http://`` only for a loopback test server).
        token: reads the bearer token at each request (service-account tokens rotate); ``None``: none.
        ca_file / ca_data: the cluster's CA certificate (a PEM file, or PEM text); neither: the system's.
        client_cert: a client certificate and key (PEM files), when the cluster authenticates that way.
        source: the setting or file these came from, for messages.
    """

    server: str
    token: Callable[[], str | None]
    ca_file: str | None = None
    ca_data: str | None = None
    client_cert: tuple[str, str] | None = None
    source: str = "router.gateway_api"

    def verify(self) -> ssl.SSLContext | bool:
        """The TLS verification httpx should use."""
        if not self.server.startswith("https://"):
            return True
        if not (self.ca_file or self.ca_data or self.client_cert):
            return True
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if self.client_cert:
            context.load_cert_chain(*self.client_cert)
        return context


def _token_reader(env_name: str | None, file_name: str | None, setting: str) -> Callable[[], str | None]:
    """A function reading the bearer token from its env var or file at each call (never cached, never logged)."""

    def read() -> str | None:
        if env_name:
            value = os.environ.get(env_name)
            if not value:
                raise ConfigError(f"{setting}: environment variable {env_name} is not set")
            return value.strip()
        if file_name:
            try:
                return Path(file_name).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"{setting}: cannot read token file {file_name}: {exc.strerror or exc}") from None
        return None

    return read


def explicit_access(server: str, token_env: str | None, token_file: str | None,
                    ca_file: str | None) -> KubeAccess:
    """Access from the config's own settings (``router.gateway_api.server``, ``token_env``...)."""
    if ca_file and not Path(ca_file).expanduser().is_file():
        raise ConfigError(f"router.gateway_api.ca_file: {ca_file} does not exist")
    return KubeAccess(server.rstrip("/"), _token_reader(token_env, token_file, "router.gateway_api.token"),
                      ca_file=str(Path(ca_file).expanduser()) if ca_file else None)


def kubeconfig_access(path: str, context: str | None = None) -> KubeAccess:
    """Access from a kubeconfig file's context (the current one unless ``context`` is given).

    Reads the cluster's ``server`` and ``certificate-authority(-data)``, and the user's
    ``token``, ``tokenFile`` or ``client-certificate``/``client-key`` (files or ``-data``).
    Exec plugins and auth providers are not run: a context that needs one is refused.

    Raises:
        ConfigError: the file is unreadable, or the context is missing or unsupported.
    """
    where = f"kubeconfig {path}"
    try:
        doc = yaml.safe_load(Path(path).expanduser().read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    base = Path(path).expanduser().resolve().parent

    def named(kind: str, name: str | None) -> dict[str, Any]:
        for item in doc.get(kind) or []:
            if isinstance(item, dict) and item.get("name") == name:
                return dict(item.get(kind[:-1]) or {})
        raise ConfigError(f"{where}: no {kind[:-1]} named {name!r}")

    context_name = context or doc.get("current-context")
    if not context_name:
        raise ConfigError(f"{where}: no current-context (set router.gateway_api.context)")
    ctx = named("contexts", context_name)
    cluster, user = named("clusters", ctx.get("cluster")), named("users", ctx.get("user"))
    if not cluster.get("server"):
        raise ConfigError(f"{where}: cluster {ctx.get('cluster')!r} has no server")
    for unsupported in ("exec", "auth-provider"):
        if unsupported in user:
            raise ConfigError(f"{where}: user {ctx.get('user')!r} authenticates with {unsupported}, which Rewind "
                              "does not run; give it a token (or tokenFile) or a client certificate")

    def local(name: str | None) -> str | None:
        return str(base / Path(name).expanduser()) if name else None

    def pem(data: str | None) -> str | None:
        return base64.b64decode(data).decode() if data else None

    token = user.get("token")
    reader = (lambda: token) if token else _token_reader(None, local(user.get("tokenFile")), f"{where} tokenFile")
    client_cert = None
    if user.get("client-certificate") or user.get("client-certificate-data"):
        cert, key = local(user.get("client-certificate")), local(user.get("client-key"))
        if user.get("client-certificate-data"):  # the ssl module loads files only: private temporary copies
            cert, key = (_private_copy(pem(user.get("client-certificate-data"))),
                         _private_copy(pem(user.get("client-key-data"))))
        if not cert or not key:
            raise ConfigError(f"{where}: user {ctx.get('user')!r} has a client certificate without its key")
        client_cert = (cert, key)
    return KubeAccess(str(cluster["server"]).rstrip("/"), reader, ca_file=local(cluster.get("certificate-authority")),
                      ca_data=pem(cluster.get("certificate-authority-data")), client_cert=client_cert, source=where)


def _private_copy(text: str | None) -> str | None:
    """Write PEM text to a file only this user can read (deleted when the process exits)."""
    if text is None:
        return None
    handle = tempfile.NamedTemporaryFile("w", prefix="rewind-kube-", suffix=".pem", delete=False)  # noqa: SIM115
    with handle:
        os.chmod(handle.name, 0o600)
        handle.write(text)
    import atexit

    atexit.register(lambda: Path(handle.name).unlink(missing_ok=True))
    return handle.name


@dataclass(frozen=True)
class _Ref:
    """One backendRef of one rule, as read."""

    rule: int
    index: int
    ref: dict[str, Any]

    @property
    def weight(self) -> int:
        return int(self.ref.get("weight", 1))  # the schema's default


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


class GatewayRouter:
    """A model router on Gateway API HTTPRoutes: one route per model, one weighted backendRef per version.

    Args:
        access: where the API server is and how to authenticate.
        routes: model -> ``namespace/name`` (or ``name``, in ``namespace``) of its HTTPRoute.
        namespace: the namespace of routes named without one.
        server_template: the backendRef (Service) name of a version: ``{version}`` once, ``{model}`` optional.
        timeout_s: one request's timeout.
        readback_timeout_s: how long a write waits for the controller to accept the new generation.
        counters: the metrics source that counts each version's requests (for :meth:`served`).
        served_query: a PromQL template (``$model``) giving each (version, segment)'s cumulative requests.
        poll_interval_s: how often the read-back reads the route's status.
        transport: an httpx transport (tests only).
    """

    counts_from_metrics = True
    """:meth:`served` counts from the metrics, which lag: verification treats no request counted as unproven."""

    def __init__(self, access: KubeAccess, routes: dict[str, str], namespace: str = "default",
                 server_template: str = "{model}-v{version}", timeout_s: float = 5.0,
                 readback_timeout_s: float = 30.0, counters: MetricsSource | None = None,
                 served_query: str | None = None, poll_interval_s: float = 0.2,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.access = access
        self.routes = dict(routes)
        self.namespace = namespace
        self.server_template = server_template
        ServerNaming(server_template)
        self.timeout_s = timeout_s
        self.readback_timeout_s = readback_timeout_s
        self.counters = counters
        self.served_query = served_query
        self.poll_interval_s = poll_interval_s
        self._transport = transport
        self._client: httpx.Client | None = None
        self.sleep: Callable[[float], None] = time.sleep

    def describe(self) -> str:
        """Where the router is, for messages (never with credentials)."""
        return f"Gateway API at {self.access.server}"

    # -- the wire ---------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        if self._client is None:
            try:
                verify = self.access.verify()
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"{self.access.source}: the TLS certificates cannot be loaded: {exc}") from None
            self._client = httpx.Client(base_url=self.access.server, timeout=self.timeout_s, verify=verify,
                                        transport=self._transport)
        return self._client

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _request(self, method: str, path: str, json_body: object | None = None,
                 content_type: str | None = None) -> httpx.Response:
        headers = {"Accept": "application/json"}
        token = self.access.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        try:
            if json_body is None:
                return self._http().request(method, path, headers=headers)
            import json

            return self._http().request(method, path, headers=headers, content=json.dumps(json_body).encode())
        except httpx.TimeoutException:
            raise RouterError(f"{self.describe()}: no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise RouterError(f"{self.describe()}: {exc or type(exc).__name__} (router.gateway_api.server)") from None

    def _status_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            message = body.get("message") or body.get("reason") or ""
        except ValueError:
            message = response.text
        return " ".join(str(message).split())[:200] or f"HTTP {response.status_code}"

    def _refused(self, response: httpx.Response, what: str) -> RouterError:
        code = response.status_code
        hint = {401: " (the token is missing, wrong or expired: router.gateway_api.token_env/token_file)",
                403: " (the token's account may not do this: RBAC)"}.get(code, "")
        return RouterError(f"{self.describe()}: {what}: HTTP {code}: {self._status_message(response)}{hint}")

    def route(self, model: str) -> tuple[str, str]:
        """The namespace and name of the HTTPRoute that carries ``model``'s traffic.

        Raises:
            NotFoundError: when the config maps no route to the model.
        """
        try:
            target = self.routes[model]
        except KeyError:
            known = ", ".join(sorted(self.routes)) or "none"
            raise NotFoundError(f"model {model!r} has no route in router.backends (configured: {known})") from None
        namespace, _, name = target.rpartition("/")
        return namespace or self.namespace, name

    def naming(self, model: str) -> ServerNaming:
        """Version <-> backendRef name for ``model``."""
        return ServerNaming(self.server_template.replace("{model}", model))

    def get_route(self, model: str) -> dict[str, Any]:
        """The model's HTTPRoute object as the API server has it.

        Raises:
            NotFoundError: the route does not exist. RouterError: the server refused or cannot be reached.
        """
        namespace, name = self.route(model)
        response = self._request("GET", route_path(namespace, name))
        if response.status_code == 404:
            raise NotFoundError(f"{self.describe()}: HTTPRoute {namespace}/{name} (router.backends.{model}) "
                                "does not exist")
        if response.status_code != 200:
            raise self._refused(response, f"reading HTTPRoute {namespace}/{name}")
        try:
            return dict(response.json())
        except ValueError:
            raise RouterError(f"{self.describe()}: the answer for HTTPRoute {namespace}/{name} is not JSON") from None

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
            raise RouterError(f"{self.describe()}: HTTPRoute {'/'.join(self.route(model))} has no backendRef "
                              f"named like {self.server_template.replace('{model}', model)!r} "
                              "(router.server_template)")
        rules = sorted({ref.rule for refs in found.values() for ref in refs})
        for version, refs in found.items():
            weights = {ref.weight for ref in refs}
            if len(weights) > 1 or len(refs) != len(rules):
                detail = ", ".join(f"rule {ref.rule}: {ref.weight}" for ref in refs)
                raise RouterError(f"{self.describe()}: HTTPRoute {'/'.join(self.route(model))}: the rules "
                                  f"{rules} split v{version} differently ({detail}); Rewind will not guess which "
                                  "one counts")
        return found

    def _state(self, model: str, route: dict[str, Any]) -> RouterState:
        namespace, name = self.route(model)
        refs = self._version_refs(model, route)
        servers = tuple(
            ServerState(server=str(first.ref["name"]), version=version, weight=first.weight, operational=True,
                        address=f"{first.ref.get('namespace', namespace)}/{first.ref['name']}:{first.ref.get('port')}")
            for version, (first, *_) in sorted(refs.items(), key=lambda item: int(item[0]))
        )
        return RouterState(backend=f"{namespace}/{name}", servers=servers)

    def read_state(self, model: str) -> RouterState:
        """Every version's backendRef in the model's route, with its weight (the spec: what was asked for).

        Raises:
            NotFoundError: the route does not exist. RouterError: unreachable, refused, or ambiguous.
        """
        return self._state(model, self.get_route(model))

    def served(self, model: str) -> dict[str, int]:
        """Requests each version has answered so far, from the per-version metrics (a route counts nothing).

        Raises:
            RouterError: no ``served_query`` is configured, or its answer has no data.
        """
        if self.counters is None or not self.served_query:
            raise RouterError(f"{self.describe()}: a route keeps no request counters; set "
                              "router.gateway_api.served_query so rollbacks are verified from the metrics")
        spec = MetricSpec("served", "requests served", self.served_query, Unit.PER_SECOND, Direction.HIGHER_IS_BETTER)
        result = self.counters.evaluate((spec,), model)["served"]
        if result.error:
            raise RouterError(f"router.gateway_api.served_query: {result.error}")
        totals: dict[str, float] = {}
        for (version, _segment), value in result.values.items():
            if value is not None:
                totals[version] = totals.get(version, 0.0) + value
        if not totals:
            raise RouterError(f"router.gateway_api.served_query: no data for model {model!r} "
                              f"({self.counters.describe()}): requests per version cannot be counted")
        return {version: int(round(count)) for version, count in totals.items()}

    # -- writes -----------------------------------------------------------------------------
    def weight_patch(self, model: str, route: dict[str, Any], weights: dict[str, int]) -> list[dict[str, Any]]:
        """The JSON Patch that sets ``weights``: per backendRef, a test of the ref as read, then its weight.

        Raises:
            NotFoundError: a version with no backendRef in the route.
        """
        refs = self._version_refs(model, route)
        missing = sorted(v for v in weights if v not in refs)
        if missing:
            raise NotFoundError(f"{self.describe()}: HTTPRoute {'/'.join(self.route(model))} has no backendRef "
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
        namespace, name = self.route(model)
        response = self._request("PATCH", route_path(namespace, name), patch, JSON_PATCH)
        if response.status_code in (409, 422) and not self._invalid_fields(response):
            raise ConflictError(f"{self.describe()}: HTTPRoute {namespace}/{name} changed between the read and the "
                                f"write (HTTP {response.status_code}: {self._status_message(response)}); re-plan")
        if response.status_code != 200:
            raise self._refused(response, f"patching HTTPRoute {namespace}/{name}")
        return self._read_back(model, dict(response.json()), weights)

    @staticmethod
    def _invalid_fields(response: httpx.Response) -> list[str]:
        """The fields a 422 names as invalid (the schema refused a value: not a moved state)."""
        if response.status_code != 422:
            return []
        try:
            causes = ((response.json().get("details") or {}).get("causes")) or []
        except (ValueError, AttributeError):
            return []
        return [str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")]

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
                                  f"{'/'.join(self.route(model))} not accepted within {self.readback_timeout_s:g}s "
                                  f"(router.gateway_api.readback_timeout_s): {why}; the spec reads "
                                  f"{state.weights()}")
            self.sleep(min(self.poll_interval_s, max(0.0, deadline - time.monotonic())))
            route = self.get_route(model)
        if not accepted:
            raise RouterError(f"{self.describe()}: HTTPRoute {'/'.join(self.route(model))} generation {generation} "
                              f"{why}; the spec reads {state.weights()}")
        wrong = {v: state.weights().get(v) for v, w in weights.items() if state.weights().get(v) != w}
        if wrong:
            raise RouterError(f"{self.describe()}: read-back shows weights {wrong}, not {weights}")
        return state

    # -- what a route does not have ---------------------------------------------------------
    def read_mirror(self, model: str) -> Mirror | None:
        """Not supported on Gateway API routes yet (RouterError)."""
        raise RouterError(f"{self.describe()}: Rewind does not drive shadow mirrors on Gateway API routes")

    def set_mirror(self, model: str, mirror: Mirror | None, expected: Mirror | None) -> Mirror | None:
        """Not supported on Gateway API routes yet (RouterError)."""
        raise RouterError(f"{self.describe()}: Rewind does not drive shadow mirrors on Gateway API routes")

    def fallback(self, model: str) -> FallbackState:
        """Not supported on Gateway API routes (RouterError): a route has no backup servers."""
        raise RouterError(f"{self.describe()}: a Gateway API route has no backup server to fall back to")

    def set_admin_state(self, model: str, servers: dict[str, str], expected: dict[str, str] | None) -> FallbackState:
        """Not supported on Gateway API routes (RouterError)."""
        raise RouterError(f"{self.describe()}: a Gateway API route has no server states to set")


def _generation(route: dict[str, Any]) -> int:
    return int((route.get("metadata") or {}).get("generation") or 0)
