"""The overview's diagnosis line: who a breach is blamed on (a feature release, the model, the world, not sure).

One line under the matrix, shown only while a version breaches; the diagnosis
itself comes from :meth:`console.services.live.LiveStatus.diagnose`, composed
from each snapshot and the latest feature read. The line is cut with an
ellipsis at the terminal's width, never wrapped, and keeps its ``[d] evidence``
hint in view: the evidence is one key away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

if TYPE_CHECKING:  # the services and the domain's diagnosis load after the first frame
    from console.domain.features import Diagnosis

CAUSE_STYLE = {"feature": "bold magenta", "model": "bold red", "world": "bold yellow", "unsure": "yellow"}
"""Each cause's style (``console.domain.features.Cause`` values); never colour alone: each has its symbol."""
CAUSE_SYMBOL = {"feature": "◆", "model": "✗", "world": "⚠", "unsure": "?"}
"""Each cause's symbol. ◆ rather than ⬥ (one cell on every terminal): common terminal fonts (DejaVu Sans Mono)
have no ⬥, and ◆ is as wide as the ``·`` the console uses everywhere."""
HINT = "[d] evidence"


def cause_text(diagnosis: Diagnosis) -> Text:
    """``◆ feature bug: …`` in the cause's style."""
    cause = diagnosis.cause.value
    return Text(f"{CAUSE_SYMBOL.get(cause, '?')} {diagnosis.summary}", style=CAUSE_STYLE.get(cause, "yellow"))


def diagnosis_line(diagnosis: Diagnosis | None, width: int) -> Text | None:
    """The line at ``width`` cells: the summary cut with an ellipsis, then the hint; ``None`` without a diagnosis."""
    if diagnosis is None:
        return None
    summary = cause_text(diagnosis)
    room = width - 2 - len(HINT) - 3  # a space each side, three spaces before the hint
    if room < 12:  # too narrow for both: the summary alone
        summary.truncate(max(1, width - 2), overflow="ellipsis")
        return Text(" ") + summary
    summary.truncate(room, overflow="ellipsis")
    line = Text(" ") + summary
    line.append(" " * (width - 1 - len(HINT) - line.cell_len))
    line.append(HINT, style="dim")
    return line


class DiagnosisLine(Widget):
    """One line under the matrix with the diagnosis; hidden while there is none (no version breaches)."""

    DEFAULT_CSS = """
    DiagnosisLine { height: 1; background: $panel; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diagnosis: Diagnosis | None = None

    def on_mount(self) -> None:
        self.display = False

    def show(self, diagnosis: Diagnosis | None) -> None:
        """Show ``diagnosis`` (``None``: hide the line); nothing is sent when it did not change."""
        if diagnosis == self.diagnosis and self.display == (diagnosis is not None):
            return
        self.diagnosis = diagnosis
        self.display = diagnosis is not None
        self.refresh()

    def render(self) -> Text:
        return diagnosis_line(self.diagnosis, self.size.width) or Text()
