"""An MLflow server's Model Registry through its REST API, with httpx: versions, aliases, version tags.

``rewind status`` against an ``http(s)://`` registry needs a handful of small
JSON requests, not the MLflow client (about a second and most of 200 MB to
import). Endpoints used, all under ``/api/2.0/mlflow/``:

- ``GET registered-models/get?name=`` (the model, with ``aliases[]``);
- ``GET registered-models/search`` (every model's name, for ``fleet.discover``; paged);
- ``GET model-versions/search?filter=`` (paged by ``next_page_token``);
- ``GET model-versions/get?name=&version=``;
- ``GET registered-models/alias?name=&alias=`` (unset: 400 ``INVALID_PARAMETER_VALUE``);
- ``POST``/``DELETE registered-models/alias`` (unconditional writes);
- ``POST model-versions/set-tag``, ``DELETE model-versions/delete-tag``.

A ``DELETE`` carries its arguments as a JSON body, as the MLflow client sends them.
Credentials come from the variables the MLflow client reads: ``MLFLOW_TRACKING_TOKEN``
(bearer) or ``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` (basic), and
``MLFLOW_TRACKING_INSECURE_TLS``/``MLFLOW_TRACKING_SERVER_CERT_PATH`` for TLS.

Alias writes are compared and read back as in the Python client's adapter
(:mod:`console.adapters.registry_cas`). Signatures and artifacts (``get_signature``,
``load``) still need the MLflow client, which is imported only when they are asked for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from console.adapters.mlflow_registry import _quote_name, redact_url
from console.adapters.registry_cas import UnconditionalWrites
from console.domain.errors import ConfigError, NotFoundError, RegistryError
from console.domain.versions import AliasMap, ModelVersion, normalise_version

if TYPE_CHECKING:
    from console.adapters.mlflow_registry import MlflowRegistry

API = "/api/2.0/mlflow/"
# Answers worth another try: the server or a proxy in front of it is overloaded or restarting.
RETRY_STATUS = frozenset({429, 502, 503, 504})
# The first pause before another try; it doubles each time, up to 2 s.
BACKOFF_S = 0.2


def is_rest_uri(uri: str) -> bool:
    """Whether a registry URI names an MLflow server (``http://`` or ``https://``)."""
    return uri.lower().startswith(("http://", "https://"))


class MlflowRestRegistry(UnconditionalWrites):
    """A :class:`~console.adapters.protocols.Registry` on an MLflow server's REST API.

    Args:
        tracking_uri: the server's URL (``registry.tracking_uri``).
        registry_uri: the registry's URL when it differs (``registry.registry_uri``).
        timeout_s: each request's timeout.
        max_retries: further tries after a connection failure, a timeout, or 429/502/503/504.
        environ: where the MLflow credentials are read; default ``os.environ``.
        transport: the httpx transport (tests); default a real connection pool.
    """

    def __init__(self, tracking_uri: str, registry_uri: str | None = None, timeout_s: float = 10.0,
                 max_retries: int = 1, environ: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._environ = os.environ if environ is None else environ
        self._transport = transport
        self._http: httpx.Client | None = None
        self._client_adapter: MlflowRegistry | None = None

    def describe(self) -> str:
        """Where the registry is, without credentials."""
        return f"MLflow registry at {redact_url(self.registry_uri)}"

    # -- HTTP --------------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        if self._http is None:
            env = self._environ
            headers = {"User-Agent": "rewind"}
            auth: httpx.BasicAuth | None = None
            token = env.get("MLFLOW_TRACKING_TOKEN")
            if token:
                headers["Authorization"] = f"Bearer {token}"
            elif env.get("MLFLOW_TRACKING_USERNAME"):
                auth = httpx.BasicAuth(env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", ""))
            verify: bool | str = True
            if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
                verify = False
            elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
                verify = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]
            base = self.registry_uri.rstrip("/") + API
            try:
                self._http = httpx.Client(base_url=base, headers=headers, auth=auth, verify=verify,
                                          timeout=self.timeout_s, transport=self._transport)
            except (httpx.InvalidURL, ValueError, OSError) as exc:
                raise ConfigError(f"registry.tracking_uri: {redact_url(self.registry_uri)} cannot be used: "
                                  f"{exc}") from None
        return self._http

    def close(self) -> None:
        """Close the connection pool."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def _request(self, what: str, method: str, endpoint: str, *, params: Mapping[str, str] | None = None,
                 body: Mapping[str, str] | None = None, unset_ok: bool = False) -> dict[str, Any] | None:
        """One API call, retried on failures worth retrying; its JSON answer.

        Args:
            what: the operation, for error messages ("list versions").
            unset_ok: a 400 ``INVALID_PARAMETER_VALUE`` "... not found" answer (an unset alias)
                returns ``None`` instead of raising.

        Raises:
            NotFoundError: the server answered ``RESOURCE_DOES_NOT_EXIST``.
            RegistryError: unreachable, refused, or an answer that is not MLflow's.
        """
        client = self._client()
        attempt = 0
        while True:
            try:
                response = client.request(method, endpoint, params=params, json=body)
            except httpx.TimeoutException:
                failure = f"no answer within {self.timeout_s:g}s while trying to {what} (registry.timeout_s)"
            except httpx.TransportError as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                failure = f"unreachable while trying to {what}: {reason[:160]}"
            else:
                if response.status_code not in RETRY_STATUS or attempt >= self.max_retries:
                    return self._answer(what, endpoint, response, unset_ok)
                failure = f"{what} failed: HTTP {response.status_code}"
            if attempt >= self.max_retries:
                raise RegistryError(f"{self.describe()}: {failure}")
            attempt += 1
            time.sleep(min(2.0, BACKOFF_S * 2 ** (attempt - 1)))

    def _answer(self, what: str, endpoint: str, response: httpx.Response,
                unset_ok: bool) -> dict[str, Any] | None:
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            if response.status_code >= 500 or response.status_code in RETRY_STATUS:
                raise RegistryError(f"{self.describe()}: {what} failed: HTTP {response.status_code}")
            raise RegistryError(f"{self.describe()}: {what} failed: HTTP {response.status_code} for {API}{endpoint} "
                                f"is not an MLflow answer (is registry.tracking_uri an MLflow server?)")
        if response.is_success:
            return document
        code = str(document.get("error_code", ""))
        message = (str(document.get("message") or code or "").strip().splitlines() or [""])[0][:200]
        if code == "RESOURCE_DOES_NOT_EXIST":
            raise NotFoundError(f"{self.describe()}: {message}")
        if unset_ok and code == "INVALID_PARAMETER_VALUE" and "not found" in message:
            return None
        if response.status_code in (401, 403):
            raise RegistryError(f"{self.describe()}: refused to {what} (HTTP {response.status_code}: {message}); "
                                f"credentials come from MLFLOW_TRACKING_TOKEN or "
                                f"MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD")
        raise RegistryError(f"{self.describe()}: {what} failed: HTTP {response.status_code} {message}")

    def _search(self, what: str, filter_string: str) -> Iterator[dict[str, Any]]:
        """Every model version matching ``filter_string``, following the pages."""
        params = {"filter": filter_string, "max_results": "1000"}
        while True:
            page = self._request(what, "GET", "model-versions/search", params=params) or {}
            yield from page.get("model_versions") or []
            token = page.get("next_page_token")
            if not token:
                return
            params = {**params, "page_token": str(token)}

    # -- reads ------------------------------------------------------------------------------
    def get_aliases(self, model: str) -> AliasMap:
        """The model's aliases (alias -> version); NotFoundError for an unknown model."""
        found = self._request("read the model", "GET", "registered-models/get", params={"name": model}) or {}
        entries = (found.get("registered_model") or {}).get("aliases") or []
        try:
            aliases = {str(e["alias"]): normalise_version(e["version"]) for e in entries}
        except (KeyError, TypeError, ValueError):
            raise RegistryError(f"{self.describe()}: the aliases of {model!r} are unreadable: {entries!r:.120}") \
                from None
        return AliasMap(model=model, aliases=aliases)

    def list_versions(self, model: str, with_signatures: bool = False) -> list[ModelVersion]:
        """Every version of ``model``, oldest first, with the aliases pointing at each.

        Raises:
            NotFoundError: when the model is not registered.
        """
        aliases = self.get_aliases(model)  # also proves the model exists
        versions = []
        for found in self._search("list versions", f"name={_quote_name(model)}"):
            version = _version_of(self, found)
            created = found.get("creation_timestamp")
            versions.append(ModelVersion(
                model=model,
                version=version,
                run_id=found.get("run_id") or None,
                created_at=datetime.fromtimestamp(int(created) / 1000, UTC) if created else None,
                status=str(found.get("status") or "READY"),
                source=found.get("source"),
                description=found.get("description") or None,
                tags=_tags(found),
                aliases=aliases.aliases_of(version),
                signature=self.get_signature(model, version) if with_signatures else None,
            ))
        versions.sort(key=lambda v: int(v.version))
        return versions

    def get_alias(self, model: str, alias: str) -> str | None:
        """The version one alias points to, or ``None`` when unset (one request).

        Raises:
            NotFoundError: the model does not exist.
        """
        found = self._request(f"read alias {alias!r}", "GET", "registered-models/alias",
                              params={"name": model, "alias": alias}, unset_ok=True)
        return None if found is None else _version_of(self, found.get("model_version") or {})

    def get_version_tag(self, model: str, version: str, key: str) -> str | None:
        """One tag of one version, ``None`` when absent (one request)."""
        found = self._request(f"read version {version}", "GET", "model-versions/get",
                              params={"name": model, "version": normalise_version(version)}) or {}
        return _tags(found.get("model_version") or {}).get(key)

    def list_models(self) -> list[str]:
        """Every registered model's name, sorted (``GET registered-models/search``, every page)."""
        names: list[str] = []
        params = {"max_results": "1000"}
        while True:
            page = self._request("list the registered models", "GET", "registered-models/search", params=params) or {}
            names.extend(str(found.get("name")) for found in page.get("registered_models") or [] if found.get("name"))
            token = page.get("next_page_token")
            if not token:
                return sorted(names)
            params = {**params, "page_token": str(token)}

    def tagged_versions(self, key: str, value: str) -> list[tuple[str, str]]:
        """Every (model, version) whose tag ``key`` is ``value``, across the registry's models."""
        quoted = value.replace("'", "''")
        found = [(str(mv.get("name")), _version_of(self, mv))
                 for mv in self._search(f"search versions tagged {key}", f"tags.`{key}` = '{quoted}'")]
        return sorted(found, key=lambda item: (item[0], int(item[1])))

    # -- writes (compare-and-set and read-back in UnconditionalWrites) -------------------------
    def _write_alias(self, model: str, alias: str, version: str) -> None:
        self._request(f"set alias {alias!r}", "POST", "registered-models/alias",
                      body={"name": model, "alias": alias, "version": version})

    def _remove_alias(self, model: str, alias: str) -> None:
        self._request(f"delete alias {alias!r}", "DELETE", "registered-models/alias",
                      body={"name": model, "alias": alias})

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Write one tag on one version (MLflow keeps no alias history; tags record it)."""
        self._request(f"tag version {version}", "POST", "model-versions/set-tag",
                      body={"name": model, "version": normalise_version(version), "key": key, "value": value})

    def _remove_version_tag(self, model: str, version: str, key: str) -> None:
        self._request(f"untag version {version}", "DELETE", "model-versions/delete-tag",
                      body={"name": model, "version": normalise_version(version), "key": key})

    # -- artifacts: the MLflow client, imported on first use ---------------------------------
    def _artifacts(self) -> MlflowRegistry:
        if self._client_adapter is None:
            from console.adapters.mlflow_registry import MlflowRegistry

            self._client_adapter = MlflowRegistry(self.tracking_uri, self.registry_uri, self.timeout_s,
                                                  self.max_retries)
        return self._client_adapter

    def get_signature(self, model: str, version: str) -> dict | None:
        """A version's model signature (read from its MLmodel artifact by the MLflow client), or ``None``."""
        return self._artifacts().get_signature(model, version)

    def load(self, model: str, version: str) -> dict[str, object]:
        """Fetch a version's artifacts and load the model, through the MLflow client."""
        return self._artifacts().load(model, version)


def _version_of(registry: MlflowRestRegistry, found: Mapping[str, Any]) -> str:
    try:
        return normalise_version(found.get("version"))
    except ValueError:
        raise RegistryError(f"{registry.describe()}: a model version without a version number: "
                            f"{dict(found)!r:.120}") from None


def _tags(found: Mapping[str, Any]) -> dict[str, str]:
    """A model version's ``tags`` list (``[{key, value}]``) as a dict."""
    return {str(t["key"]): str(t.get("value", "")) for t in found.get("tags") or [] if "key" in t}
