"""Console tests: the app over a world of fakes, driven by Textual's pilot."""

from __future__ import annotations

import pytest

from console.tui.app import ConsoleOptions, RewindApp, create_app
from tests.tui.world import FROZEN_AT, MODEL, World


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A console test that hangs fails after 300 s with every thread's stack, instead of hanging the run.

    pytest-timeout's default raises from a SIGALRM handler, and when the signal lands while Textual's event
    loop runs one of its callbacks, asyncio logs the exception and drops it: a snapshot test then waited
    for good and stopped a CI run. The thread method dumps every thread's stack and ends the worker
    process, which xdist reports as a failed test and replaces.
    """
    for item in items:
        if item.get_closest_marker("timeout") is None and "tests/tui/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.timeout(300, method="thread"))


@pytest.fixture
def world(tmp_path):
    made = World(tmp_path)
    yield made
    made.close()


def console(world: World, **options) -> RewindApp:
    """The app as `rewind tui` builds it, over fakes, on a frozen clock, refreshing fast."""
    settings = {"model": MODEL, "refresh_s": 0.2, "clock": lambda: FROZEN_AT, "watch_terminal": False,
                **options}
    return create_app(world, ConsoleOptions(**settings))


async def wait_until(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``condition`` (letting the app run) until it holds; fail naming ``what``."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def screen_text(app) -> str:
    """What the terminal shows now, as plain text (one line per row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
