"""Snapshots of the main screens at 80x24 and 160x50, on deterministic data (frozen clocks, no cursor blink).

After a deliberate change of the look, review the SVGs and accept them with
``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from console.tui.dialogs.confirm import ConfirmDialog
from console.tui.dialogs.playbooks import PlaybookPicker
from console.tui.run_view import ChoiceAsked
from console.tui.screens.timeline import TimelineScreen
from console.tui.screens.walkthrough import WalkthroughScreen
from tests.tui.conftest import console, wait_until
from tests.tui.world import MODEL, World, gate_reading

SIZES = [(80, 24), (160, 50)]


@pytest.fixture
def frozen(tmp_path, monkeypatch):
    for name, value in (("TERM", "xterm-256color"), ("COLORTERM", "truecolor")):
        monkeypatch.setenv(name, value)
    for name in ("TMUX", "NO_COLOR", "REWIND_THEME", "REWIND_THEMES_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("console.services.rollback.new_action_id", lambda: "act-0000beef")
    monkeypatch.setattr("console.services.playbooks.uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(
        hex="0000cafe0000cafe")))
    world = World(tmp_path, frozen_journal=True)
    yield world
    world.close()


def still(world: World, **options):
    """One read of each system, then nothing moves: a refresh every hour."""
    return console(world, refresh_s=3600.0, **options)


async def settled(pilot) -> None:
    app = pilot.app

    def unsettled() -> str:
        """What the first settled snapshot still lacks (empty once it has everything)."""
        lacks = [name for name, missing in (
            ("a snapshot", app.snapshot is None), ("the journal", app.journal_state is None),
            ("the trend's focus", app.trend.focus is None),
            ("a stable version", app.snapshot is not None and app.snapshot.stable_version is None),
            ("the router's servers", app.snapshot is not None and not app.snapshot.router.servers)) if missing]
        return ", ".join(lacks)

    try:
        await wait_until(pilot, lambda: not unsettled(), 30, "the first settled snapshot")
    except AssertionError:
        readings = {name: (reading.health, reading.error) for name, reading in app.readings.items()}
        raise AssertionError(f"no settled snapshot in 30 s: it lacks {unsettled()}; readings {readings}") from None
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview(snap_compare, frozen, size):
    assert snap_compare(still(frozen), terminal_size=size, run_before=settled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview_sorted_with_the_explanation(snap_compare, frozen, size):
    async def before(pilot):
        await settled(pilot)
        await pilot.press("s", "e")
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rollback_confirmation(snap_compare, frozen, size):
    async def before(pilot):
        await settled(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), 30, "the confirmation dialog")
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


def test_read_only_overview(snap_compare, frozen):
    assert snap_compare(still(frozen, read_only=True), terminal_size=(80, 24), run_before=settled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_timeline(snap_compare, frozen, size):
    incident = frozen.journal.open_incident(MODEL, "2", "error rate up on mobile for v3").incident_id
    frozen.journal.note(incident, "paged by the error-rate alert; looking at the console")

    async def before(pilot):
        await settled(pilot)
        await pilot.press("t")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, TimelineScreen)
                         and pilot.app.screen.shown_seq >= 2, 30, "the timeline with two events")
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


def test_help(snap_compare, frozen):
    async def before(pilot):
        await settled(pilot)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=(80, 24), run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_walkthrough_at_the_choice(snap_compare, frozen, size):
    """canary-regression started from the picker, waiting at its choice: steps, story, options, countdown."""
    async def before(pilot):
        app = pilot.app
        await settled(pilot)
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, PlaybookPicker) and app.screen.ranked is not None,
                         30, "the ranked playbook picker")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, WalkthroughScreen) and app.run_view is not None
                         and isinstance(app.run_view.question, ChoiceAsked), 30, "the walkthrough's first choice")
        await pilot.pause(0.1)
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


async def view_read(pilot, key: str, view: type) -> None:
    """The overview settled, then ``key`` pressed and ``view``'s first read painted."""
    app = pilot.app
    await settled(pilot)
    await pilot.press(key)
    await wait_until(pilot, lambda: isinstance(app.screen, view) and app.screen.reads > 0, 30, "the view's first read")
    await pilot.pause()


async def shadow_read(pilot) -> None:
    from console.tui.screens.shadow import ShadowScreen

    await view_read(pilot, "v", ShadowScreen)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_shadow_view(snap_compare, frozen, size):
    """v3 in shadow of v2: mobile fails on disagreement, web holds on too few pairs; the clock at 0:00 / 10:00."""
    from console.domain.routing import Mirror

    frozen.router.mirror = Mirror("3", "2", 100)
    frozen.gate.reading = gate_reading(cost=True)
    assert snap_compare(still(frozen), terminal_size=size, run_before=shadow_read)


def test_shadow_view_without_a_mirror(snap_compare, frozen):
    assert snap_compare(still(frozen), terminal_size=(80, 24), run_before=shadow_read)


def drilled(world: World) -> None:
    """A drill journaled ten minutes before the frozen time (the panel says its age)."""
    from console.domain.journal import EventKind
    from console.services.fallback import DrillResult

    world.registry.aliases["fallback"] = "4"
    incident = world.journal.open_incident(MODEL, "3", "fallback drill").incident_id
    result = DrillResult(10.0, 0, 52, 270.0, 52, True)
    world.journal.record(incident, EventKind.NOTE, {"text": f"fallback drill of {MODEL} {result.describe()}",
                                                    "fallback_drill": result.__dict__})


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fallback_panel(snap_compare, frozen, size):
    from console.tui.screens.fallback import FallbackScreen

    drilled(frozen)

    async def before(pilot):
        await view_read(pilot, "f", FallbackScreen)

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview_with_the_fallback_serving(snap_compare, frozen, size):
    """The router took both primaries out on its own: the header's fallback line, the journaled notification."""
    from console.tui.widgets.fallback_line import FallbackLine

    frozen.registry.aliases["fallback"] = "4"
    frozen.router.down.update({"v2", "v3"})

    async def before(pilot):
        await settled(pilot)
        line = pilot.app.screen_stack[0].query_one(FallbackLine)
        await wait_until(pilot, lambda: line.display, 30, "the line to show")
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview_paged(snap_compare, frozen, size):
    """Two alerts fire (journaled by the receiver): the header's paging line, newest first, its playbook and key."""
    from tests.tui.test_paging import paged

    paged(frozen, "group_of_two")

    async def before(pilot):
        await settled(pilot)
        await wait_until(pilot, lambda: pilot.app.firing, 30, "the firing alert")
        await pilot.pause()

    assert snap_compare(still(frozen), terminal_size=size, run_before=before)


# -- the diagnosis and the features view (issue 16) ------------------------------------------------------
@pytest.fixture
def feature_bug(tmp_path, frozen):
    """txn_features v1 landed five minutes ago and breaks every version reading it; v1's idle server still runs
    v0's transformation (a finding). ``frozen`` sets the terminal and the ids; this world has the features."""
    world = World(tmp_path / "features", frozen_journal=True, features="feature-bug")
    yield world
    world.close()


def three_versions(world: World) -> World:
    """Versions 1, 2 and 3 all in the matrix (v1 drained, weight 0)."""
    world.metrics.versions = ("1", "2", "3")
    assert world.telemetry is not None
    world.telemetry.versions = ("1", "2", "3")
    world.telemetry.stale_v1 = False
    return world


async def diagnosed(pilot) -> None:
    app = pilot.app
    await settled(pilot)
    await wait_until(pilot, lambda: app.feature_reading is not None and app.feature_reading.diagnosis is not None,
                     30, "the feature diagnosis")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_overview_with_a_feature_bug(snap_compare, feature_bug, size):
    """Every version on txn_features v1 breaches: one line under the matrix blames the features, not the model."""
    assert snap_compare(still(three_versions(feature_bug)), terminal_size=size, run_before=diagnosed)


def test_diagnosis_evidence(snap_compare, feature_bug):
    async def before(pilot):
        from console.tui.dialogs.diagnosis import DiagnosisDialog

        await diagnosed(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, DiagnosisDialog), 30, "the diagnosis dialog")
        await pilot.pause()

    assert snap_compare(still(three_versions(feature_bug)), terminal_size=(80, 24), run_before=before)


async def features_read(pilot) -> None:
    from console.tui.screens.features import FeaturesScreen

    await diagnosed(pilot)
    await view_read(pilot, "F", FeaturesScreen)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_features_view(snap_compare, feature_bug, size):
    """Declared beside observed (v1's finding), the inputs abnormal first, the diff to the rollback target."""
    assert snap_compare(still(feature_bug), terminal_size=size, run_before=features_read)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_feature_rollback_confirmation(snap_compare, feature_bug, size):
    async def before(pilot):
        await features_read(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), 30, "the confirmation dialog")
        await pilot.pause()

    assert snap_compare(still(feature_bug), terminal_size=size, run_before=before)


# -- rollback readiness and speed to rollback (issue 17) ----------------------------------------------------
async def readiness_measured(pilot) -> None:
    from console.tui.screens.readiness import ReadinessScreen

    app = pilot.app
    await settled(pilot)
    await pilot.press("y")
    await wait_until(pilot, lambda: isinstance(app.screen, ReadinessScreen) and app.screen.measurements > 0,
                     30, "the readiness measurement")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_readiness_view(snap_compare, frozen, size):
    """NOT READY: three conditions true, the runbook never drilled (its fix), the Alertmanager unreachable
    (unknown), the owner's missing escalation waived; measured at the frozen time, the check taking 3.2 s."""
    app = still(frozen, clock=lambda: frozen.readiness_check.now)
    assert snap_compare(app, terminal_size=size, run_before=readiness_measured)


def test_readiness_view_of_a_waived_condition(snap_compare, frozen):
    """At 80x24 the rows are cut; the selected condition (the waived owner) is shown in full below them."""
    async def before(pilot):
        await readiness_measured(pilot)
        await pilot.press("down", "down", "down", "down")
        await pilot.pause()

    app = still(frozen, clock=lambda: frozen.readiness_check.now)
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


@pytest.fixture
def recoveries(frozen):
    """Four real incidents rolled back in the window (one over ten minutes), one open for 42 minutes, and twelve
    weekly drills, journaled with known phases."""
    from tests.tui.world import journal_recoveries

    journal_recoveries(frozen)
    return frozen


async def stats_read(pilot) -> None:
    from console.tui.screens.stats import StatsScreen

    await view_read(pilot, "S", StatsScreen)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_stats_view(snap_compare, recoveries, size):
    """Real incidents: every value while n < 10, the open incident's running time, per playbook, the trend."""
    assert snap_compare(still(recoveries), terminal_size=size, run_before=stats_read)


def test_stats_view_of_the_drills(snap_compare, recoveries):
    """``d``: the twelve drills, a p90 for each phase (n >= 10)."""
    async def before(pilot):
        await stats_read(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: (MODEL, True) in pilot.app.screen.reads_of, 30, "the model's read")
        await pilot.pause()

    assert snap_compare(still(recoveries), terminal_size=(80, 24), run_before=before)
