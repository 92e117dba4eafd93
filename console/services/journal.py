"""The journal use cases: open and close incidents, record events, list, read, verify, import.

Every event is recorded through :meth:`JournalService.record`: its payload is
made plain JSON and stripped of secrets (key names, URL passwords, bearer
tokens and every known secret value) before the journal hashes and stores it.
"""

from __future__ import annotations

import secrets as random_tokens
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypedDict, Unpack

from console.adapters.protocols import Journal
from console.domain.errors import ChainBrokenError, ConflictError, UsageError
from console.domain.incident import IncidentSummary, parse_severity, summarise
from console.domain.journal import (
    Actor,
    Event,
    EventDraft,
    EventKind,
    IncidentHead,
    LockChange,
    VerifyResult,
    format_ts,
    missing_keys,
    parse_ts,
    prepare_payload,
    verify_chain,
)
from console.services.follow import IncidentFollower


def new_incident_id(now: float) -> str:
    """A fresh incident id such as ``INC-20250131-7F3A2C``: the UTC date and 24 random bits."""
    return f"INC-{datetime.fromtimestamp(now, UTC):%Y%m%d}-{random_tokens.token_hex(3).upper()}"


@dataclass(frozen=True)
class Placement:
    """Which incident an action's events go to, and why: decided before anything is journaled.

    ``incident_id`` is ``None`` until an incident is needed: :meth:`JournalService.settle`
    then opens one (with ``severity`` and ``summary``). A plan that changes nothing
    never needs one.

    ``how`` is one of ``named`` (``--incident``), ``joined`` (the model's open incident),
    ``action`` (the incident of the action undone), ``new`` (to be opened: ``--new-incident``,
    or no open incident of the model) or ``opened`` (opened by :meth:`JournalService.settle`).
    """

    model: str
    how: str
    incident_id: str | None = None
    incident: IncidentSummary | None = None
    severity: str = "2"
    summary: str = ""
    why: str = ""
    """Why the default place was not taken (an undone action's incident that is closed), if so."""
    requested_new: bool = False
    """Whether ``--new-incident`` asked for a new incident."""

    @property
    def settled_id(self) -> str:
        """The incident of a settled placement (one :meth:`JournalService.settle` returned).

        Raises:
            UsageError: the placement has no incident yet.
        """
        if self.incident_id is None:
            raise UsageError(f"no incident chosen yet for the action on {self.model}")
        return self.incident_id

    @property
    def joined(self) -> bool:
        """Whether the events go to an incident that existed before this command."""
        return self.how in ("named", "joined", "action")

    def message(self) -> str:
        """One line telling the responder where the events go."""
        about = self.incident
        since = f" (opened {about.opened_at[:19].replace('T', ' ')}Z by {about.opened_by.label()})" if about else ""
        prefix = f"{self.why}; " if self.why else ""
        if self.how == "joined":
            return f"{prefix}joining open incident {self.incident_id}{since}"
        if self.how == "named":
            return f"{prefix}recording in incident {self.incident_id}{since}"
        if self.how == "action":
            return f"{prefix}recording in incident {self.incident_id}, where the action undone is{since}"
        cause = "--new-incident" if self.requested_new else f"no open incident of {self.model}"
        if self.how == "opened":
            return f"{prefix}opened a new incident {self.incident_id} ({cause})"
        return f"{prefix}{cause}: a new incident is opened for anything journaled"


class _PlacementFacts(TypedDict, total=False):
    """The :class:`Placement` fields :meth:`JournalService.place` fills besides model, how, severity and summary."""

    incident_id: str
    incident: IncidentSummary
    why: str
    requested_new: bool


class JournalService:
    """Records events as one actor and reads the journal back.

    Args:
        journal: where events are kept.
        actor: who is recording (gathered from the OS by the caller).
        clock: the current Unix time (injectable for tests and drills).
        known_secrets: secret values to redact wherever they appear in a payload.
        new_id: makes incident ids from the current time.
    """

    def __init__(self, journal: Journal, actor: Actor, clock: Callable[[], float] = time.time,
                 known_secrets: Sequence[str] = (), new_id: Callable[[float], str] = new_incident_id) -> None:
        self.journal = journal
        self.actor = actor
        self.clock = clock
        self.known_secrets = tuple(known_secrets)
        self.new_id = new_id

    def describe(self) -> str:
        """Which database holds the journal."""
        return self.journal.describe()

    def close(self) -> None:
        """Release the journal's connections."""
        self.journal.close()

    # --- recording --------------------------------------------------------------------------

    def draft(self, incident_id: str, kind: EventKind, payload: Mapping[str, object]) -> EventDraft:
        """Prepare one event: check its payload, redact secrets, stamp time and actor.

        Raises:
            UsageError: the payload lacks a key its kind requires, or holds a
                value with no JSON form.
        """
        missing = missing_keys(kind, payload)
        if missing:
            raise UsageError(f"a {kind} event needs {', '.join(missing)} in its payload")
        try:
            prepared = prepare_payload(payload, self.known_secrets)
        except TypeError as exc:
            raise UsageError(f"a {kind} event's payload: {exc}") from None
        return EventDraft(incident_id, format_ts(self.clock()), self.actor, kind, prepared)

    def record(self, incident_id: str, kind: EventKind, payload: Mapping[str, object],
               lock: LockChange | None = None) -> Event:
        """Append one event to an incident and return it once it is durably written.

        With ``lock``, the model's action lock is taken or released in the same
        transaction (:class:`~console.domain.errors.LockHeldError` when another
        action holds it; nothing is then written).
        """
        return self.journal.append(incident_id, [self.draft(incident_id, kind, payload)], lock=lock)[0]

    def record_many(self, incident_id: str, items: Sequence[tuple[EventKind, Mapping[str, object]]]) -> list[Event]:
        """Append several events to an incident in one transaction, in order."""
        return self.journal.append(incident_id, [self.draft(incident_id, k, p) for k, p in items])

    def open_incident(self, model: str, severity: str, summary: str, impact_started_at: str | None = None,
                      detected_at: str | None = None, extra: Mapping[str, object] | None = None) -> Event:
        """Open a new incident with its ``incident.opened`` event.

        Args:
            model: the registered model concerned.
            severity: SEV1 to SEV4 (``1``, ``sev1`` are accepted).
            summary: one line saying what is wrong.
            impact_started_at: when the impact began, if known (ISO 8601 with a zone).
            detected_at: when it was detected (an alert's firing time), if not now.
            extra: more payload (an alert's id, a ticket...).

        Raises:
            UsageError: an empty model or summary, an unknown severity, a bad time.
        """
        if not model.strip():
            raise UsageError("an incident needs a model (--model)")
        if not summary.strip():
            raise UsageError("an incident needs a summary (--summary)")
        try:
            payload: dict[str, object] = {**(extra or {}), "model": model.strip(), "severity": parse_severity(severity),
                                         "summary": summary.strip()}
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        for key, value in (("impact_started_at", impact_started_at), ("detected_at", detected_at)):
            if value is not None:
                payload[key] = _timestamp(key, value)
        for _ in range(5):
            incident_id = self.new_id(self.clock())
            try:
                return self.journal.append(incident_id, [self.draft(incident_id, EventKind.INCIDENT_OPENED,
                                                                    payload)], new_incident=True)[0]
            except ConflictError:
                continue  # the random part collided with an existing incident: draw again
        raise ConflictError("could not find a free incident id after 5 tries")

    def note(self, incident_id: str, text: str) -> Event:
        """Record a responder's note.

        Raises:
            UsageError: an empty note.
        """
        if not text.strip():
            raise UsageError("a note needs some text")
        return self.record(incident_id, EventKind.NOTE, {"text": text})

    def close_incident(self, incident_id: str, summary: str | None = None) -> Event:
        """Close an incident, with the resolution as its summary.

        Raises:
            NotFoundError: the incident does not exist.
            ConflictError: it is already closed.
        """
        closed = next(iter(self.journal.events(incident_id, [EventKind.INCIDENT_CLOSED])), None)
        if closed is not None:
            raise ConflictError(f"incident {incident_id} was already closed at {closed.ts} (event #{closed.seq})")
        payload = {} if summary is None else {"summary": summary}
        return self.record(incident_id, EventKind.INCIDENT_CLOSED, payload)

    def place(self, model: str, severity: str, summary: str, named: str | None = None, new: bool = False,
              belongs_to: str | None = None) -> Placement:
        """Decide where an action on ``model`` is journaled, without writing anything.

        In order: the incident ``named`` (``--incident``; it must exist and be open);
        a new one when ``new`` (``--new-incident``); the incident ``belongs_to`` (an
        undo's action's) when it is still open; the model's most recent open
        incident; else a new one, opened by :meth:`settle` once something is journaled.

        Raises:
            UsageError: ``named`` is unknown or closed, or both ``named`` and ``new``.
        """
        if named and new:
            raise UsageError("--incident and --new-incident cannot be used together")
        def place(how: str, **more: Unpack[_PlacementFacts]) -> Placement:
            return Placement(model=model, how=how, severity=severity, summary=summary, **more)

        if named:
            return place("named", incident_id=named, incident=self.require_open(named))
        if new:
            return place("new", requested_new=True)
        why = ""
        if belongs_to:
            own = self._summary(belongs_to)
            if own.status == "open":
                return place("action", incident_id=belongs_to, incident=own)
            why = f"incident {belongs_to}, where the action undone is, was closed at {own.closed_at}"
        joined = self.open_incident_of(model)
        if joined is not None:
            return place("joined", incident_id=joined.incident_id, incident=joined, why=why)
        return place("new", why=why)

    def settle(self, placement: Placement) -> Placement:
        """The placement with an incident: the one it names, else a new incident opened now."""
        if placement.incident_id is not None:
            return placement
        opened = self.open_incident(placement.model, placement.severity, placement.summary)
        return replace(placement, how="opened", incident_id=opened.incident_id)

    def require_open(self, incident_id: str) -> IncidentSummary:
        """An incident's summary, for recording in it.

        Raises:
            UsageError: no such incident, or it is closed (a closed incident's post-mortem
                is finished: an action belongs in an open one).
        """
        summary = self._summary(incident_id)
        if summary.status != "open":
            raise UsageError(f"incident {incident_id} was closed at {summary.closed_at}: record in an open "
                             "incident, or pass --new-incident")
        return summary

    def _summary(self, incident_id: str) -> IncidentSummary:
        for summary in self.incidents():
            if summary.incident_id == incident_id:
                return summary
        raise UsageError(f"no incident {incident_id} in the {self.describe()} (--incident)")

    def open_incident_of(self, model: str) -> IncidentSummary | None:
        """The model's most recently opened incident that is still open, if any (a drill's never: what a drill
        does goes in its own incident, named, and nothing else joins it)."""
        candidates = [(s.opened_at, index, s) for index, s in enumerate(self.incidents())
                      if s.status == "open" and s.model == model and not s.drill]
        return max(candidates)[2] if candidates else None

    # --- reading ------------------------------------------------------------------------------

    def incidents(self) -> list[IncidentSummary]:
        """Every incident, oldest first, summarised from its opened and closed events (two queries in all).

        The heads are read first: an incident opened in between has no head yet and is not listed, while
        every head listed has its opened event (both are committed together).
        """
        heads = self.journal.incidents()
        by_incident: dict[str, list[Event]] = {}
        for event in self.journal.find_events([EventKind.INCIDENT_OPENED, EventKind.INCIDENT_CLOSED]):
            by_incident.setdefault(event.incident_id, []).append(event)
        return [summarise(head.incident_id, by_incident.get(head.incident_id, []), max(head.seq, 0), head.hash)
                for head in heads]

    def follower(self, poll_s: float = 1.0) -> IncidentFollower:
        """A follower of incidents' timelines, live on PostgreSQL (:mod:`console.services.follow`)."""
        return IncidentFollower(self.journal, poll_s=poll_s)

    def chain(self, incident_id: str) -> tuple[IncidentHead, list[Event]]:
        """An incident's head and events, from one snapshot; NotFoundError if unknown."""
        return self.journal.read_chain(incident_id)

    def verify(self, incident_id: str | None = None) -> list[VerifyResult]:
        """Verify one incident's chain, or every incident's."""
        if incident_id:
            head, events = self.journal.read_chain(incident_id)
            return [verify_chain(incident_id, events, head)]
        return [result for _, result in self.verified_chains()]

    def verified_chains(self, opened_since: str | None = None) -> list[tuple[list[Event], VerifyResult]]:
        """Every incident's events with its chain's verification, from one read of the journal.

        ``opened_since``: only the incidents opened at or after that time (as :func:`format_ts`
        writes it), and any events without an incident (only tampering makes them).
        """
        return [(events, verify_chain(head.incident_id, events, head))
                for head, events in self.journal.read_chains(opened_since)]

    def import_events(self, events: Sequence[Event]) -> IncidentHead:
        """Import a whole incident exported elsewhere, after checking it, all or nothing.

        Raises:
            ChainBrokenError: its chain does not verify.
            UsageError: an event carries something that looks like a secret.
            ConflictError: the incident is already in this journal.
        """
        if not events:
            raise UsageError("the import holds no events")
        incident_id = events[0].incident_id
        result = verify_chain(incident_id, list(events))
        if result.problem:
            raise ChainBrokenError(f"nothing imported: {result.problem.message()}")
        for event in events:
            if prepare_payload(event.payload, self.known_secrets) != event.payload:
                raise UsageError(f"nothing imported: event #{event.seq} of incident {incident_id} carries what "
                                 "looks like a secret")
        return self.journal.import_incident(events)


def _timestamp(name: str, value: str) -> str:
    try:
        return format_ts(parse_ts(value).timestamp())
    except ValueError:
        raise UsageError(f"{name}: {value!r} is not an ISO 8601 time with a zone "
                         "(e.g. 2025-01-31T14:05:00Z or 2025-01-31T15:05:00+01:00)") from None
