"""Where Rewind keeps its files, following the XDG base directory conventions."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "rewind"


def user_config_file() -> Path:
    """``$XDG_CONFIG_HOME/rewind/config.yaml``."""
    return platformdirs.user_config_path(APP) / "config.yaml"


def user_state_dir() -> Path:
    """``$XDG_STATE_HOME/rewind``: the journal and the default sandbox live here."""
    return platformdirs.user_state_path(APP)


def default_sandbox_dir() -> Path:
    """The sandbox's state directory when ``--dir`` is not given (``REWIND_SANDBOX_DIR`` overrides)."""
    override = os.environ.get("REWIND_SANDBOX_DIR")
    return Path(override).expanduser() if override else user_state_dir() / "sandbox"


def shipped_dir(name: str) -> Path:
    """The shipped ``themes`` or ``playbooks`` directory, in an installed wheel or in a checkout.

    The repository's top-level ``themes/`` and ``playbooks/`` are their only source; the wheel carries them as
    ``console/shipped/<name>`` (setup.py maps them there). An installed package has that copy; a checkout
    (editable install, ``python -m console``) has none and reads the top-level directory itself.

    Args:
        name: ``"themes"`` or ``"playbooks"``.

    Returns:
        The directory (it may be missing when neither exists).
    """
    package = Path(__file__).resolve().parent
    installed = package / "shipped" / name
    return installed if installed.is_dir() else package.parent / name
