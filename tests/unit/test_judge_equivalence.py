"""The refresh's judges give exactly the per-cell judges' states, and the ratio judge answers as counting does.

A refresh judges 24,000 cells, so :func:`~console.domain.verdicts.build_matrix`
judges every metric's cells as arrays over the refresh's cells: a ratio's on its
counts (:func:`~console.domain.verdicts.judge_ratio_cells`, on scipy's incomplete
beta function), a persistence metric's on its recent evaluations
(:func:`~console.domain.verdicts.judge_persistence_cells`), any other on its value
(:func:`~console.domain.verdicts.judge_value_cells`). A responder must see the verdicts
the judges gave before they worked on arrays, so these tests ask for equality on every
cell with ``build_matrix``'s loops as they were, on the per-cell judges as they were
(``cell_judge`` and ``_over_flags``, kept here word for word; the ratio's per-cell
judge, :func:`~console.domain.verdicts.ratio_judge`, was already one cell of the
arrays): thousands of random cells (fixed seeds), with fractional counts,
counts of 0, counts equal, thresholds of 0 and 1, both directions, relative and
absolute deltas, no ``min_traffic``, no stable version, and stable versions missing
from segments. And, independently of any incomplete beta function, the bound tests
answer as the binomial sums they stand for on whole counts.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Callable

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
from console.domain.stats import lower_bound_above, upper_bound_above
from console.domain.verdicts import Matrix, State, build_matrix, ratio_judge
from console.tui.matrix_model import Summary, summarise

VERSIONS = ("1", "2", "3", "4", "5")
SEGMENTS = tuple(f"s{i:02d}" for i in range(24))


def cell_judge(spec: MetricSpec) -> Callable[[float | None, float | None, bool, float | None], State]:
    """The per-cell judge of a value as it was before the judges worked on arrays, word for word."""
    criteria = spec.criteria
    threshold, max_delta, min_traffic = criteria.threshold, criteria.max_delta, criteria.min_traffic
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    no_data, low, breach, passed, info = (
        State.NO_DATA, State.LOW_TRAFFIC, State.BREACH, State.PASS, State.INFO
    )

    if threshold is None and max_delta is None:
        return lambda value, baseline, compare, traffic: no_data if value is None else info

    def judge(value: float | None, baseline: float | None, compare: bool, traffic: float | None) -> State:
        if value is None:
            return no_data
        if min_traffic is not None and (traffic is None or not traffic >= min_traffic):
            return low
        if threshold is not None and (value - threshold) * sign > 0:
            return breach
        if max_delta is None:
            return passed
        if not compare:
            # The stable version itself, or no stable version at all.
            return passed if (threshold is not None or baseline is not None) else no_data
        if baseline is None:
            return passed if threshold is not None else no_data
        worse = (value - baseline) * sign
        if relative:
            worse = (math.inf if worse > 0 else 0.0) if baseline == 0 else worse / abs(baseline)
        return breach if worse > max_delta else passed

    return judge


def _over_flags(spec: MetricSpec, recent: tuple[float | None, ...], baseline: tuple[float | None, ...] | None,
                compare: bool) -> list[bool]:
    """Whether each of a cell's recent evaluations is over the line, as it was decided before, word for word."""
    criteria = spec.criteria
    sign = 1.0 if spec.direction is Direction.HIGHER_IS_WORSE else -1.0
    relative = criteria.delta_kind is DeltaKind.RELATIVE
    flags = []
    for index, value in enumerate(recent):
        if value is None:
            flags.append(False)
            continue
        over = criteria.threshold is not None and (value - criteria.threshold) * sign > 0
        base = baseline[index] if compare and baseline is not None and index < len(baseline) else None
        if not over and criteria.max_delta is not None and base is not None:
            worse = (value - base) * sign
            if relative:
                worse = (math.inf if worse > 0 else 0.0) if base == 0 else worse / abs(base)
            over = worse > criteria.max_delta
        flags.append(over)
    return flags


def matrix_states(spec: MetricSpec, result: QueryResult, baseline_version: str | None,
           traffic: dict[CellKey, float | None]) -> dict[CellKey, State]:
    """The states ``build_matrix`` gives one metric's cells, with ``traffic`` as the traffic metric's values."""
    rate = QueryResult("rate", "q", 0.0, raw={key: "0" for key in traffic}, values=dict(traffic))
    matrix = build_matrix((spec,), {spec.name: result, "rate": rate}, VERSIONS, baseline_version, "rate")
    return dict(matrix.states[spec.name])


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


def binomial_at_least(successes: int, trials: int, p: float) -> float:
    """P(X >= successes), X ~ Binomial(trials, p), summed term by term in exact rationals."""
    from fractions import Fraction

    q = Fraction(p)
    return float(sum(math.comb(trials, k) * q ** k * (1 - q) ** (trials - k) for k in range(successes, trials + 1)))


def test_the_bound_tests_answer_as_the_binomial_sums_they_stand_for():
    """On whole counts the exact interval's lower end is above ``level`` exactly when P(X >= x | level) < tail,
    and its upper end exactly when P(X <= x | level) > tail: summed in rationals, no incomplete beta function."""
    rng = random.Random(20261205)
    checked = 0
    for _ in range(1500):
        trials = rng.choice([1, 2, 5, 20, 61, 150])
        successes = rng.randint(0, trials)
        level = rng.choice([rng.random(), min(max(successes / trials + rng.gauss(0, 0.1), 0.001), 0.999)])
        confidence = rng.choice([0.8, 0.95, 0.99])
        tail = (1.0 - confidence) / 2.0
        at_least = binomial_at_least(successes, trials, level)
        at_most = 1.0 - binomial_at_least(successes + 1, trials, level)
        if successes > 0 and abs(at_least - tail) > 1e-9:
            assert lower_bound_above(successes, trials, level, confidence) is (at_least < tail), (successes, trials)
            checked += 1
        if successes < trials and abs(at_most - tail) > 1e-9:
            assert upper_bound_above(successes, trials, level, confidence) is (at_most > tail), (successes, trials)
            checked += 1
    assert checked > 2000


def test_the_ratio_judge_on_arrays_gives_every_cell_the_per_cell_judges_state():
    rng = random.Random(7)
    judged = exact_cases = 0
    for round_ in range(80):
        criteria = random_criteria(rng)
        direction = Direction.HIGHER_IS_WORSE if round_ % 2 else Direction.HIGHER_IS_BETTER
        spec = ratio_spec(criteria, direction)
        baseline_version = rng.choice(["1", "1", "3", None, "9"])  # "9": a stable version without any cell
        result, traffic = random_ratio_matrix(rng, spec, baseline_version)
        expected = reference_states(spec, result, baseline_version, traffic)
        if not criteria.judges:
            continue  # information only: the matrix shows such a metric's values unjudged
        got = matrix_states(spec, result, baseline_version, traffic)
        assert got.keys() == expected.keys()
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


def test_higher_is_better_deltas_get_the_per_cell_judges_state():
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
            got = matrix_states(spec, result, "1", traffic)
            expected = reference_states(spec, result, "1", traffic)
            assert got.keys() == expected.keys()
            for key, state in expected.items():
                assert got[key] is state, (criteria, key, result.counts.get(key), result.counts.get(("1", key[1])),
                                           traffic.get(key))
            judged += len(expected)
            states.update(expected.values())
    # Thousands of cells, a good share of them near the limit (suspect, low traffic) or past it for sure.
    assert judged > 10000 and states[State.SUSPECT] > 500 and states[State.LOW_TRAFFIC] > 1000
    assert states[State.BREACH] > 500 and states[State.PASS] > 1000


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


def test_the_persistence_judge_on_arrays_gives_every_cell_the_readable_judges_state():
    rng = random.Random(11)
    judged = persisted = 0
    for round_ in range(100):
        criteria = random_criteria(rng, evaluations=rng.choice([2, 3, 4]))
        direction = Direction.HIGHER_IS_WORSE if round_ % 2 else Direction.HIGHER_IS_BETTER
        spec = MetricSpec("p95", "p95", "q", Unit.SECONDS, direction, criteria, kind=MetricKind.QUANTILE)
        baseline_version = rng.choice(["1", "1", "4", None, "9"])
        result, traffic = random_persistence_matrix(rng, spec, baseline_version)
        expected = reference_states(spec, result, baseline_version, traffic)
        if not criteria.judges:
            continue  # information only: the matrix shows such a metric's values unjudged
        got = matrix_states(spec, result, baseline_version, traffic)
        assert got.keys() == expected.keys()
        for key, state in expected.items():
            assert got[key] is state, (criteria, direction, baseline_version, key, result.values[key],
                                       result.recent.get(key), traffic.get(key))
        judged += len(expected)
        persisted += sum(state is State.BREACH for state in expected.values())
    assert judged > 9000 and persisted > 250


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


def reference_history_hits(spec: MetricSpec, payload: dict, traffic: dict) -> dict[CellKey, list[int]]:
    """The breaching points of a history without counts, as ``history_breaches`` judged them point by point before
    the judges worked on arrays (before the excursions are added), word for word but for the judges' names."""
    instant = cell_judge(spec)

    def judge_recent(recent, baseline, compare, flow):  # the readable persistence judge as it was
        state = instant(recent[-1] if recent else None, baseline[-1] if baseline else None, compare, flow)
        if state is not State.BREACH:
            return state
        flags = _over_flags(spec, recent, baseline, compare)
        return State.BREACH if len(flags) >= spec.criteria.evaluations and all(flags) else State.SUSPECT

    def at(values, index):
        return values[index] if 0 <= index < len(values) else None

    cells = {(s["version"], s["segment"]): s["values"] for s in payload["series"]}
    flows = {(s["version"], s["segment"]): s["values"] for s in traffic["series"]}
    stride, back, stable = max(1, round(spec.criteria.step_s / payload["step"])), spec.criteria.evaluations, "1"
    found = {}
    for key, values in cells.items():
        stable_values = cells.get((stable, key[1]))
        compare = key[0] != stable
        traffic_values = flows.get(key, [])
        hits = []
        for index, value in enumerate(values):
            if value is None:
                continue
            flow = at(traffic_values, index) if traffic_values else (None if spec.criteria.min_traffic else 0.0)
            if back <= 1:
                state = instant(value, at(stable_values, index) if stable_values else None, compare, flow)
            else:
                picks = [index - (back - 1 - i) * stride for i in range(back)]
                recent = tuple(at(values, i) for i in picks)
                base_recent = tuple(at(stable_values, i) for i in picks) if stable_values else None
                state = judge_recent(recent, base_recent, compare, flow)
            if state is State.BREACH:
                hits.append(index)
        if hits:
            found[key] = hits
    return found


def test_a_history_is_judged_as_the_readable_judges_judged_it_point_by_point():
    from console.domain.metrics import criterion_document
    from console.domain.verdicts import _with_excursions, history_breaches

    rng = random.Random(23)
    breaches = 0
    for round_ in range(40):
        criteria = random_criteria(rng, evaluations=rng.choice([1, 2, 4]))
        criteria = dataclasses.replace(criteria, step_s=rng.choice([5.0, 15.0, 30.0]))
        direction = Direction.HIGHER_IS_WORSE if round_ % 2 else Direction.HIGHER_IS_BETTER
        spec = MetricSpec("p95", "p95", "q", Unit.SECONDS, direction, criteria, kind=MetricKind.QUANTILE)
        centre = criteria.threshold if criteria.threshold is not None else 1.0
        points = rng.randint(1, 40)

        def line(length: int, centre: float = centre) -> list[float | None]:
            return [None if rng.random() < 0.05 else centre * rng.uniform(0.3, 1.9) for _ in range(length)]

        series = [{"version": version, "segment": segment, "values": line(rng.choice([points, points, points - 1]))}
                  for version in VERSIONS for segment in SEGMENTS[:4] if rng.random() < 0.9]
        flows = [{"version": s["version"], "segment": s["segment"],
                  "values": [rng.choice([None, 0.1, 2.0, 2.0]) for _ in range(points)]}
                 for s in series if rng.random() < 0.7]
        payload = {"metric": spec.name, "unit": str(spec.unit), "direction": str(spec.direction),
                   "kind": str(spec.kind), "criterion": criterion_document(spec), "stable_version": "1",
                   "start": 0.0, "step": 5.0, "series": series}
        traffic = {"start": 0.0, "step": 5.0, "series": flows}
        expected = reference_history_hits(spec, payload, traffic)
        got = history_breaches(payload, traffic)
        assert got.keys() == expected.keys()
        lines = {(s["version"], s["segment"]): s["values"] for s in series}
        for key, hits in expected.items():
            assert got[key] == _with_excursions(spec, hits, lines[key], lines.get(("1", key[1])), key[0] != "1")
        breaches += sum(map(len, expected.values()))
    assert breaches > 300


def test_matrices_judged_together_are_each_the_matrix_judged_alone():
    """A fleet judges its models' matrices in one call per metric: each is the matrix ``build_matrix`` gives."""
    from console.domain.verdicts import MatrixInput, build_matrices

    rng = random.Random(31)
    ratio = ratio_spec(Criteria(threshold=0.05, max_delta=0.02, min_traffic=0.5), Direction.HIGHER_IS_WORSE)
    p95 = MetricSpec("p95", "p95", "q", Unit.SECONDS, Direction.HIGHER_IS_WORSE,
                     Criteria(threshold=0.25, max_delta=0.1, min_traffic=0.5, evaluations=3), kind=MetricKind.QUANTILE)
    rate = MetricSpec("rate", "req/s", "q", Unit.PER_SECOND, Direction.HIGHER_IS_WORSE, kind=MetricKind.RATE)
    inputs = []
    for model in range(12):
        baseline = rng.choice(["1", "2", None, "9"])
        ratio_result, traffic = random_ratio_matrix(rng, ratio, baseline)
        p95_result, _ = random_persistence_matrix(rng, p95, baseline)
        results = {"ratio": ratio_result, "p95": p95_result,
                   "rate": QueryResult("rate", "q", 0.0, values=dict(traffic))}
        if model % 5 == 3:
            results["p95"] = QueryResult("p95", "q", 0.0, error="bad_data: parse error")
        if model % 7 == 4:
            results = {}  # a model no query answered
        versions = rng.sample(VERSIONS, rng.randint(1, len(VERSIONS)))
        inputs.append(MatrixInput(results, versions, baseline, ("zz-empty",) if model % 2 else (),
                                  frozenset(rng.sample(versions, 1)) if model % 3 == 0 else frozenset()))
    together = build_matrices((ratio, p95, rate), inputs, "rate")
    for item, matrix in zip(inputs, together, strict=True):
        alone = build_matrix((ratio, p95, rate), item.results, item.versions, item.baseline_version, "rate",
                             item.segments, item.drained)
        assert matrix.segments == alone.segments and matrix.counts() == alone.counts()
        assert {name: dict(states) for name, states in matrix.states.items()} == \
            {name: dict(states) for name, states in alone.states.items()}
        assert summarise(matrix) == summarise(alone)
