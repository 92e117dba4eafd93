"""The shadow view of the model: the promotion gate per segment, its clock, and the shadow's actions.

It owns its reads, its keys and its messages. A thread worker reads the
shadow's state and the gate (:meth:`ShadowService.status`: one Prometheus range
query per quantity, so never more often than every :data:`MIN_INTERVAL_S`), and
posts a :class:`ShadowRead`; the handler keeps it and paints. The next read is
chained to the end of the previous one, so reads never overlap. Actions (start,
stop, promote, revert the latest promotion) are :class:`~console.tui.acting.ActionRequest`
objects the console carries out in its own worker, through the one action
procedure and the same typed confirmation as a rollback.

Layout, top to bottom: the shadow and the gate (clock, verdict, when read), the
per-segment table, the reason of every HOLD and FAIL, the footer's keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from console.domain.metrics import format_count
from console.domain.shadow import GATE_SYMBOL, GateVerdict, SegmentVerdict, ShadowLimits
from console.domain.stats import exact_upper
from console.tui.acting import ActionRequest, Carrier, procedure_request
from console.tui.polling import PolledScreen
from console.tui.widgets.line_stack import LineStack

if TYPE_CHECKING:
    from console.services.journal import Placement
    from console.services.rollback import Preview, RollbackService
    from console.services.shadow import ShadowStatus
    from console.tui.backend import Backend

MIN_INTERVAL_S = 5.0
"""The gate costs a range query per quantity (15): read it at most this often."""

VERDICT_STYLE = {GateVerdict.PASS: "green", GateVerdict.HOLD: "yellow", GateVerdict.FAIL: "bold red"}
WIDE = 110
"""From this width the table spells its columns out (shadow and champion side by side)."""
TALL = 36
"""From this height (and ``WIDE``) the view also shows each criterion per segment."""


@dataclass
class ShadowRead(Message):
    """The shadow's state and gate as read now, or why they could not be read.

    Attributes:
        model: the model read.
        status: the shadow, the mirror and the gate (``None``: the read failed).
        candidates: versions that could be put in shadow (a router server, not the champion).
        limits: what the gate proves each segment within (for the agreement's bound).
        at: when it was read (the console's clock).
        error: why it could not be read.
    """

    model: str
    status: ShadowStatus | None
    candidates: tuple[str, ...] = ()
    limits: ShadowLimits | None = None
    at: float = 0.0
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ShadowRead)


@dataclass
class Shown:
    """What the view shows: the last good read (with its time) and the last error."""

    status: ShadowStatus | None = None
    candidates: tuple[str, ...] = ()
    limits: ShadowLimits = field(default_factory=ShadowLimits)
    at: float | None = None
    error: str | None = None


# -- rendering (pure: tests and both sizes read these) -------------------------------------------
def _clock(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC):%H:%M:%S}Z"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f}"


def verdict_text(verdict: GateVerdict | None, stale: bool = False) -> Text:
    """``✓ PASS``, ``… HOLD``, ``✗ FAIL``; ``? unknown`` once the reading is too old to stand for now."""
    if stale or verdict is None:
        return Text("? unknown", style="dim")
    return Text(f"{GATE_SYMBOL[verdict]} {verdict.name}", style=VERDICT_STYLE[verdict])


def agreement_bound(segment: SegmentVerdict, limits: ShadowLimits) -> float | None:
    """The agreement the evidence proves (1 − the upper end of the disagreement's exact interval)."""
    evidence = segment.evidence
    if evidence.pairs is None or evidence.pairs <= 0 or evidence.disagreement is None:
        return None
    return 1.0 - exact_upper(evidence.disagreement * evidence.pairs, evidence.pairs, limits.confidence)


def _errors(segment: SegmentVerdict) -> tuple[float | None, float | None]:
    """The shadow's and the champion's error rates."""
    evidence = segment.evidence
    copies, champion = evidence.copies, evidence.champion_requests
    shadow_rate = (evidence.shadow_errors or 0.0) / copies if copies else None
    champion_rate = (evidence.champion_errors or 0.0) / champion if champion else None
    return shadow_rate, champion_rate


def _cost(segment: SegmentVerdict) -> str | None:
    """The cost criterion's figure (``1.12×``), ``None`` when no cost was read."""
    cost = segment.evidence.cost
    if cost is None:
        return None
    from console.domain.shadow import cost_per_thousand

    shadow = cost_per_thousand(cost.shadow_cpu_seconds, cost.shadow_predictions)
    champion = cost_per_thousand(cost.champion_cpu_seconds, cost.champion_predictions)
    if shadow is None or champion is None or champion <= 0:
        return "—"
    return f"{shadow / champion:.2f}×"


def gate_table(segments: tuple[SegmentVerdict, ...], limits: ShadowLimits, width: int, stale: bool = False) -> Table:
    """One row per segment: verdict, agreement with its proven bound and pairs, score difference, latency,
    errors, coverage, and cost when it was read. Dimmed, with ``? unknown`` verdicts, once stale."""
    wide = width >= WIDE
    with_cost = any(segment.evidence.cost is not None for segment in segments)
    table = Table(box=None, pad_edge=False, expand=False, padding=(0, 1), header_style="bold underline",
                  style="dim" if stale else "")
    table.add_column("segment", no_wrap=True, overflow="ellipsis", max_width=16 if wide else 11)
    table.add_column("gate", no_wrap=True)
    table.add_column("agreement" if wide else "agree", justify="right", no_wrap=True)
    table.add_column("proven ≥" if wide else "bound", justify="right", no_wrap=True)
    table.add_column("pairs", justify="right", no_wrap=True)
    table.add_column("score Δ p95" if wide else "Δ p95", justify="right", no_wrap=True)
    if wide:
        table.add_column("p95 shadow", justify="right", no_wrap=True)
        table.add_column("p95 champion", justify="right", no_wrap=True)
        table.add_column("errors shadow", justify="right", no_wrap=True)
        table.add_column("errors champion", justify="right", no_wrap=True)
    else:
        table.add_column("p95 s/c", justify="right", no_wrap=True)
        table.add_column("err.", justify="right", no_wrap=True)
    table.add_column("coverage" if wide else "cov.", justify="right", no_wrap=True)
    if with_cost:
        table.add_column("cost ×champion" if wide else "cost", justify="right", no_wrap=True)
    for segment in segments:
        evidence = segment.evidence
        disagreement = evidence.disagreement
        bound = agreement_bound(segment, limits)
        shadow_errors, champion_errors = _errors(segment)
        row: list[Text | str] = [
            segment.segment, verdict_text(segment.verdict, stale),
            _pct(None if disagreement is None else 1.0 - disagreement),
            "—" if bound is None else f"≥{bound * 100:.1f}%",
            "—" if evidence.pairs is None else format_count(evidence.pairs),
            "—" if evidence.score_delta_p95 is None else f"{evidence.score_delta_p95:.3f}",
        ]
        if wide:
            row += [f"{_ms(evidence.shadow_p95)} ms", f"{_ms(evidence.champion_p95)} ms",
                    _pct(shadow_errors), _pct(champion_errors)]
        else:
            row += [f"{_ms(evidence.shadow_p95)}/{_ms(evidence.champion_p95)}", _pct(shadow_errors)]
        row.append("—" if evidence.coverage is None else f"{evidence.coverage:.2f}")
        if with_cost:
            row.append(_cost(segment) or "—")
        table.add_row(*row)
    return table


CRITERION_TITLE = {"coverage": "coverage", "disagreement": "disagreement", "score_delta": "score Δ p95",
                   "errors": "errors", "latency": "latency p95", "mcnemar": "flips (McNemar)", "cost": "cost",
                   "traffic": "traffic", "metrics": "metrics", "window": "evidence window"}


def criteria_table(segments: tuple[SegmentVerdict, ...], stale: bool = False) -> Table:
    """Criterion × segment: which criterion holds or fails each segment (wide terminals have the room)."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold underline",
                  style="dim" if stale else "", title="Each criterion", title_justify="left", title_style="bold")
    table.add_column("criterion", no_wrap=True)
    for segment in segments:
        table.add_column(segment.segment, no_wrap=True, overflow="ellipsis", max_width=16)
    names = list(dict.fromkeys(item.criterion for segment in segments for item in segment.criteria))
    for name in names:
        cells: list[Text | str] = [CRITERION_TITLE.get(name, name)]
        for segment in segments:
            result = segment.criterion(name)
            if result is None:
                cells.append(Text("—", style="dim"))
            elif result.verdict is None:
                cells.append(Text("not judged", style="dim"))
            else:
                cells.append(verdict_text(result.verdict, stale))
        table.add_row(*cells)
    return table


def limits_line(limits: ShadowLimits, wide: bool = True) -> Text:
    """What each segment must be proven within, under the table (and, narrow, what the short titles mean)."""
    legend = "" if wide else "bound: proven agreement · Δ p95: score diff. · p95 s/c: shadow/champion ms\n"
    return Text(f"{legend}agreement proven ≥ {(1 - limits.max_disagreement) * 100:g}% at {limits.confidence * 100:g}% "
                f"confidence · score Δ p95 ≤ {limits.max_score_delta_p95:g} · p95 ≤ champion × "
                f"{limits.latency_ratio:g} + {limits.latency_slack_s * 1000:g} ms · errors ≤ champion + "
                f"{limits.max_error_delta * 100:g} pt · coverage ≥ {limits.min_coverage:g}", style="dim")


def reasons_text(segments: tuple[SegmentVerdict, ...], stale_age: float | None = None) -> Text:
    """The reason of every HOLD and FAIL, failures first, one paragraph per segment."""
    text = Text()
    if stale_age is not None:
        text.append(f"as last read, {stale_age:.0f}s ago:\n", style="bold yellow")
    ordered = [s for wanted in (GateVerdict.FAIL, GateVerdict.HOLD) for s in segments if s.verdict is wanted]
    if not ordered:
        text.append("every segment passes: no HOLD or FAIL to explain", style="green")
        return text
    text.append("Why not passing\n", style="bold underline")
    for index, segment in enumerate(ordered):
        if index:
            text.append("\n")
        text.append_text(verdict_text(segment.verdict, stale_age is not None))
        text.append(f"  {segment.segment}  ", style="bold")
        text.append(segment.reason)
    return text


def header_lines(model: str, shown: Shown, now: float, stale_after_s: float, wide: bool = False) -> list[Text]:
    """The shadow and the mirror; the gate's verdict and clock (or unknown, with its age); a problem."""
    status = shown.status
    if status is None:
        if shown.error is not None:
            return [Text.assemble(("Shadow of ", "bold"), (model, "bold"), "  "),
                    Text(f"✗ could not read the shadow: {shown.error}", style="bold red")]
        return [Text.assemble(("Shadow of ", "bold"), (model, "bold")), Text("reading the shadow and its gate…",
                                                                         style="italic")]
    age = now - shown.at if shown.at is not None else 0.0
    stale = age > stale_after_s
    first = Text.assemble(("Shadow of ", "bold"), (model, "bold"), "  ")
    mirror = status.mirror
    if mirror is None:
        first.append("no mirror", style="bold")
        first.append(f"  champion v{status.champion}" if status.champion else "  no champion alias")
    else:
        first.append(mirror.describe(), style="bold")
        if status.started_at is not None:
            first.append(f"  since {_clock(status.started_at)}")
    lines = [first]
    gate = status.gate
    second = Text("gate ", style="bold")
    if stale:
        second.append(f"? unknown (read {age:.0f}s ago", style="bold yellow")
        second.append(f": {shown.error})" if shown.error else ")", style="bold yellow")
    elif mirror is None:
        second.append("no shadow to judge", style="dim")
    elif gate is not None:
        clock = gate.clock
        if gate.holds:
            second.append(f"✓ HELD {clock.text if clock else ''}", style="bold green")
            second.append("  promotion allowed (p)")
        else:
            second.append_text(verdict_text(gate.verdict))
            second.append(f"  held {clock.text}" if clock is not None else "  held ?", style="bold")
        second.append(f"  · evaluated {_clock(gate.evaluated_at)}", style="dim")
        if not gate.holds and wide:
            second.append("  · promotion refused until every segment passes for the whole window", style="dim")
        if gate.error:
            second.append(f"  metrics: {gate.error}", style="red")
        if shown.error:
            second.append(f"  last read failed: {shown.error}", style="red")
    lines.append(second)
    if status.problem:
        lines.append(Text(f"! {status.problem}", style="bold yellow"))
    return lines


def no_mirror_text(model: str, status: ShadowStatus, candidates: tuple[str, ...]) -> Text:
    """What the view says with no mirror: that nothing is judged, and how to start a shadow."""
    text = Text.assemble(("No shadow: ", "bold"), f"the router mirrors none of {model}'s requests, so nothing "
                         "is compared and no gate is read.\n")
    if status.alias:
        text.append(f"The registry's shadow alias still points at v{status.alias} (x removes it).\n",
                    style="yellow")
    choices = ", ".join(f"v{v}" for v in candidates) or "none with a router server"
    text.append("Press ", style="")
    text.append("s", style="bold")
    text.append(f" to start one: choose a version ({choices}) and the share of the champion's answered requests "
                "to copy; the preview shows the alias and the mirror, and you type the model's name to confirm.\n")
    text.append(f"Command line: rewind shadow start --model {model} --version V [--percent P]", style="dim")
    return text


# -- the actions -----------------------------------------------------------------------------------
def start_request(version: str, percent: int) -> ActionRequest:
    """Put ``version`` in shadow of the champion (alias, then the router's mirror)."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        shadow = carrier.backend.shadow()
        carrier.say("reading the registry and the router for the preview…")
        preview = shadow.start_preview(carrier.model, version, percent)
        return shadow.rollback, preview, shadow.rollback.journal.place(
            carrier.model, "2", f"shadow of {carrier.model}: v{version}")

    return procedure_request("Shadow start", "Start shadow", plan)


def stop_request() -> ActionRequest:
    """Stop the mirror and remove the shadow alias."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        shadow = carrier.backend.shadow()
        carrier.say("reading the registry and the router for the preview…")
        preview = shadow.stop_preview(carrier.model)
        return shadow.rollback, preview, shadow.rollback.journal.place(
            carrier.model, "2", f"shadow of {carrier.model} stopped")

    return procedure_request("Shadow stop", "Stop shadow", plan)


def promote_request() -> ActionRequest:
    """Promote the shadow; refused (with the gate's reason) unless the gate held for its window."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        shadow = carrier.backend.shadow()
        carrier.say("reading the gate over its window…")
        preview, gate = shadow.promote_preview(carrier.model)
        carrier.say(f"gate: {gate.summary}", "good")
        return shadow.rollback, preview, shadow.rollback.journal.place(
            carrier.model, "2", f"promotion of v{preview.plan.target} on {carrier.model}")

    return procedure_request("Promote", "Promote", plan)


def revert_request() -> ActionRequest:
    """Revert the latest promotion: alias, traffic and mirror back (the promotion's undo)."""
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        shadow = carrier.backend.shadow()
        carrier.say("looking up the latest promotion…")
        preview, incident_id = shadow.revert_preview(carrier.model)
        return shadow.rollback, preview, shadow.rollback.journal.place(
            carrier.model, "2", f"revert of a promotion on {carrier.model}", belongs_to=incident_id)

    return procedure_request("Revert promotion", "Revert", plan)


def read_shadow(model: str, backend: Backend, now: float) -> ShadowRead:
    """In a thread: the shadow's state and gate, and the versions that could shadow the champion."""
    service = backend.shadow()
    status = service.status(model)
    weights = service.rollback.router.read_state(model).weights()
    # Newest first: the version a responder puts in shadow is usually the latest one.
    candidates = tuple(v for v in sorted(weights, key=lambda v: int(v) if v.isdigit() else -1, reverse=True)
                       if v != status.champion)
    return ShadowRead(model, status, candidates, service.gate.limits, now)


ACTING = ("start", "stop", "promote", "revert")


class ShadowScreen(PolledScreen):
    """The model's shadow, its gate per segment, and the keys that act on it."""

    BINDINGS = [
        Binding("s", "start", "start shadow"),
        Binding("x", "stop", "stop"),
        Binding("p", "promote", "promote"),
        Binding("u", "revert", "revert promotion"),
        Binding("escape,b,v", "app.pop_screen", "back"),
    ]

    GROUP = "shadow-read"
    AUTO_FOCUS = "#shadow-body"  # the keys (↑↓ PgUp PgDn) scroll the body at once

    def __init__(self) -> None:
        super().__init__()
        self.shown = Shown()
        self._painted: tuple[object, ...] | None = None

    @property
    def interval_s(self) -> float:
        """Seconds between the end of one read and the start of the next (never under the gate's minimum)."""
        return max(MIN_INTERVAL_S, self.host.options.refresh_s)

    def fetch(self, model: str, backend: Backend, now: float) -> ShadowRead:
        return read_shadow(model, backend, now)

    def failed(self, model: str, error: str, now: float) -> ShadowRead:
        return ShadowRead(model, None, at=now, error=error)

    def compose(self) -> ComposeResult:
        yield LineStack(id="shadow-header")
        with VerticalScroll(id="shadow-body"):
            yield Static("", id="shadow-table")
            yield Static("", id="shadow-limits")
            yield Static("", id="shadow-criteria")
            yield Static("", id="shadow-reasons")
        yield Footer()

    def on_resize(self, event: events.Resize) -> None:
        self._painted = None
        self.paint()

    @on(ShadowRead)
    def _shadow_read(self, message: ShadowRead) -> None:
        if message.model == self.host.model:
            if message.status is not None:
                limits = message.limits or self.shown.limits
                self.shown = Shown(message.status, message.candidates, limits, message.at)
            else:  # keep what was last read, with its time: it reads as unknown once too old
                self.shown.error = message.error
            self.paint()
        self.poll.done()

    # -- painting --------------------------------------------------------------------------------
    def paint(self) -> None:
        if not self.is_mounted:
            return
        shown, now, width = self.shown, self.host.options.clock(), self.size.width or 80
        age = now - shown.at if shown.at is not None else 0.0
        stale = shown.status is not None and age > self.stale_after_s
        key = (shown.status, shown.error, stale, int(age) if stale else 0, width, self.size.height)
        if key == self._painted:
            return  # nothing new: nothing is sent to the terminal
        self._painted = key
        self.query_one("#shadow-header", LineStack).show(
            [Text(" ") + line for line in header_lines(self.host.model, shown, now, self.stale_after_s,
                                                       width >= WIDE)])
        table = self.query_one("#shadow-table", Static)
        limits = self.query_one("#shadow-limits", Static)
        reasons = self.query_one("#shadow-reasons", Static)
        criteria = self.query_one("#shadow-criteria", Static)
        status = shown.status
        roomy = width >= WIDE and self.size.height >= TALL
        criteria.display = bool(roomy and status is not None and status.gate is not None and status.gate.segments)
        if criteria.display and status is not None and status.gate is not None:
            criteria.update(criteria_table(status.gate.segments, stale))
        if status is None:
            table.update("")
            limits.update("")
            reasons.update("")
        elif status.mirror is None:
            table.update(no_mirror_text(self.host.model, status, shown.candidates))
            limits.update("")
            reasons.update("")
        elif status.gate is None or not status.gate.segments:
            problem = status.gate.error if status.gate is not None else None
            table.update(Text(f"no segment has evidence yet{': ' + problem if problem else ''}", style="italic"))
            limits.update(limits_line(shown.limits))
            reasons.update("")
        else:
            segments = status.gate.segments
            table.update(gate_table(segments, shown.limits, width, stale))
            limits.update(limits_line(shown.limits, width >= WIDE))
            reasons.update(reasons_text(segments, age if stale else None))

    # -- keys ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ACTING and self.host.read_only:
            return False
        return True

    def _ready(self) -> bool:
        if self.shown.status is None:
            self.notify("the shadow has not been read yet: try again in a moment", severity="warning")
            return False
        return True

    def action_start(self) -> None:
        from console.tui.dialogs.shadow_start import ShadowStart, ShadowStartDialog

        if not self._ready():
            return
        status = self.shown.status
        assert status is not None
        if status.mirror is not None:
            self.notify(f"{status.mirror.describe()} already: stop it first (x)", severity="warning")
            return
        if not self.shown.candidates:
            self.notify("no version with a router server to put in shadow", severity="warning")
            return

        def chosen(choice: ShadowStart | None) -> None:
            if choice is not None:
                self.host.act(start_request(choice.version, choice.percent))

        self.app.push_screen(ShadowStartDialog(self.host.model, status.champion, self.shown.candidates), chosen)

    def poll_soon(self) -> None:
        """Read now, or as soon as the read under way ends."""
        self.poll.soon()

    def action_stop(self) -> None:
        self.host.act(stop_request())

    def action_promote(self) -> None:
        self.host.act(promote_request())

    def action_revert(self) -> None:
        self.host.act(revert_request())
