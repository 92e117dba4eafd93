"""Exports: the Markdown post-mortem, the complete JSON (and its round trip), the self-contained HTML."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime

import pytest

from console.domain.errors import ChainBrokenError, UsageError
from console.domain.incident import format_duration, incident_facts, state_text
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
from tests.fixtures.journal_data import DRILL_APPLIED, DRILL_DEGRADES, START, synthetic_incident

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
    assert "not measured (no impact start was given, and no breach was seen before detection)" in markdown
    assert "not measured (no verified action)" in markdown
    assert "No check was evaluated" not in render(events, "html")


def test_markdown_is_a_post_mortem_skeleton(incident):
    text = render(incident, "md")
    headings = re.findall(r"^#{1,3} .*$", text, flags=re.M)
    top = [h for h in headings if h.startswith("## ")]
    assert top == ["## Summary", "## Impact", "## Trigger", "## Detection", "## Resolution", "## Root cause",
                   "## Lessons learned", "## Action items", "## Timeline", "## Decisions", "## Actions",
                   "## How these figures are measured"]
    assert headings[0] == "# Post-mortem: Error rate of v2 up in the eu segment"
    assert "**Time to detect (TTD)**: 1 min 30 s" in text
    assert "**Time to mitigate (TTM)**:" in text
    assert "| # | UTC | Who | Marker | What |" in text and "Local (UTC)" not in text  # one column when local is UTC
    assert "### D1: roll back" in text and "### D2: keep the champion alias on v1" in text
    assert "Evidence (named by the decision):" in text
    assert re.search(r"\| Error rate \| ✗ BREACH \| v2 eu \| 1\d\.\d% \| 1\d\.\d% > 5\.0% \|", text)
    assert re.search(r"\| Error rate \|  \| other cells \| \| 5 other cells: all pass \|", text)
    assert "### A1: act-1 (verified)" in text
    assert ("**Verification: ✓ verified**: expected the left version gets under 1% of the requests; the target "
            "passes error_rate; weights v1 100, v2 0; observed the left version got 0.0% of the requests; no breach; "
            "weights v1 100, v2 0") in text
    assert "- Plan: Traffic: v2 10 → 0, v1 90 → 100. Alias challenger removed from v2. Champion stays v1." in text
    assert "- Plan: alias champion stays v1" in text  # a plan in another shape is shown as it is
    assert "_To fill in: why it happened" in text and "### Where we got lucky" in text
    assert "| Action item | Type | Owner | Due | Ticket |" in text
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
    assert "Note: pipes \\| and newlines &lt;script>" in text
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


NS = "{http://www.w3.org/2000/svg}"


def _charts(text: str) -> list[str]:
    return re.findall(r'<svg xmlns="http://www.w3.org/2000/svg".*?</svg>', text, flags=re.S)


def _labels(chart: str) -> str:
    return "".join(t.text or "" for t in ElementTree.fromstring(chart).iter(f"{NS}text"))


def test_html_charts_the_breaching_segment_large_and_folds_the_rest(incident):
    """Deliberately changed: one large chart per breaching segment, the others in a compact row."""
    text = render(incident, "html")
    charts = _charts(text)
    assert len(charts) == 9  # 3 metrics x 3 segments, drawn from the checks (no history captured)
    wide = [c for c in charts if 'class="chart wide"' in c]
    small = [c for c in charts if 'class="chart small"' in c]
    assert len(wide) == 1 and len(small) == 8  # only the error rate of eu breached
    assert 'aria-label="Error rate, segment eu: breached"' in wide[0]
    labels = _labels(wide[0])
    assert "v1 stable" in labels and "v2" in labels and "limit 5.0%" in labels
    assert "D1 A1✓" in labels and "D2 A2✓" in labels
    for chart in small:
        root = ElementTree.fromstring(chart)  # well-formed SVG
        assert root.findall(f".//{NS}polyline") and root.findall(f".//{NS}line[@class='marker']")
        assert "D1" not in _labels(chart)  # compact: marker lines without labels
    assert "Error rate: never breached in mobile, us." in text
    assert "p95 latency: no segment breached in eu, mobile, us." in text
    assert "impact window" in text and "from the journaled checks" in text


def test_html_keeps_the_timeline_decisions_and_actions(incident):
    text = render(incident, "html")
    for heading in ("Summary", "Impact", "Trigger", "Detection", "Resolution", "Root cause", "Lessons learned",
                    "Action items", "Timeline", "Decisions", "Actions"):
        assert f"<h2>{heading}</h2>" in text
    assert "<h3>Metrics by version</h3>" in text
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


# --- the regression drill: history, charts a reader takes in, a post-mortem written for humans -------

@pytest.fixture(scope="module")
def drill():
    from tests.fixtures.journal_data import regression_drill

    return regression_drill()


def _points(polyline: ElementTree.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in polyline.get("points").split()]


def test_the_drill_charts_show_degradation_rollback_and_drain_in_the_breaching_segments(drill):
    text = render(drill, "html")
    wide = [c for c in _charts(text) if 'class="chart wide"' in c]
    titles = sorted(re.search(r'aria-label="([^"]+)"', c).group(1) for c in wide)
    assert titles == ["accuracy, segment eu-android: breached", "accuracy, segment us-web: breached",
                      "errors, segment eu-android: breached", "errors, segment us-web: breached"]
    chart = next(c for c in wide if "errors, segment eu-android" in c)
    root = ElementTree.fromstring(chart)
    limit = root.find(f".//{NS}line[@class='threshold']")
    marker = root.find(f".//{NS}line[@class='marker']")
    impact = root.find(f".//{NS}rect[@class='impact']")
    assert limit is not None and marker is not None and impact is not None
    labels = _labels(chart)
    assert "limit 5.0%" in labels and "D1 A1✓" in labels and "v2 stable" in labels
    # Drained by A1: its one-minute window held data for a minute more, but the line stops at the verification.
    assert "v3 (drained: A1✓)" in labels and "no data after" not in labels
    limit_y, marker_x = float(limit.get("y1")), float(marker.get("x1"))
    stable, = [g for g in root.iter(f"{NS}g") if g.get("class") == "series stable"]
    challenger, = [g for g in root.iter(f"{NS}g") if g.get("class") == "series"]
    v3 = [p for line in challenger.iter(f"{NS}polyline") for p in _points(line)]
    before = [y for x, y in v3 if x < float(impact.get("x"))]
    assert before and all(y > limit_y for y in before)  # below the limit before the degradation (SVG y grows down)
    assert any(y < limit_y for x, y in v3 if x < marker_x)  # over the limit before the rollback
    # The line goes on to the verification, 10 s after A1 (a few pixels), not through the minute the window drains.
    seconds = (marker_x - float(impact.get("x"))) / (DRILL_APPLIED - DRILL_DEGRADES)  # px per second
    assert marker_x < max(x for x, _ in v3) <= marker_x + 20 * seconds  # the window held 60 s more
    v2 = [p for line in stable.iter(f"{NS}polyline") for p in _points(line)]
    assert all(y > limit_y for _, y in v2) and max(x for x, _ in v2) > max(x for x, _ in v3)  # v2 carries on
    assert float(impact.get("x")) < marker_x  # the impact window starts at the degradation, before the rollback
    assert "from the metrics history (event #" in text
    assert "errors: never breached in eu-ios, eu-web, us-android, us-ios." in text


def test_the_drill_post_mortem_reads_as_sentences(drill):
    text = render(drill, "md")
    assert "Traffic: v3 10 → 0, v2 90 → 100. Alias challenger removed from v3. Champion stays v2." in text
    assert "observed weights v2 100, v3 0; aliases champion → v2" in text
    assert "alias_moves=" not in text and "weights_before" not in text
    # The judge confirms the breach from the counts; it is dated from the start of its excursion over the
    # line (09:05:15, 3 pt over the stable version), and ends at the rollback, when v3's counts stop.
    assert "**Impact start**: 2025-03-14 09:05:15Z - first breach in the metrics history" in text
    assert re.search(r"- errors: v3 in eu-android breached from 2025-03-14 09:05:15Z to 09:07:25Z, worst 15\.\d%", text)
    assert "- v3 of fraud-detector was the version left by A1 (it held challenger)." in text
    assert "- First breaching check: errors 2025-03-14 09:07:05Z (event #2): v3 eu-android errors 15." in text
    assert re.search(r"\| 2 \| errors \| ✗ BREACH \| v3 eu-android \| 15\.\d% \| errors 15\.\d% > 5\.0% \(95% ", text)
    assert "| 2 | errors | ! suspect | v3 eu-ios |" in text
    assert "| 2 | errors |  | other cells | | 9 other cells: all pass |" in text
    assert "| 5 | req/s | · info | all cells | | 12 cells: all info |" in text
    assert re.search(r"\| 10–13 \| .* \| Metrics history captured for 4 metrics \(errors, p95, accuracy, req/s\)",
                     text)


def test_markdown_and_html_show_the_same_post_mortem_facts(drill):
    import html as html_module

    markdown = render(drill, "md")
    page = html_module.unescape(render(drill, "html"))
    for section in ("Trigger", "Detection", "Resolution"):
        body = markdown.split(f"## {section}\n\n", 1)[1].split("\n## ", 1)[0]
        lines = [line[2:].replace("\\|", "|") for line in body.splitlines() if line.startswith("- ")]
        assert lines
        for line in lines:
            assert line.strip("_").replace("To fill in: ", "") in page, line
    for line in markdown.split("What breached:\n\n", 1)[1].split("\n\n", 1)[0].splitlines():
        assert line[2:] in page


def test_a_later_capture_is_the_one_drawn(drill):
    from console.domain.journal import seal_chain
    from console.services.history import history_payload
    from tests.fixtures.journal_data import _drill_specs, drill_history

    spec = _drill_specs()[0]
    first = next(e for e in drill if e.kind is EventKind.METRICS_HISTORY)
    answer = drill_history(first.payload["start"], first.payload["end"], first.payload["step"])[spec.name]
    doubled = type(answer)(answer.metric, answer.promql, answer.start, answer.end, answer.step,
                           series={k: tuple((t, None if v is None else v * 2) for t, v in pts)
                                   for k, pts in answer.series.items()},
                           counts={k: tuple((t, n * 2, d) for t, n, d in pts) for k, pts in answer.counts.items()})
    later = seal_chain([EventDraft(drill[0].incident_id, format_ts(first.time().timestamp() + 3600), Actor("b", "h"),
                                   EventKind.METRICS_HISTORY, prepare_payload(history_payload(spec, doubled, "2")))],
                       drill[-1].seq, drill[-1].hash)
    events = [*drill, *later]
    text = render(events, "html")
    assert "errors <span class=\"muted\">(error_rate)</span></h3><p class=\"muted\">PromQL" in text
    assert f"from the metrics history (event #{later[0].seq})" in text
    assert "worst 30." in render(events, "md")  # the later capture's values
    assert verify_chain(events[0].incident_id, events).ok


def test_the_previews_warning_is_in_the_actions_account_in_both_formats():
    warning = "models/m: its weights were last written by argocd-controller (Update, 2026-12-07T10:00:00Z), not Rewind"
    events = _small([(EventKind.INCIDENT_OPENED, {"model": "m", "severity": "SEV2", "summary": "s"}),
                     (EventKind.ACTION_INTENT, {"action_id": "act-1", "plan": {"leave": "3"}, "warnings": [warning]}),
                     (EventKind.ACTION_APPLIED, {"action_id": "act-1"})])
    for fmt in ("md", "html"):
        assert "Preview warned" in render(events, fmt) and "last written by argocd-controller" in render(events, fmt)


def test_the_fallback_note_shows_in_both_formats():
    events = synthetic_incident(120)
    note = "Metrics history could not be read now (Prometheus at http://127.0.0.1:9: unreachable (metrics.url)); " \
           "the charts show the checks journaled during the incident."
    for fmt in ("md", "html"):
        out = io.StringIO()
        head = IncidentHead(events[0].incident_id, events[-1].seq, events[-1].hash, events[0].ts)
        export(build_view(head, events, history_note=note), fmt, out, clock_for("UTC"), EXPORTED_AT)
        assert "could not be read now (Prometheus at http://127.0.0.1:9: unreachable" in out.getvalue()
    assert '<p class="note">' in out.getvalue()


def test_the_json_export_keeps_its_shape_and_carries_the_history(drill):
    document = json.loads(render(drill, "json"))
    assert set(document) == {"schema", "generator", "exported_at", "hash", "incident", "facts", "verification",
                             "trigger", "recovery", "events"}
    assert document["recovery"] is None  # not compared: this view was built without the journal's history
    assert sum(e["kind"] == "metrics.history" for e in document["events"]) == 4
    back = parse_incident_document(document, "drill.json")
    assert back == drill and verify_chain(back[0].incident_id, back).ok


def test_two_time_columns_only_when_the_local_zone_is_not_utc(drill):
    paris = render(drill, "md", clock_for("Europe/Paris"))
    assert "| # | UTC | Local (Europe/Paris) | Who | Marker | What |" in paris
    assert "2025-03-14 09:07:00Z (2025-03-14 10:07:00 CET local)" in paris
    utc = render(drill, "md")
    assert "| # | UTC | Who | Marker | What |" in utc and " local)" not in utc
    assert "<th>UTC</th><th>Who</th>" in render(drill, "html")


def test_the_served_line_shows_the_recovery(drill):
    """Every version weighted by its traffic: up with the degradation, back down after the rollback."""
    text = render(drill, "html")
    chart = next(c for c in _charts(text) if 'aria-label="errors, segment eu-android: breached"' in c)
    root = ElementTree.fromstring(chart)
    served = next(g for g in root.iter(f"{NS}g") if g.get("class") == "served")
    points = _points(served.find(f"{NS}polyline"))
    marker_x = float(root.find(f".//{NS}line[@class='marker']").get("x1"))
    impact_x = float(root.find(f".//{NS}rect[@class='impact']").get("x"))
    before = [y for x, y in points if x < impact_x - 10]
    during = [y for x, y in points if impact_x + 20 < x < marker_x]
    after = [y for x, y in points if x > marker_x + 10]
    assert before and during and after
    assert min(during) < min(before) - 10  # higher on the chart: the users' error rate went up
    assert max(after) > min(during) + 10 and abs(sum(after) / len(after) - sum(before) / len(before)) < 8  # recovered
    assert "served" in _labels(chart)
    p95 = next(c for c in _charts(text) if "p95, segment" in c)
    assert 'class="served"' not in p95  # a quantile is not averaged over versions


def test_a_cell_without_a_reason_tells_its_counts_in_whole_numbers():
    from console.domain.metrics import Unit
    from console.services.timeline.evidence import cell_reason

    reason = cell_reason({"numerator": 702.712, "denominator": 729.153}, 0.9637, Unit.RATIO, 0.05, "higher_is_worse")
    assert reason.endswith("(703 of 729)"), reason


def test_an_estimated_impact_start_gives_an_estimated_time_to_detect(drill):
    facts = incident_facts(drill)
    assert facts.impact_start_estimated and facts.ttd_s is None
    assert facts.ttd_estimate_s == (facts.detected.at - facts.impact_start.at).total_seconds() > 0
    markdown = render(drill, "md")
    assert "not measured" not in markdown.split("## Detection")[1].split("##")[0]
    assert (f"Time to detect: {format_duration(facts.ttd_estimate_s)} (estimated: the impact start is the first "
            "breach in the metrics history") in markdown
    assert json.loads(render(drill, "json"))["facts"]["ttd_estimate_s"] == facts.ttd_estimate_s


def test_a_verifications_observed_state_reads_as_a_sentence_with_what_the_target_answered():
    observed = {"leave_share": 0.0, "target_answered": 57, "breaches": [], "weights": {"1": 100, "2": 0}}
    assert state_text(observed) == ("the left version got 0.0% of the requests; the target answered 57 requests; "
                                    "no breach; weights v1 100, v2 0")
    assert "the target answered 1 request;" in state_text({"target_answered": 1, "breaches": []})
