"""The metrics-history capture: one range query per metric over the incident, journaled compactly and redacted,
and the exports' choice between capturing afresh and reading what the journal holds."""

from __future__ import annotations

import argparse
import math

import pytest

from console.adapters.journal_sql import SqlJournal
from console.domain.errors import MetricsError, UsageError
from console.domain.journal import Actor, EventKind, verify_chain
from console.domain.metrics import RangeResult
from console.services.history import (
    HistoryService,
    has_history,
    history_window,
    latest_history,
)
from console.services.journal import JournalService
from tests.fixtures.journal_data import (
    DRILL_CLOSED,
    DRILL_OPENED,
    _drill_specs,
    drill_history,
    regression_drill,
)


class FakeMetrics:
    """A metrics source answering range queries from the drill's model (or raising, when told)."""

    def __init__(self, fail: bool = False, answers=None):
        self.fail = fail
        self.calls = []
        self.answers = answers

    def describe(self):
        return "fake Prometheus"

    def evaluate(self, specs, model, at=None):
        raise AssertionError("history needs no instant query")

    def history(self, specs, model, start, end, step):
        self.calls.append((tuple(s.name for s in specs), model, start, end, step))
        if self.fail:
            raise MetricsError("Prometheus at http://127.0.0.1:9: unreachable (metrics.url)")
        return self.answers(start, end, step) if self.answers else drill_history(start, end, step)


@pytest.fixture
def journal(tmp_path):
    service = JournalService(SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}"), Actor("alice", "bastion"),
                             clock=lambda: DRILL_CLOSED, known_secrets=("s3cr3t-token",))
    yield service
    service.close()


def _open_drill(journal: JournalService) -> str:
    """The drill's events up to (not including) its capture and close, imported into the journal."""
    events = [e for e in regression_drill(with_history=False) if e.kind is not EventKind.INCIDENT_CLOSED]
    return journal.import_events(events).incident_id


def test_the_window_spans_the_impact_with_margins_and_keeps_to_the_points():
    window = history_window(impact_start=10_000.0, end=13_000.0, now=20_000.0, margin_s=900, max_points=300)
    assert window.start <= 10_000 - 900 and window.end == 13_900
    assert window.step == int(window.step) and window.points <= 300
    assert window.start % window.step == 0  # aligned: the same incident read twice lands on the same times
    capped = history_window(10_000.0, 13_000.0, now=13_100.0, margin_s=900, max_points=300)
    assert capped.end == 13_100  # never beyond now
    short = history_window(10_000.0, 10_030.0, now=10_030.0, margin_s=0, max_points=300)
    assert short.step == 1.0 and short.points <= 300


@pytest.mark.parametrize("span,points", [(3600, 300), (86400 * 3, 300), (60, 10), (7201, 11000)])
def test_the_step_is_whole_seconds_and_never_exceeds_the_points(span, points):
    window = history_window(1_741_942_800.0, 1_741_942_800.0 + span, 1e12, 900, points)
    assert window.step >= 1 and window.step == int(window.step)
    assert window.points <= points
    assert window.end - window.start >= span  # the whole incident is covered


def test_capture_reads_each_metric_once_and_journals_one_compact_event_per_metric(journal):
    incident = _open_drill(journal)
    metrics = FakeMetrics()
    capture = HistoryService(metrics, journal, _drill_specs(), 900, 300).capture(incident)
    assert len(metrics.calls) == 1  # one history call: the adapter sends one range query per metric
    names, model, start, end, step = metrics.calls[0]
    assert names == ("error_rate", "p95_latency", "accuracy", "request_rate") and model == "fraud-detector"
    assert start <= DRILL_OPENED - 900 and end == DRILL_CLOSED and (end - start) / step + 1 <= 300
    assert [e.kind for e in capture.events] == [EventKind.METRICS_HISTORY] * 4
    payload = capture.events[0].payload
    assert payload["stable_version"] == "2"  # from the latest check.evaluated
    assert payload["start"] == start and payload["step"] == step and payload["end"] == end
    series = {(s["version"], s["segment"]): s["values"] for s in payload["series"]}
    assert all(len(v) == int((end - start) // step) + 1 for v in series.values())
    bad = series[("3", "eu-android")]
    assert bad[0] is None  # v3 was not deployed yet: a gap, not a zero
    assert bad[-1] is None  # and drained after the rollback: no data
    assert max(v for v in bad if v is not None) > 0.14
    assert all(v is None or len(repr(v).replace(".", "").lstrip("0")) <= 8 for v in bad)  # ~6 significant digits
    head, events = journal.chain(incident)
    assert verify_chain(incident, events, head).ok


def test_infinite_values_survive_as_plus_inf_and_secrets_are_redacted(journal):
    incident = _open_drill(journal)

    def answers(start, end, step):
        return {s.name: RangeResult(s.name, f'{s.query} # token=s3cr3t-token', start, end, step,
                                    series={("3", "eu-web"): ((start, math.inf), (start + step, float("nan")),
                                                              (start + 2 * step, 0.1234567891))})
                for s in _drill_specs()}

    capture = HistoryService(FakeMetrics(answers=answers), journal, _drill_specs()).capture(incident)
    payload = capture.events[1].payload
    assert payload["series"][0]["values"][:3] == ["+Inf", None, 0.123457]
    assert "s3cr3t-token" not in capture.events[1].payload_json and "[REDACTED]" in payload["promql"]


def test_an_unreachable_source_journals_nothing(journal):
    incident = _open_drill(journal)
    before = len(journal.chain(incident)[1])
    with pytest.raises(MetricsError):
        HistoryService(FakeMetrics(fail=True), journal, _drill_specs()).capture(incident)
    assert len(journal.chain(incident)[1]) == before


def test_an_empty_catalogue_is_said(journal):
    incident = _open_drill(journal)
    with pytest.raises(UsageError, match="catalogue is empty"):
        HistoryService(FakeMetrics(), journal, ()).capture(incident)


def test_a_failed_query_is_journaled_with_its_error_and_never_hides_a_good_capture(journal):
    incident = _open_drill(journal)
    service = HistoryService(FakeMetrics(), journal, _drill_specs())
    service.capture(incident)

    def broken(start, end, step):
        return {s.name: RangeResult(s.name, s.query, start, end, step, error="bad_data: parse error")
                for s in _drill_specs()}

    later = HistoryService(FakeMetrics(answers=broken), journal, _drill_specs()).capture(incident)
    assert set(later.failed) == {"error_rate", "p95_latency", "accuracy", "request_rate"}
    _, events = journal.chain(incident)
    chosen = latest_history(events)
    assert all(not e.payload.get("error") for e in chosen.values())
    newer = service.capture(incident)
    assert latest_history(journal.chain(incident)[1])["error_rate"].seq == newer.events[0].seq  # newest wins


# --- the CLI's choice: capture, or read the journal ---------------------------------------------

def _args(incident: str, fmt: str = "html", output: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(id=incident, format=fmt, output=output, tz="UTC", config="/nonexistent/rewind.yaml",
                              summary="rolled back to v2")


def test_a_closed_incident_with_history_exports_without_any_prometheus(journal, tmp_path, capsys, monkeypatch):
    from console.commands import incident as command

    def no_config(*_args, **_kwargs):
        raise AssertionError("a closed incident with history needs no config and no Prometheus")

    monkeypatch.setattr("console.config.load_config", no_config)
    incident = journal.import_events(regression_drill()).incident_id
    before = journal.chain(incident)[1]
    target = tmp_path / "postmortem.html"
    assert command._export(journal, _args(incident, output=str(target))) == 0
    _, err = capsys.readouterr()
    assert "warning" not in err
    text = target.read_text()
    assert "from the metrics history" in text and "could not be read" not in text
    head, after = journal.chain(incident)
    assert after == before and verify_chain(incident, after, head).ok


class _Loaded:
    def __init__(self):
        class Metrics:
            @staticmethod
            def specs():
                return _drill_specs()

        class Postmortem:
            history_margin_s = 900.0
            history_points = 300

        class Config:
            metrics = Metrics()
            postmortem = Postmortem()

        self.config = Config()


def _fake_prometheus(monkeypatch, fake):
    class Closing:
        def __init__(self):
            self.closed = False

        def __getattr__(self, name):
            return getattr(fake, name)

        def close(self):
            self.closed = True

    monkeypatch.setattr("console.config.load_config", lambda *_a, **_k: _Loaded())
    monkeypatch.setattr("console.wiring.build_metrics", lambda _config: Closing())


def test_an_open_incident_is_captured_then_exported(journal, tmp_path, capsys, monkeypatch):
    from console.commands import incident as command

    fake = FakeMetrics()
    _fake_prometheus(monkeypatch, fake)
    incident = _open_drill(journal)
    target = tmp_path / "x.html"
    assert command._export(journal, _args(incident, output=str(target))) == 0
    assert len(fake.calls) == 1
    head, events = journal.chain(incident)
    assert has_history(events) and verify_chain(incident, events, head).ok
    assert "from the metrics history" in target.read_text()
    assert "warning" not in capsys.readouterr().err


def test_an_unreachable_prometheus_is_noted_in_the_export_and_warned_in_one_line(journal, tmp_path, capsys,
                                                                                 monkeypatch):
    from console.commands import incident as command

    _fake_prometheus(monkeypatch, FakeMetrics(fail=True))
    incident = _open_drill(journal)
    for fmt in ("html", "md"):
        target = tmp_path / f"x.{fmt}"
        assert command._export(journal, _args(incident, fmt, str(target))) == 0
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if "warning" in line]
        assert len(warnings) == 1 and "unreachable" in warnings[0] and "Traceback" not in err
        text = target.read_text()
        assert "Metrics history could not be read now" in text and "unreachable" in text
        assert "checks journaled during the incident" in text
    assert not has_history(journal.chain(incident)[1])


def test_a_missing_config_is_a_note_not_an_error(journal, tmp_path, capsys):
    from console.commands import incident as command

    incident = _open_drill(journal)
    target = tmp_path / "x.html"
    assert command._export(journal, _args(incident, output=str(target))) == 0
    assert "config" in capsys.readouterr().err
    assert "Metrics history could not be read now" in target.read_text()


def test_close_captures_the_history_before_closing(journal, capsys, monkeypatch):
    from console.commands import incident as command

    _fake_prometheus(monkeypatch, FakeMetrics())
    incident = _open_drill(journal)
    assert command._close(journal, _args(incident)) == 0
    _, events = journal.chain(incident)
    kinds = [e.kind for e in events]
    assert kinds[-5:] == [EventKind.METRICS_HISTORY] * 4 + [EventKind.INCIDENT_CLOSED]
    assert events[-2].payload["end"] <= events[-1].time().timestamp()


def test_close_still_closes_when_the_capture_fails(journal, capsys, monkeypatch):
    from console.commands import incident as command

    _fake_prometheus(monkeypatch, FakeMetrics(fail=True))
    incident = _open_drill(journal)
    assert command._close(journal, _args(incident)) == 0
    out, err = capsys.readouterr()
    assert "incident closed" in out
    assert len(err.strip().splitlines()) == 1 and "not captured before closing" in err and "unreachable" in err
    _, events = journal.chain(incident)
    assert events[-1].kind is EventKind.INCIDENT_CLOSED and not has_history(events)
