"""Rollback plans: which versions, which weights, which alias moves, signature checks, undo."""

import json

import pytest

from console.domain.errors import UsageError
from console.domain.rollback import (
    AliasMove,
    Mode,
    Plan,
    check_signatures,
    choose_versions,
    inverse,
    plan_alias_moves,
    plan_steps,
)
from console.domain.versions import AliasMap, ModelVersion

CANARY = AliasMap("m", {"champion": "2", "challenger": "3"})
WEIGHTS = {"1": 0, "2": 90, "3": 10}


def test_a_misbehaving_challenger_goes_back_to_the_champion():
    assert choose_versions(CANARY, WEIGHTS, None, None, None)[:2] == ("3", "2")


def test_a_misbehaving_champion_goes_back_to_the_previous_champion():
    promoted = AliasMap("m", {"champion": "3"})
    leave, target, why = choose_versions(promoted, {"1": 0, "2": 0, "3": 100}, None, None, "2")
    assert (leave, target) == ("3", "2") and "previous" in why


def test_no_previous_champion_means_the_responder_must_choose():
    with pytest.raises(UsageError, match="pass --to VERSION"):
        choose_versions(AliasMap("m", {"champion": "3"}), {"3": 100}, None, None, None)


def test_explicit_choices_are_checked():
    assert choose_versions(CANARY, WEIGHTS, "2", "1", None)[:2] == ("2", "1")
    # A target given says how it was chosen in the words of the face that asked: never "--to" in the console.
    assert choose_versions(CANARY, WEIGHTS, "2", "1", None)[2] == "named explicitly"
    assert choose_versions(CANARY, WEIGHTS, "2", "1", None, named_by="chosen with --to")[2] == "chosen with --to"
    with pytest.raises(UsageError, match="both"):
        choose_versions(CANARY, WEIGHTS, "2", "2", None)
    with pytest.raises(UsageError, match="v9 has no server"):
        choose_versions(CANARY, WEIGHTS, "2", "9", None)


def test_immediate_moves_all_of_the_leaving_weight_and_keeps_others():
    assert plan_steps({"1": 5, "2": 90, "3": 10}, "3", "2", Mode.IMMEDIATE) == ({"1": 5, "2": 100, "3": 0},)


def test_gradual_steps_down_to_zero():
    steps = plan_steps({"2": 10, "3": 90}, "3", "2", Mode.GRADUAL)
    assert [s["3"] for s in steps] == [45, 22, 0]
    assert all(s["2"] + s["3"] == 100 for s in steps)
    with pytest.raises(UsageError):
        plan_steps({"2": 10, "3": 90}, "3", "2", Mode.GRADUAL, (0.5, 0.2))


def test_alias_moves():
    assert plan_alias_moves(CANARY, "3", "2") == (AliasMove("challenger", "3", None),)
    promoted = AliasMap("m", {"champion": "3", "challenger": "3"})
    assert plan_alias_moves(promoted, "3", "2") == (
        AliasMove("champion", "3", "2"), AliasMove("challenger", "3", None))


def test_undo_is_the_exact_inverse_and_round_trips_through_json():
    plan = Plan("a1", "m", "3", "2", Mode.IMMEDIATE, dict(WEIGHTS), ({"1": 0, "2": 100, "3": 0},),
                (AliasMove("challenger", "3", None),), "errors", aliases_before=dict(CANARY.aliases))
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    undo = inverse(plan, "a2", "false alarm")
    assert undo.weights_before == plan.weights_after and undo.weights_after == plan.weights_before
    assert undo.aliases_before == {"champion": "2"} and undo.aliases_after == CANARY.aliases
    assert undo.undoes == "a1"


def _version(number, inputs):
    columns = json.dumps([{"name": n, "type": t} for n, t in inputs])
    return ModelVersion("m", number, None, None, signature={"inputs": columns, "outputs": None})


def test_signatures():
    same = check_signatures(_version("3", [("a", "double"), ("b", "double")]), _version("2", [("a", "double")]))
    assert same.compatible
    needs_more = check_signatures(_version("3", [("a", "double")]), _version("2", [("a", "double"), ("c", "long")]))
    assert not needs_more.compatible and "'c'" in needs_more.reason
    retyped = check_signatures(_version("3", [("a", "double")]), _version("2", [("a", "string")]))
    assert not retyped.compatible and "string" in retyped.reason
    unknown = check_signatures(ModelVersion("m", "3", None, None), _version("2", [("a", "double")]))
    assert unknown.compatible and "not checked" in unknown.reason
