"""The MLflow Model Registry through ``MlflowClient``: versions, aliases, version tags.

mlflow costs most of a second to import, so it is imported on first use, not
when the console starts. Works with the embedded ``sqlite:///`` store and with
an ``mlflow server`` URL; version ids come back as ``int`` from one and ``str``
from the other and are normalised to strings here.

MLflow keeps no alias history and has no compare-and-set: :meth:`set_alias`
reads the alias, refuses when it moved, writes, and reads back
(:mod:`console.adapters.registry_cas`, shared with the REST adapter). The window
between the read and the write is closed by the caller's lock (rollback plans).
An ``http(s)://`` registry is read and written through
:mod:`console.adapters.mlflow_rest` instead; this client stays for sqlite and
file stores and for loading a version's artifacts.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from console.adapters.registry_cas import UnconditionalWrites
from console.domain.errors import NotFoundError, RegistryError
from console.domain.versions import AliasMap, ModelVersion, normalise_version


def redact_url(url: str) -> str:
    """A URL without any user name or password in it, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _quote_name(model: str) -> str:
    """A model name as a string literal of MLflow's filter syntax."""
    if "'" not in model:
        return f"'{model}'"
    if '"' not in model:
        return f'"{model}"'
    raise NotFoundError(f"model name {model!r} mixes both kinds of quote and cannot be searched")


class MlflowRegistry(UnconditionalWrites):
    """A :class:`~console.adapters.protocols.Registry` on MLflow."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None,
                 timeout_s: float = 10.0, max_retries: int = 1) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._client: Any = None

    def describe(self) -> str:
        """Where the registry is, without credentials."""
        return f"MLflow registry at {redact_url(self.registry_uri)}"

    def _sqlite_path(self) -> Path | None:
        if self.registry_uri.startswith("sqlite:///"):
            return Path(self.registry_uri[len("sqlite:///"):].split("?", 1)[0])
        return None

    @property
    def client(self) -> Any:
        """The MlflowClient, created (and mlflow imported) on first use."""
        if self._client is None:
            path = self._sqlite_path()
            if path is not None and not path.exists():
                # MLflow would silently create an empty registry here; say what is wrong instead.
                raise RegistryError(f"{self.describe()}: no database at {path} (registry.tracking_uri)")
            # Fail fast on an unreachable server instead of MLflow's minutes of retries.
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(self.max_retries))
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, round(self.timeout_s))))
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar in a one-line CLI
            import mlflow
            from mlflow.tracking import MlflowClient

            # Helpers such as get_model_info read the process-wide URIs, not a client's: this
            # adapter is the process's only MLflow user, so point them at the same registry.
            mlflow.set_tracking_uri(self.tracking_uri)
            mlflow.set_registry_uri(self.registry_uri)
            self._client = self._call("open the registry", "", MlflowClient, tracking_uri=self.tracking_uri,
                                      registry_uri=self.registry_uri)
        return self._client

    def _alias_writer(self) -> Any:
        """Where alias writes go: MLflow's registry client when this MLflow has one.

        ``MlflowClient.set/delete_registered_model_alias`` first re-read the whole
        registered model to refuse MLflow prompts; inside a rollback the alias has
        just been read (compare-and-set), so that extra query only lengthens the
        critical section. Older or newer MLflows without the registry client get
        the public calls.
        """
        getter = getattr(self.client, "_get_registry_client", None)
        return getter() if callable(getter) else self.client

    def _call(self, what: str, model: str, func, *args, **kwargs):
        """Run one client call, turning MLflow's exceptions into Rewind's."""
        from mlflow.exceptions import MlflowException

        try:
            return func(*args, **kwargs)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"{self.describe()}: {exc.message.splitlines()[0]}") from None
            message = str(exc.message).splitlines()[0] if exc.message else code
            if "Max retries exceeded" in message or "Connection refused" in message or "API request" in message:
                raise RegistryError(f"{self.describe()}: unreachable while trying to {what}") from None
            raise RegistryError(f"{self.describe()}: {what} failed: {message[:200]}") from None
        except OSError as exc:
            raise RegistryError(f"{self.describe()}: {what} failed: {exc}") from None
        except Exception as exc:
            # A database-backed registry lets SQLAlchemy's own errors through (a file that is
            # not a database, a locked or unreachable database server).
            if not type(exc).__module__.startswith("sqlalchemy"):
                raise
            original = getattr(exc, "orig", None) or exc
            detail = (str(original).strip().splitlines() or [type(original).__name__])[0]
            raise RegistryError(f"{self.describe()}: {what} failed: {detail[:200]} "
                                f"(registry.tracking_uri)") from None

    # -- reads ------------------------------------------------------------------------------
    def get_aliases(self, model: str) -> AliasMap:
        """The model's aliases (alias -> version)."""
        registered = self._call("read the model", model, self.client.get_registered_model, model)
        aliases = {alias: normalise_version(v) for alias, v in (registered.aliases or {}).items()}
        return AliasMap(model=model, aliases=aliases)

    def list_versions(self, model: str, with_signatures: bool = False) -> list[ModelVersion]:
        """Every version of ``model``, oldest first.

        Raises:
            NotFoundError: when the model is not registered.
        """
        aliases = self.get_aliases(model)  # also proves the model exists
        found = self._call(
            "list versions", model, self.client.search_model_versions,
            filter_string=f"name={_quote_name(model)}",
        )
        versions = []
        for mv in found:
            version = normalise_version(mv.version)
            created = (
                datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC) if mv.creation_timestamp else None
            )
            versions.append(
                ModelVersion(
                    model=model,
                    version=version,
                    run_id=mv.run_id or None,
                    created_at=created,
                    status=str(mv.status or "READY"),
                    source=mv.source,
                    description=mv.description or None,
                    tags=dict(mv.tags or {}),
                    aliases=aliases.aliases_of(version),
                    signature=self.get_signature(model, version) if with_signatures else None,
                )
            )
        versions.sort(key=lambda v: int(v.version))
        return versions

    def get_signature(self, model: str, version: str) -> dict | None:
        """A version's MLflow model signature as a dict, or ``None`` when it has none."""
        from mlflow.models import get_model_info

        self.client  # noqa: B018 - creates the client and points MLflow's helpers at this registry
        info = self._call(
            f"read the signature of version {version}", model, get_model_info, f"models:/{model}/{version}"
        )
        return info.signature.to_dict() if info.signature is not None else None

    def load(self, model: str, version: str) -> dict[str, object]:
        """Fetch a version's artifacts and load them as MLflow would serve them, into a scratch directory.

        A registry row outlives artifacts deleted by hand, so listing a version proves nothing about
        deploying it: this downloads every artifact and loads the model.

        Returns:
            What was loaded: the flavour's loader module, the artifacts' size in bytes, and the seconds taken.

        Raises:
            RegistryError: the registry is unreachable, an artifact is missing, or the model does not load.
        """
        import mlflow.pyfunc

        self.client  # noqa: B018 - creates the client and points MLflow's helpers at this registry
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="rewind-load-") as scratch:
            try:
                loaded = mlflow.pyfunc.load_model(f"models:/{model}/{version}", dst_path=scratch)
            except RegistryError:
                raise
            except Exception as exc:  # noqa: BLE001 - a model's own loader may raise anything: say what it was
                detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise RegistryError(f"{self.describe()}: {model} v{version} does not load: {detail[:200]}") from None
            size = sum(f.stat().st_size for f in Path(scratch).rglob("*") if f.is_file())
        loader = getattr(loaded.metadata, "flavors", {}).get("python_function", {}).get("loader_module", "")
        return {"loader": loader, "bytes": size, "seconds": round(time.perf_counter() - started, 2)}

    # -- writes -----------------------------------------------------------------------------
    def get_alias(self, model: str, alias: str) -> str | None:
        """The version one alias points to, or ``None`` when unset (one cheap query).

        Raises:
            NotFoundError: the model does not exist.
        """
        from mlflow.exceptions import MlflowException

        try:
            return normalise_version(self.client.get_model_version_by_alias(model, alias).version)
        except MlflowException as exc:
            # An unset alias is INVALID_PARAMETER_VALUE "...alias X not found"; an unknown model is
            # RESOURCE_DOES_NOT_EXIST, which _call turns into NotFoundError like any other failure.
            if f"alias {alias} not found" in str(exc.message):
                return None
            return self._call(f"read alias {alias!r}", model, _raise, exc)
        except Exception as exc:  # noqa: BLE001 - _call names what it is, or lets it through
            return self._call(f"read alias {alias!r}", model, _raise, exc)

    def _write_alias(self, model: str, alias: str, version: str) -> None:
        self._call(f"set alias {alias!r}", model, self._alias_writer().set_registered_model_alias,
                   model, alias, version)

    def _remove_alias(self, model: str, alias: str) -> None:
        self._call(f"delete alias {alias!r}", model, self._alias_writer().delete_registered_model_alias, model, alias)

    def _remove_version_tag(self, model: str, version: str, key: str) -> None:
        self._call(f"untag version {version}", model, self.client.delete_model_version_tag,
                   model, normalise_version(version), key)

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        """Write one tag on one version (MLflow keeps no alias history; tags record it)."""
        self._call(
            f"tag version {version}", model, self.client.set_model_version_tag,
            model, normalise_version(version), key, value,
        )

    def get_version_tag(self, model: str, version: str, key: str) -> str | None:
        """One tag of one version, ``None`` when absent (one query)."""
        found = self._call(f"read version {version}", model, self.client.get_model_version,
                           model, normalise_version(version))
        value = (found.tags or {}).get(key)
        return None if value is None else str(value)

    def list_models(self) -> list[str]:
        """Every registered model's name, sorted (every page of the search)."""
        names: list[str] = []
        token = None
        while True:
            page = self._call("list the registered models", "", self.client.search_registered_models,
                              max_results=1000, page_token=token)
            names.extend(model.name for model in page)
            token = getattr(page, "token", None)
            if not token:
                return sorted(names)

    def tagged_versions(self, key: str, value: str) -> list[tuple[str, str]]:
        """Every (model, version) whose tag ``key`` is ``value``, across the registry's models."""
        quoted = value.replace("'", "''")
        found = self._call(f"search versions tagged {key}", "", self.client.search_model_versions,
                           filter_string=f"tags.`{key}` = '{quoted}'")
        return sorted(((mv.name, normalise_version(mv.version)) for mv in found),
                      key=lambda item: (item[0], int(item[1]) if item[1].isdigit() else 0))


def _raise(exc: BaseException) -> None:
    raise exc
