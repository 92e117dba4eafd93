"""The console's themes: YAML files under ``themes/``, validated, turned into Textual themes.

A theme file holds Textual's base colours (``primary`` is required), ``dark``, and
``variables``: Textual's own variables plus the app's verdict colours (``APP_VARIABLES``),
which every shipped theme must set. ``load_themes`` never raises for a broken file: it
reports one line per problem so the app can notify and fall back to ``DEFAULT_THEME``.
``variable_defaults`` gives the app variables to Textual's built-in themes (``textual-dark``,
``ansi-dark``, ...) through ``App.get_theme_variable_defaults``.

Colour is never the only signal: every verdict also has a symbol and a word.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from textual.color import Color, ColorParseError
from textual.design import ColorSystem
from textual.theme import Theme

from console.paths import shipped_dir

APP_VARIABLES: tuple[str, ...] = ("breach", "suspect", "pass", "no-data", "low-traffic", "info", "selected")
"""The app's own theme variables: verdict colours, plus ``selected`` for the cursor cell's background."""

DEFAULT_THEME = "rewind-dark"
FALLBACK_THEME = "textual-dark"
"""Used when ``DEFAULT_THEME`` itself is missing or broken: Textual's default, always registered."""

THEME_ENV = "REWIND_THEME"
THEMES_DIR_ENV = "REWIND_THEMES_DIR"
THEMES_DIR = shipped_dir("themes")
"""The shipped themes (the installed package's copy, else the checkout's ``themes/``); ``themes_dir()`` applies
the ``REWIND_THEMES_DIR`` override."""

_BASE_COLOURS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel", "boost",
                 "warning", "error", "success")
_NO_VALUE = "no value (quote hex colours: '#' starts a YAML comment)"

# Hex defaults for truecolor themes, tuned like rewind-dark (dark) and rewind-light (light).
_DARK_DEFAULTS = {
    "breach": "#F85149", "suspect": "#D29922", "pass": "#3FB950", "no-data": "#8B949E",
    "low-traffic": "#A5A0D8", "info": "#58A6FF", "selected": "#264F78",
}
_LIGHT_DEFAULTS = {
    "breach": "#CF222E", "suspect": "#9A6700", "pass": "#1A7F37", "no-data": "#59636E",
    "low-traffic": "#8250DF", "info": "#0969DA", "selected": "#B6E3FF",
}
# For ansi themes (ansi-dark, ansi-light) the terminal's own palette, so nothing is approximated over SSH.
# Textual 8.2.8's Color.parse accepts "ansi_<name>" for the 16 ANSI colours (its ansi themes use them too).
_ANSI_DEFAULTS = {
    "breach": "ansi_red", "suspect": "ansi_yellow", "pass": "ansi_green", "no-data": "ansi_bright_black",
    "low-traffic": "ansi_magenta", "info": "ansi_cyan", "selected": "ansi_blue",
}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message is one line naming the file and the fault."""


def variable_defaults(*, ansi: bool = False, dark: bool = True) -> dict[str, str]:
    """Default values for the app variables, for ``App.get_theme_variable_defaults``.

    A theme's own ``variables`` win over these; they matter for Textual's built-in themes.
    Call it with the current theme's flags, e.g.
    ``variable_defaults(ansi=self.current_theme.ansi, dark=self.current_theme.dark)``.

    Args:
        ansi: The theme uses the terminal's ANSI palette (``Theme.ansi``): give ANSI colour names.
        dark: The theme is dark (``Theme.dark``); picks hex colours readable on its background.

    Returns:
        A mapping of every name in ``APP_VARIABLES`` to a colour string ``Color.parse`` accepts.
    """
    if ansi:
        return dict(_ANSI_DEFAULTS)
    return dict(_DARK_DEFAULTS if dark else _LIGHT_DEFAULTS)


def themes_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The directory to load themes from: ``$REWIND_THEMES_DIR`` if set, else ``THEMES_DIR``.

    Args:
        environ: The environment to read; ``os.environ`` when None.

    Returns:
        The themes directory (it may not exist).
    """
    override = (os.environ if environ is None else environ).get(THEMES_DIR_ENV)
    return Path(override).expanduser() if override else THEMES_DIR


@cache
def _textual_variables() -> frozenset[str]:
    """Every variable Textual's design system generates, in truecolor and ANSI modes."""
    truecolor = ColorSystem(primary="#0178D4").generate()
    ansi = ColorSystem(primary="ansi_blue", ansi=True).generate()
    return frozenset(truecolor) | frozenset(ansi)


def _colour_problem(value: str) -> str | None:
    """Why ``value`` is not a colour Textual can parse, or None if it is."""
    try:
        Color.parse(value)
    except ColorParseError as error:
        hint = f" (did you mean {error.suggested_color!r}?)" if error.suggested_color else ""
        return f"bad colour {value!r}{hint}"
    return None


_FIELDS = ("name", "dark", *_BASE_COLOURS, "variables")
"""A theme file's keys, in the order its problems are reported."""
_NOT_TEXT = "Input should be a valid string"
_NOT_BOOL = "Input should be a valid boolean"
_NOT_MAPPING = "Input should be a valid dictionary"


@dataclass(frozen=True)
class _Problem:
    """One fault of a theme file: where (its keys, for the line number) and what.

    ``kind`` is ``missing`` for a required key that is absent, else ``value``.
    """

    loc: tuple[Any, ...]
    message: str
    kind: str = "value"


def _base_colour_problems(key: str, value: Any) -> list[_Problem]:
    if value is None:
        return [_Problem((key,), _NO_VALUE)]
    if not isinstance(value, str):
        return [_Problem((key,), _NOT_TEXT)]
    problem = _colour_problem(value)
    return [_Problem((key,), problem)] if problem else []


def _variables_problems(value: Any) -> list[_Problem]:
    """The faults of ``variables``: its shape first (every one), then the first wrong entry."""
    if value is None:
        return [_Problem(("variables",), "no value: expected a mapping of variable names to values")]
    if not isinstance(value, dict):
        return [_Problem(("variables",), _NOT_MAPPING)]
    for key, entry in value.items():
        if entry is None:
            return [_Problem(("variables", str(key)), _NO_VALUE)]
    shape = []
    for key, entry in value.items():
        if not isinstance(key, str):
            shape.append(_Problem(("variables", key, "[key]"), _NOT_TEXT))
        if not isinstance(entry, str):
            shape.append(_Problem(("variables", key), _NOT_TEXT))
    if shape:
        return shape
    known = _textual_variables()
    for key, entry in value.items():
        if key in APP_VARIABLES:
            problem = _colour_problem(entry)
            if problem:
                return [_Problem(("variables", key), problem)]
        elif key not in known:
            return [_Problem(("variables", key), "unknown variable (neither an app variable nor one of Textual's)")]
        elif not entry.strip():
            return [_Problem(("variables", key), "empty value")]
    return []


def _theme_problems(data: dict[Any, Any]) -> list[_Problem]:
    """Every fault of a theme file read from YAML, key by key in ``_FIELDS`` order, then the unknown keys.

    Checked by hand rather than by a pydantic model, so the console paints its first frame without
    loading pydantic; the checks (strict types, no coercion) and their messages are pydantic's.
    """
    problems: list[_Problem] = []
    for key in _FIELDS:
        if key not in data:
            if key in ("name", "primary"):
                problems.append(_Problem((key,), "", "missing"))
        elif key == "name":
            if not isinstance(data[key], str):
                problems.append(_Problem((key,), _NOT_TEXT))
        elif key == "dark":
            if not isinstance(data[key], bool):
                problems.append(_Problem((key,), _NOT_BOOL))
        elif key == "variables":
            problems += _variables_problems(data[key])
        else:
            problems += _base_colour_problems(key, data[key])
    problems += [_Problem((key,), "unknown key" if isinstance(key, str) else "Keys should be strings")
                 for key in data if key not in _FIELDS]
    if problems:
        return problems
    missing = [name for name in APP_VARIABLES if name not in data.get("variables", {})]
    if missing:
        return [_Problem((), f"missing app variable{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")]
    return []


def _display(path: Path) -> str:
    """``path`` relative to the working directory when under it, for short messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _read_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The YAML document and its node tree (for line numbers).

    libyaml's loader reads it when it is there (ten times faster); a document it refuses is
    read again by PyYAML's own loader, whose error messages Rewind reports everywhere.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _load_yaml(fast, text)
        except yaml.YAMLError:
            pass
    return _load_yaml(yaml.SafeLoader, text)


def _load_yaml(loader_class: Any, text: str) -> tuple[Any, yaml.Node | None]:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return (loader.construct_document(node) if node is not None else None), node
    finally:
        loader.dispose()


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest key of ``loc`` found in the YAML node tree."""
    line = None
    for part in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        for key_node, value_node in node.value:
            if getattr(key_node, "value", None) == part:
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            break
    return line


def _describe(problem: _Problem, root: yaml.Node | None) -> str:
    """One problem as ``line N: where: what``."""
    where = ".".join(str(part) for part in problem.loc)
    if problem.kind == "missing":
        return f"missing key {where!r}"
    line = _line_of(root, problem.loc) if problem.loc else None
    at = f"line {line}: " if line else ""
    return f"{at}{where}: {problem.message}" if where else f"{at}{problem.message}"


def load_theme_file(path: Path) -> Theme:
    """Read, validate and convert one theme file.

    Args:
        path: A ``.yaml``/``.yml`` theme file; its ``name`` must equal the file's stem.

    Returns:
        The Textual theme, ready for ``App.register_theme``.

    Raises:
        ThemeFileError: one line naming the file and what is wrong with it.
    """
    shown = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ThemeFileError(f"{shown}: cannot read: {error}") from None
    try:
        data, root = _read_yaml(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ThemeFileError(f"{shown}: not YAML: {at}{problem}") from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ThemeFileError(f"{shown}: not a theme: expected a mapping of keys, found {found}")
    problems = _theme_problems(data)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ThemeFileError(f"{shown}: not a theme: {_describe(problems[0], root)}{more}")
    if data["name"] != path.stem:
        line = _line_of(root, ("name",))
        at = f"line {line}: " if line else ""
        raise ThemeFileError(
            f"{shown}: not a theme: {at}name {data['name']!r} does not match the file name (expected {path.stem!r})"
        )
    colours: dict[str, Any] = {key: data.get(key) for key in _BASE_COLOURS}
    return Theme(name=data["name"], dark=data.get("dark", True), variables=dict(data.get("variables", {})),
                 **colours)


def load_themes(directory: Path | None = None) -> tuple[list[Theme], list[str]]:
    """Load every theme file in a directory, never raising for a broken one.

    Args:
        directory: Where to look; ``themes_dir()`` (``$REWIND_THEMES_DIR`` or ``THEMES_DIR``) when None.

    Returns:
        The good themes in file-name order, and one problem line per broken file
        (or one line when the directory is missing).
    """
    directory = themes_dir() if directory is None else directory
    if not directory.is_dir():
        return [], [f"{_display(directory)}: theme directory not found; only Textual's built-in themes are available"]
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    themes: list[Theme] = []
    problems: list[str] = []
    loaded_from: dict[str, Path] = {}
    for path in paths:
        try:
            theme = load_theme_file(path)
        except ThemeFileError as error:
            problems.append(str(error))
            continue
        if theme.name in loaded_from:
            problems.append(f"{_display(path)}: duplicate theme {theme.name!r} "
                            f"(already loaded from {_display(loaded_from[theme.name])}); ignored")
            continue
        loaded_from[theme.name] = path
        themes.append(theme)
    return themes, problems


def resolve_theme(
    requested: str | None, available: Collection[str], environ: Mapping[str, str] | None = None
) -> tuple[str, str | None]:
    """Choose the theme to start with.

    The order is ``requested`` (e.g. ``--theme``), then ``$REWIND_THEME``, then ``DEFAULT_THEME``
    (``FALLBACK_THEME`` if the default's file is missing or broken). ``NO_COLOR`` does not change
    the choice: Textual honours it itself by removing colour whatever the theme.

    Args:
        requested: The theme asked for, or None.
        available: The names that can be used (``App.available_themes``).
        environ: The environment to read; ``os.environ`` when None.

    Returns:
        The theme name, and a problem line for the user when the request could not be met (else None).
    """
    environ = os.environ if environ is None else environ
    from_env = (environ.get(THEME_ENV) or "").strip()
    wanted = (requested or "").strip() or from_env
    origin = "" if (requested or "").strip() or not wanted else f" (from {THEME_ENV})"
    fallback = DEFAULT_THEME if DEFAULT_THEME in available else FALLBACK_THEME
    if wanted and wanted in available:
        return wanted, None
    if wanted:
        names = ", ".join(sorted(available))
        return fallback, f"unknown theme {wanted}{origin}; using {fallback} (available: {names})"
    if fallback != DEFAULT_THEME:
        return fallback, f"theme {DEFAULT_THEME} is not available; using {fallback}"
    return DEFAULT_THEME, None
