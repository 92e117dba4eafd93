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
    print("Try `rewind sandbox scenario regression` (or drift, latency, outage, healthy) "
          "in another terminal and watch the verdicts change.", file=sys.stderr)
    try:
        return watch(service, loaded.config.model_or_default(None), 2.0)
    finally:
        service.close()
        print(f"The sandbox keeps running; stop it with `rewind sandbox down`"
              f"{' --dir ' + str(sandbox.dir) if getattr(args, 'dir', None) else ''}.", file=sys.stderr)
