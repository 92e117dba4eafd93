"""The fleet view: it opens first on a fleet, shows every model worst first, and Enter opens the model's overview.

A world of four models over the console's fakes: ``churn`` regresses (a breaching cell), ``pricing`` has
someone acting (the action lock), ``fraud-detector`` has an open incident, ``search-rank`` is healthy. The
fake Prometheus answers a fleet read in one call and counts them.
"""

from __future__ import annotations

import threading

import pytest

from console.tui.screens.fleet import FleetList, FleetScreen
from console.tui.screens.overview import OverviewScreen
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import MODEL, FakeMetrics, World

MODELS = (MODEL, "churn", "pricing", "search-rank")
SIZES = [(80, 24), (160, 50)]


class FleetMetrics(FakeMetrics):
    """Each model's own scenario; a fleet read is one call."""

    def __init__(self) -> None:
        super().__init__()
        self.scenarios = {"churn": "regression"}
        self.fleet_reads = 0
        self.one_model_reads: list[str] = []
        self._scenario_lock = threading.Lock()

    def evaluate(self, specs, model, at=None):  # noqa: ANN001, ANN201 - the protocol's signature
        with self._scenario_lock:
            self.scenario = self.scenarios.get(model, "healthy")
            self.one_model_reads.append(model)
            return super().evaluate(specs, model, at)

    def evaluate_fleet(self, specs, models, at=None):  # noqa: ANN001, ANN201
        self.fleet_reads += 1
        with self._scenario_lock:
            results = {}
            for model in models:
                self.scenario = self.scenarios.get(model, "healthy")
                results[model] = FakeMetrics.evaluate(self, specs, model, at)
            return results


class FleetWorld(World):
    models = MODELS

    def __init__(self, tmp, monkeypatch) -> None:  # noqa: ANN001
        super().__init__(tmp, frozen_journal=True)
        self.metrics = FleetMetrics()
        self.live_status.metrics = self.metrics
        self.service.metrics = self.metrics
        self.journal.open_incident(MODEL, "2", "scores drift on partner-api")
        monkeypatch.setattr(self.service.lock, "held", lambda: [("pricing", "act-1", "bob@bastion 4242")])


@pytest.fixture
def fleet_world(tmp_path, monkeypatch):
    for name, value in (("TERM", "xterm-256color"), ("COLORTERM", "truecolor")):
        monkeypatch.setenv(name, value)
    for name in ("TMUX", "NO_COLOR", "REWIND_THEME", "REWIND_THEMES_DIR"):
        monkeypatch.delenv(name, raising=False)
    world = FleetWorld(tmp_path, monkeypatch)
    yield world
    world.close()


def fleet_console(world: World, **options):
    return console(world, model=None, **options)


def fleet_rows(app) -> list[str]:
    return [model for model, _ in app.screen.query_one(FleetList)._shown]


async def read_once(pilot) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, FleetScreen) and pilot.app.screen.snapshot
                     is not None, what="the first fleet read")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_fleet_opens_first_worst_first_and_enter_opens_the_model(fleet_world, size):
    app = fleet_console(fleet_world, refresh_s=3600.0)
    async with app.run_test(size=size) as pilot:
        await read_once(pilot)
        assert fleet_rows(app) == ["churn", "fraud-detector", "pricing", "search-rank"]
        text = screen_text(app)
        assert "4 models" in text and "1 breaching" in text and "1 open incident" in text
        lines = {model: next(line for line in text.splitlines() if f" {model[:8]}" in line) for model in MODELS}
        assert "✗ BREACH" in lines["churn"] and "1" in lines["churn"]
        assert "✓ ok" in lines["search-rank"]
        assert "SEV2" in lines["fraud-detector"]
        assert "⚙ bob@" in lines["pricing"]
        assert "v2 90 · v3 10" in lines["search-rank"]
        if size[0] >= 160:
            assert "v3 mobile error_rate" in lines["churn"]  # which cell breaches, when the width holds it
        assert fleet_world.metrics.fleet_reads == 1
        # the model actions wait for a model: r does nothing here
        await pilot.press("r")
        assert isinstance(app.screen, FleetScreen)
        await pilot.press("down", "enter")  # fraud-detector, second worst
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen), what="the overview")
        assert app.model == "fraud-detector"
        await wait_until(pilot, lambda: app.snapshot is not None and app.snapshot.model == "fraud-detector",
                         what="the model's snapshot")
        await pilot.press("w")  # back to the fleet
        await read_once(pilot)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen) and app.model == "churn",
                         what="churn's overview")


async def test_the_highlight_follows_its_model_when_the_order_changes(fleet_world):
    app = fleet_console(fleet_world, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await read_once(pilot)
        await pilot.press("end")  # search-rank, the last row
        assert app.screen.query_one(FleetList).highlighted_model == "search-rank"
        fleet_world.metrics.scenarios = {"search-rank": "regression"}
        await wait_until(pilot, lambda: fleet_rows(app)[0] == "search-rank", what="search-rank first")
        assert app.screen.query_one(FleetList).highlighted_model == "search-rank"


async def test_a_failed_fleet_read_keeps_the_rows_and_says_why(fleet_world):
    app = fleet_console(fleet_world, refresh_s=0.1)
    async with app.run_test(size=(80, 24)) as pilot:
        await read_once(pilot)
        fleet_world.metrics.mode = "down"
        original = fleet_world.metrics.evaluate_fleet

        def down(specs, models, at=None):  # noqa: ANN001, ANN202
            from console.domain.errors import MetricsError

            raise MetricsError("Prometheus at http://127.0.0.1:9/: unreachable (metrics.url)")

        fleet_world.metrics.evaluate_fleet = down
        await wait_until(pilot, lambda: "unreachable" in screen_text(app), what="the failure on screen")
        assert len(fleet_rows(app)) == 4  # every model still listed, greyed: no data, the failure said once
        fleet_world.metrics.evaluate_fleet = original


async def test_one_model_opens_its_overview_as_before(tmp_path):
    world = World(tmp_path)
    try:
        app = console(world, model=None, refresh_s=3600.0)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.snapshot is not None, what="the overview")
            assert isinstance(app.screen, OverviewScreen)
            assert not app.check_action("fleet", ())
    finally:
        world.close()


async def test_naming_a_model_opens_its_overview_and_w_shows_the_fleet(fleet_world):
    app = console(fleet_world, model="pricing", refresh_s=3600.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None, what="the overview")
        assert isinstance(app.screen, OverviewScreen) and app.model == "pricing"
        await pilot.press("w")
        await read_once(pilot)
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen) and app.model == "pricing"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fleet_view(snap_compare, fleet_world, size):
    assert snap_compare(fleet_console(fleet_world, refresh_s=3600.0), terminal_size=size, run_before=read_once)
