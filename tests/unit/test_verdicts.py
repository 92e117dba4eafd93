"""Judging cells: no data, low traffic, thresholds, deltas, and the explanations."""

from console.domain.metrics import Criteria, DeltaKind, Direction, MetricSpec, QueryResult, Unit
from console.domain.verdicts import State, build_matrix, explain, judge_state

ERRORS = MetricSpec("error_rate", "errors", 'q{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_WORSE,
                    Criteria(threshold=0.05, max_delta=0.02, min_traffic=0.5))
ACCURACY = MetricSpec("accuracy", "accuracy", 'q{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_BETTER,
                      Criteria(threshold=0.85, max_delta=0.05, min_traffic=0.5))
RATE = MetricSpec("request_rate", "req/s", 'q{model="$model"}', Unit.PER_SECOND, Direction.HIGHER_IS_WORSE)
LATENCY_REL = MetricSpec("latency", "p95", 'q{model="$model"}', Unit.SECONDS, Direction.HIGHER_IS_WORSE,
                         Criteria(max_delta=0.5, delta_kind=DeltaKind.RELATIVE))


def test_no_data_is_its_own_state_never_a_pass():
    assert judge_state(ERRORS, None, 0.01, True, 10.0) is State.NO_DATA


def test_too_little_traffic_gets_no_verdict():
    assert judge_state(ERRORS, 0.9, 0.0, True, 0.1) is State.LOW_TRAFFIC
    assert judge_state(ERRORS, 0.9, 0.0, True, None) is State.LOW_TRAFFIC


def test_threshold_in_both_directions():
    assert judge_state(ERRORS, 0.06, None, False, 5) is State.BREACH
    assert judge_state(ERRORS, 0.05, None, False, 5) is State.PASS
    assert judge_state(ACCURACY, 0.80, None, False, 5) is State.BREACH
    assert judge_state(ACCURACY, 0.90, None, False, 5) is State.PASS


def test_delta_against_the_stable_version():
    # 4 % errors is under the 5 % threshold but 3 points worse than the stable 1 %.
    assert judge_state(ERRORS, 0.04, 0.01, True, 5) is State.BREACH
    assert judge_state(ERRORS, 0.02, 0.01, True, 5) is State.PASS
    # The stable version is never compared with itself.
    assert judge_state(ERRORS, 0.04, 0.04, False, 5) is State.PASS
    # Higher is better: 0.88 passes the threshold but is 0.08 below the stable 0.96.
    assert judge_state(ACCURACY, 0.88, 0.96, True, 5) is State.BREACH


def test_relative_delta_and_delta_without_baseline():
    assert judge_state(LATENCY_REL, 0.3, 0.1, True, None) is State.BREACH  # +200 %
    assert judge_state(LATENCY_REL, 0.12, 0.1, True, None) is State.PASS  # +20 %
    assert judge_state(LATENCY_REL, 0.12, None, True, None) is State.NO_DATA


def test_metrics_without_criteria_are_information():
    assert judge_state(RATE, 3.0, None, True, None) is State.INFO


def test_explanations_name_values_and_limits():
    reason = explain(ERRORS, State.BREACH, 0.12, 0.01, "2", False, 3.0)
    assert "12.0% > 5.0%" in reason
    assert "+11.0 pt vs v2 (beyond +2.0 pt)" in reason
    assert "0.1" in explain(ERRORS, State.LOW_TRAFFIC, 0.5, None, "2", False, 0.1)
    assert "no data" in explain(ERRORS, State.NO_DATA, None, None, "2", False, None)
    assert "≥ 85.0%" in explain(ACCURACY, State.PASS, 0.9, 0.91, "2", False, 3.0)


def _result(metric, values):
    return QueryResult(metric, f"query for {metric}", 1000.0, raw={k: str(v) for k, v in values.items()})


def test_matrix_judges_every_cell_with_traffic_and_baseline():
    results = {
        "request_rate": _result("request_rate", {("2", "eu"): 9.0, ("3", "eu"): 1.0, ("3", "us"): 0.1,
                                                 ("2", "us"): 9.0}),
        "error_rate": _result("error_rate", {("2", "eu"): 0.01, ("3", "eu"): 0.2, ("3", "us"): 0.3,
                                             ("2", "us"): "NaN"}),
    }
    matrix = build_matrix((RATE, ERRORS), results, ["2", "3"], "2", "request_rate", segments=["apac"])
    assert matrix.segments == ("apac", "eu", "us")
    assert matrix.state("error_rate", "3", "eu") is State.BREACH
    assert matrix.state("error_rate", "3", "us") is State.LOW_TRAFFIC
    assert matrix.state("error_rate", "2", "us") is State.NO_DATA
    assert matrix.state("error_rate", "2", "apac") is State.NO_DATA
    assert matrix.version_state("3") is State.BREACH
    assert matrix.version_state("2") is State.PASS
    [breach] = matrix.breaches()
    assert (breach.version, breach.segment, breach.metric) == ("3", "eu", "error_rate")
    assert "20.0% > 5.0%" in breach.reason


def test_a_failed_query_makes_its_cells_no_data_with_the_reason():
    failed = QueryResult("error_rate", "bad(", 1.0, error="bad_data: parse error")
    matrix = build_matrix((ERRORS,), {"error_rate": failed}, ["2"], "2", None, segments=["eu"])
    cell = matrix.cell("error_rate", "2", "eu")
    assert cell.state is State.NO_DATA
    assert "parse error" in cell.reason


def test_an_explanation_says_over_the_line_exactly_when_the_judge_found_it_over():
    """The words and the state come from one arithmetic: "> limit", "< limit" and "beyond" appear exactly for
    the cells the judge put over the line, in both directions, with absolute and relative deltas, at the edges
    (a value on the threshold, a stable value of 0, a delta exactly at the limit)."""
    from console.domain.metrics import CellCounts
    from console.domain.verdicts import explain_ratio, ratio_judge

    values = (0.0, 0.01, 0.04, 0.05, 0.07, 0.5, 0.85, 0.9, 0.93, 1.0)
    checked = 0
    for direction in Direction:
        for kind in DeltaKind:
            for counts in (False, True):
                spec = MetricSpec("m", "m", 'q{model="$model"}', Unit.RATIO, direction,
                                  Criteria(threshold=0.05 if direction is Direction.HIGHER_IS_WORSE else 0.85,
                                           max_delta=0.03 if kind is DeltaKind.ABSOLUTE else 0.5, delta_kind=kind))
                over_word = f" {'>' if direction is Direction.HIGHER_IS_WORSE else '<'} "
                for value in values:
                    for base in values:
                        if counts:  # 10,000 trials each: the interval is narrow, yet suspect cells stay
                            cell, stable = CellCounts(value * 1e4, 1e4), CellCounts(base * 1e4, 1e4)
                            state = ratio_judge(spec)(value, cell, stable, True, None)
                            words, _ = explain_ratio(spec, state, value, cell, stable, "1", False, None)
                            over = state in (State.BREACH, State.SUSPECT)
                        else:
                            state = judge_state(spec, value, base, True, None)
                            words = explain(spec, state, value, base, "1", False, None)
                            over = state is State.BREACH
                        said = over_word in words or "(beyond" in words
                        assert said == over, (direction, kind, counts, value, base, state, words)
                        checked += 1
    assert checked == 2 * 2 * 2 * len(values) ** 2
