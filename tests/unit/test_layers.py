"""The layers stay clean: checked on the source, so a violation fails here, not in review.

- ``console/domain`` is pure: the standard library and itself, nothing else.
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
           if m.split(".")[0] not in STDLIB and not m.startswith("console.domain")}
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


def test_the_checker_catches_a_violation(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("def f():\n    import mlflow\n    from textual.app import App\n")
    assert {"mlflow", "textual.app"} <= imports_of(sample)
