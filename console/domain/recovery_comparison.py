"""One incident's recovery beside its model's history: each phase's value, the history's figures, and its rank.

The history is the model's other incidents of the same kind (drills for a drill, real
incidents for a real one) opened in a window; this incident is never part of it. For
each phase (:class:`~console.domain.recovery.Phase`) the history's figures are those of
``rewind stats``: n, p50, p90 and max over the incidents rolled back and verified, with
every value while n < :data:`~console.domain.recovery.EVERY_VALUE_BELOW`, and never a
mean. Where this incident falls is a count (:class:`Rank`): how many of the history's
values it beat, matched or trailed, to the millisecond.

Pure: the service reads the journal and passes the recoveries in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from console.domain.recovery import Phase, PhaseSummary, Recovery, Status, summarise_phase


@dataclass(frozen=True)
class Rank:
    """Where one value falls among a phase's history, to the millisecond.

    Attributes:
        faster_than: how many of the history's incidents took longer.
        same: how many took as long.
        slower_than: how many took less time.
    """

    faster_than: int
    same: int
    slower_than: int

    @property
    def of(self) -> int:
        """How many incidents the history holds for this phase."""
        return self.faster_than + self.same + self.slower_than

    @property
    def fastest(self) -> bool:
        """Faster than every incident of the history."""
        return self.faster_than == self.of > 0

    @property
    def slowest(self) -> bool:
        """Slower than every incident of the history."""
        return self.slower_than == self.of > 0


def rank_among(value: float, history: Iterable[float]) -> Rank:
    """Where ``value`` falls among ``history``'s values, both taken to the millisecond."""
    mine = round(value, 3)
    faster = same = slower = 0
    for other in history:
        theirs = round(other, 3)
        if theirs > mine:
            faster += 1
        elif theirs == mine:
            same += 1
        else:
            slower += 1
    return Rank(faster, same, slower)


@dataclass(frozen=True)
class PhaseComparison:
    """One phase: this incident's value (``None``: not reached or not measurable), the history's figures, the rank.

    ``rank`` is ``None`` when there is nothing to compare: no value here, or no history for the phase.
    """

    phase: Phase
    value: float | None
    history: PhaseSummary
    rank: Rank | None


@dataclass(frozen=True)
class RecoveryComparison:
    """An incident's recovery beside its model's history.

    Attributes:
        incident: this incident's recovery (its phases, status, kind).
        since: the window as asked (``90d``).
        since_at: the window's start (Unix seconds): the history counts incidents opened at or after it.
        until: the window's end, when the comparison was made.
        recovered: the history's incidents rolled back and verified (the ones its figures are of).
        open: the history's incidents still open.
        not_verified: the history's incidents closed after a rollback that never verified.
        left_out: the window's incidents of the model left out because their chain does not verify.
        kept_apart: the window's incidents of the model of the other kind (real incidents for a drill, drills
            for a real incident).
        phases: one comparison per phase, in :class:`Phase` order.
    """

    incident: Recovery
    since: str
    since_at: float
    until: float
    recovered: int
    open: int
    not_verified: int
    left_out: int
    kept_apart: int
    phases: tuple[PhaseComparison, ...]

    @property
    def drill(self) -> bool:
        """Whether this is a drill, compared with drills only."""
        return self.incident.drill


def compare_phases(incident: Recovery, history: Iterable[Recovery]) -> tuple[PhaseComparison, ...]:
    """Each phase of ``incident`` beside the same phase of the recovered incidents of ``history``.

    ``history`` should hold neither ``incident`` itself nor incidents of the other kind: the caller chooses
    the population; an incident of ``history`` with ``incident``'s id is left out all the same.
    """
    recovered = [r for r in history if r.status is Status.RECOVERED and r.incident_id != incident.incident_id]
    comparisons = []
    for phase in Phase:
        values = sorted(r.phases[phase] for r in recovered if phase in r.phases)
        value = incident.phases.get(phase)
        rank = rank_among(value, values) if value is not None and values else None
        comparisons.append(PhaseComparison(phase, value, summarise_phase(phase, values), rank))
    return tuple(comparisons)


def compare_recovery(incident: Recovery, history: Iterable[Recovery], since: str, since_at: float, until: float,
                     left_out: int = 0, kept_apart: int = 0) -> RecoveryComparison:
    """``incident`` beside ``history`` (the model's other incidents of its kind opened in the window).

    Args:
        incident: this incident's recovery.
        history: the window's other incidents of the same model and kind (``incident`` is left out if there).
        since: the window as asked (``90d``).
        since_at: the window's start (Unix seconds).
        until: the window's end (Unix seconds).
        left_out: how many of the window's incidents were left out, their chain not verifying.
        kept_apart: how many of the window's incidents are of the other kind.
    """
    others = [r for r in history if r.incident_id != incident.incident_id]
    return RecoveryComparison(
        incident=incident,
        since=since,
        since_at=since_at,
        until=until,
        recovered=sum(r.status is Status.RECOVERED for r in others),
        open=sum(r.status is Status.OPEN for r in others),
        not_verified=sum(r.status is Status.NOT_VERIFIED for r in others),
        left_out=left_out,
        kept_apart=kept_apart,
        phases=compare_phases(incident, others),
    )
