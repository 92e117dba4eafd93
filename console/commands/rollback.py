"""``rewind rollback`` and ``rewind undo``: preview, confirm, apply, verify, report each system's state."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.text import Text

from console.domain.errors import UsageError
from console.domain.rollback import Mode, Plan
from console.rendering import render_preview
from console.services.journal import Placement
from console.services.rollback import Outcome, Preview, RefusedError, RollbackService


def confirm(model: str, console: Console) -> bool:
    """Ask the responder to type the model's name (GitHub's danger-zone pattern)."""
    if not sys.stdin.isatty():
        raise UsageError("confirmation needs a terminal to type the model name in; pass --yes for automation")
    console.print(f"Type the model name ([bold]{model}[/bold]) to apply, anything else to cancel: ", end="")
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip() == model


def report(console: Console, outcome: Outcome) -> None:
    """Say what happened and the state each system is in now."""
    style = {"applied": "green", "verified": "green", "already_applied": "yellow"}.get(outcome.status, "bold red")
    console.print(Text(outcome.message, style=style))
    if not outcome.weights and not outcome.aliases:  # a feature rollback: the router and aliases are not its part
        tags = outcome.evidence.get("tags")
        if isinstance(tags, dict) and tags:
            shown = ", ".join(f"v{v}: {t or 'unset'}" for v, t in sorted(tags.items()))
            console.print(f"  registry tags now    {shown}")
        return
    weights = ", ".join(f"v{v}: {w}" for v, w in sorted(outcome.weights.items()))
    aliases = ", ".join(f"{a} → v{v}" for a, v in sorted(outcome.aliases.items())) or "none"
    console.print(f"  router weights now  {weights}")
    console.print(f"  registry aliases now {aliases}")


def _require_confirmation_channel(args: argparse.Namespace, preview: Preview | None = None) -> None:
    """Refuse before anything is journaled when a confirmation is needed and nobody could type it.

    A plan that changes nothing (the same command run again) asks for nothing, so
    a script may rerun it without ``--yes``. Without a preview (an approval), a
    confirmation is always needed.
    """
    if not ((preview is not None and preview.plan.is_noop) or args.yes or args.read_only or sys.stdin.isatty()):
        raise UsageError("confirmation needs a terminal to type the model name in; pass --yes for automation")


def _placement(service: RollbackService, args: argparse.Namespace, model: str, summary: str) -> Placement:
    """Where this rollback is journaled: ``--incident``, ``--new-incident``, else the model's open incident."""
    return service.journal.place(model, args.severity, summary, args.incident, args.new_incident)


def _say_where(console: Console, placement: Placement) -> None:
    console.print(Text(placement.message(), style="cyan"))


def _recover(service: RollbackService, console: Console) -> None:
    from console.adapters.identity import holder_alive

    for line in service.recover(holder_alive):
        console.print(Text(f"recovered an interrupted action: {line}", style="yellow"))


class _CommandLineFace:
    """The command line's part in carrying out an action: typed confirmation, progress as lines."""

    def __init__(self, console: Console, args: argparse.Namespace) -> None:
        self.console = console
        self.quiet = bool(args.json)  # JSON on standard output: progress lines only where they warn

    def placed(self, placement: Placement) -> None:
        if placement.incident_id:
            _say_where(self.console, placement)
        else:
            why = "--new-incident" if placement.requested_new else f"{placement.model} has no open incident"
            self.console.print(f"nothing changed, so no incident opened and nothing journaled ({why})")

    def evidence(self, breaching: int | None, problem: str | None) -> None:
        if problem is not None:
            self.console.print(Text(f"evidence not recorded (metrics unavailable): {problem}", style="yellow"))
        elif not self.quiet:
            self.console.print(f"Evidence journaled: the metric catalogue now shows {breaching} breaching cell(s).")

    def confirm(self, plan: Plan) -> str | None:
        return "typed the model name" if confirm(plan.model, self.console) else None

    def waiting_for_approval(self, plan: Plan, timeout_s: float) -> None:
        self.console.print(Text(f"{plan.model} needs a second person: waiting up to {timeout_s:g}s "
                                f"for another user to run `rewind approve {plan.action_id}`", style="yellow"))

    def approved(self, approver: str) -> None:
        self.console.print(f"approved by {approver}")

    def tags_not_written(self, problem: str) -> None:
        if not self.quiet:
            self.console.print(Text(f"version tags not written (the journal has the record): {problem}",
                                    style="yellow"))

    def verifying(self, window_s: float) -> None:
        if not self.quiet:
            self.console.print(f"Verifying for {window_s:g}s…")


def _carry_out(service: RollbackService, preview: Preview, placement: Placement, args: argparse.Namespace,
               console: Console, title: str, second_person: bool = False) -> int:
    """Show the preview, then drive the one action procedure (console/services/actions.py) from the command line."""
    from console.services.actions import ActionOptions, carry_out

    if not args.json:
        console.print(render_preview(preview, title))
    options = ActionOptions(confirmed_by="--yes" if args.yes else None, read_only=bool(args.read_only),
                            verify=not args.no_verify, force=bool(getattr(args, "force", False)),
                            second_person=second_person)
    result = carry_out(service, preview, placement, _CommandLineFace(console, args), options)
    if result.cancelled:
        console.print("Cancelled: nothing changed.")
        return 1
    return _finish(preview.plan, result.placement, args, console, result.outcomes)


def _finish(plan: Plan, placement: Placement, args: argparse.Namespace, console: Console,
            results: list[Outcome]) -> int:
    """Report every outcome (as JSON with --json); the exit code follows the last one."""
    outcome = results[0]
    incident_id = placement.incident_id
    if args.json:
        # incident_id is null when nothing was journaled (a plan that changed nothing, no open incident).
        json.dump({"schema": "rewind.action/1", "incident_id": incident_id, "plan": plan.to_dict(),
                   "outcomes": [o.__dict__ for o in results], "incident_joined": placement.joined,
                   "incident_opened": placement.how == "opened"}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        for result in results:
            report(console, result)
        if outcome.status == "applied":
            console.print(f"Incident {incident_id}. Undo with: rewind undo {plan.action_id}")
    return 0 if results[-1].status in ("applied", "verified", "already_applied") else 1


def _service(args: argparse.Namespace) -> tuple[RollbackService, str | None]:
    """The rollback service, and the model named by ``--model`` or the config's default."""
    from console.config import load_config
    from console.wiring import build_rollback_service, for_model

    loaded = load_config(getattr(args, "config", None))
    model = None
    if hasattr(args, "model"):
        loaded, model = for_model(loaded, args.model)
    return build_rollback_service(loaded), model


def run(args: argparse.Namespace) -> int:
    """``rewind rollback``."""
    service, model = _service(args)
    if model is None:  # unreachable: model_or_default raises first; narrows the type
        raise UsageError("no model given: pass --model NAME or set default_model in the config")
    console = Console(stderr=args.json)
    try:
        _recover(service, console)
        preview = service.preview(model, args.from_version, args.to, Mode.GRADUAL if args.gradual else Mode.IMMEDIATE,
                                  args.reason or "", named_by="chosen with --to")
        _require_confirmation_channel(args, preview)
        summary = args.reason or f"rollback of {model}: v{preview.plan.leave} → v{preview.plan.target}"
        return _carry_out(service, preview, _placement(service, args, model, summary), args, console, "Rollback")
    finally:
        service.journal.close()


def run_undo(args: argparse.Namespace) -> int:
    """``rewind undo ACTION_ID``."""
    service, _ = _service(args)
    console = Console(stderr=args.json)
    try:
        _recover(service, console)
        placement = service.undo_placement(args.action_id, args.severity, args.incident, args.new_incident)
        preview, _ = service.undo_preview(args.action_id, args.reason or "", placement)
        _require_confirmation_channel(args, preview)
        return _carry_out(service, preview, placement, args, console, "Undo")
    finally:
        service.journal.close()


def run_recover(args: argparse.Namespace) -> int:
    """``rewind recover``: journal what happened to actions a console left unfinished."""
    from console.adapters.identity import holder_alive

    service, _ = _service(args)
    try:
        lines = service.recover(holder_alive)
        for line in lines:
            print(f"recovered: {line}")
        if not lines:
            print("nothing to recover: every action in the journal has an outcome")
        return 0
    finally:
        service.journal.close()


def run_approve(args: argparse.Namespace) -> int:
    """``rewind approve ACTION_ID``: a second person approves a pending action."""
    _require_confirmation_channel(args)
    service, _ = _service(args)
    console = Console()
    try:
        from console.services.approvals import approval_preview

        if args.read_only:
            raise RefusedError("refused: a --read-only console cannot approve")
        incident_id, preview, requester = approval_preview(service, args.action_id)
        plan = preview.plan
        console.print(render_preview(preview, "Approve"))
        # The approval goes where the request is: the requesting console watches that incident.
        console.print(Text(f"recording in incident {incident_id}, where {requester}'s request is", style="cyan"))
        if not args.yes and not confirm(plan.model, console):
            console.print("Not approved.")
            return 1
        service.approve(args.action_id, args.reason or "")
        console.print(f"approved {args.action_id} for {requester} (incident {incident_id})")
        return 0
    finally:
        service.journal.close()
