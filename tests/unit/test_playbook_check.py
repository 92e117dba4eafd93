"""Playbook validation: a malformed corpus is refused file by file, hostile input fast and without running
anything, every problem is reported where it is, a valid playbook builds the expected model, and the
structure/prose fingerprints tell a changed playbook from a reworded one."""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from console.adapters.playbook_yaml import (
    load_playbook,
    load_playbook_with_text,
    load_playbooks,
    read_playbook_text,
)
from console.cli import main
from console.domain.credentials import address_in, credential_in
from console.domain.playbook import (
    DEFAULT_HUMAN_TIMEOUT,
    MAX_HUMAN_TIMEOUT_MINUTES,
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
from console.domain.playbook_check import (
    DEFAULT_INPUTS,
    CheckContext,
    Problem,
    prose_changes,
    structure_changes,
)
from tests.fixtures.hostile_playbooks import HOSTILE, misspelled_playbook

CORPUS = Path(__file__).parent / "playbook_corpus"
CONTEXT = CheckContext(
    metric_names=frozenset({"error_rate", "latency_p99"}),
    endpoint_names=frozenset({"pager"}),
    webhook_names=frozenset({"oncall"}),
    require_confirmation=True,
)

# Each corpus file holds one class of problem; its first problem must contain this fragment.
EXPECTED = {
    # hostile files
    "alias_bomb.yaml": "anchor &a is not allowed",
    "alias_only.yaml": "anchor &step is not allowed",
    "python_object_apply.yaml": "tag !!python/object/apply:os.system is not allowed",
    "python_name.yaml": "tag !!python/name:os.system is not allowed",
    "custom_tag.yaml": "tag !include is not allowed",
    "binary_tag.yaml": "tag !!binary is not allowed",
    "bad_explicit_int.yaml": "'twelve' is not a valid !!int",
    "huge_int.yaml": "5000 characters is not a valid !!int",
    "non_utf8.yaml": "not UTF-8 text: byte 0xe9",
    "nul_byte.yaml": "NUL byte",
    "utf16.yaml": "NUL byte",
    "control_char.yaml": "control character U+001B",
    "duplicate_key.yaml": "duplicate key 'metric' (first at line 7)",
    "tab_indent.yaml": "tab in the indentation",
    "top_level_list.yaml": "a playbook must be a mapping of keys (id, version, steps, ...), found a list",
    "top_level_scalar.yaml": "found the text 'just some text'",
    "empty.yaml": "the file is empty",
    "comments_only.yaml": "the file is empty",
    "syntax_error.yaml": "not valid YAML: did not find expected ',' or ']'",
    "two_documents.yaml": "a second YAML document",
    "complex_key.yaml": "a mapping key must be a plain value",
    # the playbook's shape
    "missing_steps.yaml": "a playbook needs 'steps'",
    "unknown_top_key.yaml": "unknown key 'titel' in a playbook (did you mean 'title'?)",
    "version_not_integer.yaml": "must be a whole number, found the text 'three'",
    "severity_out_of_range.yaml": "must be between 1 and 4, found 7",
    "bad_playbook_id.yaml": "id 'Canary_Regression' may hold only lower-case letters, digits and '-'",
    "steps_not_list.yaml": "must be a list of steps, found a mapping",
    "step_not_mapping.yaml": "a step must be a mapping",
    "unknown_step_kind.yaml": "unknown kind 'chek' (did you mean 'check'?)",
    "unknown_step_key.yaml": "unknown key 'nxt' in a guidance step (did you mean 'next'?)",
    "key_of_other_kind.yaml": "'next' does not apply to a check step",
    "wrong_bool.yaml": "must be true or false, found the text 'maybe'",
    "yes_as_option_id.yaml": "quote it to keep it text: 'yes'",
    # names
    "unknown_next.yaml": "unknown step 'fin' (did you mean 'fine'?)",
    "unknown_start.yaml": "unknown step 'begin'",
    "unknown_branch_target.yaml": "unknown step 'fien' (did you mean 'fine'?)",
    "unknown_input.yaml": "unknown input 'canddate' (did you mean 'candidate'?)",
    "unknown_metric.yaml": "unknown metric 'eror_rate' (did you mean 'error_rate'?)",
    "unknown_endpoint.yaml": "unknown endpoint 'pagr' (did you mean 'pager'?)",
    "unknown_webhook.yaml": "unknown channel 'on-call' (did you mean 'oncall'?)",
    "unknown_role.yaml": "unknown role 'admin'",
    "bad_when.yaml": "unknown verdict 'breached' (did you mean 'breach'?)",
    "input_alias_and_version.yaml": "needs exactly one of alias ({alias: challenger}), version",
    # step kinds
    "check_missing_branch.yaml": "missing branch 'no_data'",
    "misspelt_branch.yaml": "unknown key 'nodata' in a check step's branches (did you mean 'no_data'?)",
    "action_missing_branches.yaml": "a rollback action needs 'branches'",
    "wait_missing_branches.yaml": "a wait step needs 'branches'",
    "choice_timeout_too_long.yaml": "steps[0].timeout.minutes: a choice may wait for a human at most 240 minutes "
                                    "(4 hours), found 600",
    "confirmed_action_timeout_too_long.yaml": "an action may wait for a human at most 240 minutes (4 hours), "
                                              "found 1440",
    "timeout_zero_minutes.yaml": "must be greater than 0",
    "on_timeout_unknown_option.yaml": "unknown on_timeout 'latr' (did you mean 'later'?)",
    "option_id_abort.yaml": "an option may not be called 'abort'",
    "missing_dry_run.yaml": "needs 'dry_run'",
    "undo_of_not_rollback.yaml": "undo names 'look', which is a check step, not a rollback",
    "undo_before_rollback.yaml": "undo of 'drain' comes before it",
    "rollback_without_confirmation.yaml": "confirm: false is refused for a rollback",
    "rollback_same_input.yaml": "leave and target are the same input",
    "wait_never_stable.yaml": "can never be stable",
    "end_unknown_outcome.yaml": "unknown outcome 'rolledback' (did you mean 'rolled_back'?)",
    "end_with_next.yaml": "'next' does not apply to an end step",
    # shadow, promote, fallback and gate checks
    "shadow_unknown_operation.yaml": "unknown operation 'strat' (did you mean 'start'?)",
    "shadow_start_without_version.yaml": "a shadow start needs 'version'",
    "shadow_stop_with_percent.yaml": "'percent' applies only to operation start, not stop",
    "shadow_percent_out_of_range.yaml": "must be between 1 and 100, found 150",
    "shadow_unknown_input.yaml": "unknown input 'shdow'",
    "fallback_without_operation.yaml": "a fallback action needs 'operation'",
    "fallback_drill_without_seconds.yaml": "a fallback drill needs 'seconds'",
    "fallback_seconds_on_engage.yaml": "'seconds' applies only to operation drill, not engage",
    "fallback_drill_too_long.yaml": "a drill of 3600 s is too long: at most 600 s",
    "fallback_unknown_operation.yaml": "unknown operation 'engag' (did you mean 'engage'?)",
    "promote_without_confirmation.yaml": "confirm: false is refused for a promote",
    "promote_unknown_operation.yaml": "unknown operation 'revrt' (did you mean 'revert'?)",
    "promote_without_dry_run.yaml": "a promote action needs 'dry_run'",
    "unknown_action.yaml": "unknown action 'shaddow' (did you mean 'shadow'?)",
    "check_gate_and_metric.yaml": "a check judges a metric or a gate, not both",
    "check_gate_with_segments.yaml": "'segments' does not apply to a gate check",
    "check_unknown_gate.yaml": "unknown gate 'shadw' (did you mean 'shadow'?)",
    "check_without_subject.yaml": "a check step needs 'metric' (a catalogue metric) or 'gate'",
    # the diagnosis (entry condition and check) and the features action
    "when_unknown_diagnosis.yaml": "when[0].diagnosis: unknown diagnosis 'featur' (did you mean 'feature'?)",
    "when_diagnosis_with_verdict.yaml": "'verdict' does not apply to a diagnosis condition",
    "diagnosis_check_verdict_branches.yaml": "a diagnosis check branches on what it finds (feature, model, world, "
                                             "unsure), not on pass, fail, no_data",
    "diagnosis_check_missing_cause.yaml": "missing branch 'unsure': a diagnosis check needs all of feature, model, "
                                          "world, unsure",
    "features_unknown_operation.yaml": "unknown operation 'rolback' (did you mean 'rollback'?)",
    "features_undo_with_to.yaml": "'to' applies only to operation rollback, not undo",
    "features_bad_to.yaml": "'latest' is not a feature view version: write it as v2 or 2",
    "features_without_confirmation.yaml": "confirm: false is refused for a features action",
    # no address where a name belongs, no secret anywhere
    "webhook_url_as_channel.yaml": "steps[0].channel: looks like a URL where a name belongs: a playbook never "
                                   "holds an address; name one from config notify.webhooks",
    "email_as_channel.yaml": "steps[0].channel: looks like an e-mail address where a name belongs",
    "endpoint_host_port.yaml": "steps[0].endpoint: looks like a host:port address where a name belongs",
    "bearer_token_in_text.yaml": "steps[0].text: looks like a bearer token: a playbook never holds a secret",
    "slack_token_in_message.yaml": "steps[0].message.next_update: looks like a Slack token",
    "password_in_text.yaml": "steps[0].text: looks like a password= value",
    "credential_in_http_body.yaml": "steps[0].body.api_token: 'api_token' names a credential",
    "aws_key_in_tag_value.yaml": "steps[0].value: looks like an AWS access key id",
    "jwt_in_prompt.yaml": "steps[0].prompt: looks like a JSON Web Token",
    # references in text
    "unknown_reference.yaml": "unknown reference {{ modle }}",
    "reference_unknown_step.yaml": "{{ steps.lok.reason }}: no step 'lok' (did you mean 'look'?)",
    "reference_wrong_attribute.yaml": "{{ steps.look.verdict }}: a step's result is its outcome, reason or summary",
    "reference_expression.yaml": "unknown reference {{ model.__class__.__mro__ }}",
    "unclosed_reference.yaml": "'{{' is never closed",
    # the graph
    "duplicate_step_id.yaml": "duplicate step id 'look' (first at line 5)",
    "unreachable_step.yaml": "unreachable: no path from the start step 'look' leads to 'orphan'",
    "loop_no_way_out.yaml": "loop with no way out: again -> still -> again",
    "never_reaches_end.yaml": "never reaches an end",
    "no_end_step.yaml": "no end step",
    "dead_end_step.yaml": "a guidance step needs 'next'",
}

CORPUS_FILES = sorted(path for path in CORPUS.iterdir() if path.is_file())

VALID = """\
id: canary-regression
title: Canary regression — drain the challenger
version: 3
description: |
  The challenger breaches on {{ model }}; drain it.
models: [fraud-detector]
severity: 1
roles: [act]
when:
  - {version: candidate, verdict: breach}
  - {version: stable, verdict: pass, metrics: [error_rate]}
steps:
  - id: look
    kind: check
    title: Is the challenger failing?
    metric: error_rate
    segments: [eu, us]
    suspect_as: fail
    branches: {pass: all-clear, fail: decide, no_data: decide}
  - id: decide
    kind: choice
    prompt: Roll {{ inputs.candidate }} back? The check said {{ steps.look.reason }}.
    options:
      - {id: rollback, label: Roll back now, next: drain}
      - {id: watch, label: Keep watching, next: watch}
    timeout: {minutes: 10, on_timeout: rollback}
  - id: drain
    kind: action
    action: rollback
    mode: gradual
    dry_run: describe
    timeout: {minutes: 5, on_timeout: escalate}
    branches: {done: settle, failed: escalate-end}
  - id: settle
    kind: wait
    metrics: [error_rate, latency_p99]
    stable_for: 3
    every_s: 10
    timeout: {minutes: 15}
    branches: {stable: tell, worse: put-back, timeout: tell}
  - id: put-back
    kind: action
    action: undo
    of: drain
    dry_run: stop
    timeout: {minutes: 5, on_timeout: abort}
    branches: {done: escalate-end, failed: escalate-end}
  - id: tell
    kind: notify
    channel: oncall
    message:
      summary: "{{ model }}: rolled back {{ inputs.candidate }} ({{ steps.drain.summary }})"
      what_changed: traffic moved to {{ inputs.stable }}
    next: page
  - id: page
    kind: action
    action: http
    endpoint: pager
    body: {text: "{{ model }} rolled back", severity: 2, tags: [rewind]}
    confirm: false
    dry_run: describe
    branches: {done: tag-it, failed: tag-it}
  - id: tag-it
    kind: action
    action: tag
    version: candidate
    key: rewind.rolled_back
    value: "{{ incident }}"
    confirm: false
    dry_run: describe
    branches: {done: rolled-back, failed: rolled-back}
  - id: watch
    kind: guidance
    text: Keep an eye on the matrix; open the playbook again if it gets worse.
    next: all-clear
  - id: all-clear
    kind: end
    outcome: not_rolled_back
  - id: rolled-back
    kind: end
    outcome: rolled_back
  - id: escalate-end
    kind: end
    outcome: escalated
"""

MINIMAL = """\
id: minimal
version: 1
steps:
  - id: look
    kind: check
    metric: error_rate
    branches: {pass: fine, fail: fine, no_data: fine}
  - id: fine
    kind: end
    outcome: resolved
"""


def _valid(text: str = VALID, context: CheckContext = CONTEXT) -> Playbook:
    playbook, problems = read_playbook_text(text, "valid.yaml", context)
    assert problems == [] and playbook is not None, [str(p) for p in problems]
    return playbook


def _refused(path: Path, context: CheckContext = CONTEXT) -> list[Problem]:
    playbook, problems = load_playbook(path, context)
    assert playbook is None and problems
    return problems


# -- the corpus -------------------------------------------------------------------------------------

def test_the_corpus_is_large_and_every_file_has_an_expectation():
    names = {path.name for path in CORPUS_FILES}
    assert len(names) >= 30
    assert names == set(EXPECTED)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
def test_every_corpus_file_is_refused_with_a_clear_first_problem(path):
    first = str(_refused(path)[0])
    assert first.startswith(f"{path}:"), first
    assert EXPECTED[path.name] in first, first
    assert "Traceback" not in first and "\n" not in first


# -- hostile input made in the test ------------------------------------------------------------------
# Refused at once: a hang (a FIFO opened for reading, a parser walking 10 MB) fails on the timeout; how
# fast each refusal is, is measured by make bench (playbook_refusal_ms), not asserted here.

@pytest.mark.timeout(30)
@pytest.mark.parametrize(("make", "fragment"), [
    pytest.param(make, fragment, id=name,
                 marks=pytest.mark.skipif(name == "fifo" and not hasattr(os, "mkfifo"), reason="POSIX"))
    for name, make, fragment in HOSTILE
])
def test_hostile_files_are_refused_at_once_with_one_line(tmp_path, make, fragment):
    path = make(tmp_path / "hostile.yaml")
    problems = _refused(path)
    assert len(problems) == 1
    assert str(problems[0]).startswith(str(path)) and fragment in str(problems[0])


@pytest.mark.timeout(30)
def test_a_ten_megabyte_text_is_refused_without_parsing_it():
    text = "description: padding\n" * 500_000
    playbook, problems = read_playbook_text(text, "big.yaml")
    assert playbook is None and "larger than a playbook may be" in str(problems[0])


@pytest.mark.timeout(30)
def test_a_thousand_misspellings_are_each_reported():
    playbook, problems = read_playbook_text(misspelled_playbook(1500), "typos.yaml")
    assert playbook is None and len(problems) > 3000


@pytest.mark.parametrize("payload", [
    "!!python/object/apply:builtins.open [{marker}, w]",
    "!!python/object/new:builtins.open [{marker}, w]",
    "!!python/object/apply:os.system [\"touch {marker}\"]",
])
def test_a_python_tag_never_runs(tmp_path, payload):
    marker = tmp_path / "marker"
    text = f"id: evil\nversion: 1\ntitle: {payload.format(marker=marker)}\nsteps: []\n"
    if "builtins.open" in payload and "apply" in payload:  # the payload is live: an unsafe loader runs it
        yaml.unsafe_load(text)["title"].close()
        assert marker.exists()
        marker.unlink()
    path = tmp_path / "evil.yaml"
    path.write_text(text)
    for playbook, problems in (load_playbook(path), read_playbook_text(text, "evil.yaml")):
        assert playbook is None and len(problems) == 1 and "is not allowed" in problems[0].message
    assert not marker.exists()


def test_bytes_and_a_byte_order_mark_read_like_text():
    from_text, from_bytes = _valid(MINIMAL), _valid(MINIMAL.encode("utf-8-sig"))
    assert replace(from_bytes, content_hash="") == replace(from_text, content_hash="")
    assert from_bytes.content_hash == hashlib.sha256(MINIMAL.encode("utf-8-sig")).hexdigest()


# -- the good path ----------------------------------------------------------------------------------

def test_a_valid_playbook_builds_the_expected_model():
    playbook = _valid()
    assert (playbook.id, playbook.title, playbook.version, playbook.start) == (
        "canary-regression", "Canary regression — drain the challenger", 3, "look")
    assert playbook.description == "The challenger breaches on {{ model }}; drain it.\n"
    assert (playbook.models, playbook.severity, playbook.roles) == (("fraud-detector",), 1, ("act",))
    assert playbook.inputs == DEFAULT_INPUTS == Playbook("x", "x", 1, (), "x").inputs
    assert playbook.when == (EntryCondition("candidate", "breach"), EntryCondition("stable", "pass", ("error_rate",)))
    assert playbook.source == "valid.yaml"
    assert playbook.content_hash == hashlib.sha256(VALID.encode()).hexdigest()
    assert len(playbook.structure_hash) == 64
    assert [step.id for step in playbook.steps] == [
        "look", "decide", "drain", "settle", "put-back", "tell", "page", "tag-it", "watch", "all-clear",
        "rolled-back", "escalate-end"]
    assert playbook.step("look") == Step(
        id="look", kind=StepKind.CHECK, title="Is the challenger failing?", metric="error_rate",
        segments=("eu", "us"), suspect_as="fail",
        branches={"pass": "all-clear", "fail": "decide", "no_data": "decide"}, position=Position(13, 5))
    decide = playbook.step("decide")
    assert decide.title == "Decide"  # derived from the id
    assert decide.options == (Option("rollback", "Roll back now", "drain"), Option("watch", "Keep watching", "watch"))
    assert decide.timeout == Timeout(10.0, "rollback")
    drain = playbook.step("drain")
    assert (drain.action, drain.mode, drain.leave, drain.target, drain.confirm, drain.dry_run, drain.timeout) == (
        ActionKind.ROLLBACK, "gradual", "candidate", "stable", True, "describe", Timeout(5.0, "escalate"))
    settle = playbook.step("settle")
    assert (settle.metrics, settle.stable_for, settle.every_s, settle.timeout) == (
        ("error_rate", "latency_p99"), 3, 10.0, Timeout(15.0))
    assert playbook.step("put-back").of == "drain"
    assert playbook.step("tell").message == Message(
        summary="{{ model }}: rolled back {{ inputs.candidate }} ({{ steps.drain.summary }})",
        what_changed="traffic moved to {{ inputs.stable }}")
    assert playbook.step("page").body == {"text": "{{ model }} rolled back", "severity": 2, "tags": ["rewind"]}
    tag = playbook.step("tag-it")
    assert (tag.action, tag.version, tag.key, tag.value, tag.confirm) == (
        ActionKind.TAG, "candidate", "rewind.rolled_back", "{{ incident }}", False)
    assert playbook.step("all-clear") == Step(
        id="all-clear", kind=StepKind.END, title="All clear", outcome="not_rolled_back", position=Position(76, 5))


def test_defaults_fill_what_a_playbook_leaves_out():
    playbook = _valid(MINIMAL)
    assert (playbook.title, playbook.start, playbook.models, playbook.severity, playbook.roles) == (
        "minimal", "look", ("*",), 2, ("act",))
    assert playbook.inputs == (InputSpec("candidate", alias="challenger"), InputSpec("stable", alias="champion"))
    assert playbook.step("look").version == "candidate"


def test_given_inputs_replace_the_defaults():
    text = MINIMAL.replace("steps:", "inputs:\n  new: {version: 7}\n  old: {alias: champion}\nsteps:")
    playbook, problems = read_playbook_text(text, "inputs.yaml", CONTEXT)
    assert playbook is None
    assert [p.message for p in problems] == [
        "'version' defaults to input 'candidate', which this playbook's inputs do not define; name one of: new, old"]
    playbook = _valid(text.replace("    metric: error_rate\n", "    metric: error_rate\n    version: new\n"))
    assert playbook.inputs == (InputSpec("new", version="7"), InputSpec("old", alias="champion"))


def test_without_a_config_names_are_not_checked_but_copy_and_confirmation_are():
    text = VALID.replace("metric: error_rate", "metric: anything").replace("endpoint: pager", "endpoint: any") \
        .replace("channel: oncall", "channel: anywhere")
    assert _valid(text, CheckContext()).step("look").metric == "anything"
    _, problems = read_playbook_text(text, "v.yaml", CONTEXT)
    assert len(problems) == 3
    copy = VALID.replace("channel: oncall", "channel: copy")
    assert _valid(copy, replace(CONTEXT, webhook_names=frozenset())).step("tell").channel == "copy"
    unconfirmed = VALID.replace("    mode: gradual\n", "    mode: gradual\n    confirm: false\n")
    assert _valid(unconfirmed, replace(CONTEXT, require_confirmation=False)).step("drain").confirm is False
    _, problems = read_playbook_text(unconfirmed, "v.yaml", CONTEXT)
    assert [p.path for p in problems] == ["steps[2].confirm"]


# -- every problem, where it is ---------------------------------------------------------------------

MULTI = """\
id: Multi_Errors
version: 1
titel: Typo
steps:
  - id: look
    kind: check
    metric: eror_rate
    branches: {pass: done, fail: decide}
  - id: decide
    kind: choice
    prompt: Roll back {{ inputs.canddate }}?
    options:
      - {id: now, label: Now, next: don}
  - id: done
    kind: end
    outcome: resolvd
"""


def test_every_problem_of_a_file_is_reported_with_its_line_column_and_path():
    playbook, problems = read_playbook_text(MULTI, "multi.yaml", CONTEXT)
    assert playbook is None
    expected = [
        (1, 5, "id", "id 'Multi_Errors' may hold only"),
        (3, 1, "titel", "unknown key 'titel' in a playbook (did you mean 'title'?)"),
        (7, 13, "steps[0].metric", "unknown metric 'eror_rate' (did you mean 'error_rate'?)"),
        (8, 15, "steps[0].branches.no_data", "missing branch 'no_data'"),
        (11, 13, "steps[1].prompt", "{{ inputs.canddate }}: no input 'canddate' (did you mean 'candidate'?)"),
        (13, 37, "steps[1].options[0].next", "unknown step 'don' (did you mean 'done'?)"),
        (16, 14, "steps[2].outcome", "unknown outcome 'resolvd' (did you mean 'resolved'?)"),
    ]
    assert len(problems) == len(expected), [str(p) for p in problems]
    for problem, (line, column, path, fragment) in zip(problems, expected, strict=True):
        assert (problem.line, problem.column, problem.path) == (line, column, path), str(problem)
        assert fragment in problem.message
    assert str(problems[3]) == ("multi.yaml:8:15: steps[0].branches.no_data: missing branch 'no_data': "
                                "a check step needs all of pass, fail, no_data")


def test_a_problem_prints_as_file_line_column_path_message():
    assert str(Problem("a.yaml", 3, 7, "steps[1].next", "unknown step 'x'")) == \
        "a.yaml:3:7: steps[1].next: unknown step 'x'"
    assert str(Problem("a.yaml", 2, 1, "", "tab")) == "a.yaml:2:1: tab"
    assert str(Problem("a.yaml", 0, 0, "", "file not found")) == "a.yaml: file not found"


def test_malformed_shapes_never_raise():
    rng = random.Random(20240611)
    pieces = [":", "-", "[", "]", "{", "}", "'", '"', "#", "|", ">", "\n", "  ", "- ", "{{", "}}", "~", "? ", ","]
    for _ in range(300):
        text = list(VALID)
        for _ in range(rng.randint(1, 5)):
            at = rng.randrange(len(text))
            if rng.random() < 0.5:
                del text[at:at + rng.randint(1, 40)]
            else:
                text.insert(at, rng.choice(pieces))
        playbook, problems = read_playbook_text("".join(text), "fuzz.yaml", CONTEXT)
        assert (playbook is None) == bool(problems)
        assert all(str(p).startswith("fuzz.yaml") for p in problems)


def test_playbook_ids_are_unique_among_the_files(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(MINIMAL)
    second.write_text("# the same id again\n" + MINIMAL)
    playbooks, problems = load_playbooks([first, second], CONTEXT)
    assert [p.source for p in playbooks] == [str(first)]
    assert [str(p) for p in problems] == [
        f"{second}:2:5: id: id 'minimal' is already used by {first}: playbook ids are unique"]


# -- what changed between two versions of a playbook --------------------------------------------------

def test_rewording_changes_the_prose_and_not_the_structure():
    old = _valid()
    reworded = (VALID.replace("Is the challenger failing?", "Does the challenger fail?")
                .replace("Keep watching", "Watch a while").replace("version: 3", "version: 4")
                .replace("traffic moved to", "traffic now on").replace("drain it.", "drain it now.")
                .replace("    stable_for: 3\n", "    # three calm evaluations\n    stable_for: 3\n"))
    new = _valid(reworded)
    assert new.content_hash != old.content_hash
    assert new.structure_hash == old.structure_hash
    assert structure_changes(old, new) == []
    assert prose_changes(old, new) == [
        '''version: 3 -> 4''',
        '''description: "The challenger breaches on {{ model }}; drain it.\\n" -> '''
        '''"The challenger breaches on {{ model }}; drain it now.\\n"''',
        '''step 'look': title: "Is the challenger failing?" -> "Does the challenger fail?"''',
        '''step 'decide': labels.watch: "Keep watching" -> "Watch a while"''',
        '''step 'tell': message.what_changed: "traffic moved to {{ inputs.stable }}" -> '''
        '''"traffic now on {{ inputs.stable }}"''',
    ]


def test_changing_what_runs_changes_the_structure():
    old = _valid()
    changed = _valid(VALID.replace("metric: error_rate\n    segments", "metric: latency_p99\n    segments")
                     .replace("minutes: 10, on_timeout: rollback", "minutes: 10, on_timeout: watch")
                     .replace("mode: gradual", "mode: immediate"))
    assert changed.structure_hash != old.structure_hash
    assert structure_changes(old, changed) == [
        '''step 'look': metric: "error_rate" -> "latency_p99"''',
        '''step 'decide': timeout.on_timeout: "rollback" -> "watch"''',
        '''step 'drain': mode: "gradual" -> "immediate"''',
    ]
    assert prose_changes(old, changed) == []


def test_added_removed_and_reordered_steps():
    old = _valid(MINIMAL)
    reordered = _valid("id: minimal\nversion: 1\nstart: look\nsteps:\n"
                       "  - {id: fine, kind: end, outcome: resolved}\n"
                       "  - {id: look, kind: check, metric: error_rate,\n"
                       "     branches: {pass: fine, fail: fine, no_data: fine}}\n")
    assert structure_changes(old, reordered) == [] and reordered.structure_hash == old.structure_hash
    grown = _valid(MINIMAL.replace("fail: fine", "fail: tell") + "  - id: tell\n    kind: guidance\n"
                                                                  "    text: Tell someone.\n    next: fine\n")
    assert structure_changes(old, grown) == [
        '''step 'look': branches.fail: "fine" -> "tell"''',
        "step 'tell' added (guidance)",
    ]
    assert structure_changes(grown, old)[-1] == "step 'tell' removed"
    assert prose_changes(old, grown) == []


def test_the_text_a_file_was_checked_from_checks_the_same(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(MINIMAL.encode("utf-8-sig"))
    playbook, problems, text = load_playbook_with_text(path, CONTEXT)
    assert playbook is not None and problems == [] and text is not None
    again, problems = read_playbook_text(text, str(path), CONTEXT)
    assert again == playbook
    path.write_bytes(b"title: caf\xe9\n")
    assert load_playbook_with_text(path, CONTEXT)[2] is None


# -- no address where a name belongs, no secret anywhere ---------------------------------------------

SECRETS = {
    "webhook_url_as_channel.yaml": "c3VwZXJzZWNyZXRwYXRo",
    "bearer_token_in_text.yaml": "9f8KxQ2mZt7LpW3vR5nY1cB6",
    "slack_token_in_message.yaml": "Zq9vLmT3xR7kPw2sYb4nHc8d",
    "password_in_text.yaml": "Tr0ub4dor",
    "credential_in_http_body.yaml": "opensesame",
    "aws_key_in_tag_value.yaml": "AKIAQX4B7NRT2ZK5WM3D",
    "jwt_in_prompt.yaml": "eyJhbGciOiJIUzI1NiJ9",
}


@pytest.mark.parametrize(("name", "secret"), SECRETS.items(), ids=list(SECRETS))
def test_a_refused_secret_is_never_echoed(name, secret):
    problems = _refused(CORPUS / name)
    assert secret in (CORPUS / name).read_text()
    assert len(problems) == 1 and secret not in str(problems[0]) and secret not in str(problems[0].as_dict())


@pytest.mark.parametrize(("text", "found"), [
    ("curl -H 'Authorization: Bearer 9f8KxQ2mZt7LpW3vR5nY1cB6'", "a bearer token"),
    ("Authorization: s3cr3tT0ken99", "an Authorization header"),
    ("export TOKEN=abc123def456", "a token= value"),
    ("xoxp-2048183612-5712946081-Zq9vLmT3xR7k", "a Slack token"),
    ("ghp_" + "a1B2" * 9, "a GitHub token"),
    ("key AKIAQX4B7NRT2ZK5WM3D", "an AWS access key id"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwifQ.sig", "a JSON Web Token"),
    ("postgresql://rewind:hunter22@db:5432/journal", "a URL with a password in it"),
    ("post to https://hooks.slack.com/services/T0AAAA/B0BBBB/cccc", "a webhook URL (its path is the secret)"),
    ("seed PanoglMoFfqjKdFkBYuP7ddEaqhBJcSd", "a long random-looking string (a key or a token?)"),
])
def test_credentials_are_recognised_by_their_shape(text, found):
    assert credential_in(text) == found


@pytest.mark.parametrize("text", [
    "Runbook: https://runbooks.example.com/ml/rollback-guide#drain",
    "https://docs.google.com/document/d/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd/edit",
    "Bearer tokens come from the vault; use Bearer authentication",
    "the password: ask the DBA; set token=$PAGER_TOKEN or api_key={{ incident }}",
    "content e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "AbstractSingletonProxyFactoryBean and ThisIsALongCamelCaseIdentifier2024",
    "{{ model }}: candidate v{{ inputs.candidate }} aborted before promotion ({{ incident }})",
])
def test_prose_and_links_are_not_credentials(text):
    assert credential_in(text) is None


@pytest.mark.parametrize(("name", "found"), [
    ("https://hooks.example.com/x", "a URL"), ("hooks.example.com/x", "a URL"), ("//pager", "a URL"),
    ("oncall@example.com", "an e-mail address"), ("pager.example.com:8443", "a host:port address"),
    ("localhost:9093", "a host:port address"), ("10.0.0.7", "an IP address"), ("/api/ack", "a URL path"),
    ("oncall", None), ("model-owners", None), ("error_rate", None), ("job:http_errors:rate5m", None),
])
def test_addresses_are_told_from_names(name, found):
    assert address_in(name) == found


def test_prose_may_link_a_runbook_and_a_body_may_name_a_token_by_reference():
    linked = VALID.replace("text: Keep an eye on the matrix;", "text: See https://runbooks.example.com/ml and keep an "
                                                               "eye on the matrix;") \
        .replace("tags: [rewind]}", "tags: [rewind], dedup_token: '{{ incident }}'}")
    playbook = _valid(linked)
    assert "https://runbooks.example.com/ml" in playbook.step("watch").text
    assert playbook.step("page").body["dedup_token"] == "{{ incident }}"


def test_a_problem_names_its_step_and_field():
    _, problems = read_playbook_text(VALID.replace("endpoint: pager", "endpoint: https://pager.example.com/ack"),
                                     "v.yaml", CONTEXT)
    assert [(p.path, p.step, p.field) for p in problems] == [("steps[6].endpoint", "page", "endpoint")]
    assert problems[0].as_dict() == {
        "file": "v.yaml", "line": 58, "column": 15, "path": "steps[6].endpoint", "step": "page", "field": "endpoint",
        "message": "looks like a URL where a name belongs: a playbook never holds an address; name one from config "
                   "endpoints"}
    assert str(problems[0]) == f"v.yaml:58:15: steps[6].endpoint: {problems[0].message}"
    whole_file = Problem("v.yaml", 0, 0, "", "file not found")
    assert (whole_file.as_dict()["step"], whole_file.as_dict()["field"]) == (None, None)


# -- human timeouts ---------------------------------------------------------------------------------

def test_a_human_step_without_a_timeout_waits_the_default():
    untimed = VALID.replace("    timeout: {minutes: 10, on_timeout: rollback}\n", "") \
        .replace("    timeout: {minutes: 5, on_timeout: escalate}\n", "")
    playbook = _valid(untimed)
    assert DEFAULT_HUMAN_TIMEOUT == Timeout(10.0, "abort")
    assert playbook.step("decide").timeout == DEFAULT_HUMAN_TIMEOUT  # a choice
    assert playbook.step("drain").timeout == DEFAULT_HUMAN_TIMEOUT  # a confirmed rollback
    assert playbook.step("page").timeout is None  # confirm: false: nobody is asked
    promote = ("id: p\nversion: 1\nsteps:\n  - {id: go, kind: action, action: promote, dry_run: describe,\n"
               "     branches: {done: fine, failed: fine}}\n  - {id: fine, kind: end, outcome: resolved}\n")
    assert _valid(promote).step("go").timeout == DEFAULT_HUMAN_TIMEOUT
    _, problems = read_playbook_text(untimed.replace("    timeout: {minutes: 15}\n", ""), "v.yaml", CONTEXT)
    assert [p.message for p in problems] == ["a wait step needs 'timeout': timeout: {minutes: N}"]


def test_the_human_maximum_is_inclusive_and_a_wait_is_not_a_human_step():
    longest = VALID.replace("minutes: 10, on_timeout: rollback", f"minutes: {MAX_HUMAN_TIMEOUT_MINUTES}, "
                                                                 "on_timeout: rollback")
    assert _valid(longest).step("decide").timeout == Timeout(float(MAX_HUMAN_TIMEOUT_MINUTES), "rollback")
    _, problems = read_playbook_text(longest.replace(f"minutes: {MAX_HUMAN_TIMEOUT_MINUTES},", "minutes: 241,"),
                                     "v.yaml", CONTEXT)
    assert [(p.step, p.field) for p in problems] == [("decide", "timeout.minutes")]
    watched = VALID.replace("timeout: {minutes: 15}", "timeout: {minutes: 600}")
    assert _valid(watched).step("settle").timeout == Timeout(600.0)


# -- rewind playbook validate --json -------------------------------------------------------------------

@pytest.fixture
def no_config(monkeypatch, tmp_path):
    monkeypatch.delenv("REWIND_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("REWIND_SANDBOX_DIR", str(tmp_path / "sandbox"))


def test_validate_json_lists_every_file_with_its_errors(no_config, tmp_path, capsys):
    import json

    good, bad = tmp_path / "good.yaml", CORPUS / "webhook_url_as_channel.yaml"
    good.write_text(MINIMAL)
    assert main(["playbook", "validate", "--json", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document == {
        "schema": "rewind.playbook-validate/1", "ok": False, "names_checked": False,
        "files": [
            {"file": str(good), "id": "minimal", "version": 1, "ok": True, "error_count": 0, "errors": []},
            {"file": str(bad), "id": None, "version": None, "ok": False, "error_count": 1, "errors": [
                {"file": str(bad), "line": 7, "column": 14, "path": "steps[0].channel", "step": "tell",
                 "field": "channel", "message": "looks like a URL where a name belongs: a playbook never holds an "
                                                "address; name one from config notify.webhooks, or copy"}]},
        ],
    }
    assert SECRETS[bad.name] not in captured.out
    assert "names are not checked" in captured.err and "1 of 2 file(s) invalid" in captured.err


def test_validate_all_json_passes_the_shipped_playbooks_and_usage_errors_exit_2(no_config, capsys):
    import json

    assert main(["playbook", "validate", "--all", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == "rewind.playbook-validate/1" and document["ok"] is True
    assert {f["id"] for f in document["files"]} >= {"canary-regression", "fallback", "version-outage"}
    assert all(f["ok"] and f["errors"] == [] and f["version"] >= 1 for f in document["files"])
    assert main(["playbook", "validate", "--json"]) == 2
    assert main(["playbook", "validate", "--all", str(CORPUS / "empty.yaml")]) == 2
    assert "give playbook files, or --all" in capsys.readouterr().err


def test_validate_text_output_is_unchanged(no_config, tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(MINIMAL)
    assert main(["playbook", "validate", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok (minimal v1, 2 steps)\n"


def test_list_says_where_it_looked_when_no_playbook_is_there(tmp_path, capsys):
    empty = tmp_path / "playbooks"
    empty.mkdir()
    config = tmp_path / "rewind.yaml"
    config.write_text(yaml.safe_dump({
        "registry": {"tracking_uri": "sqlite:////tmp/x.db"},
        "router": {"socket": "/tmp/h.sock", "backends": {"m": "be_m"}},
        "metrics": {"url": "http://127.0.0.1:9090/", "window": "1m", "traffic_metric": "rate", "catalogue": [
            {"name": "rate", "title": "req/s", "unit": "per_second", "query": 'x{model="$model"}'}]},
        "playbooks": {"dirs": [str(empty)]},
    }))
    assert main(["playbook", "list", "--config", str(config)]) == 0
    assert f"no playbooks found in {empty}" in capsys.readouterr().out
