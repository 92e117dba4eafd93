"""Alerts into incidents: Alertmanager's webhook opens or joins the model's incident, with a suggested playbook.

One notification (:func:`console.domain.alert_events.parse_notification`) is taken
alert by alert, and every journal write it needs is committed before
:meth:`AlertIntake.receive` returns, so the webhook's 2xx means "durably journaled"
and a failure (an exception) lets Alertmanager retry the whole notification:

- **A firing alert** of an episode the journal has not seen opens the model's
  incident (``detected_at`` its ``startsAt``) or joins the model's open one, and is
  journaled there as a ``note`` whose payload carries ``alert`` (its labels,
  annotations, episode, and the suggested playbook with why).
- **A repeat** (same fingerprint and ``startsAt``: Alertmanager's resends, an HA
  pair's duplicates) adds nothing. The journal is the memory: the episode's key is
  searched for in the journal's events, so a restarted receiver, or a second one on
  the same journal, knows it too.
- **A resolved alert** adds a note to the incident its firing went to, which stays
  open: an alert that stopped is not a problem fixed, a person closes the incident.
  A resolution whose firing was never journaled is journaled like a firing (it did fire).
- **Truncated notifications** (``max_alerts``): a note says how many alerts were left
  out, and, when Alertmanager's API is configured, the group's alerts are read from
  it and taken like the others.

Every event is marked ``"automated": true`` (automation, not a person acknowledging:
see :mod:`console.domain.recovery`). Within a process notifications are taken one at
a time, so two deliveries of one alert cannot both open an incident.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from console.domain.alert_events import (
    RESOLVED,
    Alert,
    AlertLabels,
    JournaledAlert,
    Notification,
    RankedPlaybooks,
    Suggestion,
    describe,
    incident_summary,
    journal_record,
    note_text,
    parse_notification,
    suggest,
)
from console.domain.errors import RewindError
from console.domain.incident import parse_severity
from console.domain.journal import Event, EventKind
from console.domain.playbook import Playbook
from console.domain.recovery import AUTOMATED_KEY
from console.services.journal import JournalService

ALERT_KEY = "alert"
"""The payload key of a journaled alert."""
TRUNCATION_KEY = "alert_truncation"
"""The payload key of a note saying a notification left alerts out."""
DEFAULT_SEVERITY = "2"

Ranker = Callable[[Sequence[Playbook], str], RankedPlaybooks]
"""Ranks playbooks for a model by its current verdicts (``PlaybookRunner.rank``)."""
GroupReader = Callable[[Notification], Sequence[Alert]]
"""Reads a truncated notification's whole group from Alertmanager's API."""


@dataclass(frozen=True)
class AlertOutcome:
    """What one alert of a notification did.

    ``outcome``: ``opened`` (a new incident), ``joined`` (the model's open incident),
    ``resolved`` (a note in the incident its firing went to), ``duplicate`` (already
    journaled), ``ignored`` (nothing to attach it to; ``detail`` says why), or
    ``truncated`` (the note about alerts left out of the notification).
    """

    alertname: str
    fingerprint: str
    status: str
    outcome: str
    incident_id: str | None = None
    playbook: str | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        """For the webhook's answer."""
        return {"alertname": self.alertname, "fingerprint": self.fingerprint, "status": self.status,
                "outcome": self.outcome, "incident": self.incident_id, "playbook": self.playbook,
                "detail": self.detail}


@dataclass(frozen=True)
class Receipt:
    """What a notification did, alert by alert."""

    outcomes: tuple[AlertOutcome, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """One line for the request log: ``2 alerts: opened INC-... (RewindErrorRateBreach), duplicate``."""
        parts = []
        for o in self.outcomes:
            where = f" {o.incident_id}" if o.incident_id else ""
            what = o.alertname or o.fingerprint or o.detail
            parts.append(f"{o.outcome}{where}" + (f" ({what})" if what else ""))
        return f"{len(self.outcomes)} alert(s): " + ", ".join(parts) if parts else "no alerts"

    def as_dict(self) -> dict[str, object]:
        """The webhook's answer."""
        return {"ok": True, "alerts": [o.as_dict() for o in self.outcomes]}


def severity(alert: Alert, suggestion: Suggestion, playbooks: Sequence[Playbook]) -> str:
    """A new incident's severity: the alert's ``severity`` label when it reads as SEV1-4 (``1``, ``sev2``...),
    else the suggested playbook's (what a run of it would open), else SEV2."""
    try:
        return parse_severity(alert.labels.get("severity", ""))
    except ValueError:
        pass
    chosen = next((p for p in playbooks if p.id == suggestion.playbook), None)
    return str(chosen.severity) if chosen is not None else DEFAULT_SEVERITY


def episode_marker(key: str) -> str:
    """The exact text a journaled alert's payload holds for its episode (canonical JSON)."""
    return '"episode":' + json.dumps(key, ensure_ascii=False)


class AlertIntake:
    """Takes Alertmanager's notifications into the journal.

    Args:
        journal: where incidents are opened and alerts recorded (as the receiver's OS user).
        playbooks: the playbook library, read at each alert that needs a suggestion (edits count at once).
        labels: which labels name the model, version and segment.
        rank: the verdict ranking, for alerts that name no playbook (``None``: not ranked).
        read_group: reads a truncated group's alerts from Alertmanager (``None``: not read).
    """

    def __init__(self, journal: JournalService, playbooks: Callable[[], Sequence[Playbook]],
                 labels: AlertLabels | None = None, rank: Ranker | None = None,
                 read_group: GroupReader | None = None) -> None:
        self.journal = journal
        self.playbooks = playbooks
        self.labels = labels or AlertLabels()
        self.rank = rank
        self.read_group = read_group
        self._one_at_a_time = threading.Lock()

    # -- taking a notification ------------------------------------------------------------------

    def receive(self, body: bytes) -> Receipt:
        """Journal one webhook notification; returns once every write is committed.

        Raises:
            PayloadRefused: the body can never be accepted (not JSON, another payload version...).
            Exception: anything else (the journal failing): nothing is lost, Alertmanager retries.
        """
        notification = parse_notification(body)
        with self._one_at_a_time:
            outcomes = [self._take(alert, notification) for alert in notification.alerts]
            if notification.truncated_alerts:
                outcomes.extend(self._truncated(notification))
        return Receipt(tuple(outcomes))

    def _take(self, alert: Alert, notification: Notification) -> AlertOutcome:
        model = alert.subject(self.labels)[0]

        def outcome(kind: str, incident_id: str | None = None, playbook: str | None = None,
                    detail: str = "") -> AlertOutcome:
            return AlertOutcome(alert.name, alert.fingerprint, alert.status, kind, incident_id, playbook, detail)

        if model is None:
            return outcome("ignored", detail=f"no {self.labels.model!r} label: no model to open an incident for")
        records = self.records(alert.episode.key)
        if records and (alert.firing or any(r.status == RESOLVED for _, r in records)):
            return outcome("duplicate", records[0][0].incident_id)
        if records:  # the resolution of an episode whose firing is journaled: a note where the firing went
            incident_id = records[0][0].incident_id
            if self._closed(incident_id):
                return outcome("ignored", incident_id, detail=f"incident {incident_id} is closed")
            self.journal.record(incident_id, EventKind.NOTE, self._payload(alert, notification, None))
            return outcome("resolved", incident_id)
        playbooks = list(self.playbooks())
        suggestion = self._suggest(alert, model, playbooks)
        opened = self.journal.open_incident_of(model)
        if opened is not None:
            incident_id, kind = opened.incident_id, "joined"
        else:
            incident_id, kind = self._open(alert, model, severity(alert, suggestion, playbooks)), "opened"
        self.journal.record(incident_id, EventKind.NOTE, self._payload(alert, notification, suggestion))
        return outcome(kind, incident_id, suggestion.playbook)

    def records(self, episode_key: str) -> list[tuple[Event, JournaledAlert]]:
        """The journal's events that record this episode (its firing, its resolution), oldest first."""
        found = []
        for event in self.journal.journal.find_events([EventKind.NOTE], episode_marker(episode_key)):
            record = JournaledAlert.read(event.incident_id, event.seq, event.ts, event.payload)
            if record is not None and record.episode == episode_key:
                found.append((event, record))
        return found

    def _closed(self, incident_id: str) -> bool:
        return next(iter(self.journal.journal.events(incident_id, [EventKind.INCIDENT_CLOSED])), None) is not None

    def _suggest(self, alert: Alert, model: str, playbooks: Sequence[Playbook]) -> Suggestion:
        rank = self.rank
        if rank is None:
            return suggest(alert, model, playbooks)
        return suggest(alert, model, playbooks, lambda mine: rank(mine, model))

    def _open(self, alert: Alert, model: str, severity: str) -> str:
        opened = self.journal.open_incident(
            model, severity, incident_summary(alert, self.labels), detected_at=alert.starts_at,
            extra={AUTOMATED_KEY: True, "opened_by_alert": describe(alert, self.labels)})
        return opened.incident_id

    def _payload(self, alert: Alert, notification: Notification, suggestion: Suggestion | None) -> dict[str, object]:
        return {"text": note_text(alert, self.labels, suggestion), AUTOMATED_KEY: True,
                ALERT_KEY: journal_record(alert, notification, self.labels, suggestion)}

    # -- alerts left out -----------------------------------------------------------------------

    def _truncated(self, notification: Notification) -> list[AlertOutcome]:
        """A note that alerts were left out (once per distinct notification), then the group read from the API."""
        outcomes: list[AlertOutcome] = []
        model = notification.common_labels.get(self.labels.model) or notification.group_labels.get(self.labels.model)
        models = {a.subject(self.labels)[0] for a in notification.alerts} - {None}
        model = model or (next(iter(models)) if len(models) == 1 else None)
        seen = sorted(a.episode.key for a in notification.alerts)
        digest = hashlib.sha256(json.dumps([notification.group_key, notification.truncated_alerts, seen])
                                .encode("utf-8")).hexdigest()[:32]
        detail = f"Alertmanager left {notification.truncated_alerts} alert(s) out of this notification (max_alerts)"
        marker = f'"digest":"{digest}"'
        if model is None:
            outcomes.append(AlertOutcome("", "", "", "truncated", detail=detail + "; no single model to note it in"))
        elif not self.journal.journal.find_events([EventKind.NOTE], marker):
            opened = self.journal.open_incident_of(model)
            if opened is not None:
                read = "they are read from Alertmanager's API" if self.read_group else \
                    "they are not journaled until Alertmanager sends them (set alerts.alertmanager_url to read them)"
                self.journal.record(opened.incident_id, EventKind.NOTE, {
                    "text": f"{detail}: {read}.", AUTOMATED_KEY: True,
                    TRUNCATION_KEY: {"digest": digest, "truncated_alerts": notification.truncated_alerts,
                                     "group_key": notification.group_key[:500], "alerts_sent": len(seen)}})
                outcomes.append(AlertOutcome("", "", "", "truncated", opened.incident_id, detail=detail))
        if self.read_group is not None:
            sent = {a.episode.key for a in notification.alerts}
            try:
                group = self.read_group(notification)
            except RewindError as exc:  # the alerts sent are journaled; the others come with a later notification
                outcomes.append(AlertOutcome("", "", "", "truncated", detail=f"the group could not be read: {exc}"))
                group = []
            for alert in group:
                if alert.episode.key not in sent:
                    outcomes.append(self._take(alert, notification))
        return outcomes


def journaled_alerts(journal: JournalService) -> list[JournaledAlert]:
    """The alerts journaled in the open incidents, oldest first (``rewind alerts list``, the console's header)."""
    open_ids = {incident.incident_id for incident in journal.incidents() if incident.status == "open"}
    found: list[JournaledAlert] = []
    for event in journal.journal.find_events([EventKind.NOTE], f'"{ALERT_KEY}":{{'):
        record = JournaledAlert.read(event.incident_id, event.seq, event.ts, event.payload) \
            if event.incident_id in open_ids else None
        if record is not None:
            found.append(record)
    return sorted(found, key=lambda r: (r.recorded_at, r.incident_id, r.seq))
