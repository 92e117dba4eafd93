"""Paging in the console: the header's firing alerts, and ``o`` opening the suggested playbook's walkthrough.

Alerts reach the world's journal as ``rewind alerts serve`` journals them (:class:`AlertIntake` over the
recorded Alertmanager notifications in tests/fixtures/alerts); the console reads them in its alerts poll.
"""

from __future__ import annotations

from pathlib import Path

from console.services.alerts import AlertIntake
from console.tui.dialogs.confirm import ConfirmDialog
from console.tui.dialogs.playbooks import PlaybookPicker
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.walkthrough import WalkthroughScreen
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import World

ALERTS = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"


def paged(world: World, *notifications: str, suggest: bool = True) -> None:
    """Journal Alertmanager's ``notifications`` (fixture names) as the receiver does."""
    playbooks = [loaded.playbook for loaded in world.playbooks().library()[0]] if suggest else []
    intake = AlertIntake(world.journal, lambda: playbooks)
    for name in notifications:
        intake.receive((ALERTS / f"{name}.json").read_bytes())


def paging_line(app) -> str:
    return next((line.strip() for line in screen_text(app).splitlines() if "firing" in line), "")


def notified(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def shown(pilot, app, text: str) -> None:
    await wait_until(pilot, lambda: text in paging_line(app), what=f"the header saying {text!r}")


async def header_at(world: World, size: tuple[int, int], firing: int) -> tuple[str, list[str]]:
    """The paging line once ``firing`` alerts show at ``size``, and what was notified."""
    app = console(world)
    async with app.run_test(size=size) as pilot:
        await shown(pilot, app, f"⚠ {firing} firing")
        return paging_line(app), notified(app)


async def test_one_firing_alert_in_the_header_with_its_playbook_and_key(world):
    paged(world, "firing")
    line, said = await header_at(world, (80, 24), 1)
    assert line == "⚠ 1 firing: RewindErrorRateBreach v3 mobile (page) → version-outage: press o"
    assert "RewindErrorRateBreach fires on fraud-detector: press o to open version-outage" in said


async def test_two_firing_alerts_newest_first_and_the_other_when_there_is_room(world):
    paged(world, "group_of_two")
    line, _ = await header_at(world, (80, 24), 2)
    assert line == "⚠ 2 firing: RewindErrorRateBreach v3 web (page) → version-outage: press o"
    line, _ = await header_at(world, (160, 50), 2)
    assert line.startswith("⚠ 2 firing: RewindErrorRateBreach v3 web (page) since 12:57:06Z → version-outage: "
                           "press o  also RewindErrorRateBreach v3 mobile  in INC-")


async def test_a_resolution_leaves_only_what_still_fires(world):
    paged(world, "group_of_two")
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await shown(pilot, app, "⚠ 2 firing")
        paged(world, "group_one_resolved")
        await shown(pilot, app, "⚠ 1 firing")
        line = paging_line(app)
        assert "RewindErrorRateBreach v3 web (page)" in line and "mobile" not in line


async def test_o_opens_the_suggested_playbooks_walkthrough(world):
    paged(world, "group_of_two")
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot, app, "⚠ 2 firing")
        before = dict(world.router.weights)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.walkthrough_screen, WalkthroughScreen)
                         and app.walkthrough_screen in app.screen_stack, what="the walkthrough")
        walkthrough = app.walkthrough_screen
        assert walkthrough.view.playbook_id == "version-outage" and walkthrough.view.model == "fraud-detector"
        # Its drain step waits for the usual typed confirmation, on top of the walkthrough: nothing changed yet.
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the drain's confirmation")
        assert app.screen_stack[-2] is walkthrough
        assert world.router.weights == before


async def test_o_without_a_suggestion_opens_the_picker_and_says_why(world):
    paged(world, "firing", suggest=False)
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot, app, "no playbook suggested: o picks one")
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, PlaybookPicker), what="the picker")
        assert any(said.startswith("RewindErrorRateBreach: no playbook suggested (") for said in notified(app))
        assert app.run_view is None


async def test_o_with_nothing_firing_says_so(world):
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.journal_state is not None and app.snapshot is not None, what="reads")
        await pilot.press("o")
        await wait_until(pilot, lambda: any("no alert is firing for fraud-detector" in s for s in notified(app)),
                         what="the notification")
        assert isinstance(app.screen, OverviewScreen) and app.run_view is None
        assert paging_line(app) == ""


async def test_alerts_that_cannot_be_read_are_a_quiet_line_not_a_crash(world, monkeypatch):
    paged(world, "firing")
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot, app, "⚠ 1 firing")

        def broken(journal):
            raise RuntimeError("database is locked")

        monkeypatch.setattr("console.services.alerts.journaled_alerts", broken)
        await shown(pilot, app, "(as last read: alerts not read now)")
        assert app.is_running and "version-outage" in paging_line(app)
