"""One visit of a playbook step in the walkthrough's story: title, guidance, evidence, progress, notification.

A section is drawn again only when its state changed (its revision), so the
story's older sections are never sent to the terminal twice.
"""

from __future__ import annotations

from rich.markdown import Markdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from console.tui.run_view import TONE_SYMBOL, Section

TONE_STYLE = {"info": "", "good": "bold green", "warn": "bold yellow", "bad": "bold red"}
BRANCH_STYLE = {"pass": "bold green", "fail": "bold red"}


def section_title(section: Section) -> Text:
    """``decide · choice · Drain the challenger?`` (with the visit when a step is visited again)."""
    if not section.step_id:
        return Text(section.title, style="bold")
    again = f" (visit {section.visit})" if section.visit > 1 else ""
    title = Text.assemble((section.step_id, "bold"), f" · {section.kind}{again}")
    if section.title:
        title.append(f" · {section.title}", style="bold")
    return title


def section_body(section: Section) -> Text:
    """The check's evidence, the action's preview and the progress lines, each with a symbol."""
    body = Text()
    if section.prompt:
        body.append("? ", style="bold yellow")
        body.append(f"{section.prompt}\n", style="bold")
    check = section.check
    if check is not None:
        body.append(f"{check.verdict}", style=BRANCH_STYLE.get(check.branch, "bold yellow"))
        body.append(f"  {check.reason}\n")
        for line in check.cells:
            body.append(f"  {line}\n", style="bold" if "✗" in line else "dim" if "✓" in line else "")
    for line in section.plan:
        body.append(f"{line}\n", style="bold")
    for text, tone in section.lines:
        body.append(f"{TONE_SYMBOL.get(tone, '·')} ", style=TONE_STYLE.get(tone, ""))
        body.append(f"{text}\n", style=TONE_STYLE.get(tone, "") if tone != "info" else "")
    body.rstrip()
    return body


class RunSection(Vertical):
    """The widgets of one section; :meth:`draw` updates them from the section when it changed."""

    DEFAULT_CSS = """
    RunSection { height: auto; margin-bottom: 1; }
    RunSection > .section-title { background: $panel; padding: 0 1; }
    RunSection > .section-text { padding: 0 1; }
    RunSection > .section-body { padding: 0 1; }
    RunSection > .section-notification { border: round $primary; padding: 0 1; height: auto; display: none; }
    RunSection > .section-delivery { padding: 0 1; display: none; }
    """

    def __init__(self, section: Section) -> None:
        super().__init__()
        self.section = section
        self.drawn = -1
        self.ready = False
        """Set once the children exist (``is_mounted`` turns true only after ``on_mount``)."""

    def compose(self) -> ComposeResult:
        yield Static(classes="section-title")
        yield Static(classes="section-text")
        yield Static(classes="section-body")
        yield Static(classes="section-notification")
        yield Static(classes="section-delivery")

    def on_mount(self) -> None:
        self.ready = True
        self.draw()

    def draw(self) -> bool:
        """Update the widgets when the section changed since the last draw; whether it did."""
        section = self.section
        if section.revision == self.drawn or not self.ready:
            return False
        title, text, body, notification, delivery = self.query(Static).results(Static)
        if self.drawn < 0:
            title.update(section_title(section))
            text.display = bool(section.text.strip())
            if text.display:
                text.update(Markdown(section.text))
        self.drawn = section.revision
        content = section_body(section)
        body.display = bool(content.plain)
        body.update(content)
        shown = section.notification
        notification.display = delivery.display = shown is not None
        if shown is not None:
            notification.border_title = f"notification · {shown.channel}"
            notification.update(Text(shown.text or "(empty)"))
            mark = "✓" if shown.posted else "!"
            delivery.update(Text(f"{mark} {shown.delivery}", style="bold green" if shown.posted else "bold yellow"))
        return True
