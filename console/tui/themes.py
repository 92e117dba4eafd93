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
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from textual.color import Color, ColorParseError
from textual.design import ColorSystem
from textual.theme import Theme

APP_VARIABLES: tuple[str, ...] = ("breach", "suspect", "pass", "no-data", "low-traffic", "info", "selected")
"""The app's own theme variables: verdict colours, plus ``selected`` for the cursor cell's background."""

DEFAULT_THEME = "rewind-dark"
FALLBACK_THEME = "textual-dark"
"""Used when ``DEFAULT_THEME`` itself is missing or broken: Textual's default, always registered."""

THEME_ENV = "REWIND_THEME"
THEMES_DIR_ENV = "REWIND_THEMES_DIR"
THEMES_DIR = Path(__file__).resolve().parents[2] / "themes"
"""The repository's ``themes/`` directory; ``themes_dir()`` applies the ``REWIND_THEMES_DIR`` override."""

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


class _VariableError(ValueError):
    """A fault in one entry of ``variables``, so the message can name ``variables.<key>``."""

    def __init__(self, key: str, detail: str) -> None:
        super().__init__(f"{key}: {detail}")
        self.key = key
        self.detail = detail


class _ThemeFile(BaseModel):
    """The shape of a theme file, as read from YAML."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    dark: bool = True
    primary: str
    secondary: str | None = None
    accent: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    boost: str | None = None
    warning: str | None = None
    error: str | None = None
    success: str | None = None
    variables: dict[str, str] = {}

    @field_validator(*_BASE_COLOURS, mode="before")
    @classmethod
    def _present(cls, value: Any) -> Any:
        if value is None:
            raise ValueError(_NO_VALUE)
        return value

    @field_validator(*_BASE_COLOURS)
    @classmethod
    def _colour(cls, value: str) -> str:
        problem = _colour_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("variables", mode="before")
    @classmethod
    def _variables_present(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("no value: expected a mapping of variable names to values")
        if isinstance(value, dict):
            for key, entry in value.items():
                if entry is None:
                    raise _VariableError(str(key), _NO_VALUE)
        return value

    @field_validator("variables")
    @classmethod
    def _variables_known(cls, value: dict[str, str]) -> dict[str, str]:
        known = _textual_variables()
        for key, entry in value.items():
            if key in APP_VARIABLES:
                problem = _colour_problem(entry)
                if problem:
                    raise _VariableError(key, problem)
            elif key not in known:
                raise _VariableError(key, "unknown variable (neither an app variable nor one of Textual's)")
            elif not entry.strip():
                raise _VariableError(key, "empty value")
        return value

    @model_validator(mode="after")
    def _app_variables_set(self) -> _ThemeFile:
        missing = [name for name in APP_VARIABLES if name not in self.variables]
        if missing:
            raise ValueError(f"missing app variable{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
        return self

    def to_theme(self) -> Theme:
        """The Textual theme this file describes."""
        fields = self.model_dump(exclude={"variables"})
        return Theme(**fields, variables=dict(self.variables))


def _display(path: Path) -> str:
    """``path`` relative to the working directory when under it, for short messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _read_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    """The YAML document and its node tree (for line numbers)."""
    loader = yaml.SafeLoader(text)
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


def _describe(error: Mapping[str, Any], root: yaml.Node | None) -> str:
    """One pydantic error as ``line N: where: what``."""
    loc = tuple(error["loc"])
    where = ".".join(str(part) for part in loc)
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _VariableError):
        loc, where, message = (*loc, cause.key), f"{where}.{cause.key}", cause.detail
    elif error["type"] == "missing":
        return f"missing key {where!r}"
    elif error["type"] == "extra_forbidden":
        message = "unknown key"
    else:
        message = error["msg"].removeprefix("Value error, ")
    line = _line_of(root, loc) if loc else None
    at = f"line {line}: " if line else ""
    return f"{at}{where}: {message}" if where else f"{at}{message}"


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
    try:
        parsed = _ThemeFile.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ThemeFileError(f"{shown}: not a theme: {_describe(errors[0], root)}{more}") from None
    if parsed.name != path.stem:
        line = _line_of(root, ("name",))
        at = f"line {line}: " if line else ""
        raise ThemeFileError(
            f"{shown}: not a theme: {at}name {parsed.name!r} does not match the file name (expected {path.stem!r})"
        )
    return parsed.to_theme()


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
