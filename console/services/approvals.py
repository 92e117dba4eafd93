"""Requests waiting for a second person, read from an incident's events.

Under the two-person rule a console journals ``decision/request_approval`` and
waits; another user's console shows the request until it is approved, refused,
or given up (the requester's wait ends with a refusal in ``action.failed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from console.domain.journal import Event, EventKind
from console.domain.rollback import Plan, SignatureCheck
from console.services.rollback import Preview, RollbackService

_SETTLING_DECISIONS = ("approve", "approval_refused")


@dataclass(frozen=True)
class PendingRequest:
    """An action that waits for approval.

    Attributes:
        incident_id: where the request is journaled.
        action_id: the action.
        requester: the OS user who asked.
        requested_at: when (the event's timestamp).
        plan: what the action would do.
    """

    incident_id: str
    action_id: str
    requester: str
    requested_at: str
    plan: Plan


def pending_requests(events: Sequence[Event]) -> list[PendingRequest]:
    """The requests in ``events`` nobody has approved or refused yet, and whose action has no outcome."""
    pending: dict[str, PendingRequest] = {}
    for event in events:
        payload = event.payload
        action_id = payload.get("action_id") if isinstance(payload, dict) else None
        if not action_id:
            continue
        if event.kind is EventKind.DECISION and payload.get("option") == "request_approval":
            try:
                plan = Plan.from_dict(payload["plan"])
            except (KeyError, TypeError, ValueError):
                continue  # a request this Rewind cannot read is not offered for approval
            pending[action_id] = PendingRequest(event.incident_id, action_id, event.actor.user, event.ts, plan)
        elif event.kind is EventKind.DECISION and payload.get("option") in _SETTLING_DECISIONS:
            pending.pop(action_id, None)
        elif isinstance(event.kind, EventKind) and event.kind.is_action and event.kind is not EventKind.ACTION_INTENT:
            pending.pop(action_id, None)
    return list(pending.values())


def approval_preview(service: RollbackService, action_id: str) -> tuple[str, Preview, str]:
    """What an approver sees: the requested plan against the router as it is now.

    Returns:
        The request's incident, the preview, and the requesting user.

    Raises:
        UsageError: no such request in the journal.
    """
    incident_id, plan, requester = service.find_request(action_id)
    current = service.router.read_state(plan.model)
    preview = Preview(plan, f"requested by {requester}", None, None,
                      SignatureCheck(True, "checked by the requesting console"), current)
    return incident_id, preview, requester
