"""A sandbox for one benchmark module: up in a temporary directory, its own journal, always brought down."""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

MODEL = "fraud-detector"


@contextlib.contextmanager
def sandbox(rate: float) -> Iterator[object]:
    """A sandbox of its own in a temporary directory, stopped at the end even on failure (or SIGTERM)."""
    from console.sandbox.manager import Sandbox

    previous = signal.getsignal(signal.SIGTERM)
    # A terminated bench still stops its sandbox: SIGTERM unwinds through the ``finally`` below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    try:
        with tempfile.TemporaryDirectory(prefix="rewind-bench-") as tmp:
            box = Sandbox(Path(tmp) / "sandbox", MODEL)
            try:
                box.up(rate=rate, say=lambda line: None)
                yield box
            finally:
                box.down()
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def bench_sandbox(rate: float = 20) -> Iterator[tuple[object, object]]:
    """Yield ``(sandbox, loaded config)``, the config's journal in the sandbox's directory."""
    from console.config import load_config

    with sandbox(rate) as box:
        environ = {"REWIND_JOURNAL__URL": f"sqlite:///{box.dir / 'bench-journal.db'}"}
        yield box, load_config(str(box.config_path), environ=environ)
