"""What the console's matrix shows: columns that fit, row order, cell texts with symbol, word and delta."""

from __future__ import annotations

from console.domain.verdicts import State
from console.services.live import LiveStatus
from console.tui.matrix_model import column_title, plan_layout, row_cells, row_keys, row_state
from tests.fixtures.fakes import FakeRegistry, FakeRouter
from tests.tui.world import CATALOGUE, FROZEN_AT, MODEL, SEGMENTS, FakeMetrics


def matrix():
    live = LiveStatus(FakeRegistry(), FakeRouter(), FakeMetrics(), CATALOGUE, "traffic")
    return live.compose(MODEL, live.read_registry(MODEL).value, live.read_router(MODEL).value,
                        live.read_metrics(MODEL).value, FROZEN_AT).matrix


def test_the_widest_style_that_fits_every_metric_is_chosen():
    assert plan_layout(160, SEGMENTS, 4).style == "full"
    assert plan_layout(120, SEGMENTS, 4).style == "medium"
    small = plan_layout(80, SEGMENTS, 6)
    assert small.style == "small" and len(small.metric_indexes) < 6
    assert small.left_width + len(small.metric_indexes) * (small.cell_width + 1) <= 80


def test_narrow_columns_scroll_to_keep_the_focused_metric_shown():
    layout = plan_layout(80, SEGMENTS, 6, first_metric=5)
    assert layout.metric_indexes[-1] == 5


def test_rows_go_by_segment_then_version_or_worst_first_and_filter_by_segment():
    m = matrix()
    assert row_keys(m)[:2] == [("mobile", "2"), ("mobile", "3")]
    assert row_keys(m, worst_first=True)[0] == ("mobile", "3")
    assert row_state(m, ("mobile", "3")) is State.BREACH
    assert {segment for segment, _ in row_keys(m, segment_filter="WEB")} == {"web"}
    assert row_keys(m, segment_filter="nothing") == []


def test_a_cell_has_its_symbol_word_value_and_delta_against_the_stable_version():
    m = matrix()
    full = row_cells(m, ("mobile", "3"), plan_layout(160, m.segments, len(m.metrics)))
    assert full[0].state is State.BREACH and full[0].text.split() == ["✗", "BREACH", "15.0%", "+14.0", "pt"]
    stable = row_cells(m, ("mobile", "2"), plan_layout(160, m.segments, len(m.metrics)))
    assert stable[0].text.split()[-1] == "stable"
    small = row_cells(m, ("mobile", "3"), plan_layout(80, m.segments, len(m.metrics)))
    assert small[0].text.split() == ["✗", "15.0%"]


def test_the_summary_counts_what_the_matrix_counts_and_names_its_first_breach():
    from console.tui.matrix_model import summarise

    m = matrix()
    summary = summarise(m)
    assert summary.counts == m.counts()
    first = m.breaches()[0]
    assert summary.first_breach == (first.version, first.segment, m.spec(first.metric).title)


def test_column_titles_read_whole_at_80_columns():
    # The small style's cells leave 9 columns beside the cursor's mark: words are shortened, never cut.
    assert column_title("error rate", 9) == "err. rate"
    assert column_title("p95 latency", 9) == "p95 lat."
    assert column_title("accuracy", 9) == "accuracy" and column_title("req/s", 9) == "req/s"
    assert column_title("p95 latency", 26) == "p95 latency"
