"""The playbook picker: the playbooks written for the model, best match of the current verdicts first.

Each entry says why it matches (``✓``) or not (``✗``); an unfinished run of the
model is offered first, to resume. Enter starts (or resumes) the highlighted
one; nothing is journaled until then. The list is ranked in a thread worker
(the registry, router and metrics are read): the dialog opens at once and
fills in when the ranking arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static

from console.tui.widgets.marked_options import MarkedOptionList

if TYPE_CHECKING:
    from console.tui.messages import PlaybooksRanked


@dataclass(frozen=True)
class Picked:
    """What the responder picked: ``start`` a playbook (by id) or ``resume`` a run (by id)."""

    kind: str
    id: str


class PlaybookPicker(ModalScreen[Picked | None]):
    """Pick a playbook to walk through, or an unfinished run to resume; dismisses with the pick or ``None``."""

    BINDINGS = [Binding("escape,q", "close", "close")]

    def __init__(self, model: str, read_only: bool = False) -> None:
        super().__init__()
        self.model = model
        self.read_only = read_only
        self.ranked: PlaybooksRanked | None = None
        self.ready = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="picker"):
            yield Static(f"Playbooks for {self.model}, best match of the current verdicts first", id="dialog-title")
            yield MarkedOptionList(id="picker-options")
            hint = "↑↓ choose · Enter: start it · Esc / q: close"
            if self.read_only:
                hint += "\nread-only console: a run's action steps are refused (and journaled)"
            yield Static(hint, id="dialog-hint")

    def on_mount(self) -> None:
        self.ready = True
        options = self.query_one(MarkedOptionList)
        options.show([(None, Text("reading the systems and ranking the playbooks…", style="italic"), True)])
        options.focus()
        if self.ranked is not None:
            self.show(self.ranked)

    def show(self, ranked: PlaybooksRanked) -> None:
        """Fill the list: why it is not ranked, unfinished runs (newest first), the playbooks, the invalid files."""
        self.ranked = ranked
        if not self.ready:
            return
        entries: list[tuple[str | None, Text, bool]] = []
        if ranked.error is not None:
            entries.append((None, Text(f"✗ cannot list the playbooks: {ranked.error}", style="bold"), True))
        if ranked.rank_error is not None:  # first: seven playbooks fill an 80x24 list, and this says why
            entries.append((None, Text(f"! not ranked: {ranked.rank_error}", style="bold"), True))
        for state in reversed(ranked.unfinished):
            prompt = Text.assemble(("↻ resume ", "bold"), (state.run_id, "bold"),
                                   f" of {state.playbook_id} at step ", (state.current or "?", "bold"))
            prompt.append(f"\n  started {state.started_at[:19]}Z by {state.started_by} · incident "
                          f"{state.incident_id}", style="dim")
            entries.append((f"resume:{state.run_id}", prompt, False))
        running = {state.playbook_id for state in ranked.unfinished}
        for playbook, match in ranked.ranked:
            score = f"matches {match.met} of {match.of}" if match is not None and match.of else "not ranked"
            prompt = Text.assemble((playbook.id, "bold"), f" v{playbook.version}  ", (score, "bold"))
            if playbook.id in running:
                prompt.append("  (a run of it is unfinished: resume it above)", style="italic")
            prompt.append(f"\n  {playbook.title}", style="italic")
            for reason in match.reasons if match is not None else ():
                prompt.append(f"\n  {reason}", style="" if reason.startswith("✓") else "dim")
            entries.append((f"start:{playbook.id}", prompt, False))
        if not ranked.ranked and ranked.error is None:
            entries.append((None, Text(f"no playbook is written for {self.model}", style="italic"), True))
        for problem in ranked.problems:
            entries.append((None, Text(f"! skipped (invalid): {problem}", style="dim"), True))
        self.query_one(MarkedOptionList).show(entries)

    @on(OptionList.OptionSelected, "#picker-options")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        kind, _, value = option_id.partition(":")
        if kind in ("start", "resume") and value:
            self.dismiss(Picked(kind, value))

    def action_close(self) -> None:
        self.dismiss(None)
