"""The post-mortem skeleton in Markdown.

Summary, impact window, TTD and TTM (with how they are measured), the timeline, every decision with its
evidence, every action with its verification, and the sections people fill in: the sentences come from
:mod:`~console.services.timeline.sentences`, this module only adds Markdown around them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from console.domain.recovery_comparison import RecoveryComparison
from console.services.timeline import recovery_compared, sentences
from console.services.timeline.evidence import evidence_rows
from console.services.timeline.view import Clock, IncidentView


def _md(text: object) -> str:
    """Text safe inside a Markdown table cell or paragraph."""
    # Only a "<" that could open a tag is escaped: "54.6% < 85.0%" stays readable in the raw file.
    text = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return _TAG_START.sub("&lt;", text)


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _code(text: object) -> str:
    value = " ".join(str(text).split())
    fence = "``" if "`" in value else "`"
    return f"{fence} {value} {fence}" if fence == "``" else f"`{value}`"


def _blank(what: str) -> str:
    return f"_{sentences.to_fill(what)}_"


def _table_head(columns: Sequence[str]) -> str:
    return "| " + " | ".join(_md(c) for c in columns) + " |\n|" + "---|" * len(columns) + "\n"


def render_markdown(view: IncidentView, out: TextIO, clock: Clock, exported_at: datetime,
                    generator: str = "rewind") -> None:
    """The post-mortem draft in Markdown, in the order of the SRE book's example post-mortem."""
    s = view.summary
    w = out.write
    w(f"# {_md(sentences.post_mortem_title(view))}\n\n")
    w(f"Incident **{s.incident_id}** · {s.severity} · model `{s.model}` · {s.status}\n\n")
    w("| | |\n|---|---|\n")
    w(f"| Opened | {_md(sentences.opened_text(view, clock))} |\n")
    if s.closed_at:
        w(f"| Closed | {clock.both(s.closed_at)} |\n")
    w(f"| Authors | {_blank(sentences.FILL_IN_AUTHORS)} |\n")
    w(f"| Events | {s.events} |\n")
    w(f"| Exported | {clock.both(exported_at)} by {generator} |\n")
    w(f"| Journal | {_md(sentences.chain_line(view))} |\n\n")

    w("## Summary\n\n")
    w(" ".join(_md(line) for line in sentences.summary_lines(view, clock)) + "\n\n")
    w(_blank(sentences.FILL_IN_SUMMARY) + "\n\n")

    w("## Impact\n\n")
    for name, value in sentences.fact_lines(view, clock):
        w(f"- **{name}**: {_md(value)}\n")
    breaches = sentences.breach_lines(view, clock)
    if breaches:
        w("\nWhat breached:\n\n")
        w("".join(f"- {_md(line)}\n" for line in breaches))
    for line in sentences.history_lines(view, clock):
        w(f"\n_{_md(line)}_\n")
    w(f"\n{_blank(sentences.FILL_IN_IMPACT)}\n\n")

    w("## Trigger\n\n")
    for line, details in sentences.trigger_items(view, clock):
        w(f"- {_md(line)}\n" + "".join(f"  - {_md(detail)}\n" for detail in details))
    w(f"- {_blank(sentences.FILL_IN_TRIGGER)}\n\n")

    w("## Detection\n\n")
    w("".join(f"- {_md(line)}\n" for line in sentences.detection_lines(view, clock)))
    w(f"- {_blank(sentences.FILL_IN_DETECTION)}\n\n")

    w("## Resolution\n\n")
    w("".join(f"- {_md(line)}\n" for line in sentences.resolution_lines(view, clock)))
    w("\n")

    if view.comparison is not None:
        _write_comparison(view.comparison, out, clock)

    w("## Root cause\n\n")
    w(_blank(sentences.FILL_IN_ROOT_CAUSE) + "\n\n")

    w("## Lessons learned\n\n")
    for title, hint in sentences.LESSONS:
        w(f"### {title}\n\n- {_blank(hint)}\n\n")

    w("## Action items\n\n")
    w(_table_head(sentences.ACTION_ITEM_COLUMNS) + f"| _{sentences.TO_FILL}_ | {sentences.ACTION_ITEM_TYPES} |"
      + " |" * (len(sentences.ACTION_ITEM_COLUMNS) - 2) + "\n\n")

    w("## Timeline\n\n")
    w(f"{_md(sentences.timeline_intro(clock))}\n\n")
    w(_table_head(sentences.timeline_header(clock)))
    for row in view.rows:
        times = " | ".join(sentences.time_cells(clock, row.ts))
        w(f"| {sentences.row_seq(row)} | {times} | {_md(row.actor.label())} | {row.marker} | {_md(row.text)} |\n")
    w("\n")

    w("## Decisions\n\n")
    if not view.decisions:
        w(f"{sentences.NO_DECISION}\n\n")
    for decision in view.decisions:
        w(f"### {_md(sentences.decision_title(decision))}\n\n")
        w("".join(f"- {label}: {_md(text)}\n" for label, text in sentences.decision_lines(decision, clock)) + "\n")
        if decision.evidence:
            w(f"{sentences.evidence_heading(decision)}\n\n")
            w(_table_head(sentences.EVIDENCE_COLUMNS))
            rows = evidence_rows(decision)
            for r in rows:
                if not r.check:
                    w(f"| {r.seq} | {_md(r.what)} | | | | {_md(r.values)} |\n")
                    continue
                for flagged in r.flagged:
                    w(f"| {r.seq} | {_md(r.what)} | {flagged.verdict} | {_md(flagged.cell)} | {_md(flagged.value)} "
                      f"| {_md(flagged.reason)} |\n")
                w(f"| {r.seq} | {_md(r.what)} | {r.summary_verdict} | {r.summary_cells} | | {_md(r.rest)} |\n")
            checks = [r for r in rows if r.check]
            if checks:
                w("\nQueries and criteria:\n\n")
                w("".join(f"- #{r.seq} {_md(r.what)}: {_md(_code(r.promql))}; criterion {_md(r.criterion)}; "
                          f"data age {r.age}\n" for r in checks))
            w("\n")
        else:
            w(f"{sentences.NO_EVIDENCE}\n\n")

    w("## Actions\n\n")
    if not view.actions:
        w(f"{sentences.NO_ACTION}\n\n")
    for action in view.actions:
        w(f"### {_md(sentences.action_title(action))}\n\n")
        w("".join(f"- {label}: {_md(text)}\n" for label, text in sentences.action_lines(action, clock)))
        ok, word, detail = sentences.verification(action)
        w(f"- **Verification: {word}**{': ' + _md(detail) if detail else ''}\n\n")

    w("## How these figures are measured\n\n")
    for line in sentences.definitions():
        w(f"- {line}\n")
    if view.comparison is not None:
        w("".join(f"- {_md(line)}\n" for line in recovery_compared.definitions()))
    w("\n")
    w(f"---\nGenerated by {generator} from the {_md(view.head.incident_id)} journal. "
      f"{_md(sentences.chain_line(view))}\n")


def _write_comparison(comparison: RecoveryComparison, out: TextIO, clock: Clock) -> None:
    """The recovery compared with the model's history: the sentences, then one row per phase."""
    w = out.write
    w(f"## {recovery_compared.HEADING}\n\n")
    w("".join(f"{_md(line)}\n\n" for line in recovery_compared.comparison_lines(comparison, clock)))
    w(_table_head(recovery_compared.columns(comparison)))
    for row in recovery_compared.rows(comparison):
        w("| " + " | ".join(_md(cell) for cell in row) + " |\n")
    w("\n")
