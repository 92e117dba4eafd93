"""``rewind drill``'s own rules with a fake runner and fault injector (the journal is a real SQLite file).

The whole drill on the real sandbox is tests/integration/test_readiness.py's first step.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from console.adapters.journal_sql import SqlJournal
from console.domain.errors import UsageError
from console.domain.journal import Actor
from console.domain.playbook import Playbook, Step, StepKind
from console.services.drills import DrillService
from console.services.journal import JournalService

MODEL = "m"
PLAYBOOK = Playbook("canary-regression", "Canary", 1, (Step("end", StepKind.END, outcome="rolled_back"),), "end")


class Faults:
    def __init__(self):
        self.injected: list[str] = []

    def describe(self):
        return "the fake sandbox"

    def scenarios(self):
        return ("healthy", "regression")

    def inject(self, scenario):
        self.injected.append(scenario)


class Clock:
    def __init__(self):
        self.now = 1_800_000_000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def drill_world(tmp_path):
    clock = Clock()
    journal = JournalService(SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}"), Actor("alice", "host"), clock=clock)
    breaches: list[list[str]] = []  # each snapshot pops the next answer; the last one stays
    matrix = SimpleNamespace(breaches=lambda: breaches[0] if len(breaches) == 1 else breaches.pop(0))
    runner = SimpleNamespace(rollback=SimpleNamespace(journal=journal), snapshot=lambda model: SimpleNamespace(
        matrix=matrix), started=[])
    runner.start = lambda *args, **kwargs: runner.started.append(kwargs) or pytest.fail("the playbook must not run")
    faults = Faults()
    yield DrillService(runner, faults, clock=clock, sleep=clock.sleep), journal, faults, breaches
    journal.close()


def test_a_drill_whose_breach_never_shows_lifts_the_fault_and_closes_its_incident(drill_world):
    service, journal, faults, breaches = drill_world
    breaches.append([])  # calm before, and the fault never shows
    with pytest.raises(UsageError, match="no breach within 60s"):
        service.drill(PLAYBOOK, "", MODEL, face=None, restore_face=None, scenario="regression", detect_timeout_s=60)
    assert faults.injected == ["regression", "healthy"]
    [incident] = journal.incidents()
    assert incident.drill and incident.status == "closed"
    assert "stopped: the judge showed no breach" in incident.resolution and "fault 'regression' lifted" in \
        incident.resolution
    assert journal.open_incident_of(MODEL) is None


def test_a_drill_waits_for_a_calm_model_before_its_fault(drill_world):
    service, journal, faults, breaches = drill_world
    breaches.extend([["v3 mobile error rate"]] * 3 + [[]])  # the last drill's breach still in the window, then calm
    with pytest.raises(UsageError, match="no breach"):
        service.drill(PLAYBOOK, "", MODEL, face=None, restore_face=None, scenario="regression", detect_timeout_s=30)
    # Injected only once the model was calm: three snapshots breached first, two seconds apart.
    [incident] = journal.incidents()
    assert faults.injected[0] == "regression"
    assert incident.opened_at > "2027-01-15T08:00:05"


def test_a_model_that_never_calms_down_gets_no_fault(drill_world):
    service, journal, faults, breaches = drill_world
    breaches.append(["v3 mobile error rate"])  # breaching, and it stays so
    with pytest.raises(UsageError, match="m still breaches 30s later: a drill needs a calm model"):
        service.drill(PLAYBOOK, "", MODEL, face=None, restore_face=None, scenario="regression", detect_timeout_s=30)
    assert faults.injected == []


def test_a_scenario_needs_a_fault_injector_and_one_it_knows(drill_world):
    service, journal, faults, _ = drill_world
    with pytest.raises(UsageError, match="no scenario 'outage'"):
        service.drill(PLAYBOOK, "", MODEL, face=None, restore_face=None, scenario="outage")
    service.faults = None
    with pytest.raises(UsageError, match="needs a sandbox"):
        service.drill(PLAYBOOK, "", MODEL, face=None, restore_face=None, scenario="regression")
    assert faults.injected == [] and journal.incidents() == []
