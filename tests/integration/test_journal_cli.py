"""The journal's command line: the real ``rewind`` catching a row tampered with in the ``sqlite3`` shell,
the JSON round trip, and bad input turned into one clear line and the right exit code.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from console.adapters.journal_sql import SqlJournal
from console.cli import main
from console.services.journal import JournalService
from tests.fixtures.journal_data import ACTOR

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An isolated user: its own XDG dirs, no config file, no sandbox, no REWIND_ variables."""
    for name in list(os.environ):
        if name.startswith("REWIND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("REWIND_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    return tmp_path


@pytest.fixture
def rewind(home, capsys):
    """Run ``rewind ARGS...`` in this process; returns (exit code, stdout, stderr)."""
    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def default_db(home: Path) -> Path:
    return home / "state" / "rewind" / "journal.db"


def run_real(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command, as a responder runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}
    env.update(XDG_STATE_HOME=str(home / "state"), XDG_CONFIG_HOME=str(home / "config"),
               REWIND_SANDBOX_DIR=str(home / "no-sandbox"))
    return subprocess.run([sys.executable, "-m", "console", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_incident_commands_work_without_any_config(rewind, home):
    code, out, err = rewind("incident", "open", "--model", "fraud-detector", "--severity", "2",
                            "--summary", "v2 errors in eu", "--impact-start", "2025-03-14T09:00:00Z")
    assert code == 0, err
    incident = out.strip()
    assert incident.startswith("INC-") and "opened" in err
    assert default_db(home).exists()
    assert rewind("incident", "note", incident, "looking at v2")[0] == 0
    assert rewind("incident", "close", incident, "--summary", "rolled back")[0] == 0
    code, out, _ = rewind("incident", "list", "--json")
    assert code == 0
    [listed] = json.loads(out)["incidents"]
    assert (listed["id"], listed["status"], listed["events"], listed["severity"]) == (incident, "closed", 3, "SEV2")
    code, out, _ = rewind("incident", "list")
    assert incident in out and "closed" in out
    code, out, _ = rewind("incident", "show", incident, "--tz", "Europe/Paris")
    assert code == 0 and "looking at v2" in out and "chain intact" in out and "CET" in out
    code, out, err = rewind("journal", "verify")
    assert code == 0 and "all intact" in out and err == ""


def test_round_trip_through_json_into_a_fresh_journal(rewind, home, tmp_path):
    incident = rewind("incident", "open", "-m", "m", "-s", "3", "--summary", "round trip")[1].strip()
    for text in ("first", "ünïcode ✓ and \"quotes\"", "last"):
        rewind("incident", "note", incident, text)
    exported = tmp_path / "incident.json"
    code, _, err = rewind("incident", "export", incident, "--format", "json", "-o", str(exported))
    assert code == 0 and "wrote" in err
    other = tmp_path / "other.db"
    config = tmp_path / "other.yaml"
    config.write_text(f"journal:\n  url: sqlite:///{other}\n")
    code, out, err = rewind("incident", "import", str(exported), "--config", str(config))
    assert code == 0, err
    assert f"imported {incident}: 4 events" in out
    assert rewind("journal", "verify", "--config", str(config))[0] == 0
    again = tmp_path / "again.json"
    rewind("incident", "export", incident, "-f", "json", "-o", str(again), "--config", str(config))
    assert json.loads(again.read_text())["events"] == json.loads(exported.read_text())["events"]
    code, _, err = rewind("incident", "import", str(exported), "--config", str(config))
    assert code == 1 and "already in the" in err


def _tamper_fixture(home: Path) -> tuple[Path, str]:
    db = default_db(home)
    service = JournalService(SqlJournal(f"sqlite:///{db}"), ACTOR)
    incident = service.open_incident("fraud-detector", "2", "tamper target").incident_id
    for number in range(2, 6):
        service.note(incident, f"note {number}")
    service.close()
    return db, incident


TAMPERING = {
    "edited": ("UPDATE journal_events SET payload = replace(payload, 'note 3', 'note three') WHERE seq = 3;", 3),
    "deleted": ("DELETE FROM journal_events WHERE seq = 3;", 3),
    "deleted-last": ("DELETE FROM journal_events WHERE seq = 5;", 5),
    "reordered": ("UPDATE journal_events SET seq = -1 WHERE seq = 3; UPDATE journal_events SET seq = 3 WHERE seq = 4;"
                  " UPDATE journal_events SET seq = 4 WHERE seq = -1;", 3),
    "inserted": ("INSERT INTO journal_events SELECT incident_id, 6, ts, actor_user, actor_host, actor_ssh, kind, "
                 "payload, hash, hash FROM journal_events WHERE seq = 5;", 6),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERING))
def test_a_row_tampered_with_in_the_sqlite3_shell_is_caught(home, tamper):
    sqlite_shell = shutil.which("sqlite3")
    if sqlite_shell is None:
        pytest.fail("the sqlite3 shell is needed (apt-get install sqlite3)")
    db, incident = _tamper_fixture(home)
    refused = subprocess.run([sqlite_shell, str(db), "UPDATE journal_events SET payload = '{}' WHERE seq = 2;"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "append-only" in refused.stderr
    statement, seq = TAMPERING[tamper]
    done = subprocess.run([sqlite_shell, str(db), "DROP TRIGGER journal_events_no_update; "
                           "DROP TRIGGER journal_events_no_delete; " + statement], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = run_real(home, "journal", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    word = tamper.split("-")[0]
    assert f"incident {incident} event #{seq}:" in line and f"({word})" in line
    assert f"✗ incident {incident} event #{seq}" in result.stdout


def test_verify_one_incident_and_as_json(rewind, home):
    db, incident = _tamper_fixture(home)
    healthy = rewind("incident", "open", "-m", "m", "-s", "4", "--summary", "healthy")[1].strip()
    with sqlite3.connect(db) as conn:
        conn.executescript("DROP TRIGGER journal_events_no_update; "
                           "UPDATE journal_events SET ts = '2030-01-01T00:00:00.000000Z' WHERE seq = 2 "
                           f"AND incident_id = '{incident}';")
    assert rewind("journal", "verify", "--incident", healthy)[0] == 0
    code, out, err = rewind("journal", "verify", "--json")
    assert code == 1
    document = json.loads(out)
    assert document["ok"] is False
    broken = {i["id"]: i for i in document["incidents"]}[incident]
    assert broken["problem"]["seq"] == 2 and broken["problem"]["tamper"] == "edited"
    code, out, _ = rewind("incident", "show", incident)
    assert code == 1 and "event #2" in out
    code, out, err = rewind("incident", "export", incident, "--format", "md")
    assert code == 1 and "HASH CHAIN BROKEN" in out and "warning" in one_line(err)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_unknown_incident(rewind, home):
    for args in (("incident", "show", "INC-NOPE"), ("incident", "note", "INC-NOPE", "x"),
                 ("incident", "close", "INC-NOPE"), ("incident", "export", "INC-NOPE"),
                 ("journal", "verify", "--incident", "INC-NOPE")):
        code, _, err = rewind(*args)
        assert code == 1 and "no incident INC-NOPE" in one_line(err)


def test_bad_import_files(rewind, home, tmp_path):
    code, _, err = rewind("incident", "import", str(tmp_path / "missing.json"))
    assert code == 2 and "file not found" in one_line(err)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    code, _, err = rewind("incident", "import", str(garbage))
    assert code == 2 and "not valid JSON" in one_line(err)
    garbage.write_bytes(b"\xff\xfe\x00")
    code, _, err = rewind("incident", "import", str(garbage))
    assert code == 2 and "cannot be read" in one_line(err)
    garbage.write_text('{"schema": "rewind.status/1"}')
    code, _, err = rewind("incident", "import", str(garbage))
    assert code == 2 and "schema" in one_line(err)
    incident = rewind("incident", "open", "-m", "m", "-s", "1", "--summary", "x")[1].strip()
    rewind("incident", "note", incident, "original")
    exported = tmp_path / "x.json"
    rewind("incident", "export", incident, "-f", "json", "-o", str(exported))
    document = json.loads(exported.read_text())
    document["events"][1]["payload"]["text"] = "forged"
    exported.write_text(json.dumps(document))
    other = tmp_path / "other.yaml"
    other.write_text(f"journal:\n  url: sqlite:///{tmp_path / 'other.db'}\n")
    code, _, err = rewind("incident", "import", str(exported), "--config", str(other))
    assert code == 1 and "nothing imported" in one_line(err) and "event #2" in err
    code, out, _ = rewind("incident", "list", "--json", "--config", str(other))
    assert json.loads(out)["incidents"] == []


def test_bad_journal_urls(rewind, home, tmp_path, monkeypatch):
    config = tmp_path / "rewind.yaml"
    cases = {
        "postgresql://rewind:Pa55word!@127.0.0.1:1/journal": (1, "127.0.0.1"),
        "postgresql://rewind:Pa55word!@127.0.0.1:notaport/journal": (2, "not a database URL"),
        "mysql://rewind:Pa55word!@db/journal": (2, "not supported"),
        "sqlite://": (2, "file path"),
        "nonsense": (2, "not a database URL"),
    }
    for url, (expected, words) in cases.items():
        config.write_text(f"journal:\n  url: '{url}'\n")
        code, _, err = rewind("incident", "list", "--config", str(config))
        line = one_line(err)
        assert code == expected and words in line, (url, err)
        assert "Pa55word" not in err
    monkeypatch.setenv("REWIND_JOURNAL__URL", "postgresql://rewind:Pa55word!@127.0.0.1:1/journal")
    code, _, err = rewind("journal", "verify")
    assert code == 1 and "Pa55word" not in err and "PostgreSQL journal postgresql://rewind@127.0.0.1:1" in err


def test_bad_arguments_and_config(rewind, home, tmp_path):
    code, _, err = rewind("incident", "open", "-m", "m", "--severity", "7", "--summary", "x")
    assert code == 2 and "SEV1" in one_line(err)
    code, _, err = rewind("incident", "open", "-m", "m", "-s", "1", "--summary", "x", "--impact-start", "noon")
    assert code == 2 and "ISO 8601" in one_line(err)
    code, _, err = rewind("incident", "list", "--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "file not found" in one_line(err)
    broken = tmp_path / "broken.yaml"
    broken.write_text("journal: [\n")
    code, _, err = rewind("incident", "list", "--config", str(broken))
    assert code == 2 and "not valid YAML" in one_line(err)
    broken.write_text("journal:\n  path: /tmp/x\n")
    code, _, err = rewind("incident", "list", "--config", str(broken))
    assert code == 2 and "journal.path: unknown setting" in one_line(err)
    incident = rewind("incident", "open", "-m", "m", "-s", "1", "--summary", "x")[1].strip()
    code, _, err = rewind("incident", "export", incident, "-o", str(tmp_path / "nowhere" / "x.md"))
    assert code == 2 and "does not exist" in one_line(err)
    assert not (tmp_path / "nowhere").exists()
    code, _, err = rewind("incident", "export", incident, "--tz", "Nowhere/Land")
    assert code == 2 and "time zone" in one_line(err)
    assert rewind("incident", "note", incident, "   ")[0] == 2


def test_a_full_config_is_only_read_for_its_journal(rewind, home, tmp_path):
    config = tmp_path / "rewind.yaml"
    config.write_text(f"registry: {{tracking_uri: 'sqlite:///x'}}\nmetrics: {{url: 'not a url'}}\n"
                      f"journal:\n  url: sqlite:///{tmp_path / 'team.db'}\n")
    code, out, err = rewind("incident", "open", "-m", "m", "-s", "1", "--summary", "x", "--config", str(config))
    assert code == 0, err
    assert (tmp_path / "team.db").exists() and not default_db(home).exists()


def test_export_writes_the_file_whole_in_each_format(rewind, home, tmp_path):
    incident = rewind("incident", "open", "-m", "m", "-s", "1", "--summary", "formats")[1].strip()
    for fmt, start in (("md", "# Post-mortem"), ("json", "{"), ("html", "<!DOCTYPE html>")):
        target = tmp_path / f"export.{fmt}"
        code, _, err = rewind("incident", "export", incident, "--format", fmt, "-o", str(target))
        assert code == 0, err
        assert target.read_text(encoding="utf-8").startswith(start)
        code, out, _ = rewind("incident", "export", incident, "--format", fmt)
        assert code == 0 and out.startswith(start)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".export")) == []
