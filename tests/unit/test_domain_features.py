"""Feature health, binding findings and the diagnosis that tells a feature bug from drift and a regression."""

from __future__ import annotations

import json
import math

import pytest

from console.domain.features import (
    PROBABILITY_LADDER,
    PSI_FLOOR,
    Binding,
    Cause,
    Diagnosis,
    FeatureInput,
    Health,
    HealthCriteria,
    binding_findings,
    diagnose,
    judge_inputs,
    transformation_diff,
)

EXPECTED = (0.005, 0.095, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.095, 0.005)
# The training quantiles of a standard normal feature at the ladder's probabilities (bounds in the feature's units).
BOUNDS = (-2.5758, -1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816, 2.5758, math.inf)
NOW = 1_800_000_000.0
KEY = ("3", "eu", "amount")


def cumulative(counts: list[float], bounds: tuple[float, ...] = BOUNDS) -> list[tuple[float, float]]:
    """Per-bucket counts as Prometheus' cumulative ``le`` buckets, in reverse order (any order is allowed)."""
    running, out = 0.0, []
    for bound, count in zip(bounds, counts, strict=True):
        running += count
        out.append((bound, running))
    return out[::-1]


def judge_one(counts: list[float], missing: float | None = 0.0) -> FeatureInput:
    missing_map = {} if missing is None else {KEY: missing}
    [result] = judge_inputs({KEY: cumulative(counts)}, missing_map, HealthCriteria())
    return result


def psi_by_hand(shares: list[float]) -> float:
    return sum((max(p, PSI_FLOOR) - q) * math.log(max(p, PSI_FLOOR) / q) for p, q in zip(shares, EXPECTED,
                                                                                          strict=True))


# --- judge_inputs --------------------------------------------------------------------------------

def test_the_ladder_gives_the_expected_shares():
    assert len(PROBABILITY_LADDER) == 11
    steps = [b - a for a, b in zip((0.0, *PROBABILITY_LADDER), (*PROBABILITY_LADDER, 1.0), strict=True)]
    assert steps == pytest.approx(EXPECTED)


def test_a_sample_like_training_has_psi_near_zero_and_reads_normal():
    result = judge_one([share * 1000 for share in EXPECTED])
    assert result.psi == pytest.approx(0.0, abs=1e-12)
    assert result.out_of_range == pytest.approx(0.01)
    assert result.missing == 0.0 and result.count == pytest.approx(1000)
    assert result.health is Health.NORMAL
    assert result.reason == ("amount: PSI 0.00, 1% outside the training range (expected 1%), 0% missing, "
                             "1000 values")


def test_psi_of_a_small_hand_computed_shift():
    counts = [share * 1000 for share in EXPECTED]
    counts[2], counts[3] = 50.0, 150.0  # 5 % of the values moved one decile up
    result = judge_one(counts)
    # (0.05 - 0.1) ln(0.5) + (0.15 - 0.1) ln(1.5) = 0.034657 + 0.020273
    assert result.psi == pytest.approx(0.054931, abs=1e-6)
    assert result.health is Health.NORMAL


def test_a_shifted_sample_has_psi_above_one_and_is_abnormal():
    counts = [0.0] * 12
    counts[-1], counts[-2] = 404.0, 8.0  # nearly everything above the training range
    result = judge_one(counts)
    assert result.psi == pytest.approx(psi_by_hand([c / 412 for c in counts]))
    assert result.psi is not None and result.psi > 1.0
    assert result.out_of_range == pytest.approx(404 / 412)
    assert result.health is Health.ABNORMAL
    assert result.reason.startswith(f"amount: PSI {result.psi:.2f}, 98% outside the training range (expected 1%), "
                                    f"0% missing, 412 values")
    assert "PSI > 0.25" in result.reason


def test_an_empty_bucket_counts_as_the_floor_not_infinity():
    counts = [share * 1000 for share in EXPECTED]
    counts[0], counts[1] = 0.0, 100.0  # the bottom tail empty
    result = judge_one(counts)
    assert result.psi is not None and math.isfinite(result.psi)
    assert result.psi == pytest.approx(psi_by_hand([c / 1000 for c in counts]))
    assert result.psi < 0.05


def test_the_out_of_range_share_alone_makes_a_window_abnormal():
    counts = [share * 1000 for share in EXPECTED]
    counts[0] += 25.0
    counts[-1] += 25.0
    counts[5] -= 50.0
    result = judge_one(counts)
    assert result.out_of_range == pytest.approx(0.06)
    assert result.psi is not None and result.psi < 0.25
    assert result.health is Health.ABNORMAL
    assert "6% outside the training range" in result.reason and "outside > 5%" in result.reason


def test_missing_share_over_the_limit_is_abnormal():
    result = judge_one([share * 1000 for share in EXPECTED], missing=100.0)
    assert result.missing == pytest.approx(100 / 1100)
    assert result.health is Health.ABNORMAL
    assert "9.1% missing" in result.reason


def test_missing_not_reported_says_so():
    result = judge_one([share * 1000 for share in EXPECTED], missing=None)
    assert result.missing is None and result.health is Health.NORMAL
    assert "missing not reported" in result.reason


def test_criteria_are_checked():
    with pytest.raises(ValueError, match="min_count"):
        HealthCriteria(min_count=0)
    with pytest.raises(ValueError, match="missing_max"):
        HealthCriteria(missing_max=1.5)


def test_too_few_values_is_no_data_and_says_how_many():
    result = judge_one([share * 40 for share in EXPECTED])
    assert result.health is Health.NO_DATA
    assert result.psi is None and result.out_of_range is None
    assert "too few values to judge (40 of ≥ 50 needed)" in result.reason


def test_a_thin_window_that_is_mostly_missing_is_abnormal():
    result = judge_one([0.0] * 12, missing=300.0)
    assert result.health is Health.ABNORMAL
    assert result.missing == 1.0 and result.psi is None
    assert "100% missing" in result.reason


def test_bounds_that_are_not_the_ladder_are_no_data():
    too_few = (1.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, math.inf)
    buckets = cumulative([share * 1000 for share in EXPECTED[:9]], too_few)
    without_inf = cumulative([share * 1000 for share in EXPECTED])[1:]
    results = judge_inputs({KEY: buckets, ("3", "us", "amount"): without_inf}, {})
    assert [r.health for r in results] == [Health.NO_DATA, Health.NO_DATA]
    assert all("not the 11 training quantiles" in r.reason for r in results)
    assert "9 bucket bounds (1, 5, 10, 20, ...)" in results[0].reason


def test_nan_counts_are_no_data():
    buckets = [(bound, math.nan) for bound in BOUNDS]
    [result] = judge_inputs({KEY: buckets}, {KEY: 0.0})
    assert result.health is Health.NO_DATA and "NaN" in result.reason and math.isnan(result.count)


def test_a_key_with_missing_counts_only_is_no_data():
    [result] = judge_inputs({}, {KEY: 3.0})
    assert result.health is Health.NO_DATA and "no histogram" in result.reason


def test_inputs_are_sorted_by_version_segment_feature():
    good = cumulative([share * 100 for share in EXPECTED])
    keys = [("10", "eu", "amount"), ("2", "us", "age"), ("2", "eu", "merchant"), ("2", "eu", "amount")]
    results = judge_inputs(dict.fromkeys(keys, good), {})
    assert [(r.version, r.segment, r.feature) for r in results] == [
        ("2", "eu", "amount"), ("2", "eu", "merchant"), ("2", "us", "age"), ("10", "eu", "amount")]


# --- binding_findings ----------------------------------------------------------------------------

def bind(version: str, view_version: str = "v1", sha: str = "aaaaaaaaaaaa", service: str = "fraud",
         since: float | None = None, view: str = "txn_features") -> Binding:
    return Binding(version, service, view, view_version, sha, since)


def test_bindings_that_agree_give_no_findings():
    assert binding_findings([bind("1"), bind("2")], [bind("1", since=NOW), bind("2", since=NOW)]) == []


def test_a_declared_latest_matches_any_observed_version():
    assert binding_findings([bind("1", "latest", "")], [bind("1", "v7", "bbbbbbbbbbbb")]) == []


def test_latest_still_compares_shas_when_both_known():
    [line] = binding_findings([bind("1", "latest", "aaaaaaaaaaaa")], [bind("1", "v7", "bbbbbbbbbbbb")])
    assert "sha bbbbbbbbbbbb" in line and "sha aaaaaaaaaaaa" in line


def test_each_difference_is_a_line():
    findings = binding_findings([bind("3", "v1", "aaaaaaaaaaaa", "fraud_v3")],
                                [bind("3", "v2", "bbbbbbbbbbbb", "fraud_v4")])
    assert findings == [
        "version 3, txn_features: servers read through fraud_v4, the registry declares fraud_v3",
        "version 3, txn_features: servers read v2, the registry declares v1",
        "version 3, txn_features: servers run transformation sha bbbbbbbbbbbb, the registry declares sha aaaaaaaaaaaa",
    ]


def test_unknown_shas_and_versions_are_not_compared():
    assert binding_findings([bind("1", "", "")], [bind("1", "v2", "bbbbbbbbbbbb")]) == []
    assert binding_findings([bind("1", "v2", "aaaaaaaaaaaa")], [bind("1", "v2", "")]) == []


def test_declared_but_unreported_and_reported_but_undeclared():
    findings = binding_findings([bind("1"), bind("2", view="user_features")], [bind("1"), bind("2")])
    assert findings == [
        "version 2, txn_features: servers read txn_features v1 (sha aaaaaaaaaaaa) through fraud, "
        "which no registry tag declares",
        "version 2, user_features: declared user_features v1 (sha aaaaaaaaaaaa) through fraud, "
        "but no server reports reading it",
    ]


# --- diagnose ------------------------------------------------------------------------------------

def fine(version: str, segment: str = "eu", feature: str = "amount") -> FeatureInput:
    return FeatureInput(version, segment, feature, 412.0, 0.02, 0.01, 0.0, Health.NORMAL,
                        f"{feature}: PSI 0.02, 1% outside the training range (expected 1%), 0% missing, 412 values")


def broken(version: str, segment: str = "eu", feature: str = "amount") -> FeatureInput:
    return FeatureInput(version, segment, feature, 412.0, 4.21, 0.98, 0.0, Health.ABNORMAL,
                        f"{feature}: PSI 4.21, 98% outside the training range (expected 1%), 0% missing, "
                        f"412 values (abnormal: PSI > 0.25, outside > 5%)")


def thin(version: str, segment: str = "eu", feature: str = "amount") -> FeatureInput:
    return FeatureInput(version, segment, feature, 12.0, None, None, 0.0, Health.NO_DATA,
                        f"{feature}: too few values to judge (12 of ≥ 50 needed), 0% missing")


EU, BOTH = frozenset({"eu"}), frozenset({"eu", "us"})
OLD = NOW - 86_400.0
TWO_MIN_AGO = NOW - 120.0
SHA_NEW = "2f78b0c1e2a3"


def test_no_breach_is_no_diagnosis():
    assert diagnose({}, {"1": BOTH, "2": BOTH}, [fine("1"), fine("2")], [bind("1", since=OLD)], NOW) is None
    assert diagnose({"1": frozenset()}, {"1": BOTH, "2": BOTH}, [], [], NOW) is None


def test_one_version_breaching_with_normal_inputs_is_a_model_regression():
    result = diagnose({"2": EU}, {"1": BOTH, "2": BOTH}, [fine("1"), fine("2")],
                      [bind("1", since=OLD), bind("2", since=OLD)], NOW)
    assert result is not None and result.cause is Cause.MODEL
    assert result.versions == ("2",) and result.segments == ("eu",)
    assert result.summary.startswith("model regression: version 2 breaches in eu")
    assert "rewind rollback" in result.advice and "version 1" in result.advice
    assert any("version 1 passes in eu" in line for line in result.evidence)
    assert result.suspect is None and result.missing == ()


def test_a_regression_without_any_feature_telemetry_is_still_the_model():
    result = diagnose({"2": EU}, {"1": BOTH, "2": BOTH}, [], [], NOW, features_known=False)
    assert result is not None and result.cause is Cause.MODEL
    assert any("no feature telemetry" in line for line in result.evidence)


def test_every_version_breaching_with_no_recent_feature_release_is_drift():
    result = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [broken("1"), broken("2"), fine("1", "us")],
                      [bind("1", since=OLD), bind("2", since=OLD)], NOW)
    assert result is not None and result.cause is Cause.WORLD
    assert result.versions == ("1", "2") and result.segments == ("eu",)
    assert "do not roll back" in result.advice
    assert any("inputs shift" in line and "PSI 4.21" in line for line in result.evidence)
    assert any("30 min" in line for line in result.evidence)


def test_every_version_breaching_after_a_feature_release_with_abnormal_inputs_is_a_feature_bug():
    observed = [bind("1", "v2", SHA_NEW, since=TWO_MIN_AGO), bind("2", "v2", SHA_NEW, since=TWO_MIN_AGO + 5)]
    result = diagnose({"1": BOTH, "2": BOTH}, {"1": BOTH, "2": BOTH},
                      [broken("1"), broken("2", "us"), fine("1", "us")], observed, NOW)
    assert result is not None and result.cause is Cause.FEATURE
    assert result.summary.startswith(f"feature bug: txn_features v2 (sha {SHA_NEW})")
    assert "\n" not in result.summary
    assert result.versions == ("1", "2") and result.segments == ("eu", "us")
    assert result.suspect == observed[0]
    assert "rewind features rollback" in result.advice and "do not roll back the model" in result.advice
    evidence = "\n".join(result.evidence)
    assert "versions 1, 2 read txn_features v2" in evidence
    assert "2 min ago" in evidence and "PSI 4.21" in evidence and "98% outside" in evidence


def test_a_feature_bug_on_a_subset_of_versions_spares_the_others():
    observed = [bind("1", "v1", "aaaaaaaaaaaa", since=OLD),
                bind("2", "v2", SHA_NEW, since=TWO_MIN_AGO), bind("3", "v2", SHA_NEW, since=TWO_MIN_AGO)]
    result = diagnose({"2": EU, "3": EU}, {"1": BOTH, "2": BOTH, "3": BOTH},
                      [fine("1"), broken("2"), broken("3")], observed, NOW)
    assert result is not None and result.cause is Cause.FEATURE
    assert result.versions == ("2", "3")
    assert result.suspect is not None and result.suspect.view_version == "v2"
    assert any("version 1 reads other feature versions and does not breach" in line for line in result.evidence)


def test_an_old_feature_version_is_not_blamed():
    observed = [bind("1", "v2", SHA_NEW, since=NOW - 7200), bind("2", "v2", SHA_NEW, since=NOW - 7200)]
    result = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [broken("1"), broken("2")], observed, NOW)
    assert result is not None and result.cause is Cause.WORLD


def test_a_lone_judged_version_is_unsure():
    result = diagnose({"2": EU}, {"2": BOTH}, [fine("2")], [bind("2", since=OLD)], NOW)
    assert result is not None and result.cause is Cause.UNSURE
    assert result.summary == "not sure: only version 2 has a verdict, nothing to compare with"
    assert result.missing and "second version" in result.missing[0]


def test_a_lone_version_on_a_fresh_feature_version_with_abnormal_inputs_is_a_feature_bug():
    # After a model rollback (the wrong fix) only one version serves: its broken inputs and the feature
    # version that landed two minutes ago still blame the features, and rolling back further would not help.
    result = diagnose({"2": EU}, {"2": BOTH}, [broken("2")], [bind("2", "v2", SHA_NEW, since=TWO_MIN_AGO)], NOW)
    assert result is not None and result.cause is Cause.FEATURE
    assert result.versions == ("2",) and result.suspect is not None and result.suspect.view_version == "v2"
    old_binding = diagnose({"2": EU}, {"2": BOTH}, [broken("2")], [bind("2", since=OLD)], NOW)
    assert old_binding is not None and old_binding.cause is Cause.UNSURE


def test_a_reader_with_too_few_values_to_judge_does_not_clear_the_features():
    # The challenger's minute holds too few values yet; the champion's inputs are broken: still a feature bug.
    observed = [bind("1", "v2", SHA_NEW, since=TWO_MIN_AGO), bind("2", "v2", SHA_NEW, since=TWO_MIN_AGO)]
    result = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [broken("1"), thin("2")], observed, NOW)
    assert result is not None and result.cause is Cause.FEATURE
    # A reader whose inputs were judged normal does clear it: not a feature bug.
    cleared = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [broken("1"), fine("2")], observed, NOW)
    assert cleared is not None and cleared.cause is not Cause.FEATURE


def test_every_version_breaching_without_feature_telemetry_is_unsure():
    result = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [], [], NOW, features_known=False)
    assert result is not None and result.cause is Cause.UNSURE
    assert "no feature telemetry: cannot tell drift from a feature bug" in result.summary
    assert result.missing


def test_a_recent_feature_release_with_normal_inputs_is_unsure():
    observed = [bind("1", "v2", SHA_NEW, since=TWO_MIN_AGO), bind("2", "v2", SHA_NEW, since=TWO_MIN_AGO)]
    result = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [fine("1"), fine("2")], observed, NOW)
    assert result is not None and result.cause is Cause.UNSURE
    assert "landed recently, but inputs look normal" in result.summary
    assert any("diff its source" in line for line in result.missing)
    assert any("2 min ago" in line for line in result.evidence)


def test_one_version_breaching_alone_with_abnormal_inputs_is_unsure():
    result = diagnose({"2": EU}, {"1": BOTH, "2": BOTH}, [fine("1"), broken("2")],
                      [bind("1", since=OLD), bind("2", since=OLD)], NOW)
    assert result is not None and result.cause is Cause.UNSURE
    assert "inputs are abnormal" in result.summary
    assert result.missing and "binding" in result.missing[0]


def test_too_few_input_values_to_judge_is_unsure():
    regression_shape = diagnose({"2": EU}, {"1": BOTH, "2": BOTH}, [fine("1"), thin("2")],
                                [bind("1", since=OLD), bind("2", since=OLD)], NOW)
    assert regression_shape is not None and regression_shape.cause is Cause.UNSURE
    assert "too thin" in regression_shape.summary and "12 of ≥ 50" in regression_shape.missing[0]
    observed = [bind("1", "v2", SHA_NEW, since=TWO_MIN_AGO), bind("2", "v2", SHA_NEW, since=TWO_MIN_AGO)]
    release_shape = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [thin("1"), thin("2")], observed, NOW)
    assert release_shape is not None and release_shape.cause is Cause.UNSURE
    assert "too thin" in release_shape.summary and "enough input values" in release_shape.missing[0]


def test_unsure_always_says_what_is_missing():
    cases = [
        diagnose({"2": EU}, {"2": BOTH}, [], [], NOW),
        diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [], [], NOW, features_known=False),
        diagnose({"1": EU, "2": BOTH}, {"1": BOTH, "2": BOTH}, [fine("1"), fine("2")],
                 [bind("1", since=OLD), bind("2", since=OLD)], NOW),  # all alike in eu, only 2 in us
        diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [fine("1")], [], NOW),  # no binding reported
    ]
    for result in cases:
        assert result is not None and result.cause is Cause.UNSURE and result.missing, result


def test_to_dict_is_stable_json():
    observed = [bind("1", "v2", SHA_NEW, "fraud_v1", since=TWO_MIN_AGO),
                bind("2", "v2", SHA_NEW, "fraud_v1", since=TWO_MIN_AGO)]
    result = diagnose({"1": EU, "2": EU}, {"1": BOTH, "2": BOTH}, [broken("1"), broken("2")], observed, NOW)
    assert result is not None
    document = json.loads(json.dumps(result.to_dict()))
    assert list(document) == ["cause", "summary", "evidence", "missing", "versions", "segments", "suspect", "advice"]
    assert document["cause"] == "feature" and document["versions"] == ["1", "2"] and document["segments"] == ["eu"]
    assert document["suspect"] == {"feature_service": "fraud_v1", "view": "txn_features", "view_version": "v2",
                                   "udf_sha": SHA_NEW, "since": TWO_MIN_AGO}
    assert isinstance(document["evidence"], list) and document["missing"] == []
    plain = Diagnosis(Cause.MODEL, "model regression", ("a",)).to_dict()
    assert plain["suspect"] is None and plain["missing"] == [] and plain["advice"] == ""


def test_transformation_diff_is_unified_lines_without_newlines():
    old = "def amount(df):\n    return df['amount']\n"
    new = "def amount(df):\n    return df['amount'] * 100\n"
    lines = transformation_diff(old, new, "txn_features v1", "txn_features v2")
    assert lines[:2] == ["--- txn_features v1", "+++ txn_features v2"]
    assert "-    return df['amount']" in lines and "+    return df['amount'] * 100" in lines
    assert not any(line.endswith("\n") for line in lines)
    assert transformation_diff(old, old, "a", "b") == []


def test_a_thin_window_over_the_psi_line_by_chance_reads_normal_and_says_so():
    # 56 values from training's own distribution, unevenly spread as a minute of a small segment can be:
    # PSI 0.8 by chance alone. Chi-square says chance explains it; a shift of the same size on 600 does not.
    counts = [1, 8, 9, 2, 9, 3, 2, 8, 3, 4, 6, 1]
    thin = judge_one([float(c) for c in counts])
    assert thin.psi is not None and thin.psi > 0.25
    assert thin.health is Health.NORMAL and "within chance on 56 values" in thin.reason
    thick = judge_one([c * 10.0 for c in counts])
    assert thick.health is Health.ABNORMAL and "PSI > 0.25" in thick.reason


def test_the_chi_square_tail_matches_its_tables():
    from console.domain.stats import chi_square_survival

    assert chi_square_survival(19.675, 11) == pytest.approx(0.05, rel=1e-4)
    assert chi_square_survival(31.264, 11) == pytest.approx(0.001, rel=1e-4)
    assert chi_square_survival(3.0, 2) == pytest.approx(math.exp(-1.5), rel=1e-9)
    assert chi_square_survival(0.0, 11) == 1.0
