"""The diagnosis and the features view over fakes: the overview's one diagnosis line per cause (and none while
healthy), the evidence one key away, the features view (declared beside observed, a finding, abnormal inputs
first, the transformation diff, the feature store loading in a worker or not configured), and the feature
rollback previewed, confirmed, carried out by the one action procedure and undone; refused in read-only mode."""

from __future__ import annotations

import re
import threading

from console.tui.dialogs.confirm import ConfirmDialog
from console.tui.dialogs.diagnosis import DiagnosisDialog, diagnosis_body
from console.tui.dialogs.progress import ActionScreen
from console.tui.screens.features import FeaturesScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.widgets.diagnosis_line import DiagnosisLine, diagnosis_line
from tests.tui.conftest import console, screen_text, wait_until
from tests.tui.world import SERVICE, World

PINNED = "txn_service__pin_txn_features_v0"
TAG = "feast.feature_service"


def featured(tmp_path, scenario: str = "feature-bug", three: bool = True) -> World:
    """A world with a feature store and the servers' feature telemetry; ``three``: versions 1, 2 and 3 all serve."""
    world = World(tmp_path, features=scenario)
    if three:
        world.metrics.versions = ("1", "2", "3")
        assert world.telemetry is not None
        world.telemetry.versions = ("1", "2", "3")
        world.telemetry.stale_v1 = False
    return world


async def diagnosed(pilot, app) -> DiagnosisLine:
    """The overview once the feature telemetry was read and a snapshot diagnosed with it."""
    await wait_until(pilot, lambda: app.snapshot is not None and app.feature_read is not None
                     and app.feature_reading is not None, what="a diagnosed snapshot")
    await pilot.pause()
    return app.screen_stack[0].query_one(DiagnosisLine)


def row_of(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def binding_row(text: str, version: str) -> str:
    """The bindings table's row of ``version`` (its mark first)."""
    return next(line for line in text.splitlines() if re.match(rf"\s*[✗✓·?]\s+v{version}\s+txn_service", line))


async def test_a_feature_bug_is_one_line_under_the_matrix_at_80x24_with_three_versions(tmp_path):
    world = featured(tmp_path)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        line = await diagnosed(pilot, app)
        assert line.display
        text = screen_text(app)
        row = row_of(text, "feature bug")
        assert row.startswith(" ◆ feature bug: txn_features v1 (sha 2f78b0c1e2a3) — every")
        assert row.rstrip().endswith("[d] evidence") and "…" in row  # cut with an ellipsis, the hint kept
        assert len(row) == 80
        rows = text.splitlines()
        assert rows.index(row) > max(i for i, r in enumerate(rows) if r.startswith("web") and "v3" in r)
        for segment in ("mobile", "partner-api", "web"):  # all nine rows of the matrix still in view
            assert sum(1 for r in rows if r.startswith(segment)) == 3
        assert "BREACH" in text


async def test_the_line_is_styled_per_cause(tmp_path):
    world = featured(tmp_path)
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        line = await diagnosed(pilot, app)
        drawn = diagnosis_line(line.diagnosis, 160)
        assert drawn is not None and drawn.plain.rstrip().endswith("[d] evidence") and "…" not in drawn.plain
        assert "roll the features back, not the model" in drawn.plain
        assert any("magenta" in str(span.style) for span in drawn.spans)


async def test_healthy_shows_no_diagnosis_line(tmp_path):
    world = featured(tmp_path, scenario="healthy")
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None and app.feature_read is not None,
                         what="the feature read")
        await wait_until(pilot, lambda: app.refreshes >= 2, what="a snapshot diagnosed with the features")
        assert app.feature_reading is not None and app.feature_reading.diagnosis is None
        assert not app.screen_stack[0].query_one(DiagnosisLine).display
        assert "evidence" not in screen_text(app)
        await pilot.press("d")  # nothing to open: it says so
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)


async def test_d_opens_every_evidence_line_and_the_advice_and_escape_closes(tmp_path):
    world = featured(tmp_path)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await diagnosed(pilot, app)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DiagnosisDialog), what="the evidence")
        await pilot.pause()
        diagnosis = app.feature_reading.diagnosis
        assert diagnosis is not None and diagnosis.cause.value == "feature"
        text = screen_text(app)
        assert "Diagnosis of fraud-detector" in text and "Evidence" in text
        assert "→ do not roll back the model" in text  # the advice, in view without scrolling
        assert "· versions 2, 3 read txn_features v1" in text  # the first evidence line (v1 is drained)
        body = diagnosis_body(diagnosis)
        rendered = "".join(s.text for s in app.console.render(body, app.console.options.update_width(76)))
        flat = " ".join(rendered.split())
        for line in diagnosis.evidence:  # every evidence line, not only the first
            assert " ".join(line.split()) in flat
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen), what="back to the overview")


async def test_not_sure_says_what_would_settle_it(tmp_path):
    # The challenger breaches alone, but its inputs (on the broken transformation, as every version's) are
    # abnormal: neither the model nor the features can be blamed yet.
    world = featured(tmp_path, scenario="regression", three=False)
    app = console(world)
    async with app.run_test(size=(120, 40)) as pilot:
        await diagnosed(pilot, app)
        assert app.feature_reading.diagnosis.cause.value == "unsure"
        assert row_of(screen_text(app), "not sure").startswith(" ? not sure:")
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, DiagnosisDialog), what="the evidence")
        await pilot.pause()
        text = screen_text(app)
        assert "What would settle it" in text and "? why version 3's inputs are abnormal" in text


async def test_the_feature_telemetry_never_delays_the_first_metrics(tmp_path):
    world = featured(tmp_path)
    assert world.telemetry is not None
    started = threading.Event()
    release = threading.Event()
    inputs = world.telemetry.inputs

    def slow_inputs(model, window):  # noqa: ANN001, ANN202
        started.set()
        release.wait(10)
        return inputs(model, window)

    world.telemetry.inputs = slow_inputs  # type: ignore[method-assign]
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None, timeout=3, what="the first matrix")
        await wait_until(pilot, started.is_set, what="the feature read, after the first matrix")
        await wait_until(pilot, lambda: app.refreshes >= 3, timeout=5, what="metrics going on while it reads")
        assert app.feature_read is None and not app.screen_stack[0].query_one(DiagnosisLine).display
        release.set()
        await diagnosed(pilot, app)


async def open_features(pilot, app) -> FeaturesScreen:
    await wait_until(pilot, lambda: app.snapshot is not None and app.feature_reading is not None,
                     what="the overview")
    await pilot.press("F")
    await wait_until(pilot, lambda: isinstance(app.screen, FeaturesScreen) and app.screen.reads > 0,
                     what="the features view's first read")
    await pilot.pause()
    return app.screen  # type: ignore[return-value]


async def test_the_features_view_shows_declared_beside_observed_a_finding_abnormal_inputs_and_the_diff(tmp_path):
    world = featured(tmp_path, three=False)  # version 1's idle server still runs v0's transformation
    app = console(world)
    async with app.run_test(size=(160, 50)) as pilot:
        await open_features(pilot, app)
        text = screen_text(app)
        assert "Features of fraud-detector" in text and "◆ feature bug" in text
        v1 = binding_row(text, "1")
        assert v1.lstrip().startswith("✗") and "v1 2f78b0c1e2a3 (latest)" in v1 and "v0 7a41c9d0b3e5" in v1
        assert binding_row(text, "2").lstrip().startswith("✓")
        assert ("! finding: version 1, txn_features: servers run transformation sha 7a41c9d0b3e5, the registry "
                "declares sha 2f78b0c1e2a3") in text
        assert "Inputs: 12 of 12 judged, 6 abnormal" in text
        rows = [r for r in text.splitlines() if r.lstrip().startswith(("✗  v", "✓  v"))
                and ("amount" in r or "merchant_risk" in r)]
        assert [r.lstrip()[0] for r in rows] == ["✗"] * 6 + ["✓"] * 6  # abnormal first
        assert "abnormal" in rows[0] and "11.45" in rows[0] and "98%" in rows[0]
        assert "Transformation diff: txn_features v1 (now) → v0 (the rollback target)" in text
        assert '-    df["amount"] = df["amount_cents"]' in text
        assert '+    df["amount"] = df["amount_cents"] / 100.0' in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, OverviewScreen), what="back to the overview")


async def test_the_features_view_fits_80x24(tmp_path):
    world = featured(tmp_path, three=False)
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_features(pilot, app)
        text = screen_text(app)
        assert "! finding: version 1" in text and "Inputs: 12 of 12 judged, 6 abnormal" in text
        assert "r roll back features" in text  # the footer says the key
        assert all(len(line) <= 80 for line in text.splitlines())


async def test_the_feature_store_loads_in_a_worker_while_the_view_says_so(tmp_path):
    world = featured(tmp_path)
    gate = threading.Event()
    catalog = world.feature_catalog

    def slow_catalog():  # noqa: ANN202 - Feast's import, three seconds on these machines
        gate.wait(10)
        return catalog()

    world.feature_catalog = slow_catalog  # type: ignore[method-assign]
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None, what="the overview")
        await pilot.press("F")
        await wait_until(pilot, lambda: isinstance(app.screen, FeaturesScreen), what="the features view")
        await pilot.pause(0.1)
        assert "loading the feature store…" in screen_text(app)
        before = app.refreshes
        await wait_until(pilot, lambda: app.refreshes > before + 1, what="the console going on meanwhile")
        gate.set()
        await wait_until(pilot, lambda: app.screen.reads > 0, what="the declared side")
        await pilot.pause()
        assert "loading the feature store" not in screen_text(app)
        assert "Bindings" in screen_text(app)


async def test_without_a_feature_store_one_line_says_so(tmp_path):
    world = featured(tmp_path)
    world.store = None
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_features(pilot, app)
        text = screen_text(app)
        assert "? no feature store is configured (features.repo)" in text
        assert "could not read" not in text and "Traceback" not in text
        assert "Inputs: 18 of 18 judged, 9 abnormal" in text  # what the servers report is still shown
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, FeaturesScreen)  # nothing to roll back with: it says so, no dialog


async def test_a_feature_rollback_is_previewed_confirmed_carried_out_and_undone(tmp_path):
    world = featured(tmp_path)
    app = console(world)
    async with app.run_test(size=(120, 50)) as pilot:
        await open_features(pilot, app)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the preview")
        await pilot.pause()
        dialog = app.screen
        body = "".join(s.text for s in app.console.render(dialog.body, app.console.options.update_width(110)))
        assert "Feature rollback  fraud-detector" in body
        assert f"creates feature service {PINNED} = txn_features@v0" in body
        assert "blast radius: fraud-detector v1, v2, v3 move from txn_service" in body
        assert "the next `feast apply` of the unfixed repository" in body  # the warning
        assert '+    df["amount"] = df["amount_cents"] / 100.0' in body  # the diff
        assert all(world.registry.tags[(v, TAG)] == SERVICE for v in ("1", "2", "3"))  # nothing moved yet
        await pilot.press(*"fraud-detector", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen.finished,
                         what="the outcome")
        said = "\n".join(line.plain for line in app.screen.lines)
        assert "verified: every server reports the new binding" in said
        assert f"registry tags now     v1: {PINNED}" in said
        assert all(world.registry.tags[(v, TAG)] == PINNED for v in ("1", "2", "3"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, FeaturesScreen) and app.screen.ended is not None,
                         what="back on the view")
        await wait_until(pilot, lambda: "u: undo it" in screen_text(app), what="the outcome and the undo hint")
        text = screen_text(app)
        assert "✓ Feature rollback act-" in text and "verified" in text
        await wait_until(pilot, lambda: "no diagnosis: no version breaches" in screen_text(app),
                         what="the breaches gone")
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the undo's preview")
        await pilot.press(*"fraud-detector", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ActionScreen) and app.screen.finished,
                         what="the undo's outcome")
        assert all(world.registry.tags[(v, TAG)] == SERVICE for v in ("1", "2", "3"))
        assert world.telemetry is not None and world.telemetry.broken("2")  # back on the broken transformation


async def test_a_read_only_console_never_rolls_the_features_back(tmp_path):
    world = featured(tmp_path)
    app = console(world, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_features(pilot, app)
        assert "roll back features" not in screen_text(app)  # the acting keys are off
        await pilot.press("r")
        await pilot.pause(0.2)
        assert isinstance(app.screen, FeaturesScreen)
        assert all(world.registry.tags[(v, TAG)] == SERVICE for v in ("1", "2", "3"))
        # Asked for all the same (the palette, a script): the console refuses before any preview.
        from console.tui.screens.features import feature_rollback_request

        assert app.act(feature_rollback_request()) is False
        await pilot.pause(0.2)
        assert isinstance(app.screen, FeaturesScreen)
        assert all(world.registry.tags[(v, TAG)] == SERVICE for v in ("1", "2", "3"))


async def test_without_feature_telemetry_the_features_read_keeps_its_pace(tmp_path, monkeypatch):
    """No telemetry configured: a read every refresh, each diagnosed once; never a loop of new diagnoses."""
    monkeypatch.setattr("console.tui.app.FEATURES_EVERY_S", 0.0)  # at the refresh's pace, to count many reads
    world = World(tmp_path)
    live = world.live_status
    calls = {"read": 0, "diagnose": 0}
    read, diagnose = live.read_features, live.diagnose

    def counted_read(model):  # noqa: ANN001, ANN202
        calls["read"] += 1
        return read(model)

    def counted_diagnose(snapshot, features):  # noqa: ANN001, ANN202
        calls["diagnose"] += 1
        return diagnose(snapshot, features)

    live.read_features = counted_read  # type: ignore[method-assign]
    live.diagnose = counted_diagnose  # type: ignore[method-assign]
    app = console(world)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: calls["read"] >= 3, what="three feature reads")
        await pilot.pause(1.0)
        assert calls["read"] <= 12  # one every 0.2 s refresh
        assert calls["diagnose"] <= 4 * calls["read"] + 10
        assert app.feature_reading is None and not app.screen_stack[0].query_one(DiagnosisLine).display
