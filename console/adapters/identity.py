"""Who is at the keyboard, and which secrets are around, read from the operating system.

The journal records an actor with every event (OS user, host, and the SSH
client address when the session came over SSH); gathering those facts is I/O,
so it happens here and the pure :class:`~console.domain.journal.Actor` is passed in.
The environment's secret values are gathered here too, so that the journal can
redact them wherever they turn up in an event.
"""

from __future__ import annotations

import os
import pwd
import socket
from collections.abc import Mapping

from console.domain.journal import Actor, actor_from, is_secret_key


def current_actor(environ: Mapping[str, str] | None = None) -> Actor:
    """The OS user (from the password database, not ``$USER``), the host name and ``$SSH_CONNECTION``'s client."""
    env = os.environ if environ is None else environ
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a container user without a passwd entry
        user = f"uid:{os.getuid()}"
    return actor_from(user, socket.gethostname(), env.get("SSH_CONNECTION"))


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of environment variables whose names say they hold a secret (``*_TOKEN``, ``PGPASSWORD``...)."""
    env = os.environ if environ is None else environ
    return [value for name, value in env.items() if value and is_secret_key(name)]
