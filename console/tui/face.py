"""The console's part in carrying out an action (``console.services.actions.ActionFace``).

The procedure runs in a thread worker; this face asks for the typed
confirmation on the app's event loop and blocks the worker until it is
answered, and turns every step into an :class:`~console.tui.messages.ActionStep`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from console.domain.rollback import Plan
from console.services.journal import Placement
from console.services.rollback import Preview
from console.tui.messages import ActionStep

if TYPE_CHECKING:
    from console.tui.app import RewindApp

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
        app: the running console.
        preview: what the dialog shows.
        title: ``Rollback``, ``Undo``...
    """

    def __init__(self, app: RewindApp, preview: Preview, title: str) -> None:
        self.app = app
        self.preview = preview
        self.title = title
        self.abandoned = threading.Event()  # set when the app closes with the question still open

    def _say(self, text: str, tone: str = "info") -> None:
        self.app.post_message(ActionStep(text, tone))

    def placed(self, placement: Placement) -> None:
        if placement.incident_id:
            self._say(placement.message())
        else:
            self._say(f"nothing changed, so no incident opened and nothing journaled "
                      f"({placement.model} has no open incident)")

    def confirm(self, plan: Plan) -> str | None:
        answered = threading.Event()
        answer: list[bool] = []

        def reply(confirmed: bool | None) -> None:
            answer.append(bool(confirmed))
            answered.set()

        def ask() -> None:
            self.app.ask_confirmation(self.preview, self.title, reply)

        try:
            self.app.call_from_thread(ask)
        except RuntimeError:  # the app is gone: nobody confirmed
            return None
        while not answered.wait(0.25):
            if self.abandoned.is_set():
                return None
        if not answer[0]:
            return None
        self._say(f"confirmed: {plan.model} typed; applying {plan.mode.value} v{plan.leave} → v{plan.target}")
        return CONFIRMED_BY
