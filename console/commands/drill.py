"""``rewind drill PLAYBOOK``: rehearse a playbook on a sandbox or staging setup, journaled as a drill.

With ``--scenario`` the drill injects the sandbox's fault, waits for the breach,
runs the playbook headless (answers from ``--answers``, confirmations with
``--yes``), then puts back everything it changed and prints each recovery phase
as the journal timed it. The drill's incident is kept apart from real ones;
``rewind stats --drills`` and ``rewind ready`` read it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from console.commands.playbook import _LineFace, _runner, read_answers
from console.domain.errors import UsageError
from console.domain.recovery import Phase, recovery_of
from console.domain.rollback import Plan
from console.services.journal import Placement


class _RestoreLines:
    """The restore's undos on the command line: confirmed by the drill itself, each said in one line."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def placed(self, placement: Placement) -> None:
        pass

    def evidence(self, breaching: int | None, problem: str | None) -> None:
        pass

    def confirm(self, plan: Plan) -> str | None:
        return "the drill's own restore"

    def waiting_for_approval(self, plan: Plan, timeout_s: float) -> None:
        self.console.print(f"restore: {plan.model} needs a second person: `rewind approve {plan.action_id}`")

    def approved(self, approver: str) -> None:
        self.console.print(f"restore approved by {approver}")

    def tags_not_written(self, problem: str) -> None:
        self.console.print(f"restore: version tags not written: {problem}")

    def verifying(self, window_s: float) -> None:
        pass


def _sandbox_dir(args: argparse.Namespace, config_path: Path) -> Path | None:
    """The sandbox to inject faults into: ``--dir``, else the config's own directory when a sandbox wrote it."""
    if args.dir:
        return Path(args.dir).expanduser()
    return config_path.parent if (config_path.parent / "state.json").exists() else None


def run(args: argparse.Namespace) -> int:
    """``rewind drill PLAYBOOK [--model M] [--scenario S] [--answers F] [--yes] [--keep]``."""
    from console.config import load_config
    from console.services.drills import DrillService
    from console.wiring import for_model

    loaded, model = for_model(load_config(getattr(args, "config", None)), args.model)
    answers = read_answers(args.answers)
    faults = None
    if args.scenario:
        where = _sandbox_dir(args, loaded.path)
        if where is None:
            raise UsageError("--scenario needs a sandbox: pass --dir, or a config the sandbox wrote")
        from console.sandbox.faults import SandboxFaults

        faults = SandboxFaults(where)
    runner = _runner(loaded)
    console = Console(highlight=False)
    try:
        assert runner.source is not None
        found = runner.source.find(args.playbook)
        face = _LineFace(console, answers, args.answers, model, interactive=False)
        outcome = DrillService(runner, faults).drill(
            found.playbook, found.text, model, face, _RestoreLines(console), scenario=args.scenario, yes=args.yes,
            keep=args.keep, detect_timeout_s=args.detect_timeout, said=lambda line: console.print(Text(line,
                                                                                                       style="cyan")))
        events = runner.rollback.journal.chain(outcome.incident_id)[1]
    finally:
        runner.rollback.journal.close()
    for line in outcome.restored:
        console.print(Text(f"restore: {line}", style="cyan"))
    recovery = recovery_of(events)
    phases = recovery.phases if recovery is not None else {}
    shown = ", ".join(f"{phase.value} {phases[phase]:.1f}s" for phase in Phase if phase in phases)
    end = outcome.end
    ended = f"stopped at {end.state.current}: {end.stopped}" if end.stopped else f"ended {end.state.finished}"
    console.print(Text(f"drill {outcome.incident_id}: {found.playbook.id} {ended}; "
                       + (shown or "no rollback verified"), style="bold green" if end.as_planned else "bold red"))
    return 0 if end.as_planned and outcome.verified_after_s is not None else 1
