"""``rewind demo``: the sandbox up (if it is not running) and the console on it."""

from __future__ import annotations

import argparse
import sys

from console.commands.sandbox import sandbox_for


def run(args: argparse.Namespace) -> int:
    """Start the sandbox if needed, then open the console on it."""
    from console.commands.tui import open_console
    from console.config import load_config

    sandbox = sandbox_for(args)
    sandbox.up(say=lambda line: print(line, file=sys.stderr, flush=True))
    command = sys.argv[0] if "/" in sys.argv[0] else "rewind"
    try:
        return open_console(lambda: load_config(str(sandbox.config_path)), None,
                            bool(getattr(args, "read_only", False)), getattr(args, "theme", None),
                            bool(getattr(args, "mouse", False)))
    finally:
        where = f" --dir {sandbox.dir}" if getattr(args, "dir", None) else ""
        from console.sandbox.names import SCENARIOS

        others = ", ".join(s for s in SCENARIOS if s not in ("healthy", "regression"))
        print(f"The sandbox keeps running. Drill: {command} sandbox scenario regression{where} (or {others}; "
              f"healthy ends a drill); stop it with `{command} sandbox down{where}`.", file=sys.stderr)
