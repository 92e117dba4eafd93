"""The playbook runner: one engine for the console's walkthrough, the headless run and the dry run.

A run is a state machine whose state lives in the journal (see
:mod:`console.domain.playbook_run`). :meth:`PlaybookRunner.drive` carries it
out step by step; the face (the console, or the command line with an answers
file) only answers questions and shows progress, so the walkthrough and a
headless drill never behave differently.

What makes a run safe to interrupt:

- every step's start and end is journaled; a run resumes at the step it was
  in, on any machine that shares the journal;
- an action step journals its action id before the action starts; on resume
  the action's own events say what happened, and an action left without an
  outcome is reconciled by the rollback service (both systems read, what
  happened journaled), never applied again;
- a notification journals its dedupe key before it is posted and again once it
  was; a resumed run never posts a key twice (a post interrupted between the
  two is reported as "delivery unknown", not repeated);
- the run keeps the playbook it started with (its text is in the journal); a
  file whose steps changed since is refused on resume, with the changes.

A dry run journals nothing and changes nothing: its events are kept in memory,
checks read live data, actions are previewed and described, notifications
rendered and shown.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

from console.adapters.protocols import Endpoints, Notifier, PlaybookSource
from console.domain.errors import LockHeldError, RewindError, UsageError
from console.domain.journal import Actor, Event, EventKind, LockChange, canonical_json, check_payload, format_ts
from console.domain.playbook import PROCEDURE_ACTIONS, ActionKind, LoadedPlaybook, Playbook, Step, StepKind
from console.domain.playbook_check import Problem, prose_changes, structure_changes
from console.domain.playbook_run import (
    CheckOutcome,
    EntryMatch,
    RunState,
    StepResult,
    fold_run,
    judge_check,
    judge_diagnosis,
    judge_fallback_gate,
    judge_gate,
    match_entry,
    needs_diagnosis,
    reference_values,
    render,
    resolve_inputs,
    runs_in,
    started_payload,
)
from console.domain.rollback import ActionKind as PlanKind
from console.domain.rollback import Mode, Plan, describe_feature_moves
from console.domain.routing import RouterState, describe_mirror
from console.domain.status import StatusSnapshot
from console.domain.verdicts import State
from console.domain.versions import AliasMap, ModelVersion
from console.services.actions import ActionFace, ActionOptions, carry_out
from console.services.journal import Placement
from console.services.live import compose
from console.services.rollback import TERMINAL, Preview, RefusedError, RollbackService

if TYPE_CHECKING:
    from console.domain.features import Diagnosis
    from console.services.fallback import FallbackService
    from console.services.features import FeatureEvidence, FeatureReading, FeatureRollbacks
    from console.services.shadow import ShadowService

RUN_LOCK_PREFIX = "playbook-run:"
"""A run's lock is kept beside the models' action locks, under this prefix and the run's id."""


class AnswerMissing(RewindError):
    """A headless run needs an answer the answers file does not give: the run stops, resumable (exit 1)."""


class HumanTimeout(Exception):
    """Nobody answered a human step within its timeout."""


@dataclass(frozen=True)
class ChoiceAnswer:
    """A responder's answer to a choice."""

    option: str
    reason: str


class RunFace(Protocol):
    """What a face does during a run: answer human steps and show progress.

    The action methods (:class:`~console.services.actions.ActionFace`) are reached
    through :meth:`action_face`; a confirmation there may raise :class:`HumanTimeout`.
    """

    def entering(self, step: Step, visit: int, text: str) -> None:
        """A step starts; ``text`` is its Markdown with references filled in."""

    def said(self, text: str, tone: str = "info") -> None:
        """A line of progress (``tone``: info, good, warn, bad)."""

    def checked(self, step: Step, outcome: CheckOutcome) -> None:
        """A check was judged."""

    def choose(self, step: Step, prompt: str, timeout_s: float) -> ChoiceAnswer:
        """Ask a choice; raise :class:`AnswerMissing` (headless) or :class:`HumanTimeout`."""
        ...

    def action_face(self, step: Step, preview: Preview | None, timeout_s: float) -> ActionFace:
        """The face that confirms and follows one action (its ``confirm`` may raise :class:`HumanTimeout`)."""
        ...

    def confirm_change(self, step: Step, description: str, timeout_s: float) -> str | None:
        """Confirm a tag or http action: how it was confirmed, ``None`` to cancel."""
        ...

    def notification(self, step: Step, channel: str, text: str, delivery: str) -> None:
        """A notification was rendered, and sent, shown or not sent again (``delivery`` says which)."""


# -- where a run's events go -----------------------------------------------------------------------

class RunLog(Protocol):
    """Where a run's events are recorded and read back."""

    incident_id: str

    def record(self, kind: EventKind, payload: Mapping[str, object], lock: LockChange | None = None) -> None:
        """Record one event (taking or giving back the run's lock with it, when ``lock`` says so)."""

    def events(self) -> list[Event]:
        """Every event of the incident, in order."""
        ...


class JournalLog:
    """A run's events in the journal (a real run)."""

    def __init__(self, service: RollbackService, incident_id: str) -> None:
        self.service = service
        self.incident_id = incident_id

    def record(self, kind: EventKind, payload: Mapping[str, object], lock: LockChange | None = None) -> None:
        self.service.journal.record(self.incident_id, kind, payload, lock=lock)

    def events(self) -> list[Event]:
        return self.service.journal.chain(self.incident_id)[1]


class MemoryLog:
    """A dry run's events, kept in memory: nothing is journaled."""

    def __init__(self, actor: Actor, clock: Callable[[], float]) -> None:
        self.incident_id = "DRY-RUN"
        self.actor = actor
        self.clock = clock
        self._events: list[Event] = []

    def record(self, kind: EventKind, payload: Mapping[str, object], lock: LockChange | None = None) -> None:
        self._events.append(Event(self.incident_id, len(self._events) + 1, format_ts(self.clock()), self.actor,
                                  kind, canonical_json(dict(payload)), "", ""))

    def events(self) -> list[Event]:
        return list(self._events)


@dataclass
class Run:
    """A run being carried out: its playbook, its log, its options."""

    playbook: Playbook
    log: RunLog
    state: RunState
    dry_run: bool = False
    yes: bool = False
    read_only: bool = False
    """A read-only face: actions are refused (and journaled), notifications shown, not posted."""
    notes: list[str] = field(default_factory=list)
    """What the start or resume had to say (reconciled actions, prose changes), for the face."""


@dataclass(frozen=True)
class RunEnd:
    """How a drive of a run ended."""

    state: RunState
    stopped: str | None = None
    """Why the run stopped before its end (a missing answer), resumable; ``None`` when it ended."""

    @property
    def as_planned(self) -> bool:
        """Whether the run reached one of its ``end`` steps (not aborted, not stopped)."""
        return self.stopped is None and self.state.finished is not None and self.state.finished != "aborted"


# -- the runner ------------------------------------------------------------------------------------

class PlaybookRunner:
    """Starts, resumes and carries out playbook runs.

    Args:
        rollback: the rollback use case (its registry, router, metrics, journal and lock too).
        source: the playbook files.
        notifier: posts notifications to webhooks (``None``: only ``copy`` channels work).
        endpoints: calls configured HTTP endpoints (``None``: none configured).
        is_live: whether a lock holder's process still runs (for reconciling an interrupted action).
        clock: the wall clock.
        sleep: how a wait step waits.
        shadow: shadow + promote over the same rollback use case (``None``: shadow and promote
            actions and gate checks cannot run; they take their ``failed``/``no_data`` branch).
        fallback: the fallback's actions (default: built over ``rollback``, ``clock`` and ``sleep``).
        features: plans feature rollbacks (``None``: features actions cannot run; they take their
            ``failed`` branch).
        evidence: the servers' feature reports and the diagnosis (default: ``features``' own; ``None``
            without either: a ``gate: diagnosis`` check goes down ``unsure`` and a ``diagnosis`` entry
            condition does not hold).
    """

    def __init__(self, rollback: RollbackService, source: PlaybookSource | None = None,
                 notifier: Notifier | None = None, endpoints: Endpoints | None = None,
                 is_live: Callable[[str], bool] = lambda holder: True, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, shadow: ShadowService | None = None,
                 fallback: FallbackService | None = None, features: FeatureRollbacks | None = None,
                 evidence: FeatureEvidence | None = None) -> None:
        self.rollback = rollback
        self.source = source
        self.notifier = notifier
        self.endpoints = endpoints
        self.is_live = is_live
        self.clock = clock
        self.sleep = sleep
        self.shadow = shadow
        self._fallback = fallback
        self.features = features
        self.evidence = evidence if evidence is not None or features is None else features.catalog.evidence

    @property
    def fallback(self) -> FallbackService:
        """The fallback's actions, over the runner's rollback use case."""
        if self._fallback is None:
            from console.services.fallback import FallbackService

            self._fallback = FallbackService(self.rollback, self.clock, self.sleep)
        return self._fallback

    def _shadow(self) -> ShadowService:
        if self.shadow is None:
            raise UsageError("shadow + promote is not available to this playbook runner (no shadow service)")
        return self.shadow

    def _features(self) -> FeatureRollbacks:
        if self.features is None:
            raise UsageError("feature rollbacks are not available to this playbook runner (no feature store: "
                             "features.repo)")
        return self.features

    # -- reading the systems -------------------------------------------------------------------
    def diagnosis(self, model: str, snapshot: StatusSnapshot | None = None) -> FeatureReading | str:
        """The diagnosis of the model's snapshot now (``snapshot``: one already read), or why there is none.

        The same diagnosis as ``rewind status`` gives: the feature evidence read over the same snapshot.
        """
        if self.evidence is None:
            return "no feature evidence is available to this playbook runner"
        try:
            return self.evidence.reading(snapshot if snapshot is not None else self.snapshot(model))
        except RewindError as exc:
            return f"the systems could not be read: {exc}"

    def snapshot(self, model: str) -> StatusSnapshot:
        """The model's status now, judged as the overview judges it."""
        service = self.rollback
        versions = service.registry.list_versions(model)
        router = service.router.read_state(model)
        results = service.metrics.evaluate(service.catalogue, model, self.clock())
        return compose(model, versions, router, results, self.clock(), service.catalogue, service.traffic_metric,
                       service.settings.stable_alias)

    def rank(self, playbooks: list[Playbook], model: str) -> list[tuple[Playbook, EntryMatch]]:
        """The playbooks written for ``model``, best match of their entry conditions on the current verdicts first."""
        snapshot = self.snapshot(model)
        aliases = dict(snapshot.aliases.aliases)
        previous = self._previous(model, list(snapshot.versions), aliases)
        diagnosis: Diagnosis | None = None
        problem: str | None = None
        if any(needs_diagnosis(p) for p in playbooks if p.applies_to(model)):
            reading = self.diagnosis(model, snapshot)
            if isinstance(reading, str):
                problem = reading
            else:
                diagnosis, problem = reading.diagnosis, reading.problem if reading.diagnosis is None else None
        ranked = [(p, match_entry(p, snapshot.matrix, resolve_inputs(p, aliases, previous), diagnosis, problem))
                  for p in playbooks if p.applies_to(model)]
        return sorted(ranked, key=lambda item: (-item[1].score, -item[1].met, item[0].id))

    # -- starting and resuming -----------------------------------------------------------------
    def unfinished(self, model: str, playbook_id: str | None = None) -> list[RunState]:
        """Runs of the model's open incident that have not ended (the newest last)."""
        journal = self.rollback.journal
        incident = journal.open_incident_of(model)
        if incident is None:
            return []
        events = journal.chain(incident.incident_id)[1]
        found = []
        for run_id in runs_in(events):
            state = fold_run(run_id, events)
            if state is not None and state.finished is None and state.model == model \
                    and (playbook_id is None or state.playbook_id == playbook_id):
                found.append(state)
        return found

    def start(self, playbook: Playbook, content: str, model: str, dry_run: bool = False,
              yes: bool = False, read_only: bool = False, incident: str | None = None) -> Run:
        """Begin a run: resolve the inputs, place it in ``incident``, else the model's open incident (or a new
        one), and journal it.

        Raises:
            UsageError: the playbook is not written for the model, or an input names no version.
            RefusedError: the responder lacks a permission the playbook needs.
        """
        if not playbook.applies_to(model):
            raise UsageError(f"playbook {playbook.id} is written for {', '.join(playbook.models)}, not {model}")
        versions = self.rollback.registry.list_versions(model)
        aliases = dict(AliasMap.of_versions(model, versions).aliases)
        inputs = resolve_inputs(playbook, aliases, self._previous(model, versions, aliases))
        missing = [name for name, version in inputs.items() if version is None]
        if missing:
            spec = next(s for s in playbook.inputs if s.name == missing[0])
            source = (f"alias {spec.alias!r}, which {model} does not have now" if spec.alias
                      else f"the version before {spec.previous!r}, which neither the journal nor the registry's "
                           f"tags record for {model}")
            raise UsageError(f"playbook {playbook.id}: input {missing[0]!r} names {source}")
        resolved = {name: str(version) for name, version in inputs.items()}
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        log: RunLog
        if dry_run:
            log = MemoryLog(self.rollback.journal.actor, self.clock)
        else:
            self._authorise(playbook)
            placement = self.rollback.journal.settle(self.rollback.journal.place(
                model, str(playbook.severity), f"{playbook.title} ({model})", named=incident))
            log = JournalLog(self.rollback, placement.settled_id)
        # The run's lock comes with its first event: one console carries a run out at a time.
        log.record(EventKind.PLAYBOOK_STARTED, started_payload(run_id, playbook, content, model, resolved, dry_run),
                   lock=None if dry_run else self._run_lock(run_id, take=True))
        state = fold_run(run_id, log.events())
        assert state is not None
        return Run(playbook, log, state, dry_run=dry_run, yes=yes, read_only=read_only)

    def _run_lock(self, run_id: str, take: bool) -> LockChange:
        """The lock that lets one console at a time carry a run out (beside the models' action locks)."""
        return LockChange(take, RUN_LOCK_PREFIX + run_id, run_id, self.rollback.holder)

    def _previous(self, model: str, versions: list[ModelVersion] | None,
                  aliases: Mapping[str, str]) -> dict[str, str | None]:
        """The stable alias's previous version (the only alias whose history Rewind records)."""
        stable = self.rollback.settings.stable_alias
        return {stable: self.rollback.previous_champion(model, list(versions or []), aliases.get(stable))}

    def _authorise(self, playbook: Playbook) -> None:
        from console.domain.authority import Permission

        for role in playbook.roles:
            reason = self.rollback.policy.refusal(self.rollback.identity, Permission(role))
            if reason:
                raise RefusedError(f"refused: playbook {playbook.id} needs {role!r}: {reason}")

    def resume(self, state: RunState, yes: bool = False, read_only: bool = False) -> Run:
        """Take up an unfinished run where its journal says it stopped, with the playbook it started with.

        The playbook's text was journaled when the run started. When the file now
        differs, changes to its prose are shown and taken; changes to its steps
        refuse the resume.

        Raises:
            UsageError: the file's steps changed since the run started (the message lists the changes),
                or the journaled copy no longer validates.
            RefusedError: another living console is carrying the run out.
        """
        key = RUN_LOCK_PREFIX + state.run_id
        holder = self.rollback.lock.holder(key)
        if holder is not None:
            if self.is_live(holder[1]):
                raise RefusedError(f"refused: run {state.run_id} is being carried out by {holder[1]}; it can "
                                   "be resumed once that console stops")
            self.rollback.lock.release(key, holder[0])  # its console died: the run is free to take up
        source = self._source()
        original = source.parse(state.content, f"{state.playbook_id} (as journaled with {state.run_id})")
        try:
            current: Playbook | None = source.find(state.playbook_id).playbook
        except UsageError:
            current = None  # the file is gone or broken: the journaled copy runs
        notes = []
        chosen = original
        if current is not None and current.content_hash != state.content_hash:
            structural = structure_changes(original, current)
            if structural:
                listed = "; ".join(structural[:8]) + (f" (and {len(structural) - 8} more)" if len(structural) > 8
                                                      else "")
                raise UsageError(f"run {state.run_id} started with {state.playbook_id} v{state.playbook_version} "
                                 f"(content {state.content_hash[:12]}); {current.source} has changed its steps "
                                 f"since: {listed}. Put the file back as it was to finish the run, or close "
                                 "the incident and start a new one")
            prose = prose_changes(original, current)
            if prose:
                notes.append("the playbook's wording changed since the run started (accepted): " + "; ".join(prose))
                chosen = current
        log = JournalLog(self.rollback, state.incident_id)
        try:
            log.record(EventKind.NOTE, {"text": f"resuming playbook run {state.run_id} ({state.playbook_id}) at "
                                                f"step {state.current}", "run_id": state.run_id},
                       lock=self._run_lock(state.run_id, take=True))
        except LockHeldError:
            raise RefusedError(f"refused: run {state.run_id} was just taken up by another console") from None
        if state.current is not None:
            # The step is taken up again now: a human step's timeout counts from here, not from before the
            # interruption (a run stopped for a missing answer was not waiting for anyone meanwhile).
            log.record(EventKind.STEP_STARTED, {"run_id": state.run_id, "step_id": state.current,
                                                "visit": state.current_visit, "resumed": True})
        resumed = fold_run(state.run_id, log.events())
        assert resumed is not None
        return Run(chosen, log, resumed, yes=yes, read_only=read_only, notes=notes)

    def _source(self) -> PlaybookSource:
        if self.source is None:
            raise UsageError("no playbooks are configured (playbooks.dirs)")
        return self.source

    def library(self) -> tuple[list[LoadedPlaybook], list[Problem]]:
        """Every valid playbook with its text, and every problem of the invalid files."""
        return self._source().load()

    # -- carrying out ----------------------------------------------------------------------------
    def drive(self, run: Run, face: RunFace) -> RunEnd:
        """Carry out the run's steps until it ends, or stops for an answer it cannot get.

        An error (a journal or a face that fails) gives the run's lock back before it is raised, so
        the same console can resume the run; a process that dies leaves the lock to be taken over.
        """
        try:
            return self._drive(run, face)
        except Exception:
            if not run.dry_run:
                try:
                    self.rollback.lock.release(RUN_LOCK_PREFIX + run.state.run_id, run.state.run_id)
                except RewindError:
                    pass  # the journal itself failed: the lock goes when this process does
            raise

    def _drive(self, run: Run, face: RunFace) -> RunEnd:
        for note in run.notes:
            face.said(note, "warn")
        guard = 0
        while run.state.finished is None:
            guard += 1
            if guard > 1000:  # a validated playbook cannot loop without a human or a wait; belt and braces
                self._finish(run, "aborted", "the run took over 1000 steps")
                break
            step_id = run.state.current
            if step_id is None:
                self._finish(run, "aborted", "no step to go to")
                break
            step = run.playbook.step(step_id)
            try:
                result = self._step(run, step, face)
            except AnswerMissing as missing:
                run.log.record(EventKind.NOTE, {"text": f"playbook run {run.state.run_id} stopped at step "
                                                        f"{step.id}: {missing}", "run_id": run.state.run_id},
                               lock=None if run.dry_run else self._run_lock(run.state.run_id, take=False))
                self._refresh(run)
                return RunEnd(run.state, stopped=str(missing))
            run.log.record(EventKind.STEP_FINISHED, result.payload(run.state.run_id))
            self._refresh(run)
            if result.ended is not None:
                self._finish(run, result.ended, result.summary or result.reason)
        return RunEnd(run.state)

    def _refresh(self, run: Run) -> None:
        state = fold_run(run.state.run_id, run.log.events())
        assert state is not None
        run.state = state

    def _finish(self, run: Run, outcome: str, why: str) -> None:
        run.log.record(EventKind.PLAYBOOK_FINISHED, {"run_id": run.state.run_id, "playbook_id": run.playbook.id,
                                                     "outcome": outcome, "reason": why},
                       lock=None if run.dry_run else self._run_lock(run.state.run_id, take=False))
        self._refresh(run)

    def _values(self, run: Run) -> dict[str, str]:
        state = run.state
        return reference_values(state.model, state.incident_id, state.inputs, state.results,
                                (step.id for step in run.playbook.steps))

    def _step(self, run: Run, step: Step, face: RunFace) -> StepResult:
        state = run.state
        visit = state.current_visit
        resumed = state.current_started is not None and state.current == step.id
        if not resumed:
            run.log.record(EventKind.STEP_STARTED, {"run_id": state.run_id, "step_id": step.id, "visit": visit,
                                                    "kind": step.kind.value})
            self._refresh(run)
        step = _rendered(step, self._values(run))
        face.entering(step, visit, step.text)
        handler = {
            StepKind.GUIDANCE: self._guidance, StepKind.CHECK: self._check, StepKind.CHOICE: self._choice,
            StepKind.ACTION: self._action, StepKind.WAIT: self._wait, StepKind.NOTIFY: self._notify,
            StepKind.END: self._end,
        }[step.kind]
        return handler(run, step, face, visit)

    def _guidance(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        return StepResult(step.id, visit, "done", next=step.next)

    def _end(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        outcome = step.outcome or "resolved"
        face.said(f"playbook ended: {outcome}", "good" if outcome != "aborted" else "bad")
        return StepResult(step.id, visit, outcome, summary=f"ended: {outcome}", ended=outcome)

    def _human_timeout(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        timeout = step.timeout
        minutes = timeout.minutes if timeout else 0
        on_timeout = timeout.on_timeout if timeout else "abort"
        reason = f"no answer in {minutes:g} minutes"
        run.log.record(EventKind.DECISION, {"option": f"timeout: {on_timeout}", "reason": reason,
                                            "run_id": run.state.run_id, "step_id": step.id})
        face.said(f"{step.id}: {reason}; {on_timeout}", "warn")
        if on_timeout == "abort":
            return StepResult(step.id, visit, "timeout", reason=reason, summary=reason, ended="aborted")
        if on_timeout == "escalate":
            return StepResult(step.id, visit, "timeout", reason=reason, summary=reason, ended="escalated")
        option = next(o for o in step.options if o.id == on_timeout)
        return StepResult(step.id, visit, option.id, reason=reason, next=option.next)

    def _remaining_s(self, run: Run, step: Step) -> float:
        """Seconds left for a human step, counted from when it started (a resume does not restart the clock)."""
        minutes = step.timeout.minutes if step.timeout else 0.0
        started = run.state.current_started or self.clock()
        return max(0.0, started + minutes * 60 - self.clock())

    def _choice(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        remaining = self._remaining_s(run, step)
        try:
            if remaining <= 0:
                raise HumanTimeout(step.id)
            answer = face.choose(step, step.prompt, remaining)
        except HumanTimeout:
            return self._human_timeout(run, step, face, visit)
        option = next((o for o in step.options if o.id == answer.option), None)
        if option is None:
            known = ", ".join(o.id for o in step.options)
            raise AnswerMissing(f"step {step.id}: {answer.option!r} is not one of its options ({known})")
        if not answer.reason.strip():
            raise AnswerMissing(f"step {step.id}: a choice needs a reason")
        run.log.record(EventKind.DECISION, {"option": option.id, "reason": answer.reason, "question": step.prompt,
                                            "run_id": run.state.run_id, "step_id": step.id})
        face.said(f"{step.id}: {option.label or option.id} — {answer.reason}")
        return StepResult(step.id, visit, option.id, reason=answer.reason, next=option.next)

    def _check(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        if step.gate is not None:
            return self._gate_check(run, step, face, visit)
        try:
            snapshot = self.snapshot(run.state.model)
        except RewindError as exc:
            outcome = CheckOutcome("no_data", State.NO_DATA, f"the systems could not be read: {exc}", ())
        else:
            version = run.state.inputs.get(step.version)
            outcome = judge_check(snapshot.matrix, step, version)
            spec = next((m for m in snapshot.matrix.metrics if m.name == step.metric), None)
            result = snapshot.matrix.results.get(step.metric or "")
            if spec is not None and result is not None:
                payload = check_payload(spec, result, list(outcome.cells), outcome.state.value,
                                        snapshot.stable_version, self.clock())
                run.log.record(EventKind.CHECK_EVALUATED, {**payload, "run_id": run.state.run_id,
                                                           "step_id": step.id, "branch": outcome.branch})
        face.checked(step, outcome)
        return StepResult(step.id, visit, outcome.branch, reason=outcome.reason,
                          summary=f"{step.metric}: {outcome.branch}", next=step.branches[outcome.branch])

    def _gate_check(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        """A ``gate: shadow`` check: the promotion gate over its window, as ``rewind shadow status`` reads it.

        A ``gate: fallback`` check: whether the serving primaries are up, as the router reports them.
        """
        if step.gate == "fallback":
            return self._fallback_check(run, step, face, visit)
        if step.gate == "diagnosis":
            return self._diagnosis_check(run, step, face, visit)
        try:
            status = self._shadow().status(run.state.model)
        except RewindError as exc:
            outcome = CheckOutcome("no_data", State.NO_DATA, f"the shadow could not be read: {exc}", ())
            gate = None
        else:
            gate = status.gate
            outcome = judge_gate(gate, status.problem)
        run.log.record(EventKind.NOTE, {
            "text": f"{step.id}: {step.gate} gate: {outcome.branch}: {outcome.reason}", "run_id": run.state.run_id,
            "step_id": step.id, "branch": outcome.branch,
            "gate": None if gate is None else {
                "verdict": gate.verdict.value, "holds": gate.holds, "shadow": gate.shadow_version,
                "champion": gate.champion_version,
                "held_for_s": gate.clock.held_for if gate.clock else None,
                "segments": {item.segment: item.verdict.value for item in gate.segments}},
        })
        face.checked(step, outcome)
        return StepResult(step.id, visit, outcome.branch, reason=outcome.reason,
                          summary=f"{step.gate} gate: {outcome.branch}", next=step.branches[outcome.branch])

    def _fallback_check(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        try:
            readiness = self.fallback.readiness(run.state.model)
            weights = self.rollback.router.read_state(run.state.model).weights()
        except RewindError as exc:
            outcome = CheckOutcome("no_data", State.NO_DATA, f"the router could not be read: {exc}", ())
        else:
            serving = [(s.server, s.up) for s in readiness.state.primaries
                       if s.version is not None and weights.get(s.version, 0) > 0]
            outcome = judge_fallback_gate(serving, readiness.backup_up)
        run.log.record(EventKind.NOTE, {
            "text": f"{step.id}: fallback gate: {outcome.branch}: {outcome.reason}", "run_id": run.state.run_id,
            "step_id": step.id, "branch": outcome.branch,
        })
        face.checked(step, outcome)
        return StepResult(step.id, visit, outcome.branch, reason=outcome.reason,
                          summary=f"fallback gate: {outcome.branch}", next=step.branches[outcome.branch])

    def _diagnosis_check(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        """A ``gate: diagnosis`` check: the branch is the cause the breach is blamed on; the evidence is journaled."""
        reading = self.diagnosis(run.state.model)
        if isinstance(reading, str):
            outcome = judge_diagnosis(None, reading)
        else:
            outcome = judge_diagnosis(reading.diagnosis, reading.problem)
        self._record_diagnosis(run, step, reading, outcome.branch)
        face.checked(step, outcome)
        diagnosis = None if isinstance(reading, str) else reading.diagnosis
        evidence = list(diagnosis.evidence) if diagnosis is not None else []
        missing = list(diagnosis.missing) if diagnosis is not None else []
        for line in evidence:
            face.said(f"evidence: {line}")
        for line in missing:
            face.said(f"missing to be sure: {line}", "warn")
        # The summary carries the evidence, so a notification can hand it on ({{ steps.ID.summary }}).
        shown = "; ".join(evidence + [f"missing: {line}" for line in missing]) or outcome.reason
        return StepResult(step.id, visit, outcome.branch, reason=outcome.reason,
                          summary=f"diagnosis {outcome.branch}: {shown}", next=step.branches[outcome.branch])

    def _record_diagnosis(self, run: Run, step: Step, reading: FeatureReading | str, branch: str | None = None
                          ) -> None:
        """Journal the diagnosis as evidence (a note with ``diagnosis``: cause, summary, evidence lines, advice)."""
        diagnosis: Diagnosis | None = None
        problem: str | None = reading if isinstance(reading, str) else reading.problem
        if not isinstance(reading, str):
            diagnosis = reading.diagnosis
        said = diagnosis.summary if diagnosis is not None else f"none ({problem or 'no version breaches now'})"
        payload: dict[str, object] = {
            "text": f"{step.id}: diagnosis: {said}", "run_id": run.state.run_id, "step_id": step.id,
            "diagnosis": diagnosis.to_dict() if diagnosis is not None else None, "diagnosis_problem": problem,
        }
        if branch is not None:
            payload["branch"] = branch
        run.log.record(EventKind.NOTE, payload)

    def _wait(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        minutes = step.timeout.minutes if step.timeout else 5.0
        deadline = (run.state.current_started or self.clock()) + minutes * 60
        calm = 0
        evaluations = 0
        while True:
            evaluations += 1
            worst: CheckOutcome | None = None
            try:
                snapshot = self.snapshot(run.state.model)
            except RewindError as exc:
                face.said(f"{step.id}: the systems could not be read ({exc}); counted as not calm", "warn")
                calm = 0
            else:
                version = run.state.inputs.get(step.version)
                outcomes = [judge_check(snapshot.matrix, _as_check(step, metric), version)
                            for metric in (step.metrics or ((step.metric,) if step.metric else ()))]
                worst = next((o for o in outcomes if o.branch == "fail"), None)
                if worst is not None:
                    face.said(f"{step.id}: worse after {evaluations} evaluation(s): {worst.reason}", "bad")
                    return StepResult(step.id, visit, "worse", reason=worst.reason, next=step.branches["worse"])
                # Calm: nothing breaches and something was judged (a metric without data does not hold it up).
                calm = calm + 1 if any(o.branch == "pass" for o in outcomes) else 0
                face.said(f"{step.id}: evaluation {evaluations}: "
                          + (f"calm {calm}/{step.stable_for}" if calm else "not judged calm yet"))
                if calm >= step.stable_for:
                    reason = f"no breach in {calm} consecutive evaluations"
                    return StepResult(step.id, visit, "stable", reason=reason, next=step.branches["stable"])
            if self.clock() >= deadline:
                reason = f"neither stable nor worse within {minutes:g} minutes"
                face.said(f"{step.id}: {reason}", "warn")
                return StepResult(step.id, visit, "timeout", reason=reason, next=step.branches["timeout"])
            self.sleep(min(step.every_s, max(0.0, deadline - self.clock())))

    def _notify(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        message = step.message
        values = self._values(run)
        parts = []
        if message is not None:
            parts.append(render(message.summary, values))
            for label, text in (("What changed", message.what_changed), ("Why", message.why),
                                ("What users see", message.user_impact), ("Next update", message.next_update)):
                if text.strip():
                    parts.append(f"*{label}:* {render(text, values)}")
        text = "\n".join(p for p in parts if p.strip())
        key = f"{run.state.run_id}/{step.id}/{visit}"
        seen = run.state.notifications.get(key)
        summary: str
        if step.channel == "copy" or run.dry_run or run.read_only:
            delivery = ("shown for copy and paste" if step.channel == "copy"
                        else f"not posted (dry run) to {step.channel}" if run.dry_run
                        else f"not posted to {step.channel}: a read-only console posts nothing; copy it")
            if seen is None:
                run.log.record(EventKind.NOTIFICATION_RENDERED, {"channel": step.channel, "text": text,
                                                                 "dedupe_key": key, "run_id": run.state.run_id,
                                                                 "step_id": step.id})
            summary = delivery
        elif seen == "sent":
            summary = delivery = f"already posted to {step.channel} before the interruption (key {key}): not again"
        elif seen == "rendered":
            summary = delivery = (f"delivery to {step.channel} unknown: the run stopped while posting (key {key}); "
                                  "not posted again, to never post twice: check the channel")
            run.log.record(EventKind.NOTE, {"text": summary, "run_id": run.state.run_id, "dedupe_key": key})
        else:
            run.log.record(EventKind.NOTIFICATION_RENDERED, {"channel": step.channel, "text": text, "dedupe_key": key,
                                                             "run_id": run.state.run_id, "step_id": step.id})
            if self.notifier is None:
                summary = delivery = f"not posted: no webhook {step.channel!r} is configured"
            else:
                try:
                    sent = self.notifier.post(step.channel, text, key)
                except RewindError as exc:
                    summary = delivery = f"not posted to {step.channel}: {exc}"
                else:
                    self.rollback.checkpoint("after-notification-post")
                    run.log.record(EventKind.NOTIFICATION_SENT, {"channel": step.channel, "dedupe_key": key,
                                                                 "status": sent.status, "run_id": run.state.run_id,
                                                                 "step_id": step.id})
                    summary = delivery = f"posted: {sent.summary}"
        face.notification(step, step.channel, text, delivery)
        return StepResult(step.id, visit, "done", summary=summary, next=step.next)

    # -- actions -----------------------------------------------------------------------------------
    def _action(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        if step.action is ActionKind.FALLBACK and step.operation == "drill":
            return self._drill(run, step, face, visit)
        if step.action in PROCEDURE_ACTIONS:
            return self._procedure(run, step, face, visit)
        return self._change(run, step, face, visit)

    def _placement(self, run: Run) -> Placement:
        return Placement(run.state.model, "named", incident_id=run.state.incident_id)

    def _plan(self, run: Run, step: Step, face: RunFace, reason: str) -> Preview | None:
        """The step's action planned on the systems as they are now; ``None``: an undo with nothing to undo.

        Raises:
            RefusedError: the action is refused as planned (a promotion whose gate has not held).
            RewindError: it cannot be planned (no shadow, no backup server, a system unreadable...).
        """
        state = run.state
        service = self.rollback
        model = state.model
        if step.action is ActionKind.UNDO:
            undone = next((r for r in reversed(state.results) if r.step_id == step.of), None)
            if undone is None or not undone.action_id:
                return None
            return service.undo_preview(undone.action_id, reason, self._placement(run))[0]
        if step.action is ActionKind.ROLLBACK:
            return service.preview(model, state.inputs.get(step.leave), state.inputs.get(step.target),
                                   Mode(step.mode), reason, named_by="chosen by the playbook")
        if step.action is ActionKind.SHADOW:
            if step.operation == "start":
                version = state.inputs.get(step.version)
                if version is None:
                    raise UsageError(f"input {step.version!r} names no version")
                return self._shadow().start_preview(model, version, step.percent or 100, reason)
            return self._shadow().stop_preview(model, reason)
        if step.action is ActionKind.PROMOTE:
            if step.operation == "revert":
                return self._shadow().revert_preview(model, self._promotion_to_revert(run), reason)[0]
            preview, gate = self._shadow().promote_preview(model, reason)
            face.said(f"{step.id}: promotion gate: {gate.summary}", "good")
            return preview
        if step.action is ActionKind.FEATURES:
            return self._features_preview(run, step, reason)
        if step.operation == "engage":
            return self.fallback.engage_preview(model, reason)
        return self.fallback.restore_preview(model, reason)

    def _features_preview(self, run: Run, step: Step, reason: str) -> Preview | None:
        """A feature rollback planned as ``rewind features rollback`` plans it; or the undo of this run's latest one.

        ``None``: an undo, and this run rolled no features back.
        """
        from console.services.features import feature_signature

        model = run.state.model
        if step.operation == "undo":
            rolling = {s.id for s in run.playbook.steps if s.action is ActionKind.FEATURES and s.operation != "undo"}
            undone = next((r for r in reversed(run.state.results) if r.step_id in rolling and r.action_id), None)
            if undone is None:
                return None
            return self.rollback.undo_preview(undone.action_id or "", reason, self._placement(run))[0]
        planned = self._features().preview(model, to=step.to, view=step.view, whole_view=bool(step.whole_view),
                                           reason=reason)
        return Preview(planned.plan, f"back to {planned.view} {planned.target.label} from {planned.current.label}",
                       None, None, feature_signature(), RouterState(model, ()), planned.already, planned.details)

    def _announce(self, run: Run, step: Step, visit: int, action_id: str) -> tuple[float, ActionOptions]:
        """Journal the action's id before it starts (a resume reconciles it); the confirmation's time left
        and how the action is confirmed."""
        run.log.record(EventKind.STEP_STARTED, {"run_id": run.state.run_id, "step_id": step.id, "visit": visit,
                                                "action_id": action_id})
        self._refresh(run)
        timeout_s = self._remaining_s(run, step) if step.confirm and step.timeout else 0.0
        confirmed_by = ("--yes" if run.yes else None) if step.confirm else \
            f"playbook {run.playbook.id} (confirm: false)"
        return timeout_s, ActionOptions(confirmed_by=confirmed_by, read_only=run.read_only)

    @staticmethod
    def _out_of_time(run: Run, step: Step, timeout_s: float) -> bool:
        """Whether a confirmation is due but its step's time has already run out."""
        return bool(step.confirm and not run.yes and step.timeout and timeout_s <= 0)

    def _promotion_to_revert(self, run: Run) -> str | None:
        """The promotion a revert step undoes: this run's, when the playbook promotes (never an older one).

        A playbook without a promote step reverts the model's latest promotion still in force (``None``).

        Raises:
            UsageError: the playbook promotes, but this run's promotion changed nothing (refused, not planned).
        """
        promoting = {s.id for s in run.playbook.steps if s.action is ActionKind.PROMOTE and s.operation != "revert"}
        if not promoting:
            return None
        promoted = next((r.action_id for r in reversed(run.state.results)
                         if r.step_id in promoting and r.action_id), None)
        if promoted is None:
            raise UsageError("this run promoted nothing: there is no promotion of its own to revert")
        return promoted

    def _procedure(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        """A rollback, undo, shadow, promote or fallback engage/restore: the one action procedure."""
        state = run.state
        service = self.rollback
        if state.current_action_id and not run.dry_run:
            reconciled = self._reconcile(run, step, face, visit, state.current_action_id)
            if reconciled is not None:
                return reconciled
        reason = f"playbook {run.playbook.id}, step {step.id}" + _why(run)
        what = _action_words(step)
        try:
            planned = self._plan(run, step, face, reason)
        except RewindError as exc:
            refused = isinstance(exc, RefusedError)
            face.said(f"{step.id}: {'refused' if refused else 'cannot plan'} the {what}: {exc}", "bad")
            # Why nothing was done, in the incident (a refused promotion is a decision the gate made).
            verdict = "refused" if refused else "not planned"
            run.log.record(EventKind.NOTE, {"text": f"{step.id}: the {what} was {verdict}: {exc}",
                                            "run_id": state.run_id, "step_id": step.id, "refused": refused})
            return StepResult(step.id, visit, "failed", reason=str(exc),
                              summary=f"{'refused' if refused else 'not planned'}: {exc}",
                              next=step.branches["failed"])
        if planned is None:
            undone = f"step {step.of}" if step.of else "this run's feature rollback"
            return StepResult(step.id, visit, "failed", reason=f"{undone} applied no action to undo",
                              next=step.branches["failed"])
        preview = planned
        plan = preview.plan
        if run.dry_run:
            return self._dry_action(step, face, visit, _describe_plan(plan, preview))
        if step.action is ActionKind.FEATURES and step.operation != "undo" and not plan.is_noop:
            # The diagnosis the decision was taken on, journaled as its evidence (the metrics' checks follow).
            self._record_diagnosis(run, step, self.diagnosis(state.model))
        timeout_s, options = self._announce(run, step, visit, plan.action_id)
        try:
            if self._out_of_time(run, step, timeout_s):
                raise HumanTimeout(step.id)
            result = carry_out(service, preview, self._placement(run), face.action_face(step, preview, timeout_s),
                               options)
        except HumanTimeout:
            return self._human_timeout(run, step, face, visit)
        except AnswerMissing:
            raise
        except RewindError as exc:
            face.said(f"{step.id}: {exc}", "bad")
            return StepResult(step.id, visit, "failed", reason=str(exc), summary=f"{plan.action_id} failed: {exc}",
                              next=step.branches["failed"], action_id=plan.action_id)
        if result.cancelled:
            return StepResult(step.id, visit, "failed", reason="the responder did not confirm",
                              summary=f"{plan.action_id} cancelled", next=step.branches["failed"])
        if not result.outcomes:
            return StepResult(step.id, visit, "failed", reason="nothing was applied", next=step.branches["failed"])
        last = result.outcomes[-1]
        face.said(f"{step.id}: {last.message}", "good" if result.succeeded else "bad")
        branch = "done" if result.succeeded else "failed"
        return StepResult(step.id, visit, branch, reason=last.message, summary=f"{plan.action_id} {last.status}",
                          next=step.branches[branch], action_id=plan.action_id)

    def _reconcile(self, run: Run, step: Step, face: RunFace, visit: int, action_id: str) -> StepResult | None:
        """An action step interrupted after its action started: what happened, from the journal and both systems.

        ``None`` when the action never reached its intent (nothing was changed): the step is carried out afresh.
        """
        service = self.rollback
        events = [e for e in run.log.events() if e.payload.get("action_id") == action_id]
        intent = next((e for e in events if e.kind is EventKind.ACTION_INTENT), None)
        if intent is None:
            face.said(f"{step.id}: the interrupted action {action_id} never started changing anything; "
                      "asking again", "warn")
            return None
        if not any(e.kind in TERMINAL for e in events):
            face.said(f"{step.id}: action {action_id} was interrupted mid-way; reading both systems", "warn")
            for line in service.recover(self.is_live):
                face.said(f"reconciled: {line}", "warn")
            events = [e for e in run.log.events() if e.payload.get("action_id") == action_id]
        terminal = next((e for e in reversed(events) if e.kind in TERMINAL), None)
        if terminal is None:  # still held by a live console: not ours to finish
            raise UsageError(f"action {action_id} of run {run.state.run_id} is still being carried out by "
                             f"another console ({service.lock.holder(run.state.model)}); resume when it ends")
        plan = Plan.from_dict(intent.payload["plan"])
        observed = terminal.payload.get("observed") or {}
        if terminal.kind is EventKind.ACTION_FAILED and terminal.payload.get("recovered") \
                and plan.state_is(observed.get("weights") or {}, observed.get("aliases") or {}, end=False):
            face.said(f"{step.id}: {action_id} changed nothing before the interruption; carrying the step out "
                      "afresh", "warn")
            return None
        if terminal.kind is EventKind.ACTION_APPLIED:
            verified = next((e for e in events if e.kind in (EventKind.ACTION_VERIFIED,
                                                              EventKind.ACTION_NOT_VERIFIED)), None)
            if verified is None and terminal.payload.get("changed", True) is not False:
                face.said(f"{step.id}: {action_id} was applied before the interruption; verifying it now")
                outcome = service.verify(run.state.incident_id, plan)
                status, message = outcome.status, outcome.message
            else:
                status = "verified" if verified is None or verified.kind is EventKind.ACTION_VERIFIED \
                    else "not_verified"
                message = f"{action_id} was applied before the interruption ({status})"
            branch = "done" if status == "verified" else "failed"
            face.said(f"{step.id}: {message}", "good" if branch == "done" else "bad")
            return StepResult(step.id, visit, branch, reason=message, summary=f"{action_id} {status}",
                              next=step.branches[branch], action_id=action_id)
        reason = str(terminal.payload.get("reason") or "failed")
        face.said(f"{step.id}: {action_id} did not complete: {reason}", "bad")
        return StepResult(step.id, visit, "failed", reason=reason, summary=f"{action_id} failed",
                          next=step.branches["failed"], action_id=action_id)

    def _drill(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        """A fallback drill: engage for ``seconds``, count what callers got, restore; journaled by the drill.

        An interrupted drill is never repeated: its engagement may still be in force, and the
        step says so (restore is the next, ordinary, action).
        """
        state = run.state
        seconds = step.seconds or 10.0
        reason = f"playbook {run.playbook.id}, step {step.id}" + _why(run)
        try:
            preview = self.fallback.engage_preview(state.model, reason)
        except RewindError as exc:
            face.said(f"{step.id}: cannot plan the fallback drill: {exc}", "bad")
            return StepResult(step.id, visit, "failed", reason=str(exc), summary=f"not planned: {exc}",
                              next=step.branches["failed"])
        if run.dry_run:
            return self._dry_action(step, face, visit, f"drill the fallback for {seconds:g}s "
                                                       f"({_describe_plan(preview.plan, preview)}), then restore")
        if state.current_action_id:
            out = ", ".join(sorted(preview.plan.servers_before)) or "none"
            reason = (f"the drill was interrupted ({state.current_action_id}); not repeated. Primaries in service "
                      f"now: {out}; restore the fallback if any is still out")
            face.said(f"{step.id}: {reason}", "warn")
            return StepResult(step.id, visit, "failed", reason=reason, next=step.branches["failed"])
        drill_id = f"drill-{uuid.uuid4().hex[:8]}"
        timeout_s, options = self._announce(run, step, visit, drill_id)
        try:
            if self._out_of_time(run, step, timeout_s):
                raise HumanTimeout(step.id)
            result, actions = self.fallback.drill(state.model, seconds, self._placement(run),
                                                  face.action_face(step, preview, timeout_s), options)
        except HumanTimeout:
            return self._human_timeout(run, step, face, visit)
        except AnswerMissing:
            raise
        except RewindError as exc:
            face.said(f"{step.id}: {exc}", "bad")
            return StepResult(step.id, visit, "failed", reason=str(exc), summary=f"drill failed: {exc}",
                              next=step.branches["failed"])
        if result is None:
            why = "the responder did not confirm" if actions and actions[0].cancelled else "the engagement failed"
            return StepResult(step.id, visit, "failed", reason=why, summary=f"no drill: {why}",
                              next=step.branches["failed"])
        restored = len(actions) > 1 and actions[-1].succeeded
        passed = result.passed and restored
        text = result.describe() + ("" if restored else "; the primaries were NOT all restored")
        face.said(f"{step.id}: drill {text}", "good" if passed else "bad")
        branch = "done" if passed else "failed"
        return StepResult(step.id, visit, branch, reason=text, summary=f"drill {text}", next=step.branches[branch])

    def _dry_action(self, step: Step, face: RunFace, visit: int, description: str) -> StepResult:
        if step.dry_run == "stop":
            face.said(f"dry run: {step.id} would {description}; the drill stops here (dry_run: stop)", "warn")
            return StepResult(step.id, visit, "done", summary=f"dry run: would {description}", ended="dry_run_stopped")
        face.said(f"dry run: {step.id} would {description}")
        return StepResult(step.id, visit, "done", summary=f"dry run: would {description}", next=step.branches["done"])

    def _change(self, run: Run, step: Step, face: RunFace, visit: int) -> StepResult:
        """A tag or an http call: confirmed (unless the step says not), journaled, never retried blindly."""
        values = self._values(run)
        state = run.state
        if step.action is ActionKind.TAG:
            version = state.inputs.get(step.version, step.version)
            value = render(step.value, values)
            description = f"tag v{version} of {state.model} with {step.key}={value}"
        else:
            body = _render_body(step.body, values)
            description = f"call endpoint {step.endpoint} with {canonical_json(body)}"
        if run.dry_run:
            return self._dry_action(step, face, visit, description)
        if run.read_only:
            reason = "refused: the console is in --read-only mode"
            run.log.record(EventKind.DECISION, {"option": "refused", "reason": reason, "run_id": state.run_id,
                                                "step_id": step.id, "change": description})
            face.said(f"{step.id}: {reason}", "bad")
            return StepResult(step.id, visit, "failed", reason=reason, next=step.branches["failed"])
        if state.current_action_id:  # interrupted after the call was announced: never repeated blindly
            reason = f"interrupted while it was being carried out ({state.current_action_id}); not repeated"
            face.said(f"{step.id}: {reason}", "warn")
            return StepResult(step.id, visit, "failed", reason=reason, next=step.branches["failed"])
        if step.confirm and not run.yes:
            remaining = self._remaining_s(run, step)
            try:
                if remaining <= 0:
                    raise HumanTimeout(step.id)
                confirmed = face.confirm_change(step, description, remaining)
            except HumanTimeout:
                return self._human_timeout(run, step, face, visit)
            if not confirmed:
                run.log.record(EventKind.DECISION, {"option": "cancel", "reason": "the responder did not confirm",
                                                    "run_id": state.run_id, "step_id": step.id})
                return StepResult(step.id, visit, "failed", reason="the responder did not confirm",
                                  next=step.branches["failed"])
        else:
            confirmed = "--yes" if run.yes else "confirm: false"
        change_id = f"chg-{uuid.uuid4().hex[:8]}"
        run.log.record(EventKind.DECISION, {"option": step.action.value if step.action else "change",
                                            "reason": f"playbook {run.playbook.id}, step {step.id}" + _why(run),
                                            "confirmed_by": confirmed, "run_id": state.run_id, "step_id": step.id,
                                            "change": description})
        run.log.record(EventKind.STEP_STARTED, {"run_id": state.run_id, "step_id": step.id, "visit": visit,
                                                "action_id": change_id})
        self._refresh(run)
        try:
            if step.action is ActionKind.TAG:
                self.rollback.registry.set_version_tag(state.model, str(version), step.key, value)
                summary = f"tagged v{version}: {step.key}={value}"
            else:
                if self.endpoints is None:
                    raise UsageError(f"no endpoint {step.endpoint!r} is configured (endpoints)")
                delivery = self.endpoints.call(step.endpoint or "", body, dedupe_key=change_id)
                if not delivery.ok:
                    raise UsageError(delivery.summary)
                summary = delivery.summary
        except RewindError as exc:
            run.log.record(EventKind.NOTE, {"text": f"{step.id}: {description} failed: {exc}",
                                            "run_id": state.run_id, "change_id": change_id})
            face.said(f"{step.id}: {exc}", "bad")
            return StepResult(step.id, visit, "failed", reason=str(exc), summary=f"failed: {exc}",
                              next=step.branches["failed"])
        run.log.record(EventKind.NOTE, {"text": f"{step.id}: {summary}", "run_id": state.run_id,
                                        "change_id": change_id})
        face.said(f"{step.id}: {summary}", "good")
        return StepResult(step.id, visit, "done", summary=summary, next=step.branches["done"])


def _render_body(value: object, values: Mapping[str, str]) -> dict[str, object]:
    """An http body with every string, at any depth, rendered (keys are kept as written)."""
    def walk(item: object) -> object:
        if isinstance(item, str):
            return render(item, values)
        if isinstance(item, Mapping):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(inner) for inner in item]
        return item

    rendered = walk(value)
    return rendered if isinstance(rendered, dict) else {}


def _why(run: Run) -> str:
    """The reason the responder gave at the run's latest choice, as ``: reason`` (empty without one)."""
    choices = {step.id for step in run.playbook.steps if step.kind is StepKind.CHOICE}
    latest = next((r for r in reversed(run.state.results) if r.step_id in choices and r.reason), None)
    return f": {latest.reason}" if latest is not None else ""


def _rendered(step: Step, values: Mapping[str, str]) -> Step:
    """The step with its prose (title, text, prompt, option labels) filled in, as a face shows it."""
    return replace(step, title=render(step.title, values), text=render(step.text, values),
                   prompt=render(step.prompt, values),
                   options=tuple(replace(option, label=render(option.label, values)) for option in step.options))


def _as_check(step: Step, metric: str | None) -> Step:
    return replace(step, kind=StepKind.CHECK, metric=metric, suspect_as="no_data")


def _action_words(step: Step) -> str:
    """``rollback``, ``shadow start``, ``promote revert``...: what a step's action is, in words."""
    action = str(step.action) if step.action else "action"
    return f"{action} {step.operation}" if step.operation and step.operation != action else action


_PLAN_WORDS = {PlanKind.SHADOW_START: "shadow start", PlanKind.SHADOW_STOP: "shadow stop",
               PlanKind.PROMOTE: "promotion", PlanKind.FALLBACK_ENGAGE: "fallback engagement",
               PlanKind.FALLBACK_RESTORE: "fallback restore"}


def _describe_plan(plan: Plan, preview: Preview) -> str:
    weights = ", ".join(f"v{v} {plan.weights_before.get(v)}→{w}" for v, w in sorted(plan.weights_after.items())
                        if plan.weights_before.get(v) != w)
    aliases = ", ".join(f"{m.alias} {m.before or '-'}→{m.after or '-'}" for m in plan.alias_moves)
    if plan.is_noop:
        return f"change nothing ({preview.already or 'already in the planned state'})"
    if plan.moves_features:
        what = "undo of the feature rollback" if plan.undoes else "feature rollback"
        return f"{what} of {plan.model}: {describe_feature_moves(plan)}; weights and aliases untouched"
    if plan.kind in (PlanKind.ROLLBACK, PlanKind.UNDO) and not plan.moves_mirror and not plan.moved_servers:
        return (f"{plan.mode.value} {'undo' if plan.undoes else 'rollback'} v{plan.leave}→v{plan.target}: "
                f"weights {weights or 'unchanged'}; aliases {aliases or 'unchanged'}")
    what = ("undo" if plan.undoes else _PLAN_WORDS.get(plan.kind, plan.kind.value))
    parts = [f"weights {weights or 'unchanged'}", f"aliases {aliases or 'unchanged'}"]
    if plan.moves_mirror:
        parts.append(f"mirror {describe_mirror(plan.mirror_before)} → {describe_mirror(plan.mirror_after)}")
    if plan.moved_servers:
        parts.append("servers " + ", ".join(f"{n} {plan.servers_before.get(n, '?')}→{plan.servers_after[n]}"
                                            for n in plan.moved_servers))
    return f"{what} of {plan.model}: " + "; ".join(parts)

