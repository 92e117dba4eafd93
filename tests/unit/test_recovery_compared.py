"""Each post-mortem says how its incident's recovery compares with the model's history (issue 17 §2).

The journals are real SQLite journals in ``tmp_path`` holding synthetic incidents with known phases
(tests/fixtures/recovery_data.py); the post-mortems are exported through :class:`PostMortems`, as
``rewind incident export`` and the console export them, in Markdown, HTML and JSON.
"""

from __future__ import annotations

import html
import io
import json
import time
from datetime import UTC, datetime

import pytest

from console.adapters.journal_sql import SqlJournal
from console.cli import main
from console.domain.recovery import Phase, PhaseSummary, Recovery, Status
from console.domain.recovery_comparison import PhaseComparison, Rank, rank_among
from console.services.journal import JournalService
from console.services.postmortem import PostMortems
from console.services.timeline import clock_for, export
from console.services.timeline.recovery_compared import where_it_falls, window_words
from tests.fixtures.recovery_data import RESPONDER, Timing, expected_phases, rollback_incident, tamper

NOW = 1767268800.0  # 2026-01-01T12:00:00Z, the export
DAY = 86400.0
THIS = "INC-THIS"
THIS_TIMING = Timing(impact_before=200, breach=25, decide=70, intent=72, applied=80, verified=95)
"""This incident: detect 225 s, acknowledge 0 s, decide 45 s, execute 8 s, verify 15 s, total 4 min 55 s."""


@pytest.fixture
def journal(tmp_path):
    records = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    yield records
    records.close()


def exported(journal, incident_id: str = THIS) -> dict[str, str]:
    """The incident's post-mortem in every format, exported at :data:`NOW`."""
    postmortems = PostMortems(JournalService(journal, RESPONDER), None, "rewind test", clock=lambda: NOW)
    documents = {}
    for fmt in ("md", "html", "json"):
        view, _ = postmortems.view(incident_id, fmt)
        out = io.StringIO()
        export(view, fmt, out, clock_for("UTC"), datetime.fromtimestamp(NOW, UTC))
        documents[fmt] = out.getvalue()
    return documents


def section(markdown: str) -> str:
    """The Markdown's "Recovery compared" section (empty when it is missing)."""
    if "## Recovery compared\n" not in markdown:
        return ""
    return markdown.split("## Recovery compared\n", 1)[1].split("\n## ", 1)[0]


def row(markdown: str, phase: str) -> list[str]:
    """The cells of one phase's row of the comparison table."""
    line = next(line for line in section(markdown).splitlines() if line.startswith(f"| {phase} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def page_row(page: str, phase: str) -> list[str]:
    """The same row in the HTML page, its cells unescaped."""
    part = page.split('<section id="recovery-compared">', 1)[1].split("</section>", 1)[0]
    line = part.split(f"<tr><td>{phase}</td>", 1)[1].split("</tr>", 1)[0]
    return [phase] + [html.unescape(cell.split(">", 1)[1]) for cell in line.split("</td>") if cell]


def nine_before(journal) -> None:
    """Nine recovered incidents of the model in the window: totals 3 min 00 s to 4 min 20 s (10 s apart)."""
    for number in range(9):
        journal.import_incident(rollback_incident(f"INC-H{number}", NOW - (number + 2) * DAY,
                                                  Timing(verified=60 + 10 * number), action_id=f"act-h{number}"))


# --- an incident with history ----------------------------------------------------------------

def test_an_incident_is_compared_phase_by_phase_with_its_models_history_in_every_format(journal):
    nine_before(journal)
    # Not its history: another model, an incident opened before the 90 days, a drill.
    journal.import_incident(rollback_incident("INC-OTHER-MODEL", NOW - DAY, Timing(verified=21), model="churn"))
    journal.import_incident(rollback_incident("INC-OLD", NOW - 91 * DAY, Timing(verified=21)))
    journal.import_incident(rollback_incident("INC-DRILL", NOW - DAY, Timing(verified=21), drill=True))
    journal.import_incident(rollback_incident(THIS, NOW - 3600, THIS_TIMING))
    documents = exported(journal)
    markdown, page, document = documents["md"], documents["html"], json.loads(documents["json"])

    # Between what was done and what is still to write.
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[headings.index("## Resolution") + 1:][:2] == ["## Recovery compared", "## Root cause"]
    text = section(markdown)
    assert "This incident was rolled back and verified (act-1) 4 min 55 s after the impact started." in text
    assert ("History: fraud-detector's other real incidents opened in the 90 days before this export (since "
            "2025-10-03 12:00:00Z); 9 were rolled back and verified.\n\nDrills are kept apart: 1 drill in the window."
            in text)
    assert row(markdown, "total") == [
        "total", "4 min 55 s", "9", "3 min 40 s",
        "every value: 3 min 00 s, 3 min 10 s, 3 min 20 s, 3 min 30 s, 3 min 40 s, 3 min 50 s, 4 min 00 s, "
        "4 min 10 s, 4 min 20 s", "the slowest of 10"]
    assert row(markdown, "verify") == [
        "verify", "15.0 s", "9", "46.5 s",
        "every value: 6.5 s, 16.5 s, 26.5 s, 36.5 s, 46.5 s, 56.5 s, 1 min 06 s, 1 min 16 s, 1 min 26 s",
        "faster than 8 of 9"]
    assert row(markdown, "acknowledge")[-1] == "as fast as all 9"
    assert [row(markdown, phase)[-1] for phase in ("detect", "decide", "execute")] == ["the slowest of 10"] * 3
    assert "mean" not in text  # never a mean
    # The page shows the same rows, and the same sentences.
    for phase in Phase:
        assert page_row(page, str(phase)) == row(markdown, str(phase))
    assert "<p>This incident was rolled back and verified (act-1) 4 min 55 s after the impact started.</p>" in page
    assert "Phase verify: action.applied → action.verified." in html.unescape(page)

    recovery = document["recovery"]
    assert recovery["status"] == "recovered" and recovery["drill"] is False and recovery["unit"] == "s"
    assert recovery["history"] == {
        "model": "fraud-detector", "population": "incidents", "excludes": THIS,
        "window": {"since": "90d", "from": "2025-10-03T12:00:00.000000Z", "to": "2026-01-01T12:00:00.000000Z",
                   "counted_by": "opened_at"},
        "counts": {"recovered": 9, "open": 0, "not_verified": 0, "left_out": 0, "kept_apart": 1}}
    assert list(recovery["phases"]) == [str(phase) for phase in Phase]
    assert {phase: figures["value"] for phase, figures in recovery["phases"].items()} == expected_phases(THIS_TIMING)
    total = recovery["phases"]["total"]
    assert total["history"] == {"n": 9, "p50": 220.0, "p90": None, "max": 260.0,
                                "values": [180.0 + 10 * number for number in range(9)]}
    assert total["rank"] == {"faster_than": 0, "same": 0, "slower_than": 9, "of": 9}
    assert total["text"] == "the slowest of 10"
    assert recovery["phases"]["verify"]["rank"] == {"faster_than": 8, "same": 0, "slower_than": 1, "of": 9}
    assert "\n\n".join(recovery["lines"]) in text  # the same sentences


def test_from_ten_incidents_the_p90_is_given_instead_of_every_value(journal):
    for number in range(12):  # totals 180 s to 246 s, 6 s apart
        journal.import_incident(rollback_incident(f"INC-H{number:02d}", NOW - (number + 2) * DAY,
                                                  Timing(verified=60 + 6 * number), action_id=f"act-h{number}"))
    journal.import_incident(rollback_incident(THIS, NOW - 3600, Timing(verified=95)))  # total 215 s
    documents = exported(journal)
    assert row(documents["md"], "total") == ["total", "3 min 35 s", "12", "3 min 30 s", "4 min 00 s",
                                             "faster than 6 of 12"]
    total = json.loads(documents["json"])["recovery"]["phases"]["total"]
    assert total["history"] == {"n": 12, "p50": 210.0, "p90": 240.0, "max": 246.0, "values": None}
    assert total["rank"] == {"faster_than": 6, "same": 0, "slower_than": 6, "of": 12}


# --- no history ------------------------------------------------------------------------------

def test_without_history_each_phase_says_so(journal):
    journal.import_incident(rollback_incident(THIS, NOW - 3600, THIS_TIMING))
    documents = exported(journal)
    markdown = documents["md"]
    assert ("History: no other real incidents of fraud-detector opened in the 90 days before this export (since "
            "2025-10-03 12:00:00Z) were rolled back and verified: no history yet.") in section(markdown)
    assert row(markdown, "total") == ["total", "4 min 55 s", "0", "-", "-", "no history yet"]
    assert {row(markdown, str(phase))[-1] for phase in Phase} == {"no history yet"}
    assert page_row(documents["html"], "total") == row(markdown, "total")
    recovery = json.loads(documents["json"])["recovery"]
    assert recovery["history"]["counts"]["recovered"] == 0
    assert recovery["phases"]["total"] == {"value": 295.0, "history": {"n": 0, "p50": None, "p90": None,
                                                                       "max": None, "values": []},
                                           "rank": None, "text": "no history yet"}


def test_the_incident_itself_is_never_its_own_history(journal):
    """Only incidents of the window count: this one is in it, and still compared with nothing."""
    journal.import_incident(rollback_incident(THIS, NOW - 3600, THIS_TIMING))
    journal.import_incident(rollback_incident("INC-ONE", NOW - DAY, Timing(verified=95)))
    documents = exported(journal)
    assert row(documents["md"], "total")[1:] == ["4 min 55 s", "1", "3 min 35 s", "every value: 3 min 35 s",
                                                 "the slowest of 2"]
    assert json.loads(documents["json"])["recovery"]["history"]["counts"]["recovered"] == 1


# --- drills ----------------------------------------------------------------------------------

def test_a_drill_is_compared_with_drills_only_and_a_real_incident_with_real_ones(journal):
    for number in range(3):  # drills: totals 180 s to 182 s
        journal.import_incident(rollback_incident(f"DRILL-{number}", NOW - (number + 2) * DAY,
                                                  Timing(verified=60 + number), drill=True,
                                                  playbook="canary-regression"))
    for number in range(5):  # real incidents: totals 320 s to 324 s
        journal.import_incident(rollback_incident(f"INC-R{number}", NOW - (number + 2) * DAY,
                                                  Timing(verified=200 + number)))
    journal.import_incident(rollback_incident("DRILL-THIS", NOW - 3600, Timing(verified=70), drill=True,
                                              playbook="canary-regression"))  # total 190 s
    documents = exported(journal, "DRILL-THIS")
    markdown = documents["md"]
    assert "This drill was rolled back and verified (act-1) 3 min 10 s after the impact started." in section(markdown)
    assert "A drill is compared with drills only; 5 real incidents of the window kept apart." in section(markdown)
    assert row(markdown, "Phase") == ["Phase", "This drill", "History n", "History p50",
                                      "History p90 (every value while n < 10)", "Where this one falls"]
    assert row(markdown, "total") == ["total", "3 min 10 s", "3", "3 min 01 s",
                                      "every value: 3 min 00 s, 3 min 01 s, 3 min 02 s", "the slowest of 4"]
    assert page_row(documents["html"], "total") == row(markdown, "total")
    recovery = json.loads(documents["json"])["recovery"]
    assert recovery["drill"] is True and recovery["history"]["population"] == "drills"
    assert recovery["history"]["counts"]["kept_apart"] == 5
    assert recovery["phases"]["total"]["history"]["values"] == [180.0, 181.0, 182.0]

    # A real incident of the same journal is compared with the real incidents alone.
    journal.import_incident(rollback_incident(THIS, NOW - 3600, THIS_TIMING))
    real = exported(journal)["md"]
    assert "Drills are kept apart: 4 drills in the window." in section(real)
    assert row(real, "total") == ["total", "4 min 55 s", "5", "5 min 22 s",
                                  "every value: 5 min 20 s, 5 min 21 s, 5 min 22 s, 5 min 23 s, 5 min 24 s",
                                  "the fastest of 6"]


# --- no verified rollback --------------------------------------------------------------------

@pytest.mark.parametrize("closed,status,sentence", [
    (600.0, "not_verified", "No verified rollback: this incident was closed after rollback act-1, which never "
                            "verified, so it has no recovery time; the phases it reached are compared."),
    (None, "open", "No verified rollback yet: this incident is still open and its rollback act-1 has not verified, "
                   "so it has no recovery time; the phases it has reached are compared."),
])
def test_an_incident_without_a_verified_rollback_says_so_and_compares_the_phases_it_has(journal, closed, status,
                                                                                        sentence):
    nine_before(journal)
    timing = Timing(impact_before=200, breach=25, decide=70, intent=72, applied=80, verified=None, closed=closed)
    journal.import_incident(rollback_incident(THIS, NOW - 3600, timing))
    documents = exported(journal)
    markdown = documents["md"]
    assert sentence in section(markdown)
    assert row(markdown, "total") == ["total", "-", "9", "3 min 40 s",
                                      "every value: 3 min 00 s, 3 min 10 s, 3 min 20 s, 3 min 30 s, 3 min 40 s, "
                                      "3 min 50 s, 4 min 00 s, 4 min 10 s, 4 min 20 s",
                                      "not reached: no verified rollback"]
    assert row(markdown, "verify")[1::4] == ["-", "not reached: no verified rollback"]
    assert row(markdown, "execute")[1::4] == ["8.0 s", "the slowest of 10"]  # the phases it has, compared
    assert row(markdown, "decide")[1::4] == ["45.0 s", "the slowest of 10"]
    assert page_row(documents["html"], "execute") == row(markdown, "execute")
    recovery = json.loads(documents["json"])["recovery"]
    assert recovery["status"] == status and recovery["action_id"] == "act-1"
    assert recovery["phases"]["total"]["value"] is None and recovery["phases"]["total"]["rank"] is None
    assert recovery["phases"]["total"]["text"] == "not reached: no verified rollback"
    assert recovery["phases"]["execute"]["value"] == 8.0
    assert recovery["phases"]["execute"]["rank"] == {"faster_than": 0, "same": 0, "slower_than": 9, "of": 9}
    assert recovery["lines"][0] == sentence


# --- the read stays one pass ------------------------------------------------------------------

def test_the_history_is_one_read_of_the_journal(journal, monkeypatch):
    nine_before(journal)
    journal.import_incident(rollback_incident(THIS, NOW - 3600, THIS_TIMING))
    reads = []
    original = SqlJournal.read_chains

    def counted(self, opened_since=None):
        reads.append(opened_since)
        return original(self, opened_since)

    monkeypatch.setattr(SqlJournal, "read_chains", counted)
    postmortems = PostMortems(JournalService(journal, RESPONDER), None, "rewind test", clock=lambda: NOW)
    view, _ = postmortems.view(THIS, "json")
    assert reads == ["2025-10-03T12:00:00.000000Z"]  # every chain of the window at once, none before it
    assert view.comparison is not None and view.comparison.recovered == 9


# --- the words -------------------------------------------------------------------------------

def _compared(value: float | None, history: list[float], phase: Phase = Phase.TOTAL) -> PhaseComparison:
    ordered = tuple(sorted(history))
    summary = PhaseSummary(phase, len(ordered), None, None, None, ordered)
    return PhaseComparison(phase, value, summary, rank_among(value, ordered) if value is not None and history
                           else None)


RECOVERED = Recovery("INC-1", "m", False, None, Status.RECOVERED, 0.0, 0.0, "impact_started_at",
                     action_id="act-1")


@pytest.mark.parametrize("value,history,words", [
    (50.0, [60.0, 70.0, 80.0, 90.0, 100.0, 110.0, 120.0, 40.0, 30.0], "faster than 7 of 9"),
    (115.0, [float(v) for v in range(10, 120, 10)], "the slowest of 12"),
    (5.0, [10.0, 20.0], "the fastest of 3"),
    (80.0, [10.0, 20.0, 30.0, 90.0], "slower than 3 of 4"),
    (30.0, [10.0, 30.0, 30.0, 90.0, 95.0], "faster than 2 of 5 (2 took as long)"),
    (0.0, [0.0, 0.0, 0.0], "as fast as all 3"),
    (0.0, [0.0], "as fast as the only other"),
    (12.0, [], "no history yet"),
])
def test_where_an_incident_falls_is_said_in_words(value, history, words):
    assert where_it_falls(_compared(value, history), RECOVERED) == words


def test_ranks_are_counted_to_the_millisecond():
    assert rank_among(1.0004, [1.0, 1.0011, 0.9]) == Rank(faster_than=1, same=1, slower_than=1)
    assert Rank(3, 0, 0).fastest and not Rank(3, 0, 0).slowest and Rank(0, 0, 2).slowest
    assert not Rank(0, 0, 0).fastest and not Rank(0, 0, 0).slowest


def test_windows_are_said_as_a_reader_says_them():
    assert [window_words(w) for w in ("90d", "1w", "12h", "1h30m")] == ["90 days", "1 week", "12 hours", "1h30m"]


# --- the command line ------------------------------------------------------------------------

def test_rewind_incident_export_carries_the_comparison(tmp_path, capsys):
    """``rewind incident export`` compares with the last 90 days before now, a tampered chain left out."""
    now = time.time()
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    records = SqlJournal(url)
    records.import_incident(rollback_incident("INC-A", now - 2 * DAY, Timing(verified=65)))
    records.import_incident(rollback_incident("INC-TAMPERED", now - DAY))
    records.import_incident(rollback_incident(THIS, now - 3600, THIS_TIMING))
    records.close()
    tamper(tmp_path / "journal.db", "INC-TAMPERED", 3)
    config = tmp_path / "rewind.yaml"
    config.write_text(f"journal:\n  url: {url}\n", encoding="utf-8")
    assert main(["incident", "export", THIS, "--format", "json", "--config", str(config)]) == 0
    recovery = json.loads(capsys.readouterr().out)["recovery"]
    assert recovery["history"]["counts"] == {"recovered": 1, "open": 0, "not_verified": 0, "left_out": 1,
                                             "kept_apart": 0}
    assert recovery["phases"]["total"]["text"] == "the slowest of 2"
    assert "1 incident of the window left out: its chain does not verify (rewind journal verify)." in recovery["lines"]
