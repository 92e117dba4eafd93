"""The MLflow adapter against real registries: the embedded sqlite store and ``mlflow server``."""

from __future__ import annotations

import time

import pytest

from console.adapters.mlflow_registry import MlflowRegistry
from console.domain.errors import ConflictError, NotFoundError, RegistryError

MODEL = "fraud-detector"


def test_lists_versions_with_runs_tags_signatures_and_times(seeded_registry):
    registry = MlflowRegistry(seeded_registry)
    versions = registry.list_versions(MODEL, with_signatures=True)
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert all(v.run_id and v.created_at for v in versions)
    assert versions[1].aliases == ("champion",)
    assert versions[2].tags["rewind.sandbox"] == "true"
    inputs = [c["name"] for c in __import__("json").loads(versions[0].signature["inputs"])]
    assert inputs == ["amount", "velocity", "account_age", "hour"]


def test_alias_compare_and_set_moves_the_alias_in_mlflow(seeded_registry):
    registry = MlflowRegistry(seeded_registry)
    assert registry.get_aliases(MODEL).aliases == {"champion": "2", "challenger": "3"}
    assert registry.set_alias(MODEL, "champion", "1", expected="2") == "1"  # the read-back
    assert registry.get_alias(MODEL, "champion") == "1"
    assert registry.get_alias(MODEL, "nope") is None
    # What MLflow itself reports, through a client of its own.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=seeded_registry)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    with pytest.raises(ConflictError, match="points at v1, expected v2"):
        registry.set_alias(MODEL, "champion", "3", expected="2")
    assert registry.get_aliases(MODEL).version_of("champion") == "1"
    registry.set_alias(MODEL, "champion", "2", expected="1")


def test_version_tags_are_written(seeded_registry):
    registry = MlflowRegistry(seeded_registry)
    registry.set_version_tag(MODEL, "3", "rewind.rolled_back_at", "2026-11-22T04:00:00Z")
    tags = {v.version: v.tags for v in registry.list_versions(MODEL)}
    assert tags["3"]["rewind.rolled_back_at"] == "2026-11-22T04:00:00Z"


def test_unknown_model_and_missing_database(seeded_registry, tmp_path):
    with pytest.raises(NotFoundError, match="MLflow registry at sqlite"):
        MlflowRegistry(seeded_registry).get_aliases("no-such-model")
    missing = MlflowRegistry(f"sqlite:///{tmp_path / 'nope.db'}")
    with pytest.raises(RegistryError, match="no database at .*nope.db"):
        missing.get_aliases(MODEL)
    assert not (tmp_path / "nope.db").exists()  # MLflow was not allowed to create an empty one


def test_against_mlflow_server(mlflow_server):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    client.create_registered_model("served-model")
    experiment = client.create_experiment("served")
    for _ in range(2):
        run = client.create_run(experiment)
        client.create_model_version("served-model", f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias("served-model", "champion", "1")

    registry = MlflowRegistry(mlflow_server)
    versions = registry.list_versions("served-model")
    assert [v.version for v in versions] == ["1", "2"]  # strings from the server, like sqlite's ints
    assert registry.get_aliases("served-model").aliases == {"champion": "1"}
    registry.set_alias("served-model", "champion", "2", expected="1")
    assert str(client.get_model_version_by_alias("served-model", "champion").version) == "2"
    with pytest.raises(NotFoundError):
        registry.get_aliases("nope")


def test_an_unreachable_server_fails_fast_with_one_line():
    from console.sandbox.manager import free_port

    registry = MlflowRegistry(f"http://127.0.0.1:{free_port()}", timeout_s=2, max_retries=0)
    started = time.monotonic()
    with pytest.raises(RegistryError, match="unreachable") as error:
        registry.get_aliases(MODEL)
    assert time.monotonic() - started < 15
    assert "\n" not in str(error.value)
