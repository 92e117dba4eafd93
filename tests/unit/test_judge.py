"""The statistical judge: ratios on their counts' intervals, other metrics on persistence.

Each test states what a responder relies on: evidence in small cells is not thrown
away, chance is not called a breach, and every reason says the evidence in words.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from console.config import parse_config
from console.domain.errors import ConfigError
from console.domain.metrics import (
    CellCounts,
    Criteria,
    Direction,
    MetricKind,
    MetricSpec,
    QueryResult,
    Unit,
    combine_counts,
    counts_query,
    evaluation_times,
    format_count,
    refresh_query,
)
from console.domain.stats import binomial_tail_at_least, difference_interval, exact_interval
from console.domain.verdicts import State, build_matrix, overall_state, persistence_judge, ratio_judge

ERRORS = MetricSpec("error_rate", "errors", 'e{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_WORSE,
                    Criteria(threshold=0.05, max_delta=0.03, min_traffic=0.5), kind=MetricKind.RATIO,
                    numerator='sum by (version, segment) (increase(err{model="$model"}[$window]))',
                    denominator='sum by (version, segment) (increase(req{model="$model"}[$window]))')
ACCURACY = MetricSpec("accuracy", "accuracy", 'a{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_BETTER,
                      Criteria(threshold=0.85, max_delta=0.08, min_traffic=0.5), kind=MetricKind.RATIO,
                      numerator='sum(increase(ok{model="$model"}[$window]))',
                      denominator='sum(increase(labels{model="$model"}[$window]))', counted="labels")
P95 = MetricSpec("latency_p95", "p95", 'p{model="$model"}', Unit.SECONDS, Direction.HIGHER_IS_WORSE,
                 Criteria(threshold=0.25, max_delta=0.1, min_traffic=0.5, evaluations=4, step_s=15.0),
                 kind=MetricKind.QUANTILE)
RATE = MetricSpec("request_rate", "req/s", 'r{model="$model"}', Unit.PER_SECOND, Direction.HIGHER_IS_WORSE,
                  kind=MetricKind.RATE)


def ratio_state(spec, errors, requests, traffic=10.0, base=None):
    judge = ratio_judge(spec)
    counts = CellCounts(errors, requests)
    base_counts = None if base is None else CellCounts(*base)
    return judge(errors / requests, counts, base_counts, base is not None, traffic)


def test_the_exact_interval_matches_the_published_values():
    assert binomial_tail_at_least(2.0, 4.0, 0.4) == pytest.approx(0.5248, abs=1e-4)  # I_0.4(2, 3)
    # Newcombe (1998), table I, method 4 (Clopper-Pearson): 81 of 263 gives 0.2527 to 0.3676.
    assert exact_interval(81, 263, 0.95) == pytest.approx((0.2527, 0.3676), abs=5e-4)
    # 0 of 30: the "rule of three" region, exactly 1 - 0.025 ** (1 / 30).
    low, high = exact_interval(0, 30, 0.95)
    assert low == 0 and high == pytest.approx(1 - 0.025 ** (1 / 30), abs=1e-6)
    # Fractional counts from increase() are defined, and between their neighbours.
    assert exact_interval(5, 30, 0.95)[0] < exact_interval(5.5, 30, 0.95)[0] < exact_interval(6, 30, 0.95)[0]
    low, high = difference_interval(56, 70, 48, 80, 0.95)
    assert low < 0.2 - 0.14 and high > 0.2 + 0.13  # at least as wide as Newcombe's 0.0524 to 0.3339


def test_a_small_cell_with_many_failures_breaches_whatever_its_traffic():
    # The eu-web cell: 17 failures in 29 requests at 0.49 requests/s, under min_traffic 0.5.
    assert ratio_state(ERRORS, 17, 29, traffic=0.49) is State.BREACH
    # And 20 requests a minute at 0.33/s with half of them failing.
    assert ratio_state(ERRORS, 10, 20, traffic=0.33) is State.BREACH


def test_an_exceedance_chance_could_explain_is_suspect_never_breach_nor_pass():
    # 3 errors in 40 requests is 7.5 %, over 5 %, but the interval reaches down to 2.6 %.
    assert ratio_state(ERRORS, 3, 40) is State.SUSPECT
    # Accuracy 80 % of 40 labels is under 85 %, but 95 % intervals cross back over it.
    assert ratio_state(ACCURACY, 32, 40) is State.SUSPECT
    assert ratio_state(ACCURACY, 20, 40) is State.BREACH


def test_few_requests_that_cannot_decide_are_low_traffic_and_enough_counts_pass():
    assert ratio_state(ERRORS, 0, 20, traffic=0.33) is State.LOW_TRAFFIC  # 0 of 20: up to 16 % is possible
    assert ratio_state(ERRORS, 0, 200, traffic=0.33) is State.PASS        # 0 of 200: at most 1.9 %
    assert ratio_state(ERRORS, 0, 20, traffic=5.0) is State.PASS          # traffic enough for a point estimate


def test_the_delta_is_tested_against_the_stable_version_counts():
    # 4 % is under the 5 % threshold but 4 pt over a stable 0 %: in 50 requests that could be chance.
    assert ratio_state(ERRORS, 2, 50, base=(0, 500)) is State.SUSPECT
    assert ratio_state(ERRORS, 45, 1000, base=(0, 5000)) is State.BREACH  # 4.5 %, at least 3.3 pt worse
    # Accuracy 90 % against a stable 98 %: 8 pt worse at the limit, over it only with certainty.
    assert ratio_state(ACCURACY, 80, 100, base=(980, 1000)) is State.BREACH
    assert ratio_state(ACCURACY, 86, 100, base=(980, 1000)) is State.SUSPECT


def test_chance_on_a_healthy_cell_is_not_called_a_breach():
    """Binomial draws of cells sitting exactly on the threshold: breaches at most at the test's error rate."""
    rng = random.Random(20261201)
    judge = ratio_judge(ERRORS)
    breaches = suspects = 0
    trials = 3000
    for _ in range(trials):
        n = rng.randint(20, 60)
        errors = sum(rng.random() < 0.05 for _ in range(n))
        state = judge(errors / n, CellCounts(errors, n), None, False, 0.5)
        breaches += state is State.BREACH
        suspects += state is State.SUSPECT
    # Two-sided 95 % intervals: a one-sided false breach rate of at most 2.5 % at the line itself.
    assert breaches / trials <= 0.025
    assert suspects / trials > 0.2  # over the line by chance is shown as such, not hidden


def test_reasons_say_the_evidence_in_words():
    results = {"error_rate": QueryResult("error_rate", "q", 0.0, raw={("3", "eu-web"): "0.147"},
                                         values={("3", "eu-web"): 9 / 61},
                                         counts={("3", "eu-web"): CellCounts(9, 61)})}
    matrix = build_matrix((ERRORS,), results, ["3"], None, None)
    verdict = matrix.cell("error_rate", "3", "eu-web")
    assert verdict.state is State.BREACH
    assert verdict.reason == ("errors 14.8% > 5.0% (95% interval 7.0–26.2%, 61 requests); "
                              "no stable version to compare with")
    assert verdict.counts == CellCounts(9, 61) and verdict.interval == pytest.approx((0.0698, 0.2617), abs=1e-4)

    results["error_rate"] = QueryResult("error_rate", "q", 0.0, raw={("3", "eu-web"): "0.075"},
                                        values={("3", "eu-web"): 0.075}, counts={("3", "eu-web"): CellCounts(3, 40)})
    verdict = build_matrix((ERRORS,), results, ["3"], None, None).cell("error_rate", "3", "eu-web")
    assert verdict.state is State.SUSPECT
    assert verdict.reason.startswith("errors 7.5% > 5.0% (95% interval 1.6–20.4%, 40 requests): not significant yet")


def test_counts_extrapolated_by_prometheus_are_told_in_whole_numbers():
    # increase() extrapolates to the window's edges: 9.412 errors of 61.347 requests are read "61 requests".
    results = {"error_rate": QueryResult("error_rate", "q", 0.0, raw={("3", "eu-web"): "0.153"},
                                         values={("3", "eu-web"): 9.412 / 61.347},
                                         counts={("3", "eu-web"): CellCounts(9.412, 61.347)})}
    verdict = build_matrix((ERRORS,), results, ["3"], None, None).cell("error_rate", "3", "eu-web")
    assert "61 requests" in verdict.reason and "61.3" not in verdict.reason, verdict.reason
    assert verdict.counts == CellCounts(9.412, 61.347), "the raw counts are kept (the journal has them)"
    assert format_count(702.712) == "703" and format_count(0.0) == "0"


def p95_result(recent: dict) -> QueryResult:
    values = {key: row[-1] for key, row in recent.items() if row[-1] is not None}
    return QueryResult("latency_p95", "q", 100.0, raw={k: repr(v) for k, v in values.items()}, values=values,
                       recent=recent)


def test_metrics_without_counts_breach_only_when_over_the_line_in_every_recent_evaluation():
    traffic = QueryResult("request_rate", "q", 100.0, raw={("3", "eu"): "5"}, values={("3", "eu"): 5.0})
    for recent, state, words in [
        ((0.31, 0.32, 0.30, 0.31), State.BREACH, "over the line in 4 of the last 4 evaluations (15 s apart)"),
        ((0.03, 0.04, 0.30, 0.31), State.SUSPECT, "over the line in 2 of the last 4 evaluations (15 s apart), "
                                                  "not persistent yet"),
        ((None, 0.31, 0.30, 0.31), State.SUSPECT, "in 3 of the last 4"),
        ((0.31, 0.32, 0.30, 0.04), State.PASS, "40 ms ≤ 250 ms"),
    ]:
        matrix = build_matrix((RATE, P95), {"request_rate": traffic, "latency_p95": p95_result({("3", "eu"): recent})},
                              ["3"], None, "request_rate")
        verdict = matrix.cell("latency_p95", "3", "eu")
        assert verdict.state is state, recent
        assert words in verdict.reason, verdict.reason


def test_persistence_compares_each_evaluation_with_the_stable_version_at_the_same_time():
    judge = persistence_judge(P95)
    # +120 ms over the stable version each time: a breach on the delta alone, under the 250 ms threshold.
    assert judge((0.15, 0.16, 0.15, 0.16), (0.03, 0.03, 0.04, 0.03), True, 5.0) is State.BREACH
    # The stable version was as slow a moment ago: not persistent.
    assert judge((0.15, 0.16, 0.15, 0.16), (0.10, 0.12, 0.04, 0.03), True, 5.0) is State.SUSPECT
    assert judge((0.31, 0.32, 0.30, 0.31), None, False, 0.1) is State.LOW_TRAFFIC


def test_one_query_per_metric_reads_both_counts_of_a_ratio():
    query = counts_query(ERRORS, "fraud", "1m")
    assert query.count("increase(") == 2 and 'label_replace(' in query and '"rewind_part"' in query
    assert refresh_query(ERRORS, "fraud", "1m") == query
    assert refresh_query(RATE, "fraud", "1m") == 'r{model="fraud"}'
    assert evaluation_times(P95, 100.0) == (55.0, 70.0, 85.0, 100.0)


@pytest.mark.parametrize(("numerators", "denominators", "problem"), [
    ({("3", "eu"): 5.0}, {("3", "eu"): -1.0}, "negative count"),
    ({("3", "eu"): float("nan")}, {("3", "eu"): 10.0}, "NaN"),
    ({("3", "eu"): 12.0}, {("3", "eu"): 10.0}, "numerator exceeds the denominator"),
    ({("3", "us"): 1.0}, {("3", "eu"): 10.0, ("3", "us"): 10.0}, "numerator has no series for this cell"),
])
def test_counts_that_cannot_be_used_are_no_data_with_the_reason(numerators, denominators, problem):
    values, counts, problems, error = combine_counts(ERRORS, numerators, denominators)
    assert error is None and values[("3", "eu")] is None and ("3", "eu") not in counts
    assert problem in problems[("3", "eu")] and "metrics.catalogue[error_rate].counts" in problems[("3", "eu")]
    results = {"error_rate": QueryResult("error_rate", "q", 0.0, raw={("3", "eu"): "NaN"}, values=values,
                                         counts=counts, problems=problems)}
    verdict = build_matrix((ERRORS,), results, ["3"], None, None).cell("error_rate", "3", "eu")
    assert verdict.state is State.NO_DATA and problem in verdict.reason


def test_mismatched_labels_or_a_missing_denominator_fail_the_metric_by_name():
    *_, error = combine_counts(ERRORS, {("3", "eu"): 1.0, ("3", "us"): 1.0}, {("3", "eu"): 10.0})
    assert "numerator has 1 cell(s) the denominator lacks (first: v3 us)" in error
    assert "metrics.catalogue[error_rate].counts" in error
    *_, error = combine_counts(ERRORS, {("3", "eu"): 1.0}, {})
    assert "denominator query returns no series" in error and "[error_rate].counts.denominator" in error
    *_, error = combine_counts(ERRORS, {}, {("3", "eu"): 1.0})
    assert "numerator query returns no series" in error and "[error_rate].counts.numerator" in error
    # Neither: no traffic in the window. Every cell is no data, and says which counts it lacks.
    assert combine_counts(ERRORS, {}, {}) == ({}, {}, {}, None)
    verdict = build_matrix((ERRORS,), {"error_rate": QueryResult("error_rate", "q", 0.0)}, ["3"], None, None,
                           segments=["eu"]).cell("error_rate", "3", "eu")
    assert verdict.state is State.NO_DATA and "metrics.catalogue[error_rate].counts" in verdict.reason


def test_a_group_takes_its_most_telling_state():
    assert overall_state({State.PASS, State.SUSPECT, State.LOW_TRAFFIC}) is State.SUSPECT
    assert overall_state({State.PASS, State.SUSPECT, State.BREACH}) is State.BREACH
    assert overall_state(set()) is State.NO_DATA


CATALOGUE_BASE = {
    "registry": {"tracking_uri": "sqlite:///x.db"},
    "router": {"socket": "/tmp/x.sock", "backends": {"m": "be_m"}},
}


def config_with(metric: dict, judge: dict | None = None) -> dict:
    metrics = {"url": "http://127.0.0.1:9090", "catalogue": [metric]}
    if judge is not None:
        metrics["judge"] = judge
    return {**CATALOGUE_BASE, "metrics": metrics}


RATIO_METRIC = {"name": "errors", "title": "errors", "unit": "ratio", "kind": "ratio", "query": 'q{model="$model"}',
                "counts": {"numerator": 'increase(e{model="$model"}[$window])',
                           "denominator": 'increase(r{model="$model"}[$window])'},
                "criteria": {"threshold": 0.05}}


@pytest.mark.parametrize(("change", "judge", "message"), [
    ({}, {"confidence": 1.0}, "metrics.judge.confidence: 1 is not a confidence between 0.5 and 1"),
    ({}, {"confidence": 0.5}, "metrics.judge.confidence: 0.5 is not a confidence between 0.5 and 1"),
    ({"criteria": {"threshold": 0.05, "confidence": 0.3}}, None, "criteria.confidence: 0.3 is not a confidence"),
    ({}, {"step": "fast"}, "metrics.judge.step: 'fast' is not a PromQL duration"),
    ({"counts": None}, None, "metric 'errors' is a ratio with criteria: give its counts"),
    ({"kind": "quantile"}, None, "metric 'errors' has counts but is a quantile"),
    ({"counts": {"numerator": 'e{model="$model"}', "denominator": 'increase(r{model="$model"}[$window])'}}, None,
     "counts.numerator: the query must count over $window"),
])
def test_bad_judging_settings_are_one_line_naming_the_setting(change, judge, message):
    metric = {**RATIO_METRIC, **change}
    if metric.get("counts") is None:
        metric.pop("counts")
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with(metric, judge), "rewind.yaml", environ={})
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_judging_defaults_reach_every_metric_and_criteria_override_them():
    config = parse_config(config_with(RATIO_METRIC, {"confidence": 0.9, "evaluations": 3, "step": "20s"}),
                          "rewind.yaml", environ={})
    spec = config.metrics.specs()[0]
    assert spec.counts and spec.criteria.confidence == 0.9 and spec.criteria.evaluations == 3
    assert spec.criteria.step_s == 20.0
    override = {**RATIO_METRIC, "criteria": {"threshold": 0.05, "confidence": 0.99}}
    assert parse_config(config_with(override), "rewind.yaml", environ={}).metrics.specs()[0].criteria.confidence == 0.99


def test_exports_state_each_criterion_in_words():
    from console.domain.metrics import criterion_document, criterion_sentence

    assert criterion_sentence(criterion_document(ERRORS), "ratio", "higher_is_worse") == (
        "breach above 5.0%, or more than +3.0 pt above the stable version; with 95% confidence on the counts; "
        "point values trusted from 0.5/s of traffic")
    assert criterion_sentence(criterion_document(ACCURACY), "ratio", "higher_is_better").startswith(
        "breach below 85.0%, or more than -8.0 pt below the stable version")
    assert criterion_sentence(criterion_document(P95), "seconds", "higher_is_worse") == (
        "breach above 250 ms, or more than +100 ms above the stable version; in each of 4 evaluations 15 s apart; "
        "point values trusted from 0.5/s of traffic")
    assert criterion_sentence({"threshold": None, "max_delta": None}, "ratio", None) == "none (shown for information)"


def test_the_history_is_judged_as_a_refresh_would_judge_it():
    from console.domain.metrics import criterion_document
    from console.domain.verdicts import history_breaches

    def payload(spec, series, stable="2"):
        return {"metric": spec.name, "title": spec.title, "unit": str(spec.unit), "direction": str(spec.direction),
                "kind": str(spec.kind), "criterion": criterion_document(spec), "stable_version": stable,
                "start": 0.0, "step": 5.0, "series": series}

    # v3: one point at 7.5 % from 3 errors in 40 requests (chance), later a run confirmed by 20 of 60.
    v3 = {"version": "3", "segment": "eu", "values": [0.0, 0.075, 0.0, 0.0, 0.10, 0.2, 0.33, 0.0],
          "numerators": [0, 3, 0, 0, 4, 10, 20, 0], "denominators": [40, 40, 40, 40, 40, 50, 60, 40]}
    v2 = {"version": "2", "segment": "eu", "values": [0.0] * 8, "numerators": [0] * 8, "denominators": [400] * 8}
    judged = history_breaches(payload(ERRORS, [v2, v3]))
    # Points 5 and 6 are significant; point 4 (4 of 40) is the start of their excursion; point 1 never was.
    assert judged == {("3", "eu"): [4, 5, 6]}

    # p95: over 250 ms for 2 points (10 s) is not persistent; over it for 4 evaluations 15 s apart is.
    traffic = {"start": 0.0, "step": 5.0, "series": [{"version": "3", "segment": "eu", "values": [5.0] * 16}]}
    p95 = {"version": "3", "segment": "eu",
           "values": [0.03, 0.3, 0.3, 0.03] + [0.03] * 2 + [0.3] * 10}
    assert history_breaches(payload(P95, [p95], stable=None), traffic) == {("3", "eu"): list(range(6, 16))}
    # Without traffic for the cell, a point value from little traffic is never called a breach.
    assert history_breaches(payload(P95, [p95], stable=None)) == {}
    # An old payload (no kind, no evaluations) is judged on its instant values.
    old = {"metric": "x", "unit": "ratio", "criterion": {"threshold": 0.05}, "start": 0.0, "step": 5.0,
           "series": [{"version": "3", "segment": "eu", "values": [0.01, 0.09]}]}
    assert history_breaches(old) == {("3", "eu"): [1]}


def test_the_bound_tests_agree_with_the_interval_they_stand_for():
    from console.domain.stats import lower_bound_above, upper_bound_above

    rng = random.Random(7)
    for _ in range(4000):
        n = rng.choice([5, 20, 61, 400, 5000]) + rng.random()
        x = rng.random() * n if rng.random() < 0.9 else rng.choice([0.0, n])
        level = rng.random()
        low, high = exact_interval(x, n, 0.95)
        if abs(low - level) > 1e-6:
            assert lower_bound_above(x, n, level, 0.95) is (low > level), (x, n, level, low)
        if abs(high - level) > 1e-6:
            assert upper_bound_above(x, n, level, 0.95) is (high > level), (x, n, level, high)


def test_the_difference_tests_agree_with_the_interval_they_stand_for():
    from console.domain.stats import difference_beyond

    rng = random.Random(11)
    for _ in range(400):
        n_a, n_b = rng.choice([8, 40, 300]) + rng.random(), rng.choice([50, 700, 9000]) + rng.random()
        x_a, x_b = rng.random() * n_a * rng.random(), rng.random() * n_b * rng.random()
        limit = rng.uniform(-0.2, 0.4)
        low, high = difference_interval(x_a, n_a, x_b, n_b, 0.95)
        for side in ("a", "b"):  # either side's end computed, the other tested by its tail probability
            if abs(low - limit) > 1e-6:
                surely = difference_beyond(x_a, n_a, x_b, n_b, limit, 0.95, surely=True, spread_of=side)
                assert bool(surely[0]) is (low > limit)
            if abs(high - limit) > 1e-6:
                possibly = difference_beyond(x_a, n_a, x_b, n_b, limit, 0.95, surely=False, spread_of=side)
                assert bool(possibly[0]) is (high > limit)


def test_the_interval_ends_are_exact_where_a_closed_form_says_so():
    """All successes or none: the ends have closed forms, at any count (the old hand-written quantile stopped
    a 1e-12-wide bracket short of an end pressed against 1, its tail probability off by up to 0.3)."""
    from console.domain.stats import lower_ends, upper_ends

    for n in (1.0, 1.6, 7.0, 42.1, 3000.0, 2e6):
        for confidence in (0.8, 0.95, 0.999):
            tail = (1.0 - confidence) / 2.0
            assert lower_ends(n, n, confidence)[0] == pytest.approx(tail ** (1.0 / n), rel=1e-13)
            assert upper_ends(0.0, n, confidence)[0] == pytest.approx(1.0 - tail ** (1.0 / n), rel=1e-11)
            assert upper_ends(n, n, confidence)[0] == 1.0 and lower_ends(0.0, n, confidence)[0] == 0.0


def test_a_bound_of_no_successes_is_above_a_negative_level():
    """The lower end with no successes is 0: above any negative level (the old hand-written test said it was
    not, so a cell could not breach a negative delta limit against a stable version with no successes)."""
    from console.domain.stats import lower_bound_above

    assert lower_bound_above(0.0, 40.0, -0.02, 0.95) is True
    assert lower_bound_above(0.0, 40.0, 0.0, 0.95) is False
    spec = dataclasses.replace(ACCURACY, criteria=Criteria(max_delta=-0.02, confidence=0.95))
    # Stable at 0 of 40, the cell at 0 of 5000: p_stable - p is 0 - 0, its interval's lower end -u_cell > -0.02.
    state = ratio_judge(spec)(0.0, CellCounts(0.0, 5000.0), CellCounts(0.0, 40.0), True, None)
    low, _ = difference_interval(0.0, 40.0, 0.0, 5000.0, 0.95)
    assert low > -0.02 and state is State.BREACH


def test_the_refresh_judges_an_accuracy_delta_by_its_difference_interval():
    """Higher is better: the refresh's judge (one tail probability per cell) calls a breach exactly when the
    difference interval is past the limit, and a low-traffic cell a pass only when it is within it."""
    rng = random.Random(41)
    spec = dataclasses.replace(ACCURACY, criteria=Criteria(max_delta=0.08, min_traffic=0.5))
    for _ in range(1500):
        n_a, n_b = rng.choice([30, 300, 5000]) * rng.uniform(1, 2), rng.choice([8, 60, 700, 9000]) * rng.uniform(1, 2)
        stable = CellCounts(n_a * rng.uniform(0.8, 1.0), n_a)
        cell = CellCounts(n_b * min(stable.numerator / n_a - 0.08 + rng.gauss(0.0, 0.06), 1.0), n_b)
        if cell.numerator < 0:
            continue
        low, high = difference_interval(stable.numerator, n_a, cell.numerator, n_b, 0.95)
        key, base = ("2", "eu"), ("1", "eu")
        values = {key: cell.numerator / n_b, base: stable.numerator / n_a}
        for flow in (5.0, 0.1):
            results = {spec.name: QueryResult(spec.name, "q", 0.0, values=values, counts={key: cell, base: stable}),
                       "rate": QueryResult("rate", "q", 0.0, values={key: flow})}
            state = build_matrix((spec,), results, ["1", "2"], "1", "rate").state(spec.name, *key)
            if abs(low - 0.08) > 1e-9 and values[base] - values[key] > 0.08:
                assert (state is State.BREACH) is (low > 0.08), (stable, cell, low)
            if flow < 0.5 and abs(high - 0.08) > 1e-9 and values[base] - values[key] <= 0.08:
                assert (state is State.LOW_TRAFFIC) is (high > 0.08), (stable, cell, high)
