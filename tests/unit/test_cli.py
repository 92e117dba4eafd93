"""The command line's promises that need no server: exit codes and one-line errors."""

import subprocess
import sys

import yaml

from console.cli import main


def test_help_exits_zero(capsys):
    assert main([]) == 0
    assert "status" in capsys.readouterr().out


def test_usage_errors_exit_2():
    completed = subprocess.run([sys.executable, "-m", "console", "status", "--bogus"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert "unrecognized arguments: --bogus" in completed.stderr


def test_a_malformed_config_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics: [\n")
    assert main(["status", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and "Traceback" not in err


def test_an_incomplete_config_names_the_setting(tmp_path, capsys):
    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump({"registry": {"tracking_uri": "sqlite:///x.db"}}))
    assert main(["status", "--config", str(partial)]) == 2
    err = capsys.readouterr().err
    assert "router: Field required" in err and err.count("\n") == 1


def test_no_config_anywhere_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("REWIND_SANDBOX_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("REWIND_CONFIG", raising=False)
    assert main(["status", "--model", "m"]) == 2
    assert "rewind sandbox up" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics: [\n")
    completed = subprocess.run([sys.executable, "-m", "console", "status", "--config", str(bad), "--debug"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode != 0
    assert "Traceback" in completed.stderr


def test_an_approval_nobody_can_confirm_is_refused_before_anything_is_read(tmp_path):
    """On a pipe, ``approve`` without --yes stops at once: exit 2, one line, no config even looked for."""
    completed = subprocess.run([sys.executable, "-m", "console", "approve", "act-12345678",
                                "--config", str(tmp_path / "absent.yaml")],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert completed.returncode == 2, completed.stderr
    assert "pass --yes for automation" in completed.stderr and completed.stderr.count("\n") == 1
