"""``rewind status``: a model's aliases, router weights and judged metrics, as text or JSON."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from console.domain.features import Diagnosis
from console.domain.metrics import format_value
from console.domain.routing import writers_note
from console.domain.status import StatusSnapshot, status_document
from console.domain.verdicts import SYMBOL, WORD, State

if TYPE_CHECKING:
    from rich.console import Group
    from rich.text import Text

# rich is imported by the functions that render text: ``--json`` never needs it (about 30 ms of a status).

STATE_STYLE = {
    State.PASS: "green",
    State.BREACH: "bold red",
    State.SUSPECT: "bold yellow",
    State.NO_DATA: "dim",
    State.LOW_TRAFFIC: "yellow",
    State.INFO: "",
}


def _when(ts: float) -> str:
    utc = datetime.fromtimestamp(ts, UTC)
    local = utc.astimezone()
    return f"{utc:%H:%M:%S}Z ({local:%H:%M:%S %Z} local)"


def render_snapshot(snapshot: StatusSnapshot, explain: bool = False, compact: bool = False,
                    footer: str = "", hint: str = "") -> Group:
    """The status as rich renderables: header, versions, matrix, breaches.

    ``compact`` fits an 80x24 terminal (the live view): one line per version,
    no table titles, and at most two breaches spelled out.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    matrix = snapshot.matrix
    shares = snapshot.router.shares()
    stable = snapshot.stable_version
    header = Text.assemble(
        (snapshot.model, "bold"),
        f"  stable: {snapshot.stable_alias} → {'v' + stable if stable else 'unset'}",
        "" if compact else f"  ·  router backend {snapshot.router.backend}",
        f"  ·  evaluated {datetime.fromtimestamp(snapshot.evaluated_at, UTC):%H:%M:%S}Z" if compact
        else f"  ·  evaluated {_when(snapshot.evaluated_at)}",
        no_wrap=compact,
        overflow="ellipsis",
    )

    versions = Table(title=None if compact else "Versions", title_justify="left",
                     box=None if compact else box.SIMPLE_HEAD, pad_edge=False)
    for column in ("ver", "aliases", "weight", "share", "router", "created (UTC)", "verdict"):
        versions.add_column(column, justify="right" if column in ("weight", "share") else "left", no_wrap=True)
    registered = {v.version: v for v in snapshot.versions}
    for version in sorted(set(registered) | set(snapshot.router.weights()), key=int):
        info = registered.get(version)
        server = snapshot.router.server_for(version)
        state = matrix.version_state(version) if version in matrix.versions else None
        versions.add_row(
            f"v{version}",
            ", ".join(snapshot.aliases.aliases_of(version)) or "-",
            str(server.weight) if server else "-",
            f"{shares.get(version, 0.0) * 100:.0f}%" if server else "-",
            ("up" if server.operational else "DOWN")
            + ("" if server.admin_state == "ready" else f" ({server.admin_state})")
            + ("" if server.endpoints is None else f" ({server.endpoints} ready)")
            if server else "no server",
            f"{info.created_at:%Y-%m-%d %H:%M}" if info and info.created_at
            else ("not in registry" if not info else "-"),
            Text(f"⊘ DRAINED (last: {SYMBOL[state]} {WORD[state]})", style="dim") if state and version in matrix.drained
            else Text(f"{SYMBOL[state]} {WORD[state]}", style=STATE_STYLE[state]) if state else Text("-", style="dim"),
        )

    grid = Table(title=None if compact else "Metrics by version and segment", title_justify="left",
                 box=box.SIMPLE_HEAD, pad_edge=False, show_edge=not compact)
    grid.add_column("ver", no_wrap=True)
    grid.add_column("segment", no_wrap=True)
    for spec in matrix.metrics:
        grid.add_column(spec.title, justify="right", no_wrap=True)
    for index, version in enumerate(matrix.versions):
        for position, segment in enumerate(matrix.segments):
            cells = []
            for spec in matrix.metrics:
                state = matrix.state(spec.name, version, segment)
                value = matrix.value(spec.name, version, segment)
                text = "–" if value is None else format_value(value, spec.unit)
                cells.append(Text(f"{text} {SYMBOL[state]}", style=STATE_STYLE[state]))
            grid.add_row(
                f"v{version}" if position == 0 else "",
                segment,
                *cells,
                end_section=position == len(matrix.segments) - 1 and index < len(matrix.versions) - 1,
            )

    parts: list = [header, versions]
    written = writers_note(snapshot.router)
    if written and not compact:
        parts.append(Text(f"⚠ {written}", style="yellow"))
    if matrix.segments:
        parts.append(grid)
    else:
        parts.append(Text(f"No samples for {snapshot.model} in the metric window yet: every cell is no data.",
                          style="yellow"))
    legend = "  ".join(f"{SYMBOL[s]} {WORD[s]}" for s in State)
    if not compact:
        parts.append(Text(legend, style="dim", no_wrap=True, overflow="ellipsis"))
    failed = [r for r in matrix.results.values() if r.error]
    for result in failed[:1] if compact else failed:
        parts.append(Text(f"? {result.metric}: query failed: {result.error}", style="yellow",
                          no_wrap=compact, overflow="ellipsis"))
    breaches = matrix.breaches()
    shown = breaches[:2] if compact else breaches
    suspects = matrix.in_state(State.SUSPECT)
    if breaches:
        # The live view has one line for both counts, so it still fits 24 rows with three versions shown.
        also = f" (and {len(suspects)} suspect)" if compact and suspects else ""
        parts.append(Text(f"{len(breaches)} breaching cell(s)" + ("" if compact else ":"), style="bold red")
                     if not compact else Text(f"✗ {len(breaches)} breaching cell(s){also}, first:", style="bold red"))
        for verdict in shown:
            title = matrix.spec(verdict.metric).title
            parts.append(Text(f"  ✗ v{verdict.version} {verdict.segment} {title}: {verdict.reason}", style="red",
                              no_wrap=compact, overflow="ellipsis"))
    elif not failed:
        parts.append(Text(f"No breaches. {hint}".rstrip(), style="green", no_wrap=compact, overflow="ellipsis"))
    if suspects and compact and not breaches:
        first = suspects[0]
        parts.append(Text(f"! {len(suspects)} suspect (over the line, not significant yet), first: v{first.version} "
                          f"{first.segment} {matrix.spec(first.metric).title}", style="yellow", no_wrap=True,
                          overflow="ellipsis"))
    elif suspects and not compact:
        parts.append(Text(f"{len(suspects)} suspect cell(s): over the line, not significant yet:", style="yellow"))
        for verdict in suspects:
            parts.append(Text(f"  ! v{verdict.version} {verdict.segment} {matrix.spec(verdict.metric).title}: "
                              f"{verdict.reason}", style="yellow"))
    parts.extend(render_diagnosis(snapshot.diagnosis, snapshot.diagnosis_problem, compact))
    if compact:
        parts.append(Text(f"{legend}   {footer}".rstrip(), style="dim", no_wrap=True, overflow="ellipsis"))
    if explain:
        parts.append(Text("Queries:", style="bold"))
        for spec in matrix.metrics:
            answer = matrix.results.get(spec.name)
            parts.append(Text(f"  {spec.name}: {answer.promql if answer else 'not queried'}"))
        parts.append(Text("Cells:", style="bold"))
        for verdict in matrix.ordered():
            parts.append(Text(f"  v{verdict.version} {verdict.segment} {verdict.metric}: "
                              f"{SYMBOL[verdict.state]} {verdict.reason}"))
    return Group(*parts)


def render_diagnosis(diagnosis: Diagnosis | None, problem: str | None = None, compact: bool = False) -> list[Text]:
    """The likely cause of the breaches: one line, then (unless compact) its evidence, what is missing, advice."""
    from rich.text import Text

    lines: list[Text] = []
    if diagnosis is None:
        if problem and not compact:
            lines.append(Text(f"? feature evidence not read: {problem}", style="yellow"))
        return lines
    style = {"feature": "bold magenta", "model": "bold red", "world": "bold yellow"}.get(diagnosis.cause.value,
                                                                                         "yellow")
    lines.append(Text(f"Diagnosis: {diagnosis.summary}", style=style, no_wrap=compact, overflow="ellipsis"))
    if compact:
        return lines
    for line in diagnosis.evidence:
        lines.append(Text(f"  · {line}"))
    for line in diagnosis.missing:
        lines.append(Text(f"  ? missing: {line}", style="yellow"))
    if diagnosis.advice:
        lines.append(Text(f"  → {diagnosis.advice}", style="bold"))
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the status once, or refresh it until Ctrl-C with ``--watch``."""
    from console.config import load_config
    from console.wiring import build_status_service, for_model

    loaded = load_config(getattr(args, "config", None))
    if getattr(args, "fleet", False):
        return fleet(loaded, args.json)
    loaded, model = for_model(loaded, args.model)  # a model fleet.discover finds, too
    service = build_status_service(loaded.config)
    try:
        if args.watch:
            return watch(service, model, args.watch)
        snapshot = service.snapshot(model)
        if args.json:
            json.dump(status_document(snapshot), sys.stdout, indent=2, ensure_ascii=False)
            sys.stdout.write("\n")
        else:
            from rich.console import Console

            Console().print(render_snapshot(snapshot, explain=args.explain))
        return 0
    finally:
        service.close()


def fleet(loaded, as_json: bool) -> int:
    """``rewind status --fleet``: every model's row of the fleet view, worst first, as text or JSON.

    One read of the whole fleet (one query per catalogue metric for every model), judged as the
    fleet view judges it; incidents and who is acting are the console's to show (the journal is not read).
    Exit code 1 when a model breaches.
    """
    from console.domain.fleet import fleet_document
    from console.services.fleet import FleetStatus
    from console.wiring import build_metrics, build_registry, build_router, resolve_fleet

    config = resolve_fleet(loaded).config
    models = list(config.router.backends)
    if config.default_model in models:
        models = [config.default_model, *(m for m in models if m != config.default_model)]
    metrics = build_metrics(config)
    service = FleetStatus(build_registry(config), build_router(config, metrics), metrics, config.metrics.specs(),
                          config.metrics.traffic_metric, config.metrics.stable_alias)
    try:
        snapshot = service.read(models)
    finally:
        service.close()
    doc = fleet_document(snapshot.rows, datetime.fromtimestamp(snapshot.evaluated_at, UTC).isoformat()
                         .replace("+00:00", "Z"), snapshot.metrics_error, snapshot.journal_error)
    if as_json:
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("model", "state", "breaching", "split", "problems"):
            table.add_column(column, no_wrap=column != "problems")
        for row in snapshot.rows:
            table.add_row(row.model, Text(f"{SYMBOL[row.state]} {WORD[row.state]}", style=STATE_STYLE[row.state]),
                          str(len(row.breaching)),
                          " ".join(f"v{version} {share * 100:.0f}%" for version, share in row.split) or "-",
                          "; ".join(row.problems) or "")
        Console().print(table)
        if snapshot.metrics_error:
            Console().print(Text(f"? metrics: {snapshot.metrics_error}", style="yellow"))
    return 1 if any(row.state is State.BREACH for row in snapshot.rows) else 0


def watch(service, model: str, interval: float, hint: str = "") -> int:
    """Refresh the status every ``interval`` seconds; a failing system shows as a line, not an exit."""
    from rich.console import Console, Group
    from rich.live import Live
    from rich.text import Text

    from console.domain.errors import RewindError

    console = Console()
    with Live(Text("Loading…"), console=console, auto_refresh=False, screen=True) as live:
        last_good = None
        try:
            while True:
                started = time.monotonic()
                try:
                    last_good = render_snapshot(service.snapshot(model), compact=True,
                                                footer=f"every {interval:g}s · Ctrl-C quits", hint=hint)
                    view: Group | Text = last_good
                except RewindError as exc:
                    # Keep the last good numbers on screen, clearly marked stale, under the error.
                    problem = Text(f"{datetime.now(UTC):%H:%M:%S}Z  {exc} (retrying; numbers below are stale)",
                                   style="bold red")
                    view = Group(problem, last_good) if last_good is not None else problem
                live.update(view, refresh=True)
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
        except KeyboardInterrupt:
            return 0
