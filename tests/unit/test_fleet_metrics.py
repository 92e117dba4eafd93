"""A fleet refresh: one query per catalogue metric for every model, split into the results one model gets alone.

The adapter is built without a server: its ``_send`` is replaced by a recorded Prometheus that answers a
fleet query with every model's series (labelled by model) and a one-model query with that model's only.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from console.adapters.prometheus import PrometheusMetrics
from console.domain.fleet import fleet_refresh_query, fleet_template, models_regex, render_fleet_query
from console.domain.metrics import Criteria, Direction, MetricKind, MetricSpec, Unit, evaluation_times
from console.sandbox.templates import CATALOGUE

MODELS = ("fraud-a", "fraud.b", "churn")

VALUE = MetricSpec("latency_p95", "p95", 'histogram_quantile(0.95, sum by (version, segment, le) '
                   '(rate(lat_bucket{model="$model"}[$window])))', Unit.SECONDS, Direction.HIGHER_IS_WORSE)
RATIO = MetricSpec("error_rate", "errors", 'x{model="$model"}', Unit.RATIO, Direction.HIGHER_IS_WORSE,
                   Criteria(threshold=0.05), kind=MetricKind.RATIO,
                   numerator='sum by (version, segment) (increase(err{model="$model"}[$window]))',
                   denominator='sum by (version, segment) (increase(req{model="$model"}[$window]))')
PERSISTS = MetricSpec("score", "score", 'sum by (version, segment) (s{model="$model"})', Unit.SCORE,
                      Direction.HIGHER_IS_WORSE, Criteria(threshold=0.5, evaluations=4, step_s=15.0))
SPECS = (VALUE, RATIO, PERSISTS)
AT = 1_700_000_000.0


def series_for(spec: MetricSpec, model: str) -> list[dict]:
    """Each model's own odd cells: a NaN, a version written 03, a count over its denominator, a missing point."""
    if model == "churn":
        return []  # no series at all: no data
    labels = [{"version": "03" if model == "fraud-a" else "3", "segment": "eu"}, {"version": "2", "segment": "eu"},
              {"version": "2", "segment": "us"}]
    out = []
    for index, cell in enumerate(labels):
        cell = {**cell, "model": model}
        if spec.counts:
            num, den = (5.0, 100.0) if index else (120.0, 100.0)  # the first cell's counts are impossible
            out.append({"metric": {**cell, "rewind_part": "numerator"}, "value": [AT, repr(num)]})
            out.append({"metric": {**cell, "rewind_part": "denominator"}, "value": [AT, repr(den)]})
        elif spec.persists:
            times = evaluation_times(spec, AT)
            points = [[t, str(0.6 + index / 10)] for t in times]
            if index == 2:
                points = points[1:]  # a missing evaluation
            out.append({"metric": cell, "values": points})
        else:
            out.append({"metric": cell, "value": [AT, "NaN" if index == 1 else str(0.1 * (index + 1))]})
    return out


def body(result: list[dict], result_type: str) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": result_type, "result": result}}).encode()


class RecordedPrometheus:
    """Answers the adapter's queries from :func:`series_for`; counts what it was asked."""

    def __init__(self, specs=SPECS, fail: str | None = None) -> None:
        self.queries: list[str] = []
        self.specs = {spec.name: spec for spec in specs}
        self.fail = fail

    def __call__(self, spec: MetricSpec, promql: str, at: float) -> tuple[int, bytes]:
        self.queries.append(promql)
        if spec.name == self.fail:
            return 400, json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode()
        kind = "matrix" if spec.persists else "vector"
        fleet = re.search(r'model=~"([^"]*)"', promql)
        if fleet:
            wanted = [m for m in MODELS if re.fullmatch(fleet.group(1).replace("\\\\", "\\"), m)]
            return 200, body([s for m in wanted for s in series_for(spec, m)], kind)
        model = re.search(r'model="([^"]*)"', promql).group(1)
        alone = [{**s, "metric": {k: v for k, v in s["metric"].items() if k != "model"}}
                 for s in series_for(spec, model)]
        return 200, body(alone, kind)


def adapter(monkeypatch, recorded: RecordedPrometheus) -> PrometheusMetrics:
    metrics = PrometheusMetrics("http://127.0.0.1:1", "1m", max_parallel=1)
    monkeypatch.setattr(metrics, "_send", recorded)
    return metrics


def same(fleet, alone) -> None:
    assert fleet.error == alone.error
    assert fleet.values == alone.values
    assert dict(fleet.raw) == dict(alone.raw)
    assert dict(fleet.counts) == dict(alone.counts)
    assert {k: fleet.recent[k] for k in fleet.recent} == {k: alone.recent[k] for k in alone.recent}
    assert dict(fleet.problems) == dict(alone.problems)


def test_one_query_per_metric_for_the_whole_fleet_and_each_model_gets_what_it_gets_alone(monkeypatch):
    recorded = RecordedPrometheus()
    metrics = adapter(monkeypatch, recorded)
    careful = metrics._fleet_careful
    monkeypatch.setattr(metrics, "_fleet_careful", lambda *a: pytest.fail("took the careful path"))
    fleet = metrics.evaluate_fleet(SPECS, MODELS, AT)
    monkeypatch.setattr(metrics, "_fleet_careful", careful)
    assert len(recorded.queries) == len(SPECS)
    assert all('model=~"' in q for q in recorded.queries)
    assert set(fleet) == set(MODELS)
    for model in MODELS:
        alone = metrics.evaluate(SPECS, model, AT)
        assert list(fleet[model]) == [spec.name for spec in SPECS]
        for spec in SPECS:
            same(fleet[model][spec.name], alone[spec.name])
    assert fleet["fraud-a"]["latency_p95"].values == {("3", "eu"): 0.1, ("2", "us"): pytest.approx(0.3)}
    assert fleet["churn"]["error_rate"].values == {}  # no series: no data, never zero
    # Each model's answers are columns over one index of its own, which the judge reads as they are.
    for model in MODELS:
        indexes = {id(result.columns.index) for result in fleet[model].values() if result.columns is not None}
        assert len(indexes) == 1, model
    assert fleet["fraud-a"]["latency_p95"].columns.index is not fleet["churn"]["latency_p95"].columns.index


def test_the_careful_path_splits_an_answer_the_fast_path_cannot_read(monkeypatch):
    recorded = RecordedPrometheus()
    metrics = adapter(monkeypatch, recorded)
    original = series_for

    def with_inf(spec, model):
        out = original(spec, model)
        if out and not spec.counts and not spec.persists:
            out[0]["value"] = [AT, "+Inf"]
        return out

    monkeypatch.setattr(f"{__name__}.series_for", with_inf)
    fleet = metrics.evaluate_fleet((VALUE,), MODELS, AT)
    alone = metrics.evaluate((VALUE,), "fraud.b", AT)
    same(fleet["fraud.b"]["latency_p95"], alone["latency_p95"])
    assert fleet["fraud.b"]["latency_p95"].value(("3", "eu")) == math.inf


def test_a_rejected_query_is_an_error_for_every_model_and_the_others_still_count(monkeypatch):
    metrics = adapter(monkeypatch, RecordedPrometheus(fail="latency_p95"))
    fleet = metrics.evaluate_fleet(SPECS, MODELS, AT)
    assert {fleet[m]["latency_p95"].error for m in MODELS} == {"bad_data: parse error"}
    assert fleet["fraud-a"]["score"].error is None


def test_series_without_the_model_label_say_which_setting_to_fix(monkeypatch):
    metrics = adapter(monkeypatch, RecordedPrometheus())
    monkeypatch.setattr(metrics, "_send", lambda spec, promql, at: (200, body(
        [{"metric": {"version": "1", "segment": "eu"}, "value": [AT, "0.1"]}], "vector")))
    fleet = metrics.evaluate_fleet((VALUE,), MODELS, AT)
    assert "metrics.model_label" in fleet["churn"]["latency_p95"].error


def test_a_template_that_would_merge_the_models_is_refused_with_its_setting(monkeypatch):
    merging = MetricSpec("total", "total", 'sum(rate(x{model="$model"}[$window]))', Unit.PER_SECOND,
                         Direction.HIGHER_IS_WORSE)
    recorded = RecordedPrometheus()
    metrics = adapter(monkeypatch, recorded)
    fleet = metrics.evaluate_fleet((merging, VALUE), MODELS, AT)
    error = fleet["fraud-a"]["total"].error
    assert "aggregates without by" in error and "metrics.catalogue[total]" in error
    assert len(recorded.queries) == 1  # the others are still asked


def test_the_sandbox_catalogue_rewrites_for_the_fleet():
    for metric in CATALOGUE:
        query = render_fleet_query(metric["query"], ["fraud-a", "b"], "1m", "model")
        assert "$" not in query and 'model=~"b|fraud\\\\-a"' in query
        assert all("model" in group for group in re.findall(r"\b(?:by|on) \(([^)]*)\)", query))


@pytest.mark.parametrize(("template", "why"), [
    ('sum(rate(x{model="$model"}[$window]))', "aggregates without by"),
    ('sum without (model) (x{model="$model"})', "without (model)"),
    ('x{job="$model"}', 'is not model="$model"'),
    ('scalar(x{model="$model"})', "scalar()"),
    ('x{model="a"}', "does not select the model"),
])
def test_templates_that_would_merge_the_models_are_refused(template, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        fleet_template(template, "model")


def test_grouping_forms_and_strings_are_kept():
    assert fleet_template('sum(x{model="$model",path="by (a)"}) by (version, segment)', "model") == \
        'sum(x{model=~"$fleet",path="by (a)"}) by (version, segment, model)'
    assert fleet_template('a{svc="$model"} / ignoring (le) b{svc="$model"}', "svc") == \
        'a{svc=~"$fleet"} / ignoring (le) b{svc=~"$fleet"}'


def test_model_names_are_matched_literally():
    assert models_regex(["a.b", "c+d", "e_f"]) == "a\\.b|c\\+d|e_f"
    query = fleet_refresh_query(RATIO, ["m"], "5m", "model")
    assert query.count('model=~"m"') == 2 and "rewind_part" in query


def test_a_model_with_unusual_counts_or_points_is_read_carefully_and_the_others_stay_columns(monkeypatch):
    """fraud-a keeps its impossible count and its missing point; fraud.b's answer is the usual one. Each model
    still gets what it gets alone, and only fraud-a's results leave the columns."""
    original = series_for

    def usual_for_b(spec, model):
        out = original(spec, model)
        if model != "fraud.b":
            return out
        if spec.counts:
            out[0]["value"] = [AT, "5.0"]
        elif spec.persists:
            out[2]["values"] = [[t, "0.8"] for t in evaluation_times(spec, AT)]
        return out

    monkeypatch.setattr(f"{__name__}.series_for", usual_for_b)
    metrics = adapter(monkeypatch, RecordedPrometheus())
    monkeypatch.setattr(metrics, "_fleet_careful", lambda *a: pytest.fail("took the careful path"))
    fleet = metrics.evaluate_fleet(SPECS, MODELS, AT)
    monkeypatch.undo()
    monkeypatch.setattr(f"{__name__}.series_for", usual_for_b)
    metrics = adapter(monkeypatch, RecordedPrometheus())
    for model in MODELS:
        alone = metrics.evaluate(SPECS, model, AT)
        for spec in SPECS:
            same(fleet[model][spec.name], alone[spec.name])
    for spec in (RATIO, PERSISTS):
        assert fleet["fraud.b"][spec.name].columns is not None, spec.name
        assert fleet["fraud-a"][spec.name].columns is None, spec.name
    assert fleet["fraud.b"]["error_rate"].counts[("3", "eu")] == (5.0, 100.0)
    assert fleet["fraud.b"]["score"].recent[("2", "us")] == (0.8, 0.8, 0.8, 0.8)
