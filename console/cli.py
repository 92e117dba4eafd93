"""The ``rewind`` command line: parse, dispatch, and turn errors into one clear line.

Every command's implementation lives in :mod:`console.commands` and is imported
only when that command runs, so ``rewind --help`` and the TUI start at once.

Exit codes: 0 ok, 1 a check failed or an action was refused (or a system
failed), 2 usage or config error.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DISTRIBUTION = "rewind-console"
"""The package's name in its metadata (pyproject.toml's ``project.name``): ``--version`` reads it."""


def _common(parser: argparse.ArgumentParser, top: bool = False) -> None:
    # On subcommands the defaults are suppressed so they do not undo a value given before the subcommand.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="config file (default: $REWIND_CONFIG, ~/.config/rewind/config.yaml, the sandbox's)")
    parser.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="show tracebacks")


def positive_seconds(text: str) -> float:
    """A duration in seconds above zero (argparse turns the error into a usage line, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0")
    return value


def action_options(p: argparse.ArgumentParser, default_incident: str) -> None:
    """The options every confirmed action shares: confirmation, reason, incident, verification, output."""
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (automation)")
    p.add_argument("--reason", metavar="TEXT", help="why, for the journal")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--incident", metavar="ID", help=f"record in this open incident (default: {default_incident})")
    where.add_argument("--new-incident", action="store_true",
                       help="open a new incident even when the model has one open "
                            "(none is opened for a plan that changes nothing)")
    p.add_argument("--severity", default="2", help="severity of a new incident (1-4, default 2)")
    p.add_argument("--read-only", action="store_true", help="preview only: a read-only console never acts")
    p.add_argument("--no-verify", action="store_true", help="skip the verification window")
    p.add_argument("--json", action="store_true", help="print the plan and outcomes as JSON")


class _PrintVersion(argparse.Action):
    """``--version``: the installed package's version, where it runs from, and the Python running it.

    The version comes from the package metadata, read only when asked (``rewind`` itself never pays for it).
    """

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from importlib.metadata import PackageNotFoundError, version
        from pathlib import Path

        try:
            number = version(DISTRIBUTION)
        except PackageNotFoundError:
            number = "(not installed: run from a source tree)"
        where = Path(__file__).resolve().parent
        print(f"rewind {number} from {where} (Python {sys.version.split()[0]})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``rewind`` command."""
    parser = argparse.ArgumentParser(
        prog="rewind",
        description="Rewind: the incident console for ML model rollbacks.",
    )
    _common(parser, top=True)
    parser.add_argument("--version", action=_PrintVersion, help="print the version and where it runs from, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, handler: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _common(p)
        p.set_defaults(handler=handler)
        return p

    def console_options(p: argparse.ArgumentParser, with_model: bool = True) -> None:
        if with_model:
            p.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
        p.add_argument("--read-only", action="store_true", help="never act: the acting keys are not shown")
        p.add_argument("--theme", metavar="T", help="rewind-dark (default), rewind-light, rewind-high-contrast, "
                       "rewind-colour-blind, ansi-dark, ansi-light (the terminal's own palette), ...")
        p.add_argument("--mouse", action="store_true", help="enable the mouse (off by default: it costs bytes "
                       "over SSH and breaks terminal selection)")

    p = command("tui", "the console: live matrix, confirmed rollbacks, timeline (also: rewind with no command)",
                "console.commands.tui:run")
    console_options(p)

    p = command("status", "aliases, router weights and judged metrics of one model", "console.commands.status:run")
    p.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
    p.add_argument("--json", action="store_true", help="print the stable JSON document (schema rewind.status/1)")
    p.add_argument("--explain", action="store_true", help="also print every metric's PromQL and each cell's reason")
    p.add_argument("--fleet", action="store_true", help="every configured (or discovered) model's state, worst "
                   "first, as the console's fleet view shows it (with --json: schema rewind.fleet/1)")
    p.add_argument("--watch", type=float, metavar="SECONDS", nargs="?", const=2.0,
                   help="refresh every SECONDS (default 2) until Ctrl-C")

    p = command("sandbox", "a real local environment: MLflow, model servers, HAProxy, Prometheus, Alertmanager, "
                "traffic", "console.commands.sandbox:run")
    sandbox = p.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
    for name, text in (("up", "start the sandbox (does nothing if it is running)"),
                       ("down", "stop every process the sandbox started"),
                       ("status", "what is running, where, with which pids"),
                       ("scenario", "switch the failure scenario")):
        sp = sandbox.add_parser(name, help=text, description=text)
        _common(sp)
        sp.add_argument("--dir", metavar="D",
                        help="state directory (default: $REWIND_SANDBOX_DIR or ~/.local/state/rewind/sandbox)")
        if name == "status":
            sp.add_argument("--json", action="store_true", help="print a JSON document")
        if name == "scenario":
            from console.sandbox.names import SCENARIOS  # the one list, in a module of its own: no import cost

            sp.add_argument("name", choices=SCENARIOS)
            sp.add_argument("--version", metavar="V",
                            help="aim the fault at this version (default: the challenger for regression, latency "
                                 "and outage; the champion for broken-predictions and champion-down; the shadow "
                                 "for shadow-disagree and shadow-slow)")
        if name == "down":
            sp.add_argument("--purge", action="store_true", help="also delete the state directory")
        if name == "up":
            sp.add_argument("--rate", type=float, default=None, help="requests per second of generated traffic")
            sp.add_argument("--models", type=int, default=None, metavar="N",
                            help="serve N models (fraud-detector, fraud-detector-2, ...) so the console opens on "
                                 "the fleet view (default: as the sandbox last ran, else 1); scenarios hit the first")

    for name, text, handler in (
        ("rollback", "preview, confirm and apply a rollback across router and registry, then verify it",
         "console.commands.rollback:run"),
        ("undo", "reverse an applied action, as its own confirmed, journaled action",
         "console.commands.rollback:run_undo"),
    ):
        p = command(name, text, handler)
        if name == "rollback":
            p.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
            p.add_argument("--from", dest="from_version", metavar="VERSION",
                           help="the version to leave (default: the challenger when it takes traffic, "
                                "else the champion)")
            p.add_argument("--to", metavar="VERSION",
                           help="the version to go back to (default: the champion, else the previous champion)")
            p.add_argument("--gradual", action="store_true", help="step the weights down, each step gated on metrics")
            p.add_argument("--force", action="store_true", help="apply even when the model signatures differ")
        else:
            p.add_argument("action_id", metavar="ACTION_ID", help="the action to reverse (act-...)")
        action_options(p, "the model's most recent open incident, else a new one" if name == "rollback"
                       else "the undone action's incident while it is open, else the model's most recent open "
                            "incident, else a new one")

    p = command("shadow", "shadow + promote: mirror the champion's requests to a version, judge it, stop it",
                "console.commands.shadow:run")
    shadow = p.add_subparsers(dest="shadow_command", metavar="ACTION", required=True)
    for name, text in (("start", "put a version in shadow of the champion (registry alias and router mirror)"),
                       ("stop", "stop the mirror and remove the shadow alias"),
                       ("status", "the mirror, and the promotion gate per segment with its clock")):
        sp = shadow.add_parser(name, help=text, description=text)
        _common(sp)
        sp.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
        if name == "start":
            sp.add_argument("--version", required=True, metavar="V", help="the version to put in shadow")
            sp.add_argument("--percent", type=int, default=100, metavar="P",
                            help="share of the champion's answered requests to copy (1-100, default 100)")
        if name == "status":
            sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.shadow/1)")
        else:
            action_options(sp, "the model's most recent open incident, else a new one")

    p = command("fallback", "the fallback that keeps serving: readiness, engage, restore, drill",
                "console.commands.fallback:run")
    fallback = p.add_subparsers(dest="fallback_command", metavar="ACTION", required=True)
    for name, text in (("status", "is the fallback ready, does it serve now (journals an engagement the router made)"),
                       ("engage", "take the serving primaries out: the fallback answers"),
                       ("restore", "put the primaries taken out back in service"),
                       ("drill", "engage for a few seconds, count what callers got, restore, journal the result")):
        sp = fallback.add_parser(name, help=text, description=text)
        _common(sp)
        sp.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
        if name == "status":
            sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.fallback/1)")
            continue
        if name == "drill":
            sp.add_argument("--seconds", type=positive_seconds, default=10.0, metavar="N",
                           help="how long (default 10)")
        action_options(sp, "the model's most recent open incident, else a new one")

    p = command("features", "which feature versions each model version consumes; diagnose; roll the features back",
                "console.commands.features:run")
    features = p.add_subparsers(dest="features_command", metavar="ACTION", required=True)
    for name, text in (("status", "declared and observed bindings, input health, and the diagnosis"),
                       ("diff", "the transformation's diff between two versions of a feature view"),
                       ("rollback", "repoint the model to its features' previous transformation; the model stays")):
        sp = features.add_parser(name, help=text, description=text)
        _common(sp)
        sp.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
        sp.add_argument("--view", metavar="VIEW", help="the feature view (default: the service's only one)")
        if name == "status":
            sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.features/1)")
        elif name == "diff":
            sp.add_argument("--from", dest="old", metavar="VERSION",
                            help="the older version (default: what a rollback would go back to)")
            sp.add_argument("--to", dest="new", metavar="VERSION", help="the newer version (with --from and --view)")
        else:
            sp.add_argument("--to", metavar="VERSION",
                            help="the view version to go back to (default: the newest earlier one with other code)")
            sp.add_argument("--global", dest="whole_view", action="store_true",
                            help="move the view's active version back for every consumer (listed in the preview)")
            action_options(sp, "the model's most recent open incident, else a new one")

    p = command("promote", "promote the shadow once its gate held (or revert the latest promotion)",
                "console.commands.shadow:run_promote")
    p.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
    p.add_argument("--revert", nargs="?", const="latest", metavar="ACTION_ID",
                   help="revert a promotion (default: the latest): champion alias, traffic and mirror back")
    p.add_argument("--override-gate", action="store_true",
                   help="promote although the gate has not held (needs --reason and a second person's approval)")
    action_options(p, "the model's most recent open incident, else a new one")

    p = command("approve", "approve another user's pending action (two-person rule)",
                "console.commands.rollback:run_approve")
    p.add_argument("action_id", metavar="ACTION_ID")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--reason", metavar="TEXT", help="why, for the journal")
    p.add_argument("--read-only", action="store_true", help="a read-only console never approves")

    p = command("drill", "rehearse a playbook on a sandbox or staging setup, journaled as a drill, then put back",
                "console.commands.drill:run")
    p.add_argument("playbook", metavar="PLAYBOOK", help="a playbook id or file")
    p.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
    from console.sandbox.names import SCENARIOS  # the one list, in a module of its own: no import cost

    p.add_argument("--scenario", choices=SCENARIOS[1:], help="inject this sandbox fault first, wait for the breach")
    p.add_argument("--dir", metavar="D", help="the sandbox's state directory (default: the config's own)")
    p.add_argument("--answers", metavar="FILE", help="the answers to the playbook's choices (YAML, as playbook run)")
    p.add_argument("--yes", action="store_true", help="confirm the playbook's actions without asking")
    p.add_argument("--keep", action="store_true", help="leave the fault and the changes in place afterwards")
    p.add_argument("--detect-timeout", type=positive_seconds, default=300.0, metavar="SECONDS",
                   help="give up when the judge shows no breach this long after the fault (default 300)")

    p = command("ready", "could each model be rolled back now? every condition measured (exit 0 ready, 1 not, "
                "2 unknown)", "console.commands.ready:run")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
    which.add_argument("--all", action="store_true", help="every model the router serves")
    p.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.readiness/1)")
    p.add_argument("--waive", metavar="CONDITION", help="journal a waiver of this condition (with --reason, --days)")
    p.add_argument("--reason", metavar="TEXT", help="why the condition may be waived")
    p.add_argument("--days", type=float, default=7.0, metavar="N",
                   help="how long the waiver lasts, in days (default 7, at most 90)")

    p = command("recover", "find actions a console left unfinished, read the real state, journal what happened",
                "console.commands.rollback:run_recover")

    p = command("demo", "start the sandbox if needed and open the console on it", "console.commands.demo:run")
    p.add_argument("--dir", metavar="D", help="sandbox state directory")
    console_options(p, with_model=False)

    p = command("playbook", "incident playbooks: list those that apply, validate files, run one (headless)",
                "console.commands.playbook:run")
    playbook = p.add_subparsers(dest="playbook_command", metavar="ACTION", required=True)
    sp = playbook.add_parser("list", help="the playbooks; with --model, ranked by the current verdicts, with why",
                             description="List the playbooks; with --model, those that apply to the model, best "
                                         "match of their entry conditions on the current verdicts first.")
    _common(sp)
    sp.add_argument("--model", "-m", help="rank for this model's current verdicts")
    sp = playbook.add_parser("validate", help="check playbook files: every problem, as file:line:col (exit 1)",
                             description="Check playbook files (or --all: every playbook of the configured "
                                         "directories) and print every problem as file:line:col: path: message. "
                                         "Exit 0 when every file is valid, 1 otherwise.")
    _common(sp)
    sp.add_argument("files", nargs="*", metavar="FILE")
    sp.add_argument("--all", action="store_true", help="every playbook of the configured directories")
    sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.playbook-validate/1)")
    sp = playbook.add_parser("run", help="run a playbook headless (or resume its unfinished run)",
                             description="Run a playbook step by step, printing each step; choices and "
                                         "confirmations come from --answers (or are typed at a terminal). An "
                                         "unfinished run of the same playbook in the model's open incident is "
                                         "resumed where it stopped. Exit 0 when it ended as planned, 1 otherwise.")
    _common(sp)
    sp.add_argument("playbook", metavar="ID", help="the playbook's id (or its file)")
    sp.add_argument("--model", "-m", help="registered model name (default: default_model from the config)")
    sp.add_argument("--answers", metavar="FILE", help="YAML: step id -> {option, reason} or {confirm: true}")
    sp.add_argument("--yes", action="store_true", help="confirm every action without asking (automation)")
    sp.add_argument("--dry-run", action="store_true", help="change nothing, journal nothing: say per action "
                    "what it would do")

    p = command("alerts", "Alertmanager's webhook: alerts open or join the model's incident, with a playbook "
                "suggested", "console.commands.alerts:run")
    alerts = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
    sp = alerts.add_parser("serve", help="take Alertmanager's webhook (POST /alerts) into the journal, until stopped",
                           description="Serve Alertmanager's webhook (payload version 4) at POST /alerts: a firing "
                                       "alert opens or joins its model's incident with a suggested playbook, a "
                                       "resolved one adds a note; repeats add nothing. Answers 2xx only once "
                                       "journaled. Stops cleanly on SIGTERM or SIGINT.")
    _common(sp)
    sp.add_argument("--listen", metavar="HOST:PORT", help="where to listen (default: alerts.listen, 127.0.0.1:9095)")
    sp.add_argument("--token-file", metavar="FILE",
                    help="a file holding the bearer token requests must carry (default: alerts.token_file)")
    sp = alerts.add_parser("list", help="the alerts journaled in the open incidents, with the playbook and why",
                           description="The alerts journaled in the open incidents, one line per episode "
                                       "(fingerprint and start), its latest status, and the suggested playbook "
                                       "with why.")
    _common(sp)
    sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.alerts/1)")

    p = command("journal", "the decision journal: verify its hash chains", "console.commands.journal:run")
    journal = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    sp = journal.add_parser("verify", help="detect edited, deleted, reordered or inserted events (exit 1)",
                            description="Verify every incident's hash chain (or one's) and name the first bad event.")
    _common(sp)
    sp.add_argument("--incident", metavar="ID", help="verify this incident only")
    sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.verify/1)")

    p = command("stats", "speed to rollback from the journal: phases per model and playbook, open incidents, trend",
                "console.commands.stats:run")
    p.add_argument("--model", "-m", help="only this model's incidents")
    p.add_argument("--since", default="90d", metavar="WINDOW",
                   help="incidents opened in the last WINDOW (default 90d; also 12h, 2w, 1y)")
    p.add_argument("--drills", action="store_true", help="the drills' figures (kept apart from real incidents)")
    p.add_argument("--json", action="store_true", help="print the stable JSON document (schema rewind.stats/1)")

    p = command("incident", "incidents in the decision journal: open, note, close, list, show, export, import",
                "console.commands.incident:run")
    incident = p.add_subparsers(dest="incident_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        sp = incident.add_parser(name, help=help_text, description=help_text)
        _common(sp)
        return sp

    sp = action("open", "open an incident (prints its id)")
    sp.add_argument("--model", "-m", required=True, help="the registered model concerned")
    sp.add_argument("--severity", "-s", required=True, metavar="SEV", help="SEV1 (worst) to SEV4; 1-4 also accepted")
    sp.add_argument("--summary", required=True, metavar="TEXT", help="one line saying what is wrong")
    sp.add_argument("--impact-start", metavar="TIME", help="when the impact began, ISO 8601 with a zone "
                    "(e.g. 2025-01-31T14:05Z); makes time-to-detect measurable")
    sp.add_argument("--detected-at", metavar="TIME", help="when it was detected (an alert's firing time), if not now")
    sp = action("note", "add a note to an incident's timeline")
    sp.add_argument("id", metavar="ID")
    sp.add_argument("text", metavar="TEXT")
    sp = action("close", "close an incident")
    sp.add_argument("id", metavar="ID")
    sp.add_argument("--summary", metavar="TEXT", help="the resolution")
    sp = action("list", "every incident in the journal")
    sp.add_argument("--json", action="store_true", help="print a JSON document (schema rewind.incidents/1)")
    sp = action("show", "an incident's facts and timeline")
    sp.add_argument("id", metavar="ID")
    sp.add_argument("--tz", metavar="ZONE", help="local time zone to show besides UTC (default: this machine's)")
    sp = action("export", "export an incident: Markdown post-mortem, complete JSON, or HTML with charts")
    sp.add_argument("id", metavar="ID")
    sp.add_argument("--format", "-f", choices=["md", "json", "html"], default="md", help="default: md")
    sp.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    sp.add_argument("--tz", metavar="ZONE", help="local time zone to show besides UTC (default: this machine's)")
    sp = action("import", "import an incident exported as JSON (all or nothing; its chain must verify)")
    sp.add_argument("file", metavar="FILE", help="a rewind.incident/1 JSON file, or - for standard input")
    return parser


def _resolve(handler: str) -> Callable[[argparse.Namespace], int]:
    module_name, _, attr = handler.partition(":")
    import importlib

    return getattr(importlib.import_module(module_name), attr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``rewind`` command and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("REWIND_DEBUG") == "1"
    if not getattr(args, "command", None):
        # `rewind` alone opens the console (`rewind --help` lists the commands).
        args = parser.parse_args([*(argv if argv is not None else sys.argv[1:]), "tui"])
    if not debug:
        # Rewind reports every MLflow failure itself, in one line; MLflow's own log records
        # (tracebacks of database errors among them) are for --debug.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "CRITICAL")
    from console.domain.errors import RewindError
    from console.runtime import GEN0_THRESHOLD, tune_gc

    try:
        handler = _resolve(args.handler)
        if args.command == "tui":
            # The console collects and freezes once its config is loaded, after its first frame: a full
            # collection now (~10 ms) would delay that frame. Until then, only the threshold.
            gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
        else:
            tune_gc()
        return handler(args)
    except RewindError as exc:
        if debug:
            raise
        print(f"rewind: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            raise
        print(f"rewind: unexpected error: {exc.__class__.__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
