"""Issue 18's install figure: the built wheel, installed as a user installs it, to the console's first frame.

- ``wheel_install_to_first_frame_s``: from the built wheel to the console's first frame, on a fresh
  virtualenv outside the checkout: ``python -m venv``, ``pip install <wheel>`` with every dependency
  from the package index (the feast extra left out, as ``pipx install <wheel>`` does) and an empty pip
  cache of its own, then ``rewind tui`` in an 80x24 pty until its first frame ("loading the config"; the
  config file does not exist, so the console ends right after). The split rides along: venv, install and
  first frame, the wheel's build time (not counted) and the 1-minute load average. One run: the
  install dominates and depends on the index and the network.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.fixtures.wheel import build_wheel, clean_env, run_in_terminal

FIRST_FRAME = b"loading the config"


def _install_to_first_frame(workdir: Path) -> dict[str, float]:
    started = time.perf_counter()
    wheel = build_wheel(workdir)
    built = time.perf_counter()
    venv = workdir / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_NO_CACHE_DIR")}
    env["PIP_CACHE_DIR"] = str(workdir / "pip-cache")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, env=env)
    created = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True,
                   capture_output=True, text=True, cwd=workdir, env=env)
    installed = time.perf_counter()
    home = workdir / "home"
    home.mkdir()
    run = run_in_terminal([str(venv / "bin" / "rewind"), "tui", "--config", "missing.yaml"], cwd=home,
                          env=clean_env(home, TERM="xterm-256color"), first_frame=FIRST_FRAME, timeout=60)
    if run.first_frame_s is None:
        raise RuntimeError(f"the installed console never painted its first frame: {run.output[-500:]!r}")
    return {"build_s": built - started, "venv_s": created - built, "install_s": installed - created,
            "first_frame_s": run.first_frame_s}


def figures():
    """Yield issue 18's install figure."""
    load = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory(prefix="bench-wheel-") as name:
        split = _install_to_first_frame(Path(name))
    total = split["venv_s"] + split["install_s"] + split["first_frame_s"]
    yield "wheel_install_to_first_frame_s", round(total, 1), "s", {
        **{key: round(value, 2) for key, value in split.items()}, "load_average_1m": load,
        "pip_cache": "empty (a cache of its own)"}
