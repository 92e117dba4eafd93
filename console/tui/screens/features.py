"""The features view of the model: what each version consumes, how its inputs look, and the feature rollback.

It owns its reads, its keys and its messages. The declared side (registry tag →
feature service → view, version, transformation sha) comes from the feature store,
and Feast takes about three seconds to import: a thread worker reads it
(:meth:`FeatureCatalog.feature_map`, and the transformation diff a rollback would
make, :meth:`FeatureRollbacks.preview`) while the view says "loading the feature
store…", then again every :data:`MIN_INTERVAL_S` (chained: reads never overlap).
The observed side and the findings come with it; the input health per version and
segment is the console's own feature read (:attr:`ConsoleHost.feature_reading`,
refreshed with the metrics), repainted as it changes.

The feature rollback (``r``) is an :class:`~console.tui.acting.ActionRequest` the
console carries out in its own worker through the one action procedure, with the
typed confirmation of the preview (blast radius, warnings, the diff); its outcome
and the undo hint then stay on the view.

Layout: the model and the diagnosis; the bindings, declared beside observed, a
difference flagged; the findings; the inputs, abnormal first; the diff; the
footer's keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Static

from console.domain.errors import RewindError
from console.tui.acting import ActionRequest, Carrier, procedure_request
from console.tui.polling import PolledScreen
from console.tui.widgets.diagnosis_line import cause_text
from console.tui.widgets.line_stack import LineStack

if TYPE_CHECKING:
    from console.domain.features import FeatureInput
    from console.services.actions import ActionResult
    from console.services.features import FeatureMap, FeatureReading
    from console.services.journal import Placement
    from console.services.rollback import Preview, RollbackService
    from console.tui.backend import Backend

MIN_INTERVAL_S = 10.0
"""The declared side changes only on a release or a rollback: read the feature store at most this often."""
WIDE = 110
"""From this width the inputs table spells every column out."""
NO_STORE = "no feature store is configured (features.repo): only what the servers report is shown"
HEALTH_ORDER = {"abnormal": 0, "normal": 1, "no data": 2}
HEALTH_MARK = {"abnormal": ("✗", "bold red"), "normal": ("✓", "green"), "no data": ("·", "dim")}


@dataclass
class FeaturesLoaded(Message):
    """The declared side beside the observed one, and the diff a rollback would make, or why not.

    Attributes:
        model: the model read.
        feature_map: declared and observed bindings and their findings (``None``: the read failed).
        store: whether a feature store is configured.
        diff: the transformation diff from the current version to the rollback target.
        diff_title: ``txn_features v1 → v0``.
        diff_problem: why there is no diff (nothing to roll back to, several views, no store).
        at: when it was read.
        error: why nothing could be read.
    """

    model: str
    feature_map: FeatureMap | None
    store: bool = True
    diff: tuple[str, ...] = ()
    diff_title: str = ""
    diff_problem: str | None = None
    at: float = 0.0
    error: str | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FeaturesLoaded)


@dataclass
class FeatureActionEnded(Message):
    """A feature rollback (or its undo) started from this view ended: its result, or its one-line error."""

    title: str
    result: ActionResult | None
    error: str | None = None


def read_features(model: str, backend: Backend, now: float) -> FeaturesLoaded:
    """In a thread: the declared side (Feast is imported here, on first use), the observed one, the diff."""
    catalog = backend.feature_catalog()
    feature_map = catalog.feature_map(model)
    if catalog.store is None:
        return FeaturesLoaded(model, feature_map, False, diff_problem=NO_STORE, at=now)
    try:
        planned = backend.feature_rollbacks().preview(model)
    except RewindError as exc:
        return FeaturesLoaded(model, feature_map, True, diff_problem=str(exc), at=now)
    title = f"{planned.view} {planned.current.label} (now) → {planned.target.label} (the rollback target)"
    return FeaturesLoaded(model, feature_map, True, planned.diff, title, at=now)


# -- what the view shows ---------------------------------------------------------------------------
def bindings_table(feature_map: FeatureMap, width: int) -> Table:
    """Each version's declared binding beside the observed one; ``✗`` where they differ (a finding)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  title="Bindings: declared (registry → store) · observed (servers)", title_justify="left",
                  title_style="bold")
    for column in ("", "ver", "service", "view", "declared", "observed"):
        table.add_column(column, no_wrap=column in ("", "ver"), overflow="fold")
    observed = {(b.version, b.view): b for b in feature_map.observed}
    flagged = {(f.split(",")[0].removeprefix("version ").strip(), f.split(",")[1].split(":")[0].strip())
               for f in feature_map.findings if f.startswith("version ") and "," in f}
    wide = width >= WIDE
    for declared in feature_map.declared:
        version = f"v{declared.version}"
        if declared.service is None:
            table.add_row(Text("·", style="dim"), version, Text("(no tag)", style="dim"), "-", "-", "-")
            continue
        if not declared.projections:
            table.add_row(Text("?", style="yellow"), version, declared.service, "-",
                          Text(declared.problem or "-", style="yellow"), "-")
            continue
        for projection, consumed in declared.projections:
            seen = observed.get((declared.version, projection.view))
            follows = (" (pinned)" if projection.version is not None else " (latest)") if wide else ""
            wanted = f"{consumed.label if consumed else '?'} {consumed.udf_sha if consumed else ''}".strip() + follows
            if seen is None:
                shown = Text("not reported", style="dim")
                mark = Text("·", style="dim")
            else:
                via = f" via {seen.feature_service}" if wide or seen.feature_service != declared.service else ""
                shown = Text(f"{seen.view_version} {seen.udf_sha}{via}".strip())
                bad = (declared.version, projection.view) in flagged
                mark = Text("✗", style="bold red") if bad else Text("✓", style="green")
                if bad:
                    shown.stylize("bold red")
            table.add_row(mark, version, declared.service, projection.view, wanted, shown)
    declared_keys = {(d.version, p.view) for d in feature_map.declared for p, _ in d.projections}
    for binding in feature_map.observed:
        if (binding.version, binding.view) not in declared_keys:
            table.add_row(Text("✗", style="bold red"), f"v{binding.version}", Text("(undeclared)", style="yellow"),
                          binding.view, "-", Text(f"{binding.view_version} {binding.udf_sha} via "
                                                  f"{binding.feature_service}", style="bold red"))
    return table


def observed_table(feature_map: FeatureMap) -> Table:
    """Without a feature store: each version's registry tag beside what its servers report (nothing to compare)."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
                  title="Bindings: registry tag · observed (servers)",
                  title_justify="left", title_style="bold")
    for column in ("ver", "registry tag", "observed"):
        table.add_column(column, no_wrap=column == "ver", overflow="fold")
    tags = {d.version: d.service for d in feature_map.declared}
    reported = {b.version for b in feature_map.observed}
    for version in sorted(set(tags) | reported, key=lambda v: (len(v), v)):
        seen = [f"{b.view} {b.view_version} {b.udf_sha} via {b.feature_service}".replace("  ", " ")
                for b in feature_map.observed if b.version == version]
        table.add_row(f"v{version}", tags.get(version) or Text("(no tag)", style="dim"),
                      "; ".join(seen) if seen else Text("not reported", style="dim"))
    return table


def findings_text(feature_map: FeatureMap) -> RenderableType:
    """One line per finding (a difference between declared and observed), or that there is none."""
    if not feature_map.findings:
        return Text("✓ every server reads what its registry tag declares", style="green")
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, style="bold yellow")
    table.add_column(style="bold yellow")
    for finding in feature_map.findings:
        table.add_row("!", f"finding: {finding}")
    return table


def _pct(share: float | None) -> str:
    if share is None:
        return "-"
    value = share * 100.0
    return f"{value:.0f}%" if value >= 10.0 or value == 0.0 else f"{value:.1f}%"


def inputs_table(inputs: tuple[FeatureInput, ...], width: int) -> Table:
    """Per-feature input health per version and segment: abnormal first, then normal, then no data."""
    from console.domain.versions import version_sort_key

    wide = width >= WIDE
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    columns = [("", "left"), ("ver", "left"), ("segment", "left"), ("feature", "left")]
    if wide:  # narrow, the mark says it (✗ abnormal, ✓ normal, · no data)
        columns.append(("health", "left"))
    columns += [("PSI", "right"), ("outside range" if wide else "outside", "right"), ("missing", "right"),
                ("values", "right")]
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    ordered = sorted(inputs, key=lambda i: (HEALTH_ORDER.get(i.health.value, 3), -(i.psi or 0.0),
                                            version_sort_key(i.version), i.segment, i.feature))
    for item in ordered:
        symbol, style = HEALTH_MARK.get(item.health.value, ("?", ""))
        count = "-" if item.count != item.count else f"{item.count:.0f}"  # NaN: not known
        cells: list[RenderableType] = [Text(symbol, style=style), f"v{item.version}", item.segment,
                                       Text(item.feature, style="bold" if item.health.value == "abnormal" else "")]
        if wide:
            cells.append(Text(item.health.value, style=style))
        cells += ["-" if item.psi is None else f"{item.psi:.2f}", _pct(item.out_of_range), _pct(item.missing),
                  count]
        table.add_row(*cells)
    return table


def inputs_part(reading: FeatureReading | None, width: int) -> RenderableType:
    """The inputs' title line (how many judged, how many abnormal) and their table."""
    if reading is None:
        return Text("Inputs: not read yet (read with the metrics)", style="italic")
    if reading.problem and not reading.inputs:
        return Text(f"Inputs: ? the feature telemetry could not be read: {reading.problem}", style="yellow")
    if not reading.inputs:
        return Text("Inputs: no server reports its input values (rewind_feature_value)", style="dim")
    judged = [i for i in reading.inputs if i.health.value != "no data"]
    abnormal = reading.abnormal
    title = Text.assemble(("Inputs", "bold"), f": {len(judged)} of {len(reading.inputs)} judged, ",
                          (f"{len(abnormal)} abnormal", "bold red" if abnormal else "green"),
                          "  (✗ abnormal: PSI, outside the training range or missing above its limit)"
                          if width >= WIDE else "  (✗ abnormal, ✓ normal, · no data)")
    return Group(title, inputs_table(reading.inputs, width))


def diff_part(loaded: FeaturesLoaded) -> RenderableType:
    """The transformation diff between the current version and the rollback target, coloured."""
    if loaded.diff_problem:
        return Text.assemble(("Transformation diff", "bold"), ": ", (loaded.diff_problem, "yellow"))
    lines = [Text.assemble(("Transformation diff", "bold"), f": {loaded.diff_title}")]
    for line in loaded.diff or ("(no difference in the transformation's source)",):
        style = ("green" if line.startswith("+") and not line.startswith("+++")
                 else "red" if line.startswith("-") and not line.startswith("---")
                 else "cyan" if line.startswith("@@") else "dim" if line.startswith(("---", "+++")) else "")
        lines.append(Text(line, style=style, no_wrap=True, overflow="ellipsis"))
    return Group(*lines)


def outcome_text(ended: FeatureActionEnded) -> Text:
    """The last feature action's outcome, and the undo hint while it can be undone."""
    if ended.error is not None:
        return Text(f"✗ {ended.title}: {ended.error}", style="bold red")
    result = ended.result
    if result is None or result.cancelled:
        return Text(f"{ended.title} cancelled: nothing changed", style="yellow")
    if not result.outcomes:
        return Text(f"{ended.title}: nothing was done", style="yellow")
    last = result.outcomes[-1]
    good = last.status in ("applied", "verified", "already_applied")
    text = Text(f"{'✓' if good else '✗'} {ended.title} {last.action_id}: {last.message}",
                style="bold green" if good else "bold red")
    if result.succeeded and any(o.status in ("applied", "verified") for o in result.outcomes):
        text.append(f"\n  u: undo it (or `rewind undo {result.outcomes[0].action_id}`)", style="bold")
    return text


# -- the actions -----------------------------------------------------------------------------------
def feature_rollback_request(screen: FeaturesScreen | None = None) -> ActionRequest:
    """Roll the model's features back (per model: a pinned service, the versions' tags moved), confirmed.

    ``screen``: the features view to tell how it ended (its outcome and the undo hint stay there).
    """
    def plan(carrier: Carrier) -> tuple[RollbackService, Preview, Placement]:
        from console.domain.routing import RouterState
        from console.services.features import feature_signature
        from console.services.rollback import Preview

        carrier.say("reading the registry's tags and the feature store for the preview…")
        planned = carrier.backend.feature_rollbacks().preview(carrier.model)
        why = f"back to {planned.view} {planned.target.label} from {planned.current.label}"
        preview = Preview(planned.plan, why, None, None, feature_signature(), RouterState(carrier.model, ()),
                          planned.already, planned.details)
        service = carrier.backend.rollback()
        summary = (f"feature rollback of {carrier.model}: {planned.view} {planned.current.label} → "
                   f"{planned.target.label}")
        return service, preview, service.journal.place(carrier.model, "2", summary)

    return _reported(procedure_request("Feature rollback", "Roll back", plan), screen)


def _reported(request: ActionRequest, screen: FeaturesScreen | None) -> ActionRequest:
    """``request`` whose end is also posted to ``screen`` (to show the outcome and the undo hint there)."""
    if screen is None:
        return request

    def carry(carrier: Carrier) -> ActionResult:
        try:
            result = request.carry(carrier)
        except RewindError as exc:
            screen.post_message(FeatureActionEnded(request.title, None, str(exc)))
            raise
        screen.post_message(FeatureActionEnded(request.title, result))
        return result

    return ActionRequest(request.title, carry, request.undoable)


ACTING = ("rollback_features", "undo_features")


class FeaturesScreen(PolledScreen):
    """The model's features: declared beside observed, the findings, input health, the diff; roll back."""

    BINDINGS = [
        Binding("r", "rollback_features", "roll back features"),
        Binding("u", "undo_features", "undo"),
        Binding("d", "app.diagnosis", "evidence"),
        Binding("escape,b,F,shift+f", "app.pop_screen", "back"),
    ]

    GROUP = "features-read"
    OFFERS_DIAGNOSIS = True  # the console's ``d`` (the diagnosis' evidence) works here too
    AUTO_FOCUS = "#features-body"  # the keys (↑↓ PgUp PgDn) scroll the body at once

    def __init__(self) -> None:
        super().__init__()
        self.loaded: FeaturesLoaded | None = None
        self.error: str | None = None
        self.ended: FeatureActionEnded | None = None
        self._painted: tuple[object, ...] | None = None

    @property
    def interval_s(self) -> float:
        return max(MIN_INTERVAL_S, self.host.options.refresh_s)

    def fetch(self, model: str, backend: Backend, now: float) -> FeaturesLoaded:
        return read_features(model, backend, now)

    def failed(self, model: str, error: str, now: float) -> FeaturesLoaded:
        return FeaturesLoaded(model, None, at=now, error=error)

    def compose(self) -> ComposeResult:
        yield LineStack(id="features-header")
        with VerticalScroll(id="features-body"):
            yield Static("", id="features-outcome")
            yield Static("", id="features-bindings")
            yield Static("", id="features-findings")
            yield Static("", id="features-inputs")
            yield Static("", id="features-diff")
        yield Footer()

    def on_mount(self) -> None:
        super().on_mount()
        # The inputs are the console's own feature read, refreshed with the metrics: look each refresh.
        self.set_interval(self.host.options.refresh_s, self.paint, name="inputs")

    def on_resize(self, event: events.Resize) -> None:
        self._painted = None
        self.paint()

    @on(FeaturesLoaded)
    def _features_loaded(self, message: FeaturesLoaded) -> None:
        if message.model == self.host.model:
            if message.feature_map is not None:
                if self.loaded is None or self.loaded.store != message.store:
                    self.refresh_bindings()  # no feature store: nothing to roll back, the key goes
                self.loaded, self.error = message, None
            else:  # what was read last stays on screen, with the error above it
                self.error = message.error
            self.paint()
        self.poll.done()

    @on(FeatureActionEnded)
    def _action_ended(self, message: FeatureActionEnded) -> None:
        self.ended = message
        self.paint()
        self.poll.soon()  # the tags moved: read the declared side again now

    # -- painting --------------------------------------------------------------------------------
    def paint(self) -> None:
        if not self.is_mounted:
            return
        reading = self.host.feature_reading
        width = self.size.width or 80
        key = (self.loaded, self.error, reading, self.ended, width)
        if key == self._painted:
            return  # nothing new: nothing is sent to the terminal
        self._painted = key
        header = [Text.assemble(" ", ("Features of ", "bold"), (self.host.model, "bold"))]
        diagnosis = reading.diagnosis if reading is not None else None
        if diagnosis is not None:
            header.append(Text(" ") + cause_text(diagnosis))
        elif reading is not None:
            header.append(Text(" ✓ no diagnosis: no version breaches", style="green"))
        loaded = self.loaded
        if loaded is None and self.error is None:
            header.append(Text(" loading the feature store… (Feast takes a few seconds to import)", style="italic"))
        elif self.error is not None:
            header.append(Text(f" ✗ could not read the features: {self.error}", style="bold red"))
        elif loaded is not None and not loaded.store:
            header.append(Text(f" ? {NO_STORE}", style="yellow"))
        self.query_one("#features-header", LineStack).show(header)
        outcome = self.query_one("#features-outcome", Static)
        outcome.display = self.ended is not None
        if self.ended is not None:
            outcome.update(outcome_text(self.ended))
        bindings = self.query_one("#features-bindings", Static)
        findings = self.query_one("#features-findings", Static)
        diff = self.query_one("#features-diff", Static)
        if loaded is None or loaded.feature_map is None:
            bindings.update("")
            findings.update("")
            diff.update("")
        elif not loaded.store:  # the declared side is unknown: nothing to compare, so no findings either
            bindings.update(observed_table(loaded.feature_map))
            findings.update("")
            diff.update("")
        else:
            bindings.update(bindings_table(loaded.feature_map, width))
            findings.update(findings_text(loaded.feature_map))
            diff.update(diff_part(loaded))
        findings.display = diff.display = loaded is None or loaded.store
        self.query_one("#features-inputs", Static).update(inputs_part(reading, width))

    # -- keys ------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ACTING and self.host.read_only:
            return False
        if action == "rollback_features" and self.loaded is not None and not self.loaded.store:
            return False
        return True

    def action_rollback_features(self) -> None:
        if self.loaded is not None and not self.loaded.store:
            self.notify(NO_STORE, severity="warning")
            return
        self.host.act(feature_rollback_request(self))

    def action_undo_features(self) -> None:
        from console.tui.screens.overview import undo_request

        result = self.ended.result if self.ended is not None else None
        action_id = result.outcomes[0].action_id if result is not None and result.outcomes else None
        self.host.act(_reported(undo_request(action_id), self))
