"""The readiness view and the stats view over fakes.

Readiness: every condition with its mark and word, its reason, what was measured, how to fix it or its waiver,
and the verdict; the check in a thread worker with a visible "measuring…" while the console keeps answering;
R measuring again; a failed check shown, never a crash. Stats: real incidents' phases with every value while
n < 10, the open incident and its running time, the playbooks, the monthly trend; ``d`` switching to the drills
(n >= 10: a p90) and back; a journal that cannot be read shown, never a crash.
"""

from __future__ import annotations

import io

from console.domain.errors import JournalError, RegistryError
from console.tui.screens.help import HelpScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.readiness import ReadinessScreen
from console.tui.screens.stats import StatsScreen
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import MODEL, World, journal_recoveries


def row_of(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def detail_text(screen: ReadinessScreen) -> str:
    """The whole detail pane as plain text, also what is scrolled out of view."""
    from rich.console import Console
    from textual.widgets import Static

    console = Console(width=76, record=True, file=io.StringIO())
    console.print(screen.query_one("#ready-detail-text", Static).content)
    return " ".join(console.export_text().split())


async def readiness_open(pilot, app, measured: int = 1) -> ReadinessScreen:
    """From the overview, ``y``; then wait for ``measured`` measurements (0: only for the view)."""
    await wait_until(pilot, lambda: app.backend_ready and app.snapshot is not None, what="the overview")
    await pilot.press("y")
    await wait_until(pilot, lambda: isinstance(app.screen, ReadinessScreen), what="the readiness view")
    screen = app.screen
    await wait_until(pilot, lambda: screen.measurements >= measured, what="a measurement")
    await pilot.pause()
    return screen


async def test_y_shows_every_condition_with_its_mark_and_word_and_the_verdict(tmp_path):
    world = World(tmp_path)
    app = console(world, clock=lambda: world.readiness_check.now)
    async with app.run_test(size=(160, 50)) as pilot:
        await readiness_open(pilot, app)
        text = screen_text(app)
        assert "Rollback readiness of fraud-detector" in text
        assert "✗ NOT READY (3/6 true, 1 unknown, 1 waived)" in text
        assert "measured 20:26:40 UTC, took 3.2 s" in text
        assert row_of(text, "PreviousVersionDeployable").lstrip("▸ ").startswith("✓ true")
        runbook = row_of(text, "RollbackRunbook")
        assert "✗ false" in runbook and "NoDrill: canary-regression, latency-spike, version-outage never" in runbook
        alerts = row_of(text, "AlertsCoverMetrics")
        assert "? unknown" in alerts and "AlertmanagerUnreachable: Alertmanager at http://127.0.0.1:9093" in alerts
        assert "fix: rewind drill canary-regression --model fraud-detector" in text
        assert "fix: check Alertmanager (alerts.alertmanager_url)" in text
        owner = row_of(text, "OwnerOnCall")
        assert "✗ false" in owner and "NoEscalation: nobody is paged after Dana Rivera" in owner
        # A waived condition is still shown as measured, with its waiver instead of the fix.
        assert ("≈ waived until 2026-06-01 09:00 UTC by alice@host: Sam Okafor joins the rotation on Monday"
                in text)
        assert "set owners.MODEL" not in row_of(text, "≈ waived")
        assert "FallbackReady" in text and "SegmentMetricsFresh" in text
        assert world.readiness_check.checks == 1


async def test_at_80x24_rows_are_cut_and_the_selected_condition_is_shown_in_full(tmp_path):
    world = World(tmp_path)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await readiness_open(pilot, app)
        text = screen_text(app)
        assert all(len(line) <= 80 for line in text.splitlines())
        runbook = row_of(text, "RollbackRunbook")
        assert runbook.rstrip().endswith("…") and "verified rollback" not in runbook
        await pilot.press("down")  # RollbackRunbook
        await pilot.pause()
        detail = detail_text(screen)
        assert "never drilled to a verified rollback" in detail
        assert "rewind drill canary-regression --model fraud-detector" in detail
        assert f"rewind ready --model {MODEL} --waive RollbackRunbook --reason TEXT --days N" in detail
        await pilot.press("down", "down", "down")  # OwnerOnCall, waived: no waive hint, its waiver in full
        await pilot.pause()
        detail = detail_text(screen)
        assert "OwnerOnCall" in detail and "Sam Okafor joins the rotation on Monday" in detail
        assert "--waive OwnerOnCall" not in detail


async def test_the_check_runs_in_a_worker_while_the_view_says_measuring_and_the_console_answers(tmp_path):
    world = World(tmp_path)
    world.readiness_check.hold.clear()  # the check waits, as an artifact download does
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await readiness_open(pilot, app, measured=0)
        await wait_until(pilot, lambda: world.readiness_check.checks == 1, what="the check under way")
        await pilot.pause()
        assert screen.measuring
        assert "measuring… (a few seconds: the previous version's artifacts load)" in screen_text(app)
        await pilot.press("R")  # not a second check while one is under way
        await pilot.pause()
        assert world.readiness_check.checks == 1
        await pilot.press("S")  # the console still answers: the stats view opens, and closes
        await wait_until(pilot, lambda: isinstance(app.screen, StatsScreen), what="the stats view")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen, what="back to the readiness view")
        world.readiness_check.hold.set()
        await wait_until(pilot, lambda: screen.measurements == 1, what="the measurement")
        await pilot.pause()
        text = screen_text(app)
        assert "measuring…" not in text and "✗ NOT READY (3/6 true, 1 unknown, 1 waived)" in text


async def test_r_measures_again_and_the_last_report_stays_while_it_does(tmp_path):
    world = World(tmp_path)
    app = console(world, clock=lambda: world.readiness_check.now)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await readiness_open(pilot, app)
        world.readiness_check.hold.clear()
        world.readiness_check.took_s = 4.5
        await pilot.press("R")
        await wait_until(pilot, lambda: world.readiness_check.checks == 2, what="a second check")
        await pilot.pause()
        text = screen_text(app)
        assert "measured 20:26:40 UTC, took 3.2 s · measuring… (the last report stays until then)" in text
        assert "✗ NOT READY (3/6 true, 1 unknown, 1 waived)" in text
        world.readiness_check.hold.set()
        await wait_until(pilot, lambda: screen.measurements == 2, what="the second measurement")
        await pilot.pause()
        assert "took 4.5 s" in screen_text(app)


async def test_a_failed_check_is_shown_with_its_whole_error_and_the_console_goes_on(tmp_path):
    world = World(tmp_path)
    world.readiness_check.error = RegistryError("MLflow at http://127.0.0.1:5000: unreachable (registry.tracking_uri)")
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await readiness_open(pilot, app)
        text = screen_text(app)
        assert "✗ could not measure: MLflow at http://127.0.0.1:5000" in text
        assert "(registry.tracking_uri)" in detail_text(screen)
        assert "NOT READY" not in text
        world.readiness_check.error = RuntimeError("the artifact store closed the connection")
        await pilot.press("R")
        await wait_until(pilot, lambda: screen.measurements == 2, what="the second measurement")
        await pilot.pause()
        assert "✗ could not measure: RuntimeError: the artifact store closed the connection" in screen_text(app)
        assert app.is_running
        world.readiness_check.error = None
        await pilot.press("R")
        await wait_until(pilot, lambda: screen.measurements == 3, what="the third measurement")
        await pilot.pause()
        text = screen_text(app)
        assert "✗ NOT READY (3/6 true, 1 unknown, 1 waived)" in text and "could not measure" not in text


async def test_y_is_in_the_overview_footer_and_toggles_the_view(tmp_path):
    world = World(tmp_path)
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.backend_ready and app.snapshot is not None, what="the overview")
        # The footer is drawn after the overview's first frame: polled, as a loaded machine draws it later.
        await wait_until(pilot, lambda: "y ready" in screen_text(app).splitlines()[-1], what="y in the footer")
        await readiness_open(pilot, app, measured=1)
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen), what="back to the overview")


# -- the stats view ------------------------------------------------------------------------------------------
async def stats_open(pilot, app) -> StatsScreen:
    await wait_until(pilot, lambda: app.backend_ready and app.snapshot is not None, what="the overview")
    await pilot.press("S")
    await wait_until(pilot, lambda: isinstance(app.screen, StatsScreen) and app.screen.reads > 0,
                     what="the stats view's first read")
    await pilot.pause()
    return app.screen


async def test_s_shows_the_phases_every_value_the_open_incident_and_the_trend(tmp_path):
    world = World(tmp_path)
    journal_recoveries(world)
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await stats_open(pilot, app)
        text = screen_text(app)
        assert "Speed to rollback of fraud-detector: real incidents opened in the last 90d" in text
        assert "12 drills kept apart" in text
        assert "5 real incidents: 4 rolled back and verified, 1 open" in text
        assert "⚠ 1 open, running for 44 min 00 s (INC-20260528-6A7B8C)" in text
        assert "⚠ 1 over 10 min: INC-20260512-3D4E5F" in text
        total = row_of(text, "every value: 3 min 05 s, 7 min 11 s, 8 min 00 s, 17 min 40 s")
        assert total.split()[:2] == ["total", "4"] and total.rstrip().endswith("17 min 40 s")
        assert next(line for line in text.splitlines() if line.split()[:1] == ["detect"]).split()[:2] == [
            "detect", "4"]
        assert "canary-regression" in row_of(text, "every value: 3 min 05 s, 7 min 11 s ")
        assert "(by hand)" in text
        assert "2026-02" in row_of(text, "no rollback")
        may = row_of(text, "2026-05 ")
        assert may.split()[:2] == ["2026-05", "1"] and "█" in may
        assert "first confirmed breach → the decision to roll back" in text  # what each phase measures


async def test_d_switches_to_the_drills_and_back(tmp_path):
    world = World(tmp_path)
    journal_recoveries(world)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await stats_open(pilot, app)
        assert "d drills" in screen_text(app).splitlines()[-1]
        await pilot.press("d")
        await wait_until(pilot, lambda: (MODEL, True) in screen.reads_of, what="the drills' read")
        await pilot.pause()
        text = screen_text(app)
        assert "drills opened in the last 90d" in text and "5 real incidents kept apart" in text
        assert "12 drills: 12 rolled back and verified, 0 open" in text
        total = row_of(text, "total ")
        assert total.split()[:2] == ["total", "12"] and "3 min 40 s" in total and "every value" not in total
        assert "d real incidents" in text.splitlines()[-1]
        await pilot.press("d")
        await pilot.pause()
        text = screen_text(app)
        assert "real incidents opened in the last 90d" in text  # the last read of them, at once
        assert "5 real incidents: 4 rolled back and verified, 1 open" in text


async def test_a_journal_that_cannot_be_read_is_shown_not_a_crash(tmp_path):
    world = World(tmp_path)

    def broken():
        raise JournalError("SQLite journal /var/lib/rewind/journal.db: database is locked")

    world.recovery_stats = broken
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await stats_open(pilot, app)
        # In full in the body: the header cuts it at 80 columns.
        await wait_until(pilot, lambda: "is locked" in screen_text(app), what="the whole error")
        said = " ".join(screen_text(app).split())
        assert ("✗ could not read the journal: SQLite journal /var/lib/rewind/journal.db: database is locked"
                in said)
        assert app.is_running


async def test_the_help_lists_both_keys(tmp_path):
    world = World(tmp_path)
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_until(pilot, lambda: app.backend_ready, what="the console")
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), what="the help")
        await pilot.pause()
        text = screen_text(app)
        readiness = row_of(text, "rollback readiness:")
        assert readiness.lstrip().startswith("y ") and "waive with rewind ready --waive" in readiness
        assert row_of(text, "speed to rollback:").lstrip().startswith("S (shift+s)")
