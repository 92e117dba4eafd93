"""Carrying out a rollback or an undo: the one procedure every face drives.

The CLI, the console and the playbook runner each supply an :class:`ActionFace`
(how a confirmation is asked, how progress is shown); the steps, their order
and what is journaled live here once, so a decision is recorded the same way
whoever makes it:

1. a plan that changes nothing is noted (in an incident already open) and said;
2. otherwise the incident is settled, then the read-only refusal and the
   authorisation, both journaled when they refuse;
3. the evidence (``check.evaluated``), recorded even when a decision follows;
4. the confirmation, journaled as the decision (or as a cancel);
5. under the two-person rule, the approval request and the wait for it;
6. apply, then the version tags, then verification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from console.domain.errors import RewindError
from console.domain.journal import EventKind
from console.domain.rollback import Plan
from console.services.journal import Placement
from console.services.rollback import Outcome, Preview, RollbackService


class ActionFace(Protocol):
    """What a face does while an action is carried out; every method but ``confirm`` only informs."""

    def placed(self, placement: Placement) -> None:
        """Where the action's events go (``placement.incident_id`` is ``None``: nowhere, nothing changes)."""

    def evidence(self, breaching: int | None, problem: str | None) -> None:
        """The evidence was journaled with ``breaching`` breaching cells, or not, because of ``problem``."""

    def confirm(self, plan: Plan) -> str | None:
        """Ask the responder; how they confirmed (journaled with the decision), or ``None`` to cancel."""

    def waiting_for_approval(self, plan: Plan, timeout_s: float) -> None:
        """The action waits for a second person."""

    def approved(self, approver: str) -> None:
        """A second person approved it."""

    def tags_not_written(self, problem: str) -> None:
        """The version tags could not be written (the journal has the record)."""

    def verifying(self, window_s: float) -> None:
        """Verification starts and lasts ``window_s`` seconds."""


@dataclass(frozen=True)
class ActionOptions:
    """How the action is to be carried out.

    Attributes:
        confirmed_by: the confirmation given up front (``--yes``), journaled with the
            decision; ``None`` asks the face.
        read_only: the face is read-only: a change is refused (and journaled).
        verify: watch the verification window after applying.
        force: apply despite incompatible signatures.
        second_person: a second person must approve, whatever the roles say (a gate overridden).
    """

    confirmed_by: str | None = None
    read_only: bool = False
    verify: bool = True
    force: bool = False
    second_person: bool = False


@dataclass(frozen=True)
class ActionResult:
    """What carrying out an action came to."""

    placement: Placement
    outcomes: list[Outcome] = field(default_factory=list)
    cancelled: bool = False

    @property
    def succeeded(self) -> bool:
        """Whether the last outcome is a success (applied, verified, or already applied)."""
        return bool(self.outcomes) and self.outcomes[-1].status in ("applied", "verified", "already_applied")


def carry_out(service: RollbackService, preview: Preview, placement: Placement, face: ActionFace,
              options: ActionOptions = ActionOptions()) -> ActionResult:
    """Carry out a previewed rollback or undo, journaling every step (see the module docstring).

    Raises:
        RefusedError: read-only, not authorised, incompatible signatures, or no approval in time.
        RewindError: a system failed; the message says what state each one is in.
    """
    plan = preview.plan
    if plan.is_noop:
        # Nothing to confirm: the plan changes nothing. It is noted in the incident already open for the
        # model (or named); with no such incident, nothing is journaled and none is opened.
        face.placed(placement)
        return ActionResult(placement, [service.apply(preview, placement.incident_id)])
    placement = service.journal.settle(placement)
    face.placed(placement)
    incident_id = placement.settled_id
    if options.read_only:
        service.refuse(incident_id, plan, "the console is in --read-only mode")
    service.authorize(incident_id, plan)
    try:
        face.evidence(service.record_evidence(incident_id, plan), None)
    except RewindError as exc:  # the metrics being down must not stop a rollback
        face.evidence(None, str(exc))
    confirmed_by = options.confirmed_by or face.confirm(plan)
    if not confirmed_by:
        service.journal.record(incident_id, EventKind.DECISION, {
            "option": "cancel", "reason": "the responder did not confirm", "action_id": plan.action_id})
        return ActionResult(placement, cancelled=True)
    service.journal.record(incident_id, EventKind.DECISION, {
        "option": plan.kind.value, "reason": plan.reason or "(none given)",
        "action_id": plan.action_id, "leave": plan.leave, "target": plan.target, "mode": plan.mode.value,
        "confirmed_by": confirmed_by,
    })
    if options.second_person or service.needs_approval(plan):
        service.request_approval(incident_id, plan)
        face.waiting_for_approval(plan, service.approval_timeout_s)
        face.approved(service.wait_for_approval(incident_id, plan))
    outcome = service.apply(preview, incident_id, force=options.force)
    outcomes = [outcome]
    if outcome.status == "applied":
        problem = service.record_history(plan)
        if problem:
            face.tags_not_written(problem)
        if options.verify:
            face.verifying(service.verify_window_s(plan))
            outcomes.append(service.verify(incident_id, plan))
    return ActionResult(placement, outcomes)
