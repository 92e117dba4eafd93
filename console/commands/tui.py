"""``rewind`` / ``rewind tui``: open the console on the configured systems.

The console paints its first frame before the config is read: the config
(pydantic, YAML) and the backend are loaded in the console's start-up worker.
A config that cannot be used ends the console at once, and the CLI reports it
in the same one line, with the same exit code (2), as any other command.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.domain.errors import UsageError

if TYPE_CHECKING:  # loaded in the console's start-up worker, after its first frame
    from console.config import LoadedConfig
    from console.wiring import ConsoleBackend


def console_backend(loaded: LoadedConfig, model: str | None) -> ConsoleBackend:
    """The console's services over the configured systems, once ``model`` (or the default) is known to be there.

    Raises:
        ConfigError: no model given and no ``default_model``.
        UsageError: the model is not in the config's ``router.backends``.
    """
    from console.wiring import ConsoleBackend

    backend = ConsoleBackend(loaded)
    if model is None and loaded.config.default_model is None and len(backend.models) > 1:
        return backend  # a fleet: the console opens on every model at once
    chosen = loaded.config.model_or_default(model)
    if chosen not in backend.models:
        known = ", ".join(backend.models) or "none"
        raise UsageError(f"--model {chosen}: not configured in {loaded.path} (router.backends has: {known})")
    return backend


def open_console(config: Callable[[], LoadedConfig], model: str | None = None, read_only: bool = False,
                 theme: str | None = None, mouse: bool = False) -> int:
    """Run the console until the responder quits (or the terminal goes away); its exit code.

    Args:
        config: reads and validates the config; called in the console's start-up worker, after its first frame.
        model: ``--model`` (else the config's ``default_model``).
        read_only: never act.
        theme: ``--theme``.
        mouse: ``--mouse``.

    Raises:
        RewindError: what ``config`` raised (a missing or invalid file, an unknown ``--model``), once the
            terminal is restored; or the console needs a terminal and has none.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        console_backend(config(), model)  # a broken config is still the first thing said, as for every command
        raise UsageError("the console needs a terminal; for scripts and logs use `rewind status --watch` "
                         "or `rewind status --json`")
    from console.tui.app import ConsoleOptions, create_app, install_hangup_signal

    def load_backend() -> ConsoleBackend:
        from console.runtime import tune_gc

        backend = console_backend(config(), model)
        tune_gc()  # freeze what loading the config created too, as the CLI froze what start-up created
        return backend

    export_dir = os.environ.get("REWIND_EXPORT_DIR")
    from pathlib import Path

    options = ConsoleOptions(model=model, read_only=read_only, theme=theme, mouse=mouse,
                             export_dir=Path(export_dir) if export_dir else None)
    app = create_app(options=options, load_backend=load_backend)
    install_hangup_signal(app)
    try:
        result = app.run(mouse=mouse)
    finally:
        app.backend.close()
    if app.start_error is not None:
        raise app.start_error
    # A crash leaves no result but a return code (1): never report it as a clean exit.
    return int(app.return_code or result or 0)


def run(args: argparse.Namespace) -> int:
    """``rewind tui``."""
    explicit = getattr(args, "config", None)

    def config() -> LoadedConfig:
        from console.config import load_config

        return load_config(explicit)

    return open_console(config, getattr(args, "model", None), bool(getattr(args, "read_only", False)),
                        getattr(args, "theme", None), bool(getattr(args, "mouse", False)))
