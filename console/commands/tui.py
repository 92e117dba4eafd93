"""``rewind`` / ``rewind tui``: open the console on the configured systems."""

from __future__ import annotations

import argparse
import os
import sys

from console.config import LoadedConfig
from console.domain.errors import UsageError


def open_console(loaded: LoadedConfig, model: str | None = None, read_only: bool = False,
                 theme: str | None = None, mouse: bool = False) -> int:
    """Run the console until the responder quits (or the terminal goes away); its exit code."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the console needs a terminal; for scripts and logs use `rewind status --watch` "
                         "or `rewind status --json`")
    from console.tui.app import ConsoleOptions, create_app, install_hangup_signal
    from console.wiring import ConsoleBackend

    backend = ConsoleBackend(loaded)
    chosen = loaded.config.model_or_default(model)
    if chosen not in backend.models:
        known = ", ".join(backend.models) or "none"
        raise UsageError(f"--model {chosen}: not configured in {loaded.path} (router.backends has: {known})")
    export_dir = os.environ.get("REWIND_EXPORT_DIR")
    from pathlib import Path

    options = ConsoleOptions(model=chosen, read_only=read_only, theme=theme, mouse=mouse,
                             export_dir=Path(export_dir) if export_dir else None)
    app = create_app(backend, options)
    install_hangup_signal(app)
    try:
        result = app.run(mouse=mouse)
    finally:
        backend.close()
    # A crash leaves no result but a return code (1): never report it as a clean exit.
    return int(app.return_code or result or 0)


def run(args: argparse.Namespace) -> int:
    """``rewind tui``."""
    from console.config import load_config

    loaded = load_config(getattr(args, "config", None))
    return open_console(loaded, getattr(args, "model", None), bool(getattr(args, "read_only", False)),
                        getattr(args, "theme", None), bool(getattr(args, "mouse", False)))
