"""The overview's header: model, aliases, weights, evaluation time and data age, each system's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.text import Text

from console.domain.verdicts import State
from console.domain.versions import AliasMap, ModelVersion, version_sort_key
from console.tui.widgets.line_stack import LineStack

if TYPE_CHECKING:  # the header paints the first frame before the services' and the journal's modules load
    from console.domain.status import StatusSnapshot
    from console.services.live import Reading
    from console.tui.matrix_model import Summary

SYSTEMS = ("registry", "router", "metrics")
"""The systems the header shows: ``console.services.live.SYSTEMS``, spelled out so the first frame needs none of
the services' modules (tests/tui keeps the two equal)."""

# Keyed by ``console.services.live.Health``'s values: a StrEnum, its members look these up (tests/tui checks
# that every state has its style and symbol).
HEALTH_STYLE = {
    "connecting": "italic",
    "ok": "green",
    "slow": "bold yellow",
    "unreachable": "bold red",
    "garbage": "bold red",
    "failing": "bold red",
}
HEALTH_SYMBOL = {"connecting": "…", "ok": "✓", "slow": "!", "unreachable": "✗", "garbage": "✗", "failing": "✗"}
CONNECTING_TEXT = {"registry": "connecting to MLflow…", "router": "connecting to HAProxy…",
                   "metrics": "connecting to Prometheus…", "journal": "opening the journal…"}


STALE_AFTER_S = 15.0
"""Metrics older than this are flagged stale in the header."""


def _clock(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC):%H:%M:%S}Z"


def model_line(model: str, registry: Reading[list[ModelVersion]] | None, snapshot: StatusSnapshot | None) -> Text:
    """Model, aliases, router weights."""
    line = Text.assemble((model, "bold"))
    versions = registry.value if registry is not None and registry.value is not None else None
    if versions is not None:
        aliases = AliasMap.of_versions(model, versions).aliases
        shown = "  ".join(f"{alias}→v{version}" for alias, version in sorted(aliases.items())) or "no aliases"
        line.append(f"  {shown}")
    if snapshot is not None and snapshot.router.servers:
        weights = snapshot.router.weights()
        line.append("  weights ")
        line.append(" ".join(f"v{v}:{w}" for v, w in sorted(weights.items(), key=lambda i: version_sort_key(i[0]))))
    return line


def loading_line(model: str) -> Text:
    """The model line while the config loads: the model when ``--model`` named it, and what is happening."""
    line = Text.assemble((model, "bold"), "  ") if model else Text()
    line.append("loading the config…", style="italic")
    return line


def systems_line(readings: dict[str, Reading[object]], journal: str | None) -> Text:
    """Each system's state, with the last error of a failing one."""
    line = Text()
    errors: list[tuple[str, str]] = []
    for system in SYSTEMS:
        reading = readings.get(system)
        health = reading.health if reading is not None else "connecting"
        if line:
            line.append(" · ")
        if health == "connecting":
            line.append(CONNECTING_TEXT[system], style=HEALTH_STYLE[health])
            continue
        # Only a slow answer shows its time: a figure that changes every refresh costs bytes and says nothing.
        took = f" {reading.took_s:.1f}s" if reading is not None and health == "slow" else ""
        line.append(f"{HEALTH_SYMBOL[health]} {system} {health}{took}", style=HEALTH_STYLE[health])
        if reading is not None and reading.error:
            errors.append((system, reading.error))
    line.append(" · ")
    if journal is None:
        line.append("✓ journal ok", style="green")
    else:
        line.append("✗ journal failing", style="bold red")
        errors.append(("journal", journal))
    for system, error in errors[:1]:
        line.append(f"  {system}: {error}", style="red")
    return line


def verdict_line(snapshot: StatusSnapshot | None, summary: Summary | None, now: float) -> Text:
    """When the metrics were evaluated and how old they are; how many cells breach or are suspect."""
    if snapshot is None or summary is None:
        return Text("no verdicts yet", style="italic")
    counts = summary.counts
    # The age is said only once it matters: a count of seconds that changes at every repaint would resend
    # the line four times per refresh (each system's read repaints the header).
    age = max(0.0, now - snapshot.evaluated_at)
    line = Text(f"{_clock(snapshot.evaluated_at)}  ")
    if age > STALE_AFTER_S:
        line = Text(f"{_clock(snapshot.evaluated_at)} (stale: {age:.0f}s old)  ", style="bold yellow")
    if counts[State.BREACH]:
        line.append(f"✗ {counts[State.BREACH]} breaching", style="bold red")
        if summary.first_breach is not None:
            version, segment, title = summary.first_breach
            line.append(f" (first: v{version} {segment} {title})", style="red")
    else:
        line.append("✓ no breaches", style="green")
    if counts[State.SUSPECT]:
        line.append(f"  ! {counts[State.SUSPECT]} suspect", style="yellow")
    if counts[State.NO_DATA]:
        line.append(f"  ? {counts[State.NO_DATA]} no data", style="dim")
    if counts[State.LOW_TRAFFIC]:
        line.append(f"  ~ {counts[State.LOW_TRAFFIC]} low traffic", style="dim")
    if summary.failed_metrics:
        line.append(f"  ? query failed: {', '.join(summary.failed_metrics)}", style="yellow")
    return line


class StatusHeader(LineStack):
    """The lines at the top of the overview; each repainted only when its own text changes."""

    DEFAULT_CSS = """
    StatusHeader { height: auto; max-height: 4; background: $panel; }
    """

    def show(self, lines: list[Text]) -> None:
        """Show ``lines`` (one leading space each, as padding)."""
        super().show([Text(" ") + line for line in lines])
