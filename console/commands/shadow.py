"""``rewind shadow start|stop|status`` and ``rewind promote``: shadow + promote from the command line.

The plans come from :mod:`console.services.shadow`; they are previewed, confirmed,
applied, verified and journaled by the one action procedure, as a rollback is.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from console.commands.rollback import _carry_out, _placement, _recover, _require_confirmation_channel
from console.domain.errors import UsageError
from console.domain.shadow import GATE_SYMBOL, GateReading, GateVerdict

if TYPE_CHECKING:
    from console.services.shadow import ShadowService, ShadowStatus


def _service(args: argparse.Namespace) -> tuple[ShadowService, str]:
    from console.config import load_config
    from console.wiring import build_shadow_service, for_model

    loaded, model = for_model(load_config(getattr(args, "config", None)), args.model)
    return build_shadow_service(loaded), model


def run(args: argparse.Namespace) -> int:
    """``rewind shadow start|stop|status``."""
    service, model = _service(args)
    rollback = service.rollback
    try:
        if args.shadow_command == "status":
            return _status(service.status(model), args)
        console = Console(stderr=args.json)
        _recover(rollback, console)
        if args.shadow_command == "start":
            preview = service.start_preview(model, str(args.version), args.percent, args.reason or "")
            title, summary = "Shadow start", f"shadow of {model}: v{args.version}"
        else:
            preview = service.stop_preview(model, args.reason or "")
            title, summary = "Shadow stop", f"shadow of {model} stopped"
        _require_confirmation_channel(args, preview)
        return _carry_out(rollback, preview, _placement(rollback, args, model, args.reason or summary), args,
                          console, title)
    finally:
        rollback.journal.close()


def run_promote(args: argparse.Namespace) -> int:
    """``rewind promote [--revert [ACTION_ID]] [--override-gate]``."""
    service, model = _service(args)
    rollback = service.rollback
    console = Console(stderr=args.json)
    try:
        _recover(rollback, console)
        if args.revert:
            if args.override_gate:
                raise UsageError("--override-gate applies to a promotion, not to its revert")
            preview, incident_id = service.revert_preview(model, None if args.revert == "latest" else args.revert,
                                                          args.reason or "")
            _require_confirmation_channel(args, preview)
            placement = rollback.journal.place(model, args.severity, f"revert of a promotion on {model}",
                                               args.incident, args.new_incident,
                                               belongs_to=incident_id)
            return _carry_out(rollback, preview, placement, args, console, "Revert promotion")
        preview, gate = service.promote_preview(model, args.reason or "", override=args.override_gate)
        if not args.json:
            console.print(_gate_table(gate))
        _require_confirmation_channel(args, preview)
        summary = args.reason or f"promotion of v{preview.plan.target} on {model}"
        return _carry_out(rollback, preview, _placement(rollback, args, model, summary), args, console, "Promote",
                          second_person=bool(args.override_gate))
    finally:
        rollback.journal.close()


def _gate_table(gate: GateReading) -> Table:
    """The gate per segment: verdict, pairs, disagreement bound, latency, coverage, and why."""
    clock = gate.clock.text if gate.clock else "-"
    table = Table(title=f"Promotion gate: v{gate.shadow_version} against v{gate.champion_version}, held {clock}",
                  title_justify="left")
    for column in ("segment", "gate", "pairs", "disagree", "Δscore p95", "p95 shadow/champion", "coverage", "why"):
        table.add_column(column, overflow="fold")
    for item in gate.segments:
        e = item.evidence
        disagree = f"{e.disagreement:.1%}" if e is not None and e.disagreement is not None else "-"
        latency = (f"{e.shadow_p95 * 1000:.0f}/{e.champion_p95 * 1000:.0f} ms"
                   if e is not None and e.shadow_p95 is not None and e.champion_p95 is not None else "-")
        table.add_row(item.segment, f"{GATE_SYMBOL[item.verdict]} {item.verdict.name}",
                      f"{round(e.pairs or 0)}" if e is not None else "-", disagree,
                      f"{e.score_delta_p95:.3f}" if e is not None and e.score_delta_p95 is not None else "-",
                      latency, f"{e.coverage:.2f}" if e is not None and e.coverage is not None else "-",
                      "" if item.verdict is GateVerdict.PASS else item.reason,
                      style="red" if item.verdict is GateVerdict.FAIL else None)
    return table


def _status(status: ShadowStatus, args: argparse.Namespace) -> int:
    """Print the shadow's state; exit 0 when the gate holds, 1 otherwise (no shadow: 1)."""
    gate = status.gate
    if args.json:
        doc = {
            "schema": "rewind.shadow/1", "model": status.model, "champion": status.champion,
            "mirror": status.mirror.to_dict() if status.mirror else None, "shadow_alias": status.alias,
            "started_at": status.started_at, "problem": status.problem,
            "gate": None if gate is None else {
                "verdict": gate.verdict.value, "holds": gate.holds, "summary": gate.summary,
                "held_for_s": gate.clock.held_for if gate.clock else None,
                "window_s": gate.clock.window if gate.clock else None,
                "segments": [{
                    "segment": s.segment, "verdict": s.verdict.value, "reason": s.reason,
                    "criteria": [{"criterion": c.criterion, "verdict": c.verdict.value if c.verdict else None,
                                  "reason": c.reason} for c in s.criteria],
                    "evidence": None if s.evidence is None else {
                        **s.evidence.__dict__, "coverage": s.evidence.coverage,
                        "disagreement": s.evidence.disagreement},
                } for s in gate.segments],
            },
        }
        json.dump(doc, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return 0 if gate is not None and gate.holds else 1
    console = Console()
    if status.mirror is None:
        console.print(f"{status.model}: no shadow (champion v{status.champion}). "
                      "Start one with `rewind shadow start --version V`.")
        return 1
    console.print(Text(f"{status.model}: {status.mirror.describe()}; champion v{status.champion}", style="bold"))
    if status.problem:
        console.print(Text(status.problem, style="yellow"))
    if gate is not None:
        console.print(_gate_table(gate))
        console.print(Text(gate.summary, style="green" if gate.holds else "yellow"))
    return 0 if gate is not None and gate.holds else 1
