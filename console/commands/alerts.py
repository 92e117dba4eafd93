"""``rewind alerts serve|list``: Alertmanager's webhook into incidents, and the alerts journaled so far.

``serve`` runs until SIGTERM or SIGINT (systemd's stop, Ctrl-C): requests in flight finish
(their journal writes commit), then it exits 0. It binds 127.0.0.1 unless told otherwise,
and refuses another address without a bearer token: anyone who can reach it can open an
incident. ``list`` reads the journal only (no config needed), like ``rewind incident list``.
"""

from __future__ import annotations

import argparse
import json
import signal
import stat
import sys
import threading
from pathlib import Path
from types import FrameType

from console.domain.alert_events import JournaledAlert, episodes
from console.domain.errors import ConfigError, UsageError

LIST_SCHEMA = "rewind.alerts/1"
"""The schema of ``rewind alerts list --json``: fields are only ever added to it."""


def run(args: argparse.Namespace) -> int:
    """Dispatch ``serve`` or ``list``."""
    return run_serve(args) if args.alerts_command == "serve" else run_list(args)


def read_token(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace dropped).

    Raises:
        ConfigError: the file cannot be read, or is empty.
    """
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"alerts.token_file {path}: cannot be read ({exc.__class__.__name__})") from None
    if not token:
        raise ConfigError(f"alerts.token_file {path}: the file is empty")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"rewind: warning: {path} can be read by other users (chmod 600 it)", file=sys.stderr)
    return token


def run_serve(args: argparse.Namespace) -> int:
    """Take Alertmanager's webhook until stopped."""
    from console.adapters.alert_webhook import ALERTS_PATH, WebhookServer, is_loopback, parse_listen
    from console.config import load_config
    from console.wiring import build_alert_intake

    loaded = load_config(getattr(args, "config", None))
    settings = loaded.config.alerts
    listen = args.listen or settings.listen
    token_path: Path | None = Path(args.token_file) if args.token_file else None
    if token_path is None and settings.token_file is not None:
        token_path = settings.token_file.expanduser()
        if not token_path.is_absolute():
            token_path = loaded.path.parent / token_path
    token = read_token(token_path) if token_path is not None else None
    host, _ = parse_listen(listen)
    if token is None and not is_loopback(host):
        raise UsageError(f"alerts serve: listening on {host} needs a bearer token (--token-file or "
                         "alerts.token_file): anyone who reaches it could open incidents")
    intake = build_alert_intake(loaded, extra_secrets=(token,) if token else ())

    def receive(body: bytes) -> tuple[dict[str, object], str]:
        receipt = intake.receive(body)
        return receipt.as_dict(), receipt.summary()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    server = WebhookServer(listen, receive, token, log)
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log(f"rewind: {signal.Signals(signum).name}: stopping once the requests in flight are journaled")
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        log(f"rewind: taking Alertmanager's webhook at {server.url}{ALERTS_PATH} into the "
            f"{intake.journal.describe()}; bearer token {'required' if token else 'not required'}")
        while not stopping.wait(3600):
            pass
    finally:
        server.stop()
        intake.journal.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_list(args: argparse.Namespace) -> int:
    """The alerts journaled in the open incidents, one row per episode, with the suggestion and why."""
    from console.commands.journal import journal_service
    from console.services.alerts import journaled_alerts

    service = journal_service(args)
    try:
        rows = episodes(journaled_alerts(service))
        journal = service.describe()
    finally:
        service.close()
    if args.json:
        document = {"schema": LIST_SCHEMA, "journal": journal, "alerts": [_row(r) for r in rows]}
        json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    if not rows:
        print(f"no alerts journaled in the open incidents of the {journal}")
        return 0
    for r in rows:
        where = " ".join(part for part in (r.model, f"v{r.version}" if r.version else None, r.segment) if part)
        print(f"{r.incident_id}  {r.status:<8}  {r.alertname}  {where}  since {r.starts_at[:19]}Z"
              + (f"  until {r.ends_at[:19]}Z" if r.ends_at else ""))
        suggestion = r.suggestion or {}
        playbook = suggestion.get("playbook")
        print(f"    {'playbook ' + str(playbook) if playbook else 'no playbook'}: {suggestion.get('why', '')}")
    return 0


def _row(record: JournaledAlert) -> dict[str, object]:
    return {"incident": record.incident_id, "episode": record.episode, "status": record.status,
            "alertname": record.alertname, "model": record.model, "version": record.version,
            "segment": record.segment, "starts_at": record.starts_at, "ends_at": record.ends_at,
            "summary": record.summary, "recorded_at": record.recorded_at,
            "suggestion": dict(record.suggestion) if record.suggestion else None}
