"""The shadow promotion gate: a segment passes only on proof, holds on too little evidence, fails on proof of harm;
the evidence is read one query per quantity for every segment, and the clock from one range evaluation."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from console.domain.errors import ConfigError, MetricsError
from console.domain.metrics import MetricKind, QueryResult, RangeResult
from console.domain.shadow import (
    CostEvidence,
    GateClock,
    GateVerdict,
    SegmentEvidence,
    ShadowLimits,
    cost_per_thousand,
    format_clock,
    gate_clock,
    judge_segment,
    mcnemar_p,
)
from console.domain.stats import binomial_tail_at_least, exact_upper, trials_to_bound
from console.services.shadow_gate import ShadowGate, shadow_specs

SHADOW, CHAMPION = "3", "2"
SEGMENTS = ("eu/mobile", "eu/web", "us/mobile", "us/web")
NOW = 1_760_000_000.0
LIMITS = ShadowLimits()


def quantities(pairs=300.0, disagree=0.0, coverage=1.0, shadow_errors=0.0, champion_errors=0.0,
               score_p95=0.004, shadow_p95=0.012, champion_p95=0.010, labelled=None):
    """One segment's quantities as the gate's queries return them (``shadow.<name>``), identical models by default.

    ``labelled``: ``(both_right, champion_only, shadow_only, both_wrong)``; ``None``: the pairs carried no labels.
    """
    champion_ok = pairs
    copies = pairs * coverage
    found = {"pairs": copies, "disagreements": copies * disagree, "shadow_copies": copies,
             "shadow_errors": shadow_errors, "score_delta_p95": score_p95, "shadow_p95": shadow_p95,
             "champion_ok": champion_ok, "champion_errors": champion_errors, "champion_p95": champion_p95}
    if labelled is not None:
        found.update(zip(("both_right", "champion_only", "shadow_only", "both_wrong"), labelled, strict=True))
    return found


CHAMPION_SIDE = {"champion_ok", "champion_errors", "champion_p95"}


def answers(world, cpu=None):
    """``{spec name: {(version, segment): value}}`` from ``{segment: quantities}``, keyed as the adapter keys them."""
    out: dict[str, dict[tuple[str, str], float]] = {}
    for segment, found in world.items():
        for name, value in found.items():
            version = CHAMPION if name in CHAMPION_SIDE else SHADOW
            out.setdefault(f"shadow.{name}", {})[(version, segment)] = value
    for name, by_version in (cpu or {}).items():
        out[f"shadow.{name}"] = {(version, "*"): value for version, value in by_version.items()}
    return out


class FakeShadowMetrics:
    """A metrics source whose answers come from ``world(t) -> {segment: quantities}`` (or that is down)."""

    def __init__(self, world, cpu=None, down=False, broken=()):
        self.world, self.cpu, self.down, self.broken = world, cpu, down, set(broken)
        self.calls: list[tuple] = []

    def describe(self):
        return "fake Prometheus"

    def _check(self, specs):
        if self.down:
            raise MetricsError("Prometheus at http://127.0.0.1:9: unreachable (metrics.url)")
        for spec in specs:  # the gate's queries are the quantities themselves, for every segment at once
            assert spec.kind is MetricKind.VALUE and not spec.criteria.judges
            assert "$model" in spec.query and "$window" not in spec.query and "[5m]" in spec.query

    def evaluate(self, specs, model, at=None):
        self.calls.append(("evaluate", tuple(s.name for s in specs), model, at))
        self._check(specs)
        found = answers(self.world(at), self.cpu)
        return {spec.name: QueryResult(spec.name, spec.query, at, error="bad_data: boom")
                if spec.name in self.broken else
                QueryResult(spec.name, spec.query, at, values=dict(found.get(spec.name, {})))
                for spec in specs}

    def history(self, specs, model, start, end, step):
        self.calls.append(("history", tuple(s.name for s in specs), model, start, end, step))
        self._check(specs)
        times = [start + k * step for k in range(round((end - start) / step) + 1)]
        series: dict[str, dict[tuple[str, str], list]] = {spec.name: {} for spec in specs}
        for t in times:
            for name, cells in answers(self.world(t), self.cpu).items():
                for key, value in cells.items():
                    series.setdefault(name, {}).setdefault(key, []).append((t, value))
        return {spec.name: RangeResult(spec.name, spec.query, start, end, step,
                                       series={k: tuple(v) for k, v in series[spec.name].items()},
                                       error="bad_data: boom" if spec.name in self.broken else None)
                for spec in specs}


def steady(world):
    return lambda t: world


def gate(metrics, window_s=600.0):
    return ShadowGate(metrics, LIMITS, window_s, "5m", clock=lambda: NOW)


def reasons(reading):
    return " | ".join(f"{s.segment}: {s.reason} [{'; '.join(c.reason for c in s.criteria)}]" for s in reading.segments)


# -- the statistics behind it -------------------------------------------------------------------------------


def test_trials_to_bound_is_the_first_count_whose_zero_bound_is_under_the_level():
    for level in (0.05, 0.01, 0.02, 0.2):
        needed = trials_to_bound(level, 0.95)
        assert exact_upper(0, needed, 0.95) <= level < exact_upper(0, needed - 1, 0.95)
    assert trials_to_bound(0.05, 0.95) == 72 and trials_to_bound(0.01, 0.95) == 368


def test_the_binomial_tail_is_the_exact_sum_and_mcnemar_is_one_sided():
    for k, n in ((8, 10), (12, 14), (0, 5), (5, 5), (3, 9)):
        exact = sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
        assert binomial_tail_at_least(k, n, 0.5) == pytest.approx(exact, rel=1e-9)
    assert mcnemar_p(12, 2) == pytest.approx(106 / 16384)  # 12 flips against the shadow, 2 for it
    assert mcnemar_p(2, 12) > 0.99 and mcnemar_p(0, 0) == 1.0
    assert 0.0 < binomial_tail_at_least(7.6, 9.4, 0.5) < 1.0  # fractional counts from increase()


# -- one segment, judged --------------------------------------------------------------------------------------


def segment(**kw):
    labelled = kw.pop("labelled", (280.0, 0.0, 0.0, 20.0))
    cost = kw.pop("cost", None)
    found = quantities(labelled=labelled, **kw)
    copies, errors = found.pop("shadow_copies"), found.pop("shadow_errors")
    cells = dict(zip(("both_right", "champion_only", "shadow_only", "both_wrong"), labelled or (None,) * 4,
                     strict=True))
    return SegmentEvidence("eu/web", pairs=found["pairs"], disagreements=found["disagreements"],
                           shadow_ok=copies - errors, shadow_errors=errors, champion_ok=found["champion_ok"],
                           champion_errors=found["champion_errors"], score_delta_p95=found["score_delta_p95"],
                           shadow_p95=found["shadow_p95"], champion_p95=found["champion_p95"], cost=cost, **cells)


def test_identical_models_pass_every_criterion_once_there_are_enough_pairs():
    verdict = judge_segment(segment(pairs=400.0), LIMITS)
    assert verdict.verdict is GateVerdict.PASS, verdict.reason
    assert {c.criterion: c.verdict for c in verdict.criteria} == {
        "coverage": GateVerdict.PASS, "disagreement": GateVerdict.PASS, "score_delta": GateVerdict.PASS,
        "errors": GateVerdict.PASS, "latency": GateVerdict.PASS, "mcnemar": GateVerdict.PASS}
    assert verdict.criterion("disagreement").reason.startswith("0.0% of pairs (0 of 400), bound 0.9% ≤ 5.0%")


@pytest.mark.parametrize("pairs", [0.4, 1.0, 10.0, 40.0, 71.6])
def test_too_few_pairs_holds_and_never_passes_even_with_no_disagreement(pairs):
    verdict = judge_segment(segment(pairs=pairs, labelled=None), LIMITS)
    disagreement = verdict.criterion("disagreement")
    assert verdict.verdict is GateVerdict.HOLD and disagreement.verdict is GateVerdict.HOLD
    shown = min(round(pairs), 71)
    assert disagreement.reason.startswith(f"too few pairs ({shown} of ≥ 72 needed)")


def test_a_disagreement_rate_is_passed_only_on_its_bound():
    near = judge_segment(segment(pairs=200.0, disagree=0.03), LIMITS).criterion("disagreement")
    assert near.verdict is GateVerdict.HOLD and "not proven yet" in near.reason  # 3 % seen, bound above 5 %
    proven = judge_segment(segment(pairs=800.0, disagree=0.02), LIMITS).criterion("disagreement")
    assert proven.verdict is GateVerdict.PASS
    harmful = judge_segment(segment(pairs=30.0, disagree=0.5), LIMITS).criterion("disagreement")
    assert harmful.verdict is GateVerdict.FAIL and "at least" in harmful.reason  # proven even on few pairs


def test_counts_are_shown_whole():
    verdict = judge_segment(segment(pairs=299.6, disagree=0.01, shadow_errors=0.4), LIMITS)
    text = " ".join(c.reason for c in verdict.criteria)
    assert "(3 of 300)" in text and "299.6" not in text and ".4 of" not in text


def test_coverage_below_the_floor_holds_never_fails():
    verdict = judge_segment(segment(pairs=400.0, coverage=0.4), LIMITS)
    coverage = verdict.criterion("coverage")
    assert verdict.verdict is GateVerdict.HOLD and coverage.verdict is GateVerdict.HOLD
    assert coverage.reason.startswith("copies shed or not mirrored: coverage 0.40")
    assert "coverage" in verdict.reason


def test_a_slow_shadow_fails_on_latency():
    verdict = judge_segment(segment(pairs=400.0, shadow_p95=0.5, champion_p95=0.01), LIMITS)
    latency = verdict.criterion("latency")
    assert latency.verdict is GateVerdict.FAIL and verdict.verdict is GateVerdict.FAIL
    assert latency.reason == "p95 500 ms > 32 ms (champion 10 ms × 1.2 + 20 ms)"
    within = judge_segment(segment(pairs=400.0, shadow_p95=0.031, champion_p95=0.01), LIMITS)
    assert within.criterion("latency").verdict is GateVerdict.PASS


def test_point_estimates_hold_below_min_pairs_and_on_no_data():
    few = judge_segment(segment(pairs=20.0, score_p95=0.5, shadow_p95=2.0), LIMITS)
    assert few.criterion("score_delta").verdict is GateVerdict.HOLD
    assert few.criterion("latency").verdict is GateVerdict.HOLD
    missing = judge_segment(segment(pairs=400.0, score_p95=math.nan, shadow_p95=None), LIMITS)
    assert missing.criterion("score_delta").reason.startswith("no data")
    assert missing.criterion("latency").reason.startswith("no data")
    assert missing.verdict is GateVerdict.HOLD
    wide = judge_segment(segment(pairs=400.0, score_p95=0.18), LIMITS)
    assert wide.criterion("score_delta").verdict is GateVerdict.FAIL


def test_errors_are_judged_on_the_bound_against_the_champion():
    worse = judge_segment(segment(pairs=400.0, shadow_errors=20.0), LIMITS).criterion("errors")
    assert worse.verdict is GateVerdict.FAIL
    assert judge_segment(segment(pairs=400.0), LIMITS).criterion("errors").verdict is GateVerdict.PASS
    short = judge_segment(segment(pairs=300.0), LIMITS).criterion("errors")
    assert short.verdict is GateVerdict.HOLD and short.reason.startswith("too few predictions (300 of ≥ 368")
    # the champion fails 5 %: the shadow may fail up to 6 % and is proven under it
    alike = judge_segment(segment(pairs=2000.0, shadow_errors=80.0, champion_errors=100.0), LIMITS)
    assert alike.criterion("errors").verdict is GateVerdict.PASS


def test_mcnemar_fails_a_shadow_whose_flips_go_significantly_against_it():
    worse = judge_segment(segment(pairs=400.0, labelled=(370.0, 12.0, 2.0, 16.0)), LIMITS)
    mcnemar = worse.criterion("mcnemar")
    assert mcnemar.verdict is GateVerdict.FAIL and worse.verdict is GateVerdict.FAIL
    assert mcnemar.reason.startswith("flips: 2 to the shadow's favour, 12 against")
    better = judge_segment(segment(pairs=400.0, labelled=(370.0, 2.0, 12.0, 16.0)), LIMITS)
    assert better.criterion("mcnemar").verdict is GateVerdict.PASS
    even = judge_segment(segment(pairs=400.0, labelled=(370.0, 6.0, 4.0, 20.0)), LIMITS)
    assert even.criterion("mcnemar").verdict is GateVerdict.PASS
    unlabelled = judge_segment(segment(pairs=400.0, labelled=None), LIMITS)
    assert unlabelled.criterion("mcnemar").verdict is None  # shown, not judged
    assert unlabelled.criterion("mcnemar").reason.startswith("flips: 0 to the shadow's favour, 0 against")
    assert unlabelled.verdict is GateVerdict.PASS


def test_cost_is_judged_only_with_a_price():
    cheap = CostEvidence(shadow_cpu_seconds=6.0, shadow_predictions=600.0, champion_cpu_seconds=5.0,
                         champion_predictions=600.0)
    dear = CostEvidence(shadow_cpu_seconds=20.0, shadow_predictions=600.0, champion_cpu_seconds=5.0,
                        champion_predictions=600.0)
    assert cost_per_thousand(6.0, 600.0, 0.5) == pytest.approx(5.0)
    unpriced = judge_segment(segment(pairs=400.0, cost=dear), LIMITS)
    assert unpriced.criterion("cost").verdict is None and unpriced.verdict is GateVerdict.PASS
    assert judge_segment(segment(pairs=400.0, cost=cheap), LIMITS, price=0.0001).criterion("cost").verdict \
        is GateVerdict.PASS
    priced = judge_segment(segment(pairs=400.0, cost=dear), LIMITS, price=0.0001)
    assert priced.criterion("cost").verdict is GateVerdict.FAIL and priced.verdict is GateVerdict.FAIL


def test_a_segment_the_champion_did_not_serve_holds():
    verdict = judge_segment(SegmentEvidence("eu/web", pairs=100.0, disagreements=0.0, champion_ok=0.0), LIMITS)
    assert verdict.verdict is GateVerdict.HOLD and verdict.reason == "traffic: no champion traffic"
    assert judge_segment(SegmentEvidence("eu/web"), LIMITS).verdict is GateVerdict.HOLD


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError, match="max_disagreement"):
        ShadowLimits(max_disagreement=0.0)
    with pytest.raises(ValueError, match="confidence"):
        ShadowLimits(confidence=1.0)


# -- the clock ------------------------------------------------------------------------------------------------


def passes(*segments):
    return dict.fromkeys(segments or SEGMENTS, GateVerdict.PASS)


def test_the_clock_runs_from_the_first_pass_after_the_last_hold():
    times = [NOW - 600 + 15 * k for k in range(41)]
    hold_at = NOW - 180
    evaluations = [(t, {**passes(), "eu/web": GateVerdict.HOLD} if t == hold_at else passes()) for t in times]
    clock = gate_clock(evaluations, started_at=NOW - 3600, now=NOW, window=600)
    assert clock.held_for == 165 and not clock.holds and clock.text == "2:45 / 10:00"
    assert gate_clock([(t, passes()) for t in times], NOW - 3600, NOW, 600).holds


def test_the_clock_is_bounded_by_the_shadow_start_and_stops_at_a_hold_now():
    times = [NOW - 600 + 15 * k for k in range(41)]
    clock = gate_clock([(t, passes()) for t in times], started_at=NOW - 400, now=NOW, window=600)
    assert clock == GateClock(400.0, 600.0) and clock.text == "6:40 / 10:00" and not clock.holds
    latest_holds = [(t, passes()) for t in times[:-1]] + [(NOW, {**passes(), "us/web": GateVerdict.FAIL})]
    assert gate_clock(latest_holds, NOW - 3600, NOW, 600).held_for == 0


def test_an_evaluation_that_judged_nothing_or_missed_a_segment_is_not_a_pass():
    assert gate_clock([(NOW - 30, {}), (NOW, {})], NOW - 3600, NOW, 600).held_for == 0
    missing = [(NOW - 30, passes("eu/web")), (NOW - 15, passes()), (NOW, passes())]
    assert gate_clock(missing, NOW - 3600, NOW, 600).held_for == 15
    assert gate_clock([], NOW - 3600, NOW, 600).held_for == 0


def test_the_clock_text():
    assert format_clock(400) == "6:40" and format_clock(599.9) == "9:59" and format_clock(0) == "0:00"
    assert format_clock(90_400) == "25:06:40"


# -- the gate read from the metrics ---------------------------------------------------------------------------


def test_the_gate_reads_one_query_per_quantity_for_every_segment():
    specs = shadow_specs(SHADOW, CHAMPION, "5m")
    assert len({s.name for s in specs}) == len(specs) == 15
    many = {f"seg{i}": quantities() for i in range(40)}
    metrics = FakeShadowMetrics(steady(many))
    reading = gate(metrics).now("churn", SHADOW, CHAMPION)
    assert len(metrics.calls) == 1 and len(metrics.calls[0][1]) == len(specs)  # 40 segments, still one each
    assert len(reading.segments) == 40
    for spec in specs:
        assert ('version="3"' in spec.query and 'baseline="2"' in spec.query) or 'version="2"' in spec.query \
            or 'segment", "*"' in spec.query


def test_identical_models_pass_everywhere_and_the_gate_holds_after_the_window():
    metrics = FakeShadowMetrics(steady(dict.fromkeys(SEGMENTS, quantities(pairs=400.0))))
    reading = gate(metrics).now("churn", SHADOW, CHAMPION)
    assert reading.verdict is GateVerdict.PASS and reading.clock is None, reasons(reading)
    assert [s.segment for s in reading.segments] == sorted(SEGMENTS)
    held = gate(metrics).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 3600, now=NOW)
    assert held.holds and held.clock.text == "10:00 / 10:00"
    assert held.summary == "gate held: every segment passed for 10:00 (4)"
    _, _, model, start, end, step = metrics.calls[-1]
    assert (model, start, end, step) == ("churn", NOW - 600, NOW, 15.0)
    young = gate(metrics).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 400, now=NOW)
    assert not young.holds and young.verdict is GateVerdict.PASS and young.clock.text.endswith("/ 10:00")
    # The first 5 minutes (the evidence window) count time before any copy: nothing passes while warming up.
    assert 90 <= young.clock.held_for <= 100 and young.summary.startswith("every segment passes (4); held 1:")
    warming = gate(metrics).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 120, now=NOW)
    assert warming.verdict is GateVerdict.HOLD and warming.clock.held_for == 0
    assert "warming up: the evidence window (5m) is not yet full since the shadow started (2:00 of 5:00)" \
        in warming.segments[0].reason


def test_a_significant_but_small_accuracy_drop_passes_a_large_one_fails():
    small = SegmentEvidence("eu", pairs=4000.0, disagreements=40.0, shadow_ok=4000.0, shadow_errors=0.0,
                            champion_ok=4000.0, champion_errors=0.0, score_delta_p95=0.03, shadow_p95=0.02,
                            champion_p95=0.02, both_right=3500.0, champion_only=40.0, shadow_only=0.0,
                            both_wrong=460.0)
    verdict = judge_segment(small, ShadowLimits())
    assert verdict.criterion("mcnemar").verdict is GateVerdict.PASS, verdict.reason  # 1 pt worse, p tiny
    large = replace(small, champion_only=400.0, both_right=3140.0)
    assert judge_segment(large, ShadowLimits()).criterion("mcnemar").verdict is GateVerdict.FAIL


def test_too_few_pairs_everywhere_holds():
    metrics = FakeShadowMetrics(steady(dict.fromkeys(SEGMENTS, quantities(pairs=40.0))))
    reading = gate(metrics).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 3600, now=NOW)
    assert reading.verdict is GateVerdict.HOLD and not reading.holds and reading.clock.held_for == 0
    assert all(s.verdict is GateVerdict.HOLD for s in reading.segments)
    assert "too few pairs (40 of ≥ 72 needed)" in reading.summary


def test_one_segment_flipping_fails_there_only():
    world = {**dict.fromkeys(SEGMENTS, quantities(pairs=400.0)), "eu/mobile": quantities(pairs=400.0, disagree=0.3)}
    reading = gate(FakeShadowMetrics(steady(world))).now("churn", SHADOW, CHAMPION)
    by_segment = {s.segment: s.verdict for s in reading.segments}
    assert by_segment == {**dict.fromkeys(SEGMENTS, GateVerdict.PASS), "eu/mobile": GateVerdict.FAIL}
    assert reading.verdict is GateVerdict.FAIL
    assert reading.summary.startswith("FAIL in eu/mobile: disagreement: 30.0% of pairs (120 of 400)")


def test_low_coverage_and_a_slow_shadow_read_from_the_metrics():
    world = {**dict.fromkeys(SEGMENTS, quantities(pairs=400.0)), "us/web": quantities(pairs=400.0, coverage=0.4),
             "eu/web": quantities(pairs=400.0, shadow_p95=0.5, champion_p95=0.01)}
    reading = gate(FakeShadowMetrics(steady(world))).now("churn", SHADOW, CHAMPION)
    us_web = reading.segment("us/web")
    assert us_web.verdict is GateVerdict.HOLD
    assert us_web.criterion("coverage").reason.startswith("copies shed or not mirrored: coverage 0.40")
    assert reading.segment("eu/web").criterion("latency").verdict is GateVerdict.FAIL
    assert reading.segment("us/mobile").verdict is GateVerdict.PASS
    assert reading.summary.index("FAIL in eu/web") < reading.summary.index("HOLD in us/web")


def test_mcnemar_and_cost_read_from_the_metrics():
    world = dict.fromkeys(SEGMENTS, quantities(pairs=400.0, labelled=(370.0, 12.0, 2.0, 16.0)))
    cpu = {"cpu_seconds": {SHADOW: 12.0, CHAMPION: 6.0}, "predictions": {SHADOW: 1600.0, CHAMPION: 1600.0}}
    metrics = FakeShadowMetrics(steady(world), cpu=cpu)
    reading = gate(metrics).now("churn", SHADOW, CHAMPION, price=0.0001)
    eu = reading.segment("eu/web")
    assert eu.criterion("mcnemar").reason.startswith("flips: 2 to the shadow's favour, 12 against")
    assert eu.criterion("mcnemar").verdict is GateVerdict.FAIL
    assert eu.criterion("cost").verdict is GateVerdict.FAIL and "2.00 ×" in eu.criterion("cost").reason
    assert eu.evidence.cost == CostEvidence(12.0, 1600.0, 6.0, 1600.0)


def test_a_hold_three_minutes_ago_restarts_the_clock():
    good = dict.fromkeys(SEGMENTS, quantities(pairs=400.0))
    held_back = {**good, "us/web": quantities(pairs=400.0, coverage=0.5)}

    def world(t):
        return held_back if abs(t - (NOW - 180)) < 1 else good

    reading = gate(FakeShadowMetrics(world)).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 3600, now=NOW)
    assert reading.verdict is GateVerdict.PASS  # now
    assert reading.clock.held_for == 165 and not reading.holds
    assert reading.summary == "every segment passes (4); held 2:45 / 10:00"


def test_metrics_unreachable_hold_every_segment_never_pass():
    metrics = FakeShadowMetrics(steady(dict.fromkeys(SEGMENTS, quantities(pairs=400.0))))
    shadow_gate = gate(metrics)
    assert shadow_gate.now("churn", SHADOW, CHAMPION).verdict is GateVerdict.PASS
    metrics.down = True
    reading = shadow_gate.now("churn", SHADOW, CHAMPION)
    assert reading.verdict is GateVerdict.HOLD and reading.error and "unreachable" in reading.error
    assert [s.segment for s in reading.segments] == sorted(SEGMENTS)  # the segments last seen
    assert all(s.verdict is GateVerdict.HOLD and s.reason.startswith("metrics: metrics unavailable: Prometheus")
               for s in reading.segments)
    over = shadow_gate.over_window("churn", SHADOW, CHAMPION, started_at=NOW - 3600, now=NOW)
    assert over.clock.held_for == 0 and not over.holds and over.verdict is GateVerdict.HOLD
    never_seen = gate(metrics).now("churn", SHADOW, CHAMPION)
    assert never_seen.verdict is GateVerdict.HOLD and never_seen.summary.startswith("HOLD: metrics unavailable")


def test_a_rejected_query_holds_every_segment():
    metrics = FakeShadowMetrics(steady(dict.fromkeys(SEGMENTS, quantities(pairs=400.0))), broken={"shadow.pairs"})
    reading = gate(metrics).now("churn", SHADOW, CHAMPION)
    assert all(s.verdict is GateVerdict.HOLD for s in reading.segments)
    assert "metrics unavailable: shadow.pairs: bad_data: boom" in reading.segment("eu/web").reason
    over = gate(metrics).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 3600, now=NOW)
    assert over.clock.held_for == 0


def test_the_evidence_window_is_written_into_the_queries_and_checked():
    assert all("[10m]" in spec.query for spec in shadow_specs(SHADOW, CHAMPION, "10m"))
    with pytest.raises(ConfigError, match="shadow.evidence_window"):
        ShadowGate(FakeShadowMetrics(steady({})), LIMITS, 600, "5 minutes")
    with pytest.raises(ConfigError, match="shadow.window"):
        ShadowGate(FakeShadowMetrics(steady({})), LIMITS, 0, "5m")


def test_a_long_window_is_read_at_a_coarser_step():
    metrics = FakeShadowMetrics(steady(dict.fromkeys(SEGMENTS, quantities(pairs=400.0))))
    reading = ShadowGate(metrics, LIMITS, 86_400, "5m", clock=lambda: NOW).over_window(
        "churn", SHADOW, CHAMPION, started_at=NOW - 200_000, now=NOW)
    _, _, _, start, end, step = metrics.calls[-1]
    assert (end - start) / step <= 2000 and end - start >= 86_400 and reading.holds


def test_segments_that_say_the_same_are_said_once_and_warming_up_hides_what_the_window_cannot_show():
    metrics = FakeShadowMetrics(steady(dict.fromkeys(SEGMENTS, quantities(pairs=400.0))))
    warming = gate(metrics).over_window("churn", SHADOW, CHAMPION, started_at=NOW - 60, now=NOW)
    assert warming.summary.startswith("HOLD in every segment: window: warming up")
    assert warming.summary.count("warming up") == 1
    assert all([c.criterion for c in s.criteria] == ["window"] for s in warming.segments)
