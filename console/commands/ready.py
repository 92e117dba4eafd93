"""``rewind ready``: could this model be rolled back now? Every condition measured, for people and for CI.

Exit 0 ready, 1 not ready (a condition false), 2 unknown (a condition could not be
measured and none is false) or a usage error. ``--json`` prints a document of schema
``rewind.readiness/1`` for CI gates. ``--waive CONDITION`` journals a waiver with a
reason and an expiry; it is listed in every output until it expires.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from console.domain.readiness import Report, Status

if TYPE_CHECKING:
    from console.services.readiness import ReadinessService

SCHEMA = "rewind.readiness/1"
_MARK = {Status.TRUE: ("✓", "green"), Status.FALSE: ("✗", "red"), Status.UNKNOWN: ("?", "yellow")}


def run(args: argparse.Namespace) -> int:
    """``rewind ready [--model M | --all] [--json]`` and ``rewind ready --waive CONDITION ...``."""
    from console.config import load_config
    from console.wiring import build_readiness, for_model, resolve_fleet

    loaded = load_config(getattr(args, "config", None))
    model = None
    if args.waive or not args.all:
        loaded, model = for_model(loaded, args.model)
    else:
        loaded = resolve_fleet(loaded)  # every model, the discovered ones too
    service = build_readiness(loaded)
    try:
        if model is None:
            models = sorted(loaded.config.router.backends)
        elif args.waive:
            return _waive(service, model, args)
        else:
            models = [model]
        reports = [service.check(model) for model in models]
    finally:
        service.rollback.journal.close()
    if args.json:
        document = {"schema": SCHEMA, "ready": all(r.ready for r in reports),
                    "exit_code": _exit_code(reports), "models": [r.to_dict() for r in reports]}
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console = Console(highlight=False)
        for report in reports:
            _print(console, report)
    return _exit_code(reports)


def _exit_code(reports: list[Report]) -> int:
    codes = {r.exit_code for r in reports}
    return 1 if 1 in codes else 2 if 2 in codes else 0


def _print(console: Console, report: Report) -> None:
    console.print(Text(f"{report.model}: rollback readiness, measured {report.checked_at}", style="bold"))
    width = max(len(c.type) for c in report.conditions)
    for condition in report.conditions:
        mark, colour = _MARK[condition.status]
        line = Text(f"  {mark} ")
        line.stylize(colour, 2, 3)
        line.append(f"{condition.type:<{width}}  {condition.status.value:<7}  ")
        line.append(condition.reason, style="bold")
        line.append(f": {condition.message}")
        console.print(line)
        if condition.waiver is not None:
            w = condition.waiver
            console.print(f"      waived until {w.expires_at} by {w.by}: {w.reason}")
        elif condition.remedy:
            console.print(Text(f"      fix: {condition.remedy}", style="dim"))
    for waiver in report.waivers:
        if not any(c.waiver == waiver for c in report.conditions):
            console.print(f"  waiver of {waiver.condition} (holds now anyway) until {waiver.expires_at} by "
                          f"{waiver.by}: {waiver.reason}")
    verdict = report.verdict()
    console.print(Text(verdict, style="bold green" if report.exit_code == 0 else "bold red"))


def _waive(service: ReadinessService, model: str, args: argparse.Namespace) -> int:
    from console.domain.errors import UsageError

    if not args.reason:
        raise UsageError("a waiver needs a reason (--reason TEXT)")
    waiver = service.waive(model, args.waive, args.reason, args.days)
    print(f"waived {waiver.condition} of {model} until {waiver.expires_at} (journaled): {waiver.reason}")
    return 0
