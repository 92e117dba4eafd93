"""The post-mortem as one self-contained HTML page: inline CSS and SVG, no network and no script.

The same sections and sentences as the Markdown export (from :mod:`~console.services.timeline.sentences`),
with the charts of :mod:`~console.services.timeline.charts` under the impact: each checked metric per
version over the incident window, drawn from the journal (never from Prometheus at export time).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from console.domain.journal import EventKind
from console.domain.recovery_comparison import RecoveryComparison
from console.services.timeline import recovery_compared, sentences
from console.services.timeline.charts import charts_html
from console.services.timeline.evidence import evidence_rows
from console.services.timeline.view import Clock, IncidentView

_CSS = """
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#ffffff;--panel:#f6f8fa;--bad:#b3261e;--good:#1a7f37}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);
background:var(--bg);margin:0 auto;max-width:1240px;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{font-size:1.25em;border-bottom:1px solid var(--line);padding-bottom:4px;
margin-top:32px}h3{font-size:1.05em;margin:20px 0 6px}
.badge{display:inline-block;border:1px solid var(--ink);border-radius:4px;padding:0 6px;font-size:.8em;
font-weight:600;margin-left:8px;vertical-align:middle}
.muted{color:var(--muted)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:12px 0}
dl.facts dt{font-weight:600}dl.facts dd{margin:0}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:8px 0}
th,td{border:1px solid var(--line);padding:3px 6px;text-align:left;vertical-align:top}
th{background:var(--panel)}
tr.decision td{background:#fff8c5}tr.action td{background:#ddf4ff}
td.num,td.when{white-space:nowrap;font-variant-numeric:tabular-nums}
td.mine{font-weight:600}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--panel);padding:1px 3px;
border-radius:3px;word-break:break-all}
figure{margin:0 0 10px;border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff}
figure svg{width:100%;height:auto;display:block}
.smalls{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:8px}
figure.small{padding:3px;margin:0}figure.small figcaption{font-size:.8em}
.small-note{margin:4px 0}
.note{border-left:4px solid #bf8700;background:#fff8c5;padding:6px 10px;font-weight:600}
.blank{color:#8250df;font-style:italic}
.warn{color:#9a6700;font-weight:600}
tr.flagged td{background:#fff5f5}
figcaption{font-weight:600;font-size:.9em;margin:0 0 2px 4px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:center;margin:6px 0 10px;font-size:.9em}
.legend span{display:inline-flex;align-items:center;gap:6px}
.ok{color:var(--good);font-weight:600}.bad{color:var(--bad);font-weight:600}
ul.defs{font-size:.9em;color:var(--muted)}
footer{margin-top:32px;font-size:.85em;color:var(--muted)}
@media print{body{max-width:none}figure{break-inside:avoid}}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _blank_item(what: str) -> str:
    return f'<li class="blank">{_e(sentences.to_fill(what))}</li>'


def _html_list(lines: Sequence[str], blank: str | None = None) -> str:
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    if blank:
        items += _blank_item(blank)
    return f"<ul>{items}</ul>"


def _html_trigger(items: Sequence[tuple[str, list[str]]]) -> str:
    """The trigger section's list, a diagnosis' evidence nested under it."""
    parts = []
    for line, details in items:
        nested = f"<ul>{''.join(f'<li>{_e(d)}</li>' for d in details)}</ul>" if details else ""
        parts.append(f"<li>{_e(line)}{nested}</li>")
    parts.append(_blank_item(sentences.FILL_IN_TRIGGER))
    return f"<ul>{''.join(parts)}</ul>"


def _html_blank(what: str) -> str:
    return f'<p class="blank">{_e(sentences.to_fill(what))}</p>'


def _header_row(columns: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"


def _html_comparison(comparison: RecoveryComparison, clock: Clock) -> str:
    """The recovery compared with the model's history: the sentences, then one row per phase.

    The fastest and the slowest of the history are also coloured; their words say it without the colour.
    """
    lines = "".join(f"<p>{_e(line)}</p>" for line in recovery_compared.comparison_lines(comparison, clock))
    body = []
    for compared, (phase, value, n, p50, every, where) in zip(comparison.phases, recovery_compared.rows(comparison),
                                                              strict=True):
        rank = compared.rank
        css = ' class="bad"' if rank and rank.slowest else ' class="ok"' if rank and rank.fastest else ""
        body.append(f"<tr><td>{_e(phase)}</td><td class=\"num mine\">{_e(value)}</td><td class=\"num\">{_e(n)}</td>"
                    f"<td class=\"num\">{_e(p50)}</td><td>{_e(every)}</td><td{css}>{_e(where)}</td></tr>")
    return (f"<section id=\"recovery-compared\"><h2>{_e(recovery_compared.HEADING)}</h2>{lines}<table>"
            + _header_row(recovery_compared.columns(comparison)) + "".join(body) + "</table></section>\n")


def render_html(view: IncidentView, out: TextIO, clock: Clock, exported_at: datetime,
                generator: str = "rewind") -> None:
    """One self-contained HTML page: the same sections and facts as Markdown, with charts."""
    s = view.summary
    w = out.write
    w("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      f"<meta name=\"generator\" content=\"{_e(generator)}\">"
      f"<title>{_e(s.incident_id)}: {_e(s.summary)}</title><style>{_CSS}</style></head><body>\n")
    w(f"<header><h1>{_e(sentences.post_mortem_title(view))}</h1><div>Incident <b>{_e(s.incident_id)}</b>"
      f"<span class=\"badge\">{_e(s.severity)}</span><span class=\"badge\">{_e(s.status)}</span>"
      f" · model <code>{_e(s.model)}</code></div>\n<dl class=\"facts\">")
    w(f"<dt>Opened</dt><dd>{_e(sentences.opened_text(view, clock))}</dd>")
    if s.closed_at:
        w(f"<dt>Closed</dt><dd>{_e(clock.both(s.closed_at))}</dd>")
    w(f"<dt>Authors</dt><dd class=\"blank\">{_e(sentences.to_fill(sentences.FILL_IN_AUTHORS))}</dd>")
    w(f"<dt>Events</dt><dd>{s.events}</dd>")
    chain_class = "ok" if view.verification.ok else "bad"
    chain_mark = "✓" if view.verification.ok else "✗"
    w(f"<dt>Journal</dt><dd class=\"{chain_class}\">{chain_mark} {_e(sentences.chain_line(view))}</dd>")
    w(f"<dt>Exported</dt><dd>{_e(clock.both(exported_at))} by {_e(generator)}; local zone: "
      f"{_e(clock.zone_name)}</dd></dl></header>\n")

    w("<section><h2>Summary</h2>")
    w(f"<p>{_e(' '.join(sentences.summary_lines(view, clock)))}</p>")
    w(_html_blank(sentences.FILL_IN_SUMMARY) + "</section>\n")

    w("<section><h2>Impact</h2><dl class=\"facts\">")
    for name, value in sentences.fact_lines(view, clock):
        w(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>")
    w("</dl>")
    breaches = sentences.breach_lines(view, clock)
    if breaches:
        w("<p>What breached:</p>" + _html_list(breaches))
    w(_html_blank(sentences.FILL_IN_IMPACT))
    w("<h3>Metrics by version</h3>")
    w(charts_html(view, clock))
    w("</section>\n")

    w("<section><h2>Trigger</h2>")
    w(_html_trigger(sentences.trigger_items(view, clock)))
    w("</section>\n<section><h2>Detection</h2>")
    w(_html_list(sentences.detection_lines(view, clock), sentences.FILL_IN_DETECTION))
    w("</section>\n<section><h2>Resolution</h2>")
    w(_html_list(sentences.resolution_lines(view, clock)))
    w("</section>\n")
    if view.comparison is not None:
        w(_html_comparison(view.comparison, clock))
    w("<section><h2>Root cause</h2>")
    w(_html_blank(sentences.FILL_IN_ROOT_CAUSE))
    w("</section>\n<section><h2>Lessons learned</h2>")
    for title, hint in sentences.LESSONS:
        w(f"<h3>{_e(title)}</h3>" + _html_list([], hint))
    w("</section>\n<section><h2>Action items</h2><table>" + _header_row(sentences.ACTION_ITEM_COLUMNS)
      + f"<tr><td class=\"blank\">{_e(sentences.TO_FILL)}</td><td>{_e(sentences.ACTION_ITEM_TYPES)}</td>"
      + "<td></td>" * (len(sentences.ACTION_ITEM_COLUMNS) - 2) + "</tr></table></section>\n")

    w(f"<section><h2>Timeline</h2><p class=\"muted\">{_e(sentences.timeline_intro(clock))}</p><table>"
      + _header_row(sentences.timeline_header(clock)) + "\n")
    for row in view.rows:
        css = ' class="decision"' if row.kind == EventKind.DECISION else \
            ' class="action"' if row.kind.startswith("action.") else ""
        w(f"<tr{css}><td class=\"num\">{sentences.row_seq(row)}</td>"
          + "".join(f"<td class=\"when\">{_e(t)}</td>" for t in sentences.time_cells(clock, row.ts))
          + f"<td>{_e(row.actor.label())}</td><td>{_e(row.marker)}</td><td>{_e(row.text)}</td></tr>\n")
    w("</table></section>\n")

    w("<section><h2>Decisions</h2>")
    if not view.decisions:
        w(f"<p class=\"muted\">{_e(sentences.NO_DECISION)}</p>")
    for decision in view.decisions:
        lines = sentences.decision_lines(decision, clock)
        w(f"<h3>{_e(sentences.decision_title(decision))}</h3><dl class=\"facts\">"
          + "".join(f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in lines) + "</dl>")
        if decision.evidence:
            w(f"<p class=\"muted\">{_e(sentences.evidence_heading(decision))}</p><table>"
              + _header_row(sentences.EVIDENCE_COLUMNS))
            rows = evidence_rows(decision)
            for r in rows:
                if not r.check:
                    w(f"<tr><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td><td></td><td></td><td></td>"
                      f"<td>{_e(r.values)}</td></tr>")
                    continue
                for flagged in r.flagged:
                    css = "bad" if flagged.breach else "warn"
                    w(f"<tr class=\"flagged\"><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td>"
                      f"<td class=\"{css}\">{_e(flagged.verdict)}</td><td>{_e(flagged.cell)}</td>"
                      f"<td class=\"num\">{_e(flagged.value)}</td><td>{_e(flagged.reason)}</td></tr>")
                w(f"<tr><td class=\"num\">{r.seq}</td><td>{_e(r.what)}</td>"
                  f"<td>{_e(r.summary_verdict)}</td><td>{_e(r.summary_cells)}</td><td></td><td>{_e(r.rest)}</td></tr>")
            w("</table>")
            checks = [r for r in rows if r.check]
            if checks:
                w("<p class=\"muted\">Queries and criteria:</p><ul class=\"defs\">"
                  + "".join(f"<li>#{r.seq} {_e(r.what)}: <code>{_e(r.promql)}</code>; criterion "
                            f"{_e(r.criterion)}; data age {_e(r.age)}</li>" for r in checks) + "</ul>")
        else:
            w(f"<p class=\"muted\">{_e(sentences.NO_EVIDENCE)}</p>")
    w("</section>\n")

    w("<section><h2>Actions</h2>")
    if not view.actions:
        w(f"<p class=\"muted\">{_e(sentences.NO_ACTION)}</p>")
    for action in view.actions:
        w(f"<h3>{_e(sentences.action_title(action))}</h3><ul>")
        w("".join(f"<li>{_e(label)}: {_e(text)}</li>" for label, text in sentences.action_lines(action, clock)))
        ok, word, detail = sentences.verification(action)
        w(f"<li class=\"{'ok' if ok else 'bad'}\">Verification: {_e(word)}{': ' + _e(detail) if detail else ''}</li>")
        w("</ul>")
    w("</section>\n")

    w("<section><h2>How these figures are measured</h2><ul class=\"defs\">")
    for line in sentences.definitions():
        w(f"<li>{_e(line.replace('`', ''))}</li>")
    if view.comparison is not None:
        w("".join(f"<li>{_e(line)}</li>" for line in recovery_compared.definitions()))
    w("</ul></section>\n")
    w(f"<footer>Generated by {_e(generator)} from the journal. {_e(sentences.chain_line(view))} "
      "The JSON export carries every event with its hash.</footer>\n</body></html>\n")
