"""Roles and the two-person rule, with real OS users running the real command against the sandbox.

Identity comes from the process's real user and groups: the tests set USER and
LOGNAME to ``root`` in every child's environment, and the console must not
believe them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from console.adapters.haproxy import HAProxyRouter
from console.adapters.journal_sql import SqlJournal
from console.adapters.mlflow_registry import MlflowRegistry
from console.domain.journal import EventKind
from console.sandbox.templates import backend_name
from tests.fixtures.os_users import cli_as, ensure_user, opened_up, require_root, traversable
from tests.fixtures.servers import wait_for

MODEL = "fraud-detector"
START_WEIGHTS = {"1": 0, "2": 90, "3": 10}
START_ALIASES = {"champion": "2", "challenger": "3", "fallback": "4"}


@pytest.fixture(scope="module")
def people():
    require_root()
    return {
        "alice": ensure_user("rewind-alice", "rewind-oncall"),   # may act
        "bob": ensure_user("rewind-bob", "rewind-leads"),        # may approve
        "eve": ensure_user("rewind-eve", None),                  # may only view
    }


@pytest.fixture
def team_config(sandbox, sandbox_config, postgres_url, tmp_path, people):
    """The sandbox's config with roles, the two-person rule, and a shared PostgreSQL journal."""
    config = yaml.safe_load(Path(sandbox_config).read_text())
    config["journal"] = {"url": postgres_url}
    config["roles"] = {
        "groups": {"rewind-oncall": ["view", "act"], "rewind-leads": ["view", "approve"]},
        "default": ["view"],
        "two_person": [MODEL],
        "approval_timeout_s": 60,
    }
    config["rollback"] = {"verify_window_s": 2, "poll_interval_s": 0.5}
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    state_dir = sandbox.dir
    router = HAProxyRouter(str(state_dir / "haproxy.sock"), {MODEL: backend_name(MODEL)})
    registry = MlflowRegistry(sandbox.load_state()["tracking_uri"])
    with traversable(Path(sys.executable), state_dir / "mlflow.db", path), \
            opened_up(state_dir, state_dir / "mlflow.db", state_dir / "haproxy.sock"):
        yield str(path), postgres_url
    router.set_weights(MODEL, START_WEIGHTS, expected=None)
    for alias, version in START_ALIASES.items():
        registry.set_alias(MODEL, alias, version, expected=registry.get_alias(MODEL, alias))


def decisions(url: str) -> list:
    journal = SqlJournal(url)
    try:
        return [e for head in journal.incidents() for e in journal.events(head.incident_id, [EventKind.DECISION])]
    finally:
        journal.close()


def test_a_user_without_act_is_refused_and_the_refusal_is_journaled(team_config, people, tmp_path, sandbox):
    config, url = team_config
    refused = cli_as(people["eve"], tmp_path / "eve", "rollback", "--config", config, "--yes")
    assert refused.returncode == 1, refused.stderr
    assert "user rewind-eve" in refused.stderr and "lacks the 'act' permission" in refused.stderr
    journal = SqlJournal(url)
    try:
        [failed] = [e for head in journal.incidents()
                    for e in journal.events(head.incident_id, [EventKind.ACTION_FAILED])]
    finally:
        journal.close()
    assert failed.payload["refused"] is True and failed.actor.user == "rewind-eve"
    assert HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {MODEL: backend_name(MODEL)}) \
        .read_state(MODEL).weights() == START_WEIGHTS


def test_two_person_rule_waits_for_a_different_user_with_approve(team_config, people, tmp_path, sandbox):
    config, url = team_config
    request = cli_as(people["alice"], tmp_path / "alice", "rollback", "--config", config, "--yes", "--json",
                     "--no-verify", background=True)
    try:
        def pending():
            found = [d for d in decisions(url) if d.payload.get("option") == "request_approval"]
            return found[0] if found else None

        asked = wait_for(pending, 60, "alice's request for approval")
        action = asked.payload["action_id"]
        assert asked.actor.user == "rewind-alice"
        router = HAProxyRouter(str(sandbox.dir / "haproxy.sock"), {MODEL: backend_name(MODEL)})
        assert router.read_state(MODEL).weights() == START_WEIGHTS  # nothing before the approval

        own = cli_as(people["alice"], tmp_path / "alice", "approve", action, "--config", config, "--yes")
        assert own.returncode == 1 and "cannot also approve" in own.stderr
        eve = cli_as(people["eve"], tmp_path / "eve", "approve", action, "--config", config, "--yes")
        assert eve.returncode == 1 and "lacks the 'approve' permission" in eve.stderr
        bob = cli_as(people["bob"], tmp_path / "bob", "approve", action, "--config", config, "--yes",
                     "--reason", "errors confirmed")
        assert bob.returncode == 0, bob.stderr

        out, err = request.communicate(timeout=120)
    finally:
        if request.poll() is None:
            request.kill()
    assert request.returncode == 0, err
    assert router.read_state(MODEL).weights() == {"1": 0, "2": 100, "3": 0}
    options = [(d.payload["option"], d.actor.user) for d in decisions(url)]
    assert ("approve", "rewind-bob") in options
    assert ("approval_refused", "rewind-alice") in options and ("approval_refused", "rewind-eve") in options
