"""The export formats, and the one entry point that writes an incident in any of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

from console.domain.errors import UsageError
from console.runtime import gc_paused
from console.services.timeline.html import render_html
from console.services.timeline.json_document import render_json
from console.services.timeline.markdown import render_markdown
from console.services.timeline.view import Clock, IncidentView

FORMATS = ("md", "json", "html")
HISTORY_FORMATS = ("md", "html")
"""The formats that tell the metrics' history (JSON is the journal as it stands: exporting it reads only)."""


def export(view: IncidentView, fmt: str, out: TextIO, clock: Clock | None = None,
           exported_at: datetime | None = None, generator: str = "rewind") -> None:
    """Write one incident in ``fmt`` (``md``, ``json`` or ``html``) to ``out``.

    Args:
        view: the incident, analysed.
        fmt: ``md``, ``json`` or ``html``.
        out: where to write.
        clock: UTC and local time formatting (default: the system's zone).
        exported_at: the export time written in the document (default: now).
        generator: the program and version named in the document.
    """
    clock = clock or Clock()
    exported_at = exported_at or datetime.now(UTC)
    with gc_paused():
        _export(view, fmt, out, clock, exported_at, generator)


def _export(view: IncidentView, fmt: str, out: TextIO, clock: Clock, exported_at: datetime, generator: str) -> None:
    if fmt == "md":
        render_markdown(view, out, clock, exported_at, generator)
    elif fmt == "json":
        render_json(view, out, exported_at, generator)
    elif fmt == "html":
        render_html(view, out, clock, exported_at, generator)
    else:
        raise UsageError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
