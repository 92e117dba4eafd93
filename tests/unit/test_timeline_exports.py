"""Exports: the Markdown post-mortem, the complete JSON (and its round trip), the self-contained HTML."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime

import pytest

from console.domain.errors import ChainBrokenError, UsageError
from console.domain.incident import incident_facts
from console.domain.journal import (
    GENESIS_HASH,
    Actor,
    EventDraft,
    EventKind,
    IncidentHead,
    format_ts,
    prepare_payload,
    seal_chain,
    verify_chain,
)
from console.services.timeline import (
    INCIDENT_SCHEMA,
    Clock,
    build_view,
    clock_for,
    export,
    parse_incident_document,
)
from tests.fixtures.journal_data import START, synthetic_incident

EXPORTED_AT = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


def view_of(events):
    return build_view(IncidentHead(events[0].incident_id, events[-1].seq, events[-1].hash, events[0].ts), events)


def render(events, fmt: str, clock: Clock | None = None) -> str:
    out = io.StringIO()
    export(view_of(events), fmt, out, clock or clock_for("UTC"), EXPORTED_AT)
    return out.getvalue()


@pytest.fixture(scope="module")
def incident():
    return synthetic_incident(300)


def test_facts_follow_the_documented_definitions(incident):
    facts = incident_facts(incident)
    assert facts.impact_start.at.timestamp() == START and not facts.impact_start_estimated
    assert facts.detected.at.timestamp() == START + 90  # the incident was opened 90 s after the impact began
    assert facts.ttd_s == 90
    verified = next(e for e in incident if e.kind is EventKind.ACTION_VERIFIED)
    assert facts.mitigated.at == verified.time()
    assert facts.ttm_s == pytest.approx((verified.time() - facts.detected.at).total_seconds())
    assert facts.impact_end == facts.mitigated


def _small(kinds_payloads, start=START):
    drafts = [EventDraft("INC-X", format_ts(start + i * 60), Actor("a", "h"), kind, prepare_payload(payload))
              for i, (kind, payload) in enumerate(kinds_payloads)]
    return seal_chain(drafts, 0, GENESIS_HASH)


def test_ttd_is_not_measured_without_a_given_impact_start():
    events = _small([(EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV3", "summary": "s"}),
                     (EventKind.CHECK_EVALUATED, {"metric": "e", "promql": "q", "values": [], "criterion": {},
                                                  "verdict": "breach"}),
                     (EventKind.INCIDENT_CLOSED, {})])
    facts = incident_facts(events)
    assert facts.impact_start_estimated and facts.ttd_s is None and facts.ttm_s is None
    assert facts.impact_start == facts.detected
    assert facts.impact_end == facts.closed
    markdown = render(events, "md")
    assert "not measured (no impact start was given)" in markdown
    assert "not measured (no verified action)" in markdown
    assert "No check was evaluated" not in render(events, "html")


def test_markdown_is_a_post_mortem_skeleton(incident):
    text = render(incident, "md")
    headings = re.findall(r"^#{1,3} .*$", text, flags=re.M)
    top = [h for h in headings if h.startswith("## ")]
    assert top == ["## Summary", "## Impact window", "## Timeline", "## Decisions", "## Actions",
                   "## Open questions", "## Action items"]
    assert headings[0] == "# Post-mortem: Error rate of v2 up in the eu segment"
    assert "**Time to detect (TTD)**: 1 min 30 s" in text
    assert "**Time to mitigate (TTM)**:" in text and "How these are measured:" in text
    assert "| # | UTC | Local (UTC) | Who | Marker | What |" in text
    assert "### D1: roll back" in text and "### D2: keep the champion alias on v1" in text
    assert "Evidence (named by the decision):" in text
    assert re.search(r"\| Error rate \| ✗ breach \| [^|]*v2/eu 1\d\.\d% ✗", text)
    assert "### A1: act-1 (verified)" in text
    assert "**Verification: ✓ verified**: expected v1=100, v2=0, observed v1=100, v2=0" in text
    assert "| Action item | Owner | Due | Ticket |" in text
    assert "Hash chain verified: 300 events" in text


def test_markdown_timeline_folds_check_runs_and_keeps_every_other_event(incident):
    text = render(incident, "md")
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+(–\d+)? \| 20", line)]
    covered = 0
    for row in rows:
        first, _, last = row.split(" | ")[0][2:].partition("–")
        covered += int(last or first) - int(first) + 1
    assert covered == len(incident)
    assert sum(1 for e in incident if e.kind is not EventKind.CHECK_EVALUATED) < len(rows)


def test_times_are_shown_in_utc_and_in_the_local_zone(incident):
    text = render(incident, "md", clock_for("Europe/Paris"))
    assert "| 1 | 2025-03-14 09:01:30Z | 2025-03-14 10:01:30 CET |" in text
    assert "Local (Europe/Paris)" in text
    with pytest.raises(UsageError):
        clock_for("Mars/Olympus_Mons")


def test_markdown_escapes_table_breaking_text():
    events = _small([(EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV3", "summary": "a | b"}),
                     (EventKind.NOTE, {"text": "pipes | and\nnewlines <script>"})])
    text = render(events, "md")
    assert "Note: pipes \\| and newlines &lt;script&gt;" in text
    assert "<script>" not in text


def test_an_action_that_found_its_end_state_already_reached_is_not_shown_as_applied():
    reason = "already applied: m reached the planned state after the preview, not by this action; nothing changed"
    events = _small([(EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV2", "summary": "s"}),
                     (EventKind.ACTION_INTENT, {"action_id": "act-1", "plan": {"leave": "3"}}),
                     (EventKind.ACTION_APPLIED, {"action_id": "act-1", "changed": False, "reason": reason,
                                                 "observed": {"weights": {"3": 0}}})])
    for fmt in ("md", "html"):
        text = render(events, fmt)
        assert "act-1 (changed nothing)" in text
        assert "not by this action" in text and "observed weights" not in text


def test_json_is_complete_and_round_trips(incident):
    text = render(incident, "json")
    document = json.loads(text)
    assert document["schema"] == INCIDENT_SCHEMA
    assert document["incident"]["head"] == {"seq": 300, "hash": incident[-1].hash}
    assert document["facts"]["ttd_s"] == 90
    assert len(document["events"]) == 300
    assert all(set(e) == {"incident_id", "seq", "ts", "actor", "kind", "payload", "prev_hash", "hash"}
               for e in document["events"])
    back = parse_incident_document(json.loads(text), "export.json")
    assert back == incident  # every field, hashes included
    assert [e.payload for e in back] == [e.payload for e in incident]
    assert verify_chain(back[0].incident_id, back).ok


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(schema="other/1"), "schema"),
    (lambda d: d.update(events=[]), "no events"),
    (lambda d: d["events"].pop(), "events end at"),
    (lambda d: d["events"][3].pop("hash"), "lacks"),
    (lambda d: d["events"][3].update(seq="4"), "seq"),
    (lambda d: d["events"][3].update(ts="yesterday"), "timestamp"),
    (lambda d: d["events"][3].update(payload=[1]), "payload"),
    (lambda d: d["events"][3].update(incident_id="INC-OTHER"), "another incident"),
])
def test_json_import_refuses_incomplete_documents(incident, mutate, message):
    document = json.loads(render(incident[:20], "json"))
    mutate(document)
    with pytest.raises(UsageError, match=message):
        parse_incident_document(document, "export.json")


def test_html_is_one_self_contained_file(incident):
    text = render(incident, "html")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "<script" not in text.lower()
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", text)
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert "<style>" in text


def test_html_charts_each_metric_per_segment_with_a_line_per_version_and_markers(incident):
    text = render(incident, "html")
    charts = re.findall(r'<svg xmlns="http://www.w3.org/2000/svg".*?</svg>', text, flags=re.S)
    assert len(charts) == 9  # 3 metrics x 3 segments
    for chart in charts:
        root = ElementTree.fromstring(chart)  # well-formed SVG
        ns = "{http://www.w3.org/2000/svg}"
        assert root.findall(f".//{ns}polyline")
        labels = "".join(t.text or "" for t in root.iter(f"{ns}text"))
        assert "v1 stable" in labels and "v2" in labels
        assert "D1 A1✓" in labels and "D2 A2✓" in labels
    assert "limit 5.0%" in charts[0]
    assert "impact window" in text


def test_html_keeps_the_timeline_decisions_and_actions(incident):
    text = render(incident, "html")
    for heading in ("Impact window", "Metrics by version", "Decisions", "Actions", "Timeline", "Open questions",
                    "Action items"):
        assert f"<h2>{heading}</h2>" in text
    assert '<tr class="decision">' in text and '<tr class="action">' in text
    assert "Verification: ✓ verified" in text


def test_markdown_and_html_tell_decisions_and_actions_alike(incident):
    """Both formats read the same lines: what one shows of a decision or an action, the other shows too."""
    import html as html_module

    markdown, page = render(incident, "md"), html_module.unescape(render(incident, "html"))
    for label in ("When", "Who", "Options offered", "Reason given", "Plan", "Intent", "Applied"):
        assert f"- {label}: " in markdown
        assert f"<dt>{label}</dt>" in page or f"<li>{label}: " in page
    assert "Evidence (named by the decision):" in markdown and "Evidence (named by the decision):" in page


def test_html_escapes_what_responders_type():
    events = _small([(EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV3", "summary": "<b>x</b>"}),
                     (EventKind.NOTE, {"text": "<img src=x onerror=alert(1)>"})])
    text = render(events, "html")
    assert "<img" not in text and "&lt;img src=x" in text
    assert "nothing to chart" in text


def test_unknown_format_is_refused(incident):
    with pytest.raises(UsageError):
        export(view_of(incident[:5]), "pdf", io.StringIO())


class MemoryJournal:
    """A journal in memory, enough for the service's import rules."""

    def __init__(self):
        self.imported = []

    def import_incident(self, events):
        self.imported.append(list(events))
        return IncidentHead(events[0].incident_id, events[-1].seq, events[-1].hash, events[0].ts)


def _service(journal, secrets=()):
    from console.services.journal import JournalService

    return JournalService(journal, Actor("a", "h"), known_secrets=secrets)


def test_import_refuses_a_broken_chain_and_writes_nothing(incident):
    document = json.loads(render(incident[:20], "json"))
    document["events"][5]["payload"]["text"] = "edited"
    document["events"][5]["payload"]["metric"] = "edited"
    events = parse_incident_document(document, "x.json")
    journal = MemoryJournal()
    with pytest.raises(ChainBrokenError, match="event #6"):
        _service(journal).import_events(events)
    assert journal.imported == []


def test_import_refuses_events_carrying_a_known_secret(incident):
    journal = MemoryJournal()
    with pytest.raises(UsageError, match="secret"):
        _service(journal, ("fraud-detector",)).import_events(incident[:20])
    assert journal.imported == []
    _service(journal).import_events(incident[:20])
    assert journal.imported == [incident[:20]]


def test_long_series_keep_their_range_when_merged_into_pixel_columns():
    events = synthetic_incident(3000)
    text = render(events, "html")
    assert text.count("<polygon") >= 9 and "range of the values merged" in text
    assert "range of the values merged" not in render(synthetic_incident(300), "html")
