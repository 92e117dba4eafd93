"""Router state: per-version server weights and the traffic share they imply."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WEIGHT = 256


@dataclass(frozen=True)
class ServerState:
    """One router server (one model version) as the router reports it."""

    server: str
    version: str | None
    weight: int
    operational: bool
    admin_state: str = "ready"
    address: str | None = None


@dataclass(frozen=True)
class RouterState:
    """Every server of one model's backend."""

    backend: str
    servers: tuple[ServerState, ...]

    def weights(self) -> dict[str, int]:
        """Version -> weight for the servers that map to a version."""
        return {s.version: s.weight for s in self.servers if s.version is not None}

    def shares(self) -> dict[str, float]:
        """Version -> expected share of traffic (0..1) from the weights.

        Only servers that are up and ready take traffic; a backend whose weights
        are all zero sends nothing anywhere, so every share is 0.
        """
        live = {
            s.version: s.weight
            for s in self.servers
            if s.version is not None and s.operational and s.admin_state == "ready"
        }
        total = sum(live.values())
        return {
            s.version: (live.get(s.version, 0) / total if total else 0.0)
            for s in self.servers
            if s.version is not None
        }

    def server_for(self, version: str) -> ServerState | None:
        """The server that serves ``version``, if any."""
        return next((s for s in self.servers if s.version == version), None)


def validate_weight(weight: int) -> int:
    """Check that a weight is one the router accepts.

    Raises:
        ValueError: when the weight is outside 0..256.
    """
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"weight {weight!r} is not a whole number from 0 to {MAX_WEIGHT}")
    return weight


@dataclass(frozen=True)
class ServerNaming:
    """Maps model versions to router server names with a template such as ``v{version}``."""

    template: str

    def __post_init__(self) -> None:
        if self.template.count("{version}") != 1:
            raise ValueError(f"server template {self.template!r} must contain {{version}} once")

    def server(self, version: str) -> str:
        """The server name for a version."""
        return self.template.replace("{version}", version)

    def version(self, server: str) -> str | None:
        """The version a server name stands for, or ``None`` when it does not match."""
        prefix, suffix = self.template.split("{version}")
        match = re.fullmatch(re.escape(prefix) + r"(\d+)" + re.escape(suffix), server)
        return str(int(match.group(1))) if match else None
