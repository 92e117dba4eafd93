"""``rewind stats``: speed to rollback from the journal, per model and playbook, as text or JSON.

The figures and their definitions are :mod:`console.domain.recovery`'s; the flow
(read, verify, filter, summarise) is :mod:`console.services.recovery`'s. This face
only prints them. The JSON document (schema ``rewind.stats/1``) gives every duration
in seconds; ``counts.kept_apart`` is how many incidents of the other population
(drills, or real incidents with ``--drills``) the window holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from console.commands.journal import journal_service
from console.domain.journal import format_ts
from console.domain.recovery import (
    EVERY_VALUE_BELOW,
    PHASE_MEANING,
    SLOW_RECOVERY_S,
    GroupSummary,
    Phase,
    Recovery,
    Status,
    TrendPoint,
    duration_text,
    every_value_text,
    phase_figures,
    seconds_figure,
)
from console.services.recovery import RecoveryReport, RecoveryStats

STATS_SCHEMA = "rewind.stats/1"


def run(args: argparse.Namespace) -> int:
    """Print the speed to rollback of the incidents (or drills) opened in the window."""
    service = journal_service(args)
    try:
        report = RecoveryStats(service).report(args.model, args.since, args.drills)
    finally:
        service.close()
    if args.json:
        json.dump(stats_document(report), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(render_text(report)) + "\n")
    return 0


# --- JSON ------------------------------------------------------------------------------------

def _group_document(group: GroupSummary, key: str) -> dict[str, object]:
    return {key: group.key, "recovered": group.recovered, "open": group.open, "over_10_min": list(group.slow),
            "phases": {str(s.phase): phase_figures(s) for s in group.phases}}


def _incident_document(recovery: Recovery, now: float) -> dict[str, object]:
    return {
        "id": recovery.incident_id, "model": recovery.model, "playbook": recovery.playbook,
        "status": str(recovery.status), "opened_at": format_ts(recovery.opened_at),
        "started_at": format_ts(recovery.started_at), "start_source": recovery.start_source,
        "closed_at": None if recovery.closed_at is None else format_ts(recovery.closed_at),
        "action_id": recovery.action_id,
        "running_s": seconds_figure(recovery.running_s(now)) if recovery.status is Status.OPEN else None,
        "phases": {str(phase): seconds_figure(recovery.phases[phase]) for phase in Phase if phase in recovery.phases},
    }


def _trend_document(point: TrendPoint) -> dict[str, object]:
    return {"month": point.month, "n": point.n, "p50": seconds_figure(point.p50), "max": seconds_figure(point.max)}


def stats_document(report: RecoveryReport) -> dict[str, object]:
    """The stable JSON document of ``rewind stats --json`` (every duration in seconds)."""
    summary = report.summary
    recoveries = summary.recoveries
    return {
        "schema": STATS_SCHEMA,
        "journal": report.journal,
        "generated_at": format_ts(report.now),
        "window": {"since": report.since, "from": format_ts(report.since_at), "to": format_ts(report.now),
                   "counted_by": "opened_at"},
        "model": report.model,
        "population": "drills" if report.drills else "incidents",
        "unit": "s",
        "definitions": {str(phase): meaning for phase, meaning in PHASE_MEANING.items()},
        "counts": {
            "incidents": len(recoveries),
            **{str(status): sum(r.status is status for r in recoveries) for status in Status},
            "left_out": len(report.left_out),
            "kept_apart": report.apart,
        },
        "left_out": [{"id": item.incident_id, "reason": "chain does not verify", "problem": item.problem}
                     for item in report.left_out],
        "open": [_incident_document(r, report.now) for r in summary.of_status(Status.OPEN)],
        "not_verified": [_incident_document(r, report.now) for r in summary.of_status(Status.NOT_VERIFIED)],
        "over_10_min": list(summary.slow),
        "by_model": [_group_document(group, "model") for group in summary.by_model],
        "by_playbook": [_group_document(group, "playbook") for group in summary.by_playbook],
        "trend": [_trend_document(point) for point in summary.trend],
        "incidents": [_incident_document(r, report.now) for r in recoveries],
    }


# --- text ------------------------------------------------------------------------------------

LISTED = 8
"""How many incident ids a line names before it counts the rest (the JSON lists every one)."""


def _listed(items: Sequence[str]) -> str:
    """``a, b, c``; past :data:`LISTED` items, the first ones and how many more."""
    if len(items) <= LISTED:
        return ", ".join(items)
    return f"{', '.join(items[:LISTED])} and {len(items) - LISTED} more (--json lists every one)"


def _group_lines(title: str, groups: Sequence[GroupSummary]) -> list[str]:
    lines = [title]
    for group in groups:
        head = f"  {group.key}: {group.recovered} rolled back and verified"
        if group.open:
            head += f", {group.open} open"
        if group.slow:
            head += f"; {len(group.slow)} over {SLOW_RECOVERY_S / 60:g} min"
        lines.append(head)
        rows = [("PHASE", "N", "P50", f"P90 (every value while n < {EVERY_VALUE_BELOW})", "MAX")]
        rows.extend((str(s.phase), str(s.n), duration_text(s.p50), every_value_text(s), duration_text(s.max))
                    for s in group.phases)
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]),
                     row[3].ljust(widths[3]), row[4].rjust(widths[4])]
            lines.append(("    " + "  ".join(cells)).rstrip())
    return lines


def _trend_lines(points: Sequence[TrendPoint]) -> list[str]:
    lines = ["Trend by opening month (total)"]
    for point in points:
        figures = (f"p50 {duration_text(point.p50)}  max {duration_text(point.max)}" if point.n else "no rollback")
        lines.append(f"  {point.month}  n={point.n:<3d} {figures}")
    return lines


def _utc(unix_seconds: float) -> str:
    return f"{datetime.fromtimestamp(unix_seconds, UTC):%Y-%m-%d %H:%M}Z"


def render_text(report: RecoveryReport) -> list[str]:
    """The report as lines: counts, open incidents, tables per model and playbook, the trend."""
    summary = report.summary
    population = "drills" if report.drills else "incidents"
    of_model = f" of {report.model}" if report.model else ""
    lines = [f"Speed to rollback: {population}{of_model} opened in the last {report.since} "
             f"(since {_utc(report.since_at)}), {report.journal}"]
    if report.left_out:
        ids = _listed([item.incident_id for item in report.left_out])
        lines.append(f"{len(report.left_out)} incident{'' if len(report.left_out) == 1 else 's'} left out: "
                     f"{'its chain does' if len(report.left_out) == 1 else 'their chains do'} not verify ({ids}; "
                     "rewind journal verify)")
    if report.apart:
        other = ("real incident" if report.drills else "drill") + ("" if report.apart == 1 else "s")
        hint = "" if report.drills else " (rewind stats --drills)"
        lines.append(f"{report.apart} {other} in the window, kept apart{hint}")
    if not summary.counted:
        lines.append(f"no rollbacks{of_model} in the last {report.since}")
        return lines
    recovered = summary.of_status(Status.RECOVERED)
    opened = summary.of_status(Status.OPEN)
    unverified = summary.of_status(Status.NOT_VERIFIED)
    untimed = summary.of_status(Status.NO_ROLLBACK)
    counts = [f"{len(recovered)} rolled back and verified", f"{len(opened)} open"]
    if unverified:
        counts.append(f"{len(unverified)} closed without a verified rollback")
    if untimed:
        counts.append(f"{len(untimed)} without a rollback (not timed)")
    lines.append(f"{summary.counted + len(untimed)} {population}: " + ", ".join(counts))
    if opened:
        running = _listed([f"{duration_text(r.running_s(report.now))} ({r.incident_id})" for r in opened])
        lines.append(f"{len(opened)} open, running for {running}")
    if unverified:
        lines.append("closed without a verified rollback: " + _listed([r.incident_id for r in unverified]))
    if summary.slow:
        lines.append(f"{len(summary.slow)} over {SLOW_RECOVERY_S / 60:g} min: {_listed(summary.slow)}")
    if not recovered:
        lines.append(f"no rollback{of_model} verified in the last {report.since}")
        return lines
    lines.append("")
    lines.extend(_group_lines("By model", summary.by_model))
    lines.append("")
    lines.extend(_group_lines("By playbook", summary.by_playbook))
    lines.append("")
    lines.extend(_trend_lines(summary.trend))
    lines.append("")
    lines.append("Phases (seconds between journal events; percentiles by nearest rank, no means):")
    lines.extend(f"  {str(phase):<12} {meaning}" for phase, meaning in PHASE_MEANING.items())
    return lines
