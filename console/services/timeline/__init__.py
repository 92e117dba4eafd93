"""Incident timelines exported from the journal: Markdown, JSON and self-contained HTML.

- **Markdown** is a post-mortem skeleton: summary, impact window, TTD and TTM
  (with how they are measured), the timeline, every decision with its evidence,
  every action with its verification, and the sections people fill in.
- **JSON** (schema ``rewind.incident/1``) is complete: every event with its
  hash, so :func:`parse_incident_document` can re-import it and the chain verifies.
- **HTML** is one file with inline CSS and SVG, no network and no script: charts
  of each checked metric per version over the incident window (drawn from the
  journal's own ``check.evaluated`` events, never from Prometheus at export time)
  with a marker at every decision and action, then the same sections as Markdown.

Each format also says how the incident's recovery compares with its model's history
(phase by phase, beside the n, p50 and p90 of its other incidents of the same kind), when
the caller read that history (:meth:`console.services.recovery.RecoveryStats.compare`).

Times are shown in UTC and in a local zone (the exporting machine's, or ``tz``).
Everything is rendered from one read of the incident; nothing here does I/O
other than writing to the text stream it is given.

The rooms, each importing only those above it:

- :mod:`.view`: the incident analysed once (:class:`IncidentView`), and the :class:`Clock` that dates it;
- :mod:`.evidence`: what the journaled checks say (values, verdicts, criteria, evidence rows, breaches);
- :mod:`.sentences`: every sentence of the post-mortem, phrased once for every format;
- :mod:`.recovery_compared`: the recovery beside the model's history (read by the caller), phrased once;
- :mod:`.markdown`, :mod:`.json_document`, :mod:`.html`: one format each;
- :mod:`.chart_model` and :mod:`.charts`: what the HTML's charts show, and their SVG;
- :mod:`.formats`: the formats' names and :func:`export`, which writes any of them.
"""

from console.services.timeline.formats import FORMATS, HISTORY_FORMATS, export
from console.services.timeline.html import render_html
from console.services.timeline.json_document import INCIDENT_SCHEMA, parse_incident_document, render_json
from console.services.timeline.markdown import render_markdown
from console.services.timeline.view import Clock, IncidentView, build_view, clock_for

__all__ = [
    "FORMATS",
    "HISTORY_FORMATS",
    "INCIDENT_SCHEMA",
    "Clock",
    "IncidentView",
    "build_view",
    "clock_for",
    "export",
    "parse_incident_document",
    "render_html",
    "render_json",
    "render_markdown",
]
