"""The rollback use case: plan and preview, then apply across router and registry, verify, undo.

Every step is journaled before or as it happens:

1. ``action.intent`` with the whole plan, before anything changes;
2. the router's weights with compare-and-set (traffic first: it stops the harm),
   then the registry's aliases with compare-and-set, each read back;
3. ``action.applied`` with the observed state of both systems, or
   ``action.failed`` (nothing changed, or a conflict), or
   ``action.compensated`` when the registry failed after the router changed and
   the router was put back;
4. ``action.verified`` / ``action.not_verified`` with the evidence.

A per-model lock (kept beside the journal, so consoles on several machines see
it) lets exactly one action change a model at a time. A console that died in
the middle leaves an intent without an outcome; :meth:`RollbackService.recover`
reads the real state of both systems and journals what actually happened.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypedDict

from console.adapters.protocols import ActionLock, MetricsSource, Registry, Router
from console.domain.authority import Identity, Permission, Policy, approval_refusal
from console.domain.errors import ConflictError, LockHeldError, RewindError, UsageError
from console.domain.journal import Event, EventKind, LockChange
from console.domain.metrics import MetricSpec
from console.domain.rollback import (
    DEFAULT_GRADUAL_STEPS,
    PREVIOUS_CHAMPION_TAG,
    AliasMove,
    Mode,
    Plan,
    SignatureCheck,
    check_signatures,
    choose_versions,
    inverse,
    plan_alias_moves,
    plan_steps,
)
from console.domain.routing import Mirror, RouterState, describe_mirror, writers_note
from console.domain.verdicts import State, build_matrix, overall_state
from console.domain.versions import AliasMap, ModelVersion, version_sort_key
from console.services.features import FeatureActions, FeatureChangeFailed
from console.services.journal import JournalService, Placement

TERMINAL = (EventKind.ACTION_APPLIED, EventKind.ACTION_FAILED, EventKind.ACTION_COMPENSATED)
DRAINED_SHARE = 0.01
"""A left version is drained when it gets under 1 % of the requests during verification."""


class RefusedError(RewindError):
    """An action was refused (permissions, read-only, signatures, no approval): exit code 1."""


@dataclass(frozen=True)
class RollbackSettings:
    """How rollbacks are carried out (``rollback:`` in the config)."""

    stable_alias: str = "champion"
    candidate_alias: str = "challenger"
    gradual_steps: tuple[float, ...] = DEFAULT_GRADUAL_STEPS
    gate_window_s: float = 20.0
    gate_metrics: tuple[str, ...] = ()
    verify_window_s: float = 10.0
    verify_metrics: tuple[str, ...] = ()
    poll_interval_s: float = 1.0


@dataclass(frozen=True)
class Preview:
    """A plan with everything a responder needs to judge it on one screen."""

    plan: Plan
    why_target: str
    leaving: ModelVersion | None
    target: ModelVersion | None
    signature: SignatureCheck
    router: RouterState
    already: str | None = None
    """Set when both systems already show the plan's end state: why, and the plan changes nothing."""
    details: tuple[str, ...] = ()
    """More lines for the responder under the plan (a feature rollback: blast radius, warnings, the diff)."""
    warnings: tuple[str, ...] = ()
    """What the responder should weigh before confirming (someone else writes the router's weights); journaled
    with the intent."""


def _router_notes(router: RouterState) -> tuple[str, ...]:
    """What the responder should know about the router before moving its weights (the preview's details)."""
    note = writers_note(router)
    return () if note is None else (note,)


@dataclass(frozen=True)
class Outcome:
    """What happened, and the state each system is in now."""

    action_id: str
    status: str  # applied | already_applied | held | verified | not_verified
    weights: dict[str, int]
    aliases: dict[str, str]
    message: str
    evidence: dict[str, object] = field(default_factory=dict)


class _Observed(TypedDict, total=False):
    """Each system's state as :meth:`RollbackService._observe` read it back, or why it could not."""

    weights: dict[str, int]
    router_error: str
    aliases: dict[str, str]
    registry_error: str
    mirror: dict[str, object] | None
    servers: dict[str, str]


def new_action_id() -> str:
    """A short, unique action id such as ``act-3f9c2a1b``."""
    return f"act-{uuid.uuid4().hex[:8]}"


class RollbackService:
    """Plans, applies, verifies, undoes and recovers rollbacks of one console's models.

    Args:
        registry: the model registry.
        router: the traffic router.
        metrics: the metrics source, for gates and verification.
        journal: records every step (as this console's actor).
        lock: the per-model action lock.
        catalogue: the metric catalogue (gates and verification use its criteria).
        traffic_metric: the catalogue's traffic metric.
        settings: rollback settings.
        checkpoint: called with the name of every boundary between steps (tests
            use it to kill the process exactly there).
        sleep: how to wait between polls.
        holder: who holds the lock (``user@host pid``), shown to a second console.
    """

    def __init__(self, registry: Registry, router: Router, metrics: MetricsSource, journal: JournalService,
                 lock: ActionLock, catalogue: tuple[MetricSpec, ...], traffic_metric: str | None,
                 settings: RollbackSettings = RollbackSettings(),
                 checkpoint: Callable[[str], None] = lambda name: None,
                 sleep: Callable[[float], None] = time.sleep, holder: str = "",
                 policy: Policy = Policy(enforced=False), identity: Identity | None = None,
                 approval_timeout_s: float = 900.0,
                 shadow_copies: Callable[[str, str, str], float | None] | None = None,
                 features: FeatureActions | None = None) -> None:
        self.registry = registry
        self.router = router
        self.metrics = metrics
        self.journal = journal
        self.lock = lock
        self.catalogue = catalogue
        self.traffic_metric = traffic_metric
        self.settings = settings
        self.checkpoint = checkpoint
        self.sleep = sleep
        self.holder = holder or journal.actor.label()
        self.policy = policy
        self.identity = identity or Identity(journal.actor.user)
        self.approval_timeout_s = approval_timeout_s
        self.shadow_copies = shadow_copies
        """Copies a shadow received from a baseline lately (model, shadow, baseline), to verify a mirror."""
        self.features = features
        """The feature side of actions that move what versions consume (tags, a view's active version)."""
        self._holding = False
        judged = tuple(m.name for m in catalogue if m.criteria.judges)
        self.gate_metrics = settings.gate_metrics or judged
        self.verify_metrics = settings.verify_metrics or judged

    # -- planning ---------------------------------------------------------------------------
    def previous_champion(self, model: str, versions: list[ModelVersion], champion: str | None) -> str | None:
        """The champion before the current one: the journal's last alias move, else the registry tag."""
        for event in reversed(self._model_events(model, [EventKind.ACTION_APPLIED])):
            for move in event.payload.get("alias_moves") or []:
                if move.get("alias") == self.settings.stable_alias and move.get("after") == champion:
                    before: str | None = move.get("before")
                    return before
        by_version = {v.version: v for v in versions}
        if champion and champion in by_version:
            return by_version[champion].tags.get(PREVIOUS_CHAMPION_TAG)
        return None

    def preview(self, model: str, leave: str | None = None, target: str | None = None,
                mode: Mode = Mode.IMMEDIATE, reason: str = "", named_by: str | None = None) -> Preview:
        """Read both systems and compute the plan, without changing anything.

        ``named_by`` says how a ``target`` given was chosen, in the asking face's words (the preview shows it).
        """
        versions = self.registry.list_versions(model)
        aliases = AliasMap.of_versions(model, versions)
        router = self.router.read_state(model)
        weights = router.weights()
        previous = self.previous_champion(model, versions, aliases.version_of(self.settings.stable_alias))
        already = None
        if leave is None and target is None:
            # Running the same command again after it succeeded: the same versions, if that plan now
            # changes nothing (checked below); otherwise the usual choice.
            last = self.last_action(model)
            if last is not None and not last.undoes and not last.is_noop \
                    and last.state_is(weights, dict(aliases.aliases), end=True) \
                    and self._plan(model, aliases, weights, last.leave, last.target, mode, reason).is_noop:
                leave, target = last.leave, last.target
                already = (f"{last.action_id} moved traffic from v{leave} to v{target}, and both systems still "
                           "show it (pass --from and --to to roll back further)")
        leave, target, why = choose_versions(
            aliases, weights, leave, target, previous, self.settings.stable_alias, self.settings.candidate_alias,
            named_by,
        )
        if already:
            why = "as the last rollback did"
        by_version = {v.version: v for v in versions}
        if target not in by_version:
            raise UsageError(f"v{target} is not a registered version of {model}")
        self._refuse_down(router, [target], "rolling back to it", "roll back to another version")
        plan = self._plan(model, aliases, weights, leave, target, mode, reason)
        leaving = self.with_signature(model, by_version.get(leave))
        going = self.with_signature(model, by_version.get(target))
        signature = (check_signatures(leaving, going) if leaving and going
                     else SignatureCheck(True, "not checked: a version is missing from the registry"))
        if already is None and plan.is_noop:
            already = "the router and the registry already show the planned state"
        return Preview(plan, why, leaving, going, signature, router, already, warnings=_router_notes(router))

    def _refuse_down(self, router: RouterState, versions: Iterable[str], doing: str, instead: str) -> None:
        """Refuse a plan that would send traffic to a version whose server is DOWN at the router.

        Traffic sent there would go nowhere, and a gate or a verification would have nothing to judge.

        Raises:
            UsageError: naming the first such version, its server and what to do instead.
        """
        for version in versions:
            server = router.server_for(version)
            if server is not None and not server.operational:
                raise UsageError(f"v{version} is DOWN at the router ({self.router.describe()}, server "
                                 f"{server.server}: its health checks fail): {doing} would send traffic nowhere; "
                                 f"bring it back up, or {instead}")

    def _plan(self, model: str, aliases: AliasMap, weights: dict[str, int], leave: str, target: str, mode: Mode,
              reason: str) -> Plan:
        return Plan(
            action_id=new_action_id(),
            model=model,
            leave=leave,
            target=target,
            mode=mode,
            weights_before=weights,
            steps=plan_steps(weights, leave, target, mode, self.settings.gradual_steps),
            alias_moves=plan_alias_moves(aliases, leave, target, self.settings.stable_alias,
                                         self.settings.candidate_alias),
            reason=reason,
            aliases_before=dict(aliases.aliases),
        )

    def last_action(self, model: str) -> Plan | None:
        """The latest action on ``model`` that changed something (a rollback or an undo), from the journal."""
        latest: tuple[str, int, Plan] | None = None
        plans: dict[tuple[str, str], dict[str, Any]] = {}
        for event in self._model_events(model, [EventKind.ACTION_INTENT, EventKind.ACTION_APPLIED]):
            key = (event.incident_id, str(event.payload.get("action_id")))
            if event.kind is EventKind.ACTION_INTENT:
                plans[key] = event.payload["plan"]
            elif key in plans and event.payload.get("changed", True) is not False \
                    and plans[key].get("model") == model \
                    and (latest is None or (event.ts, event.seq) > latest[:2]):
                latest = (event.ts, event.seq, Plan.from_dict(plans[key]))
        return latest[2] if latest else None

    def _model_events(self, model: str, kinds: list[EventKind]) -> list[Event]:
        """Every event of ``kinds`` in the incidents that may concern ``model``, incidents oldest first.

        One query for all the incidents (the journal's index on the event kind serves it), never one per incident.
        """
        order = {incident.incident_id: number for number, incident in enumerate(self.journal.incidents())
                 if incident.model in (None, model)}
        found = [event for event in self.journal.journal.find_events(kinds) if event.incident_id in order]
        found.sort(key=lambda event: (order[event.incident_id], event.seq))
        return found

    def with_signature(self, model: str, version: ModelVersion | None) -> ModelVersion | None:
        """``version`` with its model signature read from the registry (``None`` stays ``None``)."""
        if version is None:
            return None
        signature = self.registry.get_signature(model, version.version)
        return ModelVersion(**{**version.__dict__, "signature": signature})

    def undo_placement(self, action_id: str, severity: str = "2", named: str | None = None,
                       new: bool = False) -> Placement:
        """Where an undo of ``action_id`` is journaled: by default the incident of the action it undoes.

        When that incident is closed, the model's open incident, else a new one, as for a
        rollback; ``named`` (``--incident``) and ``new`` (``--new-incident``) choose otherwise.

        Raises:
            UsageError: no such action; ``named`` unknown or closed.
        """
        incident_id, plan, _ = self.find_action(action_id)
        return self.journal.place(plan.model, severity, f"undo of {action_id} on {plan.model}", named, new,
                                  belongs_to=incident_id)

    def undo_preview(self, action_id: str, reason: str = "",
                     placement: Placement | None = None) -> tuple[Preview, str]:
        """The preview of undoing an applied action, and the incident it belongs to.

        A refusal (the systems changed since the action) is journaled in ``placement``
        (settled: opened if it is new), else in the action's incident.

        Raises:
            NotFoundError / UsageError: no such action, or it was never applied.
        """
        incident_id, plan, applied = self.find_action(action_id)
        if not applied:
            raise UsageError(f"action {action_id} was never applied or changed nothing: there is nothing to undo")
        undo = inverse(plan, new_action_id(), reason or f"undo {action_id}")
        if undo.moves_features:
            return self._undo_features_preview(action_id, incident_id, undo, placement), incident_id
        router = self.router.read_state(plan.model)
        listed = self.registry.list_versions(plan.model)
        versions = {v.version: v for v in listed}
        weights, aliases = router.weights(), dict(AliasMap.of_versions(plan.model, listed).aliases)
        servers = {s.server: s.admin_state for s in router.servers}
        mirror = self.router.read_mirror(plan.model) if undo.moves_mirror else None
        already = None
        if undo.state_is(weights, aliases, end=True, mirror=mirror, servers=servers):
            already = f"{action_id} is already undone: both systems show the state from before it"
            undo = replace(undo, weights_before=dict(undo.weights_after), alias_moves=(), aliases_before=aliases,
                           mirror_before=undo.mirror_after, servers_before=dict(undo.servers_after))
        elif changes := undo.drift(weights, aliases, word="was", mirror=mirror, servers=servers):
            where = incident_id if placement is None else self.journal.settle(placement).incident_id or incident_id
            self.refuse(where, undo, f"{plan.model} changed after {action_id}: {'; '.join(changes)}. "
                                           "Undoing would overwrite that change: plan a rollback with --from "
                                           "and --to instead")
        if already is None:
            # The undo sends traffic back where it came from: as a rollback's target, that must be able to answer.
            self._refuse_down(router, [v for v, w in undo.weights_after.items() if w > weights.get(v, 0)],
                              f"undoing {action_id}", "plan a rollback with --from and --to instead")
        check = SignatureCheck(True, f"back to v{undo.target}, which served before {action_id}")
        return Preview(undo, f"undo of {action_id}", versions.get(undo.leave), versions.get(undo.target),
                       check, router, already, warnings=_router_notes(router)), incident_id

    def _undo_features_preview(self, action_id: str, incident_id: str, undo: Plan,
                               placement: Placement | None) -> Preview:
        tags, view = self._feature_actions().read(undo)
        already = None
        if undo.state_is({}, {}, end=True, tags=tags, view=view):
            already = f"{action_id} is already undone: the features are as they were before it"
            undo = replace(undo, tag_moves=(), view_pin=None)
        elif changes := undo.drift({}, {}, word="was", tags=tags, view=view):
            where = incident_id if placement is None else self.journal.settle(placement).incident_id or incident_id
            self.refuse(where, undo, f"{undo.model} changed after {action_id}: {'; '.join(changes)}. "
                                     "Undoing would overwrite that change")
        check = SignatureCheck(True, "not affected: only the feature binding moves back")
        return Preview(undo, f"undo of {action_id}", None, None, check, RouterState(undo.model, ()), already)

    def find_action(self, action_id: str) -> tuple[str, Plan, bool]:
        """The incident, the plan and whether it was applied, for an action id.

        Raises:
            UsageError: no action with that id in the journal.
        """
        for incident in self.journal.incidents():
            intent = None
            applied = False
            for event in self.journal.journal.events(
                incident.incident_id, [EventKind.ACTION_INTENT, EventKind.ACTION_APPLIED]
            ):
                if event.payload.get("action_id") != action_id:
                    continue
                if event.kind is EventKind.ACTION_INTENT:
                    intent = event
                else:
                    applied = event.payload.get("changed", True) is not False
            if intent is not None:
                return incident.incident_id, Plan.from_dict(intent.payload["plan"]), applied
        raise UsageError(f"no action {action_id} in the journal ({self.journal.describe()})")

    # -- evidence ----------------------------------------------------------------------------
    def record_evidence(self, incident_id: str, plan: Plan) -> int:
        """Journal the catalogue's checks as they stand now (``check.evaluated``, one per metric).

        The decision that follows then carries its evidence: PromQL, raw values per
        version and segment, criteria and verdicts, which the exports chart.

        Returns:
            How many breaching cells the checks found.
        """
        from console.domain.journal import check_payload

        results = self.metrics.evaluate(self.catalogue, plan.model)
        stable = plan.aliases_before.get(self.settings.stable_alias)
        if plan.moves_features:
            # A feature rollback moves no traffic: the evidence is every version that serves.
            try:
                stable = self.registry.get_alias(plan.model, self.settings.stable_alias)
            except RewindError:
                stable = None
            versions = sorted({v for r in results.values() for v, _ in r.values}, key=version_sort_key)
        else:
            versions = sorted({plan.leave, plan.target} | {v for v, w in plan.weights_before.items() if w > 0},
                              key=version_sort_key)
        matrix = build_matrix(self.catalogue, results, versions, stable, self.traffic_metric)
        now = time.time()
        items = []
        breaches = 0
        for spec in self.catalogue:
            result = results.get(spec.name)
            if result is None:
                continue
            cells = [matrix.cell(spec.name, v, s) for v in matrix.versions for s in matrix.segments]
            states = {c.state for c in cells}
            verdict = overall_state(states).value
            breaches += sum(c.state is State.BREACH for c in cells)
            items.append((EventKind.CHECK_EVALUATED, check_payload(spec, result, cells, verdict, stable, now)))
        if self.features is not None:
            # The likely cause, as the decision is taken on it: the post-mortem's trigger quotes it.
            reading = self.features.evidence.reading_of(plan.model, matrix)
            if reading.diagnosis is not None:
                # Evidence, like the checks above: it names no action (an action's own events are its steps).
                items.append((EventKind.NOTE, {"text": f"diagnosis: {reading.diagnosis.summary}",
                                               "diagnosis": reading.diagnosis.to_dict()}))
        if items:
            self.journal.record_many(incident_id, items)
        return breaches

    # -- authority ---------------------------------------------------------------------------
    def authorize(self, incident_id: str, plan: Plan, needed: Permission = Permission.ACT) -> None:
        """Refuse (and journal the refusal) unless this console's OS user holds ``needed``."""
        reason = self.policy.refusal(self.identity, needed)
        if reason:
            self.refuse(incident_id, plan, reason)

    def needs_approval(self, plan: Plan) -> bool:
        """Whether the two-person rule applies to the plan's model."""
        return self.policy.enforced and self.policy.needs_second_person(plan.model)

    def request_approval(self, incident_id: str, plan: Plan) -> None:
        """Journal that the action waits for a second person."""
        self.journal.record(incident_id, EventKind.DECISION, {
            "option": "request_approval", "reason": plan.reason or "(none given)", "action_id": plan.action_id,
            "plan": plan.to_dict(), "requested_by": self.identity.user,
        })

    def find_request(self, action_id: str) -> tuple[str, Plan, str]:
        """The incident, plan and requesting user of an action waiting for approval.

        Raises:
            UsageError: no such request in the journal.
        """
        for incident in self.journal.incidents():
            for event in self.journal.journal.events(incident.incident_id, [EventKind.DECISION]):
                if event.payload.get("option") == "request_approval" and event.payload.get("action_id") == action_id:
                    return incident.incident_id, Plan.from_dict(event.payload["plan"]), event.actor.user
        raise UsageError(f"no action {action_id} is waiting for approval in the journal ({self.journal.describe()})")

    def approver_of(self, incident_id: str, action_id: str, requester: str) -> str | None:
        """The user who approved ``action_id``, if a user other than the requester did."""
        for event in self.journal.journal.events(incident_id, [EventKind.DECISION]):
            if (event.payload.get("option") == "approve" and event.payload.get("action_id") == action_id
                    and event.actor.user != requester):
                return event.actor.user
        return None

    def approve(self, action_id: str, reason: str = "") -> tuple[str, Plan]:
        """Approve another user's pending action, as this console's OS user; journaled.

        Raises:
            RefusedError: the approver lacks the permission or is the requester.
        """
        incident_id, plan, requester = self.find_request(action_id)
        refusal = approval_refusal(requester, self.identity, self.policy)
        if refusal:
            self.journal.record(incident_id, EventKind.DECISION, {
                "option": "approval_refused", "reason": refusal, "action_id": action_id})
            raise RefusedError(f"refused: {refusal}")
        self.journal.record(incident_id, EventKind.DECISION, {
            "option": "approve", "reason": reason or "(none given)", "action_id": action_id,
            "requested_by": requester,
        })
        return incident_id, plan

    def wait_for_approval(self, incident_id: str, plan: Plan) -> str:
        """Wait until another user approves; the approver's name. Refuses (journaled) after the timeout."""
        deadline = time.monotonic() + self.approval_timeout_s
        while True:
            approver = self.approver_of(incident_id, plan.action_id, self.identity.user)
            if approver:
                return approver
            if time.monotonic() >= deadline:
                self.refuse(incident_id, plan, f"not approved by a second person within {self.approval_timeout_s:g}s")
            self.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    # -- applying ---------------------------------------------------------------------------
    def refuse(self, incident_id: str, plan: Plan, reason: str) -> None:
        """Journal a refused action, then raise :class:`RefusedError`."""
        self.journal.record(incident_id, EventKind.ACTION_FAILED,
                            {"action_id": plan.action_id, "refused": True, "reason": reason, "plan": plan.to_dict()})
        raise RefusedError(f"refused: {reason}")

    def _state(self, model: str) -> tuple[dict[str, int], dict[str, str]]:
        return self.router.read_state(model).weights(), dict(self.registry.get_aliases(model).aliases)

    def _just_noted(self, incident_id: str, text: str) -> bool:
        """Whether the incident's latest event is already the note ``text`` (a rerun said it just before)."""
        _, events = self.journal.chain(incident_id)
        return bool(events) and events[-1].kind is EventKind.NOTE and events[-1].payload.get("text") == text

    def apply(self, preview: Preview, incident_id: str | None, force: bool = False) -> Outcome:
        """Carry out a previewed plan: lock and intent, compare-and-set, router, registry, read-back, outcome.

        Both systems are read for the compare-and-set once the lock and the
        intent are committed, and compared with the preview before either is
        written: a conflict on either side changes nothing.

        A plan that changes nothing (the same command run again) is noted in
        ``incident_id`` (once: not again when the incident's latest event is the
        same note), and with ``incident_id`` ``None`` journals nothing at all.
        Any other plan needs an incident.

        Raises:
            RefusedError: incompatible signatures without ``force``.
            ConflictError: another action holds the model, or a system changed since the preview.
            RewindError: a system failed; the message says what state each one is in.
        """
        plan = preview.plan
        if plan.is_noop:  # before anything else: a plan that changes nothing needs no permission to say so
            message = f"already applied: {preview.already or plan.model + ' is in the planned state'}; nothing changed"
            if incident_id is not None and not self._just_noted(incident_id, message):
                self.journal.record(incident_id, EventKind.NOTE, {"text": message, "action_id": plan.action_id})
            return Outcome(plan.action_id, "already_applied", dict(plan.weights_before),
                           dict(plan.aliases_before), message)
        if incident_id is None:
            raise UsageError(f"{plan.action_id} changes {plan.model}: it needs an incident to be journaled in")
        if not preview.signature.compatible and not force:
            self.refuse(incident_id, plan, f"incompatible signatures: {preview.signature.reason} (--force overrides)")
        try:
            # The lock is taken in the intent's own transaction: never one without the other.
            self.journal.record(incident_id, EventKind.ACTION_INTENT, {
                "action_id": plan.action_id, "plan": plan.to_dict(), "kind": plan.kind.value,
                "expected": {"weights": plan.weights_before, "aliases": plan.aliases_before},
                "versions": _version_facts(preview.leaving, preview.target),
                **({"warnings": list(preview.warnings)} if preview.warnings else {}),
            }, lock=LockChange(True, plan.model, plan.action_id, self.holder))
        except LockHeldError as held:
            conflict = f"another action on {plan.model} is in progress: {held}"
            self.journal.record(incident_id, EventKind.ACTION_FAILED,
                                {"action_id": plan.action_id, "conflict": True, "reason": conflict})
            raise ConflictError(conflict) from None
        self._holding = True
        try:
            self.checkpoint("after-lock")
            self.checkpoint("after-intent")
            return self._apply_locked(plan, incident_id)
        finally:
            if self._holding:  # an unexpected error on the way: give the lock back all the same
                self.lock.release(plan.model, plan.action_id)
                self._holding = False

    def _outcome(self, incident_id: str, plan: Plan, kind: EventKind, payload: dict[str, object]) -> None:
        """Journal an action's outcome and release its lock, in one transaction."""
        self.journal.record(incident_id, kind, payload, lock=LockChange(False, plan.model, plan.action_id))
        self._holding = False

    def _feature_actions(self) -> FeatureActions:
        if self.features is None:
            raise UsageError("this action moves features, and no feature store is configured (features.repo)")
        return self.features

    def _apply_features(self, plan: Plan, incident_id: str) -> Outcome:
        """A feature rollback under the lock: compare-and-set on the tags (and the view), apply, read back.

        A write failing after another succeeded is compensated: the tags already moved go back.
        """
        features = self._feature_actions()
        try:
            tags, view = features.read(plan)
        except RewindError as exc:
            return self._fail(incident_id, plan, f"reading the features before the change: {exc}", exc,
                              router_changed=False)
        if plan.state_is({}, {}, end=True, tags=tags, view=view):
            message = f"already applied: {plan.model}'s features reached the planned state; nothing changed"
            self._outcome(incident_id, plan, EventKind.ACTION_APPLIED, {
                "action_id": plan.action_id, "changed": False, "reason": message,
                "observed": {"tags": tags, "view": view}, "alias_moves": [], "undoes": plan.undoes,
            })
            return Outcome(plan.action_id, "already_applied", {}, {}, message)
        drift = plan.drift({}, {}, tags=tags, view=view)
        if drift:
            conflict = ConflictError(f"{plan.model} changed since the preview: {'; '.join(drift)}")
            return self._fail(incident_id, plan, str(conflict), conflict, router_changed=False)
        try:
            tags, view = features.apply(plan)
        except FeatureChangeFailed as failed:
            if not failed.done and not failed.view_moved:
                return self._fail(incident_id, plan, f"features: {failed.cause}", failed.cause, router_changed=False)
            problems = features.compensate(plan, failed.done, failed.view_moved)
            tags, view = features.read(plan)
            self._outcome(incident_id, plan, EventKind.ACTION_COMPENSATED, {
                "action_id": plan.action_id, "reason": f"features: {failed.cause}", "restored": not problems,
                "problems": problems, "observed": {"tags": tags, "view": view},
            })
            where = "what had moved was put back" if not problems else "COMPENSATION INCOMPLETE: " + "; ".join(problems)
            raise type(failed.cause)(f"features: {failed.cause}; {where}; tags now {tags}") from None
        self.checkpoint("after-features")
        message = f"applied: {plan.summary}"
        self._outcome(incident_id, plan, EventKind.ACTION_APPLIED, {
            "action_id": plan.action_id, "observed": {"tags": tags, "view": view},
            "tag_moves": [m.__dict__ for m in plan.tag_moves], "alias_moves": [], "undoes": plan.undoes,
        })
        return Outcome(plan.action_id, "applied", {}, {}, message, {"tags": tags, "view": view})

    def verify_window_s(self, plan: Plan) -> float:
        """How long verifying ``plan`` may take: a feature rollback waits for the metrics' window to turn."""
        if plan.moves_features and self.features is not None:
            return self.features.settings.verify_window_s
        return self.settings.verify_window_s

    def _verify_features(self, incident_id: str, plan: Plan) -> Outcome:
        """Every server reports the new binding, the inputs are normal again, the model's metrics pass."""
        passed, evidence, message = self._feature_actions().verify(plan)
        expected: dict[str, object] = {"tags": {m.version: m.after for m in plan.tag_moves},
                                       "view": plan.view_pin.after if plan.view_pin else None,
                                       "inputs": "normal", "metrics": "pass"}
        self.journal.record(incident_id, EventKind.ACTION_VERIFIED if passed else EventKind.ACTION_NOT_VERIFIED, {
            "action_id": plan.action_id, "expected": expected, "observed": evidence, "evidence": evidence,
        })
        return Outcome(plan.action_id, "verified" if passed else "not_verified", {}, {},
                       ("verified: " if passed else "NOT verified: ") + message, evidence)

    def _apply_locked(self, plan: Plan, incident_id: str) -> Outcome:
        if plan.moves_features:
            return self._apply_features(plan, incident_id)
        try:
            # Compare-and-set, first half: both systems read under the lock, before anything is written.
            state = self.router.read_state(plan.model)
            weights = state.weights()
            servers = {s.server: s.admin_state for s in state.servers}
            mirror = self.router.read_mirror(plan.model) if plan.moves_mirror else None
            seen_aliases = {m.alias: self.registry.get_alias(plan.model, m.alias) for m in plan.alias_moves}
        except RewindError as exc:
            return self._fail(incident_id, plan, f"reading the systems before the change: {exc}", exc,
                              router_changed=False)
        if plan.state_is(weights, seen_aliases, end=True, mirror=mirror, servers=servers):
            reached = {a: v for a, v in {**plan.aliases_before, **seen_aliases}.items() if v is not None}
            message = (f"already applied: {plan.model} reached the planned state after the preview, "
                       f"not by this action; nothing changed")
            self._outcome(incident_id, plan, EventKind.ACTION_APPLIED, {
                "action_id": plan.action_id, "changed": False, "reason": message,
                "observed": {"weights": weights, "aliases": reached}, "alias_moves": [], "undoes": plan.undoes,
            })
            return Outcome(plan.action_id, "already_applied", weights, reached, message)
        drift = plan.drift(weights, seen_aliases, mirror=mirror, servers=servers)
        if drift:
            conflict = ConflictError(f"{plan.model} changed since the preview: {'; '.join(drift)}")
            return self._fail(incident_id, plan, str(conflict), conflict, router_changed=False)
        previous = plan.weights_before
        gated = False
        for index, step in enumerate(plan.steps):
            changed = {v: w for v, w in step.items() if previous.get(v) != w}
            if changed:
                try:
                    # The first step was compared above, under the lock; later ones compare in the adapter.
                    # Either way the write and its read-back are one exchange.
                    weights = self.router.set_weights(plan.model, changed,
                                                      expected={v: previous[v] for v in changed},
                                                      checked=index == 0).weights()
                except RewindError as exc:
                    # The first write failing may still have changed part of the batch: None, read to tell.
                    return self._fail(incident_id, plan, f"router: {exc}", exc, router_changed=True if index else None)
            self.checkpoint(f"after-router-step-{index + 1}")
            previous = step
            if plan.mode is Mode.GRADUAL and index < len(plan.steps) - 1:
                gated = True
                try:
                    passed, evidence = self._watch(plan, self.settings.gate_window_s, self.gate_metrics,
                                                   until_pass=False)
                except RewindError as exc:  # the metrics could not be read: a gate that cannot pass
                    passed, evidence = False, {"reason": f"the gate could not be checked: {exc}", "breaches": []}
                self.journal.record(incident_id, EventKind.NOTE, {
                    "text": f"gate after step {index + 1}: {'passed' if passed else 'FAILED'}",
                    "action_id": plan.action_id, "step": index + 1, "weights": step, "evidence": evidence,
                })
                if not passed:
                    message = (f"held at step {index + 1} of {len(plan.steps)}: the gate failed "
                               f"({evidence.get('reason')}); weights stay at {step}, aliases unchanged")
                    self._outcome(incident_id, plan, EventKind.ACTION_FAILED, {
                        "action_id": plan.action_id, "held": True, "step": index + 1, "reason": message,
                        "observed": {"weights": weights, "aliases": plan.aliases_before}, "evidence": evidence,
                    })
                    return Outcome(plan.action_id, "held", weights, plan.aliases_before, message, evidence)
        router_done = self._apply_router_extras(incident_id, plan)
        if isinstance(router_done, Outcome):
            return router_done
        aliases = dict(plan.aliases_before)
        done: list[AliasMove] = []
        # Each alias was compared once, under the lock; after gates (seconds, during which someone
        # may edit the registry by hand) the adapter compares again just before writing.
        unchecked = set() if gated else set(seen_aliases)
        for move in plan.alias_moves:
            checked = move.alias in unchecked
            unchecked.discard(move.alias)
            try:
                # The write and its read-back happen in the adapter.
                if move.after is None:
                    read_back = self.registry.delete_alias(plan.model, move.alias, expected=move.before,
                                                           checked=checked)
                else:
                    read_back = self.registry.set_alias(plan.model, move.alias, move.after, expected=move.before,
                                                        checked=checked)
            except RewindError as exc:
                return self._compensate(incident_id, plan, done, exc)
            done.append(move)
            if read_back is None:
                aliases.pop(move.alias, None)
            else:
                aliases[move.alias] = read_back
            self.checkpoint(f"after-alias-{move.alias}")
        message = (f"applied: v{plan.leave} weight {plan.weights_before.get(plan.leave)} → "
                   f"{weights.get(plan.leave)}, v{plan.target} {plan.weights_before.get(plan.target)} → "
                   f"{weights.get(plan.target)}; aliases {_aliases(aliases)}") if plan.moved_versions \
            else f"applied: {plan.summary}; aliases {_aliases(aliases)}"
        observed: dict[str, object] = {"weights": weights, "aliases": aliases}
        if plan.moves_mirror:
            observed["mirror"] = router_done.get("mirror")
            message += f"; {describe_mirror(Mirror.from_dict(router_done.get('mirror')))}"
        if plan.moved_servers:
            observed["servers"] = router_done.get("servers")
            message += "; servers " + ", ".join(f"{n} {st}" for n, st in sorted(plan.servers_after.items()))
        self._outcome(incident_id, plan, EventKind.ACTION_APPLIED, {
            "action_id": plan.action_id, "observed": observed,
            "alias_moves": [m.__dict__ for m in plan.alias_moves], "undoes": plan.undoes,
        })
        self.checkpoint("after-applied")
        return Outcome(plan.action_id, "applied", weights, aliases, message)

    def _apply_router_extras(self, incident_id: str, plan: Plan) -> dict[str, Any] | Outcome:
        """Server admin states, then the mirror, each with compare-and-set and read back (after the weights).

        Returns:
            What was read back (``servers``, ``mirror``), or the failure's outcome, raised by ``_fail``.
        """
        read_back: dict[str, Any] = {}
        if plan.moved_servers:
            changed = {n: plan.servers_after[n] for n in plan.moved_servers}
            try:
                state = self.router.set_admin_state(plan.model, changed,
                                                    expected={n: plan.servers_before.get(n, "ready") for n in changed})
            except RewindError as exc:
                return self._fail(incident_id, plan, f"router: {exc}", exc,
                                  router_changed=True if plan.moved_versions else None)
            read_back["servers"] = {s.server: ("maint" if s.status == "MAINT" else "ready") for s in state.servers
                                    if s.server in changed}
            self.checkpoint("after-servers")
        if plan.moves_mirror:
            try:
                after = self.router.set_mirror(plan.model, plan.mirror_after, expected=plan.mirror_before)
            except RewindError as exc:
                if plan.moved_versions or plan.moved_servers:
                    return self._compensate(incident_id, plan, [], exc, what="router mirror")
                return self._fail(incident_id, plan, f"router mirror: {exc}", exc, router_changed=False)
            read_back["mirror"] = after.to_dict() if after else None
            self.checkpoint("after-mirror")
        return read_back

    def record_history(self, plan: Plan) -> str | None:
        """Tag the versions with what happened (MLflow keeps no alias history; the journal is the record).

        Returns:
            ``None``, or why the tags could not be written (the action itself stands).
        """
        if plan.moves_features:
            return None  # the tags moved are the record; the journal has the rest
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            self.registry.set_version_tag(plan.model, plan.leave, "rewind.left_by", f"{plan.action_id} {stamp}")
            for move in plan.alias_moves:
                if move.alias == self.settings.stable_alias and move.after and move.before:
                    self.registry.set_version_tag(plan.model, move.after, PREVIOUS_CHAMPION_TAG, move.before)
        except RewindError as exc:
            return str(exc)
        return None

    def _fail(self, incident_id: str, plan: Plan, reason: str, exc: RewindError,
              router_changed: bool | None) -> Outcome:
        observed = self._observe(plan.model)
        self._outcome(incident_id, plan, EventKind.ACTION_FAILED, {
            "action_id": plan.action_id, "reason": reason, "conflict": isinstance(exc, ConflictError),
            "observed": observed,
        })
        state = f"router {_router_state(observed)}, registry {_registry_state(observed)}"
        if router_changed:
            what = "Changed up to the failing step"
        elif router_changed is False or ("weights" in observed and "aliases" in observed
                                         and plan.state_is(observed["weights"], observed["aliases"], end=False)):
            what = "Nothing changed"
        else:  # the first write failed after HAProxy took part of it, or the router cannot be read back
            what = "The router may be partly changed; as read now"
        raised = type(exc)(f"{reason}. {what}: {state}")
        raise raised

    def _compensate(self, incident_id: str, plan: Plan, done: list[AliasMove], exc: RewindError,
                    what: str = "registry") -> Outcome:
        """A later write failed after the router changed: put the router (and any alias moved) back."""
        problems = []
        for move in reversed(done):
            try:
                if move.before is None:
                    self.registry.delete_alias(plan.model, move.alias, expected=move.after)
                else:
                    self.registry.set_alias(plan.model, move.alias, move.before, expected=move.after)
            except RewindError as undo_exc:
                problems.append(f"alias {move.alias}: {undo_exc}")
        if plan.moves_mirror and what == "registry":
            try:
                self.router.set_mirror(plan.model, plan.mirror_before, expected=plan.mirror_after)
            except RewindError as mirror_exc:
                problems.append(f"router mirror: {mirror_exc}")
        if plan.moved_servers:
            try:
                self.router.set_admin_state(plan.model, {n: plan.servers_before.get(n, "ready")
                                                         for n in plan.moved_servers}, expected=None)
            except RewindError as servers_exc:
                problems.append(f"router servers: {servers_exc}")
        changed = {v: w for v, w in plan.weights_before.items() if plan.weights_after.get(v) != w}
        try:
            self.router.set_weights(plan.model, changed, expected={v: plan.weights_after[v] for v in changed})
        except RewindError as router_exc:
            problems.append(f"router: {router_exc}")
        observed = self._observe(plan.model)
        self._outcome(incident_id, plan, EventKind.ACTION_COMPENSATED, {
            "action_id": plan.action_id, "reason": f"{what}: {exc}", "restored": not problems,
            "problems": problems, "observed": observed,
        })
        where = ("router weights restored" if not problems else "COMPENSATION INCOMPLETE: " + "; ".join(problems))
        raise type(exc)(f"{what} failed after the router changed ({exc}); {where}; "
                        f"router {_router_state(observed)}, registry {_registry_state(observed)}")

    def _observe(self, model: str) -> _Observed:
        """Each system's state read back on its own: one unreachable system does not hide the other's."""
        observed: _Observed = {}
        try:
            state = self.router.read_state(model)
            observed["weights"] = state.weights()
            observed["servers"] = {s.server: s.admin_state for s in state.servers}
        except RewindError as exc:
            observed["router_error"] = f"could not read the router back: {exc}"
        try:
            mirror = self.router.read_mirror(model)
            observed["mirror"] = mirror.to_dict() if mirror else None
        except RewindError:
            pass  # no mirror configured: nothing to report
        try:
            observed["aliases"] = dict(self.registry.get_aliases(model).aliases)
        except RewindError as exc:
            observed["registry_error"] = f"could not read the registry back: {exc}"
        return observed

    # -- gates and verification -------------------------------------------------------------
    def _check(self, plan: Plan, metric_names: tuple[str, ...]) -> tuple[bool, dict[str, object]]:
        """Do the target's cells of ``metric_names`` pass right now? With the values as evidence."""
        specs = tuple(s for s in self.catalogue if s.name in metric_names or s.name == self.traffic_metric)
        results = self.metrics.evaluate(specs, plan.model)
        matrix = build_matrix(specs, results, [plan.target, plan.leave], None, self.traffic_metric)
        breaches = [
            {"metric": v.metric, "version": v.version, "segment": v.segment, "value": v.value, "reason": v.reason}
            for v in matrix.breaches() if v.version == plan.target and v.metric in metric_names
        ]
        evidence: dict[str, object] = {
            "metrics": list(metric_names),
            "queries": {name: r.promql for name, r in results.items()},
            "breaches": breaches,
            "evaluated_at": next(iter(results.values())).evaluated_at if results else None,
        }
        if breaches:
            first = breaches[0]
            evidence["reason"] = f"v{first['version']} {first['segment']} {first['metric']}: {first['reason']}"
            return False, evidence
        # No breach is a pass only when there was something to judge: a target that answered nothing (DOWN,
        # say) has no cells at all, and its absence is not evidence that it is healthy. (A check that asks for
        # no metric, with an empty catalogue, has nothing to hold on.)
        judged = not metric_names or any(matrix.state(name, plan.target, segment) is not State.NO_DATA
                     for name in metric_names for segment in matrix.segments)
        if not judged:
            evidence["no_data"] = True
            evidence["reason"] = (f"no data for v{plan.target} in {', '.join(metric_names)}: nothing shows it "
                                  "serving, so nothing shows it healthy")
        return judged, evidence

    def _watch(self, plan: Plan, window_s: float, metric_names: tuple[str, ...],
               until_pass: bool) -> tuple[bool, dict[str, object]]:
        """Check every poll interval for ``window_s``.

        A gate (``until_pass`` false) fails at the first breach; verification
        (``until_pass`` true) passes once the checks pass at the end of the window.
        Either fails when the target still has no data at the end of the window
        (a version just given traffic has none at first: that is not yet a failure).
        """
        deadline = time.monotonic() + window_s
        passed, evidence = self._check(plan, metric_names)
        while time.monotonic() < deadline:
            if not passed and not until_pass and not evidence.get("no_data"):
                return False, evidence
            self.sleep(min(self.settings.poll_interval_s, max(0.0, deadline - time.monotonic())))
            passed, evidence = self._check(plan, metric_names)
        return passed, evidence

    def verify(self, incident_id: str, plan: Plan) -> Outcome:
        """Watch the verification window and journal verified or not verified, with the evidence.

        Verified means, for a plan that moves traffic: over the window the leaving
        version got under 1 % of the requests the router sent (its own counters:
        traffic really stopped), and at the end the target passes the verification
        metrics in every segment. A plan that takes servers out or puts them back
        is verified from the router's counters of who answered (:meth:`_verify_servers`);
        one that only starts or stops a mirror, from the copies the shadow received.
        """
        if plan.moves_features:
            return self._verify_features(incident_id, plan)
        if plan.moved_servers:
            return self._verify_servers(incident_id, plan)
        if plan.moves_mirror and not plan.moved_versions:
            return self._verify_mirror(incident_id, plan)
        # Who was served is counted by the router (HAProxy's counters) or from the per-version metrics (a
        # Gateway API route counts nothing): never taken from the weights, which may say 0 while traffic flows.
        uncounted = None
        try:
            served_before = self.router.served(plan.model)
        except RewindError as exc:
            served_before, uncounted = {}, str(exc)
        passed, evidence = self._watch(plan, self.settings.verify_window_s, self.verify_metrics, until_pass=True)
        try:
            served_after = self.router.served(plan.model)
        except RewindError as exc:
            served_after, uncounted = {}, str(exc)
        if uncounted is None and plan.leave not in served_after:
            uncounted = f"no request count for v{plan.leave}"
        delta = {v: served_after.get(v, 0) - served_before.get(v, 0) for v in served_after}
        total = sum(delta.values())
        share = delta.get(plan.leave, 0) / total if total else 0.0
        must_drain = plan.weights_after.get(plan.leave, 0) == 0
        if uncounted is None and total == 0 and self.router.counts_from_metrics:
            # Metrics lag the traffic by a scrape or more: no request counted proves nothing about a drain.
            uncounted = (f"no request was counted in {self.settings.verify_window_s:g}s (do the metrics lag more "
                         "than rollback.verify_window_s?)")
        drained = (uncounted is None and share < DRAINED_SHARE) if must_drain else True
        # The target must have answered: metrics that show nothing for it are not a pass (see _check).
        answered = round(delta.get(plan.target, 0)) if uncounted is None else None  # None: not counted
        unserved = (answered == 0 and plan.weights_after.get(plan.target, 0) > 0
                    and (total > 0 or not self.router.counts_from_metrics))
        weights, aliases = self._state(plan.model)
        evidence.update(weights=weights, aliases=aliases, served_during_window=delta,
                        leave_share=round(share, 4), drained=drained)
        if uncounted is not None:
            evidence["uncounted"] = uncounted
        if unserved:
            silent = (f"v{plan.target} answered no request in {self.settings.verify_window_s:g}s although the "
                      f"router gives it weight {plan.weights_after.get(plan.target)} (too little traffic for the "
                      "window? rollback.verify_window_s)")
            evidence["reason"] = "; ".join(str(part) for part in (silent, evidence.get("reason")) if part)
        passed = passed and drained and not unserved
        kind = EventKind.ACTION_VERIFIED if passed else EventKind.ACTION_NOT_VERIFIED
        self.journal.record(incident_id, kind, {
            "action_id": plan.action_id,
            "expected": {"leave_share_below": DRAINED_SHARE if plan.weights_after.get(plan.leave, 0) == 0 else None,
                         "target_passes": list(self.verify_metrics), "weights": plan.weights_after},
            "observed": {"leave_share": round(share, 4),
                         **({} if answered is None else {"target_answered": answered}),
                         "breaches": evidence["breaches"], "weights": weights},
            "evidence": evidence,
        })
        traffic = f"v{plan.leave} got {share:.1%} of {total} requests in {self.settings.verify_window_s:g}s"
        if must_drain and uncounted is not None:
            traffic = f"v{plan.leave}'s requests could not be counted, so its drain is unproven: {uncounted}"
        elif not drained:
            traffic += f" although the router reads weight {weights.get(plan.leave)} for it"
        if passed:
            answer = "" if answered is None else f"answered {answered} and "
            message = f"verified: {traffic}; v{plan.target} {answer}passes {', '.join(self.verify_metrics)}"
        else:
            message = f"NOT verified: {traffic}" + (f"; {evidence['reason']}" if evidence.get("reason") else "")
        return Outcome(plan.action_id, "verified" if passed else "not_verified", weights, aliases, message, evidence)

    def _verified(self, incident_id: str, plan: Plan, passed: bool, expected: dict[str, object],
                  observed: dict[str, object], message: str) -> Outcome:
        """Journal a verification's result with what was expected and what was seen."""
        self.journal.record(incident_id, EventKind.ACTION_VERIFIED if passed else EventKind.ACTION_NOT_VERIFIED, {
            "action_id": plan.action_id, "expected": expected, "observed": observed, "evidence": observed,
        })
        weights, aliases = self._state(plan.model)
        return Outcome(plan.action_id, "verified" if passed else "not_verified", weights, aliases,
                       ("verified: " if passed else "NOT verified: ") + message, observed)

    def _verify_servers(self, incident_id: str, plan: Plan) -> Outcome:
        """Servers out (the fallback engaged) or back (restored): who answered over the window, by HAProxy."""
        before = self.router.fallback(plan.model)
        self.sleep(self.settings.verify_window_s)
        after = self.router.fallback(plan.model)
        served = {s.server: s.served - next((b.served for b in before.servers if b.server == s.server), 0)
                  for s in after.servers}
        backups = sum(served.get(s.server, 0) for s in after.backups)
        out = [n for n in plan.moved_servers if plan.servers_after[n] == "maint"]
        back = [n for n in plan.moved_servers if plan.servers_after[n] == "ready"]
        total = sum(served.values())
        if out:
            passed = backups > 0 and all(served.get(n, 0) == 0 for n in out)
            message = (f"the fallback answered {backups} of {total} requests in {self.settings.verify_window_s:g}s; "
                       + ", ".join(f"{n} {served.get(n, 0)}" for n in out))
        else:
            passed = sum(served.get(n, 0) for n in back) > 0 and backups <= DRAINED_SHARE * max(total, 1)
            message = (", ".join(f"{n} answered {served.get(n, 0)}" for n in back)
                       + f", the fallback {backups}, of {total} requests in {self.settings.verify_window_s:g}s")
        return self._verified(incident_id, plan, passed,
                              {"servers": plan.servers_after, "fallback_serves": bool(out)},
                              {"served_during_window": served, "fallback_served": backups}, message)

    def _verify_mirror(self, incident_id: str, plan: Plan) -> Outcome:
        """A mirror started (copies reach the shadow) or stopped (the router has no mirror), read back again."""
        mirror = self.router.read_mirror(plan.model)
        observed: dict[str, object] = {"mirror": mirror.to_dict() if mirror else None}
        if mirror != plan.mirror_after:
            return self._verified(incident_id, plan, False, {"mirror": plan.to_dict()["mirror_after"]}, observed,
                                  f"the router shows {describe_mirror(mirror)}")
        if mirror is None or self.shadow_copies is None:
            return self._verified(incident_id, plan, True, {"mirror": None if mirror is None else mirror.to_dict()},
                                  observed, f"the router shows {describe_mirror(mirror)}")
        deadline = time.monotonic() + self.settings.verify_window_s
        copies: float | None = None
        while True:
            copies = self.shadow_copies(plan.model, mirror.shadow, mirror.baseline)
            if copies or time.monotonic() >= deadline:
                break
            self.sleep(min(self.settings.poll_interval_s, max(0.0, deadline - time.monotonic())))
        observed["copies_received"] = copies
        seen = "no copies" if not copies else f"{round(copies)} copies"
        return self._verified(incident_id, plan, bool(copies), {"mirror": mirror.to_dict(), "copies": "> 0"},
                              observed, f"{describe_mirror(mirror)}; v{mirror.shadow} received {seen} lately")

    # -- crash recovery ---------------------------------------------------------------------
    def recover(self, is_live: Callable[[str], bool]) -> list[str]:
        """Find intents without an outcome, read the real state, and journal what happened.

        Args:
            is_live: whether the console holding a lock is still at work (so its
                action is in progress, not abandoned).

        Returns:
            One line per recovered action.
        """
        reports = []
        for incident in self.journal.incidents():
            intents: dict[str, Plan] = {}
            for event in self.journal.journal.events(incident.incident_id, [EventKind.ACTION_INTENT, *TERMINAL]):
                action_id = str(event.payload.get("action_id"))
                if event.kind is EventKind.ACTION_INTENT:
                    intents[action_id] = Plan.from_dict(event.payload["plan"])
                else:
                    intents.pop(action_id, None)
            for action_id, plan in intents.items():
                holder = self.lock.holder(plan.model)
                if holder is not None and holder[0] == action_id and is_live(holder[1]):
                    continue  # still being carried out by a live console
                reports.append(self._recover_one(incident.incident_id, plan))
                self.lock.release(plan.model, action_id)
        # A console that died holding a lock, before its intent or after its outcome, left only the lock.
        for model, action_id, left_by in self.lock.held():
            if not is_live(left_by):
                self.lock.release(model, action_id)
                reports.append(f"{action_id} ({model}): released the lock left by {left_by}, "
                               "which is no longer running")
        return reports

    def _recover_one(self, incident_id: str, plan: Plan) -> str:
        if plan.moves_features:
            return self._recover_features(incident_id, plan)
        state = self.router.read_state(plan.model)
        weights, aliases = state.weights(), dict(self.registry.get_aliases(plan.model).aliases)
        servers = {s.server: s.admin_state for s in state.servers}
        mirror = self.router.read_mirror(plan.model) if plan.moves_mirror else None
        observed: dict[str, object] = {"weights": weights, "aliases": aliases}
        if plan.moves_mirror:
            observed["mirror"] = mirror.to_dict() if mirror else None
        if plan.moved_servers:
            observed["servers"] = {n: servers.get(n) for n in plan.moved_servers}
        # The router's other parts (mirror, server states) count with its weights: one system, one state.
        extras_before = _extras_are(plan, mirror, servers, end=False)
        extras_after = _extras_are(plan, mirror, servers, end=True)
        router_before = _covers(weights, plan.weights_before) and extras_before
        router_after = _covers(weights, plan.weights_after) and extras_after
        registry_before, registry_after = aliases == plan.aliases_before, aliases == plan.aliases_after
        step = next((i + 1 for i, s in enumerate(plan.steps) if _covers(weights, s)), None)
        if router_after and registry_after:
            what = "fully applied before the console stopped"
            self.journal.record(incident_id, EventKind.ACTION_APPLIED, {
                "action_id": plan.action_id, "recovered": True, "observed": observed,
                "alias_moves": [m.__dict__ for m in plan.alias_moves], "undoes": plan.undoes,
            })
        else:
            if router_before and registry_before:
                what = "not applied: the console stopped before changing anything"
            elif router_after and registry_before:
                what = "partly applied: router changed to the planned weights, registry unchanged"
            elif step is not None and registry_before:
                what = f"partly applied: router at step {step} of {len(plan.steps)}, registry unchanged"
            elif router_after:
                what = "partly applied: router changed, registry aliases only partly moved"
            else:
                what = "the state matches neither the plan's start nor its end (changed since)"
            self.journal.record(incident_id, EventKind.ACTION_FAILED, {
                "action_id": plan.action_id, "recovered": True, "reason": what, "observed": observed,
            })
        return (f"{plan.action_id} ({plan.model}, v{plan.leave} → v{plan.target}): {what}; "
                f"weights now {weights}, aliases {_aliases(aliases)}")

    def _recover_features(self, incident_id: str, plan: Plan) -> str:
        tags, view = self._feature_actions().read(plan)
        observed: dict[str, object] = {"tags": tags, "view": view}
        if plan.state_is({}, {}, end=True, tags=tags, view=view):
            what = "fully applied before the console stopped"
            self.journal.record(incident_id, EventKind.ACTION_APPLIED, {
                "action_id": plan.action_id, "recovered": True, "observed": observed,
                "tag_moves": [m.__dict__ for m in plan.tag_moves], "alias_moves": [], "undoes": plan.undoes,
            })
        else:
            what = ("not applied: the console stopped before changing anything"
                    if plan.state_is({}, {}, end=False, tags=tags, view=view)
                    else "partly applied: some feature tags moved")
            self.journal.record(incident_id, EventKind.ACTION_FAILED, {
                "action_id": plan.action_id, "recovered": True, "reason": what, "observed": observed,
            })
        return f"{plan.action_id} ({plan.model}, {plan.summary}): {what}; tags now {tags}"


def _version_facts(*versions: ModelVersion | None) -> dict[str, dict[str, object]]:
    """What the registry said of the versions an action moves between, for the post-mortem's trigger."""
    return {
        v.version: {"created_at": v.created_at.isoformat() if v.created_at else None, "run_id": v.run_id,
                    "description": v.description, "tags": dict(v.tags)}
        for v in versions if v is not None
    }


def _covers(weights: dict[str, int], wanted: dict[str, int]) -> bool:
    """Whether ``weights`` has every weight ``wanted`` names."""
    return all(weights.get(v) == w for v, w in wanted.items())


def _aliases(aliases: dict[str, str]) -> str:
    return ", ".join(f"{a} → v{v}" for a, v in sorted(aliases.items())) or "none"


def _router_state(observed: _Observed) -> str:
    return f"weights now {observed['weights']}" if "weights" in observed else observed["router_error"]


def _registry_state(observed: _Observed) -> str:
    return f"aliases {_aliases(observed['aliases'])}" if "aliases" in observed else observed["registry_error"]


def _extras_are(plan: Plan, mirror: Mirror | None, servers: dict[str, str], end: bool) -> bool:
    """Whether the router's mirror and server states are the plan's start (or end) state, for what it changes."""
    want_servers = plan.servers_after if end else plan.servers_before
    return ((not plan.moves_mirror or mirror == (plan.mirror_after if end else plan.mirror_before))
            and all(servers.get(n) == want_servers.get(n) for n in plan.moved_servers))
