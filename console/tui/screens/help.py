"""Every binding, and what the console detected about the terminal."""

from __future__ import annotations

import os

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

KEYS: tuple[tuple[str, str, bool], ...] = (
    # (keys, what it does, acts on the systems)
    ("↑ ↓ / j k", "move between rows (segment, version)", False),
    ("← → / h l", "choose the focused metric (its trend and explanation)", False),
    ("PgUp PgDn Home End", "page through the rows", False),
    ("e / Enter", "explain the selected cell: PromQL, values, criterion, reason", False),
    ("s", "sort worst-first / by segment", False),
    ("/", "filter segments (empty: all)", False),
    ("m", "next model (when several are configured)", False),
    ("r", "roll back: preview, then type the model's name to confirm", True),
    ("g", "gradual rollback: weights stepped down, each step gated on metrics", True),
    ("a", "approve a request waiting for a second person", True),
    ("u", "undo the last action (typed confirmation again)", True),
    ("t", "timeline of the model's incident (n note, o open, c close, x export)", False),
    ("v", "shadow view: the gate per segment, its clock, every HOLD and FAIL's reason", False),
    ("s x p u (shadow)", "start a shadow (version, percent), stop it, promote it, revert the latest promotion", True),
    ("f", "fallback: ready or not, engaged or not, the last drill", False),
    ("e r d (fallback)", "engage the fallback, restore the primaries, drill (primaries out for N s)", True),
    ("d", "the diagnosis under the matrix, with its evidence: feature bug, model regression, world changed, "
          "or not sure (and what would settle it)", False),
    ("F (shift+f)", "features view: each version's binding declared beside observed, input health per version "
                    "and segment, the transformation diff to the rollback target", False),
    ("r u (features)", "roll the model's features back (preview, typed confirmation), undo it", True),
    ("y", "rollback readiness: conditions ✓ ✗ ?, fixes; R again; waive with rewind ready --waive", False),
    ("S (shift+s)", "speed to rollback: n, p50, p90, max per phase; open incidents; the trend; d: drills", False),
    ("p", "playbooks: pick one ranked on the current verdicts and walk through it (or resume a stopped run)",
     False),
    ("o", "open the page: walk through the playbook the newest firing alert suggests (header: ⚠ firing)",
     False),
    ("Enter (walkthrough)", "choose the highlighted option; a reason is required (Tab: the reason field)", False),
    ("Esc / q / b (walkthrough)", "back to the overview: the run goes on, p returns to it", False),
    ("c (walkthrough)", "copy the notification's text (OSC 52)", False),
    ("F1 / ?", "this help", False),
    ("ctrl+p", "command palette: every action, and the theme", False),
    ("ctrl+q", "quit", False),
)


def detected(app_size: tuple[int, int], color_system: str | None, theme: str, mouse: bool) -> Table:
    """What the console detected: colour system, TERM, COLORTERM, size, tmux."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    env = os.environ
    table.add_row("colour system", str(color_system or "none (NO_COLOR or a dumb terminal)"))
    table.add_row("TERM", env.get("TERM", "(unset)"))
    table.add_row("COLORTERM", env.get("COLORTERM", "(unset: SSH often drops it; hex colours get approximated)"))
    table.add_row("NO_COLOR", "set" if env.get("NO_COLOR") else "(unset)")
    table.add_row("size", f"{app_size[0]}×{app_size[1]}")
    table.add_row("tmux", f"yes ({env.get('TMUX', '').split(',')[0]})" if env.get("TMUX") else "no")
    table.add_row("theme", theme + ("  (ansi-dark / ansi-light use the terminal's own palette)"))
    table.add_row("mouse", "on (--mouse)" if mouse else "off (start with --mouse to enable)")
    return table


class HelpScreen(Screen[None]):
    """The bindings (acting keys left out in a read-only console) and the terminal's facts."""

    BINDINGS = [Binding("escape,q,f1,question_mark", "app.pop_screen", "back")]

    def __init__(self, read_only: bool, config_source: str) -> None:
        super().__init__()
        self.read_only = read_only
        self.config_source = config_source

    def compose(self) -> ComposeResult:
        keys = Table.grid(padding=(0, 2))
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for key, what, acts in KEYS:
            if acts and self.read_only:
                continue
            keys.add_row(key, what)
        app = self.app
        with VerticalScroll():
            yield Static(Text("Keys", style="bold underline"))
            yield Static(keys)
            if self.read_only:
                yield Static(Text("\nRead-only console: the acting keys are off.", style="bold yellow"))
            yield Static(Text("\nTerminal", style="bold underline"))
            yield Static(detected((app.size.width, app.size.height), app.console.color_system, app.theme,
                                  bool(getattr(app, "mouse_enabled", False))))
            yield Static(Text(f"\nconfig: {self.config_source}", style="dim"))
        yield Footer()
