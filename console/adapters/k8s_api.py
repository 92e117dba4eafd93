"""Kubernetes API access shared by the Kubernetes routers (Gateway API, KServe, Argo Rollouts), over httpx.

- :class:`KubeAccess`: the server, a bearer token read at each request, the TLS material; built from the
  config's own settings (:func:`explicit_access`) or from a kubeconfig context (:func:`kubeconfig_access`).
- :class:`KubeClient`: GET an object, PATCH it with a JSON Patch (RFC 6902) or a merge patch, on the main
  resource or a subresource (``status``), with the API server's answers read the same way everywhere:
  409 and a 422 that names no invalid field (a failed ``test``) mean the state moved (ConflictError,
  "re-plan"); a 422 naming fields is a refusal; 401/403 say what to check. Every write names Rewind as
  its field manager (``fieldManager=rewind``), so the object's ``managedFields`` say who moved the weights.
- :func:`other_writers`: who else last wrote a field (``managedFields``): a controller or a GitOps sync
  that owns the weights may write them back after a rollback, and the preview says so.
- :func:`served_from_metrics`: a Kubernetes object counts no requests, so every Kubernetes router counts
  each version's requests from the per-version metrics, and the rollback is verified from those.
"""

from __future__ import annotations

import base64
import json
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
from console.domain.errors import ConfigError, ConflictError, NotFoundError, RouterError
from console.domain.metrics import Direction, MetricSpec, Unit
from console.domain.routing import FallbackState, Mirror

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "rewind"
"""The field manager every write of Rewind's names: the object's ``metadata.managedFields`` then show it."""


def other_writers(obj: dict[str, Any], path: tuple[str, ...]) -> tuple[str, ...]:
    """Who other than Rewind owns the field at ``path`` (or a part of it), by the object's ``managedFields``.

    The API server records, per field manager, the fields its last writes set (``fieldsV1``: ``f:<name>``
    keys, nested). Whoever wrote the weights last owns them; when that is a controller or a GitOps sync
    (Argo Rollouts, Argo CD, Flux), it may write them back after Rewind moved them.

    Returns:
        ``manager (operation, time)`` for each such entry, in the object's order.
    """
    found = []
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if not isinstance(entry, dict) or entry.get("manager") == FIELD_MANAGER:
            continue
        fields: Any = entry.get("fieldsV1") or {}
        for part in path:
            if not isinstance(fields, dict) or f"f:{part}" not in fields:
                break
            fields = fields[f"f:{part}"]
        else:
            found.append(f"{entry.get('manager') or 'an unnamed manager'} "
                         f"({entry.get('operation') or 'write'}, {entry.get('time') or 'time unknown'})")
    return tuple(found)


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
                    ca_file: str | None, setting: str = "router.gateway_api") -> KubeAccess:
    """Access from the config's own settings (``<setting>.server``, ``token_env``, ``token_file``, ``ca_file``)."""
    if ca_file and not Path(ca_file).expanduser().is_file():
        raise ConfigError(f"{setting}.ca_file: {ca_file} does not exist")
    return KubeAccess(server.rstrip("/"), _token_reader(token_env, token_file, f"{setting}.token"),
                      ca_file=str(Path(ca_file).expanduser()) if ca_file else None, source=setting)


def kubeconfig_access(path: str, context: str | None = None, setting: str = "router.gateway_api") -> KubeAccess:
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
        raise ConfigError(f"{where}: no current-context (set {setting}.context)")
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


class KubeClient:
    """One API server's HTTP exchanges, with its answers read into Rewind's errors.

    Args:
        access: where the server is and how to authenticate.
        describe: names the router in messages (``Gateway API at https://...``).
        setting: the config section the access came from (``router.kserve``), named in hints.
        timeout_s: one request's timeout.
        transport: an httpx transport (tests only).
    """

    def __init__(self, access: KubeAccess, describe: str, setting: str, timeout_s: float = 5.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.access = access
        self.describe = describe
        self.setting = setting
        self.timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.Client | None = None

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

    def request(self, method: str, path: str, json_body: object | None = None,
                content_type: str | None = None) -> httpx.Response:
        """One request; RouterError when the server cannot be reached or does not answer in time."""
        headers = {"Accept": "application/json"}
        token = self.access.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        try:
            if json_body is None:
                return self._http().request(method, path, headers=headers)
            return self._http().request(method, path, headers=headers, content=json.dumps(json_body).encode())
        except httpx.TimeoutException:
            raise RouterError(f"{self.describe}: no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise RouterError(f"{self.describe}: {exc or type(exc).__name__} ({self.setting}.server)") from None

    @staticmethod
    def status_message(response: httpx.Response) -> str:
        """The message of a ``Status`` answer (or its text), on one line."""
        try:
            body = response.json()
            message = body.get("message") or body.get("reason") or ""
        except (ValueError, AttributeError):
            message = response.text
        return " ".join(str(message).split())[:200] or f"HTTP {response.status_code}"

    def refused(self, response: httpx.Response, what: str) -> RouterError:
        """A RouterError for a refusal, with a hint for 401 and 403."""
        code = response.status_code
        hint = {401: f" (the token is missing, wrong or expired: {self.setting}.token_env/token_file)",
                403: " (the token's account may not do this: RBAC)"}.get(code, "")
        return RouterError(f"{self.describe}: {what}: HTTP {code}: {self.status_message(response)}{hint}")

    @staticmethod
    def invalid_fields(response: httpx.Response) -> list[str]:
        """The fields a 422 names as invalid (the schema refused a value: not a moved state)."""
        if response.status_code != 422:
            return []
        try:
            causes = ((response.json().get("details") or {}).get("causes")) or []
        except (ValueError, AttributeError):
            return []
        return [str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")]

    def get_object(self, path: str, what: str, missing: str = "") -> dict[str, Any]:
        """The object at ``path`` as the API server has it.

        Args:
            what: the object, for messages (``InferenceService models/iris``).
            missing: said after "does not exist" (which setting named it).

        Raises:
            NotFoundError: 404. RouterError: refused, unreachable, or not JSON.
        """
        response = self.request("GET", path)
        if response.status_code == 404:
            raise NotFoundError(f"{self.describe}: {what}{missing} does not exist")
        return self._answer(response, f"reading {what}", what)

    def get_readable(self, path: str, what: str) -> dict[str, Any] | None:
        """The object or list at ``path``, or ``None`` when the account may not read it (401, 403) or the API
        has no such resource (404): for what Rewind reads in addition, never needs.

        Raises:
            RouterError: unreachable, another refusal, or not JSON.
        """
        response = self.request("GET", path)
        if response.status_code in (401, 403, 404):
            return None
        return self._answer(response, f"reading {what}", what)

    def patch(self, path: str, body: object, what: str, content_type: str = JSON_PATCH) -> dict[str, Any]:
        """PATCH ``path`` (a JSON Patch by default) and return the object the server wrote.

        Raises:
            ConflictError: 409, or a 422 naming no invalid field (a failed ``test``): the state moved, re-plan.
            NotFoundError: 404. RouterError: any other refusal (a 422 naming invalid fields included).
        """
        response = self.request("PATCH", f"{path}?fieldManager={FIELD_MANAGER}", body, content_type)
        if response.status_code in (409, 422) and not self.invalid_fields(response):
            raise ConflictError(f"{self.describe}: {what} changed between the read and the write "
                                f"(HTTP {response.status_code}: {self.status_message(response)}); re-plan")
        if response.status_code == 404:
            raise NotFoundError(f"{self.describe}: {what} does not exist (HTTP 404 on {path})")
        return self._answer(response, f"patching {what}", what)

    def _answer(self, response: httpx.Response, doing: str, what: str) -> dict[str, Any]:
        """A 200 answer's JSON object; a refusal (``doing`` what) or an answer that is not JSON is a RouterError."""
        if response.status_code != 200:
            raise self.refused(response, doing)
        try:
            return dict(response.json())
        except ValueError:
            raise RouterError(f"{self.describe}: the answer for {what} is not JSON") from None


def served_from_metrics(counters: MetricsSource | None, served_query: str | None, model: str, describe: str,
                        setting: str) -> dict[str, int]:
    """Requests each version has answered so far, summed over segments, from the per-version metrics.

    Raises:
        RouterError: no query configured, the query failed, or its answer has no data.
    """
    if counters is None or not served_query:
        raise RouterError(f"{describe}: a Kubernetes object keeps no request counters; set "
                          f"{setting}.served_query so rollbacks are verified from the metrics")
    spec = MetricSpec("served", "requests served", served_query, Unit.PER_SECOND, Direction.HIGHER_IS_BETTER)
    result = counters.evaluate((spec,), model)["served"]
    if result.error:
        raise RouterError(f"{setting}.served_query: {result.error}")
    totals: dict[str, float] = {}
    for (version, _segment), value in result.values.items():
        if value is not None:
            totals[version] = totals.get(version, 0.0) + value
    if not totals:
        raise RouterError(f"{setting}.served_query: no data for model {model!r} "
                          f"({counters.describe()}): requests per version cannot be counted")
    return {version: int(round(count)) for version, count in totals.items()}


def split_name(target: str, namespace: str) -> tuple[str, str]:
    """``namespace/name`` (or ``name``, in ``namespace``) as ``(namespace, name)``."""
    ns, _, name = target.rpartition("/")
    return ns or namespace, name



class KubeRouter:
    """What the Kubernetes routers share: one object per model, the API client, requests counted from the metrics.

    A subclass names its product and object (class attributes below) and reads and writes its own
    object; the name lookup, the counters and the refusals of what no such object has (a shadow
    mirror, a backup server, server states) are here, once.

    Args:
        access: where the API server is and how to authenticate.
        objects: model -> ``namespace/name`` (or ``name``, in ``namespace``) of its object.
        namespace: the namespace of objects named without one.
        timeout_s: one request's timeout.
        readback_timeout_s: how long a write waits for the controller to reconcile it.
        counters / served_query: the metrics source and PromQL template (``$model``) counting each version's
            requests (for :meth:`served`).
        poll_interval_s: how often a read-back reads the object again.
        transport: an httpx transport (tests only).
        version_label: the label that carries the model version, where versions are read from labels.
    """

    product = ""
    """The router's name in messages: ``Gateway API at URL``."""
    setting = ""
    """Its config section, named in messages."""
    kind = ""
    """The object one model has, as ``router.backends`` names it: ``route``, ``Rollout``."""
    mirrors_on = ""
    """Where Rewind does not drive mirrors: ``Gateway API routes``."""
    one_object = ""
    """One such object, for the refusals: ``a Gateway API route``."""

    counts_from_metrics = True
    """:meth:`served` counts from the metrics, which lag: verification treats no request counted as unproven."""
    reports_health = False
    """:meth:`fallback` has no health checks to report (no backup servers). Where the cluster says a backend
    cannot answer (a Gateway API Service without ready endpoints, a KServe revision not ``Ready``), the
    router's :meth:`read_state` marks it not operational instead."""

    def __init__(self, access: KubeAccess, objects: dict[str, str], namespace: str, timeout_s: float,
                 readback_timeout_s: float, counters: MetricsSource | None, served_query: str | None,
                 poll_interval_s: float, transport: httpx.BaseTransport | None, version_label: str = "") -> None:
        self.access = access
        self.version_label = version_label
        self._versions: dict[str, str] = {}  # object path -> the version it runs (labelled_version)
        self.objects = dict(objects)
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.readback_timeout_s = readback_timeout_s
        self.counters = counters
        self.served_query = served_query
        self.poll_interval_s = poll_interval_s
        self._kube = KubeClient(access, self.describe(), self.setting, timeout_s, transport)
        self.sleep: Callable[[float], None] = time.sleep

    def describe(self) -> str:
        """Where the router is, for messages (never with credentials)."""
        return f"{self.product} at {self.access.server}"

    def close(self) -> None:
        """Close the connection pool."""
        self._kube.close()

    def object_name(self, model: str) -> tuple[str, str]:
        """The namespace and name of the model's object (NotFoundError when none is configured)."""
        try:
            return split_name(self.objects[model], self.namespace)
        except KeyError:
            known = ", ".join(sorted(self.objects)) or "none"
            raise NotFoundError(f"model {model!r} has no {self.kind} in router.backends "
                                f"(configured: {known})") from None

    def object_path(self, model: str) -> str:
        """``namespace/name`` of the model's object, for messages."""
        return "/".join(self.object_name(model))

    def labelled_version(self, path: str, what: str, labels: Callable[[dict[str, Any]], Any], fix: str) -> str:
        """The model version an object runs (a Revision, a ReplicaSet), from its ``version_label``.

        Such objects never change what they run, so each is read once. ``labels`` finds the object's labels;
        ``fix`` ends the error: where the label is set.

        Raises:
            RouterError: the object has no such label, or it is not a version number.
        """
        cached = self._versions.get(path)
        if cached is not None:
            return cached
        value = str((labels(self._kube.get_object(path, what)) or {}).get(self.version_label, "")).strip()
        version = value[1:] if value[:1] in ("v", "V") else value
        if not version.isdigit():
            found = f"{value!r}" if value else "no such label"
            raise RouterError(f"{self.describe()}: {what} has {found} for {self.version_label} "
                              f"({self.setting}.version_label){fix}")
        self._versions[path] = str(int(version))
        return self._versions[path]

    def served(self, model: str) -> dict[str, int]:
        """Requests each version has answered so far, from the per-version metrics (the object counts nothing).

        Raises:
            RouterError: no ``served_query`` is configured, or its answer has no data.
        """
        return served_from_metrics(self.counters, self.served_query, model, self.describe(), self.setting)

    # -- what such an object does not have ----------------------------------------------------
    def read_mirror(self, model: str) -> Mirror | None:
        """Not supported (RouterError)."""
        raise RouterError(f"{self.describe()}: Rewind does not drive shadow mirrors on {self.mirrors_on}")

    def set_mirror(self, model: str, mirror: Mirror | None, expected: Mirror | None) -> Mirror | None:
        """Not supported (RouterError)."""
        raise RouterError(f"{self.describe()}: Rewind does not drive shadow mirrors on {self.mirrors_on}")

    def fallback(self, model: str) -> FallbackState:
        """Not supported (RouterError): no backup servers."""
        raise RouterError(f"{self.describe()}: {self.one_object} has no backup server to fall back to")

    def set_admin_state(self, model: str, servers: dict[str, str], expected: dict[str, str] | None) -> FallbackState:
        """Not supported (RouterError)."""
        raise RouterError(f"{self.describe()}: {self.one_object} has no server states to set")


DEFAULT_VERSION_LABEL = "rewind.dev/model-version"


class LabelledKubeRouter(KubeRouter):
    """A Kubernetes router whose objects say which model version they run by a label (KServe, Argo Rollouts)."""

    def __init__(self, access: KubeAccess, objects: dict[str, str], namespace: str = "default",
                 version_label: str = DEFAULT_VERSION_LABEL, timeout_s: float = 5.0,
                 readback_timeout_s: float = 60.0, counters: MetricsSource | None = None,
                 served_query: str | None = None, poll_interval_s: float = 0.2,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(access, objects, namespace, timeout_s, readback_timeout_s, counters, served_query,
                         poll_interval_s, transport, version_label)
