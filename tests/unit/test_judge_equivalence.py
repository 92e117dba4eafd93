"""The refresh's fast judge gives exactly the readable judge's states.

A refresh judges 24,000 cells, so :func:`~console.domain.verdicts.build_matrix`
judges them with :func:`~console.domain.verdicts.ratio_states`,
:func:`~console.domain.verdicts.persistence_states` and
:func:`~console.domain.stats.interval_tests`: the same decisions as the readable
:func:`~console.domain.verdicts.ratio_judge`, :func:`~console.domain.verdicts.cell_judge`,
``_over_flags`` and the bound tests of :mod:`console.domain.stats`, which stay as they
are for the explanations and as the reference here. A responder must see the same
verdict whichever of them computed it, so these tests ask for equality on every
cell: thousands of random cells (fixed seeds), with fractional counts, counts of 0,
counts equal, thresholds of 0 and 1, both directions, relative and absolute deltas,
no ``min_traffic``, no stable version, and stable versions missing from segments.

A higher-is-better delta is judged differently by the two (the cell's tail probability
against a level set by the stable version's end, where the readable judge computes the
cell's own end): those cells are tried on many seeds with new counts every time and the
quantile cache emptied, as a refresh of fresh counts finds it, and on cells built to sit
exactly on the difference interval's ends, where only rounding decides.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter

import pytest

from console.domain.metrics import (
    CellCounts,
    CellKey,
    Criteria,
    DeltaKind,
    Direction,
    MetricKind,
    MetricSpec,
    QueryResult,
    Unit,
)
from console.domain.stats import (
    _beta_fraction,
    _beta_quantile,
    difference_interval,
    exact_lower,
    exact_upper,
    interval_tests,
    lower_bound_above,
    regularized_beta,
    upper_bound_above,
)
from console.domain.verdicts import (
    Matrix,
    State,
    _over_flags,
    build_matrix,
    cell_judge,
    persistence_states,
    ratio_judge,
    ratio_states,
)
from console.tui.matrix_model import Summary, summarise

VERSIONS = ("1", "2", "3", "4", "5")
SEGMENTS = tuple(f"s{i:02d}" for i in range(24))


def reference_states(spec: MetricSpec, result: QueryResult, baseline_version: str | None,
                     traffic: dict[CellKey, float | None]) -> dict[CellKey, State]:
    """The states ``build_matrix`` gave before its fast path: its own loops, kept here word for word."""
    metric_values = result.values
    compare_any = baseline_version is not None
    if spec.counts:
        judge_counts = ratio_judge(spec)
        counts = result.counts
        base_counts = {segment: c for (version, segment), c in counts.items() if version == baseline_version}
        return {
            key: judge_counts(value, counts.get(key), base_counts.get(key[1]),
                              compare_any and key[0] != baseline_version, traffic.get(key))
            for key, value in metric_values.items()
        }
    judge = cell_judge(spec)
    baselines = {
        segment: value for (version, segment), value in metric_values.items() if version == baseline_version
    }
    judged = {
        key: judge(value, baselines.get(key[1]), compare_any and key[0] != baseline_version, traffic.get(key))
        for key, value in metric_values.items()
    }
    recent, evaluations = result.recent, spec.criteria.evaluations
    for key, state in judged.items():
        if state is State.BREACH:
            compare = compare_any and key[0] != baseline_version
            base_key = (baseline_version or "", key[1])
            row = recent.get(key) or (metric_values[key],)
            flags = _over_flags(spec, row, recent.get(base_key) if compare else None, compare)
            if len(flags) < evaluations or not all(flags):
                judged[key] = State.SUSPECT
    return judged


def random_criteria(rng: random.Random, evaluations: int = 1) -> Criteria:
    threshold = rng.choice([None, None, 0.0, 1.0, rng.random(), rng.random(), rng.choice([0.05, 0.85]), 1.2, -0.1])
    max_delta = rng.choice([None, None, 0.0, rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.05), -0.02])
    return Criteria(threshold=threshold, max_delta=max_delta,
                    delta_kind=rng.choice([DeltaKind.ABSOLUTE, DeltaKind.RELATIVE]),
                    min_traffic=rng.choice([None, 0.5, 0.5, 0.0]),
                    confidence=rng.choice([0.8, 0.9, 0.95, 0.95, 0.99, 0.999]),
                    evaluations=evaluations)


def near(rng: random.Random, level: float, trials: float) -> float:
    """A proportion close to ``level``: about where a test needs its exact interval."""
    spread = rng.choice([0.5, 1.0, 2.0, 4.0]) * math.sqrt(max(level * (1 - level), 0.01) / trials)
    return min(max(level + rng.gauss(0.0, spread), 0.0), 1.0)


def random_counts(rng: random.Random, criteria: Criteria, stable: float | None) -> CellCounts:
    trials = rng.choice([0.4, 1.0, 3.0, 7.5, 20.0, 41.3, 60.0, 250.0, 1000.0, 29.4 + rng.random(), 5000.0])
    if rng.random() < 0.3:
        trials = round(trials) or 1.0
    kind = rng.random()
    if kind < 0.08:
        successes = 0.0
    elif kind < 0.16:
        successes = trials
    elif kind < 0.45 and criteria.threshold is not None:
        successes = trials * near(rng, min(max(criteria.threshold, 0.0), 1.0), trials)
    elif kind < 0.75 and stable is not None and criteria.max_delta is not None:
        successes = trials * near(rng, min(max(stable + rng.choice([-1, 1]) * criteria.max_delta, 0.0), 1.0), trials)
    else:
        successes = trials * rng.random()
    if rng.random() < 0.3:
        successes = float(round(successes))
    return CellCounts(min(successes, trials), trials)


def random_ratio_matrix(rng: random.Random, spec: MetricSpec, baseline_version: str | None
                        ) -> tuple[QueryResult, dict[CellKey, float | None]]:
    """Counts for every cell; some cells without data, some stable cells missing, some traffic unknown."""
    values: dict[CellKey, float | None] = {}
    counts: dict[CellKey, CellCounts] = {}
    traffic: dict[CellKey, float | None] = {}
    stable_share = {segment: rng.random() for segment in SEGMENTS}
    for segment in SEGMENTS:
        for version in VERSIONS:
            key = (version, segment)
            if version == baseline_version and rng.random() < 0.1:
                continue  # the stable version has no counts here
            roll = rng.random()
            if roll < 0.03:
                values[key] = None  # the query's cell had no usable counts
                continue
            cell = random_counts(rng, spec.criteria, stable_share[segment])
            if version == baseline_version and rng.random() < 0.5:
                cell = CellCounts(cell.denominator * stable_share[segment], cell.denominator)
            counts[key] = cell
            values[key] = cell.numerator / cell.denominator
            if roll < 0.06:
                del counts[key]  # a value without counts
            elif roll < 0.1:
                values[key] = rng.random()  # a value the counts do not give
            traffic[key] = rng.choice([None, 0.0, rng.random(), 0.5, rng.random() * 3])
    result = QueryResult(spec.name, "q", 0.0, raw={key: "0" for key in values}, values=values, counts=counts)
    return result, traffic


def ratio_spec(criteria: Criteria, direction: Direction) -> MetricSpec:
    return MetricSpec("ratio", "ratio", "q", Unit.RATIO, direction, criteria, kind=MetricKind.RATIO,
                      numerator="n", denominator="d")


def reference_beta_fraction(a: float, b: float, x: float) -> float:
    """``stats._beta_fraction`` as it was written before its ``abs`` calls became comparisons: word for word."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-12:
            break
    return h


def test_the_continued_fraction_gives_the_same_bits_as_its_readable_form():
    rng = random.Random(17)

    def shape() -> float:
        return rng.choice([rng.uniform(0.01, 2.0), rng.uniform(0.5, 600.0), float(rng.randint(1, 600)),
                           1e5 * rng.random()])

    for _ in range(6000):
        a, b = shape(), shape()
        x = rng.choice([rng.random(), 0.05, 0.85, 1e-9, 1.0 - 1e-9, rng.random() ** 8])
        if a > 0.0 and b > 0.0:
            expected, got = reference_beta_fraction(a, b, x), _beta_fraction(a, b, x)
            assert got == expected or (got != got and expected != expected), (a, b, x)


def test_the_interval_tests_answer_as_the_readable_bound_tests():
    rng = random.Random(20261205)
    for confidence in (0.8, 0.95, 0.99, 0.999):
        tests = interval_tests(confidence)
        for _ in range(1500):
            trials = rng.choice([0.3, 1.0, 2.5, 20.0, 61.0, 400.0, 5000.0]) + rng.choice([0.0, rng.random()])
            successes = rng.choice([0.0, trials, trials * rng.random(), trials * rng.random(), trials + 1.0, -1.0,
                                    round(trials * rng.random()), trials - rng.random()])
            level = rng.choice([0.0, 1.0, -0.1, 1.1, rng.random(), near(rng, successes / trials, trials),
                                near(rng, successes / trials, trials)])
            args = (successes, trials, level)
            assert tests.lower_above(*args) is lower_bound_above(*args, confidence), args
            assert tests.upper_above(*args) is upper_bound_above(*args, confidence), args
            quick = tests.lower_above_quick(*args)
            assert (tests.lower_above_exact(*args) if quick is None else quick) is lower_bound_above(*args, confidence)
            quick = tests.upper_above_quick(*args)
            assert (tests.upper_above_exact(*args) if quick is None else quick) is upper_bound_above(*args, confidence)
            if 0.0 <= successes <= trials and rng.random() < 0.1:  # quantiles cost more: a sample of them
                assert tests.lower_end(successes, trials) == exact_lower(successes, trials, confidence)
                assert tests.upper_end(successes, trials) == exact_upper(successes, trials, confidence)


def test_the_shortcuts_of_the_interval_tests_answer_as_the_readable_bound_tests():
    """The quick tests' divergence bound and the exact tests' series bounds decide many cells without a
    logarithm or a continued fraction: they must never answer otherwise than the arithmetic they skip. Counts
    from a fraction of one to millions, levels near the bound and far from it, confidences to 0.99999."""
    rng = random.Random(8128)
    for confidence in (0.6, 0.9, 0.95, 0.999, 0.99999):
        tests = interval_tests(confidence)
        tail = (1.0 - confidence) / 2.0
        for _ in range(3000):
            trials = rng.choice([0.3, 1.0, 2.5, 20.0, 400.0, 5000.0, 9e4, 2e5, 3e6]) * rng.uniform(1.0, 2.0)
            successes = trials * rng.choice([rng.random(), rng.random() ** 4, 1.0 - rng.random() ** 4, 0.5])
            if rng.random() < 0.3:
                successes = float(round(successes))
            successes = min(successes, trials)
            share = successes / trials
            level = rng.choice([near(rng, share, trials), near(rng, share, trials), rng.random(),
                                min(max(share + rng.choice([-1, 1]) * rng.random() ** 3, 1e-9), 1 - 1e-9)])
            args = (successes, trials, level)
            assert tests.lower_above(*args) is lower_bound_above(*args, confidence), args
            assert tests.upper_above(*args) is upper_bound_above(*args, confidence), args
            if 0.0 < level < 1.0:
                if successes > 0.0:
                    expected = regularized_beta(successes, trials - successes + 1.0, level) < tail
                    assert tests.lower_above_exact(*args) is expected, args
                if successes < trials:
                    expected = regularized_beta(successes + 1.0, trials - successes, level) < 1.0 - tail
                    assert tests.upper_above_exact(*args) is expected, args


def test_the_fast_ratio_judge_gives_every_cell_the_readable_judges_state():
    rng = random.Random(7)
    judged = exact_cases = 0
    for round_ in range(80):
        criteria = random_criteria(rng)
        direction = Direction.HIGHER_IS_WORSE if round_ % 2 else Direction.HIGHER_IS_BETTER
        spec = ratio_spec(criteria, direction)
        baseline_version = rng.choice(["1", "1", "3", None, "9"])  # "9": a stable version without any cell
        result, traffic = random_ratio_matrix(rng, spec, baseline_version)
        expected = reference_states(spec, result, baseline_version, traffic)
        got = ratio_states(spec, result.values, result.counts, baseline_version, traffic)
        assert list(got) == list(expected)
        for key, state in expected.items():
            assert got[key] is state, (criteria, direction, baseline_version, key, result.counts.get(key),
                                       result.values[key], traffic.get(key))
        judged += len(expected)
        exact_cases += sum(state in (State.SUSPECT, State.LOW_TRAFFIC) for state in expected.values())
    assert judged > 8000 and exact_cases > 500  # the random cells do reach the tests near a limit


def delta_counts(rng: random.Random, stable: CellCounts, limit: float) -> CellCounts:
    """A cell about where a higher-is-better delta needs its interval: ``limit`` below the stable share, give or
    take the two intervals; sometimes nearly all of its trials, or none, or integral."""
    trials = rng.choice([1.0, 2.5, 7.0, 20.0, 41.3, 120.0, 600.0, 3000.0, 2e4, 2e5]) * rng.uniform(1.0, 2.0)
    if rng.random() < 0.3:
        trials = float(round(trials)) or 1.0
    stable_share = stable.numerator / stable.denominator
    kind = rng.random()
    if kind < 0.05:
        successes = 0.0
    elif kind < 0.1:
        successes = trials
    elif kind < 0.2:
        successes = trials - rng.random() * rng.choice([0.2, 1.0, 3.0])  # an upper end pressed against 1
    else:
        centre = stable_share - limit * rng.choice([1.0, 1.0, 0.5, 1.5])
        spread = math.sqrt(max(centre * (1 - centre), 0.01) / trials + max(stable_share * (1 - stable_share),
                                                                            0.01) / stable.denominator)
        successes = trials * (centre + rng.gauss(0.0, spread * rng.choice([0.5, 1.0, 2.0, 3.0])))
    if rng.random() < 0.3:
        successes = float(round(successes))
    return CellCounts(min(max(successes, 0.0), trials), trials)


def random_delta_matrix(rng: random.Random, spec: MetricSpec) -> tuple[QueryResult, dict[CellKey, float | None]]:
    """A stable version ("1") in every segment but a few, its counts small to large, its share up to 1; the
    other versions' cells about the delta's limit, most of them with too little traffic (the "possibly" test)."""
    values: dict[CellKey, float | None] = {}
    counts: dict[CellKey, CellCounts] = {}
    traffic: dict[CellKey, float | None] = {}
    for segment in SEGMENTS:
        stable_n = rng.choice([1.0, 4.0, 30.0, 300.0, 5000.0, 1e5]) * rng.uniform(1.0, 2.0)
        share = rng.choice([rng.uniform(0.5, 1.0), rng.uniform(0.85, 1.0), 1.0, 1.0 - 0.3 / stable_n, 0.0])
        stable = CellCounts(stable_n * share, stable_n)
        if rng.random() < 0.3:
            stable = CellCounts(float(round(stable.numerator)), float(round(stable_n)) or 1.0)
        if rng.random() > 0.05:
            counts[("1", segment)] = stable
            values[("1", segment)] = stable.numerator / stable.denominator
            traffic[("1", segment)] = 5.0
        base_value = stable.numerator / stable.denominator
        max_delta = spec.criteria.max_delta or 0.0
        limit = max_delta * abs(base_value) if spec.criteria.delta_kind is DeltaKind.RELATIVE else max_delta
        for version in VERSIONS[1:]:
            cell = delta_counts(rng, stable, limit)
            counts[(version, segment)] = cell
            values[(version, segment)] = cell.numerator / cell.denominator
            traffic[(version, segment)] = rng.choice([None, 0.0, 0.1, 0.4, 0.4, 0.5, 3.0])
    result = QueryResult(spec.name, "q", 0.0, raw={key: "0" for key in values}, values=values, counts=counts)
    return result, traffic


def test_higher_is_better_deltas_get_the_readable_judges_state_with_a_cold_cache():
    judged = 0
    states: Counter[State] = Counter()
    for seed in range(40):
        rng = random.Random(9000 + seed)
        for _ in range(5):
            criteria = Criteria(threshold=rng.choice([None, None, None, 0.85, rng.random()]),
                                max_delta=rng.choice([0.08, 0.08, 0.0, rng.uniform(0.0, 0.3), 0.01, -0.02]),
                                delta_kind=rng.choice([DeltaKind.ABSOLUTE, DeltaKind.ABSOLUTE, DeltaKind.RELATIVE]),
                                min_traffic=rng.choice([0.5, 0.5, None]),
                                confidence=rng.choice([0.8, 0.9, 0.95, 0.95, 0.99, 0.999]))
            spec = ratio_spec(criteria, Direction.HIGHER_IS_BETTER)
            result, traffic = random_delta_matrix(rng, spec)
            _beta_quantile.cache_clear()  # as a refresh of new counts finds it
            got = ratio_states(spec, result.values, result.counts, "1", traffic)
            _beta_quantile.cache_clear()
            expected = reference_states(spec, result, "1", traffic)
            assert list(got) == list(expected)
            for key, state in expected.items():
                assert got[key] is state, (criteria, key, result.counts.get(key), result.counts.get(("1", key[1])),
                                           traffic.get(key))
            judged += len(expected)
            states.update(expected.values())
    # Thousands of cells, a good share of them near the limit (suspect, low traffic) or past it for sure.
    assert judged > 10000 and states[State.SUSPECT] > 500 and states[State.LOW_TRAFFIC] > 1000
    assert states[State.BREACH] > 500 and states[State.PASS] > 1000


def test_cells_on_the_ends_of_the_difference_interval_get_the_readable_judges_state():
    """The limit set to the difference interval's end as the readable judge computes it, and a few ulps or
    parts in 1e8..1e16 either side: where only rounding decides, the fast judge must round as it does."""
    rng = random.Random(4242)
    checked = 0
    for _ in range(200):
        confidence = rng.choice([0.8, 0.9, 0.95, 0.99, 0.999])
        stable_n = rng.choice([2.5, 20.0, 120.0, 600.0, 3000.0, 2e4, 1e6]) * rng.uniform(1.0, 2.0)
        cell_n = rng.choice([1.0, 2.5, 7.0, 20.0, 41.3, 120.0, 600.0, 3000.0, 2e4, 1e6]) * rng.uniform(1.0, 2.0)
        stable = CellCounts(stable_n * rng.choice([rng.uniform(0.5, 1.0), rng.uniform(0.85, 0.999), 1.0]), stable_n)
        cell_share = rng.choice([rng.uniform(0.5, 1.0), rng.uniform(0.85, 0.999), rng.random()])
        cell = CellCounts(cell_n * cell_share, cell_n)
        if rng.random() < 0.2:
            cell = CellCounts(cell_n - rng.random(), cell_n)  # the cell's upper end pressed against 1
        low, high = difference_interval(stable.numerator, stable.denominator, cell.numerator, cell.denominator,
                                        confidence)
        for end in (low, high):
            for relative in (0.0, 1e-16, -1e-16, 1e-12, -1e-12, 1e-8, -1e-8):
                limit = end * (1.0 + relative) if end else relative
                for ulps in (-1, 0, 1):
                    shifted = limit if ulps == 0 else math.nextafter(limit, math.inf * ulps)
                    spec = ratio_spec(Criteria(max_delta=shifted, min_traffic=0.5, confidence=confidence),
                                      Direction.HIGHER_IS_BETTER)
                    key, base_key = ("2", "s00"), ("1", "s00")
                    values = {base_key: stable.numerator / stable.denominator, key: cell.numerator / cell.denominator}
                    _beta_quantile.cache_clear()
                    got = ratio_states(spec, values, {base_key: stable, key: cell}, "1", {key: 0.1, base_key: 0.1})
                    expected = ratio_judge(spec)(values[key], cell, stable, True, 0.1)
                    assert got[key] is expected, (confidence, stable, cell, shifted, end)
                    checked += 1
    assert checked == 200 * 2 * 7 * 3


def test_a_confidence_without_a_tail_is_judged_by_the_readable_judge():
    """The configuration keeps confidence below 1; a spec built in code may not, and gets the readable judge."""
    no_tail = ratio_spec(Criteria(threshold=0.5, confidence=1.0), Direction.HIGHER_IS_WORSE)
    key = ("2", "s00")
    assert ratio_states(no_tail, {key: 0.0}, {key: CellCounts(0.0, 3.0)}, None, {}) == {key: State.PASS}
    with pytest.raises(ValueError, match="math domain error"):  # as ratio_judge: no log of a zero tail
        ratio_states(no_tail, {key: 1.0}, {key: CellCounts(3.0, 3.0)}, None, {})
    with pytest.raises(ValueError, match="math domain error"):
        ratio_judge(no_tail)(1.0, CellCounts(3.0, 3.0), None, False, None)


def random_persistence_matrix(rng: random.Random, spec: MetricSpec, baseline_version: str | None
                              ) -> tuple[QueryResult, dict[CellKey, float | None]]:
    """Recent rows around the line: some short, some with gaps, some missing; stable rows likewise."""
    criteria = spec.criteria
    centre = criteria.threshold if criteria.threshold is not None else 1.0
    values: dict[CellKey, float | None] = {}
    recent: dict[CellKey, tuple[float | None, ...]] = {}
    traffic: dict[CellKey, float | None] = {}

    def point() -> float | None:
        roll = rng.random()
        if roll < 0.05:
            return None
        if roll < 0.1:
            return 0.0
        if roll < 0.15:
            return centre
        return centre * rng.uniform(0.3, 1.9) + rng.uniform(-0.1, 0.1)

    for segment in SEGMENTS:
        for version in VERSIONS:
            key = (version, segment)
            if version == baseline_version and rng.random() < 0.1:
                continue
            length = rng.choice([criteria.evaluations, criteria.evaluations, criteria.evaluations - 1, 1, 0])
            row = tuple(point() for _ in range(max(length, 0)))
            now = row[-1] if row else point()
            if rng.random() < 0.05:
                now = None
            values[key] = now
            if rng.random() < 0.85:
                recent[key] = row
            traffic[key] = rng.choice([None, 0.1, 0.5, 2.0])
    result = QueryResult(spec.name, "q", 0.0, raw={key: "0" for key in values}, values=values, recent=recent)
    return result, traffic


def test_the_fast_persistence_judge_gives_every_cell_the_readable_judges_state():
    rng = random.Random(11)
    judged = persisted = 0
    for round_ in range(60):
        criteria = random_criteria(rng, evaluations=rng.choice([1, 2, 4]))
        direction = Direction.HIGHER_IS_WORSE if round_ % 2 else Direction.HIGHER_IS_BETTER
        spec = MetricSpec("p95", "p95", "q", Unit.SECONDS, direction, criteria, kind=MetricKind.QUANTILE)
        baseline_version = rng.choice(["1", "1", "4", None, "9"])
        result, traffic = random_persistence_matrix(rng, spec, baseline_version)
        expected = reference_states(spec, result, baseline_version, traffic)
        got = persistence_states(spec, result.values, result.recent, baseline_version, traffic)
        assert list(got) == list(expected)
        for key, state in expected.items():
            assert got[key] is state, (criteria, direction, baseline_version, key, result.values[key],
                                       result.recent.get(key), traffic.get(key))
        judged += len(expected)
        persisted += sum(state is State.BREACH for state in expected.values())
    assert judged > 6000 and persisted > 200


def test_build_matrix_judges_as_the_readable_judges():
    rng = random.Random(5)
    for _ in range(6):
        ratio = ratio_spec(random_criteria(rng), rng.choice(list(Direction)))
        p95 = MetricSpec("p95", "p95", "q", Unit.SECONDS, Direction.HIGHER_IS_WORSE,
                         Criteria(threshold=0.25, max_delta=0.1, min_traffic=0.5, evaluations=4),
                         kind=MetricKind.QUANTILE)
        rate = MetricSpec("rate", "req/s", "q", Unit.PER_SECOND, Direction.HIGHER_IS_WORSE, kind=MetricKind.RATE)
        ratio_result, traffic = random_ratio_matrix(rng, ratio, "1")
        p95_result, _ = random_persistence_matrix(rng, p95, "1")
        rate_result = QueryResult("rate", "q", 0.0, raw={key: "0" for key in traffic},
                                  values={key: value for key, value in traffic.items()})
        results = {"ratio": ratio_result, "p95": p95_result, "rate": rate_result}
        matrix = build_matrix((ratio, p95, rate), results, VERSIONS, "1", "rate")
        if ratio.criteria.judges:
            assert matrix.states["ratio"] == reference_states(ratio, ratio_result, "1", rate_result.values)
        else:
            assert "ratio" not in matrix.states  # information only
        assert matrix.states["p95"] == reference_states(p95, p95_result, "1", rate_result.values)
        assert "rate" not in matrix.states


def reference_summary(matrix: Matrix) -> Summary:
    """``summarise`` as it was before its first breach was found by iterators: its own loop, word for word."""
    counts = dict.fromkeys(State, 0)
    total = len(matrix.versions) * len(matrix.segments)
    order = {v: i for i, v in enumerate(matrix.versions)}
    first: tuple[int, str, int] | None = None
    for index, spec in enumerate(matrix.metrics):
        per_cell = matrix.states.get(spec.name)
        if per_cell is None:
            with_value = sum(1 for value in matrix.values.get(spec.name, {}).values() if value is not None)
            counts[State.INFO] += with_value
            counts[State.NO_DATA] += total - with_value
            continue
        tally = Counter(per_cell.values())
        for state, number in tally.items():
            counts[state] += number
        counts[State.NO_DATA] += total - len(per_cell)
        if tally[State.BREACH]:
            here = min((order[version], segment) for (version, segment), state in per_cell.items()
                       if state is State.BREACH)
            if first is None or (here[0], here[1], index) < first:
                first = (here[0], here[1], index)
    failed = tuple(r.metric for r in matrix.results.values() if r.error)
    named = None if first is None else (matrix.versions[first[0]], first[1], matrix.metrics[first[2]].title)
    return Summary(counts, named, failed)


def test_the_summary_counts_and_names_the_first_breach_as_before():
    rng = random.Random(13)
    named = 0
    for _ in range(30):
        ratio = ratio_spec(random_criteria(rng), rng.choice(list(Direction)))
        p95 = MetricSpec("p95", "p95", "q", Unit.SECONDS, rng.choice(list(Direction)),
                         random_criteria(rng, evaluations=rng.choice([1, 3])), kind=MetricKind.QUANTILE)
        ratio_result, traffic = random_ratio_matrix(rng, ratio, "2")
        p95_result, _ = random_persistence_matrix(rng, p95, "2")
        rate_result = QueryResult("rate", "q", 0.0, raw={key: "0" for key in traffic}, values=dict(traffic))
        versions = rng.sample(VERSIONS, rng.randint(2, len(VERSIONS)))  # display order, not sorted
        rate = MetricSpec("rate", "req/s", "q", Unit.PER_SECOND, Direction.HIGHER_IS_WORSE, kind=MetricKind.RATE)
        unread = MetricSpec("share", "share", "q", Unit.RATIO, Direction.HIGHER_IS_WORSE)  # no result at all
        matrix = build_matrix((p95, ratio, unread, rate),
                              {"ratio": ratio_result, "p95": p95_result, "rate": rate_result}, versions,
                              rng.choice(["2", None]), "rate", segments=("zz-empty",))
        summary = summarise(matrix)
        assert summary == reference_summary(matrix)
        named += summary.first_breach is not None
        # A matrix made by hand may list its segments in another order.
        odd = dataclasses.replace(matrix, segments=tuple(reversed(matrix.segments)))
        assert summarise(odd) == reference_summary(odd)
    assert named > 20
