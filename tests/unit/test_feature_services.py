"""Feature rollbacks with fake registry, store and telemetry, carried out by the real action procedure and journal."""

from __future__ import annotations

import pytest

from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.domain.errors import ConflictError, RegistryError, UsageError
from console.domain.feature_store import ViewInfo, ViewVersion, rollback_target
from console.domain.journal import Actor, EventKind
from console.services.features import (
    FeatureActions,
    FeatureCatalog,
    FeatureEvidence,
    FeatureRollbacks,
    FeatureSettings,
    feature_signature,
)
from console.services.journal import JournalService
from console.services.rollback import Preview, RollbackService, RollbackSettings, new_action_id
from tests.fixtures.fakes import FakeRouter
from tests.fixtures.feature_fakes import TAG, FakeStore, FakeTelemetry, TaggedRegistry

MODEL = "m"
@pytest.fixture
def world(tmp_path):
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    service_journal = JournalService(journal, Actor("alice", "host"))
    registry, router, store = TaggedRegistry(MODEL, shared_with=(("other-model", "7"),)), FakeRouter(), FakeStore()
    telemetry = FakeTelemetry(registry, store)
    settings = FeatureSettings(verify_window_s=0.0, poll_interval_s=0.0)
    evidence = FeatureEvidence(telemetry, settings)
    metrics = type("M", (), {"describe": lambda self: "m", "evaluate": lambda self, specs, model, at=None: {}})()
    actions = FeatureActions(registry, store, evidence, metrics, (), None, settings, sleep=lambda s: None)
    service = RollbackService(registry, router, metrics, service_journal, SqlActionLock(journal), (), None,
                              settings=RollbackSettings(poll_interval_s=0.0), features=actions)
    planner = FeatureRollbacks(FeatureCatalog(registry, store, evidence, settings, journal=service_journal),
                               new_action_id)
    incident = service_journal.open_incident(MODEL, "2", "test").incident_id
    yield service, planner, registry, router, store, incident
    journal.close()


def preview_of(planned):
    from console.domain.routing import RouterState

    return Preview(planned.plan, "test", None, None, feature_signature(), RouterState(MODEL, ()), planned.already,
                   planned.details)


def test_the_target_is_the_newest_older_version_with_other_code():
    view = ViewInfo("t", 3, (ViewVersion("t", 0, "aa"), ViewVersion("t", 1, "bb"), ViewVersion("t", 2, "bb"),
                             ViewVersion("t", 3, "bb")))
    assert rollback_target(view, 3).number == 0
    with pytest.raises(UsageError, match="same transformation"):
        rollback_target(view, 3, to=2)
    with pytest.raises(UsageError, match="no version v9"):
        rollback_target(view, 3, to=9)


def test_the_preview_pins_the_previous_transformation_and_shows_diff_and_blast_radius(world):
    service, planner, registry, router, store, incident = world
    planned = planner.preview(MODEL)
    plan = planned.plan
    assert plan.feature_service == {"name": "fraud_features__pin_txn_features_v0", "features": ["txn_features@v0"]}
    assert [(m.version, m.before, m.after) for m in plan.tag_moves] == [
        (v, "fraud_features", "fraud_features__pin_txn_features_v0") for v in ("1", "2", "3")]
    assert plan.moved_versions == () and plan.alias_moves == ()
    details = "\n".join(planned.details)
    assert "-    return {'amount': [log(a) - 3.5" in details and "+    return {'amount': [log(a / 100) - 3.5" in details
    assert "other-model v7" in details  # another model shares the service: listed, and not moved
    assert "feast apply" in details


def test_apply_moves_only_the_tags_then_undo_restores_them(world):
    service, planner, registry, router, store, incident = world
    weights, aliases = dict(router.weights), dict(registry.aliases)
    outcome = service.apply(preview_of(planner.preview(MODEL)), incident)
    assert outcome.status == "applied"
    assert {v: t[TAG] for v, t in registry.tags.items()} == dict.fromkeys(("1", "2", "3"),
                                                                          "fraud_features__pin_txn_features_v0")
    assert router.weights == weights and registry.aliases == aliases and store.active == 1
    verified = service.verify(incident, _applied_plan(service, incident))
    assert verified.status == "verified", verified.message
    undo, _ = service.undo_preview(_applied_plan(service, incident).action_id)
    assert service.apply(undo, incident).status == "applied"
    assert {t[TAG] for t in registry.tags.values()} == {"fraud_features"}
    kinds = [e.kind for e in service.journal.journal.events(incident)]
    assert kinds.count(EventKind.ACTION_APPLIED) == 2 and EventKind.ACTION_VERIFIED in kinds


def _applied_plan(service, incident):
    from console.domain.rollback import Plan

    intents = list(service.journal.journal.events(incident, [EventKind.ACTION_INTENT]))
    return Plan.from_dict(intents[0].payload["plan"])


def test_a_failing_tag_write_puts_back_the_tags_already_moved(world):
    service, planner, registry, router, store, incident = world
    preview = preview_of(planner.preview(MODEL))
    registry.fail_tag_of = "3"
    with pytest.raises(RegistryError, match="what had moved was put back"):
        service.apply(preview, incident)
    assert {t[TAG] for t in registry.tags.values()} == {"fraud_features"}
    last = list(service.journal.journal.events(incident))[-1]
    assert last.kind is EventKind.ACTION_COMPENSATED and last.payload["restored"] is True
    assert service.lock.holder(MODEL) is None


def test_a_tag_moved_by_hand_after_the_preview_is_a_conflict_and_nothing_changes(world):
    service, planner, registry, router, store, incident = world
    preview = preview_of(planner.preview(MODEL))
    registry.tags["2"][TAG] = "someone_elses"
    with pytest.raises(ConflictError, match="v2 tag feast.feature_service is someone_elses"):
        service.apply(preview, incident)
    assert registry.tags["1"][TAG] == "fraud_features" and registry.tags["3"][TAG] == "fraud_features"
    assert "fraud_features__pin_txn_features_v0" not in store.services_  # nothing created before the compare


def test_a_global_pin_moves_the_view_for_every_consumer_and_lists_them(world):
    service, planner, registry, router, store, incident = world
    planned = planner.preview(MODEL, whole_view=True)
    assert planned.plan.view_pin is not None and planned.plan.tag_moves == ()
    assert "other-model v7" in "\n".join(planned.details)
    assert service.apply(preview_of(planned), incident).status == "applied"
    assert store.active == 0 and {t[TAG] for t in registry.tags.values()} == {"fraud_features"}
    undo, _ = service.undo_preview(planned.plan.action_id)
    service.apply(undo, incident)
    assert store.active == 1


def test_rerunning_an_applied_feature_rollback_changes_nothing(world):
    service, planner, registry, router, store, incident = world
    service.apply(preview_of(planner.preview(MODEL)), incident)
    again = planner.preview(MODEL)  # every version now reads the pinned service at v0: nothing older to go to
    assert again.plan.is_noop and "already reads txn_features@v0" in (again.already or "")
    assert service.apply(preview_of(again), incident).status == "already_applied"
    with pytest.raises(UsageError, match="no version v7"):
        planner.preview(MODEL, to=7)


def test_the_rolled_back_transformation_coming_back_is_a_finding_until_undone(world):
    service, planner, registry, router, store, incident = world
    catalog = planner.catalog
    planned = planner.preview(MODEL)
    assert planned.plan.rolls_back == {"view": "txn_features", "version": "v1", "udf_sha": "bbbb11111111"}
    service.apply(preview_of(planned), incident)
    assert not [f for f in catalog.feature_map(MODEL).findings if "rolled back" in f]
    # The unfixed repository applied again: Feast saves the same bad code under a new number and makes it active.
    store.versions += (ViewVersion("txn_features", 2, "bbbb11111111", 3.0, store.versions[1].source),)
    store.active = 2
    [finding] = [f for f in catalog.feature_map(MODEL).findings if "rolled back" in f]
    assert finding.startswith(f"txn_features v2 is the transformation {planned.plan.action_id} rolled back "
                              "(sha bbbb11111111, was v1)")
    undo, _ = service.undo_preview(planned.plan.action_id)
    service.apply(undo, incident)
    assert not [f for f in catalog.feature_map(MODEL).findings if "rolled back" in f]
