"""The real ``rewind tui`` binary in tmux, driven by keys, against the sandbox's real systems.

A responder's whole drill, as they would do it: the regression shows as a
breach, ``r`` previews the rollback, the model's name is typed, the outcome is
shown; then MLflow and HAProxy themselves are asked whether the alias and the
weights changed, the incident is exported from the timeline, and ``ctrl+q``
ends the process. Every wait fails with what the screen showed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.adapters.journal_sql import SqlJournal
from console.config import load_config
from console.domain.journal import EventKind
from console.wiring import build_registry, build_router
from tests.fixtures.servers import require_binary, run_cli
from tests.fixtures.tmux import EXITED, Tmux, console_in_tmux_session

pytestmark = pytest.mark.integration

MODEL = "fraud-detector"
START_WEIGHTS = {"1": 0, "2": 90, "3": 10}
START_ALIASES = {"champion": "2", "challenger": "3", "fallback": "4"}
# What the rollback's preview plans from that start: v3 (the challenger) drained into v2, its alias removed.
PLANNED_WEIGHTS = {"1": 0, "2": 100, "3": 0}
PLANNED_ALIASES = {"champion": "2", "fallback": "4"}


def steadily(condition: Callable[[str], bool], seconds: float) -> Callable[[str], bool]:
    """``condition`` on every screen read for ``seconds`` in a row: a verdict the next read will still give (a
    cell that has just crossed the line can fall back under it at the next refresh)."""
    since: list[float] = []

    def check(screen: str) -> bool:
        if not condition(screen):
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= seconds

    return check


def champion_calm_and_challenger_breaching(screen: str) -> bool:
    """The matrix shows v3 breaching somewhere and no v2 row breaching (so the rollback verifies)."""
    rows = [line.split() for line in screen.splitlines()]
    rows = [(row[1].rstrip("*"), row) for row in rows if len(row) > 3]  # segment, version, verdict, ...
    challenger = any(version == "v3" and "BREACH" in row for version, row in rows)
    champion = [row for version, row in rows if version == "v2"]
    return challenger and bool(champion) and not any("BREACH" in row for row in champion)


@pytest.fixture(scope="module")
def own_sandbox_config(tmp_path_factory) -> Iterator[str]:
    """A sandbox of this module's own: the rollback starves v3 of traffic, which the other tests'
    shared sandbox would still show in its one-minute metric window after the weights are put back."""
    from console.sandbox.manager import Sandbox
    from tests.fixtures.servers import SANDBOX_RATE

    require_binary("haproxy", "haproxy")
    require_binary("prometheus", "prometheus")
    box = Sandbox(tmp_path_factory.mktemp("console-sandbox"))
    try:
        box.up(rate=SANDBOX_RATE, say=lambda line: None)
        yield str(box.config_path)
    finally:
        box.down()


@pytest.fixture
def sandbox_config(own_sandbox_config) -> str:
    return own_sandbox_config


@pytest.fixture
def systems(sandbox_config) -> Iterator[tuple]:
    """The sandbox's router and registry from its config; put back as they were after the test."""
    config = load_config(sandbox_config, environ={}).config
    router, registry = build_router(config), build_registry(config)
    assert router.read_state(MODEL).weights() == START_WEIGHTS
    assert registry.get_aliases(MODEL).aliases == START_ALIASES
    yield router, registry
    run_cli("sandbox", "scenario", "healthy", "--dir", str(Path(sandbox_config).parent))
    router.set_weights(MODEL, START_WEIGHTS, expected=None)
    for alias, version in START_ALIASES.items():
        registry.set_alias(MODEL, alias, version, expected=registry.get_aliases(MODEL).version_of(alias))


@pytest.fixture
def console_in_tmux(sandbox_config, tmp_path) -> Iterator[tuple[Tmux, Path, str]]:
    """``rewind tui`` in a tmux session of its own; the tmux, the export directory, the journal URL."""
    exports = tmp_path / "exports"
    exports.mkdir()
    journal_url = f"sqlite:///{tmp_path / 'journal.db'}"
    settings = {"REWIND_JOURNAL__URL": journal_url, "REWIND_EXPORT_DIR": str(exports),
                "REWIND_ROLLBACK__VERIFY_WINDOW_S": "5", "REWIND_ROLLBACK__POLL_INTERVAL_S": "0.5"}
    with console_in_tmux_session(["tui", "--config", sandbox_config], settings, tmp_path) as tmux:
        yield tmux, exports, journal_url


def test_a_responder_rolls_back_the_regression_in_the_real_console(sandbox_config, systems, console_in_tmux):
    router, registry = systems
    tmux, exports, journal_url = console_in_tmux
    tmux.wait(lambda screen: "fraud-detector" in screen and "router ok" in screen, 30,
              "the overview to paint with the router read")

    switched = run_cli("sandbox", "scenario", "regression", "--dir", str(Path(sandbox_config).parent))
    assert switched.returncode == 0, switched.stderr
    tmux.wait(champion_calm_and_challenger_breaching, 75, "v3 to show BREACH in the matrix while v2 does not")

    tmux.keys("r")
    dialog = tmux.wait(lambda screen: re.search(rf"Type .*{MODEL}.* to roll back", screen), 30,
                       "the typed confirmation")
    assert "v3 → v2" in dialog and "(removed)" in dialog, dialog  # the preview: v3 drained, its alias removed
    tmux.keys(MODEL, literal=True)  # Cancel has the focus: typing goes into the name field
    tmux.keys("Enter")
    outcome = tmux.wait(lambda screen: "registry aliases now" in screen, 60, "the rollback's outcome")
    assert "router weights now   v1: 0, v2: 100, v3: 0" in outcome, outcome
    assert "registry aliases now champion → v2" in outcome, outcome
    assert "verified: v3 got" in outcome and "NOT verified" not in outcome, outcome

    # The systems themselves, not the console, say what changed.
    assert router.read_state(MODEL).weights() == PLANNED_WEIGHTS, outcome
    assert registry.get_aliases(MODEL).aliases == PLANNED_ALIASES, outcome
    journal = SqlJournal(journal_url)
    try:
        [incident] = journal.incidents()
        [applied] = list(journal.events(incident.incident_id, [EventKind.ACTION_APPLIED]))
        [verified] = list(journal.events(incident.incident_id, [EventKind.ACTION_VERIFIED]))
    finally:
        journal.close()
    action_id = applied.payload["action_id"]
    assert verified.payload["action_id"] == action_id

    tmux.keys("Escape")
    tmux.wait(lambda screen: "registry aliases now" not in screen and "r roll back" in screen, 10,
              "the progress dialog to close")
    tmux.keys("t")
    tmux.wait(lambda screen: incident.incident_id in screen and "x export" in screen, 10, "the timeline")
    tmux.keys("x")
    tmux.wait(lambda screen: f"Export incident {incident.incident_id}" in screen, 10, "the export dialog")
    tmux.keys("m")
    exported = exports / f"{incident.incident_id}.md"
    # The notification (it comes once the file is written) wraps the long path: its first word will do.
    tmux.wait(lambda screen: "wrote" in screen and exported.exists(), 30, f"the export to {exported}")
    markdown = exported.read_text(encoding="utf-8")
    assert markdown.startswith(f"# Post-mortem: rollback of {MODEL}: v3 → v2"), markdown[:500]
    assert incident.incident_id in markdown and action_id in markdown and "verified" in markdown

    shell = tmux.pane("#{pane_pid}")
    [console] = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()  # env exec'd rewind
    tmux.keys("C-q")
    ended = tmux.wait(lambda screen: EXITED in screen, 15, "the console to exit on ctrl+q")
    assert f"{EXITED}0]" in ended, ended
    assert tmux.pane("#{pane_dead}") == "1"
    assert not Path(f"/proc/{console}").exists(), f"the console (pid {console}) still exists after ctrl+q"


def test_a_responder_walks_the_canary_playbook_in_the_real_console(sandbox_config, systems, console_in_tmux):
    """``p``, canary-regression ranked first, the choice answered with a reason, the name typed: drained."""
    router, registry = systems
    tmux, _, journal_url = console_in_tmux
    tmux.wait(lambda screen: "fraud-detector" in screen and "router ok" in screen, 30,
              "the overview to paint with the router read")
    switched = run_cli("sandbox", "scenario", "regression", "--dir", str(Path(sandbox_config).parent))
    assert switched.returncode == 0, switched.stderr
    # The picker reads the systems afresh: the breach must be one that holds, not one refresh's.
    tmux.wait(steadily(champion_calm_and_challenger_breaching, 6.0), 90,
              "v3 to show BREACH in the matrix while v2 does not, for 6 s in a row")

    tmux.keys("p")
    picker = tmux.wait(lambda screen: "matches" in screen and "reading the systems" not in screen, 30,
                       "the playbooks ranked on the current verdicts")
    assert "▸ canary-regression v1  matches 2 of 2" in picker, picker
    tmux.keys("Enter")
    question = tmux.wait(lambda screen: "YOUR ANSWER" in screen and "▸ drain" in screen, 60,
                         "the walkthrough to wait at its choice")
    assert "✗ FAIL" in question or "✓ PASS" in question, question  # a check's verdict, in words
    tmux.keys("Enter")  # no reason yet: the console asks for one and moves to the reason field
    tmux.wait(lambda screen: "a reason is required" in screen, 10, "the reason to be required")
    tmux.keys("v3 breaches in the sandbox", literal=True)
    tmux.keys("Enter")
    dialog = tmux.wait(lambda screen: re.search(rf"Type .*{MODEL}.* to roll back", screen), 30,
                       "the typed confirmation of the drain step")
    assert "(step drain)" in dialog and "v3 → v2" in dialog, dialog
    tmux.keys(MODEL, literal=True)
    tmux.keys("Enter")
    ended = tmux.wait(lambda screen: "ENDED:" in screen, 120, "the run to end")
    assert "✓ ENDED: rolled_back" in ended, ended
    # The header can say so a frame before the story's last lines arrive (seen once on a fresh clone).
    tmux.wait(lambda screen: "notification · oncall" in screen, 15, "the oncall notification in the story")

    # HAProxy and MLflow themselves, not the console, say what changed.
    assert router.read_state(MODEL).weights() == PLANNED_WEIGHTS, ended
    assert registry.get_aliases(MODEL).aliases == PLANNED_ALIASES, ended
    journal = SqlJournal(journal_url)
    try:
        [incident] = journal.incidents()
        finished = [e.payload["step_id"] for e in journal.events(incident.incident_id, [EventKind.STEP_FINISHED])]
        [decision] = [e for e in journal.events(incident.incident_id, [EventKind.DECISION])
                      if e.payload.get("step_id") == "decide"]
        [outcome] = list(journal.events(incident.incident_id, [EventKind.PLAYBOOK_FINISHED]))
    finally:
        journal.close()
    assert finished[0] == "orient" and finished[-1] == "rolled-back", finished
    assert {"decide", "drain", "settle", "tell-drained"} <= set(finished), finished
    assert decision.payload["option"] == "drain" and decision.payload["reason"] == "v3 breaches in the sandbox"
    assert outcome.payload["outcome"] == "rolled_back"

    tmux.keys("Escape")
    tmux.wait(lambda screen: "r roll back" in screen and "YOUR ANSWER" not in screen, 10, "the overview again")
