"""``rewind demo``: the sandbox up (if it is not running) and the console on it."""

from __future__ import annotations

import argparse
import sys

from console.commands.sandbox import sandbox_for


def run(args: argparse.Namespace) -> int:
    """Start the sandbox if needed, then watch its status live until Ctrl-C."""
    from console.commands.status import watch
    from console.config import load_config
    from console.wiring import build_status_service

    sandbox = sandbox_for(args)
    sandbox.up(say=lambda line: print(line, file=sys.stderr, flush=True))
    loaded = load_config(str(sandbox.config_path))
    service = build_status_service(loaded.config)
    command = sys.argv[0] if "/" in sys.argv[0] else "rewind"
    hint = f"Drill: {command} sandbox scenario regression (or drift, latency, outage) in another terminal."
    try:
        return watch(service, loaded.config.model_or_default(None), 2.0, hint=hint)
    finally:
        service.close()
        print(f"The sandbox keeps running; stop it with `rewind sandbox down`"
              f"{' --dir ' + str(sandbox.dir) if getattr(args, 'dir', None) else ''}.", file=sys.stderr)
