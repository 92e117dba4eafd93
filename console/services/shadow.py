"""Shadow + promote: put a version in shadow of the champion, judge it, promote it, revert the promotion.

Each action is a :class:`~console.domain.rollback.Plan` carried out by the one
action procedure (:func:`console.services.actions.carry_out`): preview, typed
confirmation, compare-and-set, read-back of the router and the registry,
verification, journal, undo. This module only decides what each plan changes:

- **start**: the registry alias ``shadow`` points at the version, and the router
  mirrors the champion's answered requests to it; no traffic moves.
- **stop**: the mirror and the alias go.
- **promote**: ``champion`` moves to the shadow, and the champion's traffic with
  it; the old champion's server stays warm and becomes the shadow (the mirror is
  reversed), so a revert has fresh evidence. Refused unless the gate held for its
  window, or overridden with a reason and a second person's approval.
- **revert**: the undo of the promotion: alias, weights and mirror back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from console.domain.errors import UsageError
from console.domain.journal import EventKind, parse_ts
from console.domain.rollback import ActionKind, AliasMove, Mode, Plan, SignatureCheck, check_signatures, plan_steps
from console.domain.routing import Mirror, RouterState
from console.domain.shadow import GateReading
from console.domain.versions import AliasMap
from console.services.rollback import Preview, RefusedError, RollbackService, new_action_id
from console.services.shadow_gate import ShadowGate


@dataclass(frozen=True)
class ShadowSettings:
    """How shadows are named and judged (``shadow:`` in the config)."""

    alias: str = "shadow"
    price_per_cpu_second: float | None = None


@dataclass(frozen=True)
class ShadowStatus:
    """A model's shadow as the systems show it now, with the gate read over its window.

    Attributes:
        model: the model.
        champion: the champion's version.
        mirror: the router's mirror, ``None`` when nothing is mirrored.
        alias: the version the registry's shadow alias points at.
        started_at: when the mirror was started (from the journal), or ``None`` when unknown.
        gate: the gate read over its window, ``None`` with no mirror.
        problem: why the state could not be read in full, or ``None``.
    """

    model: str
    champion: str | None
    mirror: Mirror | None
    alias: str | None
    started_at: float | None
    gate: GateReading | None
    problem: str | None = None


class ShadowService:
    """Plans the shadow actions of one console's models; the rollback service carries them out.

    Args:
        rollback: carries out, verifies and undoes the plans (and holds the registry and router).
        gate: reads and judges the shadow's evidence.
        settings: the shadow alias and the price of a CPU-second.
        clock: the current time, for tests.
    """

    def __init__(self, rollback: RollbackService, gate: ShadowGate, settings: ShadowSettings = ShadowSettings(),
                 clock: Callable[[], float] = time.time) -> None:
        self.rollback = rollback
        self.gate = gate
        self.settings = settings
        self._now = clock

    @property
    def stable_alias(self) -> str:
        """The registry alias of the champion."""
        return self.rollback.settings.stable_alias

    # -- reading ----------------------------------------------------------------------------
    def _applied(self, model: str) -> Iterator[tuple[str, Plan]]:
        """``(applied at, plan)`` of every action on ``model`` that changed something, from the journal."""
        journal = self.rollback.journal
        for incident in journal.incidents():
            if incident.model not in (None, model):
                continue
            plans: dict[str, Plan] = {}
            for event in journal.journal.events(incident.incident_id, [EventKind.ACTION_INTENT,
                                                                       EventKind.ACTION_APPLIED]):
                action_id = str(event.payload.get("action_id"))
                if event.kind is EventKind.ACTION_INTENT:
                    plans[action_id] = Plan.from_dict(event.payload["plan"])
                elif action_id in plans and event.payload.get("changed", True) is not False \
                        and plans[action_id].model == model:
                    yield event.ts, plans[action_id]

    def started_at(self, model: str, mirror: Mirror) -> float | None:
        """When ``mirror`` was last set by an applied action (a start, a promotion or an undo), from the journal."""
        times = [parse_ts(ts).timestamp() for ts, plan in self._applied(model)
                 if plan.moves_mirror and plan.mirror_after == mirror]
        return max(times) if times else None

    def status(self, model: str) -> ShadowStatus:
        """The mirror, the shadow alias and the gate over its window."""
        aliases = self.rollback.registry.get_aliases(model)
        champion = aliases.version_of(self.stable_alias)
        alias = aliases.version_of(self.settings.alias)
        mirror = self.rollback.router.read_mirror(model)
        if mirror is None:
            return ShadowStatus(model, champion, None, alias, None, None)
        started = self.started_at(model, mirror)
        now = self._now()
        gate = self.read_gate(model, mirror, started if started is not None else now - self.gate.window_s, now)
        problem = None
        if mirror.baseline != champion:
            problem = f"the mirror copies v{mirror.baseline}'s answers, but the champion is v{champion}"
        return ShadowStatus(model, champion, mirror, alias, started, gate, problem)

    def read_gate(self, model: str, mirror: Mirror, started_at: float, now: float) -> GateReading:
        """The gate over its window; a partial mirror needs only its share of coverage."""
        return self.gate.over_window(model, mirror.shadow, mirror.baseline, started_at, now,
                                     self.settings.price_per_cpu_second, mirror.percent / 100)

    # -- planning ---------------------------------------------------------------------------
    def _read(self, model: str) -> tuple[AliasMap, dict[str, int], Mirror | None, RouterState]:
        """Aliases, weights, mirror and the router's state, read now."""
        service = self.rollback
        aliases = service.registry.get_aliases(model)
        router = service.router.read_state(model)
        return aliases, router.weights(), service.router.read_mirror(model), router

    def _preview(self, router: RouterState, plan: Plan, why: str, check_inputs: bool = True) -> Preview:
        """The plan with the two versions' registry facts, and whether the target takes the leaving one's inputs."""
        service = self.rollback
        versions = {v.version: v for v in service.registry.list_versions(plan.model)}
        leaving = service.with_signature(plan.model, versions.get(plan.leave))
        target = service.with_signature(plan.model, versions.get(plan.target))
        signature = (check_signatures(leaving, target) if leaving and target
                     else SignatureCheck(True, "not checked: a version is missing from the registry"))
        if not check_inputs:
            signature = SignatureCheck(True, f"not checked: v{plan.target} stops receiving copies")
        already = "the router and the registry already show the planned state" if plan.is_noop else None
        return Preview(plan, why, leaving, target, signature, router, already)

    def start_preview(self, model: str, version: str, percent: int = 100, reason: str = "") -> Preview:
        """Put ``version`` in shadow of the champion: the shadow alias, then the router's mirror.

        Raises:
            UsageError: no champion, the champion itself, or a version without a router server.
        """
        aliases, weights, mirror, router = self._read(model)
        champion = aliases.version_of(self.stable_alias)
        if champion is None:
            raise UsageError(f"{model} has no {self.stable_alias!r} alias: nothing to shadow")
        if version == champion:
            raise UsageError(f"v{version} is the {self.stable_alias}: a version cannot shadow itself")
        if version not in weights:
            raise UsageError(f"v{version} has no server in the router backend: it cannot receive copies")
        try:
            wanted = Mirror(version, champion, percent)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        current_alias = aliases.version_of(self.settings.alias)
        moves = () if current_alias == version else (AliasMove(self.settings.alias, current_alias, version),)
        plan = Plan(
            action_id=new_action_id(), model=model, leave=champion, target=version, mode=Mode.IMMEDIATE,
            weights_before=weights, steps=(dict(weights),), alias_moves=moves, reason=reason,
            aliases_before=dict(aliases.aliases), kind=ActionKind.SHADOW_START,
            mirror_before=mirror, mirror_after=wanted,
        )
        return self._preview(router, plan, f"in shadow of the {self.stable_alias} v{champion}")

    def stop_preview(self, model: str, reason: str = "") -> Preview:
        """Stop the model's mirror and remove the shadow alias."""
        aliases, weights, mirror, router = self._read(model)
        current_alias = aliases.version_of(self.settings.alias)
        shadow = (mirror.shadow if mirror else None) or current_alias
        if shadow is None:
            raise UsageError(f"{model} has no shadow: no mirror in the router, no {self.settings.alias!r} alias")
        champion = aliases.version_of(self.stable_alias) or (mirror.baseline if mirror else shadow)
        moves = (AliasMove(self.settings.alias, current_alias, None),) if current_alias else ()
        plan = Plan(
            action_id=new_action_id(), model=model, leave=champion, target=shadow, mode=Mode.IMMEDIATE,
            weights_before=weights, steps=(dict(weights),), alias_moves=moves, reason=reason,
            aliases_before=dict(aliases.aliases), kind=ActionKind.SHADOW_STOP,
            mirror_before=mirror, mirror_after=None,
        )
        return self._preview(router, plan, f"v{shadow} stops receiving copies", check_inputs=False)

    def promote_preview(self, model: str, reason: str = "", override: bool = False) -> tuple[Preview, GateReading]:
        """Promote the shadow: champion alias, the champion's traffic, and the mirror reversed.

        Args:
            model: the model.
            reason: why, for the journal (required to override the gate).
            override: promote although the gate has not held for its window; the
                action then needs a second person's approval.

        Returns:
            The preview, and the gate reading it was decided on.

        Raises:
            UsageError: no shadow mirrored from the champion.
            RefusedError: the gate has not held for its window, and no override.
        """
        aliases, weights, mirror, router = self._read(model)
        champion = aliases.version_of(self.stable_alias)
        if mirror is None or champion is None:
            raise UsageError(f"{model} has no shadow to promote: start one with `rewind shadow start`")
        if mirror.baseline != champion:
            raise UsageError(f"the mirror copies v{mirror.baseline}'s answers, but the champion is v{champion}: "
                             "stop the shadow and start it again")
        now = self._now()
        started = self.started_at(model, mirror)
        gate = self.read_gate(model, mirror, started if started is not None else now - self.gate.window_s, now)
        if not gate.holds and not override:
            raise RefusedError(f"refused: the promotion gate has not held: {gate.summary} "
                               "(--override-gate with a reason asks a second person to approve)")
        if override and not reason.strip():
            raise UsageError("overriding the promotion gate needs a reason (--reason)")
        shadow = mirror.shadow
        moves = [AliasMove(self.stable_alias, champion, shadow),
                 AliasMove(self.settings.alias, aliases.version_of(self.settings.alias), champion)]
        candidate = self.rollback.settings.candidate_alias
        if aliases.version_of(candidate) == shadow:
            moves.append(AliasMove(candidate, shadow, None))
        plan = Plan(
            action_id=new_action_id(), model=model, leave=champion, target=shadow, mode=Mode.IMMEDIATE,
            weights_before=weights, steps=plan_steps(weights, champion, shadow, Mode.IMMEDIATE),
            alias_moves=tuple(m for m in moves if m.before != m.after), reason=reason,
            aliases_before=dict(aliases.aliases), kind=ActionKind.PROMOTE,
            mirror_before=mirror, mirror_after=Mirror(champion, shadow, mirror.percent),
        )
        why = (f"the gate held ({gate.summary})" if gate.holds
               else f"OVERRIDE of the gate ({gate.summary}), approval needed")
        return self._preview(router, plan, why), gate

    def last_promotion(self, model: str) -> str | None:
        """The action id of the model's latest applied promotion that is not yet undone, or ``None``."""
        applied = sorted(self._applied(model), key=lambda item: item[0])
        undone = {plan.undoes for _, plan in applied if plan.undoes}
        promoted = [plan.action_id for _, plan in applied
                    if plan.kind is ActionKind.PROMOTE and plan.action_id not in undone]
        return promoted[-1] if promoted else None

    def revert_preview(self, model: str, action_id: str | None = None, reason: str = "") -> tuple[Preview, str]:
        """Revert a promotion (the latest by default): its undo, alias, weights and mirror back.

        Returns:
            The preview and the incident of the promotion.

        Raises:
            UsageError: no promotion to revert, or the action is not a promotion.
        """
        action_id = action_id or self.last_promotion(model)
        if action_id is None:
            raise UsageError(f"{model} has no applied promotion to revert")
        _, plan, _ = self.rollback.find_action(action_id)
        if plan.kind is not ActionKind.PROMOTE:
            raise UsageError(f"{action_id} is a {plan.kind.value}, not a promotion")
        preview, incident_id = self.rollback.undo_preview(action_id, reason or f"revert the promotion {action_id}")
        return replace(preview, why_target=f"revert of the promotion {action_id}"), incident_id
