"""Roles: permissions from users, groups and the default; the two-person rule."""

from console.domain.authority import Identity, Permission, Policy, approval_refusal

POLICY = Policy(
    users={"alice": frozenset({Permission.ACT})},
    groups={"leads": frozenset({Permission.APPROVE})},
    default=frozenset({Permission.VIEW}),
    two_person=frozenset({"fraud-detector"}),
)


def test_permissions_come_from_user_groups_and_default():
    assert POLICY.permissions(Identity("alice")) == {Permission.VIEW, Permission.ACT}
    assert POLICY.permissions(Identity("bob", frozenset({"leads"}))) == {Permission.VIEW, Permission.APPROVE}
    assert POLICY.refusal(Identity("eve"), Permission.ACT) == (
        "user eve (groups: none) lacks the 'act' permission (roles in the config)")
    assert POLICY.refusal(Identity("alice"), Permission.ACT) is None


def test_no_roles_configured_means_everyone_may_act():
    assert Policy(enforced=False).refusal(Identity("anyone"), Permission.ACT) is None


def test_two_person_rule():
    assert POLICY.needs_second_person("fraud-detector") and not POLICY.needs_second_person("other")
    assert "cannot also approve" in approval_refusal("bob", Identity("bob", frozenset({"leads"})), POLICY)
    assert "lacks the 'approve'" in approval_refusal("alice", Identity("eve"), POLICY)
    assert approval_refusal("alice", Identity("bob", frozenset({"leads"})), POLICY) is None
