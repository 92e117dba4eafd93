"""The fallback that keeps serving: is it ready, did the router engage it, engage and restore it, drill it.

The router answers with a backup server (a simpler model) when no primary server
can, and with a fixed default when nothing can. Rewind reads that state from the
router itself, journals an engagement the router made on its own, and offers the
same switch as confirmed actions: ``engage`` takes the serving primaries out
(maintenance), ``restore`` puts them back; both are :class:`~console.domain.rollback.Plan`
objects carried out by the one action procedure. A drill engages for a few
seconds, counts what callers got, restores, and journals the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from console.domain.errors import UsageError
from console.domain.journal import EventKind, parse_ts
from console.domain.rollback import ActionKind, Mode, Plan, SignatureCheck
from console.domain.routing import FallbackState
from console.domain.status import FALLBACK_ALIAS
from console.services.actions import ActionFace, ActionOptions, ActionResult, carry_out
from console.services.journal import Placement
from console.services.rollback import Preview, RollbackService, new_action_id


@dataclass(frozen=True)
class DrillResult:
    """What a fallback drill measured.

    Attributes:
        seconds: how long the primaries were out.
        non_2xx: answers other than 2xx the router gave callers while they were out.
        requests: requests the router answered meanwhile.
        first_fallback_ms: from engaging to the fallback's first answer (``None``: it never answered).
        fallback_served: requests the fallback answered.
        passed: the fallback answered and no caller got an error.
    """

    seconds: float
    non_2xx: int
    requests: int
    first_fallback_ms: float | None
    fallback_served: int
    passed: bool

    def describe(self) -> str:
        """One line for people."""
        first = "never" if self.first_fallback_ms is None else f"after {self.first_fallback_ms:.0f} ms"
        return (f"{'passed' if self.passed else 'FAILED'}: {self.non_2xx} non-2xx of {self.requests} requests in "
                f"{self.seconds:g}s; the fallback answered first {first}, {self.fallback_served} in all")


@dataclass(frozen=True)
class Readiness:
    """Whether a model's fallback is ready before it is needed, and whether it serves now.

    Attributes:
        model: the model.
        backup_up: a backup server is up.
        deep_check: its last health check (a real prediction) passed.
        default_armed: the router answers a fixed default when nothing else can.
        engaged: the fallback serves the model's traffic now.
        last_drill: the latest drill's result and when it ran (``None``: never drilled).
        state: the router's state as read.
    """

    model: str
    backup_up: bool
    deep_check: bool
    default_armed: bool
    engaged: bool
    last_drill: tuple[str, DrillResult] | None
    state: FallbackState

    @property
    def ready(self) -> bool:
        """Every readiness condition holds (a drill is not required, but shown)."""
        return self.backup_up and self.deep_check and self.default_armed


class FallbackService:
    """Reads, journals, engages, restores and drills the fallback of one console's models.

    Args:
        rollback: carries out the plans, holds the router, the registry and the journal.
        clock: the current time (Unix seconds); ``sleep`` waits.
    """

    def __init__(self, rollback: RollbackService, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rollback = rollback
        self.clock = clock
        self.sleep = sleep

    # -- reading ----------------------------------------------------------------------------
    def readiness(self, model: str, state: FallbackState | None = None,
                  weights: dict[str, int] | None = None) -> Readiness:
        """The fallback's readiness as the router reports it, and the journal's last drill.

        ``state`` and ``weights``: the router's servers and weights when the caller read them already
        (a readiness check reads each once for all its conditions); else read here.
        """
        router = self.rollback.router
        state = router.fallback(model) if state is None else state
        weights = router.read_state(model).weights() if weights is None else weights
        backups = state.backups
        return Readiness(
            model=model,
            backup_up=any(s.up for s in backups),
            deep_check=any(s.up and s.check.startswith("L7OK") for s in backups),
            default_armed=state.default_armed,
            engaged=state.engaged(weights),
            last_drill=self.last_drill(model),
            state=state,
        )

    def last_drill(self, model: str) -> tuple[str, DrillResult] | None:
        """The latest drill journaled for ``model``: when, and what it measured."""
        journal = self.rollback.journal
        latest: tuple[str, DrillResult] | None = None
        for incident in journal.incidents():
            if incident.model not in (None, model):
                continue
            for event in journal.journal.events(incident.incident_id, [EventKind.NOTE]):
                drill = event.payload.get("fallback_drill")
                if isinstance(drill, dict) and (latest is None or event.ts > latest[0]):
                    latest = (event.ts, DrillResult(**drill))
        return latest

    def observe(self, model: str, severity: str = "2") -> str | None:
        """Journal an engagement the router made on its own, or its end; once each.

        The engagement goes in the model's open incident (one is opened when none
        is), with the time it was seen and the failed answers the router counted.

        Returns:
            What was journaled, or ``None`` when nothing changed since the last look.
        """
        readiness = self.readiness(model)
        journal = self.rollback.journal
        open_incident = journal.open_incident_of(model)
        last = self._last_engagement_note(model)
        state = readiness.state
        failed_total = sum(s.answered_5xx for s in state.primaries)
        weights = self.rollback.router.read_state(model).weights()
        serving = [s for s in state.primaries if s.version is not None and weights.get(s.version, 0) > 0]
        # Primaries put in maintenance were taken out by someone (an engage, a drill: journaled as actions),
        # not failed: the router did not engage the fallback on its own.
        taken_out = bool(serving) and all(s.status.upper().startswith("MAINT") for s in serving)
        if readiness.engaged and not taken_out and (last is None or last[0] == "released"):
            # Failed answers since the last look the journal has (the release), else since the router started.
            since = int(str(last[1].get("primary_5xx", 0))) if last else 0
            failed = max(0, failed_total - since)
            down = ", ".join(f"{s.server} {s.status}" for s in serving)
            text = (f"fallback engaged by the router: no primary server of {model} that carries traffic is up "
                    f"({down}); {failed} failed answers (5xx) from the primaries "
                    + ("since the fallback was last released" if last else "since the router started"))
            if open_incident is None:
                incident_id = journal.open_incident(model, severity, f"{model}: the fallback serves").incident_id
            else:
                incident_id = open_incident.incident_id
            journal.record(incident_id, EventKind.NOTE, {
                "text": text, "fallback": "engaged", "seen_at": self.clock(), "failed_requests": failed,
                "primary_5xx": failed_total, "fallback_served": state.fallback_served(),
            })
            return text
        if not readiness.engaged and last is not None and last[0] == "engaged" and open_incident is not None:
            served = state.fallback_served() - int(str(last[1].get("fallback_served", 0)))
            text = f"fallback released: a primary server of {model} serves again; the fallback answered {served}"
            journal.record(open_incident.incident_id, EventKind.NOTE, {
                "text": text, "fallback": "released", "seen_at": self.clock(), "primary_5xx": failed_total,
                "fallback_served": state.fallback_served(),
            })
            return text
        return None

    def _last_engagement_note(self, model: str) -> tuple[str, dict[str, object]] | None:
        """The latest ``engaged``/``released`` note of the model's fallback, with its payload."""
        journal = self.rollback.journal
        latest: tuple[str, str, dict[str, object]] | None = None
        for incident in journal.incidents():
            if incident.model not in (None, model):
                continue
            for event in journal.journal.events(incident.incident_id, [EventKind.NOTE]):
                state = event.payload.get("fallback")
                if state in ("engaged", "released") and (latest is None or event.ts >= latest[0]):
                    latest = (event.ts, str(state), dict(event.payload))
        return (latest[1], latest[2]) if latest else None

    # -- planning ---------------------------------------------------------------------------
    def _plan(self, model: str, kind: ActionKind, reason: str) -> Preview:
        service = self.rollback
        router = service.router.read_state(model)
        weights = router.weights()
        aliases = service.registry.get_aliases(model)
        champion = aliases.version_of(service.settings.stable_alias) or next(
            (v for v, w in weights.items() if w > 0), None)
        fallback = aliases.version_of(FALLBACK_ALIAS)
        if not any(s.backup for s in service.router.fallback(model).servers):
            raise UsageError(f"{model}'s router backend has no backup server: no fallback to engage")
        primaries = {s.server: s for s in router.servers if s.version is not None}
        if kind is ActionKind.FALLBACK_ENGAGE:
            serving = {n for n, s in primaries.items() if weights.get(s.version or "", 0) > 0}
            if not serving:
                raise UsageError(f"no primary server of {model} carries traffic: nothing to take out")
            after = {n: "maint" for n in serving}
        else:
            after = {n: "ready" for n, s in primaries.items() if s.admin_state == "maint"}
        before = {n: primaries[n].admin_state for n in after}
        plan = Plan(
            action_id=new_action_id(), model=model, leave=champion or "?", target=fallback or champion or "?",
            mode=Mode.IMMEDIATE, weights_before=weights, steps=(dict(weights),), alias_moves=(), reason=reason,
            aliases_before=dict(aliases.aliases), kind=kind, servers_before=before, servers_after=after,
        )
        why = ("the fallback answers while the primaries are out" if kind is ActionKind.FALLBACK_ENGAGE
               else "the primaries answer again")
        already = "the router already shows the planned state" if plan.is_noop else None
        return Preview(plan, why, None, None, SignatureCheck(True, "not checked: no version's inputs change"),
                       router, already)

    def engage_preview(self, model: str, reason: str = "") -> Preview:
        """Take the serving primaries out, so the fallback answers."""
        return self._plan(model, ActionKind.FALLBACK_ENGAGE, reason)

    def restore_preview(self, model: str, reason: str = "") -> Preview:
        """Put the primaries Rewind (or anyone) took out back in service."""
        return self._plan(model, ActionKind.FALLBACK_RESTORE, reason)

    # -- drilling ---------------------------------------------------------------------------
    def drill(self, model: str, seconds: float, placement: Placement, face: ActionFace,
              options: ActionOptions = ActionOptions()) -> tuple[DrillResult | None, list[ActionResult]]:
        """Engage for ``seconds``, count what callers got, restore, and journal the result.

        Returns:
            The drill's result (``None`` when the engagement was cancelled or failed),
            and the two actions' results.
        """
        service = self.rollback
        router = service.router
        engage = carry_out(service, self.engage_preview(model, f"fallback drill ({seconds:g}s)"), placement, face,
                           ActionOptions(options.confirmed_by, options.read_only, verify=False))
        if not engage.succeeded:
            return None, [engage]
        # Counted from the router's read-back (the end of the engagement's apply), so the evidence and the
        # confirmation before it, when the primaries still served, do not count; the first fallback answer
        # seen by the 50 ms poll below is at most that much later than the real one.
        engaged_at = self.clock()
        before = router.fallback(model)
        placement = engage.placement
        first_ms: float | None = None
        deadline = engaged_at + seconds
        while self.clock() < deadline:
            now_state = router.fallback(model)
            if first_ms is None and now_state.fallback_served() > before.fallback_served():
                first_ms = (self.clock() - engaged_at) * 1000
            self.sleep(0.05)
        during = router.fallback(model)
        # Back exactly what the drill took out: the engagement's undo.
        back, _ = service.undo_preview(engage.outcomes[0].action_id, "end of the fallback drill")
        restore = carry_out(service, back, placement, face,
                            ActionOptions("the drill's own restore", options.read_only, verify=False))
        non_2xx = during.failed_answers - before.failed_answers
        requests = _answered(during) - _answered(before)
        served = during.fallback_served() - before.fallback_served()
        result = DrillResult(round(self.clock() - engaged_at, 1), non_2xx, requests, first_ms, served,
                             passed=first_ms is not None and non_2xx == 0)
        service.journal.record(placement.settled_id, EventKind.NOTE, {
            "text": f"fallback drill of {model} {result.describe()}", "fallback_drill": result.__dict__,
        })
        return result, [engage, restore]

    def drill_age(self, model: str) -> float | None:
        """Seconds since the latest drill, or ``None``."""
        last = self.last_drill(model)
        return None if last is None else self.clock() - parse_ts(last[0]).timestamp()


def _answered(state: FallbackState) -> int:
    return sum(s.served for s in state.servers) + state.default_answers
