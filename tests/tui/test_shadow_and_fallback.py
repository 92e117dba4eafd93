"""The shadow view and the fallback panel over fakes: opening them, the gate's reasons, a refused promotion,
start and stop through the typed confirmation, the fallback's header line, an engagement the router made on
its own journaled and notified, engage/restore/drill through the one action procedure, stale readings."""

from __future__ import annotations

from dataclasses import replace

from console.domain.journal import EventKind
from console.domain.routing import Mirror
from console.domain.shadow import GateClock, GateVerdict
from console.tui.dialogs.confirm import ConfirmDialog
from console.tui.dialogs.progress import ActionScreen
from console.tui.dialogs.shadow_start import ShadowStartDialog, parse_percent
from console.tui.screens.fallback import FallbackScreen
from console.tui.screens.shadow import ShadowScreen
from console.tui.widgets.fallback_line import FallbackLine
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import FROZEN_AT, MODEL, World, gate_reading


def journal_texts(world: World) -> list[str]:
    texts = []
    for incident in world.journal.incidents():
        texts += [str(e.payload.get("text", "")) for e in world.journal.chain(incident.incident_id)[1]
                  if e.kind is EventKind.NOTE]
    return texts


def applied_kinds(world: World) -> list[str]:
    kinds = []
    for incident in world.journal.incidents():
        kinds += [str(e.payload.get("option")) for e in world.journal.chain(incident.incident_id)[1]
                  if e.kind is EventKind.DECISION]
    return kinds


async def open_view(pilot, app, key: str, view: type):
    """From the overview, press ``key`` and wait for ``view``'s first read."""
    await wait_until(pilot, lambda: app.backend_ready and app.snapshot is not None, what="the overview")
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, view) and app.screen.reads > 0,
                     what=f"{view.__name__}'s first read")
    await pilot.pause()
    return app.screen


async def open_shadow(pilot, app) -> ShadowScreen:
    return await open_view(pilot, app, "v", ShadowScreen)


async def open_fallback(pilot, app) -> FallbackScreen:
    return await open_view(pilot, app, "f", FallbackScreen)


async def confirm_typed(pilot, app) -> ActionScreen:
    """Type the model's name on the confirmation and wait for the outcome."""
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the typed confirmation")
    await pilot.press(*MODEL, "enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen.finished,
                     what="the outcome")
    return app.screen


def test_a_percent_is_a_whole_number_from_1_to_100():
    assert parse_percent("25 %") == 25 and parse_percent("100") == 100
    assert parse_percent("0") is None and parse_percent("101") is None and parse_percent("ten") is None


async def test_with_no_mirror_the_view_says_so_and_how_to_start_one(world):
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_shadow(pilot, app)
        text = screen_text(app)
        assert "no mirror" in text and "No shadow" in text
        assert "Press s to start one" in text
        assert world.gate.reads == 0  # no mirror: no gate to read


async def test_the_shadow_view_shows_each_segment_the_clock_and_every_hold_and_fail_reason(world):
    world.router.mirror = Mirror("3", "2", 100)
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await open_shadow(pilot, app)
        text = screen_text(app)
        assert "v3 shadows v2 (100 %)" in text
        assert "held 0:00 / 10:00" in text
        assert "✗ FAIL" in text and "~ HOLD" in text and "✓ PASS" in text
        assert "88.0%" in text  # mobile's agreement: 1 − 12 % disagreement
        assert "1200" in text  # its pairs
        assert "at least 10.2% > 5.0%" in text  # mobile's FAIL, with its reason
        assert "too few pairs (60 of ≥ 72 needed)" in text  # web's HOLD, with its reason
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ShadowScreen), what="back to the overview")


async def test_one_segment_that_holds_keeps_the_gate_and_its_clock_from_passing(world):
    world.router.mirror = Mirror("3", "2", 100)
    world.gate.reading = gate_reading(fail_segment=None, held_for=400.0)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_shadow(pilot, app)
        text = screen_text(app)
        assert "gate ~ HOLD  held 0:00 / 10:00" in text  # web has too few pairs yet: the clock does not run
        assert "~ HOLD  web" in text and "✗ FAIL" not in text


async def test_a_promotion_is_refused_with_the_gates_reason_and_nothing_changes(world):
    world.router.mirror = Mirror("3", "2", 100)
    weights = dict(world.router.weights)
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_shadow(pilot, app)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen.finished,
                         what="the refusal")
        said = "\n".join(line.plain for line in app.screen.lines)
        assert "refused: the promotion gate has not held" in said
        assert "FAIL in mobile: disagreement" in said
        assert world.router.weights == weights and world.router.mirror == Mirror("3", "2", 100)
        assert world.registry.aliases.get("champion") == "2"


async def test_start_and_stop_a_shadow_through_the_typed_confirmation(world):
    app = console(world)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_shadow(pilot, app)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ShadowStartDialog), what="the version dialog")
        await pilot.press("tab", "backspace", "backspace", "backspace", *"25", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the typed confirmation")
        assert "Shadow start of fraud-detector" in screen_text(app)
        assert "planned: v3 shadows v2 (25 %)" in screen_text(app)
        await pilot.press("enter")  # Cancel has the focus: Enter changes nothing
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmDialog | ActionScreen),
                         what="the cancel")
        assert world.router.mirror is None and "shadow" not in world.registry.aliases
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, ShadowStartDialog), what="the version dialog")
        await pilot.press("enter")
        outcome = await confirm_typed(pilot, app)
        assert outcome.result is not None and outcome.result.succeeded
        assert world.router.mirror == Mirror("3", "2", 100)
        assert world.registry.aliases.get("shadow") == "3"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ShadowScreen)
                         and app.screen.shown.status is not None and app.screen.shown.status.mirror is not None,
                         what="the view reading the new mirror")
        await pilot.press("x")
        await confirm_typed(pilot, app)
        assert world.router.mirror is None and "shadow" not in world.registry.aliases
        assert "shadow_start" in applied_kinds(world) and "shadow_stop" in applied_kinds(world)


async def test_a_shadow_that_held_is_promoted_and_the_promotion_reverted(world):
    world.router.mirror = Mirror("3", "2", 100)
    held = gate_reading(fail_segment=None)
    passing = tuple(replace(s, verdict=GateVerdict.PASS, reason="every criterion proven within its limit")
                    for s in held.segments)
    world.gate.reading = replace(held, segments=passing, clock=GateClock(600.0, 600.0))
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_shadow(pilot, app)
        assert "✓ HELD 10:00 / 10:00" in screen_text(app)
        await pilot.press("p")
        await confirm_typed(pilot, app)
        assert world.registry.aliases.get("champion") == "3"
        assert world.router.mirror == Mirror("2", "3", 100)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ShadowScreen), what="the view")
        await pilot.press("u")
        await confirm_typed(pilot, app)
        assert world.registry.aliases.get("champion") == "2"
        assert world.router.mirror == Mirror("3", "2", 100)


async def test_a_read_only_console_shows_the_views_without_their_acting_keys(world):
    world.router.mirror = Mirror("3", "2", 100)
    app = console(world, read_only=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_shadow(pilot, app)
        enabled = {b.action for (_, b, on, _) in app.active_bindings.values() if on}
        assert not {"start", "stop", "promote", "revert"} & enabled
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ShadowScreen) and world.router.mirror == Mirror("3", "2", 100)
        await pilot.press("escape", "f")
        await wait_until(pilot, lambda: isinstance(app.screen, FallbackScreen), what="the fallback panel")
        enabled = {b.action for (_, b, on, _) in app.active_bindings.values() if on}
        assert not {"engage", "restore", "drill"} & enabled


async def test_a_failed_shadow_read_keeps_the_last_one_then_reads_as_unknown_with_its_age(world):
    world.router.mirror = Mirror("3", "2", 100)
    now = [FROZEN_AT]
    app = console(world, clock=lambda: now[0], refresh_s=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_shadow(pilot, app)
        assert "✗ FAIL" in screen_text(app)

        def broken(*args, **kwargs):
            from console.domain.errors import MetricsError

            raise MetricsError("Prometheus at http://127.0.0.1:9/: unreachable (metrics.url)")

        world.gate.over_window = broken
        now[0] += 60
        reads = screen.reads
        screen.poll_soon()
        await wait_until(pilot, lambda: screen.reads > reads, what="the failed read")
        await pilot.pause()
        text = screen_text(app)
        assert "gate ? unknown (read 60s ago: Prometheus at http://127.0.0.1:9/: unreachable" in text
        assert "✗ FAIL" not in text and "? unknown" in text


async def test_the_overview_header_says_when_the_fallback_serves_and_how_much(world):
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        line = app.screen_stack[0].query_one(FallbackLine)
        await wait_until(pilot, lambda: line.reads > 0, what="the first fallback read")
        assert not line.display  # ready and idle: nothing to say
        world.registry.aliases["fallback"] = "4"
        world.router.down.update({"v2", "v3"})  # both fail their checks: the router engages the fallback
        world.router.counters["fallback"] = 40
        await wait_until(pilot, lambda: line.display, what="the fallback line")
        await pilot.pause()
        assert "⚠ FALLBACK serving 100 % (v4)" in screen_text(app)
        assert any("fallback engaged by the router" in text for text in journal_texts(world))
        assert any("fallback engaged by the router" in str(n.message) for n in app._notifications)
        # Journaled once, however many reads see it.
        reads = line.reads
        await wait_until(pilot, lambda: line.reads > reads + 2, what="more reads")
        assert sum("fallback engaged by the router" in text for text in journal_texts(world)) == 1


async def test_the_readiness_panel_shows_each_condition_and_the_last_drill(world):
    world.registry.aliases["fallback"] = "4"
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_fallback(pilot, app)
        text = screen_text(app)
        assert "✓ READY" in text
        for condition in ("backup up", "deep check", "default armed", "engaged now", "last drill"):
            assert condition in text
        assert "never drilled" in text
        await pilot.press("d")
        await wait_until(pilot, lambda: "seconds" in screen_text(app), what="the drill's seconds prompt")
        await pilot.press("enter")
        outcome = await confirm_typed(pilot, app)
        said = "\n".join(line.plain for line in outcome.lines)
        assert "fallback drill passed" in said
        assert world.router.admin["v2"] == "ready" and world.router.admin["v3"] == "ready"
        assert "u: undo" not in str(outcome.query_one("#dialog-hint").render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FallbackScreen)
                         and app.screen.readiness is not None and app.screen.readiness.last_drill is not None,
                         what="the panel reading the drill")
        await pilot.pause()
        assert "passed: 0 non-2xx" in screen_text(app)


async def test_engage_and_restore_go_through_the_typed_confirmation(world):
    app = console(world)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_fallback(pilot, app)
        await pilot.press("e")
        await confirm_typed(pilot, app)
        assert world.router.admin["v2"] == "maint" and world.router.admin["v3"] == "maint"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FallbackScreen) and app.screen.readiness is not None
                         and app.screen.readiness.engaged, what="the panel reading the engagement")
        await pilot.pause()
        assert "⚠ ENGAGED" in screen_text(app)
        await pilot.press("r")
        await confirm_typed(pilot, app)
        assert world.router.admin["v2"] == "ready" and world.router.admin["v3"] == "ready"
        assert {"fallback_engage", "fallback_restore"} <= set(applied_kinds(world))


def test_a_stale_fallback_reading_reads_as_unknown_with_its_age(world):
    from console.tui.screens.fallback import verdict_line
    from console.tui.widgets.fallback_line import fallback_line

    world.router.admin.update({"v2": "maint", "v3": "maint"})
    engaged = world.fallback_service.readiness(MODEL)
    assert fallback_line(engaged, None, "4", None, 3.0, stale=False).plain.startswith("⚠ FALLBACK serving 100 % (v4)")
    assert fallback_line(engaged, None, "4", "router down", 19.0, stale=True).plain == \
        "? fallback unknown (read 19s ago)"
    assert verdict_line(engaged, "router down", 19.0, stale=True).plain == "? unknown (read 19s ago: router down)"
    world.router.admin.update({"v2": "ready", "v3": "ready"})
    idle = world.fallback_service.readiness(MODEL)
    assert fallback_line(idle, engaged.state, "4", None, 1.0, stale=False) is None  # ready and idle: no line


def test_the_fallback_share_is_measured_between_two_reads(world):
    from console.tui.widgets.fallback_line import fallback_line

    before = world.fallback_service.readiness(MODEL).state
    world.router.counters.update({"v2": 30, "fallback": 10})  # a quarter answered by the fallback (retries)
    now = world.fallback_service.readiness(MODEL)
    assert fallback_line(now, before, "4", None, 1.0, stale=False).plain.startswith(
        "⚠ fallback answered 25 % (v4) since the last read")


async def test_an_engagement_the_console_made_is_not_journaled_as_the_routers(world):
    """Engage (or a drill) puts the primaries in maintenance: the overview's watch must not journal that as
    an engagement the router made on its own (seen on the sandbox during a drill)."""
    app = console(world)
    async with app.run_test(size=(100, 30)) as pilot:
        line = app.screen_stack[0].query_one(FallbackLine)
        await open_fallback(pilot, app)
        await pilot.press("e")
        await confirm_typed(pilot, app)
        reads = line.reads
        await wait_until(pilot, lambda: line.reads > reads + 1, what="the watch reading the engagement")
        assert not any("engaged by the router" in text for text in journal_texts(world))
        await pilot.press("escape", "escape")
        await wait_until(pilot, lambda: line.display, what="the header's fallback line")
        assert "FALLBACK serving 100 %" in "\n".join(x.plain for x in line.lines)
