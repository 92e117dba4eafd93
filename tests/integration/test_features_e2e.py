"""Issue 16 end to end on the real sandbox: the diagnosis of each scenario, and the feature rollback.

One test, in order, on the shared sandbox (the metric window spans a minute, so each
scenario's effect must be told apart from the last one's): a regression is the model,
a feature bug is the features (and a model rollback leaves it), the feature rollback
clears it with alias and weights untouched as MLflow and HAProxy report them, its undo
restores the binding, the journal's chain verifies. Drift (the world) comes first: a feature
release lands when the feature bug ends, and a release that landed minutes ago is a suspect.
"""

from __future__ import annotations

import json

import pytest

from console.config import load_config
from console.wiring import build_status_service
from tests.fixtures.servers import run_cli, wait_for
from tests.integration.conftest import MODEL, START_ALIASES, START_WEIGHTS

TAG = "feast.feature_service"


@pytest.fixture
def status(sandbox_config):
    service = build_status_service(load_config(sandbox_config, environ={}).config)
    yield service
    service.close()


def cause(status) -> str | None:
    diagnosis = status.snapshot(MODEL).diagnosis
    return None if diagnosis is None else diagnosis.cause.value


def tags(registry) -> dict[str, str | None]:
    return {v.version: v.tags.get(TAG) for v in registry.list_versions(MODEL)}


def test_diagnoses_and_a_feature_rollback_that_leaves_the_model_alone(sandbox, sandbox_config, systems, status):
    router, registry = systems
    # Drift: every version breaches alike in one segment, no feature release lately: the world.
    sandbox.set_scenario("drift")
    wait_for(lambda: cause(status) == "world", 120, "the diagnosis 'world' under drift", interval=1)

    # Regression: the challenger alone breaches, its inputs normal: the model.
    sandbox.set_scenario("regression")

    def blames_the_challenger() -> bool:
        # The drift stays in the one-minute window for a while: wait until it has left it.
        diagnosis = status.snapshot(MODEL).diagnosis
        return (diagnosis is not None and diagnosis.cause.value == "model"
                and "3" in diagnosis.versions and "2" not in diagnosis.versions)

    wait_for(blames_the_challenger, 120, "the diagnosis 'model' naming v3 alone under the regression", interval=1)

    # Feature bug: every version on the buggy transformation breaches alike, its inputs abnormal.
    sandbox.set_scenario("feature-bug")
    wait_for(lambda: cause(status) == "feature", 90, "the diagnosis 'feature' under the feature bug", interval=1)
    completed = run_cli("status", "--json", "--config", sandbox_config)
    doc = json.loads(completed.stdout)
    assert doc["diagnosis"]["cause"] == "feature", doc["diagnosis"]
    assert doc["diagnosis"]["suspect"]["view"] == "txn_features"
    assert {"2", "3"} <= set(doc["diagnosis"]["versions"])

    # A model rollback does not clear it: v2 (and every version) reads the same buggy amounts.
    rolled = run_cli("rollback", "--config", sandbox_config, "--yes", "--no-verify", "--reason", "try the model")
    assert rolled.returncode == 0, rolled.stderr
    assert router.read_state(MODEL).weights()["3"] == 0
    wait_for(lambda: cause(status) == "feature" and "2" in status.snapshot(MODEL).diagnosis.versions, 30,
             "the breach to stay on v2 after the model rollback", interval=1)
    router.set_weights(MODEL, START_WEIGHTS, expected=None)
    registry.set_alias(MODEL, "challenger", "3", expected=registry.get_aliases(MODEL).version_of("challenger"))
    weights, aliases = router.read_state(MODEL).weights(), registry.get_aliases(MODEL).aliases
    assert weights == START_WEIGHTS and aliases == START_ALIASES

    # The feature rollback: the tags move to a service pinned at the previous transformation; verified.
    applied = run_cli("features", "rollback", "--config", sandbox_config, "--yes", "--json",
                      "--reason", "amounts read in cents", timeout=240)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    result = json.loads(applied.stdout)
    assert [o["status"] for o in result["outcomes"]] == ["applied", "verified"], result["outcomes"]
    pinned = result["plan"]["feature_service"]["name"]
    assert pinned.startswith("fraud_features__pin_txn_features_v")
    assert set(tags(registry).values()) == {pinned}
    # Alias and weights untouched, as MLflow and HAProxy themselves report them.
    assert router.read_state(MODEL).weights() == weights
    assert registry.get_aliases(MODEL).aliases == aliases
    wait_for(lambda: cause(status) is None, 60, "no diagnosis once the features are rolled back", interval=1)
    verify = run_cli("journal", "verify", "--incident", result["incident_id"], "--config", sandbox_config)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # Undo restores the previous binding (the bug comes back with it: the scenario still ships it).
    undone = run_cli("undo", result["plan"]["action_id"], "--config", sandbox_config, "--yes", "--no-verify")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert set(tags(registry).values()) == {"fraud_features"}
    features = json.loads(run_cli("features", "status", "--json", "--config", sandbox_config).stdout)
    wait_for(lambda: {b["feature_service"] for b in json.loads(
        run_cli("features", "status", "--json", "--config", sandbox_config).stdout)["observed"]} == {"fraud_features"},
        30, "every server to report fraud_features again", interval=1)
    assert features["schema"] == "rewind.features/1"
