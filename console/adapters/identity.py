"""Who is at the keyboard, and which secrets are around, read from the operating system.

The journal records an actor with every event (OS user, host, and the SSH
client address when the session came over SSH); gathering those facts is I/O,
so it happens here and the pure :class:`~console.domain.journal.Actor` is passed in.
The environment's secret values are gathered here too, so that the journal can
redact them wherever they turn up in an event.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
from collections.abc import Mapping
from pathlib import Path

from console.domain.authority import Identity
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


def process_start_ticks(pid: int) -> int | None:
    """A process's start time in clock ticks since boot, or ``None`` if it is gone (or a zombie).

    A pid alone can be reused by an unrelated process; pid and start time together cannot.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after it are plain.
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def lock_holder(actor: Actor) -> str:
    """How this process names itself as a lock holder: ``user@host pid P start T``."""
    pid = os.getpid()
    return f"{actor.user}@{actor.host} pid {pid} start {process_start_ticks(pid)}"


def holder_alive(holder: str) -> bool:
    """Whether the process a holder string names still runs.

    A holder on another host cannot be checked from here and counts as alive.
    """
    try:
        who, _, pid, _, start = holder.split()
        host = who.rsplit("@", 1)[1]
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    return start != "None" and process_start_ticks(int(pid)) == int(start)


def os_identity() -> Identity:
    """The process's real user and every group it belongs to, from the OS (never from a variable)."""
    uid = os.getuid()
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return Identity(f"uid:{uid}", frozenset())
    gids = set(os.getgrouplist(entry.pw_name, entry.pw_gid)) | set(os.getgroups()) | {os.getgid()}
    names = set()
    for gid in gids:
        try:
            names.add(grp.getgrgid(gid).gr_name)
        except KeyError:
            names.add(f"gid:{gid}")
    return Identity(entry.pw_name, frozenset(names))
