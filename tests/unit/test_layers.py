"""The layers stay clean: checked on the source, so a violation fails here, not in review.

- ``console/domain`` is pure: the standard library, itself, and numpy and scipy (pure computation, no I/O),
  nothing else.
- ``console/services`` use the domain and the adapter protocols, never a concrete adapter or client
  (and ``console.runtime``, stdlib-only process settings).
- ``console/adapters`` never reach up into services, commands, the CLI or the TUI.
- Only ``console/tui`` imports Textual.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "console"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
PURE_COMPUTATION = {"numpy", "scipy"}
"""Numerical libraries the domain may use: arrays and special functions, no I/O."""


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports count too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def test_every_layer_has_code():
    for layer in ("domain", "adapters", "services", "commands", "sandbox"):
        assert files(layer), layer


@pytest.mark.parametrize("path", files("domain"), ids=lambda p: p.name)
def test_domain_is_pure(path):
    bad = {m for m in imports_of(path)
           if m.split(".")[0] not in STDLIB | PURE_COMPUTATION and not m.startswith("console.domain")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", files("services"), ids=lambda p: p.name)
def test_services_use_protocols_not_clients(path):
    allowed = ("console.domain", "console.services", "console.adapters.protocols", "console.runtime")
    bad = {m for m in imports_of(path)
           if m.split(".")[0] not in STDLIB and not m.startswith(allowed)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", files("adapters"), ids=lambda p: p.name)
def test_adapters_do_not_reach_up(path):
    forbidden = ("console.services", "console.commands", "console.cli", "console.tui",
                 "console.wiring", "console.sandbox")
    bad = {m for m in imports_of(path) if m.startswith(forbidden)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_only_the_tui_imports_textual():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "tui" not in path.relative_to(PACKAGE).parts
        and any(m == "textual" or m.startswith("textual.") for m in imports_of(path))
    ]
    assert not offenders


TIMELINE = PACKAGE / "services" / "timeline"
TIMELINE_ROOMS = ("view", "evidence", "sentences", "recovery_compared", "chart_model", "charts", "markdown",
                  "json_document", "html", "formats")
"""The timeline export's rooms, in order: each may import only the rooms before it."""


def timeline_rooms_imported(path: Path) -> set[str]:
    """The timeline rooms a module imports (``from console.services.timeline import sentences`` included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "console.services.timeline":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("console.services.timeline."):
            found.add(str(node.module).split(".")[3])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[3] for alias in node.names
                         if alias.name.startswith("console.services.timeline."))
    return found


def test_the_timeline_rooms_import_downwards_only():
    assert {p.stem for p in TIMELINE.glob("*.py")} == {"__init__", *TIMELINE_ROOMS}  # a new room takes its place
    for index, room in enumerate(TIMELINE_ROOMS):
        above = set(TIMELINE_ROOMS[:index])
        imported = timeline_rooms_imported(TIMELINE / f"{room}.py")
        assert imported <= above, f"{room} imports {sorted(imported - above)}"
    # The charts serve the HTML export alone; the sentences (and the recovery's) serve every format.
    users = {room: {r for r in TIMELINE_ROOMS if room in timeline_rooms_imported(TIMELINE / f"{r}.py")}
             for room in ("charts", "chart_model", "sentences", "recovery_compared")}
    assert users["charts"] == {"html"} and users["chart_model"] == {"charts"}
    assert {"markdown", "json_document", "html"} <= users["sentences"]
    assert users["recovery_compared"] == {"markdown", "json_document", "html"}


def test_the_checker_catches_a_violation(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("def f():\n    import mlflow\n    from textual.app import App\n")
    assert {"mlflow", "textual.app"} <= imports_of(sample)
