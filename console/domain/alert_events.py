"""Alertmanager's webhook notifications (payload version 4), their episodes, and the playbook they suggest.

Alertmanager posts a *notification* per alert group: ``{receiver, status, alerts,
groupLabels, commonLabels, commonAnnotations, externalURL, version, groupKey,
truncatedAlerts}``, each alert ``{status, labels, annotations, startsAt, endsAt,
generatorURL, fingerprint}`` (``endsAt`` is ``0001-01-01T00:00:00Z`` while it fires).
:func:`parse_notification` reads one and refuses, with the reason, anything that
could never be accepted (not JSON, another payload version, a malformed alert).

An alert's **episode** is ``(fingerprint, startsAt)``: Alertmanager resends the whole
group every ``repeat_interval`` and whenever one member changes, and an HA pair sends
everything twice, always with the same fingerprint and ``startsAt``; an alert that
stops and fires again gets a new ``startsAt``, hence a new episode.

The **suggested playbook** (:func:`suggest`), first found wins, among the playbooks
written for the alert's model: (1) the ``rewind_playbook`` annotation naming one,
(2) a ``runbook_url`` whose last path segment, without ``.yaml``/``.yml``/``.md``, is a
playbook id, (3) a playbook whose ``alerts:`` matchers all hold on the alert's labels
(the most specific first), (4) the verdict ranking (``rewind playbook list --model``).
Each suggestion says why, and what was passed over on the way.

What the journal keeps of an alert (:func:`journal_record`) is bounded and stripped:
values that look like a credential are withheld, the generator URL loses its query
string (where tokens travel; the expression is the rule's, which Prometheus keeps).

Pure: no I/O. The ranking is handed in as a callable, called only when it is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

from console.domain.credentials import credential_in
from console.domain.journal import format_ts, parse_ts
from console.domain.playbook import Playbook
from console.domain.playbook_run import EntryMatch

PAYLOAD_VERSION = "4"
"""The only webhook payload version Alertmanager has sent since 0.11, and the one read here."""

PLAYBOOK_ANNOTATION = "rewind_playbook"
"""The annotation an alerting rule names its playbook with."""
RUNBOOK_ANNOTATION = "runbook_url"
"""The conventional runbook link annotation (monitoring mixins, the prometheus-operator runbooks)."""
RUNBOOK_SUFFIXES = (".yaml", ".yml", ".md")

FIRING, RESOLVED = "firing", "resolved"
_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time: Alertmanager's ``endsAt`` of an alert that still fires."""

MAX_LABEL_CHARS = 256
"""A label value kept in the journal is cut at this length."""
MAX_ANNOTATION_CHARS = 2000
"""An annotation kept in the journal is cut at this length (a description, not a log)."""
MAX_ENTRIES = 64
"""At most this many labels and this many annotations of an alert are kept."""
WITHHELD = "[withheld: {what}]"


class PayloadRefused(ValueError):
    """A notification that can never be accepted, however often it is sent (answer 400, never retried)."""


@dataclass(frozen=True)
class AlertLabels:
    """Which labels name the model, the version and the segment (config ``alerts``)."""

    model: str = "model"
    version: str = "version"
    segment: str = "segment"


@dataclass(frozen=True)
class Episode:
    """One firing of one alert: its fingerprint (a hash of its labels) and when it started firing."""

    fingerprint: str
    starts_at: str

    @property
    def key(self) -> str:
        """``fingerprint@startsAt``: the text the journal finds the episode by."""
        return f"{self.fingerprint}@{self.starts_at}"


@dataclass(frozen=True)
class Alert:
    """One alert of a notification.

    Attributes:
        status: ``firing`` or ``resolved``.
        labels: its labels (``alertname`` among them).
        annotations: its annotations.
        starts_at: when it started firing, as the journal writes times.
        ends_at: when it stopped (``None`` while it fires).
        generator_url: the link to the rule's expression, as sent.
        fingerprint: Alertmanager's hash of its labels.
    """

    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str
    ends_at: str | None
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        """The alert's name (label ``alertname``)."""
        return self.labels.get("alertname", "")

    @property
    def episode(self) -> Episode:
        """Which firing this is."""
        return Episode(self.fingerprint, self.starts_at)

    @property
    def firing(self) -> bool:
        """Whether it fires (else it resolved)."""
        return self.status == FIRING

    def subject(self, names: AlertLabels) -> tuple[str | None, str | None, str | None]:
        """``(model, version, segment)`` from its labels; each ``None`` when absent or empty."""
        return (self.labels.get(names.model) or None, self.labels.get(names.version) or None,
                self.labels.get(names.segment) or None)


@dataclass(frozen=True)
class Notification:
    """One webhook notification: an alert group as Alertmanager sends it."""

    receiver: str
    status: str
    alerts: tuple[Alert, ...]
    group_labels: Mapping[str, str] = field(default_factory=dict)
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)
    external_url: str = ""
    group_key: str = ""
    truncated_alerts: int = 0


# -- parsing ----------------------------------------------------------------------------------------

def _text_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadRefused(f"{where} must map names to text")
    return dict(value)


def _text(value: object, where: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise PayloadRefused(f"{where} must be {'non-empty ' if required else ''}text")
    return value


_FRACTION = re.compile(r"(\.\d{6})\d+")


def alert_time(text: str, where: str) -> str | None:
    """An Alertmanager time (RFC 3339, up to nanoseconds) as the journal writes times; ``None`` for Go's zero time.

    Raises:
        PayloadRefused: not a time with a zone.
    """
    if text in ("", _ZERO_TIME) or text.startswith("0001-01-01T"):
        return None
    try:
        return format_ts(parse_ts(_FRACTION.sub(r"\1", text)).timestamp())
    except ValueError:
        raise PayloadRefused(f"{where}: {text[:40]!r} is not an RFC 3339 time") from None


def _alert(raw: object, index: int) -> Alert:
    where = f"alerts[{index}]"
    if not isinstance(raw, dict):
        raise PayloadRefused(f"{where} must be an object")
    status = raw.get("status")
    if status not in (FIRING, RESOLVED):
        raise PayloadRefused(f"{where}.status must be firing or resolved")
    starts_at = alert_time(_text(raw.get("startsAt"), f"{where}.startsAt", required=True), f"{where}.startsAt")
    if starts_at is None:
        raise PayloadRefused(f"{where}.startsAt is the zero time")
    fingerprint = _text(raw.get("fingerprint"), f"{where}.fingerprint", required=True)
    if len(fingerprint) > 64 or not fingerprint.isalnum():
        raise PayloadRefused(f"{where}.fingerprint must be up to 64 letters and digits")
    return Alert(
        status=status,
        labels=_text_map(raw.get("labels"), f"{where}.labels"),
        annotations=_text_map(raw.get("annotations"), f"{where}.annotations"),
        starts_at=starts_at,
        ends_at=alert_time(_text(raw.get("endsAt"), f"{where}.endsAt"), f"{where}.endsAt"),
        generator_url=_text(raw.get("generatorURL"), f"{where}.generatorURL"),
        fingerprint=fingerprint,
    )


def parse_notification(body: bytes) -> Notification:
    """Read a webhook notification.

    Raises:
        PayloadRefused: the body is not a JSON object, its ``version`` is not ``"4"``, or a
            field has the wrong shape (the message says which).
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadRefused("the body is not JSON") from None
    if not isinstance(document, dict):
        raise PayloadRefused("the body is not a JSON object")
    version = document.get("version")
    if version != PAYLOAD_VERSION:
        raise PayloadRefused(f"payload version {str(version)[:20]!r} is not supported: Rewind reads Alertmanager's "
                             f"webhook payload version {PAYLOAD_VERSION!r}")
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadRefused("alerts must be a list")
    truncated = document.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadRefused("truncatedAlerts must be a whole number")
    return Notification(
        receiver=_text(document.get("receiver"), "receiver"),
        status=_text(document.get("status"), "status"),
        alerts=tuple(_alert(raw, index) for index, raw in enumerate(alerts)),
        group_labels=_text_map(document.get("groupLabels"), "groupLabels"),
        common_labels=_text_map(document.get("commonLabels"), "commonLabels"),
        common_annotations=_text_map(document.get("commonAnnotations"), "commonAnnotations"),
        external_url=_text(document.get("externalURL"), "externalURL"),
        group_key=_text(document.get("groupKey"), "groupKey"),
        truncated_alerts=truncated,
    )


def api_alerts(found: Sequence[object], now: float) -> list[Alert]:
    """Alerts as Alertmanager's ``/api/v2/alerts`` lists them, read like a notification's.

    The API gives each alert's ``endsAt`` as when it will time out; one already past is resolved.
    Entries that do not read as alerts are left out (the API is asked for more, not trusted more).
    """
    alerts = []
    for index, raw in enumerate(found):
        if not isinstance(raw, dict):
            continue
        try:
            ends = alert_time(_text(raw.get("endsAt"), "endsAt"), "endsAt")
            resolved = ends is not None and parse_ts(ends).timestamp() <= now
            alerts.append(_alert({**raw, "status": RESOLVED if resolved else FIRING,
                                  "endsAt": raw.get("endsAt") if resolved else None}, index))
        except PayloadRefused:
            continue
    return alerts


# -- the suggested playbook -------------------------------------------------------------------------

@dataclass(frozen=True)
class Suggestion:
    """The playbook an alert suggests, and why.

    Attributes:
        playbook: its id; ``None`` when nothing fits.
        source: ``annotation``, ``runbook_url``, ``matchers``, ``ranking`` or ``none``.
        why: one sentence for the responder.
        passed_over: what pointed elsewhere and did not count (a name no playbook of the model has).
    """

    playbook: str | None
    source: str
    why: str
    passed_over: tuple[str, ...] = ()

    def as_payload(self) -> dict[str, object]:
        """How the journal keeps it."""
        return {"playbook": self.playbook, "source": self.source, "why": self.why,
                "passed_over": list(self.passed_over)}


RankedPlaybooks = Sequence[tuple[Playbook, EntryMatch]]
"""Playbooks for a model, best match of their entry conditions on the current verdicts first."""


def runbook_playbook_id(url: str) -> str | None:
    """The playbook id a runbook URL names: its last path segment without ``.yaml``/``.yml``/``.md``."""
    path = urlsplit(url.strip()).path.rstrip("/")
    name = path.rsplit("/", 1)[-1]
    for suffix in RUNBOOK_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)] or None
    return name or None


def _matching(playbooks: Sequence[Playbook], labels: Mapping[str, str]) -> list[Playbook]:
    """Playbooks whose ``alerts:`` matchers all hold, the most specific (most matchers) first."""
    found = [p for p in playbooks if p.alerts and all(m.matches(labels) for m in p.alerts)]
    return sorted(found, key=lambda p: (-len(p.alerts), p.id))


def _matchers_text(playbook: Playbook) -> str:
    return ", ".join(f"{m.name}{m.op}{json.dumps(m.value, ensure_ascii=False)}" for m in playbook.alerts)


def suggest(alert: Alert, model: str, playbooks: Sequence[Playbook],
            rank: Callable[[Sequence[Playbook]], RankedPlaybooks] | None = None) -> Suggestion:
    """The playbook ``alert`` suggests for ``model``, in the order of the module's docstring.

    Args:
        alert: the alert.
        model: its model (from its labels).
        playbooks: every valid playbook; only those written for ``model`` count.
        rank: ranks playbooks by the model's current verdicts (called only when the alert names none;
            it may raise, and the suggestion then says why there is none).
    """
    mine = [p for p in playbooks if p.applies_to(model)]
    by_id = {p.id: p for p in mine}
    passed: list[str] = []

    def elsewhere(name: str) -> str:
        if any(p.id == name for p in playbooks):
            return f"{name!r}, a playbook written for other models than {model}"
        return f"{name!r}, which is not a playbook"

    named = alert.annotations.get(PLAYBOOK_ANNOTATION, "").strip()
    if named:
        if named in by_id:
            return Suggestion(named, "annotation", f"the alert's {PLAYBOOK_ANNOTATION} annotation names {named}")
        passed.append(f"{PLAYBOOK_ANNOTATION} names {elsewhere(named)}")
    runbook = alert.annotations.get(RUNBOOK_ANNOTATION, "").strip()
    if runbook:
        candidate = runbook_playbook_id(runbook)
        if candidate and candidate in by_id:
            return Suggestion(candidate, "runbook_url", f"the alert's {RUNBOOK_ANNOTATION} ends in "
                              f"{urlsplit(runbook).path.rsplit('/', 1)[-1]}, the id of playbook {candidate}",
                              tuple(passed))
        if candidate:
            passed.append(f"{RUNBOOK_ANNOTATION} ends in {elsewhere(candidate)}")
    matched = _matching(mine, alert.labels)
    if matched:
        best = matched[0]
        also = f" (also matched: {', '.join(p.id for p in matched[1:])})" if len(matched) > 1 else ""
        return Suggestion(best.id, "matchers", f"playbook {best.id}'s alerts: matchers all hold on the alert's "
                          f"labels: {_matchers_text(best)}{also}", tuple(passed))
    if not mine:
        return Suggestion(None, "none", f"no playbook is written for {model}", tuple(passed))
    opening = "the alert names no playbook" if not passed else "no playbook the alert names is written for " + model
    if rank is None:
        return Suggestion(None, "none", f"{opening}, and the verdicts were not ranked", tuple(passed))
    try:
        ranked = list(rank(mine))
    except Exception as exc:  # noqa: BLE001 - any failure to read the systems leaves the alert without a ranking
        return Suggestion(None, "none", f"{opening}, and the verdict ranking could not be read "
                          f"({exc.__class__.__name__}: {str(exc)[:200]})", tuple(passed))
    for playbook, match in ranked:
        if match.met > 0 and playbook.id in by_id:
            held = "; ".join(reason for reason in match.reasons if reason.startswith("✓"))
            return Suggestion(playbook.id, "ranking", f"{opening}; {playbook.id} ranks first on the current verdicts "
                              f"({match.met}/{match.of} of its entry conditions hold: {held})", tuple(passed))
    return Suggestion(None, "none", f"{opening}, and no playbook's entry conditions hold on the current verdicts",
                      tuple(passed))


# -- what the journal keeps ---------------------------------------------------------------------------

def _kept(value: str, limit: int) -> str:
    found = credential_in(value)
    if found is not None:
        return WITHHELD.format(what=f"looks like {found}")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _kept_map(values: Mapping[str, str], limit: int) -> dict[str, str]:
    kept = {}
    for name in sorted(values)[:MAX_ENTRIES]:
        kept[name[:MAX_LABEL_CHARS]] = _kept(values[name], limit)
    return kept


def bare_url(url: str) -> str:
    """A URL without its user, password, query string and fragment (``""`` when it is not an http(s) URL)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path[:MAX_ANNOTATION_CHARS], "", ""))


def journal_record(alert: Alert, notification: Notification, names: AlertLabels,
                   suggestion: Suggestion | None) -> dict[str, object]:
    """What the journal keeps of one alert (the ``alert`` of its event's payload)."""
    model, version, segment = alert.subject(names)
    record: dict[str, object] = {
        "episode": alert.episode.key,
        "fingerprint": alert.fingerprint,
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "status": alert.status,
        "alertname": _kept(alert.name, MAX_LABEL_CHARS),
        "model": model, "version": version, "segment": segment,
        "labels": _kept_map(alert.labels, MAX_LABEL_CHARS),
        "annotations": _kept_map(alert.annotations, MAX_ANNOTATION_CHARS),
        "generator_url": bare_url(alert.generator_url),
        "receiver": _kept(notification.receiver, MAX_LABEL_CHARS),
        "alertmanager": bare_url(notification.external_url),
    }
    if suggestion is not None:
        record["suggestion"] = suggestion.as_payload()
    return record


def describe(alert: Alert, names: AlertLabels) -> str:
    """What fired, and where: ``RewindErrorRateBreach on fraud-detector v3 in mobile``."""
    model, version, segment = (None if v is None else _kept(v, MAX_LABEL_CHARS) for v in alert.subject(names))
    text = _kept(alert.name, MAX_LABEL_CHARS) or "an unnamed alert"
    if model:
        text += f" on {model}" + (f" v{version}" if version else "")
    if segment:
        text += f" in {segment}"
    return text


def _said(alert: Alert, limit: int) -> str:
    summary = alert.annotations.get("summary", "").strip()
    return f": {_kept(summary, limit)}" if summary else ""


def incident_summary(alert: Alert, names: AlertLabels) -> str:
    """The one-line summary of an incident an alert opens: what fired, and its own summary annotation."""
    return f"Alert {describe(alert, names)}{_said(alert, 200)}"


def note_text(alert: Alert, names: AlertLabels, suggestion: Suggestion | None) -> str:
    """The text of the note that journals an alert: what fired or stopped, since when, and the suggestion."""
    what, said = describe(alert, names), _said(alert, MAX_ANNOTATION_CHARS)
    if alert.firing:
        text = f"Alert {what} firing since {alert.starts_at}{said}."
    else:
        text = (f"Alert {what} resolved at {alert.ends_at or 'an unknown time'} (firing since {alert.starts_at})"
                f"{said}. The incident stays open: an alert that stopped is not a problem fixed.")
    if suggestion is not None:
        text += (f" Suggested playbook: {suggestion.playbook} ({suggestion.why})." if suggestion.playbook
                 else f" No playbook suggested: {suggestion.why}.")
    return text


@dataclass(frozen=True)
class JournaledAlert:
    """An alert as the journal holds it (one event), read back for ``rewind alerts list`` and the console."""

    incident_id: str
    seq: int
    recorded_at: str
    episode: str
    status: str
    alertname: str
    model: str | None
    version: str | None
    segment: str | None
    starts_at: str
    ends_at: str | None
    summary: str
    suggestion: Mapping[str, object] | None
    severity: str | None = None
    """Its ``severity`` label (``page``, ``ticket``...), when it has one."""

    @classmethod
    def read(cls, incident_id: str, seq: int, ts: str, payload: Mapping[str, object]) -> JournaledAlert | None:
        """The alert an event's payload carries (key ``alert``), or ``None`` when it carries none."""
        record = payload.get("alert")
        if not isinstance(record, Mapping) or not isinstance(record.get("episode"), str):
            return None
        annotations = record.get("annotations")
        summary = annotations.get("summary", "") if isinstance(annotations, Mapping) else ""
        suggestion = record.get("suggestion")
        labels = record.get("labels")
        severity = labels.get("severity") if isinstance(labels, Mapping) else None

        def text(key: str) -> str | None:
            value = record.get(key)
            return value if isinstance(value, str) else None

        return cls(incident_id, seq, ts, str(record["episode"]), text("status") or "?", text("alertname") or "",
                   text("model"), text("version"), text("segment"), text("starts_at") or "", text("ends_at"),
                   str(summary), suggestion if isinstance(suggestion, Mapping) else None,
                   severity if isinstance(severity, str) and severity else None)


def episodes(records: Sequence[JournaledAlert]) -> list[JournaledAlert]:
    """One row per episode, oldest first: where and when it was first journaled, its latest status and end,
    and the suggestion its first record made (a resolution's note carries none)."""
    merged: dict[str, JournaledAlert] = {}
    for record in records:
        first = merged.get(record.episode)
        if first is None:
            merged[record.episode] = record
            continue
        merged[record.episode] = replace(first, status=record.status, ends_at=record.ends_at or first.ends_at,
                                         suggestion=first.suggestion or record.suggestion)
    return list(merged.values())
