"""``rewind drill``: a playbook rehearsed end to end on a sandbox or staging setup, journaled as a drill.

A drill opens an incident of its own, marked as a drill (kept apart from real
incidents: no real action joins it, and speed-to-rollback counts drills apart),
injects its fault when it names one (the sandbox's scenarios), waits until the
judge shows a breach, as monitoring would, and runs the playbook in that incident
with the usual previews, confirmations and verifications. Then it puts back what
it changed: every action it applied is undone, newest first (each undo a
journaled action of its own), and the fault is lifted. The incident closes with
the time from the fault to the verified rollback, which `rewind ready` reads.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from console.adapters.protocols import FaultInjector
from console.domain.errors import RewindError, UsageError
from console.domain.journal import EventKind, parse_ts
from console.domain.playbook import Playbook
from console.domain.recovery import drill_marker
from console.services.actions import ActionFace, ActionOptions, carry_out
from console.services.journal import Placement
from console.services.playbooks import PlaybookRunner, RunEnd, RunFace


@dataclass(frozen=True)
class DrillOutcome:
    """What a drill did.

    Attributes:
        incident_id: the drill's incident.
        end: how the playbook's run ended.
        detected_after_s: from the fault to the first breach the judge showed (``None``: no fault injected).
        verified_after_s: from the fault (else the drill's start) to the first verified action.
        restored: one line per action undone and the fault lifted.
    """

    incident_id: str
    end: RunEnd
    detected_after_s: float | None
    verified_after_s: float | None
    restored: list[str] = field(default_factory=list)


class DrillService:
    """Runs drills through the playbook runner.

    Args:
        runner: the playbook runner (its rollback service holds the systems and the journal).
        faults: where a named fault is injected (``None``: drills inject none).
        clock: the current time (Unix seconds); ``sleep`` waits.
    """

    def __init__(self, runner: PlaybookRunner, faults: FaultInjector | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        self.runner = runner
        self.faults = faults
        self.clock = clock
        self.sleep = sleep

    def drill(self, playbook: Playbook, text: str, model: str, face: RunFace, restore_face: ActionFace,
              scenario: str | None = None, yes: bool = False, keep: bool = False,
              detect_timeout_s: float = 300.0, said: Callable[[str], None] = lambda line: None) -> DrillOutcome:
        """Rehearse ``playbook`` on ``model``: fault, detection, the run, then everything put back.

        Raises:
            UsageError: a fault named without an injector, or one it does not know; the playbook is not for
                the model; the breach never showed within ``detect_timeout_s``. Whatever stops the drill
                once its incident is open, what it applied is undone, the fault lifted and the incident closed.
        """
        if not playbook.applies_to(model):
            raise UsageError(f"playbook {playbook.id} is written for {', '.join(playbook.models)}, not {model}")
        if scenario is not None:
            if self.faults is None:
                raise UsageError("a drill's --scenario needs a sandbox: this config is not a sandbox's")
            if scenario not in self.faults.scenarios():
                raise UsageError(f"no scenario {scenario!r}; {self.faults.describe()} knows "
                                 f"{', '.join(self.faults.scenarios())}")
        journal = self.runner.rollback.journal
        started = self.clock()
        detected_after: float | None = None
        if scenario is not None:
            assert self.faults is not None
            # A fault injected into a model that already breaches (the last drill's, still in the metric
            # window) would be "detected" at once: the drill starts from a calm baseline.
            calm_after = self._calm(model, detect_timeout_s)
            if calm_after > 1:
                said(f"drill: the model was calm again after {calm_after:.0f}s")
            started = self.clock()
            self.faults.inject(scenario)
            said(f"drill: fault {scenario!r} injected into {self.faults.describe()}")
        opened = journal.open_incident(
            model, "4", f"drill: {playbook.id} on {model}" + (f" ({scenario})" if scenario else ""),
            impact_started_at=_iso(started) if scenario else None, extra=drill_marker(playbook.id))
        incident_id = opened.incident_id
        try:
            if scenario is not None:
                detected_after = self._detect(model, started, detect_timeout_s)
                said(f"drill: the judge shows a breach {detected_after:.0f}s after the fault")
                journal.note(incident_id, f"drill: the judge showed a breach {detected_after:.1f}s after the fault "
                                          f"{scenario!r}")
            run = self.runner.start(playbook, text, model, yes=yes, incident=incident_id)
            end = self.runner.drive(run, face)
        except BaseException as exc:
            # A drill that could not finish still puts back what it changed and closes its incident, saying why.
            put_back: list[str] = []
            if not keep:
                try:
                    put_back = self._restore(incident_id, restore_face, scenario)
                except RewindError as failed:
                    put_back = [f"could not put back what the drill changed: {failed}"]
                    if scenario is not None:
                        with contextlib.suppress(RewindError):
                            put_back.append(self._lift(scenario))
            with contextlib.suppress(RewindError):
                journal.close_incident(incident_id, f"drill of {playbook.id} stopped: {exc or type(exc).__name__}"
                                       + (f"; {'; '.join(put_back)}" if put_back else ""))
            raise
        verified_after = self._verified_after(incident_id, started)
        restored = [] if keep else self._restore(incident_id, restore_face, scenario)
        took = "never verified" if verified_after is None else f"verified {verified_after:.0f}s after the start"
        how = f"stopped at step {end.state.current}: {end.stopped}" if end.stopped else f"ended {end.state.finished}"
        # A drill is not resumed: what it changed is put back, so its incident closes whatever happened.
        journal.close_incident(incident_id, f"drill of {playbook.id} {how}; {took}")
        return DrillOutcome(incident_id, end, detected_after, verified_after, restored)

    def _calm(self, model: str, timeout_s: float) -> float:
        """Wait until the model's matrix shows no breach; the seconds waited."""
        return self._until(model, False, self.clock(), timeout_s,
                           f"{model} still breaches {timeout_s:g}s later: a drill needs a calm model to inject its "
                           "fault into")

    def _detect(self, model: str, started: float, timeout_s: float) -> float:
        """Seconds from the fault to the first breach in the model's matrix."""
        return self._until(model, True, started, timeout_s,
                           f"the judge showed no breach within {timeout_s:g}s of the fault: the drill stopped "
                           "before the playbook ran")

    def _until(self, model: str, breaching: bool, since: float, timeout_s: float, failure: str) -> float:
        """Read the model's matrix every 2 s until it shows a breach (``breaching``) or none; the seconds since
        ``since``. A metrics hiccup is read past; after ``timeout_s``, UsageError(``failure``)."""
        while True:
            try:
                if bool(self.runner.snapshot(model).matrix.breaches()) is breaching:
                    return self.clock() - since
            except RewindError:
                pass  # the deadline below still holds
            if self.clock() - since > timeout_s:
                raise UsageError(failure)
            self.sleep(2.0)

    def _verified_after(self, incident_id: str, started: float) -> float | None:
        journal = self.runner.rollback.journal
        events = journal.journal.events(incident_id, [EventKind.ACTION_VERIFIED])
        verified = [parse_ts(e.ts).timestamp() for e in events]
        return min(verified) - started if verified else None

    def _restore(self, incident_id: str, face: ActionFace, scenario: str | None) -> list[str]:
        """Undo every action the drill applied, newest first, then lift the fault."""
        service = self.runner.rollback
        journal = service.journal
        applied = [e.payload["action_id"] for e in journal.journal.events(incident_id, [EventKind.ACTION_APPLIED])
                   if e.payload.get("changed", True) is not False and e.payload.get("action_id")]
        undone = {str(e.payload["plan"].get("undoes")) for e in journal.journal.events(
            incident_id, [EventKind.ACTION_INTENT]) if isinstance(e.payload.get("plan"), dict)}
        lines = []
        placement = Placement(journal.require_open(incident_id).model, "named", incident_id=incident_id)
        for action_id in reversed(applied):
            if action_id in undone:
                continue
            try:
                preview, _ = service.undo_preview(str(action_id), "end of the drill: put back what it changed",
                                                  placement)
                result = carry_out(service, preview, placement, face,
                                   ActionOptions("the drill's own restore", verify=False))
                lines.append(f"undid {action_id}" if result.succeeded else f"could not undo {action_id}")
            except RewindError as exc:
                lines.append(f"could not undo {action_id}: {exc}")
        if scenario is not None:
            lines.append(self._lift(scenario))
        return lines

    def _lift(self, scenario: str) -> str:
        assert self.faults is not None
        self.faults.inject("healthy")
        return f"fault {scenario!r} lifted"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
