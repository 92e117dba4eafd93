"""A playbook run's rules, without I/O: its state folded from the journal, checks, references, entry matches.

A run lives only in the journal. Its events carry the run's id:
``playbook.started`` (the playbook's id, version, hashes and content, the
resolved inputs), ``step.started`` / ``step.finished`` per step visit,
``decision`` for a choice, ``notification.rendered`` / ``notification.sent``
for a notification, ``playbook.finished``; an action step's ``step.started``
names the action id the rollback service journals its own events under.
:func:`fold_run` rebuilds where a run stands from those events alone, so a run
interrupted on one machine resumes on any machine that shares the journal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from console.domain.features import Cause, Diagnosis
from console.domain.journal import Event, EventKind
from console.domain.playbook import EntryCondition, Playbook, Step
from console.domain.shadow import GateReading, GateVerdict
from console.domain.verdicts import WORD, Matrix, State, Verdict, overall_state

REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")
"""A ``{{ name }}`` reference in a playbook's text: a dotted name, nothing that could run."""


@dataclass(frozen=True)
class StepResult:
    """How one visit of a step ended.

    Attributes:
        step_id: the step.
        visit: 1 for the first visit, 2 for a loop's second...
        outcome: the branch taken (a check's ``pass``/``fail``/``no_data``, a choice's
            option, an action's ``done``/``failed``, a wait's branch), or ``done``.
        reason: why (a check's explanation, a choice's reason).
        summary: one line of what happened (an action's outcome).
        next: the step that follows, ``None`` when the run ends here.
        ended: the run's outcome when this step ended it.
        action_id: the action a rollback or undo step carried out.
    """

    step_id: str
    visit: int
    outcome: str
    reason: str = ""
    summary: str = ""
    next: str | None = None
    ended: str | None = None
    action_id: str | None = None

    def payload(self, run_id: str) -> dict[str, object]:
        """The ``step.finished`` event's payload."""
        return {"run_id": run_id, "step_id": self.step_id, "visit": self.visit, "outcome": self.outcome,
                "reason": self.reason, "summary": self.summary, "next": self.next, "ended": self.ended,
                "action_id": self.action_id}


@dataclass
class RunState:
    """Where a run stands, as its journal events say.

    Attributes:
        run_id: the run's id.
        incident_id: the incident its events are in.
        playbook_id, playbook_version, content_hash, structure_hash: the playbook it started with.
        content: that playbook file's text, so a run keeps its playbook when the file changes.
        model: the model it acts on.
        inputs: the inputs resolved at start (name -> version).
        started_at: the ``playbook.started`` event's time (ISO 8601).
        started_by: who started it.
        results: every finished step visit, in order.
        current: the step started and not finished, or the next one to start.
        current_visit: that visit's number.
        current_started: the time (Unix seconds) the current step started, when it did.
        current_action_id: the action an unfinished action step started.
        notifications: dedupe key -> ``rendered`` or ``sent``.
        finished: the run's outcome once it ended.
        last_seq: the sequence number of the run's latest event.
    """

    run_id: str
    incident_id: str
    playbook_id: str
    playbook_version: int
    content_hash: str
    structure_hash: str
    content: str
    model: str
    inputs: dict[str, str]
    started_at: str = ""
    started_by: str = ""
    results: list[StepResult] = field(default_factory=list)
    current: str | None = None
    current_visit: int = 1
    current_started: float | None = None
    current_action_id: str | None = None
    notifications: dict[str, str] = field(default_factory=dict)
    finished: str | None = None
    last_seq: int = 0

    def latest(self, step_id: str) -> StepResult | None:
        """The latest finished visit of a step."""
        return next((r for r in reversed(self.results) if r.step_id == step_id), None)

    def visits(self, step_id: str) -> int:
        """How many times a step was finished."""
        return sum(1 for r in self.results if r.step_id == step_id)

    @property
    def interrupted(self) -> bool:
        """Whether the run stopped inside a step (started, not finished)."""
        return self.finished is None and self.current_started is not None


def started_payload(run_id: str, playbook: Playbook, content: str, model: str, inputs: Mapping[str, str],
                    dry_run: bool = False) -> dict[str, object]:
    """The ``playbook.started`` event's payload."""
    return {"run_id": run_id, "playbook_id": playbook.id, "playbook_version": playbook.version,
            "content_hash": playbook.content_hash, "structure_hash": playbook.structure_hash,
            "title": playbook.title, "source": playbook.source, "content": content, "model": model,
            "inputs": dict(inputs), "dry_run": dry_run, "start": playbook.start}


def _epoch(event: Event) -> float:
    return event.time().timestamp()


def fold_run(run_id: str, events: Iterable[Event]) -> RunState | None:
    """A run's state from an incident's events (``None`` when the run is not among them)."""
    state: RunState | None = None
    for event in events:
        payload = event.payload
        if payload.get("run_id") != run_id:
            continue
        kind = event.kind
        if kind is EventKind.PLAYBOOK_STARTED:
            state = RunState(run_id=run_id, incident_id=event.incident_id,
                             playbook_id=str(payload.get("playbook_id")),
                             playbook_version=int(payload.get("playbook_version") or 0),
                             content_hash=str(payload.get("content_hash") or ""),
                             structure_hash=str(payload.get("structure_hash") or ""),
                             content=str(payload.get("content") or ""), model=str(payload.get("model") or ""),
                             inputs={str(k): str(v) for k, v in (payload.get("inputs") or {}).items()},
                             started_at=event.ts, started_by=event.actor.label(), last_seq=event.seq,
                             current=str(payload.get("start")) if payload.get("start") else None)
            continue
        if state is None:
            continue
        state.last_seq = event.seq
        if kind is EventKind.STEP_STARTED:
            step_id, visit = str(payload.get("step_id")), int(payload.get("visit") or 1)
            again = state.current_started is not None and (step_id, visit) == (state.current, state.current_visit)
            if not again:  # a new visit (a second event of the same visit names its action, or a resume)
                state.current, state.current_visit = step_id, visit
                state.current_started, state.current_action_id = _epoch(event), None
            elif payload.get("resumed"):  # taken up again after an interruption: its clock restarts
                state.current_started = _epoch(event)
            if payload.get("action_id"):
                state.current_action_id = str(payload["action_id"])
        elif kind is EventKind.STEP_FINISHED:
            result = StepResult(step_id=str(payload.get("step_id")), visit=int(payload.get("visit") or 1),
                                outcome=str(payload.get("outcome") or ""), reason=str(payload.get("reason") or ""),
                                summary=str(payload.get("summary") or ""),
                                next=payload.get("next") if payload.get("next") else None,
                                ended=payload.get("ended") if payload.get("ended") else None,
                                action_id=payload.get("action_id") if payload.get("action_id") else None)
            state.results.append(result)
            state.current = result.next
            state.current_visit = state.visits(result.next) + 1 if result.next else 1
            state.current_started = None
            state.current_action_id = None
        elif kind in (EventKind.NOTIFICATION_RENDERED, EventKind.NOTIFICATION_SENT):
            key = str(payload.get("dedupe_key") or "")
            if key:
                sent = kind is EventKind.NOTIFICATION_SENT or state.notifications.get(key) == "sent"
                state.notifications[key] = "sent" if sent else "rendered"
        elif kind is EventKind.PLAYBOOK_FINISHED:
            state.finished = str(payload.get("outcome") or "ended")
            state.current = None
            state.current_started = None
    return state


def runs_in(events: Sequence[Event]) -> list[str]:
    """The ids of the runs started in an incident, oldest first."""
    return [str(e.payload.get("run_id")) for e in events
            if e.kind is EventKind.PLAYBOOK_STARTED and e.payload.get("run_id")]


# -- references ------------------------------------------------------------------------------

def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{{ name }}`` replaced by ``values[name]`` (an unknown name is left as written).

    Plain substitution: no expression, call, filter or loop is evaluated.
    """
    return REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def reference_values(model: str, incident_id: str, inputs: Mapping[str, str],
                     results: Sequence[StepResult], steps: Iterable[str] = ()) -> dict[str, str]:
    """Every name a template may use, with its value for this run so far (``(not reached)`` for ``steps`` not run)."""
    values = {"model": model, "incident": incident_id}
    for step_id in steps:
        for part in ("outcome", "reason", "summary"):
            values[f"steps.{step_id}.{part}"] = "(not reached)"
    values.update({f"inputs.{name}": version for name, version in inputs.items()})
    for result in results:  # later visits overwrite earlier ones
        values[f"steps.{result.step_id}.outcome"] = result.outcome
        values[f"steps.{result.step_id}.reason"] = result.reason
        values[f"steps.{result.step_id}.summary"] = result.summary
    return values


# -- checks ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckOutcome:
    """A check step's verdict on live data, explained.

    Attributes:
        branch: ``pass``, ``fail`` or ``no_data``.
        state: the most telling cell state (:data:`console.domain.verdicts.SEVERITY`).
        reason: one line: which cells, what values, which criterion.
        cells: the judged cells of the version, in segment order.
    """

    branch: str
    state: State
    reason: str
    cells: tuple[Verdict, ...]


def judge_check(matrix: Matrix, step: Step, version: str | None) -> CheckOutcome:
    """Judge a check step on the matrix the overview shows.

    ``fail`` when a cell of the version breaches, ``pass`` when every judged cell
    passes, ``no_data`` otherwise (no data, low traffic; suspect cells unless the
    step's ``suspect_as`` says ``fail`` or ``pass``).
    """
    metric = step.metric or ""
    if version is None:
        return CheckOutcome("no_data", State.NO_DATA, f"input {step.version!r} names no version now", ())
    if metric not in {m.name for m in matrix.metrics}:
        return CheckOutcome("no_data", State.NO_DATA, f"metric {metric} is not in the catalogue", ())
    segments = [s for s in matrix.segments if not step.segments or s in step.segments]
    cells = tuple(matrix.cell(metric, version, segment) for segment in segments)
    states = [c.state for c in cells]
    if step.suspect_as in ("fail", "pass"):
        states = [(State.BREACH if step.suspect_as == "fail" else State.PASS) if s is State.SUSPECT else s
                  for s in states]
    state = overall_state(set(states)) if states else State.NO_DATA
    judged = [c for c, s in zip(cells, states, strict=True) if s in (State.BREACH, State.PASS)]
    if state is State.BREACH:
        branch = "fail"
    elif states and all(s is State.PASS for s in states if s not in (State.INFO,)) and judged:
        branch = "pass"
    else:
        branch = "no_data"
    where = f"v{version} {metric}"
    if not cells:
        return CheckOutcome(branch, state, f"{where}: no segment to judge", cells)
    telling = [c for c, s in zip(cells, states, strict=True) if s is state]
    first = telling[0] if telling else cells[0]
    counts = {WORD[s]: states.count(s) for s in dict.fromkeys(states)}
    tally = ", ".join(f"{n} {word}" for word, n in counts.items())
    return CheckOutcome(branch, state, f"{where}: {tally} of {len(cells)} segment(s); {first.segment}: "
                                       f"{first.reason}", cells)


def judge_gate(reading: GateReading | None, problem: str | None = None) -> CheckOutcome:
    """Judge a ``gate: shadow`` check on the shadow's promotion gate, read over its window.

    ``pass`` when the gate holds (every segment passed for the whole window),
    ``fail`` when a segment fails, ``no_data`` otherwise: a HOLD (too few pairs,
    too little coverage, a window not yet over) proves nothing either way, and
    neither does a model without a shadow.

    Args:
        reading: the gate over its window, ``None`` when nothing is mirrored.
        problem: why the shadow's state could not be read in full (a mirror of another champion...).
    """
    if reading is None:
        why = problem or "no shadow is mirrored from the champion: start one first (a shadow start action)"
        return CheckOutcome("no_data", State.NO_DATA, why, ())
    where = f"shadow v{reading.shadow_version} against v{reading.champion_version}"
    summary = reading.summary + (f" ({problem})" if problem else "")
    if reading.verdict is GateVerdict.FAIL:
        return CheckOutcome("fail", State.BREACH, f"{where}: {summary}", ())
    if reading.holds and problem is None:
        return CheckOutcome("pass", State.PASS, f"{where}: {summary}", ())
    return CheckOutcome("no_data", State.NO_DATA, f"{where}: {summary}", ())


def judge_fallback_gate(serving: Sequence[tuple[str, bool]], backup_up: bool) -> CheckOutcome:
    """Judge a ``gate: fallback`` check: can the model's serving primaries answer, as the router sees them?

    ``fail`` when no primary that carries weight is up (the router took them out: the
    fallback answers, or would), ``pass`` when one is, ``no_data`` when no primary carries
    weight at all. The metrics cannot tell this: a champion the router took out answers
    nothing, so its error rate falls back to calm within a window.

    Args:
        serving: ``(server, up)`` of every primary server that carries weight.
        backup_up: whether a backup (fallback) server is up.
    """
    if not serving:
        return CheckOutcome("no_data", State.NO_DATA, "no primary server carries weight in the router", ())
    shown = ", ".join(f"{server} {'up' if up else 'DOWN'}" for server, up in serving)
    if any(up for _, up in serving):
        return CheckOutcome("pass", State.PASS, f"the serving primaries answer: {shown}", ())
    fallback = "the fallback answers" if backup_up else "no fallback is up either: the router's default answers"
    return CheckOutcome("fail", State.BREACH, f"no serving primary is up ({shown}): {fallback}", ())


def judge_diagnosis(diagnosis: Diagnosis | None, problem: str | None = None) -> CheckOutcome:
    """Judge a ``gate: diagnosis`` check: its branch is the cause the model's breach is blamed on.

    ``feature``, ``model`` or ``world`` as the diagnosis says; ``unsure`` when it cannot tell,
    when no version breaches now (nothing to blame), or when the diagnosis could not be read.

    Args:
        diagnosis: the diagnosis of the current snapshot, ``None`` when no version breaches.
        problem: why the feature evidence (or the snapshot) could not be read in full.
    """
    if diagnosis is None:
        why = "no version breaches now: nothing to diagnose"
        if problem:
            why = f"no diagnosis: {problem}"
        return CheckOutcome(Cause.UNSURE.value, State.NO_DATA, why, ())
    reason = diagnosis.summary + (f" (feature telemetry: {problem})" if problem else "")
    state = State.NO_DATA if diagnosis.cause is Cause.UNSURE else State.BREACH
    return CheckOutcome(diagnosis.cause.value, state, reason, ())


# -- entry conditions --------------------------------------------------------------------------

@dataclass(frozen=True)
class EntryMatch:
    """How well a playbook's entry conditions match the current verdicts."""

    playbook_id: str
    met: int
    of: int
    reasons: tuple[str, ...]

    @property
    def score(self) -> float:
        """The share of conditions met (1.0 for a playbook without conditions: always relevant, weakly)."""
        return self.met / self.of if self.of else 0.0


_VERB = {State.BREACH: ("breaches", "does not breach"), State.SUSPECT: ("is suspect", "is not suspect"),
         State.PASS: ("passes", "does not pass"), State.NO_DATA: ("has no data", "has data")}
"""How an entry condition's verdict reads in a sentence: (holds, does not hold)."""


def _condition_met(condition: EntryCondition, matrix: Matrix, inputs: Mapping[str, str | None]) -> tuple[bool, str]:
    wanted = State(condition.verdict)
    holds, fails = _VERB.get(wanted, (f"is {WORD[wanted]}", f"is not {WORD[wanted]}"))
    metrics = [m.name for m in matrix.metrics if m.criteria.judges
               and (not condition.metrics or m.name in condition.metrics)]
    scope = ", ".join(condition.metrics) if condition.metrics else "any metric"
    if condition.version == "all":
        serving = list(matrix.versions)
        if len(serving) < 2:
            return False, "fewer than two versions to compare"
        for metric in metrics:
            for segment in matrix.segments:
                if all(matrix.state(metric, v, segment) is wanted for v in serving):
                    return True, f"every version {holds} on {metric} in {segment}"
        return False, f"no segment where every version {holds} on {scope}"
    version = inputs.get(condition.version)
    if version is None:
        return False, f"{condition.version} names no version now"
    if wanted is State.PASS:  # healthy: no cell breaches (a suspect cell may be chance: it does not count)
        states = [(metric, segment, matrix.state(metric, version, segment))
                  for metric in metrics for segment in matrix.segments]
        bad = next(((m, s, st) for m, s, st in states if st is State.BREACH), None)
        if bad is not None:
            return False, f"{condition.version} v{version} is {WORD[bad[2]]} on {bad[0]} in {bad[1]}"
        if not any(st is State.PASS for _, _, st in states):
            return False, f"{condition.version} v{version} has no judged cell on {scope}"
        every = ", ".join(condition.metrics) if condition.metrics else "every judged metric"
        return True, f"{condition.version} v{version} passes on {every}"
    for metric in metrics:
        for segment in matrix.segments:
            if matrix.state(metric, version, segment) is wanted:
                return True, f"{condition.version} v{version} {holds} on {metric} in {segment}"
    return False, f"{condition.version} v{version} {fails} on {scope}"


_CAUSE_WORDS = {Cause.FEATURE.value: "a feature bug", Cause.MODEL.value: "a model regression",
                 Cause.WORLD.value: "the world changed (drift)", Cause.UNSURE.value: "not sure"}


def _diagnosis_met(wanted: str, diagnosis: Diagnosis | None, problem: str | None) -> tuple[bool, str]:
    if diagnosis is None:
        return False, (f"no diagnosis: {problem}" if problem else "no diagnosis: no version breaches now")
    if diagnosis.cause.value == wanted:
        return True, f"diagnosis: {diagnosis.summary}"
    return False, f"diagnosis is {diagnosis.cause.value}, not {wanted} ({_CAUSE_WORDS.get(wanted, wanted)}): " \
                  f"{diagnosis.summary}"


def needs_diagnosis(playbook: Playbook) -> bool:
    """Whether a playbook's entry conditions name a diagnosis (its ranking then reads the feature evidence)."""
    return any(condition.diagnosis is not None for condition in playbook.when)


def match_entry(playbook: Playbook, matrix: Matrix, inputs: Mapping[str, str | None],
                diagnosis: Diagnosis | None = None, diagnosis_problem: str | None = None) -> EntryMatch:
    """Which of a playbook's entry conditions hold on the current matrix (and diagnosis), each with why.

    Args:
        playbook: whose conditions.
        matrix: the current verdicts.
        inputs: each input's version now.
        diagnosis: the diagnosis of the same snapshot (``None``: no version breaches, or not read).
        diagnosis_problem: why the diagnosis could not be read, when it could not.
    """
    reasons = []
    met = 0
    for condition in playbook.when:
        if condition.diagnosis is not None:
            ok, why = _diagnosis_met(condition.diagnosis, diagnosis, diagnosis_problem)
        else:
            ok, why = _condition_met(condition, matrix, inputs)
        met += ok
        reasons.append(("✓ " if ok else "✗ ") + why)
    return EntryMatch(playbook.id, met, len(playbook.when), tuple(reasons))


def resolve_inputs(playbook: Playbook, aliases: Mapping[str, str],
                   previous: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """Each input's version now: a fixed version, an alias's version, or an alias's previous version.

    Args:
        playbook: whose inputs.
        aliases: alias -> version now.
        previous: alias -> the version it pointed at before (only the aliases that are known).
    """
    resolved: dict[str, str | None] = {}
    for spec in playbook.inputs:
        if spec.version is not None:
            resolved[spec.name] = spec.version
        elif spec.previous is not None:
            resolved[spec.name] = (previous or {}).get(spec.previous)
        else:
            resolved[spec.name] = aliases.get(spec.alias or "")
    return resolved

