"""The sandbox's Feast feature store: its repo in the state directory, its releases, and their bindings.

The repo lives in ``<state>/features``: ``feature_store.yaml`` (SQL registry on sqlite, sqlite
online store, online feature-view versioning on) and ``features.py``, the code of the release in
force. Its objects: the request source ``transaction`` (the raw request), the on-demand view
``txn_features`` that turns it into the model's inputs, and the service ``fraud_features``, which
follows the view's active version and which every model version names in its MLflow tag
``feast.feature_service``.

Two releases of ``txn_features`` exist: ``good`` (``amount = ln(amount_cents / 100) - 3.5``, about
N(0, 1) like the training data) and ``cents``, which reads amounts in cents
(``amount = ln(amount_cents) - 3.5``: every value 4.6 higher, out of the training range). Each
apply that changes the UDF makes Feast save a new version (v0, v1, ...).

This module imports Feast only inside the functions that need it (``import feast`` takes ~3 s).
Run as ``python -m console.sandbox.features --state-dir D release good|cents [--if-active R]``; it
prints ``{"release", "applied", "version", "udf_sha"}`` as JSON.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.domain.errors import SandboxError

PROJECT = "sandbox"
FEATURE_VIEW = "txn_features"
FEATURE_SERVICE = "fraud_features"
REQUEST_SOURCE = "transaction"
SERVICE_TAG = "feast.feature_service"
"""The MLflow model-version tag naming the feature service a model version consumes."""

AMOUNT_LOG_MEAN = 3.5
"""ln(amount in dollars) of a typical transaction: amounts are log-normal around e^3.5 ≈ 33 dollars."""

RAW_FIELDS = ("amount_cents", "velocity", "account_age", "hour")
"""The raw request the traffic sends (``"transaction"``); the other fields pass through unchanged."""

TRAINING_PROBABILITIES = (0.005, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.995)
"""Where ``rewind_feature_value``'s bucket bounds sit in the training distribution of every input.

The console computes a population-stability index from the buckets with these probabilities: the
expected share of each bucket is the gap between neighbours (0.5 % in each tail). Keep them exactly.
"""

RELEASE_AMOUNT = {
    "good": "math.log(cents / 100) - 3.5",
    "cents": "math.log(cents) - 3.5",
}
"""Each release's amount transformation, as it appears in the UDF's source."""

RELEASE_NOTES = {
    "good": "amounts in dollars, on the training scale",
    "cents": "reads amounts in cents (a unit bug: every amount 4.6 too high)",
}

UDF_TEMPLATE = '''\
def txn_features(inputs: dict) -> dict:
    """The model's inputs from the raw transaction ({note})."""
    import math

    return {{
        "amount": [{amount} if cents is not None and cents > 0 else None
                   for cents in inputs["amount_cents"]],
        "velocity": inputs["velocity"],
        "account_age": inputs["account_age"],
        "hour": inputs["hour"],
    }}
'''

REPO_TEMPLATE = '''\
"""The sandbox's feature repo, release {release!r}: written by `rewind sandbox`, applied with the Feast SDK."""

from feast import FeatureService, Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

transaction = RequestSource(
    name="transaction",
    schema=[
        Field(name="amount_cents", dtype=Int64),
        Field(name="velocity", dtype=Float64),
        Field(name="account_age", dtype=Float64),
        Field(name="hour", dtype=Float64),
    ],
)


@on_demand_feature_view(
    sources=[transaction],
    schema=[
        Field(name="amount", dtype=Float64),
        Field(name="velocity", dtype=Float64),
        Field(name="account_age", dtype=Float64),
        Field(name="hour", dtype=Float64),
    ],
    mode="python",
)
{udf}

fraud_features = FeatureService(name="fraud_features", features=[txn_features])
'''


class FeastMissingError(SandboxError):
    """Feast is not installed where the sandbox runs (exit code 2: install the extra)."""

    exit_code = 2


def standard_normal_quantile(p: float) -> float:
    """The standard normal quantile at ``p`` (Acklam's approximation refined by one Newton step)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability {p} is not in (0, 1)")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    elif p <= 1 - low:
        q = p - 0.5
        r = q * q
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / \
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    else:
        q = math.sqrt(-2 * math.log(1 - p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / \
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
    error = 0.5 * math.erfc(-x / math.sqrt(2)) - p
    return x - error * math.sqrt(2 * math.pi) * math.exp(x * x / 2)


FEATURE_BUCKETS = tuple(round(standard_normal_quantile(p), 4) for p in TRAINING_PROBABILITIES)
"""``rewind_feature_value``'s bucket bounds: the training quantiles of every input (each ~N(0, 1))."""


def amount_cents(z: float) -> int:
    """The raw amount in cents the traffic sends for a standardised amount ``z``."""
    return round(math.exp(AMOUNT_LOG_MEAN + z) * 100)


def udf_source(release: str) -> str:
    """The source of ``txn_features``'s UDF in ``release`` (without its decorator)."""
    if release not in RELEASE_AMOUNT:
        raise ValueError(f"unknown feature release {release!r}; choose from {', '.join(RELEASE_AMOUNT)}")
    return UDF_TEMPLATE.format(note=RELEASE_NOTES[release], amount=RELEASE_AMOUNT[release])


def release_udf(release: str):
    """The release's UDF as a plain function, compiled from the very source Feast applies."""
    namespace: dict[str, Any] = {}
    exec(compile(udf_source(release), f"<txn_features {release}>", "exec"), namespace)  # noqa: S102 - our own code
    return namespace[FEATURE_VIEW]


def repo_source(release: str) -> str:
    """The repo's ``features.py`` for ``release``."""
    return REPO_TEMPLATE.format(release=release, udf=udf_source(release).rstrip("\n"))


def repo_dir(state_dir: Path) -> Path:
    """The Feast repo of the sandbox in ``state_dir``."""
    return state_dir / "features"


def store_config(state_dir: Path) -> str:
    """``feature_store.yaml``: SQL registry on sqlite, sqlite online store, versioned online reads."""
    import yaml

    repo = repo_dir(state_dir)
    config = {
        "project": PROJECT,
        "provider": "local",
        "registry": {
            "registry_type": "sql",
            "path": f"sqlite:///{repo / 'registry.db'}",
            "cache_ttl_seconds": 1,
            "enable_online_feature_view_versioning": True,
        },
        "online_store": {"type": "sqlite", "path": str(repo / "online.db")},
        "entity_key_serialization_version": 3,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_repo(state_dir: Path) -> Path:
    """Write ``feature_store.yaml`` (every start); ``features.py`` is written by :func:`apply_release`."""
    repo = repo_dir(state_dir)
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "feature_store.yaml").write_text(store_config(state_dir), encoding="utf-8")
    return repo


def import_feast():
    """Import Feast for the sandbox's own processes, without typeguard's import-time instrumentation.

    Feast decorates its classes with typeguard's ``@typechecked``, which parses and recompiles
    their source at every import: about 2 of the ~3 s ``import feast`` takes here, in each of
    the sandbox's five model servers. The sandbox applies and reads only its own fixed, tested
    definitions, so its processes skip that check, as typeguard itself does under ``python -O``
    (which would not help here: without cached optimised bytecode, it recompiles all of Feast).

    Returns:
        The ``feast`` module.
    """
    if "feast" not in sys.modules:
        import typeguard

        def unchecked(target=None, **_options):
            return target if target is not None else (lambda decorated: decorated)

        checked = typeguard.typechecked
        typeguard.typechecked = unchecked
        try:
            import feast
        finally:
            typeguard.typechecked = checked
    import feast

    return feast


def feast_available() -> bool:
    """Whether Feast can be imported here (looked up, not imported: the import takes ~3 s)."""
    return importlib.util.find_spec("feast") is not None


def require_feast() -> None:
    """Raise :class:`FeastMissingError` when Feast is not installed."""
    if not feast_available():
        raise FeastMissingError(
            "Feast is not installed: the sandbox's feature store needs it; install the extra with "
            "`.venv/bin/pip install -e '.[feast]'` (or run `make install`)")


def udf_sha(view) -> str:
    """The first 12 hex digits of sha256 of a view's UDF source; "" for a view without a UDF.

    Feast 0.67 keeps the source on the view as ``udf_string``, but a view read back from the
    registry has it only on its transformation, so both are looked at.
    """
    source = getattr(view, "udf_string", None) or getattr(
        getattr(view, "feature_transformation", None), "udf_string", None) or ""
    return hashlib.sha256(source.encode()).hexdigest()[:12] if source else ""


@dataclass(frozen=True)
class ViewBinding:
    """One feature view a service consumes: which version of it, and which UDF that version runs."""

    feature_view: str
    version: int
    udf_sha: str
    pinned: bool

    @property
    def version_label(self) -> str:
        """The version as Feast names it: ``v0``, ``v1``, ..."""
        return f"v{self.version}"


def active_version(view) -> int:
    """A view's active version number (Feast reports ``None`` for v0 when it follows latest)."""
    number = getattr(view, "current_version_number", None)
    return int(number) if number is not None else 0


def resolve_service(store, service_name: str) -> tuple[Any, list[ViewBinding]]:
    """The service and, for each of its projections, the view version it reads and that version's UDF sha.

    A projection pinned with ``view@vN`` reads version N (its snapshot in the registry); an
    unpinned one reads the view's active version.
    """
    service = store.get_feature_service(service_name)
    bindings = []
    for projection in service.feature_view_projections:
        name = projection.name
        tag = getattr(projection, "version_tag", None)
        if tag is not None:
            view = store.registry.get_feature_view_by_version(name, store.project, int(tag))
            bindings.append(ViewBinding(name, int(tag), udf_sha(view), True))
            continue
        try:
            view = store.get_on_demand_feature_view(name)
        except Exception:  # noqa: BLE001 - a plain feature view (Feast raises its own not-found error)
            view = store.get_feature_view(name)
        bindings.append(ViewBinding(name, active_version(view), udf_sha(view), False))
    return service, bindings


def _load_release_module(path: Path):
    """Import the repo's ``features.py`` (our own generated code, never a user's repository)."""
    import linecache

    linecache.checkcache(str(path))  # Feast reads the UDF's source through linecache
    spec = importlib.util.spec_from_file_location("rewind_sandbox_features", path)
    if spec is None or spec.loader is None:
        raise SandboxError(f"cannot load the feature repo's {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply_release(state_dir: Path, release: str, if_active: str | None = None) -> dict:
    """Write ``release``'s ``features.py`` and apply it with the Feast SDK.

    With ``if_active``, applies only when the active UDF is that release's (its sha compared).

    Returns:
        ``{"release", "applied", "version", "udf_sha"}``: the active version and its sha afterwards.
    """
    FeatureStore = import_feast().FeatureStore  # noqa: N806 - Feast's class

    repo = write_repo(state_dir)
    store = FeatureStore(repo_path=str(repo))
    if if_active is not None:
        active = _active(store)
        wanted = _release_sha(repo, if_active)
        if active is None or active[1] != wanted:
            version, sha = active if active else (None, None)
            return {"release": release, "applied": False, "version": version, "udf_sha": sha}
    path = repo / "features.py"
    path.write_text(repo_source(release), encoding="utf-8")
    module = _load_release_module(path)
    store.apply([module.transaction, module.txn_features, module.fraud_features])
    store.refresh_registry()
    version, sha = _active(store) or (None, None)
    return {"release": release, "applied": True, "version": version, "udf_sha": sha}


def _active(store) -> tuple[int, str] | None:
    """The active version of ``txn_features`` and its UDF sha, or ``None`` before the first apply."""
    from feast.errors import FeatureViewNotFoundException

    try:
        view = store.get_on_demand_feature_view(FEATURE_VIEW)
    except FeatureViewNotFoundException:
        return None
    return active_version(view), udf_sha(view)


def _release_sha(repo: Path, release: str) -> str:
    """The UDF sha ``release`` has once applied, from its source loaded here (nothing is applied)."""
    path = repo / f".release-{release}.py"
    path.write_text(repo_source(release), encoding="utf-8")
    try:
        return udf_sha(_load_release_module(path).txn_features)
    finally:
        path.unlink(missing_ok=True)


def release_sha(release: str, scratch: Path) -> str:
    """The UDF sha of ``release`` (needs Feast): what the servers' binding reports once it is applied."""
    scratch.mkdir(parents=True, exist_ok=True)
    return _release_sha(scratch, release)


def main(argv: list[str] | None = None) -> int:
    """Apply a release of the sandbox's feature repo; print the outcome as JSON."""
    import argparse
    import logging
    import warnings

    parser = argparse.ArgumentParser(description="Apply a release of the sandbox's feature repo")
    parser.add_argument("--state-dir", required=True, type=Path)
    sub = parser.add_subparsers(dest="command", required=True)
    release = sub.add_parser("release", help="write the release's features.py and apply it")
    release.add_argument("name", choices=sorted(RELEASE_AMOUNT))
    release.add_argument("--if-active", choices=sorted(RELEASE_AMOUNT),
                         help="apply only when the active UDF is this release's")
    args = parser.parse_args(argv)
    try:
        import_feast()
    except ImportError as exc:  # one line, not a traceback
        print(f"Feast is not importable: {exc}", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore")  # after the import: Feast sets filters of its own
    logging.getLogger("feast").setLevel(logging.ERROR)
    print(json.dumps(apply_release(args.state_dir.resolve(), args.name, args.if_active)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
