"""``rewind playbook list|validate|run``: find, check and run playbooks from the command line.

``run`` drives the one runner (:mod:`console.services.playbooks`) the console's
walkthrough drives too. Without a terminal every answer comes from the answers
file (``--answers``): a missing one stops the run, says which, and leaves it
resumable; it never waits for a prompt nobody can see.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markdown import Markdown
from rich.panel import Panel
from rich.text import Text

from console.domain.errors import ConfigError, UsageError
from console.domain.playbook import Step
from console.domain.playbook_run import CheckOutcome
from console.domain.rollback import Plan
from console.services.journal import Placement
from console.services.playbooks import AnswerMissing, ChoiceAnswer, HumanTimeout

if TYPE_CHECKING:
    from console.adapters.playbook_files import FileCheck
    from console.config import LoadedConfig
    from console.services.actions import ActionFace
    from console.services.playbooks import PlaybookRunner
    from console.services.rollback import Preview

MAX_PROBLEMS_SHOWN = 200
"""Problems printed per file: a hostile file can hold tens of thousands."""

TONES = {"info": "", "good": "green", "warn": "yellow", "bad": "bold red"}


# -- finding playbooks -----------------------------------------------------------------------------

def _optional_config(args: argparse.Namespace) -> LoadedConfig | None:
    """The config when one is named or found; ``None`` when there is none at all (validate still works)."""
    from console.config import load_config

    try:
        return load_config(getattr(args, "config", None))
    except ConfigError as exc:
        if getattr(args, "config", None) or "no config found" not in str(exc):
            raise
        return None


# -- validate and list -----------------------------------------------------------------------------

VALIDATE_SCHEMA = "rewind.playbook-validate/1"
"""The schema of ``rewind playbook validate --json``: fields are only ever added to it."""


def run_validate(args: argparse.Namespace) -> int:
    """``rewind playbook validate FILE...|--all [--json]``: every problem in every file; exit 0 when all are valid."""
    from console.wiring import build_playbook_source

    if bool(args.files) == bool(args.all):
        raise UsageError("playbook validate: give playbook files, or --all for every playbook of the configured "
                         "directories" + (", not both" if args.all else ""))
    loaded = _optional_config(args)
    source = build_playbook_source(loaded)
    if loaded is None:
        print("rewind: no config found: metric, endpoint and webhook names are not checked "
              "(pass --config to check them)", file=sys.stderr)
    checks = source.check_library() if args.all else source.check_files([Path(name) for name in args.files])
    if not checks:
        raise UsageError(f"playbook validate --all: no playbook files in {source.describe()}")
    if args.json:
        _print_validation(checks, names_checked=loaded is not None)
    else:
        names = args.files or [str(check.path) for check in checks]
        for name, check in zip(names, checks, strict=True):
            for problem in check.problems[:MAX_PROBLEMS_SHOWN]:
                print(problem)
            if len(check.problems) > MAX_PROBLEMS_SHOWN:
                print(f"{name}: … and {len(check.problems) - MAX_PROBLEMS_SHOWN} more problems (fix these first)")
            if check.ok and check.loaded is not None:
                playbook = check.loaded.playbook
                print(f"{name}: ok ({playbook.id} v{playbook.version}, {len(playbook.steps)} steps)")
    bad = sum(not check.ok for check in checks)
    if bad:
        print(f"{bad} of {len(checks)} file(s) invalid", file=sys.stderr)
    return 1 if bad else 0


def _print_validation(checks: Sequence[FileCheck], *, names_checked: bool) -> None:
    """The ``rewind.playbook-validate/1`` document: each file with its id, version, verdict and problems."""
    files = []
    for check in checks:
        playbook = check.loaded.playbook if check.loaded is not None else None
        files.append({
            "file": str(check.path),
            "id": playbook.id if playbook is not None else None,
            "version": playbook.version if playbook is not None else None,
            "ok": check.ok,
            "error_count": len(check.problems),
            "errors": [problem.as_dict() for problem in check.problems[:MAX_PROBLEMS_SHOWN]],
        })
    document = {"schema": VALIDATE_SCHEMA, "ok": all(check.ok for check in checks), "names_checked": names_checked,
                "files": files}
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def run_list(args: argparse.Namespace) -> int:
    """``rewind playbook list [--model M]``: the playbooks that apply, best match first, with why."""
    from console.wiring import build_playbook_source

    loaded = _optional_config(args)
    if loaded is None and args.model:
        raise ConfigError("no config found: pass --config FILE (ranking by verdicts needs the systems)")
    source = build_playbook_source(loaded)
    valid, problems = source.load()
    console = Console()
    for problem in problems:
        console.print(Text(f"skipped (invalid): {problem}", style="yellow"))
    if not valid and not problems:
        console.print(f"no playbooks found in {source.describe()}", soft_wrap=True, markup=False)
        return 0
    if not args.model:
        for playbook in (loaded_playbook.playbook for loaded_playbook in valid):
            models = ", ".join(playbook.models)
            console.print(f"[bold]{playbook.id}[/bold] v{playbook.version}  {playbook.title}  [dim](models: "
                          f"{models}; {len(playbook.steps)} steps)[/dim]")
        return 0
    assert loaded is not None
    runner = _runner(loaded)
    try:
        ranked = runner.rank([loaded_playbook.playbook for loaded_playbook in valid], args.model)
    finally:
        runner.rollback.journal.close()
    if not ranked:
        console.print(f"no playbook is written for {args.model}")
        return 0
    for playbook, match in ranked:
        score = f"{match.met}/{match.of}" if match.of else "-"
        console.print(f"[bold]{playbook.id}[/bold] v{playbook.version}  {playbook.title}  [dim]matches {score}[/dim]")
        for reason in match.reasons:
            console.print(f"    {reason}", style="green" if reason.startswith("✓") else "dim")
    return 0


def _runner(loaded: LoadedConfig) -> PlaybookRunner:
    from console.wiring import build_playbook_runner

    return build_playbook_runner(loaded)


# -- run -----------------------------------------------------------------------------------------

def read_answers(path: str | None) -> dict[str, dict[str, Any]]:
    """The answers file: step id -> ``{option, reason}`` for a choice, ``{confirm: true}`` for an action.

    Raises:
        UsageError: unreadable, not YAML, or not a mapping of mappings.
    """
    if path is None:
        return {}
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"answers file {path}: cannot be read ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise UsageError(f"answers file {path}: {where}not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(f"answers file {path}: expected step ids, each with a mapping such as "
                         "{option: ID, reason: TEXT} or {confirm: true}")
    return {str(k): v for k, v in data.items()}


def _timed_input(prompt: str, timeout_s: float, console: Console) -> str:
    """A line typed at the terminal, or :class:`HumanTimeout` after ``timeout_s`` seconds."""
    console.print(prompt, end="")
    ready, _, _ = select.select([sys.stdin], [], [], max(timeout_s, 0.0))
    if not ready:
        console.print()
        raise HumanTimeout(prompt)
    line = sys.stdin.readline()
    if not line:
        raise HumanTimeout(prompt)
    return line.strip()


class _LineFace:
    """The command line's part in a run: answers from the file (or typed at a terminal), progress as lines."""

    def __init__(self, console: Console, answers: Mapping[str, Mapping[str, Any]], source: str | None,
                 model: str, interactive: bool) -> None:
        self.console = console
        self.answers = answers
        self.source = source or "the answers file (--answers)"
        self.model = model
        self.interactive = interactive

    def _missing(self, step: Step, wanted: str) -> AnswerMissing:
        return AnswerMissing(f"missing answer for step {step.id!r} ({step.kind.value}): give `{step.id}: {wanted}` "
                             f"in {self.source}, then run the same command to resume")

    def entering(self, step: Step, visit: int, text: str) -> None:
        again = f" (visit {visit})" if visit > 1 else ""
        self.console.rule(f"[bold]{step.id}[/bold] · {step.kind.value}{again}" + (f" · {step.title}"
                                                                                if step.title else ""), align="left")
        if text.strip():
            self.console.print(Markdown(text))

    def said(self, text: str, tone: str = "info") -> None:
        self.console.print(Text(text, style=TONES.get(tone, "")))

    def checked(self, step: Step, outcome: CheckOutcome) -> None:
        style = {"pass": "green", "fail": "bold red"}.get(outcome.branch, "yellow")
        judged = step.metric or f"the {step.gate} gate"
        self.console.print(Text(f"check {judged}: {outcome.branch.upper()} — {outcome.reason}", style=style))

    def choose(self, step: Step, prompt: str, timeout_s: float) -> ChoiceAnswer:
        given = self.answers.get(step.id)
        options = "|".join(o.id for o in step.options)
        if given is not None:
            return ChoiceAnswer(str(given.get("option", "")), str(given.get("reason", "")))
        if not self.interactive:
            raise self._missing(step, f"{{option: {options}, reason: TEXT}}")
        self.console.print(Text(prompt, style="bold"))
        for option in step.options:
            self.console.print(f"  {option.id}: {option.label}")
        chosen = _timed_input(f"option ({options}): ", timeout_s, self.console)
        reason = _timed_input("reason: ", timeout_s, self.console)
        return ChoiceAnswer(chosen, reason)

    def _confirmed(self, step: Step, timeout_s: float) -> str | None:
        given = self.answers.get(step.id)
        if given is not None:
            value = given.get("confirm")
            return f"answers file {self.source}" if value is True or value == self.model else None
        if not self.interactive:
            raise self._missing(step, "{confirm: true}")
        typed = _timed_input(f"Type the model name ({self.model}) to apply, anything else to cancel: ", timeout_s,
                             self.console)
        return "typed the model name" if typed == self.model else None

    def action_face(self, step: Step, preview: Preview | None, timeout_s: float) -> ActionFace:
        from console.rendering import render_preview

        if preview is not None:
            self.console.print(render_preview(preview, step.title or step.id))
        return _ActionLines(self, step, timeout_s)

    def confirm_change(self, step: Step, description: str, timeout_s: float) -> str | None:
        self.console.print(f"{step.id} will {description}")
        return self._confirmed(step, timeout_s)

    def notification(self, step: Step, channel: str, text: str, delivery: str) -> None:
        self.console.print(Panel(text or "(empty)", title=f"notification · {channel}", expand=False))
        self.console.print(Text(delivery, style="green" if delivery.startswith("posted") else "yellow"))


class _ActionLines:
    """An action's confirmation and progress on the command line, inside a run."""

    def __init__(self, face: _LineFace, step: Step, timeout_s: float) -> None:
        self.face = face
        self.step = step
        self.timeout_s = timeout_s

    def placed(self, placement: Placement) -> None:
        pass  # the run said where its events go when it started

    def evidence(self, breaching: int | None, problem: str | None) -> None:
        if problem is not None:
            self.face.said(f"evidence not recorded (metrics unavailable): {problem}", "warn")
        else:
            self.face.said(f"evidence journaled: {breaching} breaching cell(s) now")

    def confirm(self, plan: Plan) -> str | None:
        return self.face._confirmed(self.step, self.timeout_s)

    def waiting_for_approval(self, plan: Plan, timeout_s: float) -> None:
        self.face.said(f"{plan.model} needs a second person: waiting up to {timeout_s:g}s for "
                       f"`rewind approve {plan.action_id}`", "warn")

    def approved(self, approver: str) -> None:
        self.face.said(f"approved by {approver}", "good")

    def tags_not_written(self, problem: str) -> None:
        self.face.said(f"version tags not written (the journal has the record): {problem}", "warn")

    def verifying(self, window_s: float) -> None:
        self.face.said(f"applied; verifying for {window_s:g}s…")


def run_run(args: argparse.Namespace) -> int:
    """``rewind playbook run ID --model M``: start (or resume) a run and carry it out."""
    from console.config import load_config
    from console.wiring import for_model

    loaded, model = for_model(load_config(getattr(args, "config", None)), args.model)
    answers = read_answers(args.answers)
    runner = _runner(loaded)
    assert runner.source is not None
    found = runner.source.find(args.playbook)
    playbook, text = found.playbook, found.text
    console = Console()
    interactive = args.answers is None and sys.stdin.isatty() and not args.dry_run
    face = _LineFace(console, answers, args.answers, model, interactive)

    try:
        unfinished = [] if args.dry_run else runner.unfinished(model, playbook.id)
        if unfinished:
            state = unfinished[-1]
            run = runner.resume(state, yes=args.yes)
            console.print(Text(f"resuming run {state.run_id} of {state.playbook_id} in incident "
                               f"{state.incident_id} at step {state.current} (started {state.started_at} by "
                               f"{state.started_by})", style="cyan"))
        else:
            run = runner.start(playbook, text, model, dry_run=args.dry_run, yes=args.yes)
            where = "dry run: nothing is journaled or changed" if args.dry_run else \
                f"journaled in incident {run.state.incident_id}"
            inputs = ", ".join(f"{k} v{v}" for k, v in run.state.inputs.items())
            console.print(Text(f"run {run.state.run_id}: {playbook.id} v{playbook.version} on {model} ({inputs}); "
                               f"{where}", style="cyan"))
        end = runner.drive(run, face)
    finally:
        runner.rollback.journal.close()
    if end.stopped:
        print(f"rewind: run {end.state.run_id} stopped at step {end.state.current}: {end.stopped}", file=sys.stderr)
        return 1
    outcome = end.state.finished or "?"
    console.print(Text(f"run {end.state.run_id} ended: {outcome}", style="bold green" if end.as_planned
                       else "bold red"))
    return 0 if end.as_planned else 1


def run(args: argparse.Namespace) -> int:
    """``rewind playbook ...``."""
    handler = {"list": run_list, "validate": run_validate, "run": run_run}[args.playbook_command]
    return handler(args)
