"""Rollback plans: which version to leave, which to go back to, and every change on the way.

A plan is computed from the state read from the registry and the router; it
names the weights before and after (and the steps between, for a gradual
rollback) and the alias moves, so that it can be previewed, confirmed,
journaled, applied with compare-and-set, verified, and undone.

Pure: the services read the systems, this module only decides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from console.domain.errors import UsageError
from console.domain.routing import MAX_WEIGHT, Mirror, describe_mirror
from console.domain.versions import AliasMap, ModelVersion, shown_version

PREVIOUS_CHAMPION_TAG = "rewind.previous_champion"
"""Version tag naming the champion a version replaced (MLflow keeps no alias history)."""

DEFAULT_GRADUAL_STEPS = (0.5, 0.25, 0.0)
"""Fractions of the leaving version's weight kept at each gradual step; the last is 0."""


class Mode(StrEnum):
    """How traffic moves."""

    IMMEDIATE = "immediate"
    GRADUAL = "gradual"


class ActionKind(StrEnum):
    """What an action is, for the journal and the faces: every kind is carried out by one procedure."""

    ROLLBACK = "rollback"
    UNDO = "undo"
    SHADOW_START = "shadow_start"
    SHADOW_STOP = "shadow_stop"
    PROMOTE = "promote"
    FALLBACK_ENGAGE = "fallback_engage"
    FALLBACK_RESTORE = "fallback_restore"
    FEATURES_ROLLBACK = "features_rollback"


@dataclass(frozen=True)
class TagMove:
    """One registry version tag changed by an action (a feature rollback repoints ``feast.feature_service``).

    ``before``/``after`` ``None``: the tag is absent.
    """

    version: str
    key: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ViewPin:
    """A feature view's active version moved (a global feature rollback): ``before`` and ``after`` as ``vN``."""

    view: str
    before: str
    after: str


@dataclass(frozen=True)
class AliasMove:
    """One alias change: ``after`` ``None`` deletes the alias."""

    alias: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Plan:
    """Everything a rollback (or its undo) will change, and what it expects to find first.

    Attributes:
        action_id: the action's id, quoted by ``rewind undo``.
        model: the registered model.
        leave: the version traffic moves away from.
        target: the version traffic moves back to.
        mode: immediate or gradual.
        weights_before: every server's weight as read (the compare-and-set expectation).
        steps: successive full weight maps; the last one is the end state.
        alias_moves: the alias changes, applied after the router.
        reason: why, as the responder typed it.
        undoes: the action this one reverses, for an undo.
        aliases_before: the aliases as read (the compare-and-set expectation).
        kind: what the action is (a rollback, a promotion, a shadow started, ...).
        mirror_before, mirror_after: the router's shadow mirror before and after
            (equal when the plan does not change it).
        servers_before, servers_after: admin states (``ready``/``maint``) of the
            router servers the plan takes out or puts back (the fallback's actions).
        tag_moves: registry version tags the plan changes, after the router (a feature rollback).
        feature_service: the feature service the plan creates first, additively
            (``{"name": ..., "features": [refs]}``), for the tags to point at; never removed.
        view_pin: a feature view's active version the plan moves (a global feature rollback).
    """

    action_id: str
    model: str
    leave: str
    target: str
    mode: Mode
    weights_before: dict[str, int]
    steps: tuple[dict[str, int], ...]
    alias_moves: tuple[AliasMove, ...]
    reason: str = ""
    undoes: str | None = None
    aliases_before: dict[str, str] = field(default_factory=dict)
    kind: ActionKind = ActionKind.ROLLBACK
    mirror_before: Mirror | None = None
    mirror_after: Mirror | None = None
    servers_before: dict[str, str] = field(default_factory=dict)
    servers_after: dict[str, str] = field(default_factory=dict)
    tag_moves: tuple[TagMove, ...] = ()
    feature_service: dict[str, Any] | None = None
    view_pin: ViewPin | None = None
    rolls_back: dict[str, str] | None = None
    """A feature rollback: the transformation it moves away from (``view``, ``version``, ``udf_sha``), watched for."""

    @property
    def moves_features(self) -> bool:
        """Whether the plan changes what the model's versions consume (tags or a view's active version)."""
        return bool(self.tag_moves) or (self.view_pin is not None and self.view_pin.before != self.view_pin.after)

    @property
    def moves_mirror(self) -> bool:
        """Whether the plan changes the router's shadow mirror."""
        return self.mirror_before != self.mirror_after

    @property
    def moved_servers(self) -> tuple[str, ...]:
        """The router servers whose admin state the plan changes."""
        return tuple(sorted(n for n, st in self.servers_after.items() if self.servers_before.get(n) != st))

    @property
    def weights_after(self) -> dict[str, int]:
        """The router's weights once the plan is fully applied."""
        return self.steps[-1]

    @property
    def moved_versions(self) -> tuple[str, ...]:
        """The versions whose weight the plan changes (the router's compare-and-set covers these)."""
        return tuple(sorted(v for v, w in self.weights_after.items() if self.weights_before.get(v) != w))

    def drift(self, weights: Mapping[str, int], aliases: Mapping[str, str | None], word: str = "expected",
              mirror: Mirror | None = None, servers: Mapping[str, str] | None = None,
              tags: Mapping[str, str | None] | None = None, view: str | None = None) -> list[str]:
        """How the systems differ from the plan's start state, for what it changes (empty: they do not).

        ``mirror``, ``servers``, ``tags`` (version -> the moved tag's value) and ``view`` (the pinned
        view's active version) are compared only when the plan changes them.
        """
        found = [f"v{v} weight is {weights.get(v, 'absent')} ({word} {self.weights_before.get(v)})"
                 for v in self.moved_versions if weights.get(v) != self.weights_before.get(v)]
        found += [f"alias {m.alias!r} points at {shown_version(aliases.get(m.alias))} "
                  f"({word} {shown_version(m.before)})"
                  for m in self.alias_moves if aliases.get(m.alias) != m.before]
        if self.moves_mirror and mirror != self.mirror_before:
            found.append(f"the mirror is {describe_mirror(mirror)} ({word} {describe_mirror(self.mirror_before)})")
        found += [f"server {n} is {(servers or {}).get(n, 'absent')} ({word} {self.servers_before.get(n)})"
                  for n in self.moved_servers if (servers or {}).get(n) != self.servers_before.get(n)]
        found += [f"v{m.version} tag {m.key} is {(tags or {}).get(m.version) or 'unset'} ({word} {m.before or 'unset'})"
                  for m in self.tag_moves if (tags or {}).get(m.version) != m.before]
        if self.view_pin is not None and view != self.view_pin.before:
            found.append(f"feature view {self.view_pin.view} is at {view or 'unknown'} ({word} {self.view_pin.before})")
        return found

    def state_is(self, weights: Mapping[str, int], aliases: Mapping[str, str | None], end: bool,
                 mirror: Mirror | None = None, servers: Mapping[str, str] | None = None,
                 tags: Mapping[str, str | None] | None = None, view: str | None = None) -> bool:
        """Whether the systems show the plan's start state (``end`` false) or end state, for what it changes."""
        want = self.weights_after if end else self.weights_before
        want_servers = self.servers_after if end else self.servers_before
        return (all(weights.get(v) == want.get(v) for v in self.moved_versions)
                and all(aliases.get(m.alias) == (m.after if end else m.before) for m in self.alias_moves)
                and (not self.moves_mirror or mirror == (self.mirror_after if end else self.mirror_before))
                and all((servers or {}).get(n) == want_servers.get(n) for n in self.moved_servers)
                and all((tags or {}).get(m.version) == (m.after if end else m.before) for m in self.tag_moves)
                and (self.view_pin is None
                     or view == (self.view_pin.after if end else self.view_pin.before)))

    @property
    def is_noop(self) -> bool:
        """Whether applying the plan would change nothing."""
        return (not self.moved_versions and not self.alias_moves and not self.moves_mirror and not self.moved_servers
                and not self.moves_features)

    @property
    def summary(self) -> str:
        """One line saying what the plan does, for journals and faces."""
        if self.kind in (ActionKind.ROLLBACK, ActionKind.UNDO):
            return f"{self.kind.value}: traffic from v{self.leave} to v{self.target}"
        if self.kind is ActionKind.PROMOTE:
            return f"promote v{self.target} in place of v{self.leave}"
        if self.moves_features:
            return f"{'undo: ' if self.undoes else ''}features: {describe_feature_moves(self)}"
        if self.kind in (ActionKind.SHADOW_START, ActionKind.SHADOW_STOP):
            return f"{self.kind.value.replace('_', ' ')}: {describe_mirror(self.mirror_after or self.mirror_before)}"
        moved = ", ".join(f"{n} → {self.servers_after[n]}" for n in self.moved_servers)
        return f"{self.kind.value.replace('_', ' ')}: {moved or 'nothing to change'}"

    @property
    def aliases_after(self) -> dict[str, str]:
        """The aliases once the plan is fully applied."""
        after = dict(self.aliases_before)
        for move in self.alias_moves:
            if move.after is None:
                after.pop(move.alias, None)
            else:
                after[move.alias] = move.after
        return after

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON data (for the journal and ``--json``)."""
        data = asdict(self)
        data["mode"] = self.mode.value
        data["steps"] = [dict(step) for step in self.steps]
        data["alias_moves"] = [asdict(m) for m in self.alias_moves]
        data["kind"] = self.kind.value
        data["mirror_before"] = self.mirror_before.to_dict() if self.mirror_before else None
        data["mirror_after"] = self.mirror_after.to_dict() if self.mirror_after else None
        data["tag_moves"] = [asdict(m) for m in self.tag_moves]
        data["view_pin"] = asdict(self.view_pin) if self.view_pin else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """The inverse of :meth:`to_dict`."""
        return cls(
            action_id=data["action_id"],
            model=data["model"],
            leave=data["leave"],
            target=data["target"],
            mode=Mode(data["mode"]),
            weights_before={str(k): int(v) for k, v in data["weights_before"].items()},
            steps=tuple({str(k): int(v) for k, v in step.items()} for step in data["steps"]),
            alias_moves=tuple(AliasMove(**m) for m in data["alias_moves"]),
            reason=data.get("reason", ""),
            undoes=data.get("undoes"),
            aliases_before=dict(data.get("aliases_before", {})),
            kind=ActionKind(data.get("kind") or (ActionKind.UNDO if data.get("undoes") else ActionKind.ROLLBACK)),
            mirror_before=Mirror.from_dict(data.get("mirror_before")),
            mirror_after=Mirror.from_dict(data.get("mirror_after")),
            servers_before={str(k): str(v) for k, v in (data.get("servers_before") or {}).items()},
            servers_after={str(k): str(v) for k, v in (data.get("servers_after") or {}).items()},
            tag_moves=tuple(TagMove(**m) for m in data.get("tag_moves") or ()),
            feature_service=data.get("feature_service"),
            view_pin=ViewPin(**data["view_pin"]) if data.get("view_pin") else None,
            rolls_back=dict(data["rolls_back"]) if data.get("rolls_back") else None,
        )


def choose_versions(
    aliases: AliasMap,
    weights: dict[str, int],
    leave: str | None,
    target: str | None,
    previous_champion: str | None,
    stable_alias: str = "champion",
    candidate_alias: str = "challenger",
    named_by: str | None = None,
) -> tuple[str, str, str]:
    """Decide which version to leave and which to go back to.

    By default the version to leave is the candidate (challenger) when it takes
    traffic, else the stable version (champion). The version to go back to is
    the champion when the challenger is left, else the previous champion (from
    the journal or the registry's tags).

    Args:
        named_by: how a ``target`` given was chosen, in the words of the face that asks: the command line's
            ``chosen with --to``, the console's ``chosen by the playbook``.

    Returns:
        ``(leave, target, why)``, ``why`` saying how the target was chosen.

    Raises:
        UsageError: when no sensible default exists or the choice makes no sense.
    """
    champion = aliases.version_of(stable_alias)
    challenger = aliases.version_of(candidate_alias)
    if leave is None:
        if challenger and challenger != champion and weights.get(challenger, 0) > 0:
            leave = challenger
        elif champion:
            leave = champion
        else:
            raise UsageError(f"neither {candidate_alias!r} nor {stable_alias!r} is set: pass --from VERSION")
    if target is not None:
        why = named_by or "named explicitly"
    elif leave == challenger and champion and champion != leave:
        target, why = champion, f"the current {stable_alias}; v{leave} is the {candidate_alias}"
    elif previous_champion and previous_champion != leave:
        target, why = previous_champion, f"the previous {stable_alias}"
    else:
        raise UsageError(
            f"no previous {stable_alias} of v{leave} is recorded (journal or tag {PREVIOUS_CHAMPION_TAG}): "
            "pass --to VERSION"
        )
    if target == leave:
        raise UsageError(f"v{leave} is both the version to leave and the one to go back to")
    if leave not in weights:
        raise UsageError(f"v{leave} has no server in the router backend")
    if target not in weights:
        raise UsageError(f"v{target} has no server in the router backend: it cannot take traffic")
    return leave, target, why


def plan_steps(weights: dict[str, int], leave: str, target: str, mode: Mode,
               fractions: tuple[float, ...] = DEFAULT_GRADUAL_STEPS) -> tuple[dict[str, int], ...]:
    """The successive weight maps that move ``leave``'s traffic to ``target``.

    The two versions' total weight is kept (HAProxy weights are relative), so
    the other versions' shares do not change. Immediate is one step; gradual
    keeps ``fractions`` of the leaving weight at each step, ending at zero.
    """
    if not fractions or fractions[-1] != 0:
        raise UsageError("gradual steps must end with the leaving version at 0")
    if any(not 0 <= f < 1 for f in fractions) or list(fractions) != sorted(fractions, reverse=True):
        raise UsageError("gradual steps must be decreasing fractions from below 1 down to 0")
    total = weights[leave] + weights[target]
    if total == 0:
        total = 100  # neither took traffic: give the target a plain full weight
    total = min(total, MAX_WEIGHT)
    kept = (0.0,) if mode is Mode.IMMEDIATE else fractions
    steps: list[dict[str, int]] = []
    for fraction in kept:
        left = round(weights[leave] * fraction)
        step = dict(weights)
        step[leave] = left
        step[target] = total - left
        if not steps or step != steps[-1]:
            steps.append(step)
    return tuple(steps)


def plan_alias_moves(aliases: AliasMap, leave: str, target: str, stable_alias: str = "champion",
                     candidate_alias: str = "challenger") -> tuple[AliasMove, ...]:
    """The alias changes: the champion alias follows traffic; a left challenger loses its alias."""
    moves = []
    if aliases.version_of(stable_alias) == leave:
        moves.append(AliasMove(stable_alias, leave, target))
    if aliases.version_of(candidate_alias) == leave:
        moves.append(AliasMove(candidate_alias, leave, None))
    elif aliases.version_of(candidate_alias) == target and aliases.version_of(stable_alias) == leave:
        # The target becomes the champion; it is no longer a candidate.
        moves.append(AliasMove(candidate_alias, target, None))
    return tuple(moves)


def inverse(plan: Plan, action_id: str, reason: str) -> Plan:
    """The plan that undoes ``plan``: back from its end state to its start state, in one step."""
    return Plan(
        action_id=action_id,
        model=plan.model,
        leave=plan.target,
        target=plan.leave,
        mode=Mode.IMMEDIATE,
        weights_before=dict(plan.weights_after),
        steps=(dict(plan.weights_before),),
        alias_moves=tuple(AliasMove(m.alias, m.after, m.before) for m in reversed(plan.alias_moves)),
        reason=reason,
        undoes=plan.action_id,
        aliases_before=plan.aliases_after,
        kind=ActionKind.UNDO,
        mirror_before=plan.mirror_after,
        mirror_after=plan.mirror_before,
        servers_before=dict(plan.servers_after),
        servers_after=dict(plan.servers_before),
        tag_moves=tuple(TagMove(m.version, m.key, m.after, m.before) for m in reversed(plan.tag_moves)),
        view_pin=ViewPin(plan.view_pin.view, plan.view_pin.after, plan.view_pin.before) if plan.view_pin else None,
    )


def describe_feature_moves(plan: Plan) -> str:
    """What a plan changes in the model's features, in one line."""
    parts = []
    by_change: dict[tuple[str | None, str | None], list[str]] = {}
    for move in plan.tag_moves:
        by_change.setdefault((move.before, move.after), []).append(move.version)
    for (before, after), versions in by_change.items():
        parts.append(f"{', '.join('v' + v for v in versions)} {before or 'no service'} → {after or 'no service'}")
    if plan.view_pin is not None and plan.view_pin.before != plan.view_pin.after:
        parts.append(f"view {plan.view_pin.view} {plan.view_pin.before} → {plan.view_pin.after} for every consumer")
    return "; ".join(parts) or "nothing to change"


@dataclass(frozen=True)
class SignatureCheck:
    """Whether the version to go back to accepts the inputs callers now send."""

    compatible: bool
    reason: str


def _columns(signature: dict[str, Any] | None, part: str) -> dict[str, str] | None:
    if not signature or not signature.get(part):
        return None
    try:
        spec = json.loads(signature[part]) if isinstance(signature[part], str) else signature[part]
    except ValueError:
        return None
    return {str(c.get("name")): str(c.get("type")) for c in spec if isinstance(c, dict)}


def check_signatures(leaving: ModelVersion, target: ModelVersion) -> SignatureCheck:
    """Compare MLflow model signatures: the target must accept what the leaving version accepts.

    Every input the target requires must be one the leaving version takes, with
    the same type; outputs must keep their names. A version without a
    signature cannot be checked, which is said, not treated as a pass or a fail.
    """
    leave_in, target_in = _columns(leaving.signature, "inputs"), _columns(target.signature, "inputs")
    if leave_in is None or target_in is None:
        missing = [f"v{v.version}" for v in (leaving, target) if _columns(v.signature, "inputs") is None]
        return SignatureCheck(True, f"not checked: {', '.join(missing)} has no input signature")
    problems = []
    for name, kind in sorted(target_in.items()):
        if name not in leave_in:
            problems.append(f"v{target.version} needs input {name!r}, which v{leaving.version} callers do not send")
        elif leave_in[name] != kind:
            problems.append(f"input {name!r} is {leave_in[name]} for v{leaving.version} "
                            f"but {kind} for v{target.version}")
    leave_out, target_out = _columns(leaving.signature, "outputs"), _columns(target.signature, "outputs")
    if leave_out and target_out and set(leave_out) - set(target_out):
        gone = ", ".join(sorted(set(leave_out) - set(target_out)))
        problems.append(f"v{target.version} does not return {gone}")
    if problems:
        return SignatureCheck(False, "; ".join(problems))
    return SignatureCheck(True, f"v{target.version} accepts every input v{leaving.version} callers send")
