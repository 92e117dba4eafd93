"""Alertmanager's webhook into incidents: the payload read from real captures, episodes and their dedupe,
resolutions that leave the incident open, the suggested playbook in its order with why, the journal's
durability answered over HTTP (200 / 400 / 401 / 503), and the playbooks' ``alerts:`` matchers.

The payloads in tests/fixtures/alerts/ were posted by a real Alertmanager 0.25 on loopback (see the
README there).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from console.adapters.alert_webhook import WebhookServer, is_loopback, parse_listen
from console.adapters.journal_sql import SqlJournal
from console.adapters.playbook_files import PlaybookFiles
from console.adapters.playbook_yaml import load_playbook
from console.domain.alert_events import (
    AlertLabels,
    PayloadRefused,
    api_alerts,
    bare_url,
    episodes,
    journal_record,
    parse_notification,
    runbook_playbook_id,
    suggest,
)
from console.domain.alerting import Matcher
from console.domain.errors import AlertingError, ConfigError, JournalError
from console.domain.journal import Actor, EventKind, parse_ts
from console.domain.playbook import Playbook
from console.domain.playbook_check import CheckContext, _structure, structure_hash
from console.domain.playbook_run import EntryMatch
from console.services.alerts import AlertIntake, journaled_alerts
from console.services.journal import JournalService
from tests.fixtures.servers import wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"
SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"
MODEL = "fraud-detector"
TOKEN = "Zq3-alerts-token-4f9c2b7e"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def edited(name: str, change) -> bytes:  # noqa: ANN001 - a function of the decoded document
    document = json.loads(fixture(name))
    change(document)
    return json.dumps(document).encode()


@pytest.fixture(scope="module")
def shipped() -> list[Playbook]:
    valid, problems = PlaybookFiles((SHIPPED,), CheckContext()).load()
    assert not problems
    return [item.playbook for item in valid]


@pytest.fixture
def journal(tmp_path) -> Iterator[JournalService]:
    service = JournalService(SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}"), Actor("rewind", "bastion-1"))
    yield service
    service.close()


@pytest.fixture
def intake(journal, shipped) -> AlertIntake:
    return AlertIntake(journal, lambda: shipped)


def incidents(journal: JournalService):
    return journal.incidents()


def notes(journal: JournalService, incident_id: str) -> list[dict]:
    return [dict(e.payload) for e in journal.journal.events(incident_id, [EventKind.NOTE])]


# -- the payload --------------------------------------------------------------------------------------

def test_a_real_firing_notification_reads_whole():
    notification = parse_notification(fixture("firing.json"))
    assert (notification.receiver, notification.status, notification.truncated_alerts) == ("rewind", "firing", 0)
    assert notification.group_labels == {"alertname": "RewindErrorRateBreach", "model": MODEL, "version": "3"}
    (alert,) = notification.alerts
    assert alert.firing and alert.name == "RewindErrorRateBreach"
    assert alert.subject(AlertLabels()) == (MODEL, "3", "mobile")
    assert alert.annotations["rewind_playbook"] == "version-outage"
    assert alert.starts_at == "2026-12-07T12:56:53.623000Z" and alert.ends_at is None  # Go's zero time
    assert alert.episode.key == "06efd3ea0f9d3271@2026-12-07T12:56:53.623000Z"


def test_label_names_are_configurable():
    (alert,) = parse_notification(fixture("firing.json")).alerts
    assert alert.subject(AlertLabels(model="rewind_metric", version="severity", segment="nope")) == (
        "error_rate", "page", None)


def test_a_resolved_alert_keeps_its_episode_and_gains_an_end():
    fired = {a.fingerprint: a for a in parse_notification(fixture("group_of_two.json")).alerts}
    later = {a.fingerprint: a for a in parse_notification(fixture("group_one_resolved.json")).alerts}
    resolved = later["06efd3ea0f9d3271"]
    assert resolved.status == "resolved" and resolved.ends_at == "2026-12-07T12:58:13.267000Z"
    assert resolved.episode == fired["06efd3ea0f9d3271"].episode


def test_a_repeat_is_the_same_episodes_and_a_refire_a_new_one():
    first = [a.episode for a in parse_notification(fixture("group_of_two.json")).alerts]
    assert [a.episode for a in parse_notification(fixture("group_of_two_repeat.json")).alerts] == first
    (before,) = parse_notification(fixture("truncated.json")).alerts
    (again,) = parse_notification(fixture("refired.json")).alerts
    assert again.fingerprint == before.fingerprint and again.starts_at > before.starts_at
    assert again.episode != before.episode


def test_times_to_the_nanosecond_and_with_offsets_read_as_the_journal_writes_them():
    body = edited("firing.json", lambda d: d["alerts"][0].update(startsAt="2026-12-07T13:56:53.623456789+01:00"))
    assert parse_notification(body).alerts[0].starts_at == "2026-12-07T12:56:53.623456Z"


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "not JSON"),
    (b"[]", "not a JSON object"),
    (edited("firing.json", lambda d: d.update(version="3")), "payload version '3' is not supported"),
    (edited("firing.json", lambda d: d.pop("version")), "payload version 'None' is not supported"),
    (edited("firing.json", lambda d: d.update(alerts={})), "alerts must be a list"),
    (edited("firing.json", lambda d: d["alerts"][0].pop("fingerprint")), "alerts[0].fingerprint"),
    (edited("firing.json", lambda d: d["alerts"][0].update(status="pending")), "firing or resolved"),
    (edited("firing.json", lambda d: d["alerts"][0].update(startsAt="yesterday")), "not an RFC 3339 time"),
    (edited("firing.json", lambda d: d["alerts"][0]["labels"].update(model=3)), "labels must map names to text"),
    (edited("firing.json", lambda d: d.update(truncatedAlerts=-1)), "truncatedAlerts"),
])
def test_a_payload_that_can_never_be_accepted_is_refused_with_its_reason(body, reason):
    with pytest.raises(PayloadRefused, match=None) as refused:
        parse_notification(body)
    assert reason in str(refused.value)


# -- the suggestion -------------------------------------------------------------------------------

def alert_with(annotations: dict[str, str] | None = None, **labels: str):
    def change(document: dict) -> None:
        document["alerts"][0]["annotations"] = annotations or {}
        document["alerts"][0]["labels"].update(labels)

    return parse_notification(edited("firing.json", change)).alerts[0]


def with_alerts(playbook: Playbook, *matchers: str) -> Playbook:
    from console.domain.alerting import parse_matcher

    return replace(playbook, alerts=tuple(parse_matcher(m) for m in matchers))


def by_id(playbooks: list[Playbook], playbook_id: str) -> Playbook:
    return next(p for p in playbooks if p.id == playbook_id)


def never_ranked(_playbooks):
    raise AssertionError("the ranking is read only when the alert names no playbook")


def test_first_the_rewind_playbook_annotation(shipped):
    alert = alert_with({"rewind_playbook": "version-outage", "runbook_url": "https://runbooks/latency-spike.md"})
    suggestion = suggest(alert, MODEL, shipped, never_ranked)
    assert (suggestion.playbook, suggestion.source) == ("version-outage", "annotation")
    assert suggestion.why == "the alert's rewind_playbook annotation names version-outage"


def test_second_a_runbook_url_whose_name_is_a_playbook_id(shipped):
    alert = alert_with({"rewind_playbook": "no-such-playbook",
                        "runbook_url": "https://wiki.example/runbooks/latency-spike.md?token=abc#steps"})
    suggestion = suggest(alert, MODEL, shipped, never_ranked)
    assert (suggestion.playbook, suggestion.source) == ("latency-spike", "runbook_url")
    assert suggestion.why == "the alert's runbook_url ends in latency-spike.md, the id of playbook latency-spike"
    assert suggestion.passed_over == ("rewind_playbook names 'no-such-playbook', which is not a playbook",)
    assert [runbook_playbook_id(u) for u in ("https://x/y/data-drift.yaml", "https://x/data-drift.yml",
                                              "https://x/data-drift/", "https://x/")] == [
        "data-drift", "data-drift", "data-drift", None]


def test_third_a_playbooks_alerts_matchers_the_most_specific_first(shipped):
    library = [with_alerts(by_id(shipped, "latency-spike"), 'alertname=~"Rewind.*"'),
               with_alerts(by_id(shipped, "data-drift"), 'alertname="RewindErrorRateBreach"', 'severity=~"page|crit"'),
               with_alerts(by_id(shipped, "fallback"), 'severity="ticket"'),
               *(p for p in shipped if p.id not in ("latency-spike", "data-drift", "fallback"))]
    alert = alert_with({"runbook_url": "https://wiki.example/runbooks/error-rate"})
    suggestion = suggest(alert, MODEL, library, never_ranked)
    assert (suggestion.playbook, suggestion.source) == ("data-drift", "matchers")
    assert suggestion.why == ("playbook data-drift's alerts: matchers all hold on the alert's labels: "
                              'alertname="RewindErrorRateBreach", severity=~"page|crit" (also matched: latency-spike)')
    assert suggestion.passed_over == ("runbook_url ends in 'error-rate', which is not a playbook",)


def test_last_the_verdict_ranking_with_its_conditions(shipped):
    asked = []

    def rank(playbooks):
        asked.append({p.id for p in playbooks})
        return [(by_id(shipped, "canary-regression"), EntryMatch("canary-regression", 0, 2, ("✗ a", "✗ b"))),
                (by_id(shipped, "version-outage"), EntryMatch("version-outage", 1, 1,
                                                               ("✓ v3 breaches error_rate in mobile",)))]

    suggestion = suggest(alert_with({}), MODEL, shipped, rank)
    assert (suggestion.playbook, suggestion.source) == ("version-outage", "ranking")
    assert suggestion.why == ("the alert names no playbook; version-outage ranks first on the current verdicts "
                              "(1/1 of its entry conditions hold: ✓ v3 breaches error_rate in mobile)")
    assert asked == [{p.id for p in shipped}]


def test_no_suggestion_when_nothing_fits_or_the_ranking_fails(shipped):
    nothing = suggest(alert_with({}), MODEL, shipped, lambda playbooks: [
        (p, EntryMatch(p.id, 0, 1, ("✗ no",))) for p in playbooks])
    assert nothing.playbook is None and "no playbook's entry conditions hold" in nothing.why

    def broken(_playbooks):
        raise JournalError("Prometheus at http://127.0.0.1:9 is unreachable")

    failed = suggest(alert_with({}), MODEL, shipped, broken)
    assert failed.playbook is None
    assert failed.why == ("the alert names no playbook, and the verdict ranking could not be read "
                          "(JournalError: Prometheus at http://127.0.0.1:9 is unreachable)")


def test_only_playbooks_written_for_the_model_count(shipped):
    elsewhere = [replace(p, models=("churn-model",)) if p.id == "version-outage" else p for p in shipped]
    suggestion = suggest(alert_with({"rewind_playbook": "version-outage"}), MODEL, elsewhere,
                         lambda playbooks: [])
    assert suggestion.playbook is None
    assert suggestion.passed_over == (
        "rewind_playbook names 'version-outage', a playbook written for other models than fraud-detector",)
    assert "no playbook the alert names is written for fraud-detector" in suggestion.why
    matched = [with_alerts(replace(by_id(shipped, "fallback"), models=("churn-model",)), 'alertname=~".+"')]
    assert suggest(alert_with({}), MODEL, matched).why == "no playbook is written for fraud-detector"


# -- what the journal keeps -----------------------------------------------------------------------

def test_the_journal_keeps_no_query_string_and_no_credential():
    notification = parse_notification(edited("firing.json", lambda d: d["alerts"][0]["annotations"].update(
        description="call with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZXdpbmQifQ.c2lnbmF0dXJl",
        runbook_url="https://user:hunter2@wiki.example/runbooks/version-outage.md", long="x" * 5000)))
    record = journal_record(notification.alerts[0], notification, AlertLabels(), None)
    assert record["generator_url"] == "http://127.0.0.1:9090/graph"  # ?g0.expr=... dropped
    annotations = record["annotations"]
    assert annotations["description"].startswith("[withheld: looks like")
    assert annotations["runbook_url"] == "[withheld: looks like a URL with a password in it]"
    assert len(annotations["long"]) == 2000
    assert record["alertmanager"] == "http://127.0.0.1:19872"
    assert bare_url("ftp://host/x") == "" and bare_url("http://[::1]:9/a?b") == "http://[::1]:9/a"


# -- the service ----------------------------------------------------------------------------------

def test_a_firing_alert_opens_the_models_incident_with_its_playbook(intake, journal):
    receipt = intake.receive(fixture("firing.json"))
    ((outcome),) = receipt.outcomes
    assert (outcome.outcome, outcome.playbook) == ("opened", "version-outage")
    (incident,) = incidents(journal)
    assert (incident.incident_id, incident.model, incident.status) == (outcome.incident_id, MODEL, "open")
    assert incident.severity == "SEV1"  # the label says "page": the suggested playbook's severity
    opened = next(journal.journal.events(incident.incident_id, [EventKind.INCIDENT_OPENED])).payload
    assert opened["detected_at"] == "2026-12-07T12:56:53.623000Z" and opened["automated"] is True
    assert "impact_started_at" not in opened  # Prometheus' startsAt comes after the rule's `for`
    (note,) = notes(journal, incident.incident_id)
    assert note["automated"] is True
    alert = note["alert"]
    assert (alert["episode"], alert["status"], alert["model"], alert["version"], alert["segment"]) == (
        "06efd3ea0f9d3271@2026-12-07T12:56:53.623000Z", "firing", MODEL, "3", "mobile")
    assert alert["suggestion"]["playbook"] == "version-outage"
    assert alert["suggestion"]["why"] == "the alert's rewind_playbook annotation names version-outage"
    assert "Suggested playbook: version-outage" in note["text"]


def test_a_double_post_yields_one_incident_and_one_note(intake, journal):
    intake.receive(fixture("firing.json"))
    again = intake.receive(fixture("firing.json"))
    assert [o.outcome for o in again.outcomes] == ["duplicate"]
    (incident,) = incidents(journal)
    assert len(notes(journal, incident.incident_id)) == 1


def test_the_journal_is_the_memory_a_new_receiver_dedupes_too(journal, shipped):
    AlertIntake(journal, lambda: shipped).receive(fixture("firing.json"))
    receipt = AlertIntake(journal, lambda: shipped).receive(fixture("firing.json"))
    assert [o.outcome for o in receipt.outcomes] == ["duplicate"] and len(incidents(journal)) == 1


def test_an_ha_pairs_simultaneous_duplicates_open_one_incident(intake, journal):
    results = []
    threads = [threading.Thread(target=lambda: results.append(intake.receive(fixture("group_of_two.json"))))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outcomes = sorted(o.outcome for receipt in results for o in receipt.outcomes)
    assert outcomes == ["duplicate"] * 6 + ["joined", "opened"]
    (incident,) = incidents(journal)
    assert len(notes(journal, incident.incident_id)) == 2


def test_two_alerts_of_a_group_one_incident_and_a_repeat_adds_nothing(intake, journal):
    first = intake.receive(fixture("group_of_two.json"))
    assert [o.outcome for o in first.outcomes] == ["opened", "joined"]
    repeat = intake.receive(fixture("group_of_two_repeat.json"))
    assert [o.outcome for o in repeat.outcomes] == ["duplicate", "duplicate"]
    (incident,) = incidents(journal)
    assert [n["alert"]["segment"] for n in notes(journal, incident.incident_id)] == ["mobile", "web"]


def test_a_resolved_alert_adds_a_note_and_the_incident_stays_open(intake, journal):
    intake.receive(fixture("group_of_two.json"))
    receipt = intake.receive(fixture("group_one_resolved.json"))
    assert [o.outcome for o in receipt.outcomes] == ["resolved", "duplicate"]
    assert [o.outcome for o in intake.receive(fixture("group_one_resolved.json")).outcomes] == [
        "duplicate", "duplicate"]
    (incident,) = incidents(journal)
    assert incident.status == "open"
    resolved = notes(journal, incident.incident_id)[-1]
    assert resolved["alert"]["status"] == "resolved" and resolved["alert"]["ends_at"] == "2026-12-07T12:58:13.267000Z"
    assert "The incident stays open" in resolved["text"]
    assert len(notes(journal, incident.incident_id)) == 3
    (mobile, web) = episodes(journaled_alerts(journal))
    assert (mobile.status, mobile.ends_at, web.status) == ("resolved", "2026-12-07T12:58:13.267000Z", "firing")
    assert mobile.suggestion is not None and mobile.suggestion["playbook"] == "version-outage"


def test_a_refire_is_a_new_episode(intake, journal):
    opened = intake.receive(fixture("truncated.json")).outcomes[0]
    intake.receive(fixture("truncated_resolved.json"))
    refired = intake.receive(fixture("refired.json")).outcomes
    assert [(o.outcome, o.incident_id, o.playbook) for o in refired] == [
        ("joined", opened.incident_id, "latency-spike")]
    assert [n["alert"]["status"] for n in notes(journal, opened.incident_id) if "alert" in n] == [
        "firing", "resolved", "firing"]


def test_a_refire_after_the_incident_was_closed_opens_a_new_one(intake, journal):
    first = intake.receive(fixture("truncated.json")).outcomes[0]
    journal.close_incident(first.incident_id, "drained")
    assert [o.outcome for o in intake.receive(fixture("truncated_resolved.json")).outcomes
            if o.fingerprint] == ["ignored"]  # its firing's incident is closed: nothing is added to it
    again = intake.receive(fixture("refired.json")).outcomes[0]
    assert again.outcome == "opened" and again.incident_id != first.incident_id


def test_a_resolution_whose_firing_was_never_journaled_is_journaled(intake, journal):
    outcome = intake.receive(fixture("truncated_resolved.json")).outcomes[0]
    assert outcome.outcome == "opened" and outcome.status == "resolved"
    (note, _truncation) = notes(journal, outcome.incident_id)
    assert note["alert"]["status"] == "resolved" and note["alert"]["suggestion"]["playbook"] == "latency-spike"


def test_an_alert_without_a_model_label_is_ignored(intake, journal):
    body = edited("firing.json", lambda d: d["alerts"][0]["labels"].pop("model"))
    (outcome,) = intake.receive(body).outcomes
    assert outcome.outcome == "ignored" and "'model' label" in outcome.detail
    assert incidents(journal) == []


def test_truncated_alerts_are_noted_once_and_read_from_alertmanager(journal, shipped):
    left_out = parse_notification(edited("truncated.json", lambda d: d["alerts"][0]["labels"].update(
        segment="web") or d["alerts"][0].update(fingerprint="a1b2c3d4e5f60718"))).alerts[0]
    asked = []

    def read_group(notification):
        asked.append(notification.group_key)
        return [*notification.alerts, left_out]

    intake = AlertIntake(journal, lambda: shipped, read_group=read_group)
    receipt = intake.receive(fixture("truncated.json"))
    assert [o.outcome for o in receipt.outcomes] == ["opened", "truncated", "joined"]
    (incident,) = incidents(journal)
    kept = notes(journal, incident.incident_id)
    assert [n.get("alert", {}).get("segment") for n in kept] == ["mobile", None, "web"]
    assert kept[1]["alert_truncation"]["truncated_alerts"] == 1
    assert "read from Alertmanager's API" in kept[1]["text"]
    again = intake.receive(fixture("truncated.json"))
    assert [o.outcome for o in again.outcomes] == ["duplicate", "duplicate"]  # the note is not repeated
    assert len(notes(journal, incident.incident_id)) == 3 and len(asked) == 2


def test_alertmanagers_api_alerts_read_like_a_notifications():
    found = json.loads(fixture("api_v2_alerts.json"))
    (alert,) = api_alerts(found, now=parse_ts("2026-12-07T13:10:00Z").timestamp())
    assert alert.firing and alert.ends_at is None and alert.subject(AlertLabels()) == (MODEL, "3", "mobile")
    assert alert.episode.key == "06efd3ea0f9d3271@2026-12-07T13:08:30.195000Z"
    (timed_out,) = api_alerts(found, now=parse_ts("2026-12-07T13:20:00Z").timestamp())
    assert timed_out.status == "resolved" and timed_out.ends_at == "2026-12-07T13:13:33.213000Z"
    assert api_alerts([{"labels": {}}, "junk"], now=0) == []


def test_a_group_that_cannot_be_read_leaves_the_alerts_sent_journaled(journal, shipped):
    def unreachable(_notification):
        raise AlertingError("Alertmanager at http://127.0.0.1:9 unreachable (ConnectError)")

    receipt = AlertIntake(journal, lambda: shipped, read_group=unreachable).receive(fixture("truncated.json"))
    assert [o.outcome for o in receipt.outcomes] == ["opened", "truncated", "truncated"]
    assert "could not be read: Alertmanager at http://127.0.0.1:9 unreachable" in receipt.outcomes[2].detail


def test_the_episode_is_found_exactly_across_incidents(intake, journal):
    intake.receive(fixture("firing.json"))
    journal.open_incident("churn-model", "3", "elsewhere")
    key = "06efd3ea0f9d3271@2026-12-07T12:56:53.623000Z"
    assert [r.episode for _, r in intake.records(key)] == [key]
    assert intake.records(key.upper()) == []  # SQLite's LIKE ignores case; the match does not
    assert intake.records(key[:-2]) == []
    assert len(journal.journal.find_events([EventKind.INCIDENT_OPENED])) == 2


class FailingJournal(SqlJournal):
    """A journal whose writes fail (a full disk, a lost database), reads work."""

    def append(self, *args, **kwargs):  # noqa: ANN002, ANN003
        raise JournalError("SQLite journal /tmp/x.db: disk I/O error while appending")


def test_a_journal_failure_reaches_the_caller(tmp_path, shipped):
    journal = JournalService(FailingJournal(f"sqlite:///{tmp_path / 'j.db'}"), Actor("rewind", "b"))
    with pytest.raises(JournalError):
        AlertIntake(journal, lambda: shipped).receive(fixture("firing.json"))


# -- over HTTP ------------------------------------------------------------------------------------

@pytest.fixture
def serve(journal, shipped) -> Iterator:
    servers: list[WebhookServer] = []
    lines: list[str] = []

    def start(intake: AlertIntake | None = None, token: str | None = TOKEN, max_body: int = 1 << 20) -> str:
        taking = intake or AlertIntake(journal, lambda: shipped)

        def receive(body: bytes):
            receipt = taking.receive(body)
            return receipt.as_dict(), receipt.summary()

        server = WebhookServer("127.0.0.1:0", receive, token, lines.append, max_body=max_body).start()
        servers.append(server)
        return server.url

    start.lines = lines  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.stop()


def post(url: str, body: bytes, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return httpx.post(f"{url}/alerts?debug=hunter2", content=body, headers=headers, timeout=10)


def test_http_200_only_once_journaled_with_what_each_alert_did(serve, journal):
    url = serve()
    answer = post(url, fixture("group_of_two.json"))
    assert answer.status_code == 200
    outcomes = answer.json()["alerts"]
    assert [(o["outcome"], o["playbook"]) for o in outcomes] == [("opened", "version-outage"),
                                                                 ("joined", "version-outage")]
    assert outcomes[0]["incident"] == incidents(journal)[0].incident_id  # committed before the answer
    assert post(url, fixture("group_of_two.json")).json()["alerts"][0]["outcome"] == "duplicate"
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_http_401_without_the_bearer_token_and_nothing_journaled(serve, journal):
    url = serve()
    assert post(url, fixture("firing.json"), token=None).status_code == 401
    refused = post(url, fixture("firing.json"), token="wrong-token")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert incidents(journal) == []
    assert httpx.get(f"{url}/healthz").status_code == 200  # says nothing: no token needed
    assert post(url, fixture("firing.json")).status_code == 200


def test_http_400_for_what_can_never_be_accepted(serve, journal):
    url = serve()
    wrong_version = post(url, edited("firing.json", lambda d: d.update(version="3")))
    assert wrong_version.status_code == 400 and "payload version '3'" in wrong_version.json()["error"]
    assert post(url, b"{ not json").status_code == 400
    assert incidents(journal) == []


def test_http_503_when_the_journal_fails_so_alertmanager_retries(serve, tmp_path, shipped):
    failing = JournalService(FailingJournal(f"sqlite:///{tmp_path / 'j.db'}"), Actor("rewind", "b"))
    url = serve(AlertIntake(failing, lambda: shipped))
    answer = post(url, fixture("firing.json"))
    assert answer.status_code == 503
    assert "not journaled, send it again: JournalError" in answer.json()["error"]


def test_http_limits_paths_methods_and_the_log_line(serve):
    url = serve(max_body=2000)
    assert post(url, fixture("firing.json") + b" " * 2000).status_code == 413
    assert httpx.get(f"{url}/alerts").status_code == 405
    assert httpx.post(f"{url}/elsewhere", content=b"{}").status_code == 404
    assert post(url, fixture("firing.json")).status_code == 200
    # The server writes its log line once the answer is sent: the client may read the answer first.
    wait_for(lambda: any("POST /alerts 200" in line for line in serve.lines), 10, "the accepted post's log line")
    log = "\n".join(serve.lines)
    assert "opened INC-" in log and "POST /alerts 413" in log
    assert TOKEN not in log and "hunter2" not in log and "debug=" not in log


def test_listen_addresses():
    assert parse_listen("127.0.0.1:9095") == ("127.0.0.1", 9095)
    assert parse_listen("[::1]:9095") == ("::1", 9095)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen("9095")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


# -- the playbook language ------------------------------------------------------------------------

PLAYBOOK = """\
id: answers-alerts
version: 1
alerts:
{alerts}
steps:
  - id: done
    kind: end
    outcome: resolved
"""


def check(tmp_path, alerts: str):
    path = tmp_path / "p.yaml"
    path.write_text(PLAYBOOK.format(alerts=alerts))
    return load_playbook(path)


def test_a_playbook_names_the_alerts_it_answers(tmp_path):
    playbook, problems = check(tmp_path, '  - alertname="RewindErrorRateBreach"\n  - severity=~"page|critical"')
    assert not problems and playbook is not None
    assert playbook.alerts == (Matcher("alertname", "=", "RewindErrorRateBreach"),
                               Matcher("severity", "=~", "page|critical"))
    without = replace(playbook, alerts=())
    assert structure_hash(playbook) != structure_hash(without)


def test_a_playbook_without_alerts_keeps_its_structure_hash(shipped):
    # The shipped playbooks have no `alerts:`: their structure is what it was before the field existed.
    outage = by_id(shipped, "version-outage")
    assert outage.alerts == () and "alerts" not in _structure(outage)


@pytest.mark.parametrize(("alerts", "message"), [
    ("  - alertname", "alerts[0]: not a label matcher"),
    ('  - severity=~"(page"', "alerts[0]: not a regular expression"),
    (f'  - severity=~"{"a" * 300}"', "longer than 256 characters"),
    ("  - {alertname: x}", "alerts[0]: must be text"),
])
def test_a_bad_matcher_is_a_problem(tmp_path, alerts, message):
    playbook, problems = check(tmp_path, alerts)
    assert playbook is None
    assert any(message in str(problem) for problem in problems), problems


def test_a_remembering_library_reads_a_file_again_only_once_it_changed(tmp_path, monkeypatch):
    import console.adapters.playbook_files as playbook_files

    path = tmp_path / "answers.yaml"
    path.write_text(PLAYBOOK.format(alerts='  - alertname="A"'))
    reads = []
    real = playbook_files.load_playbook_with_text
    monkeypatch.setattr(playbook_files, "load_playbook_with_text",
                        lambda *args: reads.append(args[0]) or real(*args))
    library = PlaybookFiles((tmp_path,), CheckContext(), remember=True)
    assert library.load()[0][0].playbook.alerts == (Matcher("alertname", "=", "A"),)
    assert library.load()[0][0].playbook.alerts == (Matcher("alertname", "=", "A"),)
    assert len(reads) == 1
    path.write_text(PLAYBOOK.format(alerts='  - alertname="Bb"'))
    assert library.load()[0][0].playbook.alerts == (Matcher("alertname", "=", "Bb"),)
    assert len(reads) == 2
