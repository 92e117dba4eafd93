"""What a screen needs from the console to read its model and to have an action carried out.

A view (the shadow view, the fallback panel) reads through the console's
backend in its own workers, and asks the console to carry out an action with
an :class:`ActionRequest`. The console runs the request's ``carry`` in a thread
worker of its own (never an exclusive one, never one of a screen that may
close), puts the progress dialog up, and the typed confirmation when the
procedure asks for it. A screen sees the console only as a :class:`ConsoleHost`:
it never imports the app.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the actions' modules load when an action is first asked for
    from textual.message import Message

    from console.services.actions import ActionOptions, ActionResult
    from console.services.features import FeatureReading
    from console.services.journal import Placement
    from console.services.rollback import Preview, RollbackService
    from console.tui.backend import Backend
    from console.tui.face import ConsoleFace


class Carrier(Protocol):
    """What an action's ``carry`` gets, in the console's worker thread."""

    backend: Backend
    model: str

    def say(self, text: str, tone: str = "info") -> None:
        """A line of progress on the action's dialog."""

    def face(self, preview: Preview, title: str, verb: str) -> ConsoleFace:
        """The face that asks the typed confirmation of ``preview`` on a dialog titled ``title``."""

    def options(self) -> ActionOptions:
        """The action options of this console (read-only or not)."""


@dataclass(frozen=True)
class ActionRequest:
    """An action to carry out through the one action procedure.

    Attributes:
        title: the progress dialog's title (``Shadow start``).
        carry: runs in the console's thread worker; returns the procedure's result. A
            :class:`~console.domain.errors.RewindError` it raises is shown as the outcome.
        undoable: whether the outcome offers ``u`` (the undo of the action carried out).
    """

    title: str
    carry: Callable[[Carrier], ActionResult]
    undoable: bool = True


def procedure_request(title: str, verb: str,
                      plan: Callable[[Carrier], tuple[RollbackService, Preview, Placement]]) -> ActionRequest:
    """An action that is one plan carried out by the one procedure, with the typed confirmation.

    Args:
        title: the dialogs' title (``Shadow start``).
        verb: the confirming button's word (``Start shadow``).
        plan: reads the systems and returns the service that carries it out, the preview and where it is
            journaled (in the console's worker thread).
    """
    def carry(carrier: Carrier) -> ActionResult:
        from console.services.actions import carry_out

        service, preview, placement = plan(carrier)
        return carry_out(service, preview, placement, carrier.face(preview, title, verb), carrier.options())

    return ActionRequest(title, carry)


class ActingApp(Protocol):
    """What :class:`AppCarrier` needs of the console: its backend, its mode, and where faces post."""

    backend: Backend
    read_only: bool
    faces: list[ConsoleFace]

    def post_message(self, message: Message) -> bool:
        """Queue a message (thread-safe)."""


class AppCarrier:
    """What an action's ``carry`` gets from the console, in the console's worker thread.

    Args:
        app: the console.
        model: the model acted on (read when the action was asked for).
    """

    def __init__(self, app: ActingApp, model: str) -> None:
        self.app = app
        self.backend = app.backend
        self.model = model

    def say(self, text: str, tone: str = "info") -> None:
        from console.tui.messages import ActionStep

        self.app.post_message(ActionStep(text, tone))

    def face(self, preview: Preview, title: str, verb: str) -> ConsoleFace:
        from console.tui.face import ConsoleFace

        face = ConsoleFace(self.app, preview, title, verb=verb)
        self.app.faces.append(face)
        return face

    def options(self) -> ActionOptions:
        from console.services.actions import ActionOptions

        return ActionOptions(read_only=self.app.read_only)


class ConsoleClock(Protocol):
    """The console's clock and refresh interval."""

    @property
    def clock(self) -> Callable[[], float]:
        """The wall clock (tests freeze it)."""

    @property
    def refresh_s(self) -> float:
        """Seconds between the end of one read and the start of the next."""


class ConsoleHost(Protocol):
    """The console as a screen sees it."""

    backend: Backend
    backend_ready: bool
    model: str
    read_only: bool
    feature_reading: FeatureReading | None
    """The diagnosis of the latest snapshot with the feature evidence behind it (``None``: not read yet)."""

    @property
    def options(self) -> ConsoleClock:
        """How the console was started: its clock and refresh interval."""

    def act(self, request: ActionRequest) -> bool:
        """Carry out ``request``; ``False`` when the console cannot act now (read-only, busy: it says why)."""
