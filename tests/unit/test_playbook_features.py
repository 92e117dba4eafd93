"""Playbooks and feature bugs: the ``diagnosis`` entry condition, the ``gate: diagnosis`` check, the
``features`` action, the shipped feature-bug and data-drift playbooks, and the post-mortem's trigger.

The runner is driven over fakes (registry tags, a feature store, the servers' reports) with the real action
procedure and journal; the diagnosis is given (its rules are tested in test_domain_features.py).
"""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import pytest

from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.adapters.playbook_files import PlaybookFiles
from console.adapters.playbook_yaml import read_playbook_text
from console.domain.features import Binding, Cause, Diagnosis
from console.domain.journal import Actor, EventKind, IncidentHead
from console.domain.playbook import ActionKind, EntryCondition, StepKind
from console.domain.playbook_check import structure_hash
from console.domain.playbook_run import judge_diagnosis, match_entry
from console.domain.rollback import Plan
from console.domain.verdicts import build_matrix
from console.services.features import (
    FeatureActions,
    FeatureCatalog,
    FeatureEvidence,
    FeatureReading,
    FeatureRollbacks,
    FeatureSettings,
)
from console.services.journal import JournalService
from console.services.playbooks import PlaybookRunner
from console.services.rollback import RollbackService, RollbackSettings, new_action_id
from console.services.timeline import build_view, clock_for, export
from tests.fixtures.fakes import FakeRouter
from tests.fixtures.feature_fakes import TAG, FakeStore, FakeTelemetry, TaggedRegistry
from tests.unit.test_playbook_runner import CONTEXT, SHIPPED, Face, Notifier, load

MODEL = "fraud-detector"
PINNED = "fraud_features__pin_txn_features_v0"

FEATURE_BUG = Diagnosis(
    Cause.FEATURE, "feature bug: txn_features v1 — every version on it breaches; roll the features back, not the model",
    ("versions 2, 3 read txn_features v1 and every one of them breaches, in eu-web",
     "version 2 in eu-web: amount: PSI 4.21, 98% outside the training range (expected 1%), 0% missing, 412 values"),
    versions=("2", "3"), segments=("eu-web",),
    suspect=Binding("2", "fraud_features", "txn_features", "v1", "bbbb11111111", 1_700_000_000.0),
    advice="do not roll back the model: every version reading txn_features v1 breaches alike")
REGRESSION = Diagnosis(Cause.MODEL, "model regression: version 3 breaches in mobile, other versions pass",
                       ("version 3 breaches in mobile (judged in mobile)",), versions=("3",), segments=("mobile",))
DRIFT = Diagnosis(Cause.WORLD, "the world changed: every version breaches alike in eu-web",
                  ("every judged version (2, 3) breaches in eu-web",), versions=("2", "3"), segments=("eu-web",))


# -- fakes --------------------------------------------------------------------------------------------

class GivenDiagnosis:
    """The feature evidence's diagnosis, as given by the test (on the runner's own snapshot)."""

    def __init__(self, diagnosis):
        self.diagnosis = diagnosis
        self.snapshots = 0

    def reading(self, snapshot, read=None):
        self.snapshots += 1
        return FeatureReading(snapshot.model, (), (), self.diagnosis)


class NoMetrics:
    def describe(self):
        return "no metrics"

    def evaluate(self, specs, model, at=None):
        return {}


class System:
    """The rollback use case with its feature side over the fakes, and a runner over it."""

    def __init__(self, tmp_path, diagnosis=FEATURE_BUG, features=True):
        self.db = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
        self.journal = JournalService(self.db, Actor("alice", "bastion"))
        self.registry, self.router, self.store = TaggedRegistry(MODEL), FakeRouter(), FakeStore()
        settings = FeatureSettings(verify_window_s=0.0, poll_interval_s=0.0)
        evidence = FeatureEvidence(FakeTelemetry(self.registry, self.store), settings)
        metrics = NoMetrics()
        actions = FeatureActions(self.registry, self.store, evidence, metrics, (), None, settings,
                                 sleep=lambda s: None)
        self.service = RollbackService(self.registry, self.router, metrics, self.journal, SqlActionLock(self.db), (),
                                       None, settings=RollbackSettings(poll_interval_s=0.0), sleep=lambda s: None,
                                       features=actions)
        self.given = GivenDiagnosis(diagnosis)
        planner = FeatureRollbacks(FeatureCatalog(self.registry, self.store, evidence, settings), new_action_id)
        self.notifier = Notifier()
        self.now = time.time()  # a wait step's clock moves only when it sleeps
        self.runner = PlaybookRunner(self.service, PlaybookFiles([SHIPPED], CONTEXT), self.notifier, None,
                                     is_live=lambda holder: False, clock=lambda: self.now, sleep=self._sleep,
                                     features=planner if features else None, evidence=self.given)  # type: ignore[arg-type]

    def _sleep(self, seconds):
        self.now += seconds

    def events(self, incident_id, kinds=None):
        return list(self.db.events(incident_id, kinds))

    def service_tags(self):
        return {v: t[TAG] for v, t in self.registry.tags.items()}


@pytest.fixture
def system(tmp_path):
    made = System(tmp_path)
    yield made
    made.db.close()


class TextFace(Face):
    """The scripted face, keeping each step's rendered text too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.texts: dict[str, str] = {}

    def entering(self, step, visit, text):
        super().entering(step, visit, text)
        self.texts[step.id] = text


def finished_steps(system, incident_id):
    return [e.payload["step_id"] for e in system.events(incident_id, [EventKind.STEP_FINISHED])]


# -- the language ---------------------------------------------------------------------------------------

FEATURE_PLAYBOOK = """\
id: features-both-ways
version: 1
inputs:
  stable: {alias: champion}
when:
  - {diagnosis: feature}
  - {version: all, verdict: breach}
steps:
  - id: diagnose
    kind: check
    gate: diagnosis
    branches: {feature: roll, model: done, world: done, unsure: done}
  - id: roll
    kind: action
    action: features
    to: v0
    view: txn_features
    timeout: {minutes: 5, on_timeout: abort}
    dry_run: describe
    branches: {done: put-back, failed: done}
  - id: put-back
    kind: action
    action: features
    operation: undo
    timeout: {minutes: 5, on_timeout: abort}
    dry_run: describe
    branches: {done: done, failed: done}
  - id: done
    kind: end
    outcome: resolved
"""


def test_the_checker_reads_a_diagnosis_condition_a_diagnosis_check_and_features_actions():
    playbook, problems = read_playbook_text(FEATURE_PLAYBOOK, "both.yaml", CONTEXT)
    assert playbook is not None and not problems, problems
    assert playbook.when == (EntryCondition(diagnosis="feature"), EntryCondition("all", "breach"))
    diagnose = playbook.step("diagnose")
    assert (diagnose.kind, diagnose.gate, diagnose.branches) == (
        StepKind.CHECK, "diagnosis", {"feature": "roll", "model": "done", "world": "done", "unsure": "done"})
    roll, undo = playbook.step("roll"), playbook.step("put-back")
    assert (roll.action, roll.operation, roll.to, roll.view, roll.whole_view) == (
        ActionKind.FEATURES, "rollback", 0, "txn_features", None)  # rollback is the default operation
    assert (undo.action, undo.operation) == (ActionKind.FEATURES, "undo")
    global_pin, _ = read_playbook_text(FEATURE_PLAYBOOK.replace("view: txn_features", "global: true"), "g.yaml",
                                       CONTEXT)
    assert global_pin is not None and global_pin.step("roll").whole_view is True
    assert structure_hash(global_pin) != structure_hash(playbook)
    world, _ = read_playbook_text(FEATURE_PLAYBOOK.replace("{diagnosis: feature}", "{diagnosis: world}"), "w.yaml",
                                  CONTEXT)
    assert world is not None and structure_hash(world) != structure_hash(playbook)


def test_a_wrong_diagnosis_is_one_line_naming_the_file():
    playbook, problems = read_playbook_text(FEATURE_PLAYBOOK.replace("{diagnosis: feature}", "{diagnosis: data}"),
                                            "drift.yaml", CONTEXT)
    assert playbook is None
    assert [str(p) for p in problems] == [
        "drift.yaml:6:17: when[0].diagnosis: unknown diagnosis 'data': expected one of feature, model, world, unsure"]


def test_every_shipped_playbook_validates_and_the_new_ones_use_the_diagnosis():
    for path in sorted(SHIPPED.glob("*.yaml")):
        load(path.stem)
    feature_bug, _ = load("feature-bug")
    assert EntryCondition(diagnosis="feature") in feature_bug.when
    assert feature_bug.step(feature_bug.start).gate == "diagnosis"
    assert [s.action for s in feature_bug.steps if s.kind is StepKind.ACTION] == [ActionKind.FEATURES]
    assert not any(s.action in (ActionKind.ROLLBACK, ActionKind.PROMOTE) for s in feature_bug.steps)
    drift, _ = load("data-drift")
    assert drift.version >= 2 and drift.step(drift.start).gate == "diagnosis"


# -- judging ----------------------------------------------------------------------------------------------

def test_a_diagnosis_check_branches_on_the_cause():
    assert judge_diagnosis(FEATURE_BUG).branch == "feature"
    assert judge_diagnosis(REGRESSION).branch == "model"
    assert judge_diagnosis(DRIFT).branch == "world"
    unsure = Diagnosis(Cause.UNSURE, "not sure: only version 3 has a verdict", ())
    assert judge_diagnosis(unsure).branch == "unsure"
    nothing = judge_diagnosis(None)
    assert (nothing.branch, nothing.reason) == ("unsure", "no version breaches now: nothing to diagnose")
    assert judge_diagnosis(None, "Prometheus unreachable").reason == "no diagnosis: Prometheus unreachable"
    assert judge_diagnosis(FEATURE_BUG).reason.startswith("feature bug: txn_features v1")


def test_a_diagnosis_condition_holds_on_that_cause_only():
    playbook, _ = load("feature-bug")
    matrix = build_matrix((), {}, [], None, None)
    met = match_entry(playbook, matrix, {"stable": "2"}, FEATURE_BUG)
    assert met.reasons[0].startswith("✓ diagnosis: feature bug: txn_features v1")
    assert match_entry(playbook, matrix, {"stable": "2"}, DRIFT).reasons[0].startswith(
        "✗ diagnosis is world, not feature")
    assert match_entry(playbook, matrix, {"stable": "2"}, None).reasons[0] == \
        "✗ no diagnosis: no version breaches now"
    assert match_entry(playbook, matrix, {"stable": "2"}, FEATURE_BUG).met == \
        match_entry(playbook, matrix, {"stable": "2"}, None).met + 1


def test_the_picker_reads_the_diagnosis_over_the_same_snapshot_and_offers_feature_bug_first(system):
    playbooks = [load(path.stem)[0] for path in sorted(SHIPPED.glob("*.yaml"))]
    ranked = system.runner.rank(playbooks, MODEL)
    first, match = ranked[0]
    assert first.id == "feature-bug", [(p.id, m.reasons) for p, m in ranked]
    assert match.reasons[0].startswith("✓ diagnosis: feature bug")
    assert system.given.snapshots == 1


# -- runs -------------------------------------------------------------------------------------------------

def test_feature_bug_rolls_the_features_back_headless_and_never_the_model(system):
    playbook, text = load("feature-bug")
    weights, aliases = dict(system.router.weights), dict(system.registry.aliases)
    run = system.runner.start(playbook, text, MODEL, yes=True)
    face = TextFace(confirm=False)  # --yes: the face is never asked
    end = system.runner.drive(run, face)
    assert end.as_planned and end.state.finished == "rolled_back", face.lines
    incident = run.state.incident_id
    assert finished_steps(system, incident) == ["diagnose", "show-evidence", "roll-back-features",
                                                "tell-data-owners", "fix-before-apply", "rolled-back"]
    # The features moved, the model did not.
    assert system.service_tags() == dict.fromkeys(("1", "2", "3"), PINNED)
    assert PINNED in system.store.services_ and system.store.active == 1
    assert system.router.weights == weights and system.registry.aliases == aliases
    [intent] = system.events(incident, [EventKind.ACTION_INTENT])
    plan = Plan.from_dict(intent.payload["plan"])
    assert plan.kind.value == "features_rollback" and plan.moves_features
    assert [(m.version, m.before, m.after) for m in plan.tag_moves] == [
        (v, "fraud_features", PINNED) for v in ("1", "2", "3")]
    assert plan.weights_after == plan.weights_before and plan.alias_moves == () and plan.moved_versions == ()
    assert system.events(incident, [EventKind.ACTION_VERIFIED])
    [decision] = [e for e in system.events(incident, [EventKind.DECISION]) if e.payload.get("action_id")]
    assert decision.payload["confirmed_by"] == "--yes" and decision.payload["option"] == "features_rollback"
    # The diagnosis is the evidence, journaled at the check and again before the action.
    noted = [e for e in system.events(incident, [EventKind.NOTE]) if e.payload.get("diagnosis")]
    assert [e.payload["step_id"] for e in noted] == ["diagnose", "roll-back-features"]
    assert noted[0].payload["diagnosis"] == FEATURE_BUG.to_dict() and noted[0].payload["branch"] == "feature"
    assert noted[-1].seq < intent.seq
    # The responder was shown the evidence and told not to roll the model back.
    assert any("98% outside the training range" in line for line in face.lines)
    assert "Do NOT roll back the model" in face.texts["show-evidence"]
    assert "98% outside the training range" in face.texts["show-evidence"]
    assert "next `feast apply` of the unfixed" in face.texts["fix-before-apply"]
    # The data owners were told, with the evidence and the warning.
    [(channel, message, _)] = system.notifier.posts
    assert channel == "data-owners"
    assert "98% outside the training range" in message and "re-promotes" in message
    assert "model was not" in message


def test_feature_bug_hands_a_model_regression_over_and_changes_nothing(tmp_path):
    system = System(tmp_path, diagnosis=REGRESSION)
    try:
        playbook, text = load("feature-bug")
        run = system.runner.start(playbook, text, MODEL, yes=True)
        face = TextFace()
        end = system.runner.drive(run, face)
        assert end.state.finished == "escalated"
        assert finished_steps(system, run.state.incident_id) == ["diagnose", "model-not-features", "handed-over"]
        assert "canary-regression --model fraud-detector" in " ".join(face.texts["model-not-features"].split())
        assert "regression-after-promotion" in face.texts["model-not-features"]
        assert not system.events(run.state.incident_id, [EventKind.ACTION_INTENT])
        assert system.service_tags() == dict.fromkeys(("1", "2", "3"), "fraud_features")
    finally:
        system.db.close()


def test_data_drift_hands_a_feature_bug_over_to_feature_bug(system):
    playbook, text = load("data-drift")
    run = system.runner.start(playbook, text, MODEL)
    face = TextFace()
    end = system.runner.drive(run, face)
    assert end.state.finished == "escalated"
    assert finished_steps(system, run.state.incident_id) == ["diagnose", "hand-over-feature-bug", "handed-over"]
    assert f"rewind playbook run feature-bug --model {MODEL}" in face.texts["hand-over-feature-bug"]
    assert system.notifier.posts == []  # no "data drift suspected" to the data owners
    assert not system.events(run.state.incident_id, [EventKind.ACTION_INTENT])


def test_data_drift_goes_on_comparing_when_the_world_changed(tmp_path):
    system = System(tmp_path, diagnosis=DRIFT)
    try:
        playbook, text = load("data-drift")
        run = system.runner.start(playbook, text, MODEL)
        face = TextFace()
        system.runner.drive(run, face)
        assert face.entered[:2] == ["diagnose", "why-compare"]
    finally:
        system.db.close()


def test_a_features_undo_puts_this_runs_feature_rollback_back(system):
    playbook, problems = read_playbook_text(FEATURE_PLAYBOOK, "both.yaml", CONTEXT)
    assert playbook is not None, problems
    run = system.runner.start(playbook, FEATURE_PLAYBOOK, MODEL, yes=True)
    end = system.runner.drive(run, TextFace())
    assert end.state.finished == "resolved"
    results = {r.step_id: r for r in end.state.results}
    assert results["roll"].outcome == "done" and results["put-back"].outcome == "done", results
    assert results["put-back"].action_id != results["roll"].action_id
    assert system.service_tags() == dict.fromkeys(("1", "2", "3"), "fraud_features")
    intents = system.events(run.state.incident_id, [EventKind.ACTION_INTENT])
    assert [Plan.from_dict(e.payload["plan"]).undoes for e in intents] == [None, results["roll"].action_id]


def test_a_dry_run_describes_the_feature_rollback_and_moves_nothing(system):
    playbook, text = load("feature-bug")
    run = system.runner.start(playbook, text, MODEL, dry_run=True)
    face = TextFace()
    end = system.runner.drive(run, face)
    assert end.state.finished == "rolled_back"
    rolled = end.state.latest("roll-back-features")
    assert rolled is not None and rolled.summary.startswith(
        f"dry run: would feature rollback of {MODEL}: v1, v2, v3 fraud_features → {PINNED}")
    assert system.service_tags() == dict.fromkeys(("1", "2", "3"), "fraud_features")


def test_without_a_feature_store_a_features_action_fails_and_says_why(tmp_path):
    system = System(tmp_path, features=False)
    try:
        playbook, text = load("feature-bug")
        run = system.runner.start(playbook, text, MODEL, yes=True)
        end = system.runner.drive(run, TextFace())
        assert end.state.finished == "escalated"
        failed = end.state.latest("roll-back-features")
        assert failed is not None and failed.outcome == "failed" and "no feature store" in failed.reason
    finally:
        system.db.close()


# -- the post-mortem --------------------------------------------------------------------------------------

def _export(system, incident_id, fmt):
    head, events = system.journal.chain(incident_id)
    out = io.StringIO()
    export(build_view(IncidentHead(incident_id, head.seq, head.hash, events[0].ts), events), fmt, out,
           clock_for("UTC"), datetime(2026, 1, 1, tzinfo=UTC))
    return out.getvalue()


def test_the_post_mortem_trigger_gives_the_diagnosis_at_the_time_with_its_evidence(system):
    playbook, text = load("feature-bug")
    run = system.runner.start(playbook, text, MODEL, yes=True)
    system.runner.drive(run, TextFace())
    incident = run.state.incident_id
    markdown = _export(system, incident, "md")
    trigger = markdown.split("## Trigger\n", 1)[1].split("\n## ", 1)[0]
    assert "- Diagnosis at the time (" in trigger and "): feature bug: txn_features v1" in trigger
    assert "  - Evidence: versions 2, 3 read txn_features v1 and every one of them breaches, in eu-web" in trigger
    assert "  - Suspect: feature view txn_features v1 (sha bbbb11111111) through fraud_features" in trigger
    assert f"rolled back by A1 (verified): v1, v2, v3 fraud_features → {PINNED}" in trigger
    assert "weights and aliases were not touched" in trigger
    resolution = markdown.split("## Resolution\n", 1)[1].split("\n## ", 1)[0]
    assert f"Features: v1, v2, v3 fraud_features → {PINNED}." in resolution

    document = json.loads(_export(system, incident, "json"))
    diagnosis = document["trigger"]["diagnosis"]
    assert diagnosis["cause"] == "feature" and diagnosis["evidence"] == list(FEATURE_BUG.evidence)
    noted = [e for e in document["events"] if e["payload"].get("diagnosis")]
    assert diagnosis["event_seq"] == noted[-1]["seq"]  # the latest before the action
    assert any(line.startswith("Diagnosis at the time") for line in document["trigger"]["lines"])

    page = _export(system, incident, "html")
    section = page.split("<h2>Trigger</h2>", 1)[1].split("</section>", 1)[0]
    assert "): feature bug: txn_features v1" in section
    assert "<ul><li>Evidence: versions 2, 3 read txn_features v1" in section


def test_an_incident_without_a_diagnosis_keeps_its_trigger_as_it_was(system):
    incident = system.journal.open_incident(MODEL, "2", "by hand").incident_id
    system.journal.record(incident, EventKind.NOTE, {"text": "looked at it"})
    markdown = _export(system, incident, "md")
    trigger = markdown.split("## Trigger\n", 1)[1].split("\n## ", 1)[0]
    assert "Diagnosis" not in trigger
    assert json.loads(_export(system, incident, "json"))["trigger"] == {"diagnosis": None, "lines": []}
