"""The MLflow REST adapter against a real ``mlflow server`` on loopback, with the MLflow client as the witness
and as the writer that is not Rewind."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import httpx
import pytest
import yaml

from console.adapters.mlflow_rest import MlflowRestRegistry
from console.domain.errors import ConflictError, NotFoundError
from tests.fixtures.servers import run_cli

_names = itertools.count(1)


@pytest.fixture(scope="module")
def client(mlflow_server):
    """The MLflow client on the same server: the witness, and the other writer."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)


@pytest.fixture
def model(client) -> str:
    """A new registered model with three versions (each from a run), champion at 2 and challenger at 3."""
    name = f"rest-model-{next(_names)}"
    client.create_registered_model(name)
    experiment = client.get_experiment_by_name("rest") or client.get_experiment(client.create_experiment("rest"))
    for number in (1, 2, 3):
        run = client.create_run(experiment.experiment_id)
        client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                                    tags={"team": "fraud", "rewind.sandbox": "true"}, description=f"version {number}")
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_alias(name, "challenger", "3")
    client.set_model_version_tag(name, "2", "rewind.previous_champion", "1")
    return name


class Interposed(httpx.BaseTransport):
    """A real connection to the server, with a hook run after a matching request has been answered."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.sent: list[tuple[str, str]] = []
        self.after: dict[tuple[str, str], Callable[[], None]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        key = (request.method, request.url.path.removeprefix("/api/2.0/mlflow/"))
        self.sent.append(key)
        response = self.inner.handle_request(request)
        response.read()
        hook = self.after.pop(key, None)
        if hook is not None:
            hook()
        return response


def _alias(client, model: str, alias: str) -> str:
    return str(client.get_model_version_by_alias(model, alias).version)


def test_reads_equal_what_the_mlflow_client_reports(mlflow_server, client, model):
    registry = MlflowRestRegistry(mlflow_server)
    versions = registry.list_versions(model)
    theirs = sorted(client.search_model_versions(f"name='{model}'"), key=lambda mv: int(mv.version))
    assert [v.version for v in versions] == [str(mv.version) for mv in theirs] == ["1", "2", "3"]
    for mine, mv in zip(versions, theirs, strict=True):
        assert (mine.run_id, mine.status, mine.source, mine.description, mine.tags) == \
            (mv.run_id, mv.status, mv.source, mv.description, mv.tags)
        assert int(mine.created_at.timestamp() * 1000) == mv.creation_timestamp
    registered = client.get_registered_model(model)
    assert registry.get_aliases(model).aliases == {a: str(v) for a, v in registered.aliases.items()} \
        == {"champion": "2", "challenger": "3"}
    assert [v.aliases for v in versions] == [(), ("champion",), ("challenger",)]
    assert registry.get_alias(model, "champion") == "2" and registry.get_alias(model, "unset") is None
    assert registry.get_version_tag(model, "2", "rewind.previous_champion") == "1"
    assert (model, "3") in registry.tagged_versions("team", "fraud")
    with pytest.raises(NotFoundError, match=f"MLflow registry at {mlflow_server}: .*no-such-model"):
        registry.list_versions("no-such-model")


def test_compare_and_set_moves_the_alias_in_mlflow(mlflow_server, client, model):
    registry = MlflowRestRegistry(mlflow_server)
    assert registry.set_alias(model, "champion", "1", expected="2") == "1"  # the read-back
    assert _alias(client, model, "champion") == "1"
    with pytest.raises(ConflictError, match="points at v1, expected v2"):
        registry.set_alias(model, "champion", "3", expected="2")
    assert _alias(client, model, "champion") == "1"
    assert registry.delete_alias(model, "challenger", expected="3") is None
    assert "challenger" not in client.get_registered_model(model).aliases
    assert registry.set_alias(model, "challenger", "3", expected=None) == "3"
    assert registry.swap_version_tag(model, "1", "rewind.left_by", "a1", expected=None) == "a1"
    assert client.get_model_version(model, "1").tags["rewind.left_by"] == "a1"
    assert registry.swap_version_tag(model, "1", "rewind.left_by", None, expected="a1") is None
    assert "rewind.left_by" not in client.get_model_version(model, "1").tags


def test_another_writer_before_the_write_is_refused_and_nothing_is_written(mlflow_server, client, model):
    transport = Interposed()
    registry = MlflowRestRegistry(mlflow_server, transport=transport)
    expected = registry.get_aliases(model).version_of("champion")  # Rewind's preview reads v2
    client.set_registered_model_alias(model, "champion", "3")  # someone else, with the MLflow client
    with pytest.raises(ConflictError, match=f"alias 'champion' of '{model}' points at v3, expected v2"):
        registry.set_alias(model, "champion", "1", expected=expected)
    assert ("POST", "registered-models/alias") not in transport.sent
    assert _alias(client, model, "champion") == "3"


def test_another_writer_during_the_write_shows_in_the_read_back(mlflow_server, client, model):
    transport = Interposed()
    registry = MlflowRestRegistry(mlflow_server, transport=transport)
    # The other writer's change lands after Rewind's write, before its read-back.
    transport.after[("POST", "registered-models/alias")] = \
        lambda: client.set_registered_model_alias(model, "champion", "3")
    with pytest.raises(ConflictError, match=r"moved under this write: read back at v3, not v1 \(another writer\)"):
        registry.set_alias(model, "champion", "1", expected="2")
    assert transport.sent.count(("POST", "registered-models/alias")) == 1  # Rewind wrote once, and did not fight
    assert _alias(client, model, "champion") == "3"
    assert registry.get_alias(model, "champion") == "3"


def test_status_against_a_server_never_imports_mlflow(mlflow_server, model, tmp_path):
    config = tmp_path / "rewind.yaml"
    config.write_text(yaml.safe_dump({
        "registry": {"tracking_uri": mlflow_server, "timeout_s": 5},
        # Neither a router nor Prometheus here: status reads all three side by side and names what failed.
        "router": {"socket": str(tmp_path / "no-haproxy.sock"), "backends": {model: "b"}},
        "metrics": {"url": "http://127.0.0.1:9", "catalogue": [
            {"name": "error_rate", "title": "Error rate", "unit": "ratio", "direction": "higher_is_worse",
             "query": 'sum by (version, segment) (x{model="$model"})'}]},
        "journal": {"url": f"sqlite:///{tmp_path / 'journal.db'}"},
    }))
    done = run_cli("status", "--model", model, "--json", "--config", str(config),
                   env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 1, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]
    assert "console.adapters.mlflow_rest" in imported
    assert [name for name in imported if name.split(".")[0] == "mlflow"] == []
    # The registry was read (no registry error), the other two systems are named.
    problem = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert problem and "MLflow" not in problem[-1] and "no-haproxy.sock" in problem[-1], problem
