"""Shadow + promote and the fallback's actions with fake registry and router (the journal is a real SQLite file)."""

from __future__ import annotations

import pytest

from console.domain.errors import ConflictError, RegistryError, UsageError
from console.domain.journal import EventKind
from console.domain.rollback import ActionKind, Plan
from console.domain.routing import Mirror
from console.domain.shadow import GateClock, GateReading, GateVerdict, SegmentEvidence, SegmentVerdict
from console.services.fallback import FallbackService
from console.services.rollback import RefusedError
from console.services.shadow import ShadowService
from tests.unit import test_rollback_service
from tests.unit.test_rollback_service import MODEL, kinds

world = test_rollback_service.world  # the same fake registry and router, real SQLite journal


class FakeGate:
    """A gate whose reading the test sets; the rest of ShadowGate's interface that ShadowService reads."""

    def __init__(self, holds: bool) -> None:
        self.holds = holds
        self.window_s = 600.0
        self.limits = None

    def over_window(self, model, shadow, champion, started_at, now, price=None, mirrored_share=1.0):
        verdict = GateVerdict.PASS if self.holds else GateVerdict.HOLD
        segment = SegmentVerdict("eu", verdict, "proven" if self.holds else "too few pairs (40 of ≥ 75 needed)",
                                 (), SegmentEvidence("eu"))
        return GateReading(model, shadow, champion, now, (segment,), GateClock(600.0 if self.holds else 0.0, 600.0))


def test_start_promote_revert_and_stop_move_alias_weights_and_mirror(world):
    build, registry, router, journal, incident = world
    service = build()
    shadow = ShadowService(service, FakeGate(holds=True))
    started = service.apply(shadow.start_preview(MODEL, "3", 50, "try v3"), incident)
    assert started.status == "applied"
    assert router.mirror == Mirror("3", "2", 50) and registry.aliases["shadow"] == "3"
    assert router.weights == {"1": 0, "2": 90, "3": 10}  # a shadow moves no traffic

    preview, gate = shadow.promote_preview(MODEL, "held its gate")
    assert gate.holds and preview.plan.kind is ActionKind.PROMOTE
    assert service.apply(preview, incident).status == "applied"
    assert router.weights == {"1": 0, "2": 0, "3": 100}
    assert registry.aliases == {"champion": "3", "shadow": "2"}  # the challenger was the shadow: it is champion
    assert router.mirror == Mirror("2", "3", 50)  # the old champion now in shadow, kept warm

    back, where = shadow.revert_preview(MODEL)
    assert back.plan.undoes == preview.plan.action_id and where == incident
    assert service.apply(back, incident).status == "applied"
    assert router.weights == {"1": 0, "2": 90, "3": 10}
    assert registry.aliases == {"champion": "2", "challenger": "3", "shadow": "3"}
    assert router.mirror == Mirror("3", "2", 50)
    with pytest.raises(UsageError, match="no applied promotion"):
        shadow.revert_preview(MODEL)  # the only promotion is undone

    assert service.apply(shadow.stop_preview(MODEL), incident).status == "applied"
    assert router.mirror is None and "shadow" not in registry.aliases


def test_a_promotion_is_refused_until_the_gate_held_and_an_override_needs_a_reason(world):
    build, registry, router, journal, incident = world
    service = build()
    shadow = ShadowService(service, FakeGate(holds=False))
    service.apply(shadow.start_preview(MODEL, "3"), incident)
    with pytest.raises(RefusedError, match="gate has not held: HOLD in eu: too few pairs"):
        shadow.promote_preview(MODEL)
    with pytest.raises(UsageError, match="needs a reason"):
        shadow.promote_preview(MODEL, override=True)
    preview, _ = shadow.promote_preview(MODEL, "the release cannot wait", override=True)
    assert "OVERRIDE" in preview.why_target
    assert router.weights == {"1": 0, "2": 90, "3": 10}


def test_a_changed_mirror_is_a_conflict_and_changes_nothing(world):
    build, registry, router, journal, incident = world
    service = build()
    shadow = ShadowService(service, FakeGate(holds=True))
    preview = shadow.start_preview(MODEL, "3")
    router.mirror = Mirror("1", "2", 100)  # someone else set a mirror after the preview
    with pytest.raises(ConflictError, match="the mirror is v1 shadows v2"):
        service.apply(preview, incident)
    assert router.mirror == Mirror("1", "2", 100) and "shadow" not in registry.aliases


def test_a_registry_failure_after_the_mirror_changed_puts_the_router_back(world):
    build, registry, router, journal, incident = world
    service = build()
    shadow = ShadowService(service, FakeGate(holds=True))
    preview = shadow.start_preview(MODEL, "3")
    registry.fail_writes = True
    with pytest.raises(RegistryError, match="router weights restored"):
        service.apply(preview, incident)
    assert router.mirror is None  # compensated
    assert kinds(journal, incident)[-1] == "action.compensated"


def test_a_killed_start_is_recovered_from_the_mirror_it_left(world):
    build, registry, router, journal, incident = world
    service = build()
    plan = ShadowService(service, FakeGate(holds=True)).start_preview(MODEL, "3").plan
    journal.record(incident, EventKind.ACTION_INTENT, {"action_id": plan.action_id, "plan": plan.to_dict()})
    router.mirror = plan.mirror_after  # the console died after the mirror, before the alias
    [report] = service.recover(lambda holder: False)
    assert "partly applied" in report
    assert Plan.from_dict(plan.to_dict()) == plan


def test_a_shadow_needs_a_champion_and_another_version(world):
    build, registry, router, journal, incident = world
    shadow = ShadowService(build(), FakeGate(holds=True))
    with pytest.raises(UsageError, match="cannot shadow itself"):
        shadow.start_preview(MODEL, "2")
    with pytest.raises(UsageError, match="no server in the router"):
        shadow.start_preview(MODEL, "7")
    with pytest.raises(UsageError, match="1 to 100"):
        shadow.start_preview(MODEL, "3", percent=0)


def test_engage_takes_the_serving_primaries_out_and_its_undo_puts_them_back(world):
    build, registry, router, journal, incident = world
    service = build()
    fallback = FallbackService(service, sleep=lambda s: None)
    preview = fallback.engage_preview(MODEL, "drill")
    assert preview.plan.servers_after == {"v2": "maint", "v3": "maint"}  # v1 has no weight: left alone
    assert service.apply(preview, incident).status == "applied"
    assert router.admin == {"v1": "ready", "v2": "maint", "v3": "maint", "fallback": "ready"}
    back, _ = service.undo_preview(preview.plan.action_id)
    assert service.apply(back, incident).status == "applied"
    assert set(router.admin.values()) == {"ready"}
    assert fallback.restore_preview(MODEL).plan.is_noop


def test_a_server_without_health_checks_counts_as_up_so_the_fallback_is_not_seen_engaged():
    from console.domain.routing import FallbackState, ServerHealth

    unchecked = ServerHealth("v3", "3", False, "no check", "", 10, 10, 0)
    backup = ServerHealth("fallback", None, True, "UP", "L7OK", 0, 0, 0)
    state = FallbackState("be", (ServerHealth("v2", "2", False, "DOWN", "L7STS", 5, 0, 5), unchecked, backup))
    assert unchecked.up and not state.engaged({"2": 0, "3": 100})
    assert state.engaged({"2": 100, "3": 0})
