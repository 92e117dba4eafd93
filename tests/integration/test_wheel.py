"""Installed like a tool: the built wheel, in a fresh virtualenv outside the checkout, is a working ``rewind``.

The wheel is built from a copy of the tree with pip (build isolation, as a user's build has it) and installed
with ``--no-deps`` into a new virtualenv under the test's temporary directory; the virtualenv sees the
project's environment's site-packages for the dependencies (installing them all from the index takes
minutes: ``make bench`` times that as ``wheel_install_to_first_frame_s``). Every command runs from a
directory outside the checkout with no PYTHONPATH, and the code it runs must be the virtualenv's copy.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.fixtures.servers import require_binary
from tests.fixtures.wheel import (
    ROOT,
    Venv,
    build_wheel,
    clean_env,
    install,
    run_in_terminal,
    shipped_in_tree,
    shipped_in_wheel,
)

# The whole file runs on one worker (its group in tests/integration/conftest.py): the wheel is built once.
pytestmark = pytest.mark.integration

ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Venv, Path]:
    """The wheel, the virtualenv it is installed in, and a home directory outside the checkout."""
    require_binary("git", "git")
    workdir = tmp_path_factory.mktemp("wheel")
    assert not workdir.resolve().is_relative_to(ROOT), "the install must live outside the checkout"
    wheel = build_wheel(workdir)
    venv = install(wheel, workdir / "venv", deps_from_project=True)
    home = workdir / "home"
    home.mkdir()
    return wheel, venv, home


def run(venv: Venv, home: Path, *args: str, program: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``rewind ARGS`` (or ``program ARGS``) from the home directory, in a clean environment."""
    return subprocess.run([str(program or venv.rewind), *args], cwd=home, env=clean_env(home, COLUMNS="200"),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False)


def test_the_wheel_carries_every_shipped_theme_and_playbook(built):
    wheel, _, _ = built
    expected = shipped_in_tree()
    assert expected["themes"] and expected["playbooks"]
    assert shipped_in_wheel(wheel) == expected


def test_version_comes_from_the_metadata_and_the_code_from_the_new_virtualenv(built):
    _, venv, home = built
    site = venv.site_packages
    assert site.is_relative_to(venv.path)
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

    completed = run(venv, home, "--version")
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"rewind {declared} from {site / 'console'} (Python 3.")

    probe = ("import console; from console.tui.themes import THEMES_DIR; "
             "from console.config import default_playbook_dirs; "
             "print(console.__file__); print(THEMES_DIR); print(default_playbook_dirs()[0])")
    completed = run(venv, home, "-c", probe, program=venv.python)
    assert completed.returncode == 0, completed.stderr
    package, themes, playbooks = completed.stdout.split()
    assert Path(package) == site / "console" / "__init__.py"
    assert Path(themes) == site / "console" / "shipped" / "themes"
    assert Path(playbooks) == site / "console" / "shipped" / "playbooks"


def test_playbook_list_shows_every_shipped_playbook(built):
    _, venv, home = built
    completed = run(venv, home, "playbook", "list")
    assert completed.returncode == 0, completed.stderr
    listed = {m.group(1) for m in re.finditer(r"^(\S+) v\d+ ", completed.stdout, re.MULTILINE)}
    shipped = {yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in (ROOT / "playbooks").glob("*.yaml")}
    assert shipped and listed == shipped, completed.stdout


def test_the_console_paints_its_first_frame_in_a_shipped_theme(built):
    """``rewind tui --theme rewind-light`` in a truecolor pty: the light theme's background is on screen.

    The config file does not exist, so the console paints its first frame and then ends with one line, exit 2.
    Without the theme files it would fall back to Textual's dark theme.
    """
    _, venv, home = built
    light = yaml.safe_load((ROOT / "themes" / "rewind-light.yaml").read_text(encoding="utf-8"))["background"]
    red, green, blue = (int(light[i:i + 2], 16) for i in (1, 3, 5))
    env = clean_env(home, TERM="xterm-256color", COLORTERM="truecolor")
    env.pop("NO_COLOR", None)
    env.pop("TEXTUAL_COLOR_SYSTEM", None)
    result = run_in_terminal([str(venv.rewind), "tui", "--theme", "rewind-light", "--config", "missing.yaml"],
                             cwd=home, env=env, first_frame=b"loading the config", timeout=30)
    assert result.first_frame_s is not None, result.output[-2000:]
    assert f"48;2;{red};{green};{blue}m".encode() in result.output
    _, left, after = result.output.rpartition(b"\x1b[?1049l")  # what it printed after leaving the screen
    assert left
    lines = [line for line in ESCAPES.sub(b"", after).decode("utf-8", "replace").splitlines() if line.strip()]
    assert result.exit_code == 2, lines
    assert lines == ["rewind: config missing.yaml: file not found"], lines
    assert b"Traceback" not in result.output
