"""The command line's promises that need no server: exit codes and one-line errors."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from console.cli import main


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "status" in out and "tui" in out


def test_rewind_alone_opens_the_console_and_says_what_is_missing(capsys, monkeypatch, tmp_path):
    # With no command `rewind` is `rewind tui`: without a config it names what to do, in one line.
    monkeypatch.setenv("REWIND_CONFIG", str(tmp_path / "missing.yaml"))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml" in err and len(err.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    completed = subprocess.run([sys.executable, "-m", "console", "status", "--bogus"],
                               capture_output=True, text=True, check=False)
    assert completed.returncode == 2
    assert "unrecognized arguments: --bogus" in completed.stderr


@pytest.mark.parametrize("seconds", ["0", "-3", "nan", "inf", "soon"])
def test_a_drill_of_no_time_is_a_usage_error(seconds, capsys):
    from console.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["fallback", "drill", "--seconds", seconds])
    assert exited.value.code == 2
    assert "--seconds" in capsys.readouterr().err


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


# -- rollback, undo: which incident (issue 8, section 4), with the fakes of test_rollback_service ----

@pytest.fixture
def fake_rollbacks(tmp_path, monkeypatch, capsys):
    """``rewind rollback``/``undo`` run through main() against a fake registry and router, a real journal file."""
    from console.adapters.journal_sql import SqlActionLock, SqlJournal
    from console.commands import rollback as command
    from console.domain.journal import Actor
    from console.services.journal import JournalService
    from console.services.rollback import RollbackService, RollbackSettings
    from tests.unit.test_rollback_service import FakeMetrics, FakeRegistry, FakeRouter

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    registry, router = FakeRegistry(), FakeRouter()

    def service(args):  # a new one per command, as each CLI run builds its own
        journal = SqlJournal(url)
        return RollbackService(registry, router, FakeMetrics(), JournalService(journal, Actor("alice", "host")),
                               SqlActionLock(journal), (), None,
                               settings=RollbackSettings(gate_window_s=0.0, poll_interval_s=0.0)), "m"

    monkeypatch.setattr(command, "_service", service)

    def journal():
        return JournalService(SqlJournal(url), Actor("bob", "host"))

    def rewind(*args):
        code = main([*args])
        captured = capsys.readouterr()
        # Rich wraps its lines at 80 columns on a pipe: ``err`` is unwrapped, ``raw_err`` as printed.
        return code, SimpleNamespace(out=captured.out, err=" ".join(captured.err.split()), raw_err=captured.err)

    return rewind, journal, router


def _incidents(journal_factory):
    journal = journal_factory()
    try:
        return journal.incidents()
    finally:
        journal.close()


def test_a_second_rollback_joins_the_open_incident_and_a_rerun_opens_none(fake_rollbacks):
    rewind, journal, router = fake_rollbacks
    code, out = rewind("rollback", "--yes", "--json", "--no-verify", "--from", "3", "--to", "2")
    assert code == 0, out.err
    first = json.loads(out.out)
    assert (first["incident_joined"], first["incident_opened"]) == (False, True)
    assert f"opened a new incident {first['incident_id']} (no open incident of m)" in out.err
    [opened] = _incidents(journal)
    # A second, different rollback while the incident is open joins it, and says which.
    code, out = rewind("rollback", "--yes", "--json", "--no-verify", "--from", "2", "--to", "1")
    assert code == 0, out.err
    second = json.loads(out.out)
    assert second["incident_id"] == opened.incident_id and second["incident_joined"] is True
    assert f"joining open incident {opened.incident_id} (opened " in out.err and "by alice@host" in out.err
    assert len(_incidents(journal)) == 1
    # The same command again changes nothing: no incident opened, and (the incident being open) one note.
    events = _incidents(journal)[0].events
    code, out = rewind("rollback", "--json", "--no-verify")
    assert code == 0, out.err
    assert json.loads(out.out)["outcomes"][0]["status"] == "already_applied"
    [after] = _incidents(journal)
    assert after.events == events + 1


def test_after_close_a_rollback_opens_a_new_incident_and_a_no_op_opens_none(fake_rollbacks):
    rewind, journal, router = fake_rollbacks
    assert rewind("rollback", "--yes", "--json", "--no-verify")[0] == 0
    [first] = _incidents(journal)
    service = journal()
    try:
        service.close_incident(first.incident_id, "rolled back")
    finally:
        service.close()
    # A rerun that changes nothing, with no open incident: none is opened, nothing is journaled.
    code, out = rewind("rollback", "--json", "--no-verify")
    assert code == 0, out.err
    document = json.loads(out.out)
    assert document["incident_id"] is None and document["incident_joined"] is False
    assert "no incident opened and nothing journaled" in out.err
    assert [(i.incident_id, i.events) for i in _incidents(journal)] == [(first.incident_id, first.events + 1)]
    # A real change after the close opens a new incident.
    code, out = rewind("rollback", "--yes", "--json", "--no-verify", "--from", "2", "--to", "1")
    assert code == 0, out.err
    assert len(_incidents(journal)) == 2 and json.loads(out.out)["incident_id"] != first.incident_id


def test_new_incident_opens_a_new_one_while_one_is_open(fake_rollbacks):
    rewind, journal, router = fake_rollbacks
    assert rewind("rollback", "--yes", "--json", "--no-verify", "--from", "3", "--to", "2")[0] == 0
    code, out = rewind("rollback", "--yes", "--json", "--no-verify", "--from", "2", "--to", "1", "--new-incident")
    assert code == 0, out.err
    assert json.loads(out.out)["incident_opened"] is True and "(--new-incident)" in out.err
    assert len(_incidents(journal)) == 2
    # Not for a rerun that changes nothing: that opens no incident, even when asked to.
    events = [i.events for i in _incidents(journal)]
    code, out = rewind("rollback", "--json", "--no-verify", "--new-incident")
    assert code == 0 and json.loads(out.out)["incident_id"] is None
    assert "no incident opened and nothing journaled (--new-incident)" in out.err
    assert [i.events for i in _incidents(journal)] == events


def test_an_undo_says_which_incident_it_joins(fake_rollbacks):
    rewind, journal, router = fake_rollbacks
    code, out = rewind("rollback", "--yes", "--json", "--no-verify")
    action, incident = json.loads(out.out)["plan"]["action_id"], json.loads(out.out)["incident_id"]
    code, out = rewind("undo", action, "--yes", "--json", "--no-verify")
    assert code == 0, out.err
    assert json.loads(out.out)["incident_id"] == incident and json.loads(out.out)["incident_joined"] is True
    assert f"recording in incident {incident}, where the action undone is" in out.err
    assert router.weights == {"1": 0, "2": 90, "3": 10} and len(_incidents(journal)) == 1


def test_a_closed_or_unknown_incident_is_refused_in_one_line_exit_2(fake_rollbacks):
    rewind, journal, router = fake_rollbacks
    code, out = rewind("rollback", "--yes", "--no-verify", "--incident", "INC-NOPE")
    assert code == 2 and "no incident INC-NOPE" in out.err and out.raw_err.count("\n") == 1
    assert _incidents(journal) == []
    service = journal()
    try:
        closed = service.open_incident("m", "2", "done").incident_id
        service.close_incident(closed)
    finally:
        service.close()
    code, out = rewind("rollback", "--yes", "--no-verify", "--incident", closed)
    assert code == 2 and f"incident {closed} was closed at" in out.err and out.raw_err.count("\n") == 1
    assert router.weights == {"1": 0, "2": 90, "3": 10}
    assert [i.events for i in _incidents(journal)] == [2]


@pytest.mark.parametrize("command", [["rollback"], ["undo", "act-12345678"]])
def test_incident_and_new_incident_together_are_a_usage_error(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--incident", "INC-1", "--new-incident"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
