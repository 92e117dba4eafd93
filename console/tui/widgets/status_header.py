"""The overview's header: model, aliases, weights, evaluation time and data age, each system's state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text

from console.domain.verdicts import State
from console.domain.versions import AliasMap, ModelVersion, version_sort_key
from console.tui.widgets.line_stack import LineStack

if TYPE_CHECKING:  # the header paints the first frame before the services' and the journal's modules load
    from console.domain.alert_events import JournaledAlert
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


STALE_REFRESHES = 3
"""A reading older than this many refresh intervals is too old to stand for now: it reads as unknown, with its age."""
STALE_AFTER_S = STALE_REFRESHES * 2.0
"""The same at the default refresh (2 s); the console passes its own (``STALE_REFRESHES * refresh_s``)."""


def _clock(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC):%H:%M:%S}Z"


def stale_age(reading: Reading[Any] | None, now: float, stale_after_s: float) -> float | None:
    """How old a reading's value is, when it is too old to stand for now (else ``None``).

    The console keeps a failed system's last value with the time it was read, so a system that stopped
    answering ages here until its value reads as unknown.
    """
    if reading is None or reading.value is None:
        return None
    age = now - reading.at
    return age if age > stale_after_s else None


def model_line(model: str, registry: Reading[list[ModelVersion]] | None, snapshot: StatusSnapshot | None,
               router: Reading[Any] | None = None, now: float = 0.0,
               stale_after_s: float = STALE_AFTER_S) -> Text:
    """Model, aliases, router weights; each marked ``last seen … ago`` once its system stopped answering."""
    line = Text.assemble((model, "bold"))
    versions = registry.value if registry is not None and registry.value is not None else None
    if versions is not None:
        aliases = AliasMap.of_versions(model, versions).aliases
        shown = "  ".join(f"{alias}→v{version}" for alias, version in sorted(aliases.items())) or "no aliases"
        age = stale_age(registry, now, stale_after_s)
        if age is None:
            line.append(f"  {shown}")
        else:
            line.append(f"  aliases last seen {age:.0f}s ago: {shown}", style="dim")
    if snapshot is not None and snapshot.router.servers:
        weights = snapshot.router.weights()
        listed = " ".join(f"v{v}:{w}" for v, w in sorted(weights.items(), key=lambda i: version_sort_key(i[0])))
        age = stale_age(router, now, stale_after_s)
        if age is None:
            line.append(f"  weights {listed}")
        else:
            line.append(f"  weights last seen {age:.0f}s ago: {listed}", style="dim")
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


def verdicts_stale(snapshot: StatusSnapshot | None, now: float, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the verdicts shown are too old to say anything about now."""
    return snapshot is not None and now - snapshot.evaluated_at > stale_after_s


def verdict_line(snapshot: StatusSnapshot | None, summary: Summary | None, now: float,
                 stale_after_s: float = STALE_AFTER_S) -> Text:
    """When the metrics were evaluated; how many cells breach or are suspect, or unknown once they are stale.

    An absence of evidence never reads as health: once the metrics are older than ``stale_after_s`` the
    line says ``? unknown`` with their age, and nothing about breaches.
    """
    if snapshot is None or summary is None:
        return Text("no verdicts yet", style="italic")
    counts = summary.counts
    line = Text(f"{_clock(snapshot.evaluated_at)}  ")
    if verdicts_stale(snapshot, now, stale_after_s):
        # The age is said only once it matters: a count of seconds that changes at every repaint would resend
        # the line four times per refresh (each system's read repaints the header).
        line.append(f"? unknown (metrics {now - snapshot.evaluated_at:.0f}s old)", style="bold yellow")
        return line
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
    if summary.drained:
        line.append(f"  ⊘ drained: {' '.join('v' + v for v in summary.drained)}", style="dim")
    return line


def _where(alert: JournaledAlert) -> str:
    """``v3 mobile``: the version and segment its labels name."""
    return " ".join(part for part in (f"v{alert.version}" if alert.version else None, alert.segment) if part)


def alerts_line(firing: list[JournaledAlert], width: int, error: str | None = None) -> Text | None:
    """The model's paging: how many alerts fire, the newest, and the playbook ``o`` opens for it.

    The details go first when the line is too narrow (the incident, the other alerts, the start time, the
    severity), so it is cut between parts and never in the middle of the playbook's name. A failed read is
    a quiet line: what was last read, dimmed, or ``? alerts not read``; never ``no alerts``.

    Args:
        firing: the model's firing alerts, oldest first.
        width: the columns the line may take.
        error: why the alerts could not be read now.

    Returns:
        ``None`` when nothing fires and the read worked.
    """
    if not firing:
        return Text(f"? alerts not read: {error}", style="dim") if error else None
    newest = firing[-1]
    playbook = (newest.suggestion or {}).get("playbook")
    loud = "dim" if error else "bold red"
    # (text, style, drop order: 0 is never dropped, then the highest goes first)
    parts: list[tuple[str, str, int]] = [
        (f"⚠ {len(firing)} firing: ", loud, 0),
        (newest.alertname or "an unnamed alert", loud, 0),
        (f" {_where(newest)}" if _where(newest) else "", loud, 0),
        (f" ({newest.severity})" if newest.severity else "", loud, 2),
        (f" since {newest.starts_at[11:19]}Z" if len(newest.starts_at) >= 19 else "", "dim" if error else "", 3),
        (f" → {playbook}: press o" if playbook else " → no playbook suggested: o picks one",
         "dim" if error else "bold", 0),
    ]
    if len(firing) > 1:
        others = ", ".join(f"{a.alertname} {_where(a)}".strip() for a in reversed(firing[:-1]))
        parts.append((f"  also {others}", "dim" if error else "red", 4))
    parts.append((f"  in {newest.incident_id}", "dim", 5))
    if error:
        parts.append(("  (as last read: alerts not read now)", "dim", 0))
    for level in (5, 4, 3, 2):
        if sum(cell_len(text) for text, _, _ in parts) <= width:
            break
        parts = [part for part in parts if part[2] != level]
    return Text.assemble(*((text, style) for text, style, _ in parts if text))


class StatusHeader(LineStack):
    """The lines at the top of the overview; each repainted only when its own text changes."""

    DEFAULT_CSS = """
    StatusHeader { height: auto; max-height: 5; background: $panel; }
    """

    def show(self, lines: list[Text]) -> None:
        """Show ``lines`` (one leading space each, as padding)."""
        super().show([Text(" ") + line for line in lines])
