"""Every console flow over fakes: overview, sort and filter, explain, rollback confirmed and cancelled, undo,
read-only, approval, a timeline written by another console, systems down, slow or answering garbage."""

from __future__ import annotations

import pytest
from textual import events

from console.domain.journal import Actor, EventKind
from console.services.journal import JournalService
from console.tui.dialogs.confirm import ConfirmDialog
from console.tui.dialogs.progress import ActionScreen
from console.tui.screens.timeline import TimelineScreen
from console.tui.widgets.matrix import MatrixView
from console.tui.widgets.status_header import StatusHeader
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import FROZEN_AT, MODEL, World


def matrix_lines(app, rows: int = 10) -> list[str]:
    matrix = app.screen_stack[0].query_one(MatrixView)
    return [matrix.line_text(y) for y in range(min(rows, matrix.size.height))]


def header_text(app) -> str:
    return "\n".join(line.plain for line in app.screen_stack[0].query_one(StatusHeader).lines)


def footer_keys(app) -> set[str]:
    return {binding.action for (_, binding, enabled, _) in app.active_bindings.values() if enabled}


def kinds(world: World) -> list[str]:
    incident = world.journal.open_incident_of(MODEL)
    assert incident is not None
    return [str(e.kind) for e in world.journal.chain(incident.incident_id)[1]]


def decisions(world: World) -> list[dict]:
    incident = world.journal.open_incident_of(MODEL)
    return [e.payload for e in world.journal.chain(incident.incident_id)[1] if e.kind is EventKind.DECISION]


async def first_matrix(pilot, app) -> None:
    await wait_until(pilot, lambda: app.snapshot is not None, what="the first judged matrix")
    await pilot.pause()


async def ask(pilot, app, key: str = "r") -> ConfirmDialog:
    """Press ``key`` and wait for its typed confirmation."""
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what=f"the confirmation after {key}")
    return app.screen


async def confirmed(pilot, app, key: str = "r") -> ActionScreen:
    """Press ``key``, type the model's name, Enter; wait for the outcome."""
    await ask(pilot, app, key)
    await pilot.press(*MODEL, "enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen.finished,
                     what=f"the outcome after {key}")
    return app.screen


async def test_the_overview_shows_each_verdict_with_a_symbol_and_a_word(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        lines = matrix_lines(app)
        breach = next(line for line in lines if line.startswith("mobile") and "v3" in line)
        assert "✗ BREACH" in breach and "15.0%" in breach and "+14.0 pt" in breach
        assert any(line.startswith("mobile") and "v2*" in line and "✓ ok" in line for line in lines)
        header = header_text(app)
        assert "champion→v2" in header and "v2:90" in header and "v3:10" in header
        assert "✗ 1 breaching" in header and "registry ok" in header and "metrics ok" in header


async def test_wide_terminals_show_the_delta_against_the_stable_version(world):
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await first_matrix(pilot, app)
        breach = next(line for line in matrix_lines(app) if line.startswith("mobile") and "v3" in line)
        assert "✗ BREACH" in breach and "+14.0 pt" in breach and "ok" in matrix_lines(app)[1]


async def test_sort_worst_first_and_filter_segments(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        assert matrix_lines(app)[1].startswith("mobile") and "v2" in matrix_lines(app)[1]
        await pilot.press("s")
        await pilot.pause()
        assert "BREACH" in matrix_lines(app)[1], "worst first puts the breaching row on top"
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"web", "enter")
        await pilot.pause()
        rows = [line for line in matrix_lines(app)[1:] if line.strip()]
        assert rows and all(line.startswith("web") for line in rows)


async def test_explain_shows_the_promql_values_criterion_and_reason(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await pilot.press("s", "e")  # the breaching row is first; error rate is the focused metric
        await pilot.pause()
        text = str(app.screen.query_one("#explain").render())
        assert "BREACH" in text and "error rate" in text and "v3" in text and "mobile" in text
        assert "PromQL: sum(rate(errors[1m]))" in text and "counts 60/400" in text and "criterion" in text


async def test_a_rollback_needs_the_typed_name_then_changes_both_systems_and_is_journaled(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        dialog = await ask(pilot, app)
        assert app.focused.id == "cancel", "Cancel is focused when the dialog opens"
        assert dialog.query_one("#confirm").disabled
        await pilot.press(*MODEL)
        await pilot.pause()
        assert not dialog.query_one("#confirm").disabled
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen.finished,
                         what="the outcome")
        assert world.router.weights == {"1": 0, "2": 100, "3": 0}
        assert world.registry.aliases.get("challenger") is None and world.registry.aliases["champion"] == "2"
        text = "\n".join(line.plain for line in app.screen.lines)
        assert "router weights now   v1: 0, v2: 100, v3: 0" in text and "registry aliases now champion → v2" in text
        made = [d for d in decisions(world) if d["option"] == "rollback"]
        assert made and made[0]["confirmed_by"] == "typed the model name in the console"
        assert "action.applied" in kinds(world)


async def test_a_letter_sent_to_cancel_after_the_focus_moved_still_lands_in_the_name(world):
    """A burst of typing on a busy host: the App hands a letter to Cancel, then an earlier letter moves the
    focus to the field before Cancel passes that letter on. It must land in the name, not vanish."""
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        dialog = await ask(pilot, app)
        await pilot.press(*MODEL[:2])
        await pilot.pause()
        field = dialog.query_one("#typed")
        assert app.focused is field and field.value == MODEL[:2]
        cancel = dialog.query_one("#cancel")
        for letter in MODEL[2:]:  # the letters the App handed Cancel before the focus moved, as the App does
            cancel._forward_event(events.Key(letter, letter))
        await wait_until(pilot, lambda: field.value == MODEL, what=f"the name to read {MODEL}")
        assert not dialog.query_one("#confirm").disabled


async def test_enter_on_the_dialog_cancels_and_nothing_changes(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await ask(pilot, app)
        await pilot.press("enter")  # Cancel is focused: Enter never confirms by default
        await wait_until(pilot, lambda: not app.acting, what="the action to end")
        assert world.router.weights == {"1": 0, "2": 90, "3": 10}
        assert decisions(world)[-1]["option"] == "cancel"
        assert "action.intent" not in kinds(world)


async def test_a_wrong_name_does_not_confirm(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await ask(pilot, app)
        await pilot.press(*"fraud-detectr", "enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and app.screen.query_one("#confirm").disabled
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.acting, what="the action to end")
        assert world.router.weights["3"] == 10


async def test_undo_from_the_outcome_restores_both_systems(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await confirmed(pilot, app, "r")
        await confirmed(pilot, app, "u")
        assert world.router.weights == {"1": 0, "2": 90, "3": 10}
        assert world.registry.aliases == {"champion": "2", "challenger": "3"}


async def test_read_only_hides_the_acting_keys_and_never_acts(world):
    app = console(world, read_only=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        assert not {"rollback", "gradual", "undo", "approve"} & footer_keys(app)
        assert "READ-ONLY" in str(app.screen.query_one("#banner").render())
        await pilot.press("r", "g", "u")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog) and world.router.weights["3"] == 10
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Roll back" not in titles and "Timeline" in titles


async def test_the_footer_offers_the_acting_keys_when_acting_is_allowed(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        assert {"rollback", "gradual", "undo", "timeline", "help"} <= footer_keys(app)
        assert "approve" not in footer_keys(app), "approve applies only when a request waits"


async def test_the_timeline_shows_what_another_console_writes_within_a_refresh(world):
    incident = world.journal.open_incident(MODEL, "2", "error rate up on mobile").incident_id
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, TimelineScreen) and app.screen.shown_seq >= 1,
                         what="the timeline")
        other = JournalService(world.records, Actor("bob", "bastion-2"))
        other.note(incident, "bob: customers on mobile report failures")
        log = app.screen.query_one("#timeline-log")
        await wait_until(pilot, lambda: any("customers on mobile" in line.text for line in log.lines),
                         what="bob's note")
        assert any("bob@bastion-2" in line.text for line in log.lines)


async def test_a_note_and_the_close_are_journaled_from_the_timeline(world, tmp_path):
    incident = world.journal.open_incident(MODEL, "2", "error rate up on mobile").incident_id
    app = console(world, export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(app.screen, TimelineScreen), what="the timeline")
        await pilot.press("n", *"rolled back v3", "enter")
        await wait_until(pilot, lambda: "note" in kinds(world), what="the note")
        await pilot.press("x", "j")
        target = tmp_path / f"{incident}.json"
        await wait_until(pilot, target.exists, what="the JSON export")
        assert "rolled back v3" in target.read_text()
        await pilot.press("c", *"fixed by rollback", "enter")
        await wait_until(pilot, lambda: world.journal.open_incident_of(MODEL) is None, what="the close")


@pytest.mark.parametrize(("mode", "shown"), [("down", "metrics unreachable"), ("garbage", "metrics garbage")])
async def test_a_failing_metrics_source_is_a_visible_state_and_journaled_once(world, mode, shown):
    incident = world.journal.open_incident(MODEL, "2", "watching").incident_id
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        world.metrics.mode = mode
        await wait_until(pilot, lambda: shown in header_text(app), what=shown)
        calls = world.metrics.calls
        await wait_until(pilot, lambda: world.metrics.calls >= calls + 3, what="more refreshes")
        assert "v3" in matrix_lines(app)[2], "the last matrix stays on screen"
        notes = [e.payload["text"] for e in world.journal.chain(incident)[1] if e.kind is EventKind.NOTE]
        assert len([n for n in notes if f"metrics is {mode.replace('down', 'unreachable')}" in n]) == 1
        world.metrics.mode = "ok"
        await wait_until(pilot, lambda: "metrics ok" in header_text(app), what="metrics back")
        await wait_until(pilot, lambda: any("back" in e.payload.get("text", "") for e in
                                            world.journal.chain(incident)[1] if e.kind is EventKind.NOTE),
                         what="the recovery note")


async def test_a_slow_system_delays_only_its_own_panel(world):
    app = console(world)
    app.backend.live().slow_after_s = 0.2
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        world.metrics.delay_s = 0.5
        await wait_until(pilot, lambda: "metrics slow" in header_text(app), what="metrics slow")
        # The router keeps refreshing meanwhile: its reads are not behind the slow metrics.
        world.router.weights["3"] = 5
        await wait_until(pilot, lambda: app.readings["router"].value.weights()["3"] == 5, timeout=2,
                         what="the router's next reading while metrics are slow")
        await pilot.press("j")  # and keys still answer
        assert app.screen.query_one(MatrixView).cursor_row == 1


async def test_the_approver_sees_the_pending_request_and_approves_with_the_typed_name(tmp_path):
    requester = World(tmp_path, user="alice", two_person=True)
    approver = World(tmp_path, user="bob", two_person=True)
    try:
        incident = requester.journal.open_incident(MODEL, "2", "needs two").incident_id
        preview = requester.service.preview(MODEL)
        requester.service.request_approval(incident, preview.plan)
        app = console(approver)
        async with app.run_test(size=(120, 40)) as pilot:
            await first_matrix(pilot, app)
            await wait_until(pilot, lambda: "wait for approval" in header_text(app), what="the pending request")
            assert "approve" in footer_keys(app)
            await pilot.press("a")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the approval dialog")
            await pilot.press(*MODEL, "enter")
            await wait_until(pilot, lambda: requester.service.approver_of(incident, preview.plan.action_id,
                                                                          "alice") == "bob", what="the approval")
    finally:
        requester.close()
        approver.close()


async def test_the_requester_sees_waiting_for_approval_live(tmp_path):
    world = World(tmp_path, user="alice", two_person=True)
    try:
        app = console(world)
        async with app.run_test(size=(120, 40)) as pilot:
            await first_matrix(pilot, app)
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirmation")
            await pilot.press(*MODEL, "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and any(
                "waiting for approval by another user" in line.plain for line in app.screen.lines),
                what="the waiting line")
            await wait_until(pilot, lambda: any(e.payload.get("option") == "request_approval"
                                                for e in app.journal_state.events), what="the request journaled")
            assert app.journal_state.pending == [], "the requester is never offered their own request"
            bob = World(tmp_path, user="bob", two_person=True)
            try:
                action_id = app.action_plan_id
                bob.service.approve(action_id)
            finally:
                bob.close()
            await wait_until(pilot, lambda: app.screen.finished, timeout=15, what="the approved rollback")
            assert world.router.weights["3"] == 0
            assert any("approved by bob" in line.plain for line in app.screen.lines)
    finally:
        world.close()


async def test_a_broken_theme_file_falls_back_to_the_default_and_names_the_file(world, tmp_path, monkeypatch):
    import shutil

    from console.tui import themes

    shutil.copy(themes.THEMES_DIR / "rewind-dark.yaml", tmp_path / "rewind-dark.yaml")
    (tmp_path / "rewind-broken.yaml").write_text("name: rewind-broken\nprimary: 'not a colour'\n")
    monkeypatch.setenv("REWIND_THEMES_DIR", str(tmp_path))
    app = console(world, theme="rewind-broken")
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        messages = [n.message for n in app._notifications]
        assert any("rewind-broken.yaml" in m for m in messages)
        assert app.theme == "rewind-dark"


async def test_sixteen_colours_and_the_ansi_theme_still_show_every_verdict(world, monkeypatch):
    monkeypatch.setenv("TEXTUAL_COLOR_SYSTEM", "standard")
    app = console(world, theme="ansi-dark")
    async with app.run_test(size=(80, 24)) as pilot:
        await first_matrix(pilot, app)
        assert app.theme == "ansi-dark"
        assert any("✗ BREACH" in line for line in matrix_lines(app, 24))


async def test_help_lists_every_key_and_what_was_detected(world, monkeypatch):
    monkeypatch.setenv("TERM", "tmux-256color")
    monkeypatch.delenv("COLORTERM", raising=False)
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        await pilot.press("f1")
        await pilot.pause()
        text = screen_text(app)
        for words in ("roll back", "timeline", "filter segments"):
            assert words in text, words
        await pilot.press("end")  # what was detected is under the keys
        await pilot.pause()
        text = screen_text(app)
        for words in ("ctrl+q", "TERM", "tmux-256color", "COLORTERM", "120×40", "colour system"):
            assert words in text, words


def test_the_explanation_counts_in_whole_numbers():
    from console.domain.metrics import CellCounts, Criteria, Direction, MetricKind, MetricSpec, QueryResult, Unit
    from console.domain.verdicts import build_matrix
    from console.tui.screens.overview import explanation

    spec = MetricSpec("error_rate", "errors", "q", Unit.RATIO, Direction.HIGHER_IS_WORSE, Criteria(threshold=0.05),
                      kind=MetricKind.RATIO, numerator="n", denominator="d")
    results = {"error_rate": QueryResult("error_rate", "q", 0.0, raw={("3", "eu"): "0.96"},
                                         values={("3", "eu"): 702.712 / 729.153},
                                         counts={("3", "eu"): CellCounts(702.712, 729.153)})}
    text = explanation(build_matrix((spec,), results, ["3"], None, None), ("eu", "3"), 0).plain
    assert "counts 703/729 requests" in text and "702.712" not in text


async def test_a_drained_version_reads_drained_and_does_not_count_as_breaching(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        assert "✗ 1 breaching" in screen_text(app)
        world.router.weights.update({"2": 100, "3": 0})  # drained; its one-minute window still holds the errors
        await wait_until(pilot, lambda: app.snapshot.matrix.drained == {"3"}, what="the drain seen")
        await pilot.pause()
        text = screen_text(app)
        assert "✓ no breaches" in text and "⊘ drained: v3" in text and "breaching" not in text
        rows = [line for line in matrix_lines(app) if " v3 " in line]
        assert rows and all("⊘ DRAINED" in line for line in rows), rows
        assert any("✗" in line for line in rows), "its cells keep what they last showed"


async def test_stale_evidence_reads_as_unknown_with_its_age_never_as_health(world):
    from console.domain.errors import RouterError

    world.metrics.scenario = "healthy"
    now = [FROZEN_AT]
    app = console(world, clock=lambda: now[0])
    async with app.run_test(size=(120, 40)) as pilot:
        await first_matrix(pilot, app)
        text = screen_text(app)
        assert "✓ no breaches" in text and "weights v1:0 v2:90 v3:10" in text

        def router_down(model):
            raise RouterError("HAProxy at s: connection refused; is HAProxy running?")

        world.metrics.mode = "down"
        world.router.read_state = router_down
        now[0] = FROZEN_AT + 19  # the last answers are 19 s old: over 3 refreshes (0.2 s each)
        await wait_until(pilot, lambda: "? unknown (metrics 19s old)" in screen_text(app), what="unknown verdicts")
        await wait_until(pilot, lambda: "weights last seen 19s ago: v1:0 v2:90 v3:10" in screen_text(app),
                         what="the weights as last seen")
        text = screen_text(app)
        assert "no breaches" not in text and "✓ ok" not in text
        rows = [line for line in matrix_lines(app)[1:] if line.strip()]
        assert rows and all("? unknown" in line and "✓" not in line for line in rows), rows

        world.metrics.mode = "ok"  # Prometheus answers again: verdicts again
        del world.router.read_state
        now[0] = FROZEN_AT
        await wait_until(pilot, lambda: "✓ no breaches" in screen_text(app), what="verdicts again")
        assert "last seen" not in screen_text(app)


async def test_a_registry_and_router_read_landing_while_the_metrics_are_judged_are_judged_with_them(world):
    """The first matrix is judged while the registry's and the router's first reads land: it is judged again with
    them at once, not left without aliases and weights until the next metrics read (an hour away here)."""
    import threading
    import time

    composing = threading.Event()
    compose = world.live_status.compose
    list_versions, read_state = world.registry.list_versions, world.router.read_state
    app = console(world, refresh_s=3600.0)

    def first_compose_waits_for_the_reads(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if not composing.is_set():
            composing.set()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not {"registry", "router"} <= set(app.readings):
                time.sleep(0.01)
        return compose(*args, **kwargs)

    def after_the_compose_began(read):  # noqa: ANN001, ANN202
        def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            composing.wait(5)
            return read(*args, **kwargs)
        return wrapped

    world.live_status.compose = first_compose_waits_for_the_reads
    world.registry.list_versions = after_the_compose_began(list_versions)
    world.router.read_state = after_the_compose_began(read_state)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.stable_version is not None
                         and bool(app.snapshot.router.servers), 10,
                         "a matrix judged with the registry's aliases and the router's weights")
