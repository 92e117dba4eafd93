"""``rewind incident open|note|close|list|show|export|import``: incidents in the decision journal."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from console.commands.journal import journal_service
from console.domain.errors import UsageError
from console.services.journal import JournalService

if TYPE_CHECKING:
    from console.services.postmortem import PostMortems


def run(args: argparse.Namespace) -> int:
    """Dispatch one incident action."""
    service = journal_service(args)
    try:
        return _ACTIONS[args.incident_command](service, args)
    finally:
        service.close()


def _open(service: JournalService, args: argparse.Namespace) -> int:
    event = service.open_incident(args.model, args.severity, args.summary,
                                  impact_started_at=args.impact_start, detected_at=args.detected_at)
    print(event.incident_id)
    print(f"rewind: opened {event.incident_id} ({event.payload['severity']}, model {event.payload['model']}) "
          f"in the {service.describe()}", file=sys.stderr)
    return 0


def _note(service: JournalService, args: argparse.Namespace) -> int:
    event = service.note(args.id, args.text)
    print(f"{event.incident_id} #{event.seq}: note recorded")
    return 0


def _close(service: JournalService, args: argparse.Namespace) -> int:
    postmortems, opened = _postmortems(service, args)
    try:
        event, warning = postmortems.close(args.id, args.summary)
    finally:
        _close_all(opened)
    if warning:
        print(f"rewind: warning: {warning}", file=sys.stderr)
    print(f"{event.incident_id} #{event.seq}: incident closed")
    return 0


def _postmortems(service: JournalService, args: argparse.Namespace) -> tuple[PostMortems, list]:
    """The close and export flows (console/services/postmortem.py), with the history read through the config.

    The journal commands otherwise work without a config, so a missing or incomplete one
    is a reason the history is missing, not an error. Returns the flows and the metrics
    clients they opened (to close).
    """
    from console import __version__
    from console.services.history import HistoryService
    from console.services.postmortem import PostMortems

    opened: list = []

    def history() -> HistoryService:
        from console.config import load_config
        from console.wiring import build_metrics

        config = load_config(getattr(args, "config", None)).config
        metrics = build_metrics(config)
        opened.append(metrics)
        return HistoryService(metrics, service, config.metrics.specs(), config.postmortem.history_margin_s,
                              config.postmortem.history_points,
                              traffic_metric=getattr(config.metrics, "traffic_metric", None))

    return PostMortems(service, history, f"rewind {__version__}"), opened


def _close_all(opened: list) -> None:
    for client in opened:
        client.close()


def _list(service: JournalService, args: argparse.Namespace) -> int:
    from console.services.timeline import Clock

    summaries = service.incidents()
    if args.json:
        json.dump({"schema": "rewind.incidents/1", "journal": service.describe(), "incidents": [
            {"id": s.incident_id, "status": s.status, "severity": s.severity, "model": s.model,
             "summary": s.summary, "opened_at": s.opened_at, "opened_by": s.opened_by.label(),
             "closed_at": s.closed_at, "events": s.events, "head_hash": s.head_hash}
            for s in summaries]}, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not summaries:
        print(f"No incidents in the {service.describe()}.")
        return 0
    clock = Clock()
    rows = [("ID", "STATUS", "SEV", "MODEL", "OPENED (UTC)", f"LOCAL ({clock.zone_name})", "EVENTS", "SUMMARY")]
    for s in summaries:
        rows.append((s.incident_id, s.status, s.severity, s.model, clock.utc(s.opened_at) if s.opened_at else "-",
                     clock.local(s.opened_at) if s.opened_at else "-", str(s.events), s.summary))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = zip(row[:-1], widths, strict=True)
        print("  ".join(cell.rjust(w) if i == 6 else cell.ljust(w) for i, (cell, w) in enumerate(cells))
              + "  " + row[-1])
    return 0


def _show(service: JournalService, args: argparse.Namespace) -> int:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from console.services.timeline import build_view, clock_for

    clock = clock_for(args.tz)
    view = build_view(*service.chain(args.id))
    s = view.summary
    console = Console()
    console.print(Text.assemble((s.incident_id, "bold"), f"  {s.severity}  {s.status}  model {s.model}"))
    console.print(Text(s.summary))
    console.print(f"opened {clock.both(s.opened_at)} by {s.opened_by.label()}", markup=False, highlight=False)
    if s.closed_at:
        console.print(f"closed {clock.both(s.closed_at)}" + (f": {s.resolution}" if s.resolution else ""),
                      markup=False, highlight=False)
    f = view.facts
    from console.domain.incident import format_duration

    console.print(f"TTD {f.ttd_text()}  ·  TTM {format_duration(f.ttm_s)}  ·  "
                  f"mitigated {clock.utc(f.mitigated.at) if f.mitigated else 'not yet'}", markup=False,
                  highlight=False)
    chain = view.verification
    console.print(Text(f"✓ chain intact ({chain.events} events)" if chain.ok
                       else f"✗ {chain.problem.message()}",  # type: ignore[union-attr]
                       style="green" if chain.ok else "bold red"))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    times = ("UTC",) if clock.is_utc else ("UTC", f"local ({clock.zone_name})")
    for column in ("#", *times, "who", "", "what"):
        table.add_column(column, no_wrap=column != "what")
    for row in view.rows:
        seq = str(row.first_seq) if row.count == 1 else f"{row.first_seq}-{row.last_seq}"
        shown = (clock.utc(row.ts)[11:],) if clock.is_utc else (clock.utc(row.ts)[11:], clock.local(row.ts)[11:])
        table.add_row(seq, *shown, row.actor.label(), row.marker, Text(row.text))
    console.print(table)
    return 0 if chain.ok else 1


def _export(service: JournalService, args: argparse.Namespace) -> int:
    from console.services.timeline import FORMATS, clock_for, export

    clock = clock_for(args.tz)
    if args.format not in FORMATS:
        raise UsageError(f"unknown export format {args.format!r}: use one of {', '.join(FORMATS)}")
    target = None
    if args.output and args.output != "-":  # bad input is refused before anything is read or journaled
        target = Path(args.output).expanduser()
        if target.is_dir():
            raise UsageError(f"-o {target}: is a directory; name the file to write")
        if not target.parent.is_dir():
            raise UsageError(f"-o {target}: directory {target.parent} does not exist")
    postmortems, opened = _postmortems(service, args)
    try:
        if target is None:
            view, note = postmortems.view(args.id, args.format)
            if note is not None:
                print(f"rewind: warning: {note}", file=sys.stderr)
            export(view, args.format, sys.stdout, clock, generator=postmortems.generator)
            return _chain_warning(view)
        exported = postmortems.export_to(args.id, args.format, target, clock)
    finally:
        _close_all(opened)
    if exported.note is not None:
        print(f"rewind: warning: {exported.note}", file=sys.stderr)
    print(f"rewind: wrote {target} ({args.format}, {exported.events} events)", file=sys.stderr)
    if exported.chain_problem is not None:
        print(f"rewind: warning: the export shows a broken chain: {exported.chain_problem}", file=sys.stderr)
        return 1
    return 0


def _chain_warning(view) -> int:  # noqa: ANN001 - an IncidentView
    """Exit 1, with a warning, when the exported incident's chain is broken (the export says so too)."""
    problem = view.verification.problem
    if problem is None:
        return 0
    print(f"rewind: warning: the export shows a broken chain: {problem.message()}", file=sys.stderr)
    return 1


def _import(service: JournalService, args: argparse.Namespace) -> int:
    from console.services.timeline import parse_incident_document

    source = "standard input" if args.file == "-" else args.file
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{source}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{source}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg}); nothing imported") from None
    events = parse_incident_document(document, source)
    head = service.import_events(events)
    print(f"imported {head.incident_id}: {len(events)} events, head {head.hash[:16]} into the {service.describe()}")
    return 0


_ACTIONS = {
    "open": _open,
    "note": _note,
    "close": _close,
    "list": _list,
    "show": _show,
    "export": _export,
    "import": _import,
}
