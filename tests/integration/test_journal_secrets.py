"""The canary: a secret placed in the config and the environment never reaches the journal or an export.

The canary is the metrics bearer token (named by the config, read from the
environment), the value of a secret-named environment variable, and, on
PostgreSQL, the journal URL's password. Events carrying it every way a
responder or a playbook might (plain text, URL credentials, bearer headers,
``password=`` pairs, secret-named payload keys) are recorded through the CLI
and the service, exported in every format, and the database's bytes and the
exports are searched for it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from console.cli import main
from console.config import load_journal_settings
from console.domain.journal import EventKind
from console.wiring import build_journal_service
from tests.fixtures.postgres import create_database

pytestmark = pytest.mark.integration


def _config(path: Path, journal_url: str) -> Path:
    path.write_text(
        "registry: {tracking_uri: 'sqlite:///unused.db'}\n"
        "router: {socket: /nonexistent.sock, backends: {fraud-detector: be_fraud}}\n"
        "metrics:\n"
        "  url: http://127.0.0.1:9\n"
        "  auth: {bearer_token_env: PROM_CRED_A}\n"
        "  catalogue:\n"
        "    - {name: error_rate, title: Error rate, query: 'sum(rate(x{model=\"$model\"}[$window]))', unit: ratio}\n"
        f"journal:\n  url: '{journal_url}'\n",
        encoding="utf-8",
    )
    return path


def _record_everything(config: Path, canary: str, capsys) -> tuple[str, list[str]]:
    """Record events carrying the canary through the CLI and the service; return the id and all CLI output."""
    outputs = []

    def rewind(*args: str) -> str:
        code = main([*args, "--config", str(config)])
        out, err = capsys.readouterr()
        outputs.extend([out, err])
        assert code == 0, err
        return out

    incident = rewind("incident", "open", "-m", "fraud-detector", "-s", "2",
                      "--summary", f"prometheus rejects token {canary}").strip()
    for text in (f"the token is {canary}", f"curl -H 'Authorization: Bearer {canary}' http://prom",
                 f"journal at postgresql://rewind:{canary}@db.internal/journal", f"password={canary}"):
        rewind("incident", "note", incident, text)
    service = build_journal_service(load_journal_settings(str(config)))
    try:
        service.record(incident, EventKind.CHECK_EVALUATED, {
            "metric": "error_rate", "promql": "sum(rate(x[1m]))", "criterion": {"threshold": 0.05},
            "verdict": "breach", "values": [{"version": "2", "segment": "eu", "raw": "0.12"}],
            "request": {"headers": {"Authorization": f"Bearer {canary}"}, "url": f"https://u:{canary}@prom/api"},
            "token": canary,
        })
        service.record(incident, EventKind.DECISION, {"option": "roll back", "reason": f"saw {canary} in logs"})
        service.record(incident, EventKind.ACTION_INTENT, {
            "action_id": "a1", "plan": f"set weights via https://admin:{canary}@haproxy/", "api_key": canary})
    finally:
        service.close()
    rewind("incident", "close", incident, "--summary", f"rotated {canary}")
    return incident, outputs


def _exports(config: Path, incident: str, directory: Path, capsys) -> list[Path]:
    files = []
    for fmt in ("md", "json", "html"):
        target = directory / f"export.{fmt}"
        assert main(["incident", "export", incident, "--format", fmt, "-o", str(target), "--config", str(config)]) == 0
        files.append(target)
    capsys.readouterr()
    return files


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("REWIND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    canary = f"canary{secrets.token_hex(12)}"
    monkeypatch.setenv("PROM_CRED_A", canary)  # named by metrics.auth.bearer_token_env: a secret by config
    monkeypatch.setenv("MY_SERVICE_API_KEY", canary)  # a secret by its name
    return canary


def _assert_clean(canary: str, files: list[Path], outputs: list[str]) -> None:
    needle = canary.encode()
    for path in files:
        data = path.read_bytes()
        assert needle not in data, f"the canary leaked into {path.name}"
    exports = [p for p in files if p.name.startswith("export.")]
    assert all(b"[REDACTED]" in p.read_bytes() for p in exports)  # the attempts were there, and redacted
    for text in outputs:
        assert canary not in text


def test_canary_on_sqlite(isolated, tmp_path, capsys):
    canary = isolated
    db = tmp_path / "journal.db"
    config = _config(tmp_path / "rewind.yaml", f"sqlite:///{db}")
    incident, outputs = _record_everything(config, canary, capsys)
    files = _exports(config, incident, tmp_path, capsys)
    database_files = [p for p in tmp_path.iterdir() if p.name.startswith("journal.db")]
    assert db in database_files
    _assert_clean(canary, files + database_files, outputs)


def test_canary_on_postgresql(isolated, tmp_path, capsys, postgres_server):
    canary = isolated
    url = create_database(postgres_server).replace("rewind@", f"rewind:{canary}@")  # trust auth: accepted as is
    config = _config(tmp_path / "rewind.yaml", url)
    incident, outputs = _record_everything(config, canary, capsys)
    files = _exports(config, incident, tmp_path, capsys)
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={postgres_server.port} user=rewind dbname={url.rsplit('/', 1)[1]}",
                         autocommit=True) as conn:
        stored = conn.execute("SELECT string_agg(concat_ws(' ', incident_id, ts, actor_user, actor_host, kind, "
                              "payload, hash), ' ') FROM journal_events").fetchone()[0]
        assert "[REDACTED]" in stored and canary not in stored
        conn.execute("CHECKPOINT")  # the events are now in the table files, not only in the WAL
    data_files = [p for p in postgres_server.base_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    _assert_clean(canary, files + data_files, outputs)
