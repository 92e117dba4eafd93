"""The metric catalogue's pure rules: rendering, escaping, parsing, formatting."""

import math

import pytest

from console.domain.metrics import (
    QueryResult,
    Unit,
    collect_series,
    escape_label_value,
    format_value,
    parse_sample_value,
    render_query,
    validate_window,
)


def test_render_query_escapes_the_model_and_fills_the_window():
    template = 'sum by (version, segment) (rate(x{model="$model"}[$window]))'
    assert render_query(template, 'fraud"detector\\x', "30s") == (
        'sum by (version, segment) (rate(x{model="fraud\\"detector\\\\x"}[30s]))'
    )


def test_a_model_name_cannot_break_out_of_its_label_matcher():
    rendered = render_query('x{model="$model"}', 'a"} or vector(1) or x{m="', "5m")
    # The injected quote is escaped, so the whole name stays one string literal.
    assert rendered == 'x{model="a\\"} or vector(1) or x{m=\\""}'
    assert escape_label_value("line\nbreak") == "line\\nbreak"


@pytest.mark.parametrize("window", ["30s", "1m", "1h30m", "500ms", "2d"])
def test_valid_windows(window):
    assert validate_window(window) == window


@pytest.mark.parametrize("window", ["", "30", "1 m", "$x", "5m]", "1.5m"])
def test_invalid_windows_are_refused(window):
    with pytest.raises(ValueError, match="PromQL duration"):
        render_query('x{model="$model"}[$window]', "m", window)


def test_nan_is_no_data_and_inf_is_a_value():
    assert parse_sample_value("NaN") is None
    assert parse_sample_value("0") == 0.0
    assert parse_sample_value("+Inf") == math.inf
    assert parse_sample_value("garbage") is None


def test_collect_series_indexes_by_version_and_segment_and_counts_unplaced():
    series = [
        {"metric": {"version": "03", "segment": "eu-ios"}, "value": [1.0, "0.5"]},
        {"metric": {"version": "2", "segment": "eu-ios"}, "value": [1.0, "NaN"]},
        {"metric": {"segment": "eu-ios"}, "value": [1.0, "1"]},
    ]
    cells, values, unplaced = collect_series(series, "version", "segment")
    assert cells == {("3", "eu-ios"): "0.5", ("2", "eu-ios"): "NaN"}
    assert values == {("3", "eu-ios"): 0.5}  # NaN: no data
    assert unplaced == 1
    result = QueryResult("m", "q", 1.0, raw=cells)
    assert result.value(("3", "eu-ios")) == 0.5
    assert result.value(("2", "eu-ios")) is None  # NaN: no data
    assert result.value(("9", "eu-ios")) is None  # absent: no data


def test_format_value_by_unit():
    assert format_value(0.0512, Unit.RATIO) == "5.1%"
    assert format_value(0.25, Unit.SECONDS) == "250 ms"
    assert format_value(3.456, Unit.PER_SECOND) == "3.46/s"
    assert format_value(None, Unit.RATIO) == "no data"
    assert format_value(math.inf, Unit.SECONDS) == "+Inf"
