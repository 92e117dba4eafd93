"""Checking a playbook: a positioned tree of plain values in, a :class:`Playbook` or every problem out.

The YAML adapter (``console.adapters.playbook_yaml``) reads a file safely and
hands over a tree of :class:`MappingNode`, :class:`SequenceNode` and
:class:`ScalarNode`, each with the :class:`Position` it started at. This
module knows the playbook language (playbooks/README.md) and reports every
problem it finds, each as a :class:`Problem` that prints as
``file:line:col: steps[3].branches.no_data: message``; a malformed shape is a
problem, never an exception. A playbook never holds a secret or an address: a
name's place refuses a URL, and every text refuses a credential, both by their
shapes in :mod:`console.domain.credentials`; a human step waits at most
:data:`~console.domain.playbook.MAX_HUMAN_TIMEOUT_MINUTES`.

Step paths count from 0, as in ``steps[0]`` for the first step.

It also fingerprints a playbook: ``content_hash`` covers the file's bytes,
``structure_hash`` only what changes what a run does (prose left out), so that
a resumed run can accept a reworded file and refuse a changed one;
:func:`structure_changes` and :func:`prose_changes` say what differs.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from console.domain.alerting import Matcher, parse_matcher
from console.domain.credentials import address_in, credential_in, is_secret_key
from console.domain.playbook import (
    BRANCHES,
    CAUSES,
    DEFAULT_HUMAN_TIMEOUT,
    DEFAULT_OPERATION,
    GATE_BRANCHES,
    GATES,
    MAX_HUMAN_TIMEOUT_MINUTES,
    OPERATIONS,
    OUTCOMES,
    PROCEDURE_ACTIONS,
    TIMEOUT_ENDS,
    ActionKind,
    EntryCondition,
    InputSpec,
    Message,
    Option,
    Playbook,
    Position,
    Step,
    StepKind,
    Timeout,
)

# -- the tree the loader hands over ------------------------------------------------------------------

ScalarValue = str | int | float | bool | None
"""What a scalar resolves to under the YAML core schema (timestamps and the like stay text)."""


@dataclass(frozen=True)
class ScalarNode:
    """A single value.

    Attributes:
        value: the resolved value: text, integer, float, boolean or ``None`` (null).
        raw: the text as written (so a message can say that ``yes`` was read as true).
        position: where it starts in the file.
    """

    value: ScalarValue
    raw: str
    position: Position


@dataclass(frozen=True)
class SequenceNode:
    """A list of nodes."""

    items: tuple[Node, ...]
    position: Position


@dataclass(frozen=True)
class MappingNode:
    """Keys and values in file order; every key is a scalar, so it has its own position."""

    entries: tuple[tuple[ScalarNode, Node], ...]
    position: Position

    def get(self, key: str) -> Node | None:
        """The value of the first entry whose key is ``key``, or ``None``."""
        for key_node, value in self.entries:
            if key_node.value == key:
                return value
        return None


Node = ScalarNode | SequenceNode | MappingNode
"""Any node of the tree."""


# -- what the checker reports, and what it checks against -------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One thing wrong with a playbook file.

    Attributes:
        file: the file (as the caller named it).
        line: 1-based line, 0 when the problem is the whole file (too large, unreadable).
        column: 1-based column, 0 with line 0.
        path: where in the playbook, e.g. ``steps[3].branches.no_data`` ("" for the file itself).
        message: what is wrong, and how to fix it when that is not obvious.
        step: the id of the step ``path`` is in, when it has a valid one ("" elsewhere).
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    step: str = ""

    @property
    def field(self) -> str:
        """Where in its step the problem is (``timeout.minutes``), or ``path`` outside a step."""
        match = _STEP_PATH.match(self.path)
        return self.path[match.end():].lstrip(".") if match else self.path

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The problem as plain JSON-ready values (for ``--json`` output); ``step`` is null outside a step."""
        return {"file": self.file, "line": self.line, "column": self.column, "path": self.path,
                "step": self.step or None, "field": self.field or None, "message": self.message}


_STEP_PATH = re.compile(r"steps\[(\d+)\]")
"""The step a problem's path is in: ``steps[3]`` of ``steps[3].timeout.minutes``."""


@dataclass(frozen=True)
class CheckContext:
    """What a playbook may name, from the config.

    The defaults check without a config: every metric, endpoint and webhook
    name is accepted, the three permissions are known, and rollbacks must be
    confirmed.

    Attributes:
        metric_names: the metric catalogue; checked when it holds any name.
        role_names: the permissions a playbook's ``roles`` may list.
        endpoint_names: config ``endpoints``; ``None`` when unknown (not checked),
            an empty set when none are configured (every name refused).
        webhook_names: config ``notify.webhooks``, as ``endpoint_names``; ``copy`` is always allowed.
        require_confirmation: config ``playbooks.require_confirmation``: refuse
            ``confirm: false`` on the actions the one action procedure carries out
            (``rollback``, ``undo``, ``shadow``, ``promote``, ``fallback``, ``features``).
    """

    metric_names: frozenset[str] = frozenset()
    role_names: frozenset[str] = frozenset({"view", "act", "approve"})
    endpoint_names: frozenset[str] | None = None
    webhook_names: frozenset[str] | None = None
    require_confirmation: bool = True


# -- the language's vocabulary ----------------------------------------------------------------------

DEFAULT_INPUTS = (InputSpec("candidate", alias="challenger"), InputSpec("stable", alias="champion"))
"""The inputs of a playbook that gives none (the model's default too)."""

ID_PATTERN = re.compile(r"[a-z0-9-]+")
"""Playbook and step ids."""

OPTION_ID_PATTERN = re.compile(r"[a-z0-9_-]+")
"""A choice's option ids (they are journaled and given in answers files)."""

INPUT_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
"""Input names (``{{ inputs.NAME }}``)."""

STEP_KINDS = tuple(kind.value for kind in StepKind)
ACTION_KINDS = tuple(action.value for action in ActionKind)
VERDICTS = ("breach", "suspect", "pass", "no_data")
SUSPECT_AS = ("no_data", "fail", "pass")
ROLLBACK_MODES = ("immediate", "gradual")
DRY_RUN_MODES = ("describe", "stop")
REFERENCE_ATTRIBUTES = ("outcome", "reason", "summary")
"""``{{ steps.ID.ATTRIBUTE }}``: every step's result has all three (the runner leaves what does not apply empty)."""
INPUT_SOURCES = ("alias", "version", "previous")
"""How an input names its version: an alias's, a fixed one, or the one an alias pointed at before."""

TOP_KEYS = ("id", "title", "version", "description", "models", "severity", "roles", "inputs", "when", "alerts",
            "start", "steps")
MAX_MATCHER_PATTERN = 256
"""The longest regular expression an ``alerts:`` matcher may hold (it runs on every alert received)."""
TOP_REQUIRED = ("id", "version", "steps")
COMMON_STEP_KEYS = ("id", "kind", "title", "text")
KIND_KEYS: dict[StepKind, tuple[str, ...]] = {
    StepKind.GUIDANCE: ("next",),
    StepKind.CHECK: ("metric", "gate", "version", "segments", "suspect_as", "branches"),
    StepKind.CHOICE: ("prompt", "options", "timeout"),
    StepKind.ACTION: ("action", "confirm", "timeout", "dry_run", "branches"),
    StepKind.WAIT: ("metrics", "version", "stable_for", "every_s", "timeout", "branches"),
    StepKind.NOTIFY: ("channel", "message", "next"),
    StepKind.END: ("outcome",),
}
KIND_REQUIRED: dict[StepKind, tuple[str, ...]] = {
    StepKind.GUIDANCE: ("text", "next"),
    StepKind.CHECK: ("branches",),  # and a metric or a gate: see step_rules
    StepKind.CHOICE: ("prompt", "options"),
    StepKind.ACTION: ("action", "dry_run", "branches"),
    StepKind.WAIT: ("metrics", "timeout", "branches"),
    StepKind.NOTIFY: ("message", "next"),
    StepKind.END: ("outcome",),
}
ACTION_KEYS: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.ROLLBACK: ("leave", "target", "mode"),
    ActionKind.UNDO: ("of",),
    ActionKind.TAG: ("version", "key", "value"),
    ActionKind.HTTP: ("endpoint", "body"),
    ActionKind.SHADOW: ("operation", "version", "percent"),
    ActionKind.PROMOTE: ("operation",),
    ActionKind.FALLBACK: ("operation", "seconds"),
    ActionKind.FEATURES: ("operation", "to", "view", "global"),
}
ACTION_REQUIRED: dict[ActionKind, tuple[str, ...]] = {
    ActionKind.ROLLBACK: (),
    ActionKind.UNDO: ("of",),
    ActionKind.TAG: ("key", "value"),
    ActionKind.HTTP: ("endpoint",),
    ActionKind.SHADOW: ("operation",),
    ActionKind.PROMOTE: (),
    ActionKind.FALLBACK: ("operation",),
    ActionKind.FEATURES: (),
}
OPERATION_KEYS: dict[str, dict[ActionKind, tuple[str, ...]]] = {
    "version": {ActionKind.SHADOW: ("start",)},
    "percent": {ActionKind.SHADOW: ("start",)},
    "seconds": {ActionKind.FALLBACK: ("drill",)},
    "to": {ActionKind.FEATURES: ("rollback",)},
    "view": {ActionKind.FEATURES: ("rollback",)},
    "global": {ActionKind.FEATURES: ("rollback",)},
}
"""Action fields that apply to some operations only: key -> action -> the operations that take it."""
OPERATION_REQUIRED: dict[tuple[ActionKind, str], tuple[str, ...]] = {
    (ActionKind.SHADOW, "start"): ("version",),
    (ActionKind.FALLBACK, "drill"): ("seconds",),
}
"""Fields an operation cannot do without: which version to shadow, how long to drill."""
GATE_CHECK_EXCLUDES = ("metric", "version", "segments", "suspect_as")
"""Check fields that judge a metric's cells: a gate check has none of them (the gate judges its own segments)."""
MAX_DRILL_S = 600
"""A drill takes the primaries out on purpose: at most ten minutes of it from one step."""
NEW_FIELDS = ("gate", "operation", "percent", "seconds", "to", "view", "whole_view")
"""Step fields added after playbooks were first journaled: left out of the structure when unset, so the
structure of a playbook that does not use them is what it was."""
STEP_ATTRIBUTES = {"global": "whole_view"}
"""Step keys whose :class:`Step` attribute has another name (``global`` is a Python keyword)."""
ALL_STEP_KEYS = frozenset(COMMON_STEP_KEYS).union(*KIND_KEYS.values(), *ACTION_KEYS.values())
MESSAGE_KEYS = ("summary", "what_changed", "why", "user_impact", "next_update")
PROSE_STEP_KEYS = frozenset({"title", "text", "prompt", "message"})
"""Step fields that only say things: changing them never changes what a run does."""

_MISSING_HINTS = {
    "next": "only an end step may stop; say which step comes next",
    "branches": "say where each outcome goes",
    "timeout": "timeout: {minutes: N}",
    "outcome": f"one of {', '.join(OUTCOMES)}",
    "kind": f"one of {', '.join(kind.value for kind in StepKind)}",
    "action": f"one of {', '.join(action.value for action in ActionKind)}",
    "dry_run": "describe (say what it would do and go on) or stop (end the drill here)",
    "version": "the input naming the version to put in shadow, e.g. version: candidate",
    "seconds": "how long the primaries stay out, e.g. seconds: 10",
}

_REFERENCE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_MAX_SHOWN = 60
_MAX_LISTED = 10
_MAX_DIFF_SHOWN = 100
_SUGGESTION_BUDGET = 100_000
"""Comparisons "did you mean" may make in one file (about 0.2 s): a file of a thousand typos stays fast."""


# -- helpers ----------------------------------------------------------------------------------------

def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _short(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _describe(node: Node) -> str:
    """What a node is, for a message: ``a list``, ``yes (a boolean)``, ``the text 'x'``."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    value = node.value
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{_short(node.raw)} (a boolean)"
    if isinstance(value, int | float):
        return f"{_short(node.raw)} (a number)"
    return f"the text {_short(value)!r}"


def _quote_hint(node: Node) -> str:
    """Why a plain ``yes`` or ``1.0`` is not text, and how to keep it text."""
    if isinstance(node, ScalarNode) and node.value is not None and not isinstance(node.value, str):
        return f" (YAML reads {_short(node.raw)} as a {'boolean' if isinstance(node.value, bool) else 'number'}; " \
               f"quote it to keep it text: '{_short(node.raw)}')"
    return ""


def _a(word: str) -> str:
    """``a check``, ``an end``."""
    return f"{'an' if word[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {word}"


def _default_title(step_id: str) -> str:
    """``check-errors`` -> ``Check errors``."""
    return step_id.replace("-", " ").capitalize()


@dataclass
class _StepInfo:
    """What the first pass learns about a step, for references and the graph."""

    index: int
    node: MappingNode
    path: str
    id: str | None = None
    kind: StepKind | None = None
    action: ActionKind | None = None
    targets: list[str] = field(default_factory=list)


Fields = dict[str, tuple[ScalarNode, Node]]


# -- the checker ------------------------------------------------------------------------------------

class _Checker:
    """One playbook's check: collects every problem while it builds the steps."""

    def __init__(self, source: str, context: CheckContext) -> None:
        self.source = source
        self.context = context
        self.problems: list[Problem] = []
        self.inputs: dict[str, InputSpec] = {}
        self.declared_inputs: set[str] = set()  # inputs, and those given but malformed (already reported)
        self.infos: list[_StepInfo] = []
        self.by_id: dict[str, _StepInfo] = {}
        self.suggestion_budget = _SUGGESTION_BUDGET

    # -- reporting ---------------------------------------------------------------------------------

    def closest(self, word: str, candidates: Collection[str]) -> str | None:
        """The candidate ``word`` most likely misspells, within the file's budget of comparisons."""
        if not candidates or len(candidates) > self.suggestion_budget:
            return None
        self.suggestion_budget -= len(candidates)
        close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
        return close[0] if close else None

    def did_you_mean(self, word: str, candidates: Collection[str]) -> str:
        close = self.closest(word, candidates)
        return f" (did you mean {close!r}?)" if close else ""

    def unknown(self, noun: str, word: str, candidates: Collection[str]) -> str:
        """``unknown kind 'chek' (did you mean 'check'?)``, or the choices when none is close and they are few."""
        hint = self.did_you_mean(word, candidates)
        if hint:
            return f"unknown {noun} {_short(word)!r}{hint}"
        if not candidates:
            return f"unknown {noun} {_short(word)!r} (none are configured)"
        if len(candidates) > _MAX_LISTED:
            return f"unknown {noun} {_short(word)!r}"
        listed = sorted(candidates) if isinstance(candidates, set | frozenset) else candidates
        return f"unknown {noun} {_short(word)!r}: expected one of {', '.join(listed)}"

    def misspelt(self, key: str, node: MappingNode, found: Mapping[str, object]) -> bool:
        """Whether a key that is not ``key`` looks like it (its "did you mean" problem says enough)."""
        others = [k.value for k, _ in node.entries if isinstance(k.value, str) and k.value not in found]
        return self.closest(key, others) is not None

    def in_step(self, problem: Problem) -> Problem:
        """The problem with the id of the step it is in, when that step has a valid one."""
        match = _STEP_PATH.match(problem.path)
        index = int(match.group(1)) if match else -1
        step_id = self.infos[index].id if 0 <= index < len(self.infos) else None
        return replace(problem, step=step_id) if step_id else problem

    def add(self, where: Node | Position, path: str, message: str) -> None:
        position = where if isinstance(where, Position) else where.position
        self.problems.append(Problem(self.source, position.line, position.column, path, message))

    # -- mappings ----------------------------------------------------------------------------------

    def mapping(self, node: Node, path: str, what: str) -> MappingNode | None:
        if isinstance(node, MappingNode):
            return node
        self.add(node, path, f"{what} must be a mapping of keys, found {_describe(node)}")
        return None

    def entries(self, node: MappingNode, path: str, allowed: Collection[str], what: str,
                elsewhere: Collection[str] = ()) -> Fields:
        """The allowed keys' key and value nodes; every other key (or a repeated one) is a problem."""
        found: Fields = {}
        for key_node, value in node.entries:
            key = key_node.value
            if not isinstance(key, str):
                self.add(key_node, path, f"a key must be text, found {_describe(key_node)}{_quote_hint(key_node)}")
                continue
            where = _join(path, key)
            if key in found:
                self.add(key_node, where, f"duplicate key {key!r} (first at line {found[key][0].position.line})")
            elif key in allowed:
                found[key] = (key_node, value)
            elif key in elsewhere:
                self.add(key_node, where, f"{key!r} does not apply to {what}")
            else:
                self.add(key_node, where, f"unknown key {_short(key)!r} in {what}{self.did_you_mean(key, allowed)}")
        return found

    def require(self, node: MappingNode, path: str, found: Fields, required: Iterable[str], what: str,
                hints: Mapping[str, str] = _MISSING_HINTS) -> None:
        for key in required:
            if key not in found and not self.misspelt(key, node, found):
                hint = hints.get(key)
                self.add(node, _join(path, key), f"{what} needs {key!r}" + (f": {hint}" if hint else ""))

    # -- scalars -----------------------------------------------------------------------------------

    def text(self, node: Node, path: str, *, required: bool = False) -> str | None:
        """Text (prose or a name). ``required``: it may not be empty. Text that holds a credential is refused."""
        if isinstance(node, ScalarNode) and isinstance(node.value, str):
            if required and not node.value.strip():
                self.add(node, path, "may not be empty")
                return None
            if self.holds_credential(node, path, node.value):
                return None
            return node.value
        self.add(node, path, f"must be text, found {_describe(node)}{_quote_hint(node)}")
        return None

    def holds_credential(self, where: Node, path: str, value: str) -> bool:
        """Whether ``value`` looks like it holds a secret (reported without the value)."""
        found = credential_in(value)
        if found is not None:
            self.add(where, path, f"looks like {found}: a playbook never holds a secret (the config reads "
                                  f"credentials from the environment or a file; a webhook or endpoint carries "
                                  f"its own)")
        return found is not None

    def name(self, node: Node, path: str, where: str) -> str | None:
        """A configured name: never an address (which might carry a secret, so it is not echoed) nor empty.

        Args:
            node: the value.
            path: where it is, for a problem.
            where: where such names come from, for the message (``config notify.webhooks``).
        """
        if isinstance(node, ScalarNode) and isinstance(node.value, str):
            address = address_in(node.value)
            if address is not None:
                self.add(node, path, f"looks like {address} where a name belongs: a playbook never holds an "
                                     f"address; name one from {where}")
                return None
        return self.text(node, path, required=True)

    def prose(self, node: Node, path: str, *, required: bool = False) -> str | None:
        """Text that may hold ``{{ references }}`` (they are checked)."""
        value = self.text(node, path, required=required)
        if value is not None:
            self.references(node, path, value)
        return value

    def identifier(self, node: Node, path: str, pattern: re.Pattern[str], noun: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        if not pattern.fullmatch(value):
            allowed = "lower-case letters, digits, '-' and '_'" if "_" in pattern.pattern else \
                "lower-case letters, digits and '-'"
            self.add(node, path, f"{noun} {_short(value)!r} may hold only {allowed}")
            return None
        return value

    def integer(self, node: Node, path: str, low: int, high: int | None = None) -> int | None:
        if isinstance(node, ScalarNode) and isinstance(node.value, int) and not isinstance(node.value, bool):
            if node.value < low or (high is not None and node.value > high):
                limit = f"between {low} and {high}" if high is not None else f"at least {low}"
                self.add(node, path, f"must be {limit}, found {_short(node.raw)}")
                return None
            return node.value
        self.add(node, path, f"must be a whole number, found {_describe(node)}")
        return None

    def positive(self, node: Node, path: str) -> float | None:
        """A finite number greater than 0."""
        value = node.value if isinstance(node, ScalarNode) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.add(node, path, f"must be a number, found {_describe(node)}")
            return None
        if not math.isfinite(value) or value <= 0:
            self.add(node, path, f"must be greater than 0 (and finite), found {_short(node.raw)}"
                     if isinstance(node, ScalarNode) else "must be greater than 0")
            return None
        return float(value)

    def boolean(self, node: Node, path: str) -> bool | None:
        if isinstance(node, ScalarNode) and isinstance(node.value, bool):
            return node.value
        self.add(node, path, f"must be true or false, found {_describe(node)}")
        return None

    def one_of(self, node: Node, path: str, allowed: Collection[str], noun: str) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        if value not in allowed:
            self.add(node, path, self.unknown(noun, value, allowed))
            return None
        return value

    def text_list(self, node: Node, path: str, *, non_empty: bool = False) -> list[tuple[ScalarNode, str]] | None:
        """A list of texts, each with its node (for messages about one item)."""
        if not isinstance(node, SequenceNode):
            self.add(node, path, f"must be a list, found {_describe(node)}")
            return None
        if non_empty and not node.items:
            self.add(node, path, "may not be an empty list")
            return None
        found: list[tuple[ScalarNode, str]] = []
        for index, item in enumerate(node.items):
            value = self.text(item, f"{path}[{index}]", required=True)
            if value is not None and isinstance(item, ScalarNode):
                found.append((item, value))
        return found

    # -- names from elsewhere ----------------------------------------------------------------------

    def step_ref(self, node: Node, path: str) -> str | None:
        """A step id that exists."""
        value = self.text(node, path)
        if value is None:
            return None
        if value not in self.by_id:
            self.add(node, path, self.unknown("step", value, self.by_id))
            return None
        return value

    def input_ref(self, node: Node, path: str, *, allow_all: bool = False) -> str | None:
        value = self.text(node, path)
        if value is None:
            return None
        known = [*self.inputs, "all"] if allow_all else list(self.inputs)
        if value in self.declared_inputs and value not in self.inputs:
            return None  # malformed where it is declared, and reported there
        if value not in known:
            self.add(node, path, self.unknown("input", value, known) + " (inputs name the versions a run resolves)")
            return None
        return value

    def default_input(self, node: MappingNode, path: str, key: str, default: str) -> None:
        """A field left out defaults to an input: that input must exist."""
        if default not in self.declared_inputs:
            self.add(node, _join(path, key), f"{key!r} defaults to input {default!r}, which this playbook's inputs "
                                              f"do not define; name one of: {', '.join(self.inputs) or 'none'}")

    def metric(self, node: Node, path: str) -> str | None:
        value = self.name(node, path, "the metric catalogue")
        if value is None:
            return None
        known = self.context.metric_names
        if known and value not in known:
            self.add(node, path, self.unknown("metric", value, known) + " (not in the metric catalogue)")
            return None
        return value

    def metric_list(self, node: Node, path: str, *, non_empty: bool) -> tuple[str, ...] | None:
        items = self.text_list(node, path, non_empty=non_empty)
        if items is None:
            return None
        names = [self.metric(item, f"{path}[{index}]") for index, (item, _) in enumerate(items)]
        return tuple(name for name in names if name is not None)

    # -- references in text ------------------------------------------------------------------------

    def references(self, node: Node, path: str, text: str) -> None:
        """Every ``{{ name }}`` in ``text`` must name something a run knows."""
        if "{{" not in text:
            return
        for match in _REFERENCE.finditer(text):
            problem = self.reference_problem(match.group(1).strip())
            if problem:
                self.add(node, path, problem)
        if "{{" in _REFERENCE.sub("", text):
            self.add(node, path, "'{{' is never closed: a reference is written {{ name }}")

    def reference_problem(self, name: str) -> str | None:
        shown = f"{{{{ {_short(name)} }}}}"
        if name in ("model", "incident"):
            return None
        parts = name.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            if parts[1] in self.declared_inputs:
                return None
            return f"{shown}: no input {parts[1]!r}{self.did_you_mean(parts[1], self.inputs)}"
        if parts[0] == "steps" and len(parts) == 3:
            step_id, attribute = parts[1], parts[2]
            info = self.by_id.get(step_id)
            if info is None:
                return f"{shown}: no step {step_id!r}{self.did_you_mean(step_id, self.by_id)}"
            if attribute not in REFERENCE_ATTRIBUTES:
                hint = self.did_you_mean(attribute, REFERENCE_ATTRIBUTES)
                return f"{shown}: a step's result is its outcome, reason or summary{hint}"
            return None
        count = 2 + len(self.inputs) + len(self.by_id) * len(REFERENCE_ATTRIBUTES)
        valid = [] if count > self.suggestion_budget else \
            ["model", "incident", *(f"inputs.{n}" for n in self.inputs),
             *(f"steps.{i}.{a}" for i in self.by_id for a in REFERENCE_ATTRIBUTES)]
        return (f"unknown reference {shown}: a reference is model, incident, inputs.NAME or "
                f"steps.ID.outcome|reason|summary{self.did_you_mean(name, valid)}")

    # -- the playbook ------------------------------------------------------------------------------

    def run(self, root: Node | None, content: bytes) -> Playbook | None:
        if root is None or (isinstance(root, ScalarNode) and root.value is None):
            self.add(Position(0, 0), "", "the file is empty: a playbook is a mapping with at least id, version "
                                         "and steps")
            return None
        if not isinstance(root, MappingNode):
            self.add(root, "", f"a playbook must be a mapping of keys (id, version, steps, ...), "
                               f"found {_describe(root)}")
            return None
        found = self.entries(root, "", TOP_KEYS, "a playbook")
        self.require(root, "", found, TOP_REQUIRED, "a playbook")

        def value(key: str) -> Node | None:
            return found[key][1] if key in found else None

        self.read_inputs(value("inputs"))
        steps_node = value("steps")
        if steps_node is not None and not isinstance(steps_node, SequenceNode):
            self.add(steps_node, "steps", f"must be a list of steps, found {_describe(steps_node)}")
            steps_node = None
        if isinstance(steps_node, SequenceNode):
            if not steps_node.items:
                self.add(steps_node, "steps", "may not be an empty list")
            self.index_steps(steps_node)

        fields: dict[str, Any] = {}
        node = value("id")
        if node is not None:
            fields["id"] = self.identifier(node, "id", ID_PATTERN, "id")
        node = value("title")
        if node is not None:
            fields["title"] = self.prose(node, "title", required=True)
        node = value("version")
        if node is not None:
            fields["version"] = self.integer(node, "version", 1)
        node = value("description")
        if node is not None:
            fields["description"] = self.prose(node, "description")
        node = value("models")
        if node is not None:
            models = self.text_list(node, "models", non_empty=True)
            if models is not None:
                fields["models"] = tuple(name for _, name in models)
        node = value("severity")
        if node is not None:
            fields["severity"] = self.integer(node, "severity", 1, 4)
        node = value("roles")
        if node is not None:
            fields["roles"] = self.read_roles(node)
        node = value("when")
        if node is not None:
            fields["when"] = self.read_when(node)
        node = value("alerts")
        if node is not None:
            fields["alerts"] = self.read_alert_matchers(node)
        start: str | None = None
        node = value("start")
        if node is not None:
            start = self.step_ref(node, "start")
        elif self.infos and self.infos[0].id is not None:
            start = self.infos[0].id
        steps: list[Step] = []
        if isinstance(steps_node, SequenceNode):
            for index, item in enumerate(steps_node.items):
                info = self.infos[index] if index < len(self.infos) else None
                step = self.read_step(item, f"steps[{index}]", info)
                if step is not None:
                    steps.append(step)
            self.check_graph(steps_node, start)

        if self.problems or start is None or any(fields.get(k) is None for k in ("id", "version")):
            return None
        inputs = tuple(self.inputs.values())
        playbook = Playbook(
            id=fields["id"], title=fields.get("title") or fields["id"], version=fields["version"],
            steps=tuple(steps), start=start, description=fields.get("description") or "",
            models=fields.get("models", ("*",)), severity=fields.get("severity", 2),
            roles=fields.get("roles", ("act",)), inputs=inputs, when=fields.get("when", ()),
            alerts=fields.get("alerts") or (), source=self.source, content_hash=hashlib.sha256(content).hexdigest(),
        )
        return replace(playbook, structure_hash=structure_hash(playbook))

    def read_roles(self, node: Node) -> tuple[str, ...] | None:
        items = self.text_list(node, "roles")
        if items is None:
            return None
        known = self.context.role_names
        roles = []
        for index, (item, name) in enumerate(items):
            if name not in known:
                self.add(item, f"roles[{index}]", self.unknown("role", name, sorted(known)))
            else:
                roles.append(name)
        return tuple(roles)

    def read_inputs(self, node: Node | None) -> None:
        """``inputs``: absent means the two defaults; given means exactly these."""
        if node is None:
            self.inputs = {spec.name: spec for spec in DEFAULT_INPUTS}
            self.declared_inputs = set(self.inputs)
            return
        mapping = self.mapping(node, "inputs", "inputs")
        if mapping is None:
            return
        for key_node, spec_node in mapping.entries:
            name = key_node.value
            path = _join("inputs", str(name))
            if not isinstance(name, str) or not INPUT_NAME_PATTERN.fullmatch(name) or name == "all":
                self.add(key_node, path, f"input name {_short(key_node.raw)!r} must start with a lower-case "
                                         f"letter and hold only lower-case letters, digits, '-' and '_' "
                                         f"(and not be 'all')")
                continue
            if name in self.declared_inputs:
                self.add(key_node, path, f"duplicate input {name!r}")
                continue
            self.declared_inputs.add(name)
            spec = self.mapping(spec_node, path, f"input {name!r}")
            if spec is None:
                continue
            found = self.entries(spec, path, INPUT_SOURCES, f"input {name!r}")
            if len(found) != 1:
                if not found and any(self.misspelt(source, spec, found) for source in INPUT_SOURCES):
                    continue  # its "did you mean" says it
                self.add(spec, path, f"input {name!r} needs exactly one of alias ({{alias: challenger}}), "
                                     f"version ({{version: \"3\"}}) or previous ({{previous: champion}})")
                continue
            key, (_, raw) = next(iter(found.items()))
            if key == "version" and isinstance(raw, ScalarNode) and isinstance(raw.value, int) \
                    and not isinstance(raw.value, bool) and raw.value >= 0:
                given: str | None = raw.raw
            else:
                given = self.text(raw, _join(path, key), required=True)
            if given is not None:
                self.inputs[name] = InputSpec(name, **{key: given})

    def read_when(self, node: Node) -> tuple[EntryCondition, ...] | None:
        if not isinstance(node, SequenceNode):
            self.add(node, "when", f"must be a list of conditions, found {_describe(node)}")
            return None
        conditions = []
        for index, item in enumerate(node.items):
            path = f"when[{index}]"
            mapping = self.mapping(item, path, "a condition")
            if mapping is None:
                continue
            found = self.entries(mapping, path, ("version", "verdict", "metrics", "diagnosis"), "a condition")
            if "diagnosis" in found:
                condition = self.read_diagnosis_condition(found, path)
                if condition is not None:
                    conditions.append(condition)
                continue
            self.require(mapping, path, found, ("version", "verdict"), "a condition")
            version = self.input_ref(found["version"][1], _join(path, "version"), allow_all=True) \
                if "version" in found else None
            verdict = self.one_of(found["verdict"][1], _join(path, "verdict"), VERDICTS, "verdict") \
                if "verdict" in found else None
            metrics: tuple[str, ...] | None = ()
            if "metrics" in found:
                metrics = self.metric_list(found["metrics"][1], _join(path, "metrics"), non_empty=False)
            if version is not None and verdict is not None and metrics is not None:
                conditions.append(EntryCondition(version, verdict, metrics))
        return tuple(conditions)

    def read_alert_matchers(self, node: Node) -> tuple[Matcher, ...] | None:
        """``alerts``: label matchers in Alertmanager's text form, all of which an alert's labels must satisfy."""
        items = self.text_list(node, "alerts", non_empty=True)
        if items is None:
            return None
        matchers = []
        for index, (item, text) in enumerate(items):
            path = f"alerts[{index}]"
            try:
                matcher = parse_matcher(text)
            except ValueError:
                self.add(item, path, f"not a label matcher: {_short(text)!r} (write name=\"value\", name!=\"value\", "
                                     f"name=~\"regex\" or name!~\"regex\", as Alertmanager does)")
                continue
            if matcher.op in ("=~", "!~"):
                if len(matcher.value) > MAX_MATCHER_PATTERN:
                    self.add(item, path, f"the regular expression is longer than {MAX_MATCHER_PATTERN} characters")
                    continue
                try:
                    re.compile(matcher.value)
                except re.error as exc:
                    self.add(item, path, f"not a regular expression: {exc}")
                    continue
            matchers.append(matcher)
        return tuple(matchers)

    def read_diagnosis_condition(self, found: Fields, path: str) -> EntryCondition | None:
        """``{diagnosis: feature}``: the model's breach is blamed on this cause now; it stands alone."""
        for key in ("version", "verdict", "metrics"):
            if key in found:
                self.add(found[key][0], _join(path, key),
                         f"{key!r} does not apply to a diagnosis condition: write it as its own condition "
                         "({diagnosis: feature} is one, {version: all, verdict: breach} another)")
        cause = self.one_of(found["diagnosis"][1], _join(path, "diagnosis"), CAUSES, "diagnosis")
        if cause is None or any(key in found for key in ("version", "verdict", "metrics")):
            return None
        return EntryCondition(diagnosis=cause)

    # -- steps -------------------------------------------------------------------------------------

    def index_steps(self, steps: SequenceNode) -> None:
        """First pass: every step's id, kind and targets, for references and the graph (nothing else reported)."""
        for index, item in enumerate(steps.items):
            if not isinstance(item, MappingNode):
                self.infos.append(_StepInfo(index, MappingNode((), item.position), f"steps[{index}]"))
                continue
            info = _StepInfo(index, item, f"steps[{index}]")
            self.infos.append(info)
            id_node = item.get("id")
            if isinstance(id_node, ScalarNode) and isinstance(id_node.value, str) \
                    and ID_PATTERN.fullmatch(id_node.value):
                first = self.by_id.get(id_node.value)
                if first is not None:
                    self.add(id_node, f"{info.path}.id", f"duplicate step id {id_node.value!r} "
                                                         f"(first at line {first.node.position.line})")
                else:
                    info.id = id_node.value
                    self.by_id[info.id] = info
            kind = item.get("kind")
            if isinstance(kind, ScalarNode) and kind.value in STEP_KINDS:
                info.kind = StepKind(str(kind.value))
            action = item.get("action")
            if isinstance(action, ScalarNode) and action.value in ACTION_KINDS:
                info.action = ActionKind(str(action.value))
            info.targets = list(_raw_targets(item))

    def read_step(self, item: Node, path: str, info: _StepInfo | None) -> Step | None:
        if not isinstance(item, MappingNode):
            self.add(item, path, f"a step must be a mapping (id, kind, ...), found {_describe(item)}")
            return None
        kind_node = item.get("kind")
        kind_name = None
        if kind_node is not None:
            kind_name = self.one_of(kind_node, _join(path, "kind"), STEP_KINDS, "kind")
        if kind_name is None:
            if kind_node is None:
                self.add(item, _join(path, "kind"), f"a step needs 'kind': {_MISSING_HINTS['kind']}")
            id_node = item.get("id")
            if id_node is None:
                self.add(item, _join(path, "id"), "a step needs 'id'")
            else:
                self.identifier(id_node, _join(path, "id"), ID_PATTERN, "step id")
            return None
        kind = StepKind(kind_name)
        action: ActionKind | None = None
        allowed = [*COMMON_STEP_KEYS, *KIND_KEYS[kind]]
        required = ["id", "kind", *KIND_REQUIRED[kind]]
        what = f"{_a(kind)} step"
        if kind is StepKind.ACTION:
            action_node = item.get("action")
            name = self.one_of(action_node, _join(path, "action"), ACTION_KINDS, "action") \
                if action_node is not None else None
            if name is None:
                allowed += [key for keys in ACTION_KEYS.values() for key in keys if key not in allowed]
            else:
                action = ActionKind(name)
                allowed += [key for key in ACTION_KEYS[action] if key not in allowed]
                required += ACTION_REQUIRED[action]
                what = f"{_a(action)} action"
        found = self.entries(item, path, allowed, what, ALL_STEP_KEYS)
        self.require(item, path, found, required, what)

        values: dict[str, Any] = {"kind": kind, "action": action}
        for key, (_, node) in found.items():
            self.read_field(kind, action, key, node, _join(path, key), values)
        if "branches" in found:
            gate = values.get("gate") if kind is StepKind.CHECK else None
            if not (kind is StepKind.CHECK and "gate" in found and gate is None):  # an unknown gate is reported
                values["branches"] = self.read_branches(found["branches"][1], _join(path, "branches"), kind, gate)
        if kind is StepKind.CHOICE and "timeout" in found:
            option_ids = [option.id for option in values.get("options", ())]
            values["timeout"] = self.read_timeout(found["timeout"][1], _join(path, "timeout"), kind, option_ids)
        elif "timeout" in found:
            values["timeout"] = self.read_timeout(found["timeout"][1], _join(path, "timeout"), kind, [])
        self.step_rules(item, path, kind, action, found, values)
        if values.get("id") is None:
            return None
        values.setdefault("title", _default_title(values["id"]))
        if info is not None and info.id is None:
            return None  # a duplicate id, already reported
        # A field that did not read keeps its default: the playbook is refused anyway.
        return Step(position=item.position, **{k: v for k, v in values.items() if v is not None})

    def read_field(self, kind: StepKind, action: ActionKind | None, key: str, node: Node, path: str,
                   values: dict[str, Any]) -> None:
        """One step field into ``values`` (``None`` when it did not read)."""
        match key:
            case "id":
                values["id"] = self.identifier(node, path, ID_PATTERN, "step id")
            case "kind" | "action" | "timeout" | "branches":
                pass  # read by the caller
            case "title":
                values["title"] = self.prose(node, path, required=True)
            case "text":
                values["text"] = self.prose(node, path, required=kind is StepKind.GUIDANCE)
            case "prompt":
                values["prompt"] = self.prose(node, path, required=True)
            case "next":
                values["next"] = self.step_ref(node, path)
            case "metric":
                values["metric"] = self.metric(node, path)
            case "gate":
                values["gate"] = self.one_of(node, path, GATES, "gate")
            case "operation":
                if action in OPERATIONS:
                    values["operation"] = self.one_of(node, path, OPERATIONS[action], "operation")
                else:
                    values["operation"] = self.text(node, path)
            case "percent":
                values["percent"] = self.integer(node, path, 1, 100)
            case "to":
                values["to"] = self.view_version(node, path)
            case "view":
                values["view"] = self.name(node, path, "the model's feature views")
            case "global":
                values["whole_view"] = self.boolean(node, path)
            case "seconds":
                seconds = self.positive(node, path)
                if seconds is not None and seconds > MAX_DRILL_S:
                    self.add(node, path, f"a drill of {seconds:g} s is too long: at most {MAX_DRILL_S} s "
                                         "(it takes the primaries out on purpose)")
                    seconds = None
                values["seconds"] = seconds
            case "metrics":
                values["metrics"] = self.metric_list(node, path, non_empty=True)
            case "version" | "leave" | "target":
                values[key] = self.input_ref(node, path)
            case "segments":
                segments = self.text_list(node, path)
                values["segments"] = None if segments is None else tuple(name for _, name in segments)
            case "suspect_as":
                values["suspect_as"] = self.one_of(node, path, SUSPECT_AS, "suspect_as")
            case "options":
                values["options"] = self.read_options(node, path)
            case "confirm":
                values["confirm"] = self.boolean(node, path)
            case "dry_run":
                values["dry_run"] = self.one_of(node, path, DRY_RUN_MODES, "dry_run")
            case "mode":
                values["mode"] = self.one_of(node, path, ROLLBACK_MODES, "mode")
            case "of":
                values["of"] = self.read_undo_of(node, path)
            case "key":
                values["key"] = self.text(node, path, required=True)
            case "value":
                if isinstance(node, ScalarNode) and isinstance(node.value, int | float) \
                        and not isinstance(node.value, bool):
                    values["value"] = node.raw
                else:
                    values["value"] = self.prose(node, path)
            case "endpoint":
                values["endpoint"] = self.named(node, path, self.context.endpoint_names, "endpoint",
                                                "config endpoints")
            case "body":
                values["body"] = self.read_body(node, path)
            case "stable_for":
                values["stable_for"] = self.integer(node, path, 1)
            case "every_s":
                values["every_s"] = self.positive(node, path)
            case "channel":
                known = None if self.context.webhook_names is None else {*self.context.webhook_names, "copy"}
                values["channel"] = self.named(node, path, known, "channel", "config notify.webhooks, or copy")
            case "message":
                values["message"] = self.read_message(node, path)
            case "outcome":
                values["outcome"] = self.one_of(node, path, OUTCOMES, "outcome")

    def step_rules(self, item: MappingNode, path: str, kind: StepKind, action: ActionKind | None, found: Fields,
                   values: dict[str, Any]) -> None:
        """Rules that span fields: defaults that name inputs, a check's metric or gate, operations, confirmation,
        timeouts."""
        gate_check = kind is StepKind.CHECK and "gate" in found
        if kind is StepKind.CHECK:
            self.check_subject(item, path, found)
        if (kind in (StepKind.CHECK, StepKind.WAIT) and not gate_check) or action is ActionKind.TAG:
            if "version" not in found:
                self.default_input(item, path, "version", "candidate")
        if action in OPERATIONS:
            self.operation_rules(item, path, action, found, values)
        if action is ActionKind.ROLLBACK:
            for key, default in (("leave", "candidate"), ("target", "stable")):
                if key not in found:
                    self.default_input(item, path, key, default)
            leave = values.get("leave", "candidate" if "leave" not in found else None)
            target = values.get("target", "stable" if "target" not in found else None)
            if leave is not None and leave == target:
                self.add(item, path, f"leave and target are the same input ({leave!r}): a rollback goes from one "
                                     f"version to another")
        if kind is StepKind.CHOICE and "timeout" not in found:
            values["timeout"] = DEFAULT_HUMAN_TIMEOUT
        if kind is StepKind.ACTION:
            confirm = values.get("confirm", True if "confirm" not in found else None)
            if confirm and "timeout" not in found:
                values["timeout"] = DEFAULT_HUMAN_TIMEOUT
            if confirm is False and action in PROCEDURE_ACTIONS and self.context.require_confirmation:
                self.add(found["confirm"][1], _join(path, "confirm"),
                         f"confirm: false is refused for {_a(str(action))}"
                         f"{' action' if action is ActionKind.FEATURES else ''}: "
                         f"config playbooks.require_confirmation is true")
        if kind is StepKind.WAIT:
            timeout = values.get("timeout")
            stable_for = values.get("stable_for", 3 if "stable_for" not in found else None)
            every_s = values.get("every_s", 5.0 if "every_s" not in found else None)
            # The first evaluation is at once: stable_for of them span (stable_for - 1) intervals.
            needed_s = (stable_for - 1) * every_s if stable_for and every_s else 0
            if isinstance(timeout, Timeout) and needed_s > timeout.minutes * 60:
                self.add(item, _join(path, "timeout"),
                         f"can never be stable: {stable_for} evaluations {every_s:g} s apart take {needed_s:g} s, "
                         f"longer than the timeout ({timeout.minutes * 60:g} s)")

    def check_subject(self, item: MappingNode, path: str, found: Fields) -> None:
        """A check judges one thing: a catalogue metric's cells, or a gate (none of the metric's fields then)."""
        if "gate" in found:
            if "metric" in found:
                self.add(found["gate"][0], _join(path, "gate"),
                         "a check judges a metric or a gate, not both: make it two checks")
                return
            gate_node = found["gate"][1]
            gate = gate_node.value if isinstance(gate_node, ScalarNode) else None
            why = ("the diagnosis judges every version in every segment itself" if gate == "diagnosis" else
                   "the router's primaries are judged as a whole" if gate == "fallback" else
                   "the gate judges the shadow against the champion in every segment itself")
            for key in GATE_CHECK_EXCLUDES:
                if key in found:
                    self.add(found[key][0], _join(path, key), f"{key!r} does not apply to a gate check: {why}")
            return
        if "metric" not in found and not any(self.misspelt(key, item, found) for key in ("metric", "gate")):
            self.add(item, _join(path, "metric"), "a check step needs 'metric' (a catalogue metric) or 'gate' "
                                                  f"({', '.join(GATES)}: the shadow's promotion gate, "
                                                  "whether the router's serving primaries are up, or who the "
                                                  "breach is blamed on)")

    def operation_rules(self, item: MappingNode, path: str, action: ActionKind, found: Fields,
                        values: dict[str, Any]) -> None:
        """An operation's own fields: given only where they apply, present where it needs them; the default."""
        operation = values.get("operation")
        if "operation" not in found:
            operation = DEFAULT_OPERATION.get(action)
            values["operation"] = operation
        if operation is None:
            return  # missing (reported as required) or unknown (reported where it is)
        for key, by_action in OPERATION_KEYS.items():
            allowed = by_action.get(action)
            if allowed is not None and key in found and operation not in allowed:
                self.add(found[key][0], _join(path, key),
                         f"{key!r} applies only to operation {' or '.join(allowed)}, not {operation}")
        for key in OPERATION_REQUIRED.get((action, operation), ()):
            if key not in found and not self.misspelt(key, item, found):
                self.add(item, _join(path, key), f"{_a(str(action))} {operation} needs {key!r}: "
                                                 f"{_MISSING_HINTS[key]}")

    def view_version(self, node: Node, path: str) -> int | None:
        """A feature view version: ``2`` or ``v2``."""
        if isinstance(node, ScalarNode) and isinstance(node.value, int) and not isinstance(node.value, bool):
            return self.integer(node, path, 0)
        text = self.text(node, path, required=True)
        if text is None:
            return None
        cleaned = text.strip().lower().removeprefix("v")
        if not cleaned.isdigit():
            self.add(node, path, f"{_short(text)!r} is not a feature view version: write it as v2 or 2")
            return None
        return int(cleaned)

    def read_branches(self, node: Node, path: str, kind: StepKind, gate: str | None = None) -> dict[str, str] | None:
        names = GATE_BRANCHES.get(gate, BRANCHES[kind]) if gate else BRANCHES[kind]
        whose = f"a {gate} check" if gate in GATE_BRANCHES else f"{_a(kind)} step"
        mapping = self.mapping(node, path, "branches")
        if mapping is None:
            return None
        given = {key.value for key, _ in mapping.entries}
        if gate in GATE_BRANCHES and given and given <= set(BRANCHES[kind]):
            self.add(mapping, path, f"{whose} branches on what it finds ({', '.join(names)}), not on "
                                    f"{', '.join(BRANCHES[kind])}: say where each of those goes")
            return None
        found = self.entries(mapping, path, names, f"{whose}'s branches")
        branches: dict[str, str] = {}
        for name in names:
            if name not in found and self.misspelt(name, mapping, found):
                continue
            if name not in found:
                self.add(mapping, _join(path, name), f"missing branch {name!r}: {whose} needs all of "
                                                     f"{', '.join(names)}")
                continue
            target = self.step_ref(found[name][1], _join(path, name))
            if target is not None:
                branches[name] = target
        return branches if len(branches) == len(names) else None

    def read_options(self, node: Node, path: str) -> tuple[Option, ...] | None:
        if not isinstance(node, SequenceNode):
            self.add(node, path, f"must be a list of options ({{id, label, next}}), found {_describe(node)}")
            return None
        if not node.items:
            self.add(node, path, "a choice needs at least one option")
            return None
        options: list[Option] = []
        seen: dict[str, ScalarNode | SequenceNode | MappingNode] = {}
        for index, item in enumerate(node.items):
            item_path = f"{path}[{index}]"
            mapping = self.mapping(item, item_path, "an option")
            if mapping is None:
                continue
            found = self.entries(mapping, item_path, ("id", "label", "next"), "an option")
            self.require(mapping, item_path, found, ("id", "label", "next"), "an option")
            option_id = label = target = None
            if "id" in found:
                id_node = found["id"][1]
                option_id = self.identifier(id_node, _join(item_path, "id"), OPTION_ID_PATTERN, "option id")
                if option_id in TIMEOUT_ENDS:
                    self.add(id_node, _join(item_path, "id"), f"an option may not be called {option_id!r}: "
                                                              f"on_timeout uses it to end the run")
                    option_id = None
                elif option_id is not None and option_id in seen:
                    self.add(id_node, _join(item_path, "id"),
                             f"duplicate option id {option_id!r} (first at line {seen[option_id].position.line})")
                    option_id = None
                elif option_id is not None:
                    seen[option_id] = id_node
            if "label" in found:
                label = self.prose(found["label"][1], _join(item_path, "label"), required=True)
            if "next" in found:
                target = self.step_ref(found["next"][1], _join(item_path, "next"))
            if option_id is not None and label is not None and target is not None:
                options.append(Option(option_id, label, target))
        return tuple(options)

    def read_timeout(self, node: Node, path: str, kind: StepKind, option_ids: Sequence[str]) -> Timeout | None:
        mapping = self.mapping(node, path, "timeout")
        if mapping is None:
            return None
        if kind is StepKind.WAIT:
            allowed: tuple[str, ...] = ("minutes",)
            required: tuple[str, ...] = ("minutes",)
            what = "a wait's timeout (it goes down its timeout branch)"
        else:
            allowed = required = ("minutes", "on_timeout")
            what = f"{_a(kind)}'s timeout"
        found = self.entries(mapping, path, allowed, what, ("minutes", "on_timeout"))
        self.require(mapping, path, found, required, "timeout")
        minutes = self.positive(found["minutes"][1], _join(path, "minutes")) if "minutes" in found else None
        if minutes is not None and kind is not StepKind.WAIT and minutes > MAX_HUMAN_TIMEOUT_MINUTES:
            self.add(found["minutes"][1], _join(path, "minutes"),
                     f"{_a(kind)} may wait for a human at most {MAX_HUMAN_TIMEOUT_MINUTES} minutes "
                     f"({MAX_HUMAN_TIMEOUT_MINUTES / 60:g} hours), found {minutes:g}: a decision later than that "
                     f"rests on stale evidence; end the run or escalate instead")
            minutes = None
        on_timeout: str | None = "abort"
        if "on_timeout" in found:
            choices = [*TIMEOUT_ENDS, *option_ids]
            on_timeout = self.text(found["on_timeout"][1], _join(path, "on_timeout"))
            if on_timeout is not None and on_timeout not in choices:
                what = "abort, escalate or an option's id" if kind is StepKind.CHOICE else "abort or escalate"
                self.add(found["on_timeout"][1], _join(path, "on_timeout"),
                         f"{self.unknown('on_timeout', on_timeout, choices)}; on_timeout is {what}")
                on_timeout = None
        if minutes is None or on_timeout is None:
            return None
        return Timeout(minutes, on_timeout)

    def read_undo_of(self, node: Node, path: str) -> str | None:
        target = self.step_ref(node, path)
        if target is None:
            return None
        info = self.by_id[target]
        if info.kind is not StepKind.ACTION or info.action is not ActionKind.ROLLBACK:
            what = f"{_a(info.action)} action" if info.action else f"{_a(info.kind or 'malformed')} step"
            self.add(node, path, f"undo names {target!r}, which is {what}, not a rollback")
            return None
        return target

    def named(self, node: Node, path: str, known: Collection[str] | None, noun: str, where: str) -> str | None:
        value = self.name(node, path, where)
        if value is None:
            return None
        if known is not None and value not in known:
            self.add(node, path, f"{self.unknown(noun, value, known)} (names come from {where})")
            return None
        return value

    def read_message(self, node: Node, path: str) -> Message | None:
        mapping = self.mapping(node, path, "message")
        if mapping is None:
            return None
        found = self.entries(mapping, path, MESSAGE_KEYS, "a message")
        self.require(mapping, path, found, ("summary",), "a message")
        parts = {key: self.prose(value, _join(path, key), required=key == "summary")
                 for key, (_, value) in found.items()}
        if any(part is None for part in parts.values()) or "summary" not in parts:
            return None
        return Message(**{key: part or "" for key, part in parts.items()})

    def read_body(self, node: Node, path: str) -> dict[str, object] | None:
        mapping = self.mapping(node, path, "body")
        if mapping is None:
            return None
        body = self.plain(mapping, path)
        return body if isinstance(body, dict) else None

    def plain(self, node: Node, path: str) -> object:
        """A JSON-ready copy of ``node`` (references in its texts checked); ``None`` where it is not."""
        if isinstance(node, ScalarNode):
            if isinstance(node.value, str):
                if self.holds_credential(node, path, node.value):
                    return None
                self.references(node, path, node.value)
            elif isinstance(node.value, float) and not math.isfinite(node.value):
                self.add(node, path, f"{node.raw} cannot be sent as JSON")
            return node.value
        if isinstance(node, SequenceNode):
            return [self.plain(item, f"{path}[{index}]") for index, item in enumerate(node.items)]
        result: dict[str, object] = {}
        for key_node, value in node.entries:
            if not isinstance(key_node.value, str):
                self.add(key_node, path, f"a key must be text, found {_describe(key_node)}{_quote_hint(key_node)}")
                continue
            if key_node.value in result:
                self.add(key_node, _join(path, key_node.value), f"duplicate key {key_node.value!r}")
                continue
            if is_secret_key(key_node.value) and not _only_references(value):
                self.add(key_node, _join(path, key_node.value),
                         f"{key_node.value!r} names a credential: a playbook never holds a secret; the endpoint "
                         f"sends its own (config endpoints.NAME.headers_env)")
                continue
            result[key_node.value] = self.plain(value, _join(path, key_node.value))
        return result

    # -- the graph ---------------------------------------------------------------------------------

    def meant_step(self, step_id: str) -> str | None:
        """The step an id names, or (reported as a "did you mean") the one it most likely misspells."""
        if step_id in self.by_id:
            return step_id
        return self.closest(step_id, self.by_id)

    def check_graph(self, steps_node: SequenceNode, start: str | None) -> None:
        """Unreachable steps, loops with no way out, paths that never reach an end, undo before its rollback."""
        known = [info for info in self.infos if info.id is not None]
        if not known or start is None:
            return
        edges = {info.id: [meant for t in info.targets if (meant := self.meant_step(t))] for info in known if info.id}
        reachable = _reachable(start, edges)
        for info in known:
            if info.id not in reachable:
                self.add(info.node, info.path, f"unreachable: no path from the start step {start!r} leads to "
                                               f"{info.id!r}")
        ends = [info.id for info in known if info.kind is StepKind.END and info.id]
        if not ends:
            if not any(info.kind is StepKind.END for info in self.infos):
                self.add(steps_node, "steps", "no end step: every run must finish in a step of kind end")
            return
        reverse: dict[str, list[str]] = {step_id: [] for step_id in edges}
        for source, targets in edges.items():
            for target in targets:
                reverse[target].append(source)
        finishing = set()
        for end in ends:
            finishing |= _reachable(end, reverse)
        order = {info.id: info.index for info in known if info.id}
        trapped: set[str] = set()
        for component in _strongly_connected([i.id for i in known if i.id], edges):
            members = sorted(component, key=order.__getitem__)
            looped = len(members) > 1 or members[0] in edges[members[0]]
            if looped and members[0] in reachable and members[0] not in finishing:
                trapped.update(members)
                first = self.by_id[members[0]]
                cycle = " -> ".join([*members, members[0]]) if len(members) <= 6 else ", ".join(members)
                self.add(first.node, first.path, f"loop with no way out: {cycle}; no step of it leads to an end")
        for info in known:
            step_id = info.id
            if step_id is None or step_id not in reachable or step_id in finishing or step_id in trapped:
                continue
            if info.kind is StepKind.END or not edges[step_id]:
                continue  # a dead end is reported where its next or branches are missing or unknown
            self.add(info.node, info.path, f"never reaches an end: no path from {step_id!r} leads to an end step")
        for info in known:
            of = info.node.get("of")
            if info.action is ActionKind.UNDO and isinstance(of, ScalarNode) and isinstance(of.value, str) \
                    and of.value in self.by_id and info.id is not None \
                    and self.by_id[of.value].action is ActionKind.ROLLBACK \
                    and info.id not in _reachable(of.value, edges):
                self.add(of, f"{info.path}.of", f"undo of {of.value!r} comes before it: no path from the rollback "
                                                f"leads to this step")


def _only_references(node: Node) -> bool:
    """Whether a value says nothing of its own: null, empty, or only ``{{ references }}`` (never a secret)."""
    if not isinstance(node, ScalarNode):
        return False
    return node.value is None or (isinstance(node.value, str) and not _REFERENCE.sub("", node.value).strip())


def _raw_targets(item: MappingNode) -> Iterable[str]:
    """The step ids a step's ``next``, ``branches`` and options name, whatever else is wrong with it."""
    next_node = item.get("next")
    if isinstance(next_node, ScalarNode) and isinstance(next_node.value, str):
        yield next_node.value
    branches = item.get("branches")
    if isinstance(branches, MappingNode):
        for _, target in branches.entries:
            if isinstance(target, ScalarNode) and isinstance(target.value, str):
                yield target.value
    options = item.get("options")
    if isinstance(options, SequenceNode):
        for option in options.items:
            option_next = option.get("next") if isinstance(option, MappingNode) else None
            if isinstance(option_next, ScalarNode) and isinstance(option_next.value, str):
                yield option_next.value


def _reachable(start: str, edges: Mapping[str, Sequence[str]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        for target in edges.get(frontier.pop(), ()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


def _strongly_connected(nodes: Sequence[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, children = work[-1]
            descended = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    descended = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if descended:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


# -- the public entry points ------------------------------------------------------------------------

def check_playbook(root: Node | None, source: str, content: bytes,
                   context: CheckContext = CheckContext()) -> tuple[Playbook | None, list[Problem]]:
    """Check a playbook's tree and build the :class:`Playbook`.

    Args:
        root: the document's root node from the loader; ``None`` for an empty file.
        source: the file's name, as problems and ``Playbook.source`` give it.
        content: the file's bytes, for ``content_hash``.
        context: the names the config defines (metrics, roles, endpoints, webhooks) and its rules.

    Returns:
        The playbook and no problems, or ``None`` and every problem found, in file order.
    """
    checker = _Checker(source, context)
    playbook = checker.run(root, content)
    problems = sorted((checker.in_step(p) for p in checker.problems), key=lambda p: (p.line, p.column))
    return (None, problems) if problems else (playbook, [])


def _step_structure(step: Step) -> dict[str, object]:
    """A step's fields that change what a run does (those its kind and action use, prose left out)."""
    keys = [*KIND_KEYS[step.kind], *(ACTION_KEYS[step.action] if step.action else ())]
    found: dict[str, object] = {"kind": str(step.kind)}
    for key in keys:
        if key in PROSE_STEP_KEYS:
            continue
        value: object = getattr(step, STEP_ATTRIBUTES.get(key, key))
        if STEP_ATTRIBUTES.get(key, key) in NEW_FIELDS and value is None:
            continue
        if key == "options":
            value = [{"id": option.id, "next": option.next} for option in step.options]
        elif key == "timeout":
            value = None if step.timeout is None else {"minutes": float(step.timeout.minutes),
                                                       "on_timeout": step.timeout.on_timeout}
        elif key in ("metrics", "segments"):
            value = list(getattr(step, key))
        elif key == "every_s":
            value = float(step.every_s)
        found[key] = str(value) if isinstance(value, ActionKind) else value
    return found


def _structure(playbook: Playbook) -> dict[str, Any]:
    found = {
        "id": playbook.id,
        "models": list(playbook.models),
        "severity": playbook.severity,
        "roles": list(playbook.roles),
        "inputs": {spec.name: {"alias": spec.alias, "version": spec.version, "previous": spec.previous}
                   for spec in playbook.inputs},
        "when": [{"version": c.version, "verdict": c.verdict, "metrics": list(c.metrics)} if c.diagnosis is None
                 else {"diagnosis": c.diagnosis} for c in playbook.when],
        "start": playbook.start,
        "steps": {step.id: _step_structure(step) for step in playbook.steps},
    }
    if playbook.alerts:  # added later: a playbook without matchers keeps the structure it had
        found["alerts"] = [{"name": m.name, "op": m.op, "value": m.value} for m in playbook.alerts]
    return found


def _prose(playbook: Playbook) -> dict[str, Any]:
    def step_prose(step: Step) -> dict[str, object]:
        found: dict[str, object] = {"title": step.title, "text": step.text}
        if step.kind is StepKind.CHOICE:
            found["prompt"] = step.prompt
            found["labels"] = {option.id: option.label for option in step.options}
        if step.message is not None:
            found["message"] = {key: getattr(step.message, key) for key in MESSAGE_KEYS}
        return found

    return {"title": playbook.title, "version": playbook.version, "description": playbook.description,
            "steps": {step.id: step_prose(step) for step in playbook.steps}}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def structure_hash(playbook: Playbook) -> str:
    """sha256 of the canonical JSON of what changes what a run does.

    Prose (titles, text, prompts, labels, messages, description), the version
    number, step order and positions are left out.

    Args:
        playbook: a built playbook (its own ``structure_hash`` is ignored).

    Returns:
        The hex digest.
    """
    return hashlib.sha256(_canonical(_structure(playbook)).encode("utf-8")).hexdigest()


def _shown(value: object) -> str:
    text = _canonical(value)
    return text if len(text) <= _MAX_DIFF_SHOWN else text[: _MAX_DIFF_SHOWN - 1] + "…"


def _changes(name: str, before: Any, after: Any) -> list[str]:
    """``name: old -> new``; two mappings are compared key by key (``message.why: ...``)."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        return [line for key in _keys(before, after)
                for line in _changes(f"{name}.{key}", before.get(key), after.get(key))]
    return [f"{name}: {_shown(before)} -> {_shown(after)}"]


def _keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [*old, *(key for key in new if key not in old)]


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key: old -> new`` lines; steps (``steps``: id -> fields) compared by id, field by field."""
    lines: list[str] = []
    for key in _keys(old, new):
        before, after = old.get(key), new.get(key)
        if key != "steps":
            lines += _changes(key, before, after)
            continue
        before, after = before or {}, after or {}
        for step_id in _keys(before, after):
            if step_id not in after:
                lines.append(f"step {step_id!r} removed")
            elif step_id not in before:
                lines.append(f"step {step_id!r} added ({after[step_id].get('kind', 'step')})")
            else:
                old_step, new_step = before[step_id], after[step_id]
                lines += [f"step {step_id!r}: {line}" for name in _keys(old_step, new_step)
                          for line in _changes(name, old_step.get(name), new_step.get(name))]
    return lines


def structure_changes(old: Playbook, new: Playbook) -> list[str]:
    """What changed in what a run does, one line per change.

    Args:
        old: the playbook a run started with.
        new: the playbook as it is now.

    Returns:
        Lines such as ``step 'look': metric: "error_rate" -> "latency_p99"``;
        empty exactly when the structure hashes are equal (only prose changed, or nothing).
    """
    return _differences(_structure(old), _structure(new))


def prose_changes(old: Playbook, new: Playbook) -> list[str]:
    """What changed in what a playbook says (titles, text, prompts, labels, messages, description, version).

    Args:
        old: the playbook a run started with.
        new: the playbook as it is now.

    Returns:
        One line per changed field; steps only one side has are left to :func:`structure_changes`.
    """
    old_prose, new_prose = _prose(old), _prose(new)
    shared = [step_id for step_id in old_prose["steps"] if step_id in new_prose["steps"]]
    old_prose["steps"] = {step_id: old_prose["steps"][step_id] for step_id in shared}
    new_prose["steps"] = {step_id: new_prose["steps"][step_id] for step_id in shared}
    return _differences(old_prose, new_prose)
