"""The sandbox's model: a small logistic scorer as a real MLflow pyfunc, and its seeding.

Each registered version has slightly different weights; the model servers load
their version from the registry with MLflow's own ``pyfunc.load_model``.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from console.sandbox.features import FEATURE_SERVICE, SERVICE_TAG
from console.sandbox.scenarios import FEATURES

VERSION_WEIGHTS = (
    ((1.7, 1.3, -0.8, 0.4), -0.4, "first production model"),
    ((2.0, 1.5, -1.0, 0.5), -0.5, "retrained on Q3 data"),
    ((2.1, 1.45, -1.05, 0.5), -0.5, "retrained on Q4 data, new feature pipeline"),
)
FALLBACK_WEIGHTS = ((1.8, 0.0, 0.0, 0.0), -0.4, "fallback: the amount alone, no feature pipeline")
"""The simple model that answers when no primary version can (alias ``fallback``)."""
FALLBACK_ALIAS = "fallback"
EXTRA_MODEL_VERSIONS = 2
"""Versions of each further model of a fleet sandbox (``--models N``): a champion and a challenger."""


class LogisticScorer(mlflow.pyfunc.PythonModel):
    """Scores a transaction as fraud-like (1) or not (0) with fixed weights."""

    def __init__(self, weights, bias):
        self.weights = np.asarray(weights, dtype=float)
        self.bias = float(bias)

    def predict(self, context, model_input, params=None):
        """One score in 0..1 per row of ``model_input``."""
        x = model_input[list(FEATURES)].to_numpy(dtype=float)
        z = x @ self.weights + self.bias
        return pd.DataFrame({"score": 1.0 / (1.0 + np.exp(-z))})


def _signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("double", f) for f in FEATURES]),
        outputs=Schema([ColSpec("double", "score")]),
    )


def seed_registry(tracking_uri: str, artifact_dir: Path, model: str, count: int = len(VERSION_WEIGHTS)) -> list[str]:
    """Register the sandbox model's versions (the newest ``count`` of them) with champion and challenger aliases.

    Does nothing when the model already has versions (the registry keeps its
    state across ``down`` and ``up``, like a real one).

    Returns:
        The registered versions, oldest first.
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    existing = client.search_model_versions(f"name='{model}'")
    if existing:
        return sorted((str(v.version) for v in existing), key=int)
    experiment = client.get_experiment_by_name("rewind-sandbox")
    experiment_id = (
        experiment.experiment_id if experiment
        else client.create_experiment("rewind-sandbox", artifact_location=artifact_dir.as_uri())
    )
    versions = [_register(client, experiment_id, model, f"{model}-train-{index}", weights, bias, note)
                for index, (weights, bias, note) in enumerate(VERSION_WEIGHTS[-count:], start=1)]
    client.set_registered_model_alias(model, "champion", versions[-2])
    client.set_registered_model_alias(model, "challenger", versions[-1])
    if len(versions) > 2:
        # The champion was promoted from the version before it: what a regression after promotion reverts to.
        client.set_model_version_tag(model, versions[-2], "rewind.previous_champion", versions[-3])
    return versions


def _register(client, experiment_id: str, model: str, run_name: str, weights, bias: float, note: str) -> str:
    """Log one scorer as a run and register it as the model's next version."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name):
        mlflow.log_params({"bias": bias, **{f"w_{f}": w for f, w in zip(FEATURES, weights, strict=True)}})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=LogisticScorer(weights, bias),
            signature=_signature(),
            pip_requirements=["mlflow", "numpy", "pandas"],
            registered_model_name=model,
        )
    version = str(info.registered_model_version)
    client.update_model_version(model, version, description=note)
    client.set_model_version_tag(model, version, "rewind.sandbox", "true")
    return version


def seed_fallback(tracking_uri: str, model: str) -> str:
    """Register the fallback model as a version of ``model`` with alias ``fallback``, unless one is set.

    Returns:
        The fallback's version.
    """
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    aliases = client.get_registered_model(model).aliases or {}
    if FALLBACK_ALIAS in aliases:
        return str(aliases[FALLBACK_ALIAS])
    experiment = client.get_experiment_by_name("rewind-sandbox")
    weights, bias, note = FALLBACK_WEIGHTS
    version = _register(client, experiment.experiment_id, model, f"{model}-fallback", weights, bias, note)
    client.set_model_version_tag(model, version, "rewind.fallback", "true")
    client.set_registered_model_alias(model, FALLBACK_ALIAS, version)
    return version


def link_feature_service(tracking_uri: str, model: str, service: str = FEATURE_SERVICE) -> list[str]:
    """Tag every version of ``model`` that has no ``feast.feature_service`` tag with ``service``.

    Versions already tagged keep their tag (a pin set on a kept registry survives a restart).

    Returns:
        The versions tagged now.
    """
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    tagged = []
    for version in client.search_model_versions(f"name='{model}'"):
        if not (version.tags or {}).get(SERVICE_TAG):
            client.set_model_version_tag(model, str(version.version), SERVICE_TAG, service)
            tagged.append(str(version.version))
    return sorted(tagged, key=int)


def main(argv: list[str] | None = None) -> None:
    """Seed the registry from the command line; prints the versions as JSON."""
    import argparse
    import json
    import logging
    import warnings

    parser = argparse.ArgumentParser(description="Seed the sandbox registry")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--artifacts", required=True, type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--extra-model", action="append", default=[],
                        help="a further model of the fleet: two versions (champion, challenger), no fallback")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    versions = seed_registry(args.tracking_uri, args.artifacts, args.model)
    fallback = seed_fallback(args.tracking_uri, args.model)
    link_feature_service(args.tracking_uri, args.model)
    model = mlflow.MlflowClient(tracking_uri=args.tracking_uri).get_registered_model(args.model)
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    primaries = [v for v in versions if v != fallback]
    fleet = {}
    for extra in args.extra_model:
        extra_versions = seed_registry(args.tracking_uri, args.artifacts, extra, count=EXTRA_MODEL_VERSIONS)
        link_feature_service(args.tracking_uri, extra)
        registered = mlflow.MlflowClient(tracking_uri=args.tracking_uri).get_registered_model(extra)
        fleet[extra] = {"versions": extra_versions,
                        "aliases": {alias: str(version) for alias, version in (registered.aliases or {}).items()}}
    print(json.dumps({"versions": primaries, "aliases": aliases, "fallback": fallback, "fleet": fleet}))


if __name__ == "__main__":
    main()
