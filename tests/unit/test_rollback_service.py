"""The rollback executor's rules with fake registry, router and metrics (the journal is a real SQLite file)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from console.adapters.journal_sql import SqlActionLock, SqlJournal
from console.domain.authority import Identity, Permission, Policy
from console.domain.errors import ConflictError, MetricsError, RegistryError, UsageError
from console.domain.journal import Actor, EventKind
from console.domain.rollback import Mode
from console.services.journal import JournalService
from console.services.rollback import RefusedError, RollbackService, RollbackSettings
from tests.fixtures.fakes import FakeRegistry, FakeRouter, signature

MODEL = "m"


class FakeMetrics:
    def describe(self):
        return "fake metrics"

    def evaluate(self, specs, model, at=None):
        return {}


@pytest.fixture
def world(tmp_path):
    journal = SqlJournal(f"sqlite:///{tmp_path / 'journal.db'}")
    service_journal = JournalService(journal, Actor("alice", "host"))
    registry, router = FakeRegistry(), FakeRouter()

    def build(policy=Policy(enforced=False), identity=Identity("alice"), metrics=None):
        settings = RollbackSettings(gate_window_s=0.0, poll_interval_s=0.0)
        return RollbackService(registry, router, metrics or FakeMetrics(), service_journal, SqlActionLock(journal),
                               (), None, settings=settings, policy=policy, identity=identity)

    incident = service_journal.open_incident(MODEL, "2", "test").incident_id
    yield build, registry, router, service_journal, incident
    journal.close()


def kinds(journal, incident):
    return [e.kind.value for e in journal.journal.events(incident)]


def test_incompatible_signatures_are_refused_unless_forced(world):
    build, registry, router, journal, incident = world
    registry.signatures["2"] = signature(("a", "double"), ("b", "string"))
    service = build()
    preview = service.preview(MODEL)
    assert not preview.signature.compatible and "'b'" in preview.signature.reason
    with pytest.raises(RefusedError, match="incompatible signatures"):
        service.apply(preview, incident)
    assert router.weights == {"1": 0, "2": 90, "3": 10}
    assert kinds(journal, incident)[-1] == "action.failed"
    outcome = service.apply(preview, incident, force=True)
    assert outcome.status == "applied" and router.weights["3"] == 0


def test_a_registry_failure_restores_the_router(world):
    build, registry, router, journal, incident = world
    service = build()
    preview = service.preview(MODEL)
    registry.fail_writes = True
    restored = r"router weights restored; router weights now \{'1': 0, '2': 90, '3': 10\}"
    with pytest.raises(RegistryError, match=restored):
        service.apply(preview, incident)
    assert router.weights == {"1": 0, "2": 90, "3": 10}
    assert kinds(journal, incident)[-2:] == ["action.intent", "action.compensated"]


def test_a_router_that_moved_since_the_preview_is_a_conflict_and_nothing_changes(world):
    build, registry, router, journal, incident = world
    service = build()
    preview = service.preview(MODEL)
    router.weights["3"] = 20
    with pytest.raises(ConflictError, match="Nothing changed"):
        service.apply(preview, incident)
    assert registry.aliases == {"champion": "2", "challenger": "3"}
    failed = list(journal.journal.events(incident, [EventKind.ACTION_FAILED]))[-1]
    assert failed.payload["conflict"] is True and failed.payload["observed"]["weights"]["3"] == 20


def test_an_alias_that_moved_since_the_preview_is_a_conflict_before_the_router_changes(world):
    build, registry, router, journal, incident = world
    service = build()
    preview = service.preview(MODEL)
    registry.aliases["challenger"] = "1"  # someone moved it by hand after the preview
    with pytest.raises(ConflictError, match="alias 'challenger' points at v1 \\(expected v3\\).*Nothing changed"):
        service.apply(preview, incident)
    assert router.weights == {"1": 0, "2": 90, "3": 10}
    assert registry.aliases == {"champion": "2", "challenger": "1"}
    assert kinds(journal, incident)[-2:] == ["action.intent", "action.failed"]


def test_a_plan_someone_else_carried_out_after_the_preview_changes_nothing_and_cannot_be_undone(world):
    build, registry, router, journal, incident = world
    service = build()
    preview = service.preview(MODEL)
    router.weights.update({"2": 100, "3": 0})
    del registry.aliases["challenger"]
    outcome = service.apply(preview, incident)
    assert outcome.status == "already_applied" and "nothing changed" in outcome.message
    applied = list(journal.journal.events(incident, [EventKind.ACTION_APPLIED]))[-1]
    assert applied.payload["changed"] is False and applied.payload["alias_moves"] == []
    assert service.lock.holder(MODEL) is None
    with pytest.raises(UsageError, match="changed nothing"):
        service.undo_preview(preview.plan.action_id)


def test_both_systems_are_compared_after_the_intent_and_before_any_write(world):
    """Order of a rollback: intent (with the lock) durable, then both reads, then the writes."""
    build, registry, router, journal, incident = world
    service = build()
    preview = service.preview(MODEL)
    seen = []
    read_state, set_weights, get_alias, delete_alias = (router.read_state, router.set_weights,
                                                        registry.get_alias, registry.delete_alias)
    record = journal.record

    def observe(name, func):
        def call(*args, **kwargs):
            seen.append(name)
            return func(*args, **kwargs)
        return call

    def observe_record(incident_id, kind, payload, lock=None):
        event = record(incident_id, kind, payload, lock=lock)
        seen.append(kind.value)
        return event

    router.read_state, router.set_weights = observe("router read", read_state), observe("router write", set_weights)
    registry.get_alias, registry.delete_alias = (observe("alias read", get_alias),
                                                 observe("alias write", delete_alias))
    journal.record = observe_record
    assert service.apply(preview, incident).status == "applied"
    assert seen == ["action.intent", "router read", "alias read", "router write", "alias write", "action.applied"]


def test_running_the_same_rollback_again_changes_nothing_and_says_why(world):
    build, registry, router, journal, incident = world
    service = build()
    first = service.preview(MODEL)
    assert first.already is None and service.apply(first, incident).status == "applied"
    again = service.preview(MODEL)  # no --from/--to: the same command as before
    assert again.already and first.plan.action_id in again.already
    assert (again.plan.leave, again.plan.target) == ("3", "2") and again.plan.is_noop
    before = kinds(journal, incident)
    outcome = service.apply(again, incident)
    assert outcome.status == "already_applied" and "moved traffic from v3 to v2" in outcome.message
    assert kinds(journal, incident)[len(before):] == ["note"]  # no intent, no lock for a plan that changes nothing


def test_an_undo_twice_is_already_undone_and_after_a_change_it_is_refused(world):
    build, registry, router, journal, incident = world
    service = build()
    rollback = service.preview(MODEL)
    service.apply(rollback, incident)
    undo, _ = service.undo_preview(rollback.plan.action_id)
    assert undo.already is None and service.apply(undo, incident).status == "applied"
    assert router.weights == {"1": 0, "2": 90, "3": 10} and registry.aliases == {"champion": "2", "challenger": "3"}
    twice, _ = service.undo_preview(rollback.plan.action_id)
    assert "already undone" in twice.already and twice.plan.is_noop
    assert service.apply(twice, incident).status == "already_applied"
    # After the rollback is applied again and someone changes the weights by hand, its undo is refused.
    redo = service.preview(MODEL, leave="3", target="2")
    service.apply(redo, incident)
    router.weights["3"] = 5
    refused = r"changed after act-\w+: v3 weight is 5 \(was 0\)\. Undoing would overwrite"
    with pytest.raises(RefusedError, match=refused):
        service.undo_preview(redo.plan.action_id)
    assert list(journal.journal.events(incident, [EventKind.ACTION_FAILED]))[-1].payload["refused"] is True
    assert router.weights == {"1": 0, "2": 100, "3": 5}


def test_a_rerun_after_a_change_by_hand_is_a_new_plan_not_already_done(world):
    build, registry, router, journal, incident = world
    service = build()
    service.apply(service.preview(MODEL), incident)  # v3 left: weights 0/100/0, challenger removed
    registry.aliases["champion"] = "3"  # someone points the champion back at v3 outside Rewind
    with pytest.raises(UsageError, match="no previous champion of v3"):  # planned afresh, not "already done"
        service.preview(MODEL)
    explicit = service.preview(MODEL, leave="3", target="2")
    assert explicit.already is None and [m.alias for m in explicit.plan.alias_moves] == ["champion"]


def test_a_rerun_of_a_forced_rollback_is_already_applied_not_refused(world):
    build, registry, router, journal, incident = world
    registry.signatures["2"] = signature(("a", "double"), ("b", "string"))
    service = build()
    assert service.apply(service.preview(MODEL), incident, force=True).status == "applied"
    again = service.preview(MODEL)
    assert not again.signature.compatible and again.plan.is_noop
    assert service.apply(again, incident).status == "already_applied"


def test_an_alias_changed_during_a_gradual_gate_is_caught_before_it_is_overwritten(world):
    build, registry, router, journal, incident = world
    service = build()
    preview = service.preview(MODEL, mode=Mode.GRADUAL)

    def someone_edits_the_registry(boundary):
        if boundary == "after-router-step-1":
            registry.aliases["challenger"] = "1"

    service.checkpoint = someone_edits_the_registry
    with pytest.raises(ConflictError, match="registry failed after the router changed"):
        service.apply(preview, incident)
    assert registry.aliases["challenger"] == "1" and router.weights == {"1": 0, "2": 90, "3": 10}


def test_a_gate_whose_metrics_cannot_be_read_holds_with_an_outcome(world):
    build, registry, router, journal, incident = world

    class DownMetrics(FakeMetrics):
        def evaluate(self, specs, model, at=None):
            raise MetricsError("Prometheus at http://x: unreachable (metrics.url)")

    service = build(metrics=DownMetrics())
    outcome = service.apply(service.preview(MODEL, mode=Mode.GRADUAL), incident)
    assert outcome.status == "held" and "the gate could not be checked: Prometheus" in outcome.message
    assert kinds(journal, incident)[-1] == "action.failed" and service.lock.holder(MODEL) is None


def test_a_plan_that_only_moves_aliases_does_not_call_the_router(world):
    build, registry, router, journal, incident = world
    router.weights.update({"2": 100, "3": 0})  # traffic already off v3, its alias still there
    calls = []
    set_weights = router.set_weights
    router.set_weights = lambda *args, **kwargs: calls.append(args) or set_weights(*args, **kwargs)
    service = build()
    outcome = service.apply(service.preview(MODEL, leave="3", target="2"), incident)
    assert outcome.status == "applied" and calls == [] and "challenger" not in registry.aliases


def test_without_act_the_action_is_refused_and_journaled(world):
    build, registry, router, journal, incident = world
    policy = Policy(users={"alice": frozenset({Permission.VIEW})})
    service = build(policy=policy)
    preview = service.preview(MODEL)
    with pytest.raises(RefusedError, match="lacks the 'act' permission"):
        service.authorize(incident, preview.plan)
    assert list(journal.journal.events(incident, [EventKind.ACTION_FAILED]))[-1].payload["refused"] is True


# -- which incident an action joins (issue 8, section 4) ---------------------------------------

def incident_ids(journal):
    return [s.incident_id for s in journal.incidents()]


def test_a_second_rollback_joins_the_models_open_incident(world):
    build, registry, router, journal, incident = world
    service = build()
    journal.open_incident("other-model", "3", "not this one")  # newer, but another model's
    placement = journal.place(MODEL, "2", "rollback of m")
    assert (placement.how, placement.incident_id, placement.joined) == ("joined", incident, True)
    assert placement.message().startswith(f"joining open incident {incident} (opened ")
    assert "by alice@host" in placement.message()
    assert journal.settle(placement) is placement  # joining opens nothing
    before = incident_ids(journal)
    assert service.apply(service.preview(MODEL), placement.incident_id).status == "applied"
    assert incident_ids(journal) == before


def test_the_most_recent_open_incident_of_the_model_is_joined(world):
    build, registry, router, journal, incident = world
    at = {"now": 2_000_000_100.0}  # later than the fixture's incident
    journal.clock = lambda: at["now"]
    newer = journal.open_incident(MODEL, "2", "newer").incident_id
    at["now"] = 2_000_000_000.0  # written after it, but opened earlier (a clock behind, an import)
    journal.open_incident(MODEL, "2", "older")
    at["now"] = 2_000_000_200.0
    journal.close_incident(journal.open_incident(MODEL, "2", "newest, closed").incident_id)
    assert journal.open_incident_of(MODEL).incident_id == newer
    assert journal.open_incident_of("no-such-model") is None


def test_after_close_a_new_incident_is_opened(world):
    build, registry, router, journal, incident = world
    journal.close_incident(incident, "rolled back")
    placement = journal.place(MODEL, "2", "rollback of m")
    assert (placement.how, placement.incident_id, placement.joined) == ("new", None, False)
    settled = journal.settle(placement)
    assert settled.how == "opened" and settled.incident_id not in (None, incident)
    assert settled.message() == f"opened a new incident {settled.incident_id} (no open incident of m)"
    assert len(incident_ids(journal)) == 2


def test_new_incident_opens_one_even_while_the_model_has_one_open(world):
    build, registry, router, journal, incident = world
    settled = journal.settle(journal.place(MODEL, "2", "rollback of m", new=True))
    assert settled.incident_id != incident and "(--new-incident)" in settled.message()
    assert len(incident_ids(journal)) == 2


def test_a_named_incident_must_exist_be_open_and_not_come_with_new_incident(world):
    build, registry, router, journal, incident = world
    assert journal.place(MODEL, "2", "x", named=incident).how == "named"
    with pytest.raises(UsageError, match="no incident INC-NOPE in the SQLite journal"):
        journal.place(MODEL, "2", "x", named="INC-NOPE")
    with pytest.raises(UsageError, match="cannot be used together"):
        journal.place(MODEL, "2", "x", named=incident, new=True)
    journal.close_incident(incident)
    with pytest.raises(UsageError, match=f"incident {incident} was closed at .*pass --new-incident"):
        journal.place(MODEL, "2", "x", named=incident)
    assert len(incident_ids(journal)) == 1


def test_a_no_op_rerun_without_an_open_incident_opens_none_and_journals_nothing(world):
    build, registry, router, journal, incident = world
    service = build()
    service.apply(service.preview(MODEL), incident)
    journal.close_incident(incident)
    events_before = [e.seq for e in journal.journal.events(incident)]
    again = service.preview(MODEL)
    placement = journal.place(MODEL, "2", "rollback of m")
    assert again.plan.is_noop and placement.incident_id is None
    outcome = service.apply(again, placement.incident_id)
    assert outcome.status == "already_applied"
    assert incident_ids(journal) == [incident]
    assert [e.seq for e in journal.journal.events(incident)] == events_before


def test_a_no_op_rerun_notes_itself_once_in_the_open_incident(world):
    """The first rerun says, in the timeline, who found the state unchanged; a script's loop adds no more."""
    build, registry, router, journal, incident = world
    service = build()
    service.apply(service.preview(MODEL), incident)
    before = kinds(journal, incident)
    for _ in range(3):
        placement = journal.place(MODEL, "2", "rollback of m")
        assert placement.incident_id == incident
        assert service.apply(service.preview(MODEL), placement.incident_id).status == "already_applied"
    assert kinds(journal, incident)[len(before):] == ["note"]
    assert incident_ids(journal) == [incident]


def test_an_undo_goes_to_its_actions_incident_and_while_closed_to_the_models_open_one(world):
    build, registry, router, journal, incident = world
    service = build()
    rollback = service.preview(MODEL)
    service.apply(rollback, incident)
    action = rollback.plan.action_id
    own = service.undo_placement(action)
    assert (own.how, own.incident_id) == ("action", incident)
    assert own.message().startswith(f"recording in incident {incident}, where the action undone is")
    journal.close_incident(incident)
    placement = service.undo_placement(action)
    assert placement.how == "new" and placement.incident_id is None and f"incident {incident}" in placement.why
    later = journal.open_incident(MODEL, "2", "the next day").incident_id
    joined = service.undo_placement(action)
    assert (joined.how, joined.incident_id) == ("joined", later)
    preview, action_incident = service.undo_preview(action, placement=joined)
    assert action_incident == incident
    assert service.apply(preview, joined.incident_id).status == "applied"
    assert kinds(journal, later)[-2:] == ["action.intent", "action.applied"]


def test_an_undo_refused_for_a_later_change_is_journaled_where_the_undo_goes(world):
    build, registry, router, journal, incident = world
    service = build()
    rollback = service.preview(MODEL)
    service.apply(rollback, incident)
    router.weights["3"] = 5
    placement = service.undo_placement(rollback.plan.action_id, new=True)
    with pytest.raises(RefusedError, match="Undoing would overwrite"):
        service.undo_preview(rollback.plan.action_id, placement=placement)
    [opened] = [i for i in incident_ids(journal) if i != incident]
    assert kinds(journal, opened) == ["incident.opened", "action.failed"]


@pytest.mark.parametrize(("errors", "status"), [(3, "applied"), (20, "held")])
def test_a_gradual_gate_holds_on_a_breach_the_judge_is_sure_of_not_on_noise(world, errors, status):
    """The gate uses the console's judge: 3 errors in 40 requests is suspect (chance could explain it),
    20 in 40 is a breach; only the breach holds the rollback."""
    from console.domain.metrics import CellCounts, QueryResult
    from tests.unit.test_judge import ERRORS, RATE

    build, registry, router, journal, incident = world

    class CountingMetrics(FakeMetrics):
        def evaluate(self, specs, model, at=None):
            cells = {("2", "eu"): CellCounts(errors, 40), ("3", "eu"): CellCounts(0, 40)}
            return {"request_rate": QueryResult("request_rate", "r", 0.0, raw={k: "1" for k in cells},
                                                values=dict.fromkeys(cells, 1.0)),
                    "error_rate": QueryResult("error_rate", "e", 0.0, raw={k: "x" for k in cells},
                                              values={k: c.numerator / c.denominator for k, c in cells.items()},
                                              counts=cells)}

    service = build(metrics=CountingMetrics())
    service.catalogue, service.traffic_metric, service.gate_metrics = (RATE, ERRORS), "request_rate", ("error_rate",)
    outcome = service.apply(service.preview(MODEL, mode=Mode.GRADUAL), incident)
    assert outcome.status == status, outcome.message
    if status == "held":
        assert "v2 eu error_rate: errors 50.0% > 5.0% (95% interval" in outcome.message


def test_the_intent_records_what_the_registry_says_of_both_versions_for_the_post_mortem(world):
    from io import StringIO

    from console.services.timeline import Clock, build_view, export

    build, registry, router, journal, incident = world
    service = build()
    service.apply(service.preview(MODEL), incident)
    intent = next(journal.journal.events(incident, [EventKind.ACTION_INTENT]))
    assert intent.payload["versions"]["3"] == {"created_at": "2026-01-03T00:00:00+00:00", "run_id": "run3",
                                              "description": None, "tags": {}}
    assert set(intent.payload["versions"]) == {"2", "3"}
    out = StringIO()
    export(build_view(*journal.chain(incident)), "md", out, Clock())
    assert "v3 of m was the version left by A1 (it held challenger); created 2026-01-03T00:00:00+00:00; run run3." \
        in out.getvalue()


class RecordingFace:
    """A face that is not the command line: it answers the confirmation as told and records what it is shown."""

    def __init__(self, answer):
        self.answer, self.seen = answer, []

    def placed(self, placement):
        self.seen.append(("placed", placement.incident_id))

    def evidence(self, breaching, problem):
        self.seen.append(("evidence", breaching, problem))

    def confirm(self, plan):
        self.seen.append(("confirm", plan.model))
        return self.answer

    def waiting_for_approval(self, plan, timeout_s):
        self.seen.append(("waiting", timeout_s))

    def approved(self, approver):
        self.seen.append(("approved", approver))

    def tags_not_written(self, problem):
        self.seen.append(("tags", problem))

    def verifying(self, window_s):
        self.seen.append(("verifying", window_s))


def test_any_face_drives_the_same_procedure_and_its_confirmation_is_journaled(world):
    from console.services.actions import ActionOptions, carry_out

    build, registry, router, journal, incident = world
    service = build()
    placement = journal.place(MODEL, "2", "test", incident, False)
    face = RecordingFace("pressed Enter after typing m")
    result = carry_out(service, service.preview(MODEL), placement, face, ActionOptions(verify=False))
    assert result.succeeded and [o.status for o in result.outcomes] == ["applied"]
    assert [step[0] for step in face.seen] == ["placed", "evidence", "confirm"]
    decision = [e for e in journal.journal.events(incident, [EventKind.DECISION])][-1]
    assert decision.payload["option"] == "rollback"
    assert decision.payload["confirmed_by"] == "pressed Enter after typing m"
    assert router.weights == {"1": 0, "2": 100, "3": 0}


def test_a_face_that_cancels_changes_nothing_and_the_cancel_is_journaled(world):
    from console.services.actions import carry_out

    build, registry, router, journal, incident = world
    service = build()
    placement = journal.place(MODEL, "2", "test", incident, False)
    result = carry_out(service, service.preview(MODEL), placement, RecordingFace(None))
    assert result.cancelled and not result.outcomes and not result.succeeded
    assert kinds(journal, incident)[-1] == "decision"
    assert next(iter(reversed(list(journal.journal.events(incident))))).payload["option"] == "cancel"
    assert router.weights == {"1": 0, "2": 90, "3": 10} and registry.aliases["challenger"] == "3"


def test_a_read_only_face_is_refused_before_anything_changes(world):
    from console.services.actions import ActionOptions, carry_out

    build, registry, router, journal, incident = world
    service = build()
    face = RecordingFace("yes")
    with pytest.raises(RefusedError, match="read-only"):
        carry_out(service, service.preview(MODEL), journal.place(MODEL, "2", "t", incident, False), face,
                  ActionOptions(read_only=True))
    assert ("confirm", MODEL) not in face.seen and router.weights == {"1": 0, "2": 90, "3": 10}
    assert kinds(journal, incident)[-1] == "action.failed"


def _error_rate_of(target_cells: bool):
    """Metrics with a healthy error rate for v3, and for v2 only when ``target_cells``."""
    from console.domain.metrics import CellCounts, QueryResult

    cells = {("3", "eu"): CellCounts(0, 40)} | ({("2", "eu"): CellCounts(0, 40)} if target_cells else {})

    class Metrics(FakeMetrics):
        def evaluate(self, specs, model, at=None):
            return {"request_rate": QueryResult("request_rate", "r", 0.0, raw={k: "1" for k in cells},
                                                values=dict.fromkeys(cells, 1.0)),
                    "error_rate": QueryResult("error_rate", "e", 0.0, raw={k: "x" for k in cells},
                                              values={k: c.numerator / c.denominator for k, c in cells.items()},
                                              counts=cells)}

    return Metrics()


def _judged(service):
    from tests.unit.test_judge import ERRORS, RATE

    service.catalogue, service.traffic_metric = (RATE, ERRORS), "request_rate"
    service.settings = replace(service.settings, verify_window_s=0.0)
    service.gate_metrics = service.verify_metrics = ("error_rate",)
    return service


def test_a_rollback_to_a_version_the_router_took_out_is_refused_at_the_preview(world):
    build, registry, router, journal, incident = world
    router.down.add("v2")
    service = build()
    with pytest.raises(UsageError, match=r"v2 is DOWN at the router \(fake router, server v2.*rolling back to it"):
        service.preview(MODEL)
    assert kinds(journal, incident) == ["incident.opened"]


def test_a_preview_warns_when_someone_other_than_rewind_last_wrote_the_weights(world):
    from rich.console import Console

    from console.rendering import render_preview

    build, registry, router, journal, incident = world
    router.also_written_by = ("argocd-controller (Update, 2026-12-07T10:00:00Z)",)
    service = build()
    preview = service.preview(MODEL)
    (note,) = preview.warnings
    assert note.startswith("be: its weights were last written by argocd-controller (Update, 2026-12-07T10:00:00Z), "
                           "not Rewind") and "may write them back" in note
    shown = Console(width=250, record=True, color_system=None)
    shown.print(render_preview(preview, "Rollback"))
    assert "⚠ be: its weights were last written by argocd-controller" in shown.export_text()
    assert service.apply(preview, incident).status == "applied"
    undo, _ = service.undo_preview(preview.plan.action_id)
    assert undo.warnings == preview.warnings  # the undo moves the same weights
    (intent,) = journal.journal.events(incident, [EventKind.ACTION_INTENT])
    assert intent.payload["warnings"] == [note]  # journaled with the decision to go ahead
    router.also_written_by = ()
    assert service.preview(MODEL, leave="2", target="3").warnings == ()


def test_an_undo_that_would_send_traffic_to_a_version_now_down_is_refused_at_its_preview(world):
    build, registry, router, journal, incident = world
    service = build()
    rollback = service.preview(MODEL)  # v3 drained, v2 takes everything
    assert service.apply(rollback, incident).status == "applied"
    router.down.add("v3")  # the drained canary's server fails its health checks since
    with pytest.raises(UsageError, match=rf"v3 is DOWN at the router .*undoing {rollback.plan.action_id} would send "
                                         "traffic nowhere"):
        service.undo_preview(rollback.plan.action_id)
    assert router.weights == {"1": 0, "2": 100, "3": 0}
    router.down.clear()  # back up: the undo is planned as before
    undo, _ = service.undo_preview(rollback.plan.action_id)
    assert undo.already is None and undo.plan.weights_after == {"1": 0, "2": 90, "3": 10}


@pytest.mark.parametrize("target_cells", [True, False])
def test_a_gate_passes_on_the_targets_evidence_never_on_its_absence(world, target_cells):
    build, registry, router, journal, incident = world
    service = _judged(build(metrics=_error_rate_of(target_cells)))
    outcome = service.apply(service.preview(MODEL, mode=Mode.GRADUAL), incident)
    if target_cells:
        assert outcome.status == "applied", outcome.message
    else:
        assert outcome.status == "held" and "no data for v2 in error_rate" in outcome.message
        assert router.weights == {"1": 0, "2": 95, "3": 5}


def test_verification_needs_the_target_to_have_answered_and_to_have_been_judged(world):
    build, registry, router, journal, incident = world
    service = _judged(build(metrics=_error_rate_of(True)))
    outcome = service.apply(service.preview(MODEL), incident)
    verified = service.verify(incident, outcome_plan(service, outcome))
    assert verified.status == "verified" and "v2 answered 100 and passes error_rate" in verified.message
    # The router stops sending v2 anything (its server in maintenance): nothing answered, nothing verified.
    router.admin["v2"] = "maint"
    verified = service.verify(incident, outcome_plan(service, outcome))
    assert verified.status == "not_verified"
    assert "v2 answered no request in" in verified.message
    router.admin["v2"] = "ready"
    # v2 answers, but the metrics have nothing of it: no evidence is not a pass.
    service.metrics = _error_rate_of(False)
    verified = service.verify(incident, outcome_plan(service, outcome))
    assert verified.status == "not_verified" and "no data for v2 in error_rate" in verified.message


def outcome_plan(service, outcome):
    """The plan an outcome carried out, as the journal has it."""
    return service.find_action(outcome.action_id)[1]


def test_a_gate_waits_out_the_no_data_of_a_version_just_given_traffic(world):
    """Right after a step, the target has no cell yet (its first requests are not in the metrics): the gate
    watches on, and passes once its cells pass. Only no data at the end of the window holds it."""
    build, registry, router, journal, incident = world
    empty, judged = _error_rate_of(False), _error_rate_of(True)

    class Arriving(FakeMetrics):
        calls = 0

        def evaluate(self, specs, model, at=None):
            self.calls += 1
            return (empty if self.calls == 1 else judged).evaluate(specs, model, at)

    service = _judged(build(metrics=Arriving()))
    service.settings = replace(service.settings, gate_window_s=0.2, poll_interval_s=0.01)
    outcome = service.apply(service.preview(MODEL, mode=Mode.GRADUAL), incident)
    assert outcome.status == "applied", outcome.message
