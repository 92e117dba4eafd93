"""The post-mortem's "Recovery compared" part, phrased once for every format.

This incident's recovery phases beside its model's history (the
:class:`~console.domain.recovery_comparison.RecoveryComparison` the view carries): the sentences above
the table, the table's rows, where the incident falls in words, and how the figures are measured.
Markdown and HTML add their markup around the same lines; JSON carries the same words beside the figures.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from console.domain.recovery import (
    EVERY_VALUE_BELOW,
    PHASE_MEANING,
    SLOW_RECOVERY_S,
    Phase,
    Recovery,
    Status,
    duration_text,
    every_value_text,
)
from console.domain.recovery_comparison import PhaseComparison, RecoveryComparison
from console.services.timeline.view import Clock

HEADING = "Recovery compared"
NO_HISTORY = "no history yet"

_STARTS = {"impact_started_at": "after the impact started", "detected_at": "after its detection",
           "opened": "after it was opened (no impact start was given)"}
"""Where an incident's total counts from, as the sentences name it."""


_UNITS = {"h": "hour", "d": "day", "w": "week"}


def window_words(since: str) -> str:
    """A window as a reader says it: ``90d`` is ``90 days``; other spellings are kept as given."""
    found = re.fullmatch(r"(\d+)([hdw])", since.strip())
    if found is None:
        return since
    n = int(found.group(1))
    return f"{n} {_UNITS[found.group(2)]}{'' if n == 1 else 's'}"


def _kind(comparison: RecoveryComparison) -> str:
    return "drill" if comparison.drill else "incident"


def _population(comparison: RecoveryComparison) -> str:
    return "drills" if comparison.drill else "real incidents"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def status_line(comparison: RecoveryComparison) -> str:
    """Whether this incident reached a verified rollback, and its recovery time when it did."""
    incident, kind = comparison.incident, _kind(comparison)
    total = incident.total_s
    if incident.status is Status.RECOVERED:
        if total is None:
            return (f"This {kind} was rolled back and verified ({incident.action_id}), but its recovery time "
                    "could not be measured (its events are out of order).")
        slow = f", over {SLOW_RECOVERY_S / 60:g} min" if total > SLOW_RECOVERY_S else ""
        return (f"This {kind} was rolled back and verified ({incident.action_id}) {duration_text(total)} "
                f"{_STARTS.get(incident.start_source, 'after ' + incident.start_source)}{slow}.")
    if incident.status is Status.OPEN:
        pending = f" and its rollback {incident.action_id} has not verified" if incident.action_id else ""
        return (f"No verified rollback yet: this {kind} is still open{pending}, so it has no recovery time; "
                "the phases it has reached are compared.")
    if incident.status is Status.NOT_VERIFIED:
        return (f"No verified rollback: this {kind} was closed after rollback {incident.action_id}, which never "
                "verified, so it has no recovery time; the phases it reached are compared.")
    return (f"No rollback: this {kind} holds none, so it has no recovery time; the phases it has are "
            "compared.")


def history_line(comparison: RecoveryComparison, clock: Clock) -> str:
    """What the history is: whose, which kind, which window, and how many incidents its figures are of."""
    c = comparison
    since = clock.utc(datetime.fromtimestamp(c.since_at, UTC))
    window = f"opened in the {window_words(c.since)} before this export (since {since})"
    others = []
    if c.open:
        others.append(f"{c.open} open")
    if c.not_verified:
        others.append(f"{c.not_verified} closed without a verified rollback")
    rest = f"; {', '.join(others)}, not timed" if others else ""
    if not c.recovered:
        return (f"History: no other {_population(c)} of {c.incident.model} {window} were rolled back and "
                f"verified{rest}: {NO_HISTORY}.")
    verified = _count(c.recovered, "was", "were")
    return f"History: {c.incident.model}'s other {_population(c)} {window}; {verified} rolled back and verified{rest}."


def comparison_lines(comparison: RecoveryComparison, clock: Clock) -> list[str]:
    """The sentences above the table: this incident's outcome, the history, what was kept apart or left out."""
    c = comparison
    lines = [status_line(c), history_line(c, clock)]
    if c.drill:
        apart = (f"; {_count(c.kept_apart, 'real incident', 'real incidents')} of the window kept apart"
                 if c.kept_apart else "")
        lines.append(f"A drill is compared with drills only{apart}.")
    elif c.kept_apart:
        lines.append(f"Drills are kept apart: {_count(c.kept_apart, 'drill', 'drills')} in the window.")
    if c.left_out:
        lines.append(f"{_count(c.left_out, 'incident', 'incidents')} of the window left out: "
                     f"{'its chain does' if c.left_out == 1 else 'their chains do'} not verify "
                     "(rewind journal verify).")
    return lines


def columns(comparison: RecoveryComparison) -> tuple[str, ...]:
    """The table's columns."""
    return ("Phase", f"This {_kind(comparison)}", "History n", "History p50",
            f"History p90 (every value while n < {EVERY_VALUE_BELOW})", "Where this one falls")


def _not_reached(compared: PhaseComparison, incident: Recovery) -> str:
    """Why this incident has no value for a phase."""
    if compared.phase in (Phase.VERIFY, Phase.TOTAL) and incident.status is not Status.RECOVERED:
        return "not reached: no verified rollback"
    if compared.phase in (Phase.DECIDE, Phase.EXECUTE) and incident.action_id is None:
        return "not reached: no rollback"
    if compared.phase is Phase.DETECT and incident.start_source == "opened":
        return "not measured: no impact start or detection time was given"
    return "not measured: its events are missing or out of order"


def where_it_falls(compared: PhaseComparison, incident: Recovery) -> str:
    """Where this incident falls among the history, in words: ``faster than 7 of 9``, ``the slowest of 12``."""
    if compared.value is None:
        return _not_reached(compared, incident)
    rank = compared.rank
    if rank is None:
        return NO_HISTORY
    n = rank.of
    if rank.fastest:
        return f"the fastest of {n + 1}"
    if rank.slowest:
        return f"the slowest of {n + 1}"
    if rank.same == n:
        return "as fast as the only other" if n == 1 else f"as fast as all {n}"
    words = (f"faster than {rank.faster_than} of {n}" if rank.faster_than >= rank.slower_than
             else f"slower than {rank.slower_than} of {n}")
    return words + (f" ({rank.same} took as long)" if rank.same else "")


def rows(comparison: RecoveryComparison) -> list[tuple[str, ...]]:
    """One row per phase, in the order of :func:`columns`."""
    return [(str(p.phase), duration_text(p.value), str(p.history.n), duration_text(p.history.p50),
             every_value_text(p.history), where_it_falls(p, comparison.incident)) for p in comparison.phases]


def definitions() -> list[str]:
    """How the comparison's figures are measured: each phase, and the history's figures."""
    return [
        *(f"Phase {phase}: {meaning}." for phase, meaning in PHASE_MEANING.items()),
        "Recovery compared: each phase of this incident beside the same phase of the model's other incidents of "
        "the same kind (drills with drills) opened in the window and rolled back and verified; n, p50 and p90 by "
        f"nearest rank, every value while n < {EVERY_VALUE_BELOW}, and no mean (a mean hides the slow "
        "recoveries).",
    ]
