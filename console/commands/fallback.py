"""``rewind fallback status|engage|restore|drill``: the fallback that keeps serving, from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from console.commands.rollback import (
    _carry_out,
    _CommandLineFace,
    _placement,
    _recover,
    _require_confirmation_channel,
)
from console.services.actions import ActionOptions

if TYPE_CHECKING:
    from console.services.fallback import FallbackService, Readiness


def _service(args: argparse.Namespace) -> tuple[FallbackService, str]:
    from console.config import load_config
    from console.services.fallback import FallbackService
    from console.wiring import build_rollback_service, for_model

    loaded, model = for_model(load_config(getattr(args, "config", None)), args.model)
    return FallbackService(build_rollback_service(loaded)), model


def run(args: argparse.Namespace) -> int:
    """``rewind fallback ...``."""
    service, model = _service(args)
    rollback = service.rollback
    try:
        if args.fallback_command == "status":
            seen = service.observe(model)
            return _status(service.readiness(model), seen, args)
        console = Console(stderr=args.json)
        _recover(rollback, console)
        if args.fallback_command == "drill":
            return _drill(service, model, args, console)
        reason = args.reason or ""
        if args.fallback_command == "engage":
            preview, title = service.engage_preview(model, reason), "Engage the fallback"
        else:
            preview, title = service.restore_preview(model, reason), "Restore the primaries"
        _require_confirmation_channel(args, preview)
        return _carry_out(rollback, preview, _placement(rollback, args, model, reason or f"{title} of {model}"),
                          args, console, title)
    finally:
        rollback.journal.close()


def _drill(service: FallbackService, model: str, args: argparse.Namespace, console: Console) -> int:
    rollback = service.rollback
    if not (args.yes or args.read_only or sys.stdin.isatty()):
        _require_confirmation_channel(args)
    placement = _placement(rollback, args, model, args.reason or f"fallback drill of {model}")
    options = ActionOptions(confirmed_by="--yes" if args.yes else None, read_only=bool(args.read_only))
    result, actions = service.drill(model, args.seconds, placement, _CommandLineFace(console, args), options)
    if args.json:
        json.dump({"schema": "rewind.fallback_drill/1", "model": model,
                   "incident_id": actions[0].placement.incident_id,
                   "result": None if result is None else result.__dict__}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif result is None:
        console.print("The drill did not start: nothing changed.")
    else:
        console.print(Text(f"fallback drill {result.describe()}", style="green" if result.passed else "bold red"))
    return 0 if result is not None and result.passed else 1


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _status(readiness: Readiness, seen: str | None, args: argparse.Namespace) -> int:
    """Print the fallback's readiness; exit 0 when ready, 1 otherwise."""
    last = readiness.last_drill
    if args.json:
        json.dump({
            "schema": "rewind.fallback/1", "model": readiness.model, "ready": readiness.ready,
            "backup_up": readiness.backup_up, "deep_check": readiness.deep_check,
            "default_armed": readiness.default_armed, "engaged": readiness.engaged,
            "fallback_served": readiness.state.fallback_served(), "default_answers": readiness.state.default_answers,
            "servers": [s.__dict__ for s in readiness.state.servers],
            "last_drill": None if last is None else {"at": last[0], **last[1].__dict__},
            "journaled": seen,
        }, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if readiness.ready else 1
    console = Console()
    if seen:
        console.print(Text(f"journaled: {seen}", style="yellow"))
    backups = ", ".join(f"{s.server} {s.status} ({s.check or 'no check'})" for s in readiness.state.backups)
    console.print(f"{_mark(readiness.backup_up)} backup up: {backups or 'no backup server'}")
    console.print(f"{_mark(readiness.deep_check)} deep check (a real prediction) passing")
    console.print(f"{_mark(readiness.default_armed)} fixed default armed (router.static_default)")
    engaged = (f"ENGAGED: the fallback serves {readiness.model} ({readiness.state.fallback_served()} answered so far)"
               if readiness.engaged else "not engaged: the primaries serve")
    console.print(Text(engaged, style="bold yellow" if readiness.engaged else ""))
    console.print("last drill: " + ("never" if last is None else f"{last[0]}: {last[1].describe()}"))
    verdict = ("READY", "bold green") if readiness.ready else ("NOT READY", "bold red")
    console.print(Text(verdict[0], style=verdict[1]))
    return 0 if readiness.ready else 1
