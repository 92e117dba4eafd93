"""The decision journal's events, their canonical form, the hash chain and redaction.

Every event belongs to one incident and carries a per-incident sequence number
(1, 2, 3, ...), a UTC timestamp, the actor (OS user, host and SSH client
address), a kind and a JSON payload. Events of one incident form a chain:

    hash = sha256(canonical JSON of {actor, incident_id, kind, payload, prev_hash, seq, ts})

where ``prev_hash`` is the previous event's ``hash`` (:data:`GENESIS_HASH` for
event #1). Canonical JSON is ``json.dumps(..., sort_keys=True,
separators=(",", ":"), ensure_ascii=False, allow_nan=False)`` encoded as UTF-8;
a payload is stored as its canonical text, so verifying an event hashes the
stored bytes and needs no re-serialisation. Editing, deleting, reordering or
inserting an event breaks the chain at or after that event, and
:func:`verify_chain` names the first event where it breaks.

Secrets never reach an event: :func:`prepare_payload` redacts secret-looking
keys, credentials embedded in URLs, ``Bearer`` tokens, ``key=value`` secrets and
any known secret value before the payload is hashed or written.

Pure: no I/O. Gathering the actor from the OS is an adapter's job
(:mod:`console.adapters.identity`); the values are passed in.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from json.encoder import encode_basestring
from pathlib import PurePath
from typing import Any

from console.domain.credentials import BEARER, URL_CREDENTIALS, is_secret_key
from console.domain.metrics import MetricSpec, QueryResult, criterion_document
from console.domain.verdicts import Verdict


@dataclass(frozen=True)
class LockChange:
    """A model's action lock taken or released in the same transaction as an append.

    Taking the lock with an action's intent, and releasing it with its outcome,
    means a lock is never held without a journaled intent, nor left behind by
    an action whose outcome was written.
    """

    take: bool
    model: str
    action_id: str
    holder: str = ""


GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of an incident's first event."""

HASH_ALGORITHM = "sha256"
REDACTED = "[REDACTED]"


class EventKind(StrEnum):
    """Every kind of event the journal records."""

    INCIDENT_OPENED = "incident.opened"
    INCIDENT_CLOSED = "incident.closed"
    PLAYBOOK_STARTED = "playbook.started"
    PLAYBOOK_FINISHED = "playbook.finished"
    STEP_STARTED = "step.started"
    STEP_FINISHED = "step.finished"
    CHECK_EVALUATED = "check.evaluated"
    METRICS_HISTORY = "metrics.history"
    DECISION = "decision"
    ACTION_INTENT = "action.intent"
    ACTION_APPLIED = "action.applied"
    ACTION_FAILED = "action.failed"
    ACTION_COMPENSATED = "action.compensated"
    ACTION_VERIFIED = "action.verified"
    ACTION_NOT_VERIFIED = "action.not_verified"
    NOTE = "note"
    NOTIFICATION_RENDERED = "notification.rendered"
    NOTIFICATION_SENT = "notification.sent"

    @property
    def is_action(self) -> bool:
        """Whether this kind is one step of an action's life (intent ... verification)."""
        return self.value.startswith("action.")


_KINDS = {kind.value: kind for kind in EventKind}

REQUIRED_KEYS: dict[EventKind, tuple[str, ...]] = {
    EventKind.INCIDENT_OPENED: ("model", "severity", "summary"),
    EventKind.INCIDENT_CLOSED: (),
    EventKind.PLAYBOOK_STARTED: ("playbook_id", "playbook_version", "content_hash"),
    EventKind.PLAYBOOK_FINISHED: ("playbook_id",),
    EventKind.STEP_STARTED: ("step_id",),
    EventKind.STEP_FINISHED: ("step_id",),
    EventKind.CHECK_EVALUATED: ("metric", "promql", "values", "criterion", "verdict"),
    EventKind.METRICS_HISTORY: ("metric", "promql", "start", "step", "series"),
    EventKind.DECISION: ("option", "reason"),
    EventKind.ACTION_INTENT: ("action_id", "plan"),
    EventKind.ACTION_APPLIED: ("action_id",),
    EventKind.ACTION_FAILED: ("action_id",),
    EventKind.ACTION_COMPENSATED: ("action_id",),
    EventKind.ACTION_VERIFIED: ("action_id",),
    EventKind.ACTION_NOT_VERIFIED: ("action_id",),
    EventKind.NOTE: ("text",),
    EventKind.NOTIFICATION_RENDERED: ("channel",),
    EventKind.NOTIFICATION_SENT: ("channel",),
}
"""The payload keys each kind must carry. Other keys are welcome; the conventions are:

- ``incident.opened``: model, severity, summary; optional ``impact_started_at`` and
  ``detected_at`` (timestamps as :func:`format_ts` writes them).
- ``incident.closed``: optional ``summary`` (the resolution).
- ``check.evaluated``: metric, title, unit, promql, ``values`` (a list of
  ``{version, segment, raw, verdict}``, ``raw`` exactly as Prometheus sent it),
  criterion (a mapping such as ``{threshold, max_delta, delta_kind, min_traffic}``),
  verdict, ``data_age_s``, ``evaluated_at`` (Unix seconds), ``stable_version``.
- ``metrics.history``: one catalogue metric's values over the incident, read with a
  range query when the incident is closed or exported: metric, title, unit,
  direction, promql, criterion, stable_version, ``start``/``end``/``step`` (Unix
  seconds), ``series`` (a list of ``{version, segment, values}``, ``values[i]``
  the value at ``start + i * step``, ``null`` where there was none), and
  ``error`` when the query failed.
- ``decision``: option, reason, optional question and ``evidence`` (sequence
  numbers of the events the decision rests on).
- ``action.*``: ``action_id`` ties an action's events together; intent carries
  ``plan`` and ``expected``; applied/verified/not_verified carry ``observed``;
  failed and compensated carry ``reason`` (and ``observed`` when the systems
  could be read), with ``refused``, ``conflict``, ``held`` or ``recovered`` set
  to true when that is what happened.
"""


def parse_kind(value: str) -> EventKind | str:
    """The :class:`EventKind` of a stored kind; an unknown kind (from a newer Rewind) stays a string."""
    return _KINDS.get(value, value)


@dataclass(frozen=True)
class Actor:
    """Who recorded an event: OS user, host, and the SSH client address when in an SSH session."""

    user: str
    host: str
    ssh_client: str | None = None

    def label(self) -> str:
        """``user@host``, with ``via ADDRESS`` when the session came over SSH."""
        text = f"{self.user}@{self.host}"
        return f"{text} via {self.ssh_client}" if self.ssh_client else text

    def canonical(self) -> str:
        """The actor's canonical JSON text."""
        return canonical_json({"host": self.host, "ssh_client": self.ssh_client, "user": self.user})


def actor_from(user: str, host: str, ssh_connection: str | None) -> Actor:
    """Build an actor from OS facts; ``ssh_connection`` is ``$SSH_CONNECTION`` if set.

    ``SSH_CONNECTION`` is ``client_address client_port server_address server_port``;
    only the client address is kept.
    """
    client = None
    if ssh_connection and ssh_connection.strip():
        client = ssh_connection.split()[0]
    return Actor(user=user or "unknown", host=host or "unknown", ssh_client=client)


@dataclass(frozen=True)
class EventDraft:
    """An event before the journal gives it its place in the chain (seq, prev_hash, hash).

    ``payload`` must already be prepared (:func:`prepare_payload`): plain JSON
    values, secrets redacted.
    """

    incident_id: str
    ts: str
    actor: Actor
    kind: EventKind
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Event:
    """One sealed journal event.

    Attributes:
        incident_id: the incident the event belongs to.
        seq: its place in the incident's chain, from 1.
        ts: when it was recorded, UTC, as :func:`format_ts` writes it.
        actor: who recorded it.
        kind: what happened (an unknown kind from a newer Rewind stays a string).
        payload_json: the payload's canonical JSON text; this is what is hashed and stored.
        prev_hash: the previous event's hash (:data:`GENESIS_HASH` for #1).
        hash: sha256 of the canonical event (see :func:`event_hash`).

    The decoded :attr:`payload` is computed on first use: verifying or
    exporting as JSON 50,000 events never needs it.
    """

    incident_id: str
    seq: int
    ts: str
    actor: Actor
    kind: EventKind | str
    payload_json: str
    prev_hash: str
    hash: str

    @cached_property
    def payload(self) -> Mapping[str, Any]:
        """The payload, decoded from its canonical text (empty if that is not a JSON object)."""
        return decode_payload(self.payload_json)

    def knowing_payload(self, payload: Mapping[str, Any]) -> Event:
        """This event, with its decoded payload already known (it is not decoded again); returns ``self``."""
        self.__dict__["payload"] = payload
        return self

    def time(self) -> datetime:
        """The timestamp as an aware UTC datetime."""
        return parse_ts(self.ts)

    def canonical(self) -> str:
        """The canonical JSON text of the event's hashed fields."""
        return canonical_event_text(self.incident_id, self.seq, self.ts, self.actor.canonical(),
                                    str(self.kind), self.payload_json, self.prev_hash)


# --- canonical form and hashing ------------------------------------------------------------

def canonical_json(value: object) -> str:
    """The canonical JSON text of plain JSON data: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_event_text(incident_id: str, seq: int, ts: str, actor_json: str, kind: str,
                         payload_json: str, prev_hash: str) -> str:
    """The canonical JSON of an event's hashed fields, built from already-canonical parts.

    Equal, byte for byte, to ``canonical_json`` of the mapping ``{actor, incident_id,
    kind, payload, prev_hash, seq, ts}`` (a unit test holds it to that); built by
    concatenation because verifying 50,000 events must take well under a second.
    """
    return (
        '{"actor":' + actor_json
        + ',"incident_id":' + encode_basestring(incident_id)
        + ',"kind":' + encode_basestring(kind)
        + ',"payload":' + payload_json
        + ',"prev_hash":' + encode_basestring(prev_hash)
        + ',"seq":' + str(int(seq))
        + ',"ts":' + encode_basestring(ts)
        + "}"
    )


def decode_payload(payload_json: str) -> dict[str, Any]:
    """A stored payload decoded; an undecodable or non-object one (only tampering makes them) is empty."""
    try:
        decoded = json.loads(payload_json)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def event_hash(canonical_text: str) -> str:
    """The hex sha256 of an event's canonical text."""
    return hashlib.sha256(canonical_text.encode("utf-8")).hexdigest()


def seal(draft: EventDraft, seq: int, prev_hash: str) -> Event:
    """Give a draft its place in the chain: sequence number, previous hash and own hash."""
    payload_json = canonical_json(draft.payload)
    kind = str(draft.kind)
    text = canonical_event_text(draft.incident_id, seq, draft.ts, draft.actor.canonical(), kind,
                                payload_json, prev_hash)
    event = Event(draft.incident_id, seq, draft.ts, draft.actor, parse_kind(kind), payload_json, prev_hash,
                  event_hash(text))
    return event.knowing_payload(draft.payload)


def seal_chain(drafts: Sequence[EventDraft], last_seq: int, last_hash: str) -> list[Event]:
    """Seal drafts one after the other, continuing a chain whose head is (``last_seq``, ``last_hash``)."""
    sealed = []
    for draft in drafts:
        event = seal(draft, last_seq + 1, last_hash)
        sealed.append(event)
        last_seq, last_hash = event.seq, event.hash
    return sealed


# --- timestamps --------------------------------------------------------------------------

def format_ts(unix_seconds: float) -> str:
    """A Unix time as the journal writes it: ``2025-01-31T12:34:56.789012Z``."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parse a journal timestamp (or any ISO 8601 time with a zone) into an aware UTC datetime.

    Raises:
        ValueError: when ``text`` is not an ISO 8601 time with a zone.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(UTC)


# --- verification ------------------------------------------------------------------------

class Tamper(StrEnum):
    """How a chain is broken at its first bad event."""

    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    INSERTED = "inserted"


@dataclass(frozen=True)
class ChainProblem:
    """The first place an incident's chain is broken."""

    incident_id: str
    seq: int
    tamper: Tamper
    detail: str

    def message(self) -> str:
        """One line naming the incident, the event and what is wrong."""
        return f"incident {self.incident_id} event #{self.seq}: {self.detail} ({self.tamper.value})"


@dataclass(frozen=True)
class IncidentHead:
    """Where the journal says an incident's chain ends: its last sequence number and hash.

    ``seq`` is ``-1`` (and ``hash`` empty) for an incident that has events but no
    recorded head, which only tampering produces.
    """

    incident_id: str
    seq: int
    hash: str
    created_at: str

    @property
    def missing(self) -> bool:
        """Whether the journal has events of this incident but no head for it."""
        return self.seq < 0


@dataclass(frozen=True)
class JournalNews:
    """What a watch on the journal heard while it waited: whose heads moved, or that it may have missed some.

    Nothing here is an event: a follower reads the events themselves by sequence number.
    """

    heads: Mapping[str, int] = field(default_factory=dict)
    """Incident id to the highest head sequence number announced."""
    resync: bool = False
    """The watch (re)connected: anything may have been written while it was not listening, so catch up."""
    error: str | None = None
    """Why the watch cannot listen now (it retries); followers fall back to reading on a timer."""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of verifying one incident's chain."""

    incident_id: str
    events: int
    head_hash: str
    problem: ChainProblem | None = None

    @property
    def ok(self) -> bool:
        """Whether the chain is intact."""
        return self.problem is None


def _describe(event: Event) -> str:
    return f"{event.kind} at {event.ts}"


def verify_chain(incident_id: str, events: Iterable[Event], head: IncidentHead | None = None) -> VerifyResult:
    """Check an incident's events, in the order the journal returns them, against the chain.

    Args:
        incident_id: the incident being verified.
        events: its events, as stored (normally ordered by sequence number).
        head: the chain head the journal recorded alongside the events; it is
            what reveals a deleted last event or one added after it.

    Returns:
        The result, with the first bad event named when the chain is broken.
    """
    listed = events if isinstance(events, list) else list(events)
    if head is not None and head.missing:
        return _result(incident_id, listed, ChainProblem(
            incident_id, listed[0].seq if listed else 1, Tamper.INSERTED,
            "the journal has events of this incident but no record of opening it"))
    expected_seq = 1
    prev_hash = GENESIS_HASH
    actor_cache: dict[Actor, str] = {}
    for index, event in enumerate(listed):
        if event.incident_id != incident_id:
            return _result(incident_id, listed, ChainProblem(
                incident_id, event.seq, Tamper.INSERTED, f"belongs to incident {event.incident_id}"))
        if event.seq != expected_seq:
            return _result(incident_id, listed, _sequence_problem(incident_id, listed, index, expected_seq))
        if head is not None and event.seq > head.seq:
            return _result(incident_id, listed, ChainProblem(
                incident_id, event.seq, Tamper.INSERTED,
                f"{_describe(event)} comes after the journal's head #{head.seq}"))
        actor_json = actor_cache.get(event.actor)
        if actor_json is None:
            actor_json = actor_cache[event.actor] = event.actor.canonical()
        text = canonical_event_text(incident_id, event.seq, event.ts, actor_json, str(event.kind),
                                    event.payload_json, event.prev_hash)
        if event_hash(text) != event.hash:
            return _result(incident_id, listed, _content_problem(incident_id, listed, event))
        if event.prev_hash != prev_hash:
            return _result(incident_id, listed, ChainProblem(
                incident_id, event.seq, Tamper.INSERTED,
                f"{_describe(event)} does not follow event #{event.seq - 1}: its previous hash differs "
                "(an event before it was inserted or replaced)"))
        prev_hash = event.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    if head is not None:
        if head.seq > last_seq:
            return _result(incident_id, listed, ChainProblem(
                incident_id, last_seq + 1, Tamper.DELETED,
                f"missing: the journal's head is #{head.seq} but the events end at #{last_seq}"))
        if head.hash != prev_hash:
            return _result(incident_id, listed, ChainProblem(
                incident_id, last_seq, Tamper.EDITED,
                "does not match the hash the journal recorded for its last event"))
    return VerifyResult(incident_id, len(listed), prev_hash)


def _result(incident_id: str, listed: list[Event], problem: ChainProblem) -> VerifyResult:
    return VerifyResult(incident_id, len(listed), listed[-1].hash if listed else GENESIS_HASH, problem)


def _sequence_problem(incident_id: str, listed: list[Event], index: int, expected_seq: int) -> ChainProblem:
    """A sequence number out of place: a gap (deleted), a repeat or a later-found event (reordered)."""
    event = listed[index]
    if event.seq < expected_seq:
        return ChainProblem(incident_id, event.seq, Tamper.INSERTED,
                            f"{_describe(event)} repeats a sequence number already seen")
    if any(later.seq == expected_seq for later in listed[index + 1:]):
        return ChainProblem(incident_id, expected_seq, Tamper.REORDERED,
                            f"out of order: found after event #{event.seq}")
    return ChainProblem(incident_id, expected_seq, Tamper.DELETED,
                        f"missing: the chain jumps from #{expected_seq - 1} to #{event.seq}")


def _content_problem(incident_id: str, listed: list[Event], event: Event) -> ChainProblem:
    """An event whose content does not match its hash: edited, or moved to another place.

    Only runs once a chain is known to be broken, so it can afford to look for
    the sequence number the event's hash was computed with.
    """
    recorded_at = _recorded_seq(incident_id, listed, event)
    if recorded_at is not None and recorded_at < event.seq:
        return ChainProblem(incident_id, event.seq, Tamper.INSERTED,
                            f"{_describe(event)} was recorded as #{recorded_at}: "
                            "events were renumbered to make room for another")
    if recorded_at is not None:
        return ChainProblem(incident_id, event.seq, Tamper.REORDERED,
                            f"{_describe(event)} was recorded as #{recorded_at}")
    return ChainProblem(incident_id, event.seq, Tamper.EDITED,
                        f"{_describe(event)} does not match its hash: its content was changed")


def _recorded_seq(incident_id: str, listed: list[Event], event: Event) -> int | None:
    """The other sequence number under which the event's hash matches its content, if any."""
    actor_json = event.actor.canonical()

    def matches(seq: int) -> bool:
        text = canonical_event_text(incident_id, seq, event.ts, actor_json, str(event.kind), event.payload_json,
                                    event.prev_hash)
        return event_hash(text) == event.hash

    predecessor = next((e.seq for e in listed if e.hash == event.prev_hash), None)
    candidates = [1] if event.prev_hash == GENESIS_HASH else []
    if predecessor is not None:
        candidates += [predecessor + 1, predecessor]
    candidates += range(1, len(listed) + 2)
    return next((seq for seq in dict.fromkeys(candidates) if seq != event.seq and matches(seq)), None)


# --- payload preparation and redaction -----------------------------------------------------

_KEY_VALUE = re.compile(
    r"(?i)(\b[\w.\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|authorization))"
    r"(\"?\s*[=:]\s*)((?:(?:bearer|basic|digest|token)\s+)?)(\"[^\"]*\"|'[^']*'|[^\s&,;\"']+)"
)
MIN_KNOWN_SECRET_LENGTH = 6
"""Known secret values shorter than this are not searched for (they would match ordinary text)."""


_KEY_HINTS = ("pass", "pwd", "secret", "token", "key", "authorization")


def redact_text(text: str, known_secrets: Sequence[str] = ()) -> str:
    """Remove credentials from free text: URL passwords, auth tokens, ``key=value`` secrets, known values."""
    for secret in known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "://" in text and "@" in text:
        text = URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", text)
    if "=" not in text and ":" not in text and " " not in text and "\t" not in text:
        return text
    lower = text.lower()
    if ("=" in text or ":" in text) and any(hint in lower for hint in _KEY_HINTS):
        text = _KEY_VALUE.sub(_redact_key_value, text)
    if "bearer" in lower:
        text = BEARER.sub(lambda m: m.group(0) if m.group(3).startswith(REDACTED)
                          else f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text


def _redact_key_value(match: re.Match[str]) -> str:
    value = match.group(4)
    if value.strip("\"'") == REDACTED:
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{match.group(3)}{REDACTED}"


def usable_secrets(values: Iterable[str | None]) -> tuple[str, ...]:
    """The known secret values worth searching for: set, long enough, longest first."""
    kept = {v.strip() for v in values if v and len(v.strip()) >= MIN_KNOWN_SECRET_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))


def prepare_payload(payload: Mapping[str, object], known_secrets: Sequence[str] = ()) -> dict[str, object]:
    """Turn a payload into plain, canonicalisable JSON data with every secret redacted.

    Mappings get string keys; tuples and sets become lists; non-finite floats
    become ``"NaN"``, ``"+Inf"`` or ``"-Inf"`` (JSON has none); datetimes become
    journal timestamps; enums their values; paths strings. The value of a key
    that names a secret is replaced by ``[REDACTED]``, whatever it was.

    Raises:
        TypeError: for a value that has no JSON form.
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"an event payload must be a mapping, not {type(payload).__name__}")
    return _prepare_mapping(payload, known_secrets)


def _prepare(value: object, secrets: Sequence[str]) -> object:
    kind = type(value)
    # Exact types first: this walk runs for every event, and ABC checks are slow.
    if kind is str:
        return redact_text(value, secrets)  # type: ignore[arg-type]
    if kind is dict:
        return _prepare_mapping(value, secrets)  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        return [_prepare(item, secrets) for item in value]  # type: ignore[attr-defined]
    if value is None or kind is bool or kind is int:
        return value
    if isinstance(value, float) and kind is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, str):  # a StrEnum
        return redact_text(str(value), secrets)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _prepare(float(value), secrets)
    if isinstance(value, Mapping):
        return _prepare_mapping(value, secrets)
    if isinstance(value, (list, tuple)):
        return [_prepare(item, secrets) for item in value]
    if isinstance(value, (set, frozenset)):
        return [_prepare(item, secrets) for item in sorted(value, key=str)]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("a naive datetime has no time zone; pass an aware one")
        return format_ts(value.timestamp())
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return redact_text(str(value), secrets)
    raise TypeError(f"an event payload cannot hold a {type(value).__name__}")


@lru_cache(maxsize=4096)
def _prepare_key(key: str, secrets: tuple[str, ...]) -> tuple[str, bool]:
    """A key redacted as text, and whether it names a secret (keys repeat: cached)."""
    name = redact_text(key, secrets)
    return name, is_secret_key(name)


def _prepare_mapping(value: Mapping[Any, object], secrets: Sequence[str]) -> dict[str, object]:
    prepared: dict[str, object] = {}
    secrets = secrets if type(secrets) is tuple else tuple(secrets)
    for key, item in value.items():
        name, secret = _prepare_key(key if type(key) is str else str(key), secrets)
        prepared[name] = REDACTED if (secret and item is not None) else _prepare(item, secrets)
    return prepared


def missing_keys(kind: EventKind, payload: Mapping[str, object]) -> tuple[str, ...]:
    """The required payload keys of ``kind`` that ``payload`` lacks."""
    return tuple(key for key in REQUIRED_KEYS.get(kind, ()) if key not in payload)


# --- check evidence ----------------------------------------------------------------------

@dataclass(frozen=True)
class CheckValue:
    """One (version, segment) value of a check, as the chart and the evidence read it."""

    version: str
    segment: str
    raw: str | None
    value: float | None
    verdict: str | None = None


@dataclass(frozen=True)
class CheckEvidence:
    """The decoded payload of a ``check.evaluated`` event."""

    metric: str
    title: str
    unit: str | None
    promql: str
    verdict: str
    criterion: object
    data_age_s: float | None
    evaluated_at: float | None
    stable_version: str | None
    values: tuple[CheckValue, ...] = field(default_factory=tuple)
    direction: str | None = None

    @property
    def threshold(self) -> float | None:
        """The criterion's absolute threshold, when it has one."""
        if isinstance(self.criterion, Mapping):
            value = self.criterion.get("threshold")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        return None


def _float(raw: object) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def check_evidence(payload: Mapping[str, Any]) -> CheckEvidence:
    """Read a ``check.evaluated`` payload leniently (missing parts become ``None``)."""
    values = []
    raw_values = payload.get("values") or []
    if isinstance(raw_values, Mapping):  # {version: {segment: raw}} is accepted too
        raw_values = [{"version": v, "segment": s, "raw": r}
                      for v, by_segment in raw_values.items() if isinstance(by_segment, Mapping)
                      for s, r in by_segment.items()]
    for item in raw_values:
        if not isinstance(item, Mapping):
            continue
        raw = item.get("raw", item.get("value"))
        values.append(CheckValue(
            version=str(item.get("version", "?")),
            segment=str(item.get("segment", "all")),
            raw=None if raw is None else str(raw),
            value=_float(raw),
            verdict=None if item.get("verdict") is None else str(item.get("verdict")),
        ))
    metric = str(payload.get("metric", "?"))
    return CheckEvidence(
        metric=metric,
        title=str(payload.get("title") or metric),
        unit=None if payload.get("unit") is None else str(payload.get("unit")),
        promql=str(payload.get("promql", "")),
        verdict=str(payload.get("verdict", "?")),
        criterion=payload.get("criterion"),
        data_age_s=_float(payload.get("data_age_s")),
        evaluated_at=_float(payload.get("evaluated_at")),
        stable_version=None if payload.get("stable_version") is None else str(payload.get("stable_version")),
        values=tuple(values),
        direction=None if payload.get("direction") is None else str(payload.get("direction")),
    )


def check_payload(spec: MetricSpec, result: QueryResult, verdicts: Sequence[Verdict], verdict: str,
                  stable_version: str | None, observed_at: float) -> dict[str, object]:
    """The payload of a ``check.evaluated`` event for one catalogue metric, as the charts read it.

    Args:
        spec: the catalogue metric.
        result: the query's answer (PromQL and raw samples exactly as sent and received).
        verdicts: the judged cells of this metric.
        verdict: the check's overall verdict (``pass``, ``breach``, ``no_data``...).
        stable_version: the version deltas were measured against.
        observed_at: when the check was made (Unix seconds), for the data age.
    """
    by_cell = {(v.version, v.segment): v for v in verdicts}
    cells = sorted(set(result.raw) | set(by_cell))
    return {
        "metric": spec.name,
        "title": spec.title,
        "unit": str(spec.unit),
        "direction": str(spec.direction),
        "promql": result.promql,
        "evaluated_at": result.evaluated_at,
        "data_age_s": round(max(0.0, observed_at - result.evaluated_at), 3),
        "stable_version": stable_version,
        "kind": str(spec.kind),
        "criterion": criterion_document(spec),
        "verdict": verdict,
        "error": result.error,
        "values": [_check_value(version, segment, result, by_cell.get((version, segment)))
                   for version, segment in cells],
    }


def _check_value(version: str, segment: str, result: QueryResult, verdict: Verdict | None) -> dict[str, object]:
    """One cell of a check: its raw value and verdict; its counts for a ratio; why, when it is not a pass."""
    item: dict[str, object] = {"version": version, "segment": segment, "raw": result.raw.get((version, segment)),
                  "verdict": None if verdict is None else str(verdict.state)}
    if verdict is not None:
        if verdict.counts is not None:
            item["numerator"] = round(verdict.counts.numerator, 3)
            item["denominator"] = round(verdict.counts.denominator, 3)
        if verdict.state.value in ("breach", "suspect"):
            item["reason"] = verdict.reason
    return item
