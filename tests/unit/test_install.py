"""What an installed ``rewind`` relies on: the shipped themes and playbooks found with or without a checkout,
and ``--version`` from the package metadata. The wheel itself is built and installed in
tests/integration/test_wheel.py."""

from __future__ import annotations

import importlib.util
import shutil
from importlib.metadata import version
from pathlib import Path

import pytest

from console import cli, paths
from console.config import default_playbook_dirs
from console.tui import themes

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_reads_the_top_level_themes_and_playbooks():
    assert paths.shipped_dir("themes") == ROOT / "themes" == themes.THEMES_DIR
    assert paths.shipped_dir("playbooks") == ROOT / "playbooks" == default_playbook_dirs()[0]
    assert not (ROOT / "console" / "shipped").exists(), "the only source of the shipped files is the top level"


def test_an_installed_package_reads_its_own_copy(tmp_path: Path):
    # The layout of an installed wheel: site-packages/console/{paths.py,shipped/<name>}, and no checkout around.
    package = tmp_path / "site-packages" / "console"
    (package / "shipped" / "themes").mkdir(parents=True)
    shutil.copy(Path(paths.__file__), package / "paths.py")
    (tmp_path / "site-packages" / "themes").mkdir()  # a stray top-level directory must not win
    spec = importlib.util.spec_from_file_location("installed_paths", package / "paths.py")
    assert spec is not None and spec.loader is not None
    installed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(installed)
    assert installed.shipped_dir("themes") == package / "shipped" / "themes"


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rewind {version('rewind-console')} from {ROOT / 'console'} (Python 3.")


def test_a_subcommand_keeps_its_own_version_option():
    args = cli.build_parser().parse_args(["sandbox", "scenario", "regression", "--version", "3"])
    assert args.version == "3"
