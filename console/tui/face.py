"""The console's part in carrying out an action (``console.services.actions.ActionFace``).

The procedure runs in a thread worker; this face posts messages to whoever
carries the action out (the app): each step as an
:class:`~console.tui.messages.ActionStep`, and the typed confirmation as a
:class:`~console.tui.messages.ConfirmationWanted`, on whose question it blocks
the worker until the dialog is answered. It knows nothing of the app but that
it takes messages.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Protocol

from textual.message import Message

from console.domain.rollback import ActionKind, Plan
from console.services.journal import Placement
from console.services.rollback import Preview
from console.tui.messages import ActionStep, ConfirmationWanted
from console.tui.question import PendingQuestion


class MessageTarget(Protocol):
    """What a face posts to: the app (or, in tests, anything that keeps messages). Thread-safe."""

    def post_message(self, message: Message) -> bool:
        """Queue ``message``; ``False`` when the target is closing and will never handle it."""
        ...


CONFIRMED_BY = "typed the model name in the console"


class ActionLines:
    """The informing half of an :class:`~console.services.actions.ActionFace`, as lines of progress.

    The rollback's dialog and the walkthrough's action step say the same things; each says them
    where it shows progress (:meth:`_say`).
    """

    def _say(self, text: str, tone: str = "info") -> None:
        raise NotImplementedError

    def evidence(self, breaching: int | None, problem: str | None) -> None:
        if problem is not None:
            self._say(f"evidence not recorded (metrics unavailable): {problem}", "warn")
        else:
            self._say(f"evidence journaled: {breaching} breaching cell(s) now")

    def waiting_for_approval(self, plan: Plan, timeout_s: float) -> None:
        self._say(f"waiting for approval by another user (up to {timeout_s:g}s): they press a in their console, "
                  f"or run `rewind approve {plan.action_id}`", "warn")

    def approved(self, approver: str) -> None:
        self._say(f"approved by {approver}", "good")

    def tags_not_written(self, problem: str) -> None:
        self._say(f"version tags not written (the journal has the record): {problem}", "warn")

    def verifying(self, window_s: float) -> None:
        self._say(f"applied; verifying for {window_s:g}s…")


class ConsoleFace(ActionLines):
    """Confirmation on a modal dialog, progress as messages.

    Args:
        target: where the progress and the confirmation's request go (the running console).
        preview: what the dialog shows.
        title: ``Rollback``, ``Undo``...
        verb: the confirming button's word (``Roll back``, ``Promote``); the title when not given.
        poll_s: how often the blocked worker looks whether the console is closing.
    """

    def __init__(self, target: MessageTarget, preview: Preview, title: str, poll_s: float = 0.25,
                 verb: str = "") -> None:
        self.target = target
        self.preview = preview
        self.poll_s = poll_s
        self.title = title
        self.verb = verb or title
        self.abandoned = threading.Event()  # set when the app closes with the question still open

    def _say(self, text: str, tone: str = "info") -> None:
        self.target.post_message(ActionStep(text, tone))

    def placed(self, placement: Placement) -> None:
        if placement.incident_id:
            self._say(placement.message())
        else:
            self._say(f"nothing changed, so no incident opened and nothing journaled "
                      f"({placement.model} has no open incident)")

    def confirm(self, plan: Plan) -> str | None:
        question = PendingQuestion("", "confirm")
        # The dialog shows the plan being confirmed: a procedure that plans again (a drill's engagement) gets
        # the face's preview with its own plan, never another action's id.
        preview = self.preview if self.preview.plan.action_id == plan.action_id else replace(self.preview, plan=plan)
        if not self.target.post_message(ConfirmationWanted(question, preview, self.title, self.verb)):
            return None  # the console is closing: nobody can confirm
        while not question.answered.wait(self.poll_s):
            if self.abandoned.is_set() and question.close():
                return None
        if not question.answer:
            return None
        if plan.kind in (ActionKind.ROLLBACK, ActionKind.UNDO):
            self._say(f"confirmed: {plan.model} typed; applying {plan.mode.value} v{plan.leave} → v{plan.target}")
        else:
            self._say(f"confirmed: {plan.model} typed; applying {plan.summary}")
        return CONFIRMED_BY
