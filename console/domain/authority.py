"""Who may do what: permissions from OS users and groups, and the two-person rule.

Identity always comes from the operating system (the process's real user and
its groups), gathered by an adapter and passed in; nothing here can be set by
a flag or an environment variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    """What a responder may do."""

    VIEW = "view"
    ACT = "act"
    APPROVE = "approve"


@dataclass(frozen=True)
class Identity:
    """An OS user and the groups it belongs to."""

    user: str
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Policy:
    """Permissions per user and per group, and the models that need a second person.

    Attributes:
        users: user name -> permissions.
        groups: group name -> permissions.
        default: permissions of everyone else.
        two_person: models whose actions wait for another user's approval.
        enforced: ``False`` when no roles are configured: everyone may act (a
            sandbox, a single-person setup).
    """

    users: dict[str, frozenset[Permission]] = field(default_factory=dict)
    groups: dict[str, frozenset[Permission]] = field(default_factory=dict)
    default: frozenset[Permission] = frozenset({Permission.VIEW})
    two_person: frozenset[str] = frozenset()
    enforced: bool = True

    def permissions(self, identity: Identity) -> frozenset[Permission]:
        """Everything ``identity`` may do: its own grants, its groups', and the default."""
        if not self.enforced:
            return frozenset(Permission)
        granted = set(self.default) | set(self.users.get(identity.user, ()))
        for group in identity.groups:
            granted |= self.groups.get(group, frozenset())
        return frozenset(granted)

    def refusal(self, identity: Identity, needed: Permission) -> str | None:
        """Why ``identity`` may not do what ``needed`` allows, or ``None`` when it may."""
        if needed in self.permissions(identity):
            return None
        return (f"user {identity.user} (groups: {', '.join(sorted(identity.groups)) or 'none'}) "
                f"lacks the {needed.value!r} permission (roles in the config)")

    def needs_second_person(self, model: str) -> bool:
        """Whether actions on ``model`` wait for another user's approval."""
        return model in self.two_person


def approval_refusal(requester: str, approver: Identity, policy: Policy) -> str | None:
    """Why ``approver`` may not approve ``requester``'s action, or ``None`` when they may."""
    if approver.user == requester:
        return f"{approver.user} requested this action and cannot also approve it (two-person rule)"
    return policy.refusal(approver, Permission.APPROVE)
