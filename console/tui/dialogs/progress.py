"""An action as it happens: each step, each gate, the outcome with what both systems now report."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.domain.journal import Event
from console.services.actions import ActionResult

TONE = {"info": "", "good": "bold green", "warn": "bold yellow", "bad": "bold red"}


class ActionScreen(ModalScreen[str | None]):
    """Progress lines, then the outcome; dismisses with ``"undo"`` when the responder asks for the undo."""

    BINDINGS = [
        Binding("escape,q,enter", "close", "close"),
        Binding("u", "undo", "undo"),
    ]

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title_text = title
        self.lines: list[Text] = []
        self.journal_lines: dict[int, Text] = {}
        self.result: ActionResult | None = None
        self.finished = False
        self.undoable = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="progress"):
            yield Static(self.title_text, id="dialog-title")
            with VerticalScroll(id="dialog-body"):
                yield Static("", id="progress-lines")
            yield Static("working… (the action continues if you close this; its outcome is journaled)",
                         id="dialog-hint")

    def _paint_lines(self) -> None:
        text = Text()
        for line in self.lines:
            text.append_text(line)
            text.append("\n")
        self.query_one("#progress-lines", Static).update(text)

    def say(self, line: str, tone: str = "info") -> None:
        """Add a line of progress."""
        self.lines.append(Text(line, style=TONE.get(tone, "")))
        if self.is_mounted:
            self._paint_lines()

    def journal_event(self, event: Event) -> None:
        """A step the journal recorded for this action (a gradual step, a gate)."""
        if event.seq in self.journal_lines:
            return
        payload = event.payload if isinstance(event.payload, dict) else {}
        text = payload.get("text") or payload.get("reason") or payload.get("message")
        if text and event.kind in ("note", "action.applied", "action.verified", "action.not_verified"):
            self.journal_lines[event.seq] = Text(f"journal #{event.seq}: {text}", style="dim")
            self.lines.append(self.journal_lines[event.seq])
            if self.is_mounted:
                self._paint_lines()

    def finish(self, result: ActionResult | None, error: str | None, undoable: bool = True) -> None:
        """The action ended: say how, and what both systems now report (and offer its undo when ``undoable``)."""
        self.finished = True
        self.undoable = undoable
        self.result = result
        hint = "Esc / q / Enter: close"
        if error is not None:
            self.say(error, "bad")
        elif result is not None and result.cancelled:
            self.say("cancelled: nothing changed", "warn")
        elif result is not None:
            for outcome in result.outcomes:
                good = outcome.status in ("applied", "verified", "already_applied")
                self.say(outcome.message, "good" if good else "bad")
            last = result.outcomes[-1] if result.outcomes else None
            features = next((o for o in reversed(result.outcomes) if isinstance(o.evidence.get("tags"), dict)),
                            None)
            if features is not None and last is not None and not last.weights and not last.aliases:
                # A feature rollback moves registry tags (and a view), never weights or aliases: say those.
                tags = features.evidence["tags"]
                assert isinstance(tags, dict)
                self.say("registry tags now     " + (", ".join(f"v{v}: {t or '(none)'}" for v, t in sorted(
                    tags.items())) or "none moved"))
                if features.evidence.get("view"):
                    self.say(f"feature view now      {features.evidence['view']}")
            elif last is not None:
                weights = ", ".join(f"v{v}: {w}" for v, w in sorted(last.weights.items()))
                aliases = ", ".join(f"{a} → v{v}" for a, v in sorted(last.aliases.items())) or "none"
                self.say(f"router weights now   {weights}")
                self.say(f"registry aliases now {aliases}")
            if undoable and result.succeeded and any(o.status in ("applied", "verified") for o in result.outcomes):
                hint = f"u: undo ({result.outcomes[0].action_id})  ·  " + hint
        if self.is_mounted:
            self.query_one("#dialog-hint", Static).update(hint)

    def on_mount(self) -> None:
        self._paint_lines()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_undo(self) -> None:
        result = self.result
        if self.finished and self.undoable and result is not None and result.succeeded and result.outcomes:
            self.dismiss("undo")
        else:
            self.notify("nothing to undo yet", severity="warning")
