"""The playbook language: typed steps of an incident walkthrough (see playbooks/README.md).

Pure data. A playbook is parsed and validated from YAML by
:mod:`console.domain.playbook_check` (positions from the loader in
``console.adapters.playbook_yaml``); the runner in ``console.services`` only
ever sees a :class:`Playbook` that validated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from console.domain.alerting import Matcher


class StepKind(StrEnum):
    """What a step does."""

    GUIDANCE = "guidance"
    CHECK = "check"
    CHOICE = "choice"
    ACTION = "action"
    WAIT = "wait"
    NOTIFY = "notify"
    END = "end"


class ActionKind(StrEnum):
    """What an action step changes (never a shell command)."""

    ROLLBACK = "rollback"
    UNDO = "undo"
    TAG = "tag"
    HTTP = "http"
    SHADOW = "shadow"
    PROMOTE = "promote"
    FALLBACK = "fallback"
    FEATURES = "features"


PROCEDURE_ACTIONS = (ActionKind.ROLLBACK, ActionKind.UNDO, ActionKind.SHADOW, ActionKind.PROMOTE,
                     ActionKind.FALLBACK, ActionKind.FEATURES)
"""Actions carried out by the one action procedure (preview, confirmation, compare-and-set, verification)."""

OPERATIONS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.SHADOW: ("start", "stop"),
    ActionKind.PROMOTE: ("promote", "revert"),
    ActionKind.FALLBACK: ("engage", "restore", "drill"),
    ActionKind.FEATURES: ("rollback", "undo"),
}
"""What each action with an ``operation`` may do; the first of promote's and of features' is its default."""

DEFAULT_OPERATION: dict[ActionKind, str] = {ActionKind.PROMOTE: "promote", ActionKind.FEATURES: "rollback"}
"""The operation an action takes when the step names none (the others must name one)."""

GATES = ("shadow", "fallback", "diagnosis")
"""What a check's ``gate`` may judge: ``shadow`` is the promotion gate of the model's shadow; ``fallback``
whether the model's serving primaries are up in the router (fail: they are not, the fallback is needed);
``diagnosis`` who the model's breach is blamed on (its branches are the causes)."""

CAUSES = ("feature", "model", "world", "unsure")
"""What a breach is blamed on (:class:`console.domain.features.Cause`): the values of a ``diagnosis``
entry condition and the branches of a ``gate: diagnosis`` check."""

GATE_BRANCHES: dict[str, tuple[str, ...]] = {"diagnosis": CAUSES}
"""Gates whose check branches on something other than pass, fail and no_data."""


OUTCOMES = ("rolled_back", "not_rolled_back", "escalated", "aborted", "resolved")
"""The outcomes an ``end`` step may declare (``aborted`` and ``escalated`` also end a run on a timeout)."""

TIMEOUT_ENDS = ("abort", "escalate")
"""``on_timeout`` values that end the run rather than take an option."""

BRANCHES: dict[StepKind, tuple[str, ...]] = {
    StepKind.CHECK: ("pass", "fail", "no_data"),
    StepKind.ACTION: ("done", "failed"),
    StepKind.WAIT: ("stable", "worse", "timeout"),
}
"""The branches each branching step must give, all of them."""


@dataclass(frozen=True)
class Position:
    """Where something is in the playbook's file (1-based)."""

    line: int
    column: int


@dataclass(frozen=True)
class Timeout:
    """How long a human step waits, and what happens then.

    Attributes:
        minutes: how long to wait for an answer.
        on_timeout: ``abort``, ``escalate``, or (for a choice) an option's id.
    """

    minutes: float
    on_timeout: str = "abort"


MAX_HUMAN_TIMEOUT_MINUTES = 240
"""The longest a human step (a choice, a confirmed action) may wait for its answer: four hours. A question
left longer than that was asked on evidence that is stale by now, to a responder who has since handed over
or been paged again; the decision belongs to a new run on fresh evidence, so the run ends (or escalates)
instead. The shipped playbooks wait 5 to 60 minutes."""

DEFAULT_HUMAN_TIMEOUT = Timeout(10.0, "abort")
"""The timeout of a human step that gives none: ten minutes (a rollback that takes longer than that is
hope, not a rollback), then the run ends as aborted, having changed nothing."""


@dataclass(frozen=True)
class InputSpec:
    """A version the run resolves when it starts: from an alias, the alias's previous holder, or fixed.

    Attributes:
        name: how steps refer to it (``candidate``, ``stable``...).
        alias: the version this alias points at.
        version: a fixed version.
        previous: the version this alias pointed at before its current one (the journal's last
            move of it, else the registry's ``rewind.previous_champion`` tag); only the stable alias.
    """

    name: str
    alias: str | None = None
    version: str | None = None
    previous: str | None = None


@dataclass(frozen=True)
class EntryCondition:
    """A verdict, or a diagnosis, that makes the playbook relevant.

    Attributes:
        version: an input's name, or ``all`` (every version with traffic, in a common segment);
            empty for a diagnosis condition.
        verdict: ``breach``, ``suspect``, ``pass`` or ``no_data``; empty for a diagnosis condition.
        metrics: catalogue metrics it is restricted to (empty: any).
        diagnosis: the cause the model's breach must be blamed on now (one of :data:`CAUSES`);
            ``None`` for a verdict condition.
    """

    version: str = ""
    verdict: str = ""
    metrics: tuple[str, ...] = ()
    diagnosis: str | None = None


@dataclass(frozen=True)
class Option:
    """One answer to a choice."""

    id: str
    label: str
    next: str


@dataclass(frozen=True)
class Message:
    """A notification's template fields (each may hold ``{{ references }}``)."""

    summary: str
    what_changed: str = ""
    why: str = ""
    user_impact: str = ""
    next_update: str = ""


@dataclass(frozen=True)
class Step:
    """One step. Fields that do not apply to the step's kind keep their defaults.

    Attributes:
        id: unique within the playbook.
        kind: what the step does.
        title: a short heading (default: derived from the id).
        text: Markdown for the responder (guidance's body; optional elsewhere).
        next: the following step (guidance, choice options aside, notify).
        branches: branch name -> step id (check, action, wait).
        metric: a check's catalogue metric.
        gate: a check's gate instead of a metric (``shadow``: the shadow's promotion gate; ``fallback``;
            ``diagnosis``: who the breach is blamed on).
        metrics: a wait's catalogue metrics.
        version: the input a check or wait judges, a tag's version, the version a shadow starts.
        segments: a check's segments (empty: every segment).
        suspect_as: what a suspect cell counts as in a check: ``no_data``, ``fail`` or ``pass``.
        prompt: a choice's question.
        options: a choice's answers.
        timeout: how long a human step (choice, confirmed action) waits; a wait's duration.
        action: an action's kind.
        leave, target: a rollback's inputs.
        mode: a rollback's mode, ``immediate`` or ``gradual``.
        of: an undo's rollback step.
        key, value: a tag's key and (templated) value.
        endpoint: an http action's endpoint name (config ``endpoints``).
        body: an http action's templated body.
        operation: what a shadow (start, stop), promote (promote, revert), fallback (engage,
            restore, drill) or features (rollback, undo) action does.
        percent: the share of the champion's requests a shadow start copies (1-100).
        seconds: how long a fallback drill keeps the primaries out.
        to: a features rollback's feature view version to go back to (default: the previous transformation).
        view: a features rollback's feature view (default: the only one the model's service reads).
        whole_view: a features rollback moves the view's active version for every consumer (YAML ``global``)
            instead of pinning this model's versions.
        confirm: whether an action asks for confirmation.
        dry_run: ``describe`` or ``stop``: what the action does in a dry run.
        stable_for: a wait's consecutive evaluations without a breach.
        every_s: a wait's seconds between evaluations.
        channel: a notify's webhook name, or ``copy``.
        message: a notify's template.
        outcome: an end's outcome.
        position: where the step starts in the file.
    """

    id: str
    kind: StepKind
    title: str = ""
    text: str = ""
    next: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    metric: str | None = None
    gate: str | None = None
    metrics: tuple[str, ...] = ()
    version: str = "candidate"
    segments: tuple[str, ...] = ()
    suspect_as: str = "no_data"
    prompt: str = ""
    options: tuple[Option, ...] = ()
    timeout: Timeout | None = None
    action: ActionKind | None = None
    leave: str = "candidate"
    target: str = "stable"
    mode: str = "immediate"
    of: str | None = None
    key: str = ""
    value: str = ""
    endpoint: str | None = None
    body: dict[str, object] = field(default_factory=dict)
    operation: str | None = None
    percent: int | None = None
    seconds: float | None = None
    to: int | None = None
    view: str | None = None
    whole_view: bool | None = None
    confirm: bool = True
    dry_run: str = "describe"
    stable_for: int = 3
    every_s: float = 5.0
    channel: str = "copy"
    message: Message | None = None
    outcome: str | None = None
    position: Position = Position(0, 0)

    def targets(self) -> tuple[str, ...]:
        """Every step id this step can go to."""
        found = [self.next] if self.next else []
        found += list(self.branches.values())
        found += [option.next for option in self.options]
        return tuple(found)


@dataclass(frozen=True)
class Playbook:
    """A validated playbook.

    Attributes:
        id, title, version, description: what it is.
        models: model names it applies to (``*``: every model).
        severity: 1-4, for an incident a run opens.
        roles: permissions needed to start it.
        inputs: versions resolved when a run starts, by name.
        when: entry conditions.
        alerts: label matchers (Alertmanager's text form) that all hold on an alert this playbook answers:
            an alert whose labels they match suggests it (after an alert that names its playbook).
        start: the first step's id.
        steps: in file order.
        source: the file it came from.
        content_hash: sha256 of the file's bytes.
        structure_hash: sha256 of its structure (steps, kinds, links, fields that change what runs),
            prose (titles, text, prompts, labels, messages, description) left out.
    """

    id: str
    title: str
    version: int
    steps: tuple[Step, ...]
    start: str
    description: str = ""
    models: tuple[str, ...] = ("*",)
    severity: int = 2
    roles: tuple[str, ...] = ("act",)
    inputs: tuple[InputSpec, ...] = (InputSpec("candidate", alias="challenger"), InputSpec("stable", alias="champion"))
    when: tuple[EntryCondition, ...] = ()
    alerts: tuple[Matcher, ...] = ()
    source: str = ""
    content_hash: str = ""
    structure_hash: str = ""

    def step(self, step_id: str) -> Step:
        """The step with this id (KeyError when there is none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def applies_to(self, model: str) -> bool:
        """Whether the playbook is written for this model."""
        return "*" in self.models or model in self.models


@dataclass(frozen=True)
class LoadedPlaybook:
    """A valid playbook and the exact text it was read from (journaled with each run)."""

    playbook: Playbook
    text: str
