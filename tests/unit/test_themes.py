"""Theme files and their loader: every shipped theme is valid and complete, a broken file is one problem line."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.widgets import Static

from console.tui.themes import (
    APP_VARIABLES,
    DEFAULT_THEME,
    FALLBACK_THEME,
    THEMES_DIR,
    ThemeFileError,
    load_theme_file,
    load_themes,
    resolve_theme,
    themes_dir,
    variable_defaults,
)

SHIPPED = sorted(THEMES_DIR.glob("*.y*ml"))
OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999"}
BUILTIN = ("textual-dark", "textual-light", "ansi-dark", "ansi-light")


def test_app_variables_are_the_seven_verdict_and_cursor_colours():
    assert APP_VARIABLES == ("breach", "suspect", "pass", "no-data", "low-traffic", "info", "selected")


def test_the_four_themes_are_shipped_and_the_default_is_one_of_them():
    names = {path.stem for path in SHIPPED}
    assert {"rewind-dark", "rewind-light", "rewind-high-contrast", "rewind-colour-blind"} <= names
    assert DEFAULT_THEME in names


def test_the_shipped_directory_loads_without_problems():
    themes, problems = load_themes(THEMES_DIR)
    assert problems == []
    assert [theme.name for theme in themes] == [path.stem for path in SHIPPED]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_theme_loads_and_sets_every_app_variable(path: Path):
    theme = load_theme_file(path)
    assert theme.name == path.stem
    assert path.read_text(encoding="utf-8").startswith("#"), "a comment at the top says what the theme is for"
    for name in APP_VARIABLES:
        assert name in theme.variables, f"{path.name} lacks {name}"
        Color.parse(theme.variables[name])
    verdicts = [theme.variables[name] for name in ("breach", "suspect", "pass", "no-data", "low-traffic")]
    assert len(set(verdicts)) == len(verdicts), f"{path.name}: two verdicts share a colour"


def test_colour_blind_theme_uses_okabe_ito():
    variables = load_theme_file(THEMES_DIR / "rewind-colour-blind.yaml").variables
    assert variables["breach"] == "#D55E00"
    assert variables["suspect"] == "#E69F00"
    assert variables["pass"] in {"#0072B2", "#009E73"}
    assert {variables[name] for name in APP_VARIABLES} <= OKABE_ITO


def test_high_contrast_theme_is_black_and_white():
    theme = load_theme_file(THEMES_DIR / "rewind-high-contrast.yaml")
    assert theme.dark and theme.background == "#000000" and theme.foreground == "#FFFFFF"


def test_variable_defaults_cover_every_app_variable_in_each_mode():
    for flags in ({}, {"dark": False}, {"ansi": True}):
        defaults = variable_defaults(**flags)
        assert set(defaults) == set(APP_VARIABLES)
        for value in defaults.values():
            Color.parse(value)
    assert all(Color.parse(value).ansi is not None for value in variable_defaults(ansi=True).values())
    assert variable_defaults(ansi=True)["breach"] == "ansi_red"


def test_hex_defaults_match_the_dark_and_light_themes():
    dark = load_theme_file(THEMES_DIR / "rewind-dark.yaml").variables
    light = load_theme_file(THEMES_DIR / "rewind-light.yaml").variables
    assert variable_defaults() == {name: dark[name] for name in APP_VARIABLES}
    assert variable_defaults(dark=False) == {name: light[name] for name in APP_VARIABLES}


GOOD = (THEMES_DIR / "rewind-dark.yaml").read_text(encoding="utf-8")


def _line(text: str) -> int:
    """The 1-based line of the rewind-dark file that starts with ``text``."""
    return next(number for number, line in enumerate(GOOD.splitlines(), 1) if line.strip().startswith(text))


def _variant(name: str, *, old: str = "", new: str = "") -> str:
    text = GOOD.replace("name: rewind-dark", f"name: {name}")
    if old:
        assert old in text
        text = text.replace(old, new)
    return text


BROKEN = [
    ("not-yaml", 'name: rewind-broken\nprimary: "#FFFFFF"\n  breach: [\n', "not YAML: line 3"),
    ("not-a-mapping", "- rewind-broken\n", "expected a mapping of keys, found a list"),
    ("empty", "", "found an empty file"),
    ("bad-colour", _variant("rewind-broken", old='breach: "#F85149"', new='breach: "nonsense"'),
     f"line {_line('breach:')}: variables.breach: bad colour 'nonsense'"),
    ("bad-base-colour", _variant("rewind-broken", old='primary: "#4C9BE8"', new='primary: "blu"'),
     f"line {_line('primary:')}: primary: bad colour 'blu'"),
    ("unquoted-hex", _variant("rewind-broken", old='primary: "#4C9BE8"', new="primary: #4C9BE8"),
     "primary: no value (quote hex colours"),
    ("missing-variable", _variant("rewind-broken", old='  pass: "#3FB950"\n'), "missing app variable: pass"),
    ("missing-primary", _variant("rewind-broken", old='primary: "#4C9BE8"\n'), "missing key 'primary'"),
    ("unknown-key", _variant("rewind-broken", old="dark: true", new='dark: true\nprimray: "#000000"'),
     f"line {_line('dark:') + 1}: primray: unknown key"),
    ("unknown-variable", _variant("rewind-broken", old="  info:", new="  infoo:"), "variables.infoo: unknown variable"),
    ("wrong-name", _variant("rewind-other"), "name 'rewind-other' does not match the file name"),
    # Checked strictly, as a pydantic model in strict mode would: no coercion, every problem counted.
    ("dark-not-a-boolean", _variant("rewind-broken", old="dark: true", new="dark: 1"),
     f"line {_line('dark:')}: dark: Input should be a valid boolean"),
    ("name-not-text", GOOD.replace("name: rewind-dark", "name: 7"), f"line {_line('name:')}: name: Input should be"),
    ("variables-not-a-mapping", _variant("rewind-broken", old="variables:", new="variables: [breach]\nunused:"),
     f"line {_line('variables:')}: variables: Input should be a valid dictionary (and 1 more)"),
    ("two-problems", _variant("rewind-broken", old='primary: "#4C9BE8"', new='primary: "blu"\nprimray: "#000000"'),
     f"line {_line('primary:')}: primary: bad colour 'blu' (did you mean 'blue'?) (and 1 more)"),
]


@pytest.mark.parametrize(("content", "expected"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_a_broken_file_is_one_problem_line_and_the_good_files_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, expected: str
):
    directory = tmp_path / "themes"
    directory.mkdir()
    (directory / "rewind-broken.yaml").write_text(content, encoding="utf-8")
    (directory / "rewind-good.yaml").write_text(_variant("rewind-good"), encoding="utf-8")
    (directory / "notes.txt").write_text("not a theme file: ignored", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    themes, problems = load_themes(directory)

    assert [theme.name for theme in themes] == ["rewind-good"]
    assert len(problems) == 1
    assert problems[0].startswith("themes/rewind-broken.yaml: ")
    assert expected in problems[0]
    assert "\n" not in problems[0]
    with pytest.raises(ThemeFileError, match="rewind-broken.yaml"):
        load_theme_file(directory / "rewind-broken.yaml")


def test_theme_file_error_is_a_value_error():
    assert issubclass(ThemeFileError, ValueError)


def test_a_missing_directory_gives_no_themes_and_one_problem(tmp_path: Path):
    themes, problems = load_themes(tmp_path / "nowhere")
    assert themes == []
    assert len(problems) == 1 and "nowhere" in problems[0] and "not found" in problems[0]


def test_the_same_name_in_yaml_and_yml_loads_once(tmp_path: Path):
    (tmp_path / "rewind-twice.yaml").write_text(_variant("rewind-twice"), encoding="utf-8")
    (tmp_path / "rewind-twice.yml").write_text(_variant("rewind-twice"), encoding="utf-8")
    themes, problems = load_themes(tmp_path)
    assert [theme.name for theme in themes] == ["rewind-twice"]
    assert len(problems) == 1 and "rewind-twice.yml: duplicate theme" in problems[0]


def test_rewind_themes_dir_overrides_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert themes_dir({}) == THEMES_DIR
    assert themes_dir({"REWIND_THEMES_DIR": str(tmp_path)}) == tmp_path
    (tmp_path / "rewind-elsewhere.yaml").write_text(_variant("rewind-elsewhere"), encoding="utf-8")
    monkeypatch.setenv("REWIND_THEMES_DIR", str(tmp_path))
    themes, problems = load_themes()
    assert [theme.name for theme in themes] == ["rewind-elsewhere"] and problems == []


AVAILABLE = ("textual-dark", "ansi-dark", "rewind-dark", "rewind-light")


def test_resolve_theme_uses_the_requested_theme():
    assert resolve_theme("rewind-light", AVAILABLE, {}) == ("rewind-light", None)
    assert resolve_theme("ansi-dark", AVAILABLE, {"REWIND_THEME": "rewind-light"}) == ("ansi-dark", None)


def test_resolve_theme_defaults_without_a_request():
    assert resolve_theme(None, AVAILABLE, {}) == (DEFAULT_THEME, None)
    assert resolve_theme("", AVAILABLE, {}) == (DEFAULT_THEME, None)
    # Textual removes colour itself under NO_COLOR; the theme choice does not change.
    assert resolve_theme(None, AVAILABLE, {"NO_COLOR": "1"}) == (DEFAULT_THEME, None)


def test_resolve_theme_reads_rewind_theme_from_the_environment():
    assert resolve_theme(None, AVAILABLE, {"REWIND_THEME": "rewind-light"}) == ("rewind-light", None)
    name, problem = resolve_theme(None, AVAILABLE, {"REWIND_THEME": "solarized"})
    assert name == DEFAULT_THEME and problem is not None and "solarized (from REWIND_THEME)" in problem


def test_resolve_theme_falls_back_on_an_unknown_theme():
    name, problem = resolve_theme("solarized", AVAILABLE, {})
    assert name == "rewind-dark"
    assert problem == (
        "unknown theme solarized; using rewind-dark (available: ansi-dark, rewind-dark, rewind-light, textual-dark)"
    )


def test_resolve_theme_uses_textual_dark_when_the_default_is_broken():
    assert resolve_theme(None, ("textual-dark", "ansi-dark"), {}) == (
        FALLBACK_THEME, "theme rewind-dark is not available; using textual-dark"
    )
    name, problem = resolve_theme("rewind-dark", ("textual-dark",), {})
    assert name == FALLBACK_THEME and problem is not None and problem.startswith("unknown theme rewind-dark")


class ThemedApp(App[None]):
    """A minimal app whose CSS uses every app variable, as the console's TCSS will."""

    CSS = "\n".join(f"#{name} {{ color: ${name}; }}" for name in APP_VARIABLES)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        theme = self.current_theme
        return variable_defaults(ansi=theme.ansi, dark=theme.dark)

    def compose(self) -> ComposeResult:
        for name in APP_VARIABLES:
            yield Static(name, id=name)


async def test_every_theme_registers_and_resolves_every_app_variable():
    themes, problems = load_themes(THEMES_DIR)
    assert problems == []
    app = ThemedApp()
    for theme in themes:
        app.register_theme(theme)
    expected_by_theme = {theme.name: theme.variables for theme in themes}
    async with app.run_test() as pilot:
        for name in [*expected_by_theme, *BUILTIN]:
            app.theme = name
            await pilot.pause()
            theme = app.current_theme
            assert theme.name == name
            expected = expected_by_theme.get(name) or variable_defaults(ansi=theme.ansi, dark=theme.dark)
            for variable in APP_VARIABLES:
                assert app.theme_variables[variable] == expected[variable], (name, variable)
                shown = app.query_one(f"#{variable}", Static).styles.color
                assert shown == Color.parse(expected[variable]), (name, variable)
