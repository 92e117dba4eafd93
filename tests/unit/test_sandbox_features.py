"""The sandbox's feature store, its pure parts: the bucket ladder, the two releases, the binding series."""

from __future__ import annotations

import ast
import math
import random
from pathlib import Path
from statistics import NormalDist

import pytest
import yaml

from console.sandbox.features import (
    FEATURE_BUCKETS,
    TRAINING_PROBABILITIES,
    ViewBinding,
    amount_cents,
    release_udf,
    repo_source,
    standard_normal_quantile,
    store_config,
)
from console.sandbox.model_server import Metrics, model_inputs
from console.sandbox.scenarios import FEATURES, make_scenario, random_features
from console.sandbox.templates import rewind_config
from console.sandbox.traffic import raw_transaction


def test_the_ladder_is_the_training_quantiles_the_console_expects():
    assert TRAINING_PROBABILITIES == (0.005, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.995)
    assert FEATURE_BUCKETS == tuple(round(NormalDist().inv_cdf(p), 4) for p in TRAINING_PROBABILITIES)
    assert FEATURE_BUCKETS[0] == -2.5758 and FEATURE_BUCKETS[5] == 0.0 and FEATURE_BUCKETS[-1] == 2.5758
    for p in (1e-6, 0.005, 0.02425, 0.3, 0.5, 0.97575, 0.995, 1 - 1e-6):
        assert standard_normal_quantile(p) == pytest.approx(NormalDist().inv_cdf(p), abs=1e-9)


def test_the_ladder_splits_training_values_as_its_probabilities_say():
    rng = random.Random(3)
    values = [rng.gauss(0.0, 1.0) for _ in range(200_000)]
    for bound, p in zip(FEATURE_BUCKETS, TRAINING_PROBABILITIES, strict=True):
        assert sum(v <= bound for v in values) / len(values) == pytest.approx(p, abs=0.004)


def run(release: str, cents: list[int | None]) -> list[float | None]:
    udf = release_udf(release)
    n = len(cents)
    out = udf({"amount_cents": cents, "velocity": [0.5] * n, "account_age": [-1.0] * n, "hour": [0.25] * n})
    assert (out["velocity"], out["account_age"], out["hour"]) == ([0.5] * n, [-1.0] * n, [0.25] * n)
    return out["amount"]


def test_the_good_release_gives_back_the_standardised_amount():
    zs = [-2.5, -1.0, 0.0, 0.3, 1.7, 2.5]
    for z, amount in zip(zs, run("good", [amount_cents(z) for z in zs]), strict=True):
        assert amount == pytest.approx(z, abs=0.01)  # cents are rounded: 2.52 dollars at z = -2.5


def test_the_cents_release_shifts_every_amount_out_of_the_training_range():
    zs = [-2.0, -1.0, 0.0, 1.0, 2.0]
    for z, amount in zip(zs, run("cents", [amount_cents(z) for z in zs]), strict=True):
        assert amount == pytest.approx(z + math.log(100), abs=0.01)
        assert amount > FEATURE_BUCKETS[-1]


def test_a_missing_or_nonpositive_amount_is_none_not_an_error():
    assert run("good", [None, 0, -5]) == [None, None, None]


def test_the_traffic_sends_cents_and_passes_the_rest_through():
    features = random_features(random.Random(1))
    raw = raw_transaction(features)
    assert set(raw) == {"amount_cents", "velocity", "account_age", "hour"}
    assert raw["amount_cents"] == round(math.exp(3.5 + features["amount"]) * 100)
    assert isinstance(raw["amount_cents"], int)
    assert {k: raw[k] for k in ("velocity", "account_age", "hour")} == {
        k: features[k] for k in ("velocity", "account_age", "hour")}


def test_the_repo_source_is_one_module_with_the_three_objects():
    for release in ("good", "cents"):
        tree = ast.parse(repo_source(release))
        names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
        functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        assert names == {"transaction", "fraud_features"} and [f.name for f in functions] == ["txn_features"]
        assert 'mode="python"' in repo_source(release)
    assert repo_source("good") != repo_source("cents")


def test_the_store_config_is_the_sandboxs(tmp_path: Path):
    config = yaml.safe_load(store_config(tmp_path))
    assert config["project"] == "sandbox" and config["provider"] == "local"
    assert config["registry"] == {"registry_type": "sql", "path": f"sqlite:///{tmp_path / 'features' / 'registry.db'}",
                                  "cache_ttl_seconds": 1, "enable_online_feature_view_versioning": True}
    assert config["online_store"] == {"type": "sqlite", "path": str(tmp_path / "features" / "online.db")}
    assert config["entity_key_serialization_version"] == 3


def test_the_rewind_config_names_the_feature_repo(tmp_path: Path):
    config = yaml.safe_load(rewind_config(tmp_path, "fraud-detector", 9090))
    assert config["features"] == {"repo": str(tmp_path / "features"), "service_tag": "feast.feature_service"}


def test_feature_bug_has_no_target_version():
    scenario = make_scenario("feature-bug", None)
    assert (scenario.name, scenario.target_version, scenario.segments) == ("feature-bug", None, ())
    assert not any(scenario.affects(v, "eu-ios") for v in ("1", "2", "3"))


def test_missing_inputs_become_zero_and_are_listed():
    values, missing = model_inputs({"amount": None, "velocity": float("nan"), "hour": 1.5})
    assert values == {"amount": 0.0, "velocity": 0.0, "account_age": 0.0, "hour": 1.5}
    assert missing == ("amount", "velocity", "account_age")
    with pytest.raises(ValueError, match="twelve"):
        model_inputs({"amount": "twelve"})


def samples(metrics: Metrics, name: str) -> list[dict[str, str]]:
    return [s.labels for family in metrics.registry.collect() for s in family.samples if s.name == name]


def test_the_binding_series_follow_the_binding():
    metrics = Metrics("fraud-detector", "2")
    assert samples(metrics, "rewind_feature_binding_info") == []
    metrics.bind("fraud-detector", "2", "fraud_features", [ViewBinding("txn_features", 0, "aaa", False)])
    metrics.bind("fraud-detector", "2", "fraud_features", [ViewBinding("txn_features", 1, "bbb", False)])
    assert samples(metrics, "rewind_feature_binding_info") == [{
        "model": "fraud-detector", "version": "2", "feature_service": "fraud_features",
        "feature_view": "txn_features", "feature_version": "v1", "udf_sha": "bbb"}]
    metrics.bind("fraud-detector", "2", None, [])
    assert samples(metrics, "rewind_feature_binding_info") == []


def test_every_input_series_exists_before_its_first_value():
    metrics = Metrics("fraud-detector", "2")
    infs = [s for s in samples(metrics, "rewind_feature_value_bucket") if s["le"] == "+Inf"]
    assert len(infs) == 6 * len(FEATURES)
    bounds = sorted({float(s["le"]) for s in samples(metrics, "rewind_feature_value_bucket")})
    assert bounds == [*FEATURE_BUCKETS, math.inf]
    assert len(samples(metrics, "rewind_feature_missing_total")) == 6 * len(FEATURES)
