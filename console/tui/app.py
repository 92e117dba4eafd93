"""The Rewind console: the Textual app, its workers and its handlers.

Workers fetch, handlers change state. Each system (registry, router,
metrics, journal) has its own poll, run in a thread worker and chained: the
next read starts ``refresh_s`` after the previous one finished, so polls never
overlap and a slow system delays only its own panel. Actions run through the
one action procedure (:func:`console.services.actions.carry_out`) in a thread
worker started by the app, never by a dialog that may close. A playbook run
(``p``) is driven the same way: the runner's ``drive`` in a thread worker of
the app, its face (:mod:`console.tui.run_face`) posting progress and blocking
on the responder's answers, the walkthrough screen drawing the run's view.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from console.domain.errors import RewindError
from console.tui import themes
from console.tui.acting import ActionRequest, AppCarrier
from console.tui.backend import Backend, BackendLoader, LoadingBackend
from console.tui.matrix_model import Summary, summarise
from console.tui.messages import (
    ActionDone,
    ActionStep,
    AlertsRead,
    BackendFailed,
    BackendReady,
    ChoiceAnswered,
    ConfirmationWanted,
    FeaturesRead,
    JournalRead,
    PlaybooksRanked,
    RunConfirmationWanted,
    RunProgress,
    RunQuestionWithdrawn,
    SnapshotReady,
    SuggestionLoaded,
    SystemRead,
    UnfinishedRuns,
)
from console.tui.screens.overview import OverviewScreen, explanation, rollback_request, undo_request
from console.tui.terminal import HangupWatch, terminal_alive
from console.tui.widgets.matrix import MatrixView
from console.tui.widgets.status_header import (
    STALE_REFRESHES,
    alerts_line,
    loading_line,
    model_line,
    systems_line,
    verdict_line,
    verdicts_stale,
)
from console.tui.widgets.trend import TrendHistory

if TYPE_CHECKING:
    # Loaded on first use, after the first frame: the services (and the domain's journal under their
    # protocols), the dialogs, the other screens and the actions' modules are not needed to paint the overview.
    from textual.timer import Timer

    from console.domain.alert_events import JournaledAlert
    from console.domain.metrics import QueryResult
    from console.domain.playbook import LoadedPlaybook
    from console.domain.playbook_run import RunState
    from console.domain.status import StatusSnapshot
    from console.services.features import FeatureRead, FeatureReading
    from console.services.follow import IncidentFollower
    from console.services.live import HealthWatch, LiveStatus, Reading
    from console.services.rollback import Preview
    from console.tui.dialogs.playbooks import Picked, PlaybookPicker
    from console.tui.dialogs.progress import ActionScreen
    from console.tui.face import ConsoleFace
    from console.tui.run_face import WalkthroughFace
    from console.tui.run_view import RunView
    from console.tui.screens.walkthrough import WalkthroughScreen

ACTING = ("rollback", "gradual", "undo", "approve")
"""Actions that change the systems: not shown at all in a read-only console."""


FEATURES_EVERY_S = 10.0
"""How often the console reads the feature telemetry (at least its refresh interval)."""


@dataclass(frozen=True)
class ConsoleOptions:
    """How the console was started.

    Attributes:
        model: the model to open on (default: the backend's first).
        read_only: never act; the acting keys are not shown.
        theme: the theme asked for (``--theme``), else ``$REWIND_THEME``, else rewind-dark.
        mouse: mouse reporting on (``--mouse``).
        refresh_s: seconds between the end of one read of a system and the start of the next.
        export_dir: where exports are written.
        clock: the wall clock (tests freeze it).
        watch_terminal: exit when the terminal goes away (off under the test pilot).
    """

    model: str | None = None
    read_only: bool = False
    theme: str | None = None
    mouse: bool = False
    refresh_s: float = 2.0
    export_dir: Path | None = None
    clock: Callable[[], float] = time.time
    watch_terminal: bool = True


class RewindApp(App[int]):
    """The incident console."""

    CSS_PATH = "rewind.tcss"
    TITLE = "Rewind"
    ENABLE_COMMAND_PALETTE = True
    # Dialogs take the whole height of a short terminal (80x24), and scroll their preview.
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]

    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", priority=True),
        Binding("f1,question_mark", "help", "help"),
        # In the footer's order: what a responder reaches for first comes first (80 columns show about six).
        Binding("r", "rollback", "roll back"),
        Binding("p", "playbooks", "playbooks"),
        Binding("t", "timeline", "timeline"),
        Binding("a", "approve", "approve"),
        Binding("e,enter", "explain", "explain"),
        Binding("g", "gradual", "gradual"),
        Binding("u", "undo", "undo"),
        Binding("s", "sort", "sort"),
        Binding("slash", "filter", "filter"),
        Binding("m", "next_model", "model"),
        Binding("v", "shadow", "shadow"),
        Binding("f", "fallback", "fallback"),
        Binding("F,shift+f", "features", "features"),
        Binding("y", "readiness", "ready"),
        # Shown only when more than one model is configured: every model on one screen, worst first.
        Binding("w", "fleet", "fleet"),
        # Not in the footer (160 columns hold no more): the help lists it, and the readiness view offers it.
        Binding("S,shift+s", "stats", "stats", show=False),
        # Not in the footer: the header's paging line says "press o" whenever an alert fires.
        Binding("o", "open_page", "open the page", show=False),
        # Not in the footer: the diagnosis line says "[d] evidence" whenever there is a diagnosis to open.
        Binding("d", "diagnosis", "evidence", show=False),
    ]

    def __init__(self, backend: Backend | None = None, options: ConsoleOptions = ConsoleOptions(),
                 load_backend: BackendLoader | None = None) -> None:
        super().__init__()
        if (backend is None) == (load_backend is None):
            raise ValueError("give the console either a backend or a loader of one")
        self.backend: Backend = backend or LoadingBackend()
        self.load_backend = load_backend
        self.backend_ready = backend is not None
        self.start_error: BaseException | None = None
        """What the loader raised: the console ended on it (exit code 2 for a config or usage error)."""
        self.options = options
        self.read_only = options.read_only
        self.mouse_enabled = options.mouse
        self.models = self.backend.models
        self.model = options.model or (self.models[0] if self.models else "")
        self.readings: dict[str, Reading[object]] = {}
        self.snapshot: StatusSnapshot | None = None
        self.summary: Summary | None = None
        self.journal_state: JournalRead | None = None
        self.timeline: IncidentFollower | None = None
        """Follows the model's incident by sequence number (made by the first journal read)."""
        self._journal_news = False
        """A commit was heard while a journal read was under way: read again as soon as it ends."""
        self._poll_timers: dict[str, Timer] = {}
        self.health: HealthWatch | None = None
        self.trend = TrendHistory()
        self.acting = False
        self.action_screen: ActionScreen | None = None
        self.faces: list[ConsoleFace] = []
        self.refreshes = 0
        self.hangup: HangupWatch | None = None
        self._theme_problems: list[str] = []
        self.overview_screen: OverviewScreen | None = None
        self.run_view: RunView | None = None
        """The playbook run of this console (the latest one, until another starts)."""
        self.run_face: WalkthroughFace | None = None
        self.resumable: RunState | None = None
        """The model's newest unfinished run, offered for resuming (header, picker)."""
        self.picker: PlaybookPicker | None = None
        self.playbook_library: dict[str, LoadedPlaybook] = {}
        self.unfinished_runs: list[RunState] = []
        self.walkthrough_screen: WalkthroughScreen | None = None
        self.last_results: tuple[str, dict[str, QueryResult], float] | None = None
        self.feature_read: tuple[str, FeatureRead] | None = None
        """The model's last feature read (observed bindings, judged inputs, why it failed)."""
        self.feature_reading: FeatureReading | None = None
        """The diagnosis of the snapshot on screen, with the feature evidence behind it."""
        self.features_polling = False
        self.firing: list[JournaledAlert] = []
        """The model's alerts firing now, oldest first (the header's paging line; ``o`` opens the newest's playbook)."""
        self.alerts_error: str | None = None
        """Why the alerts could not be read at the last try (the header shows the last read, dimmed)."""
        self._register_themes()

    # -- themes ------------------------------------------------------------------------------
    def _register_themes(self) -> None:
        loaded, problems = themes.load_themes()
        for theme in loaded:
            self.register_theme(theme)
        self._theme_problems = problems
        name, problem = themes.resolve_theme(self.options.theme, self.available_themes, os.environ)
        if problem:
            self._theme_problems.append(problem)
        self.theme = name

    def get_theme_variable_defaults(self) -> dict[str, str]:
        current = self.available_themes.get(getattr(self, "_theme_name", "") or "textual-dark")
        ansi = bool(current and current.name.startswith("ansi"))
        dark = bool(current.dark) if current else True
        return themes.variable_defaults(ansi=ansi, dark=dark)

    def watch_theme(self, theme: str) -> None:
        self._theme_name = theme

    # -- start and stop -----------------------------------------------------------------------
    def get_default_screen(self) -> Screen[None]:
        return OverviewScreen()

    def on_mount(self) -> None:
        for problem in self._theme_problems:
            self.notify(problem, title="theme", severity="warning", timeout=10)
        self._paint_header()
        if self.options.watch_terminal:
            self.hangup = HangupWatch(self._hung_up)
            self.hangup.start()
            self._guard_resume()
        if self.load_backend is not None:
            # The config is read once the first frame is on the terminal: a thread started now would
            # take the interpreter from the event loop that paints it.
            self.call_after_refresh(self._load, self.load_backend)
        else:
            self._start_polls()

    @work(thread=True, exit_on_error=False, group="start", name="load the config")
    def _load(self, load: BackendLoader) -> None:
        """Read the config and build the backend (pydantic, YAML, the adapters' modules)."""
        try:
            backend = load()
        except Exception as exc:  # noqa: BLE001 - the CLI reports it in one line once the terminal is restored
            self.post_message(BackendFailed(exc))
        else:
            self.post_message(BackendReady(backend))

    @on(BackendReady)
    def _backend_loaded(self, message: BackendReady) -> None:
        self.backend = message.backend
        self.backend_ready = True
        self.models = self.backend.models
        self.model = self.options.model or (self.models[0] if self.models else "")
        self._paint_header()
        self._start_polls()

    @on(BackendFailed)
    def _backend_failed(self, message: BackendFailed) -> None:
        self.start_error = message.error
        self.exit(return_code=getattr(message.error, "exit_code", 1))

    def on_resize(self, event: events.Resize) -> None:
        """The paging line keeps as much as the new width holds."""
        self.call_after_refresh(self._paint_header)

    def _start_polls(self) -> None:
        from console.services.live import SYSTEMS, HealthWatch

        self.health = HealthWatch()
        if not self.model:
            self.notify("no model is configured (router.backends)", severity="error", timeout=30)
        for system in (*SYSTEMS, "journal", "alerts"):
            self._poll(system)
        if self.model:
            self._look_for_unfinished(self.model)
        if len(self.models) > 1 and self.options.model is None:
            self.action_fleet()  # a fleet opens on every model at once; Enter opens one

    def _guard_resume(self) -> None:
        """On a hangup the kernel sends SIGCONT too: resume the terminal only while it is still there.

        Textual's SIGCONT handler restarts application mode and a second input thread, which on a
        dead terminal spins on end-of-file until the process exits.
        """
        resume = signal.getsignal(signal.SIGCONT)
        fd = self.hangup.fd if self.hangup is not None else 0

        def on_continue(signum: int, frame: FrameType | None) -> None:
            if terminal_alive(fd):
                if callable(resume):
                    resume(signum, frame)
            else:
                threading.Thread(target=self._hung_up, args=("SIGCONT on a dead terminal",), daemon=True).start()

        signal.signal(signal.SIGCONT, on_continue)

    def _hung_up(self, why: str) -> None:
        """The terminal went away (SIGHUP, end of input, or an I/O error): end the process cleanly."""
        for face in self.faces:
            face.abandoned.set()  # a question nobody can answer is a cancel
        run_face = self.run_face
        if run_face is not None:
            run_face.abandoned.set()  # and stops a playbook run where it is, resumable

        def leave() -> None:
            applying = run_face is not None and run_face.applying.is_set()
            if self.acting or applying:  # an action confirmed before the hangup ends (and is journaled) first
                self.set_timer(0.5, leave)
                return
            self.exit(129)

        try:
            self.call_from_thread(leave)
        except RuntimeError:
            pass

    def on_unmount(self) -> None:
        for face in self.faces:
            face.abandoned.set()
        if self.run_face is not None:
            self.run_face.abandoned.set()
        if self.hangup is not None:
            self.hangup.stop()

    # -- polls ---------------------------------------------------------------------------------
    def _poll(self, system: str) -> None:
        """Read one system in a thread worker; its message's handler schedules the next read."""
        model = self.model
        target = {"registry": self._read_registry, "router": self._read_router, "metrics": self._read_metrics,
                  "journal": self._read_journal, "features": self._read_features, "alerts": self._read_alerts}[system]
        self.run_worker(lambda: self._guarded(system, model, target), thread=True, exit_on_error=False,
                        group=f"poll-{system}", name=f"poll {system}")

    def _next_poll(self, system: str) -> None:
        # The feature telemetry explains breaches judged over a minute: every 10 s is fresh enough, and it is the
        # heaviest read (a histogram per input, version and segment), which a 2-core host shares with the UI.
        interval = max(self.options.refresh_s, FEATURES_EVERY_S) if system == "features" else self.options.refresh_s
        self._poll_timers[system] = self.set_timer(interval, lambda: self._poll(system), name=f"next {system}")

    def _guarded(self, system: str, model: str, read: Callable[[str], None]) -> None:
        """Run a read; whatever it raises becomes a failing reading, never an exit."""
        try:
            read(model)
        except Exception as exc:  # noqa: BLE001 - a poll must never close the app
            from console.services.live import Health, Reading

            message = f"{exc.__class__.__name__}: {exc}" if not isinstance(exc, RewindError) else str(exc)
            if system == "journal":
                self.post_message(JournalRead(None, [], None, None, error=message))
            elif system == "alerts":
                self.post_message(AlertsRead(model, [], error=message))
            elif system == "features":
                self.post_message(FeaturesRead(model, ((), (), message), None))
            else:
                self.post_message(SystemRead(Reading(system, Health.FAILING, None, message, 0.0,
                                                     self.options.clock())))

    def _read_registry(self, model: str) -> None:
        self.post_message(SystemRead(self.backend.live().read_registry(model)))  # type: ignore[arg-type]

    def _read_router(self, model: str) -> None:
        self.post_message(SystemRead(self.backend.live().read_router(model)))  # type: ignore[arg-type]

    def _read_metrics(self, model: str) -> None:
        live = self.backend.live()
        reading = live.read_metrics(model)
        self.post_message(SystemRead(reading))  # type: ignore[arg-type]
        if reading.value is None:
            return
        started = time.perf_counter()
        # Kept before composing: a registry or router read that lands meanwhile then recomposes these results.
        self.last_results = (model, reading.value, reading.at)
        while True:
            registry = self.readings.get("registry")
            router = self.readings.get("router")
            snapshot = live.compose(model, registry.value if registry else None,  # type: ignore[arg-type]
                                    router.value if router else None, reading.value, reading.at)  # type: ignore[arg-type]
            # A read that landed while composing may have found no results to recompose yet: judge again with it,
            # or the console would show the matrix without its aliases and weights until the next metrics read.
            if self.readings.get("registry") is registry and self.readings.get("router") is router:
                break
        summary = summarise(snapshot.matrix)
        diagnosed = self._diagnose(live, snapshot)
        self.post_message(SnapshotReady(snapshot, summary, (time.perf_counter() - started) * 1000,
                                        reading=diagnosed))

    def _diagnose(self, live: LiveStatus, snapshot: StatusSnapshot) -> FeatureReading | None:
        """In a worker: the snapshot's diagnosis with the model's last feature read (``None`` before the first)."""
        last = self.feature_read
        if last is None or last[0] != snapshot.model:
            return None
        try:
            return live.diagnose(snapshot, last[1])
        except Exception:  # noqa: BLE001 - the diagnosis only explains: it must never cost the matrix
            return None

    def _read_features(self, model: str) -> None:
        """What the servers report of their features (never raises), and the diagnosis of the snapshot on screen."""
        live = self.backend.live()
        read = live.read_features(model)
        snapshot = self.snapshot
        reading = None
        if snapshot is not None and snapshot.model == model:
            try:
                reading = live.diagnose(snapshot, read)
            except Exception:  # noqa: BLE001 - shown as the read's problem, never a crash
                reading = None
        self.post_message(FeaturesRead(model, read, reading, snapshot))

    @work(thread=True, exit_on_error=False, group="compose")
    def _rediagnose(self, model: str, read: FeatureRead) -> None:
        """Diagnose the snapshot now on screen with ``read`` (a newer snapshot landed while the features were read)."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.model != model:
            return
        try:
            reading = self.backend.live().diagnose(snapshot, read)
        except Exception:  # noqa: BLE001 - the diagnosis only explains: never a crash
            return
        self.post_message(FeaturesRead(model, read, reading, snapshot, chained=False))

    @work(thread=True, exit_on_error=False, group="compose")
    def _recompose(self) -> None:
        """Judge the last metrics again with the latest registry and router readings."""
        if self.last_results is None:
            return
        model, results, at = self.last_results
        registry, router = self.readings.get("registry"), self.readings.get("router")
        started = time.perf_counter()
        snapshot = self.backend.live().compose(model, registry.value if registry else None,  # type: ignore[arg-type]
                                               router.value if router else None, results, at)  # type: ignore[arg-type]
        summary = summarise(snapshot.matrix)
        self.post_message(SnapshotReady(snapshot, summary, (time.perf_counter() - started) * 1000, chained=False,
                                        reading=self._diagnose(self.backend.live(), snapshot)))

    def _read_journal(self, model: str) -> None:
        from console.domain.authority import approval_refusal
        from console.domain.journal import EventKind
        from console.services.approvals import pending_requests

        service = self.backend.rollback()
        journal = service.journal
        incident = journal.open_incident_of(model)
        if incident is None:
            closed = [i for i in journal.incidents() if i.model == model]
            incident = closed[-1] if closed else None
        # Only the events after the last one held are read (by sequence number), never the whole timeline.
        timeline = self.timeline
        if timeline is None:
            timeline = self.timeline = journal.follower()
        timeline.follow(incident.incident_id if incident else None, incident.events if incident else None)
        timeline.catch_up()
        events = timeline.events
        holder = service.lock.holder(model)
        since = None
        if holder is not None:
            since = next((e.ts for e in events if e.kind is EventKind.ACTION_INTENT
                          and e.payload.get("action_id") == holder[0]), None)
        pending = pending_requests(events) if incident is not None and incident.status == "open" else []
        # Offered only to a user who may approve them: not the requester, and holding `approve`.
        pending = [p for p in pending if approval_refusal(p.requester, service.identity, service.policy) is None]
        self.post_message(JournalRead(incident, events, holder, since, pending))

    def _follow_journal(self, timeline: IncidentFollower) -> None:
        """PostgreSQL: wait for commits to the followed incident (LISTEN) and read the journal as soon as one lands."""
        from textual.worker import get_current_worker

        worker = get_current_worker()
        try:
            while not worker.is_cancelled and self.is_running:
                if timeline.wait(0.5):
                    self.call_from_thread(self._poll_soon, "journal")
        except RuntimeError:
            pass  # the app closed while this thread waited
        finally:
            timeline.close()

    def _read_alerts(self, model: str) -> None:
        """The model's alerts journaled by `rewind alerts serve` in its open incidents, firing, not since resolved."""
        from console.domain.alert_events import FIRING, episodes
        from console.services.alerts import journaled_alerts

        records = episodes(journaled_alerts(self.backend.rollback().journal))
        self.post_message(AlertsRead(model, [r for r in records if r.model == model and r.status == FIRING]))

    # -- handlers ------------------------------------------------------------------------------
    @on(AlertsRead)
    def _alerts_read(self, message: AlertsRead) -> None:
        if message.model == self.model:
            self.alerts_error = message.error
            if message.error is None:  # a failed read keeps what was last read (dimmed): never "nothing fires"
                known = {alert.episode for alert in self.firing}
                new = [alert for alert in message.firing if alert.episode not in known]
                self.firing = message.firing
                if new:
                    playbook = (new[-1].suggestion or {}).get("playbook")
                    self.notify(f"{new[-1].alertname} fires on {self.model}"
                                + (f": press o to open {playbook}" if playbook else ""),
                                title="paged", severity="warning", timeout=10)
            self._paint_header()
        self._next_poll("alerts")

    @on(SystemRead)
    def _system_read(self, message: SystemRead) -> None:
        reading = message.reading
        previous = self.readings.get(reading.system)
        if reading.value is None and previous is not None and previous.value is not None:
            # Keep the last good value to compose with, with the time it was read: the header shows the
            # failure, and the value as last seen once it is too old to stand for now.
            self.readings[reading.system] = replace(reading, value=previous.value, at=previous.at)
        else:
            self.readings[reading.system] = reading
        change = self.health.change(reading) if self.health is not None else None
        if change:
            self.notify(change, title="systems", severity="information" if reading.health.usable else "warning")
            self._journal_health(change, reading)
        if reading.system == "metrics" and reading.value is None:
            self._show_matrix_problem(reading)
        if (reading.system != "metrics" and reading.value is not None and self.last_results is not None
                and (previous is None or previous.value != reading.value)):
            self._recompose()  # new aliases or weights: judge the last metrics against them now
        self._paint_header()
        if reading.system != "metrics" or reading.value is None:
            self._next_poll(reading.system)

    def _show_matrix_problem(self, reading: Reading[object]) -> None:
        if self.snapshot is None:
            matrix = self._matrix()
            if matrix is not None:
                matrix.show(None, f"no metrics: {reading.error}")

    @on(SnapshotReady)
    def _snapshot_ready(self, message: SnapshotReady) -> None:
        snapshot = message.snapshot
        if snapshot.model != self.model:
            if message.chained:
                self._next_poll("metrics")
            return
        self.snapshot = snapshot
        self.summary = message.summary
        if message.reading is not None or self.feature_read is None:
            self.feature_reading = message.reading
        if message.chained:  # a recomposition judges the same data again: not a new point of the trend
            self.refreshes += 1
        matrix = self._matrix()
        if matrix is not None:
            with self.batch_update():
                matrix.show(snapshot.matrix)
                self._record_trend()
                self._paint_header()
                self._paint_trend()
                self._paint_explain()
                self._paint_diagnosis()
        if not self.features_polling:
            # The feature telemetry is read from the first snapshot on: never on the path of the first metrics.
            self.features_polling = True
            self._poll("features")
        walkthrough = self._walkthrough()
        if walkthrough is not None:
            walkthrough.paint_header()
        if message.chained:
            self._next_poll("metrics")

    @on(FeaturesRead)
    def _features_read(self, message: FeaturesRead) -> None:
        if message.model == self.model:
            self.feature_read = (message.model, message.read)
            snapshot = self.snapshot
            if snapshot is not None and snapshot.model == message.model:
                if message.snapshot is snapshot:
                    self.feature_reading = message.reading
                elif message.chained:  # the snapshot changed while the features were read: judge the one on screen
                    self._rediagnose(message.model, message.read)
            self._paint_diagnosis()
        if message.chained:
            self._next_poll("features")

    @on(JournalRead)
    def _journal_read(self, message: JournalRead) -> None:
        from console.tui.screens.timeline import TimelineScreen

        self.journal_state = message
        self._paint_header()
        screen = self.top_screen
        if isinstance(screen, TimelineScreen):
            screen.show(message.incident, message.events, message.error)
        if self.action_screen is not None and self.action_plan_id:
            for event in message.events:
                if event.payload.get("action_id") == self.action_plan_id:
                    self.action_screen.journal_event(event)
        if self._journal_news:  # a commit was heard while this read was under way
            self._journal_news = False
            self._poll("journal")
        else:
            self._next_poll("journal")
        timeline = self.timeline
        if timeline is not None and timeline.live and not any(w.group == "journal-follow" for w in self.workers):
            self.run_worker(lambda: self._follow_journal(timeline), thread=True, exit_on_error=False,
                            group="journal-follow", name="follow journal")

    @on(MatrixView.CursorMoved)
    def _cursor_moved(self, message: MatrixView.CursorMoved) -> None:
        self._record_trend()
        self._paint_trend()
        self._paint_explain()

    # -- painting ------------------------------------------------------------------------------
    @property
    def top_screen(self) -> Screen[object] | None:
        """The screen on top, or ``None`` while the app starts or after it closed (messages still arrive)."""
        return self.screen_stack[-1] if self.screen_stack else None

    def _matrix(self) -> MatrixView | None:
        overview = self._overview()
        return overview.matrix if overview is not None else None

    def _overview(self) -> OverviewScreen | None:
        """The overview once its widgets exist (handlers may run before it is composed, or after the app closed)."""
        overview = self.overview_screen
        return overview if overview is not None and overview.is_attached and self.is_running else None

    def overview_ready(self, overview: OverviewScreen) -> None:
        """The overview composed its widgets: paint what is known already."""
        self.overview_screen = overview
        if self.read_only:
            banner = overview.query_one("#banner", Static)
            banner.update(Text("READ-ONLY console: it never acts; the acting keys are off.", style="bold"))
            banner.display = True
        if self.snapshot is not None:  # a snapshot that arrived before the overview was composed
            overview.matrix.show(self.snapshot.matrix)
            self._record_trend()
            self._paint_trend()
        self._paint_header()
        self._paint_diagnosis()

    def _paint_header(self) -> None:
        overview = self._overview()
        if overview is None:
            return
        registry = self.readings.get("registry")
        journal = self.journal_state
        now = self.options.clock()
        overview.matrix.mark_stale(verdicts_stale(self.snapshot, now, self.stale_after_s))
        lines = [
            model_line(self.model, registry, self.snapshot, self.readings.get("router"), now,  # type: ignore[arg-type]
                       self.stale_after_s)
            if self.backend_ready else loading_line(self.model),
            systems_line(self.readings, journal.error if journal else None),
            self._live_verdicts(),
        ]
        paging = alerts_line(self.firing, self.size.width - 1, self.alerts_error)
        if paging is not None:
            lines.append(paging)
        extra = Text()
        if journal is not None and journal.lock is not None:
            action_id, holder = journal.lock
            since = f" since {journal.lock_since[11:19]}Z" if journal.lock_since else ""
            extra.append(f"⚑ {holder} is acting on {self.model} ({action_id}){since}", style="bold yellow")
        if journal is not None and journal.pending and not self.read_only:
            first = journal.pending[0]
            if extra:
                extra.append("  ")
            extra.append(f"⚑ {len(journal.pending)} request(s) wait for approval: {first.requester}'s "
                         f"{first.action_id} (press a)", style="bold cyan")
        run = self._run_line()
        if run is not None:
            if extra:
                extra.append("  ")
            extra.append_text(run)
        if extra:
            lines.append(extra)
        overview.header.show(lines)

    def _live_verdicts(self) -> Text:
        """The header's verdict line: what breaches now, and since when (the walkthrough shows it too)."""
        return verdict_line(self.snapshot, self.summary, self.options.clock(), self.stale_after_s)

    @property
    def stale_after_s(self) -> float:
        """How old a reading may be and still stand for now: a few refreshes (then it reads as unknown)."""
        return STALE_REFRESHES * self.options.refresh_s

    def _run_line(self) -> Text | None:
        """The playbook run's state for the overview's header: waiting for an answer, running, resumable."""
        view = self.run_view
        if view is not None and view.active:
            if view.question is not None:
                return Text(f"? playbook {view.playbook_id} waits for your answer at {view.question.step_id} "
                            "(press p)", style="bold yellow")
            return Text(f"▶ playbook {view.playbook_id} running (p shows it)", style="bold cyan")
        state = self.resumable
        if state is not None and state.model == self.model:
            return Text(f"↻ run {state.run_id} of {state.playbook_id} stopped at step {state.current}: press p to "
                        "resume it", style="bold cyan")
        return None

    def _record_trend(self) -> None:
        matrix = self._matrix()
        if self.snapshot is None or matrix is None or matrix.current_key is None or not self.snapshot.matrix.metrics:
            return
        spec = self.snapshot.matrix.metrics[min(matrix.cursor_metric, len(self.snapshot.matrix.metrics) - 1)]
        segment = matrix.current_key[0]
        if self.trend.focus != (spec.name, segment) or self.trend.last_refresh != self.refreshes:
            self.trend.record(self.snapshot.matrix, spec.name, segment)
            self.trend.last_refresh = self.refreshes

    def _paint_trend(self) -> None:
        overview = self._overview()
        if overview is None:
            return
        overview.trend.draw(self.trend, self.snapshot.matrix if self.snapshot else None,
                                            self.size.width, max_versions=2 if self.size.height < 30 else 4)

    def _paint_explain(self) -> None:
        overview = self._overview()
        if overview is None:
            return
        panel, matrix = overview.explain, overview.matrix
        if not panel.display:
            return
        if self.snapshot is None or matrix.current_key is None or not self.snapshot.matrix.metrics:
            panel.update("no cell selected")
            return
        panel.update(explanation(self.snapshot.matrix, matrix.current_key, matrix.cursor_metric))

    def _paint_diagnosis(self) -> None:
        overview = self._overview()
        if overview is None:
            return
        reading = self.feature_reading
        overview.diagnosis.show(reading.diagnosis if reading is not None else None)

    # -- bindings ------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "fleet":
            return len(self.models) > 1 and not getattr(self.top_screen, "FLEET", False)
        if getattr(self.top_screen, "FLEET", False) and action not in ("help", "quit", "pop_screen"):
            return False  # the fleet view acts on no model: Enter opens one's overview first
        if action in ACTING and self.read_only:
            return False
        if action in ("undo", "next_model") and self.run_active:
            return False  # a playbook run acts through its own steps, on its own model
        if action == "playbooks" and self.walkthrough_screen is not None and self.top_screen is self.walkthrough_screen:
            return False  # the walkthrough is on screen already
        if action == "approve":
            return bool(self.journal_state and self.journal_state.pending)
        overview_only = ("explain", "sort", "filter", "rollback", "gradual", "diagnosis", "features", "readiness",
                         "stats", "open_page")
        if action == "diagnosis" and getattr(self.top_screen, "OFFERS_DIAGNOSIS", False):
            return True  # the features view offers the same evidence one key away
        if action == "stats" and getattr(self.top_screen, "OFFERS_STATS", False):
            return True  # the readiness view offers the speed of the drills it counts on one key away
        if action in overview_only and not isinstance(self.top_screen, OverviewScreen):
            return False
        if action == "next_model":
            return len(self.models) > 1
        return True

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = [
            ("Roll back", "preview a rollback, then confirm it by typing the model's name", self.action_rollback,
             "rollback"),
            ("Gradual rollback", "step the weights down, each step gated on metrics", self.action_gradual,
             "gradual"),
            ("Undo the last action", "reverse the model's latest action (typed confirmation)", self.action_undo,
             "undo"),
            ("Approve a pending request", "two-person rule: approve another user's action", self.action_approve,
             "approve"),
            ("Timeline", "the model's incident: events, notes, close, export", self.action_timeline, "timeline"),
            ("Shadow", "the shadow's gate per segment: start, stop, promote, revert", self.action_shadow, "shadow"),
            ("Fallback", "is the fallback ready, does it serve: engage, restore, drill", self.action_fallback,
             "fallback"),
            ("Diagnosis", "who the breach is blamed on (features, model, world), with its evidence",
             self.action_diagnosis, "diagnosis"),
            ("Features", "bindings declared and observed, input health, the diff; roll the features back",
             self.action_features, "features"),
            ("Playbooks", "walk through a playbook ranked on the current verdicts, or resume a run",
             self.action_playbooks, "playbooks"),
            ("Open the page", "walk through the playbook the newest firing alert suggests", self.action_open_page,
             "open_page"),
            ("Rollback readiness", "could the model be rolled back now? every condition measured (artifacts loaded)",
             self.action_readiness, "readiness"),
            ("Speed to rollback", "recovery phases of real incidents and drills, per playbook, the monthly trend",
             self.action_stats, "stats"),
            ("Note", "add a note to the model's open incident", self.action_note, "note"),
            ("Open an incident", "for the model, when none is open", self.action_open_incident, "open_incident"),
            ("Close the incident", "its metric history is captured first", self.action_close_incident,
             "close_incident"),
            ("Export the incident", "Markdown, JSON or HTML post-mortem", self.action_export, "export"),
            ("Sort worst-first", "toggle the matrix order", self.action_sort, "sort"),
            ("Filter segments", "show only segments containing a text", self.action_filter, "filter"),
            ("Explain the selected cell", "PromQL, values, criterion, reason", self.action_explain, "explain"),
            ("Help", "every key, and what the console detected about the terminal", self.action_help, "help"),
        ]
        for title, help_text, callback, action in commands:
            if self.check_action(action, ()) is not False:
                yield SystemCommand(title, help_text, callback)

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen

        if not isinstance(self.top_screen, HelpScreen):
            self.push_screen(HelpScreen(self.read_only, self.backend.source))

    def action_timeline(self) -> None:
        from console.tui.screens.timeline import TimelineScreen

        if isinstance(self.top_screen, TimelineScreen):
            self.pop_screen()
            return
        screen = TimelineScreen()
        self.push_screen(screen)
        state = self.journal_state
        if state is not None:
            self.call_after_refresh(screen.show, state.incident, state.events, state.error)

    def action_shadow(self) -> None:
        """The shadow view (its own screen: reads, keys and messages of its own)."""
        from console.tui.screens.shadow import ShadowScreen

        if not isinstance(self.top_screen, ShadowScreen):
            self.push_screen(ShadowScreen())

    def action_fallback(self) -> None:
        """The fallback's readiness panel (its own screen)."""
        from console.tui.screens.fallback import FallbackScreen

        if not isinstance(self.top_screen, FallbackScreen):
            self.push_screen(FallbackScreen())

    def action_diagnosis(self) -> None:
        """The diagnosis with every evidence line, what is missing, and the advice (Esc closes it)."""
        from console.tui.dialogs.diagnosis import DiagnosisDialog

        if isinstance(self.top_screen, DiagnosisDialog):
            return
        reading = self.feature_reading
        if reading is None or reading.diagnosis is None:
            if self.feature_read is None:
                said = "no diagnosis yet: the feature telemetry is read after the first metrics"
            else:
                said = "no diagnosis: no version breaches"
            problem = reading.problem if reading is not None else None
            self.notify(said + (f" (feature telemetry: {problem})" if problem else ""), timeout=5)
            return
        self.push_screen(DiagnosisDialog(self.model, reading.diagnosis, reading.problem))

    def action_features(self) -> None:
        """The features view (its own screen: the declared side loads in a worker, Feast is slow to import)."""
        from console.tui.screens.features import FeaturesScreen

        if not isinstance(self.top_screen, FeaturesScreen):
            self.push_screen(FeaturesScreen())

    def action_readiness(self) -> None:
        """The readiness view (its own screen: the check loads artifacts, in a worker of its own)."""
        from console.tui.screens.readiness import ReadinessScreen

        if not isinstance(self.top_screen, ReadinessScreen):
            self.push_screen(ReadinessScreen())

    def action_stats(self) -> None:
        """The speed-to-rollback view (its own screen: it reads the journal in a worker of its own)."""
        from console.tui.screens.stats import StatsScreen

        if not isinstance(self.top_screen, StatsScreen):
            self.push_screen(StatsScreen())

    def action_explain(self) -> None:
        overview = self._overview()
        if overview is None:
            return
        panel = overview.explain
        panel.display = not panel.display
        self._paint_explain()

    def action_sort(self) -> None:
        matrix = self._matrix()
        if matrix is not None:
            matrix.reorder(worst_first=not matrix.worst_first)
            self.notify("worst first" if matrix.worst_first else "by segment, then version", timeout=2)

    def action_filter(self) -> None:
        from console.tui.dialogs.prompt import TextPrompt

        matrix = self._matrix()
        if matrix is None:
            return

        def apply(text: str | None) -> None:
            if text is not None:
                matrix.reorder(segment_filter=text)

        self.push_screen(TextPrompt("Show segments containing (empty: all)", matrix.segment_filter,
                                    allow_empty=True), apply)

    def action_next_model(self) -> None:
        if len(self.models) < 2:
            return
        self._switch_model(self.models[(self.models.index(self.model) + 1) % len(self.models)])

    def action_fleet(self) -> None:
        """The fleet view: every model on one screen, worst first (its own screen, with its own poll)."""
        from console.tui.screens.fleet import FleetScreen

        if len(self.models) > 1 and not isinstance(self.top_screen, FleetScreen):
            self.push_screen(FleetScreen())

    def open_model(self, model: str) -> None:
        """The fleet view's Enter: the model's overview (the screens above the overview close)."""
        if model not in self.models:
            return
        while len(self.screen_stack) > 1 and not isinstance(self.screen, OverviewScreen):
            self.pop_screen()
        if model != self.model:
            self._switch_model(model)

    def _switch_model(self, model: str) -> None:
        """Show ``model`` on the overview: what was read of the previous one is dropped, its polls read this one."""
        self.model = model
        self.snapshot = None
        self.readings.clear()
        self.feature_read = None
        self.feature_reading = None
        self._paint_diagnosis()
        self.trend = TrendHistory()
        self.resumable = None
        self.firing, self.alerts_error = [], None
        self._poll_soon("alerts")
        matrix = self._matrix()
        if matrix is not None:
            matrix.show(None, f"reading {self.model}…")
        self._paint_header()
        self._look_for_unfinished(self.model)

    # -- actions -------------------------------------------------------------------------------
    action_plan_id: str | None = None

    def _begin(self, title: str) -> bool:
        from console.tui.dialogs.progress import ActionScreen

        if self.read_only:
            self.notify("read-only console: it never acts", severity="warning")
            return False
        if self.acting:
            self.notify("an action is already under way", severity="warning")
            return False
        if self.run_active:
            self.notify("a playbook run is under way: its action steps act (p shows it)", severity="warning")
            return False
        self.acting = True
        self.action_plan_id = None
        self.action_screen = ActionScreen(title)
        self.push_screen(self.action_screen, self._action_screen_closed)
        return True

    def act(self, request: ActionRequest) -> bool:
        """Carry out ``request`` (a view's action) in a thread worker of the app, with the progress dialog.

        Returns:
            ``False`` when the console cannot act now (read-only, an action or a run under way): it says why.
        """
        if not self._begin(request.title):
            return False
        self._carry(request)
        return True

    def _action_screen_closed(self, choice: str | None) -> None:
        screen = self.action_screen
        self.action_screen = None
        if choice == "undo" and screen is not None and screen.result is not None and screen.result.outcomes:
            self.act(undo_request(screen.result.outcomes[0].action_id))

    def action_rollback(self) -> None:
        self.act(rollback_request(gradual=False))

    def action_gradual(self) -> None:
        self.act(rollback_request(gradual=True))

    def action_undo(self) -> None:
        self.act(undo_request(None))

    @on(ConfirmationWanted)
    def _confirmation_wanted(self, message: ConfirmationWanted) -> None:
        """Put an action's typed confirmation on screen; its worker waits on the question."""
        from console.rendering import render_preview
        from console.tui.dialogs.confirm import ConfirmDialog

        question, preview, title = message.question, message.preview, message.title
        if question.closed:
            return  # the worker stopped waiting (the console is closing)
        if any(isinstance(s, ConfirmDialog) for s in self.screen_stack):
            question.give(False)  # never two confirmations at once
            return
        self.action_plan_id = preview.plan.action_id

        def reply(confirmed: bool | None) -> None:
            question.give(bool(confirmed))

        self.push_screen(ConfirmDialog(f"{title} of {preview.plan.model}", render_preview(preview, title),
                                       preview.plan.model, message.verb or title), reply)

    @work(thread=True, exit_on_error=False, group="action")
    def _carry(self, request: ActionRequest) -> None:
        """Carry out an action (never exclusive: a write must not be cancelled midway); its end is a message."""
        try:
            result = request.carry(AppCarrier(self, self.model))
        except RewindError as exc:
            self.post_message(ActionDone(request.title, None, str(exc)))
        except Exception as exc:  # noqa: BLE001 - an action's failure is shown, never a crash
            self.post_message(ActionDone(request.title, None, f"unexpected error: {exc.__class__.__name__}: {exc}"))
        else:
            self.post_message(ActionDone(request.title, result, undoable=request.undoable))

    @on(ActionStep)
    def _action_step(self, message: ActionStep) -> None:
        if self.action_screen is not None:
            self.action_screen.say(message.text, message.tone)

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.acting = False
        self.faces.clear()
        screen = self.action_screen
        result = message.result
        if result is not None and result.cancelled:
            if screen is not None and self.top_screen is screen:
                screen.dismiss(None)  # type: ignore[union-attr]
            self.notify(f"{message.title} cancelled: nothing changed", timeout=4)
        elif screen is not None:
            screen.finish(result, message.error, undoable=message.undoable)
        elif message.error:
            self.notify(message.error, title=message.title, severity="error", timeout=15)
        for system in ("router", "registry", "journal"):
            self._poll_soon(system)

    def _poll_soon(self, system: str) -> None:
        """Read a system now rather than at its next turn (after an action), without overlapping a read."""
        running = [w for w in self.workers if w.group == f"poll-{system}" and not w.is_finished]
        if not running:
            timer = self._poll_timers.pop(system, None)
            if timer is not None:  # this read takes the timer's turn: one chain of reads per system, never two
                timer.stop()
            self._poll(system)
        elif system == "journal":
            self._journal_news = True

    # -- playbooks -------------------------------------------------------------------------------
    @property
    def run_active(self) -> bool:
        """Whether this console is carrying out a playbook run (its worker has not returned)."""
        return self.run_view is not None and self.run_view.active

    def _walkthrough(self) -> WalkthroughScreen | None:
        screen = self.walkthrough_screen
        return screen if screen is not None and screen.is_mounted and self.is_running else None

    def action_playbooks(self) -> None:
        """The walkthrough of the run under way; otherwise the picker of the model's playbooks."""
        from console.tui.dialogs.playbooks import PlaybookPicker

        if self.run_active:
            self._show_walkthrough()
            return
        if not self.backend_ready or not self.model:
            self.notify("the config is still loading: try again in a moment", severity="warning")
            return
        if self.acting:
            self.notify("an action is under way: wait for its outcome", severity="warning")
            return
        if self.picker is not None:
            return
        self.picker = PlaybookPicker(self.model, self.read_only)
        self.push_screen(self.picker, self._picked)
        self._rank_playbooks(self.model)

    def action_open_page(self) -> None:
        """The walkthrough of the playbook the newest firing alert suggests (the picker when it suggests none)."""
        if self.run_active:
            self.notify("a playbook run is under way: it is shown instead", severity="warning")
            self._show_walkthrough()
            return
        if not self.firing:
            said = f"no alert is firing for {self.model}"
            self.notify(said + (f" as last read (alerts not read now: {self.alerts_error})"
                                if self.alerts_error else ""), title="paging", timeout=5)
            return
        newest = self.firing[-1]
        suggestion = newest.suggestion or {}
        playbook = suggestion.get("playbook")
        if not isinstance(playbook, str) or not playbook:
            why = suggestion.get("why") or "the alert carries no suggestion"
            self.notify(f"{newest.alertname}: no playbook suggested ({why}): pick one", title="paging",
                        severity="warning", timeout=10)
            self.action_playbooks()
            return
        if not self.backend_ready or self.acting:
            self.action_playbooks()  # it says why nothing opens now
            return
        self._load_suggestion(self.model, playbook)

    @work(thread=True, exit_on_error=False, group="playbooks", name="load the suggested playbook")
    def _load_suggestion(self, model: str, playbook_id: str) -> None:
        """Read the playbook library for the suggested playbook (edits since the alert count)."""
        try:
            library, _ = self.backend.playbooks().library()
        except Exception as exc:  # noqa: BLE001 - said in a notification, never a crash
            self.post_message(SuggestionLoaded(model, playbook_id, None, f"the playbooks could not be read: {exc}"))
            return
        loaded = next((item for item in library if item.playbook.id == playbook_id), None)
        why = "" if loaded is not None else f"{playbook_id} is not in the playbook library (or does not validate)"
        if loaded is not None and not loaded.playbook.applies_to(model):
            loaded, why = None, f"{playbook_id} does not apply to {model}"
        self.post_message(SuggestionLoaded(model, playbook_id, loaded, why))

    @on(SuggestionLoaded)
    def _suggestion_loaded(self, message: SuggestionLoaded) -> None:
        if message.model != self.model:
            return
        if message.loaded is None:
            self.notify(f"{message.why}: pick one", title="paging", severity="warning", timeout=10)
            self.action_playbooks()
            return
        self.notify(f"the newest alert suggests {message.playbook_id}: each action asks for your confirmation",
                    title="paging", timeout=6)
        self._start_run(message.loaded, None)

    @work(thread=True, exit_on_error=False, group="playbooks", name="rank playbooks")
    def _rank_playbooks(self, model: str) -> None:
        """Read the playbooks, the model's unfinished runs, and rank the playbooks on the current verdicts."""
        from console.domain.playbook import Playbook
        from console.domain.playbook_run import EntryMatch

        try:
            runner = self.backend.playbooks()
            library, problems = runner.library()
            unfinished = runner.unfinished(model)
            playbooks = [loaded.playbook for loaded in library]
            rank_error = None
            ranked: list[tuple[Playbook, EntryMatch | None]]
            try:
                ranked = list(runner.rank(playbooks, model))
            except RewindError as exc:  # the metrics are down: the playbooks are still listed, unranked
                ranked = [(playbook, None) for playbook in playbooks if playbook.applies_to(model)]
                rank_error = str(exc)
        except RewindError as exc:
            self.post_message(PlaybooksRanked(model, error=str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown in the picker, never a crash
            self.post_message(PlaybooksRanked(model, error=f"unexpected error: {exc.__class__.__name__}: {exc}"))
            return
        self.post_message(PlaybooksRanked(model, ranked, {loaded.playbook.id: loaded for loaded in library},
                                          problems, unfinished, rank_error))

    @work(thread=True, exit_on_error=False, group="playbooks", name="unfinished runs")
    def _look_for_unfinished(self, model: str) -> None:
        """The model's runs that have not ended, to offer resuming the newest."""
        try:
            runs = self.backend.playbooks().unfinished(model)
        except Exception:  # noqa: BLE001 - best effort: the picker lists them too
            return
        self.post_message(UnfinishedRuns(model, runs))

    @on(PlaybooksRanked)
    def _playbooks_ranked(self, message: PlaybooksRanked) -> None:
        if message.model != self.model:
            return
        if message.error is None:
            self.playbook_library = message.library
            self.unfinished_runs = message.unfinished
            self.resumable = message.unfinished[-1] if message.unfinished else None
            self._paint_header()
        if self.picker is not None:
            self.picker.show(message)

    @on(UnfinishedRuns)
    def _unfinished_runs(self, message: UnfinishedRuns) -> None:
        if message.model != self.model:
            return
        newest = message.runs[-1] if message.runs else None
        known = self.resumable.run_id if self.resumable is not None else None
        self.unfinished_runs = message.runs
        self.resumable = newest
        self._paint_header()
        if newest is not None and newest.run_id != known and not self.run_active:
            self.notify(f"run {newest.run_id} of {newest.playbook_id} stopped at step {newest.current} "
                        f"(started by {newest.started_by}): press p to resume it", title="unfinished playbook run",
                        timeout=20)

    def _picked(self, picked: Picked | None) -> None:
        self.picker = None
        if picked is None:
            return
        if picked.kind == "resume":
            state = next((s for s in self.unfinished_runs if s.run_id == picked.id), None)
            if state is None:
                self.notify(f"run {picked.id} is no longer unfinished", severity="warning")
                return
            self._start_run(None, state)
            return
        loaded = self.playbook_library.get(picked.id)
        if loaded is None:
            self.notify(f"playbook {picked.id} is no longer there", severity="warning")
            return
        self._start_run(loaded, None)

    def _start_run(self, loaded: LoadedPlaybook | None, state: RunState | None) -> None:
        """Start (or resume) a run: the walkthrough at once, the runner in a thread worker of the app."""
        from console.tui.run_face import WalkthroughFace
        from console.tui.run_view import RunView

        if self.run_active or self.acting:
            self.notify("a run or an action is under way already", severity="warning")
            return
        playbook_id = loaded.playbook.id if loaded is not None else state.playbook_id if state is not None else "?"
        title = loaded.playbook.title if loaded is not None else ""
        self.run_view = RunView(self.model, playbook_id, title)
        self.run_face = WalkthroughFace(self, self.options.clock)
        self.resumable = None
        self._paint_header()
        self._show_walkthrough()
        self._drive_run(self.run_face, self.model, loaded, state)

    def _show_walkthrough(self) -> None:
        from console.tui.screens.walkthrough import WalkthroughScreen

        if self.walkthrough_screen is not None and self.walkthrough_screen in self.screen_stack:
            if self.run_view is not None and self.walkthrough_screen.view is not self.run_view:
                self.walkthrough_screen.follow(self.run_view)  # it stayed under a dialog while a new run started
            return  # on screen already, or under a dialog of its own run
        assert self.run_view is not None
        self.walkthrough_screen = WalkthroughScreen(self.run_view, self._live_verdicts, self.options.clock)
        self.push_screen(self.walkthrough_screen, self._walkthrough_closed)

    def _walkthrough_closed(self, result: None) -> None:
        self.walkthrough_screen = None
        self._paint_header()

    @work(thread=True, exit_on_error=False, group="playbook-run", name="playbook run")
    def _drive_run(self, face: WalkthroughFace, model: str, loaded: LoadedPlaybook | None,
                   state: RunState | None) -> None:
        """Start or resume the run and carry it out; whatever ends it becomes the walkthrough's last state."""
        from console.services.playbooks import Run
        from console.tui.run_view import RunEnded

        run: Run | None = None
        try:
            runner = self.backend.playbooks()
            if state is not None:
                run = runner.resume(state, read_only=self.read_only)
            else:
                assert loaded is not None
                run = runner.start(loaded.playbook, loaded.text, model, read_only=self.read_only)
            face.attach(run, runner.rollback)
            face.began(resumed=state is not None)
            end = runner.drive(run, face)
        except RewindError as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a run's failure is shown and journaled, never a crash
            error = f"unexpected error: {exc.__class__.__name__}: {exc}"
        else:
            self.post_message(RunProgress(RunEnded(end.state.finished, end.stopped, None, tuple(end.state.results))))
            return
        finally:
            face.applying.clear()
        if run is not None:
            self._journal_run_error(run.state.incident_id, run.state.run_id, error)
        results = tuple(run.state.results) if run is not None else ()
        self.post_message(RunProgress(RunEnded(None, None, error, results)))

    def _journal_run_error(self, incident_id: str, run_id: str, error: str) -> None:
        """A run stopped by an error is a line in its incident's timeline (best effort: it may be the journal)."""
        from console.domain.journal import EventKind

        try:
            self.backend.rollback().journal.record(incident_id, EventKind.NOTE, {
                "text": f"console: playbook run {run_id} stopped on an error: {error}", "run_id": run_id})
        except Exception:  # noqa: BLE001, S110 - the error is on screen already
            pass

    @on(RunProgress)
    def _run_progress(self, message: RunProgress) -> None:
        from console.tui.run_view import ChoiceAsked, QuestionClosed, RunEnded

        view = self.run_view
        if view is None:
            return
        event = message.event
        view.apply(event)
        screen = self._walkthrough()
        if screen is not None:
            screen.sync()
        if isinstance(event, ChoiceAsked) and (screen is None or self.top_screen is not screen):
            self.notify(f"playbook {view.playbook_id} waits for your answer at step {event.step_id}: press p",
                        title="playbook run", severity="warning", timeout=15)
        if isinstance(event, RunEnded):
            self.run_face = None
            if event.error is not None:
                self.notify(event.error, title=f"playbook {view.playbook_id} stopped", severity="error", timeout=15)
            elif event.stopped is not None:
                self.notify(event.stopped, title=f"playbook {view.playbook_id} stopped", severity="warning",
                            timeout=15)
            else:
                self.notify(f"ended: {event.outcome}", title=f"playbook {view.playbook_id}", timeout=8)
            for system in ("router", "registry", "journal"):
                self._poll_soon(system)
            if event.error is not None or event.stopped is not None:
                self._look_for_unfinished(self.model)
        if isinstance(event, ChoiceAsked | QuestionClosed | RunEnded):
            self._paint_header()

    @on(ChoiceAnswered)
    def _choice_answered(self, message: ChoiceAnswered) -> None:
        """The responder's answer to the run's open choice, unless that question closed meanwhile."""
        from console.services.playbooks import ChoiceAnswer
        from console.tui.run_view import QuestionClosed

        face = self.run_face
        question = face.pending if face is not None else None
        if (question is None or question.step_id != message.step_id or question.kind != "choice"
                or not question.give(ChoiceAnswer(message.option, message.reason))):
            self.notify("that question is closed already", severity="warning")
            return
        if self.run_view is not None:  # closed now, so it cannot be answered twice (the face says so too)
            self.run_view.apply(QuestionClosed(message.step_id, "answered"))
            screen = self._walkthrough()
            if screen is not None:
                screen.sync()
            self._paint_header()

    @on(RunConfirmationWanted)
    def _run_confirmation_wanted(self, message: RunConfirmationWanted) -> None:
        """Put a run's typed confirmation on screen; the run's worker waits on the question."""
        from console.tui.dialogs.confirm import ConfirmDialog

        question = message.question
        if question.closed or question.answered.is_set():
            return
        if any(isinstance(s, ConfirmDialog) for s in self.screen_stack):
            # Another confirmation is open (an approval): this one is asked once that one is answered.
            self.set_timer(0.5, lambda: self._run_confirmation_wanted(message))
            return
        dialog = ConfirmDialog(message.title, message.body, message.expected, message.verb, note=message.note)
        question.dialog = dialog

        def reply(confirmed: bool | None) -> None:
            question.dialog = None
            if not question.give(bool(confirmed)) and confirmed:
                self.notify("that confirmation had expired: nothing changed", severity="warning")

        self.push_screen(dialog, reply)

    @on(RunQuestionWithdrawn)
    def _run_question_withdrawn(self, message: RunQuestionWithdrawn) -> None:
        """A run's question timed out: take its confirmation dialog down (nothing changed)."""
        from console.tui.dialogs.confirm import ConfirmDialog

        question = message.question
        dialog = question.dialog
        if isinstance(dialog, ConfirmDialog) and dialog.is_current:
            dialog.dismiss(False)
            self.notify(f"no confirmation in time for step {question.step_id}: nothing changed",
                        severity="warning", timeout=10)

    # -- approvals -----------------------------------------------------------------------------
    def action_approve(self) -> None:
        state = self.journal_state
        if self.read_only or state is None or not state.pending:
            self.notify("no request waits for approval", severity="warning")
            return
        self._approval_preview(state.pending[0].action_id)

    @work(thread=True, exit_on_error=False, group="approve")
    def _approval_preview(self, action_id: str) -> None:
        from console.services.approvals import approval_preview

        try:
            _, preview, requester = approval_preview(self.backend.rollback(), action_id)
        except RewindError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.call_from_thread(self._ask_approval, preview, requester)

    def _ask_approval(self, preview: Preview, requester: str) -> None:
        from console.rendering import render_preview
        from console.tui.dialogs.confirm import ConfirmDialog

        if any(isinstance(s, ConfirmDialog) for s in self.screen_stack):
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                self._approve(preview.plan.action_id)
            else:
                self.notify("not approved", timeout=3)

        self.push_screen(ConfirmDialog(f"Approve {requester}'s action on {preview.plan.model}",
                                       render_preview(preview, "Approve"), preview.plan.model, "Approve"), answered)

    @work(thread=True, exit_on_error=False, group="approve")
    def _approve(self, action_id: str) -> None:
        try:
            incident_id, _ = self.backend.rollback().approve(action_id)
        except RewindError as exc:
            self.call_from_thread(self.notify, str(exc), title="approve", severity="error", timeout=10)
            return
        self.call_from_thread(self.notify, f"approved {action_id} (incident {incident_id})", timeout=6)
        self.call_from_thread(self._poll_soon, "journal")

    # -- the timeline's writes -----------------------------------------------------------------
    def _incident_id(self, open_only: bool = True) -> str | None:
        state = self.journal_state
        if state is None or state.incident is None:
            return None
        if open_only and state.incident.status != "open":
            return None
        return state.incident.incident_id

    def action_note(self) -> None:
        """Ask for a note and journal it in the open incident."""
        from console.tui.dialogs.prompt import TextPrompt

        incident_id = self._incident_id()
        if incident_id is None:
            self.notify("no open incident: press o to open one", severity="warning")
            return

        def write(text: str | None) -> None:
            if text:
                self._journal_write("note", incident_id, text)

        self.push_screen(TextPrompt(f"Note for {incident_id}"), write)

    def action_open_incident(self) -> None:
        """Ask for a summary and open an incident for the model."""
        from console.tui.dialogs.prompt import TextPrompt

        if self._incident_id() is not None:
            self.notify("the model has an open incident already", severity="warning")
            return

        def write(text: str | None) -> None:
            if text:
                self._journal_write("open", None, text)

        self.push_screen(TextPrompt(f"Open an incident for {self.model}: what is wrong?"), write)

    def action_close_incident(self) -> None:
        """Ask for the resolution and close the open incident (its metric history is captured first)."""
        from console.tui.dialogs.prompt import TextPrompt

        incident_id = self._incident_id()
        if incident_id is None:
            self.notify("no open incident to close", severity="warning")
            return

        def write(text: str | None) -> None:
            if text is not None:
                self._journal_write("close", incident_id, text)

        self.push_screen(TextPrompt(f"Close {incident_id}: the resolution", allow_empty=True), write)

    def action_export(self) -> None:
        """Ask for the format and export the incident."""
        from console.tui.dialogs.prompt import ExportDialog

        incident_id = self._incident_id(open_only=False)
        if incident_id is None:
            self.notify("no incident to export", severity="warning")
            return
        directory = self.options.export_dir or Path.cwd()
        def write(fmt: str | None) -> None:
            if fmt:
                self._export(incident_id, fmt, directory)

        self.push_screen(ExportDialog(incident_id, str(directory)), write)

    @work(thread=True, exit_on_error=False, group="journal-write")
    def _journal_write(self, what: str, incident_id: str | None, text: str) -> None:
        try:
            journal = self.backend.rollback().journal
            if what == "note" and incident_id:
                event = journal.note(incident_id, text)
                said = f"note recorded ({event.incident_id} #{event.seq})"
            elif what == "open":
                event = journal.open_incident(self.model, "2", text)
                said = f"incident {event.incident_id} opened"
            else:
                assert incident_id is not None
                event, warning = self.backend.postmortems().close(incident_id, text or None)
                said = f"incident {event.incident_id} closed" + (f"; warning: {warning}" if warning else "")
        except RewindError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        self.call_from_thread(self.notify, said, timeout=5)
        self.call_from_thread(self._poll_soon, "journal")

    @work(thread=True, exit_on_error=False, group="export")
    def _export(self, incident_id: str, fmt: str, directory: Path) -> None:
        from console.services.postmortem import default_export_path

        try:
            exported = self.backend.postmortems().export_to(incident_id, fmt, default_export_path(
                directory, incident_id, fmt))
        except RewindError as exc:
            self.call_from_thread(self.notify, str(exc), title="export", severity="error", timeout=10)
            return
        except OSError as exc:
            self.call_from_thread(self.notify, f"export failed: {exc}", title="export", severity="error", timeout=10)
            return
        said = f"wrote {exported.path} ({fmt}, {exported.events} events)"
        if exported.note:
            said += f"; {exported.note}"
        self.call_from_thread(self.notify, said, title="export", timeout=10)

    @work(thread=True, exit_on_error=False, group="journal-write")
    def _journal_health(self, sentence: str, reading: Reading[object]) -> None:
        """Once per change of a system's state: a line in the open incident's timeline."""
        from console.domain.journal import EventKind

        incident_id = self._incident_id()
        if incident_id is None:
            return
        try:
            self.backend.rollback().journal.record(incident_id, EventKind.NOTE, {
                "text": f"console: {sentence}", "system": reading.system, "health": reading.health.value})
        except RewindError:
            pass  # the journal being down is on the header already


def create_app(backend: Backend | None = None, options: ConsoleOptions = ConsoleOptions(), *,
               load_backend: BackendLoader | None = None) -> RewindApp:
    """The one app factory, used by ``rewind tui`` and by the tests.

    Args:
        backend: the console's services, ready to use (the tests' fakes).
        options: how the console was started.
        load_backend: instead of ``backend``, what reads the config and builds it: called in a thread
            worker after the first frame (``rewind tui``). What it raises ends the app, with exit code 2
            for a config or usage error, and is kept in ``app.start_error`` for the CLI to report.

    Returns:
        The app, not yet running.
    """
    return RewindApp(backend, options, load_backend)


def install_hangup_signal(app: RewindApp) -> None:
    """SIGHUP (the SSH session closed) ends the console cleanly instead of killing it mid-write."""
    def handler(signum: int, frame: object) -> None:
        threading.Thread(target=app._hung_up, args=("SIGHUP",), daemon=True).start()

    signal.signal(signal.SIGHUP, handler)
