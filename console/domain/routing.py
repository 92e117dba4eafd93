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
    endpoints: int | None = None
    """Ready endpoints (pods) behind the server, where the router reports them (a Kubernetes Service's
    EndpointSlices); ``None``: not reported."""


@dataclass(frozen=True)
class RouterState:
    """Every server of one model's backend."""

    backend: str
    servers: tuple[ServerState, ...]
    also_written_by: tuple[str, ...] = ()
    """Who else last wrote the weights, where the router records it (Kubernetes' ``managedFields``): each
    ``manager (operation, time)``. Empty for a router that keeps no such record (HAProxy)."""

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


def writers_note(state: RouterState) -> str | None:
    """The preview's warning when someone other than Rewind last wrote the weights (``None``: nobody else)."""
    if not state.also_written_by:
        return None
    return (f"{state.backend}: its weights were last written by {', '.join(state.also_written_by)}, not Rewind. "
            "If that is a controller or a GitOps sync, it may write them back after this change; the "
            "verification reads the traffic actually served")


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


@dataclass(frozen=True)
class Mirror:
    """The router copies the ``baseline`` version's answered requests to the ``shadow`` version.

    Attributes:
        shadow: the version that receives the copies and never answers a caller.
        baseline: the version whose requests (and answers) are copied: the champion.
        percent: the share of the baseline's answered requests copied, 1..100.
    """

    shadow: str
    baseline: str
    percent: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.percent, bool) or not isinstance(self.percent, int) or not 1 <= self.percent <= 100:
            raise ValueError(f"mirror percent {self.percent!r} is not a whole number from 1 to 100")
        if self.shadow == self.baseline:
            raise ValueError(f"v{self.shadow} cannot shadow itself")

    def describe(self) -> str:
        """``v3 shadows v2 (100 %)``."""
        return f"v{self.shadow} shadows v{self.baseline} ({self.percent} %)"

    def to_dict(self) -> dict[str, object]:
        """As journaled."""
        return {"shadow": self.shadow, "baseline": self.baseline, "percent": self.percent}

    @classmethod
    def from_dict(cls, data: dict[str, object] | None) -> Mirror | None:
        """The inverse of :meth:`to_dict`; ``None`` stays ``None`` (no mirror)."""
        if not data:
            return None
        return cls(str(data["shadow"]), str(data["baseline"]), int(str(data.get("percent", 100))))


def describe_mirror(mirror: Mirror | None) -> str:
    """A mirror for people, ``no mirror`` for none."""
    return mirror.describe() if mirror else "no mirror"


@dataclass(frozen=True)
class ServerHealth:
    """One server as the router's statistics show it: up or not, and what it answered so far."""

    server: str
    version: str | None
    backup: bool
    status: str
    """``UP``, ``DOWN``, ``MAINT``, ``NOLB``, ... as the router says it (``UP 1/2`` is UP, going down)."""
    check: str
    """The last health check's result (``L7OK``, ``L7STS``, ``L4CON``, ...), empty when not checked."""
    served: int
    answered_2xx: int
    answered_5xx: int

    @property
    def up(self) -> bool:
        """Whether the router may send it requests now (a server without health checks always may)."""
        return self.status.startswith("UP") or self.status in ("NOLB", "no check")


@dataclass(frozen=True)
class FallbackState:
    """Whether a model's traffic can fall back, and whether it does now, as the router reports it.

    Attributes:
        backend: the model's backend.
        servers: every server with its health and counters, the backups among them.
        default_answers: requests the router answered itself with the fixed default (no server could).
        default_armed: whether the router has a fixed default answer configured.
        failed_answers: 4xx and 5xx answers the callers got from the backend (after any retry),
            since the router started.
    """

    backend: str
    servers: tuple[ServerHealth, ...]
    default_answers: int = 0
    default_armed: bool = False
    failed_answers: int = 0

    @property
    def primaries(self) -> tuple[ServerHealth, ...]:
        """The servers of versions (not backups)."""
        return tuple(s for s in self.servers if not s.backup)

    @property
    def backups(self) -> tuple[ServerHealth, ...]:
        """The fallback servers."""
        return tuple(s for s in self.servers if s.backup)

    @property
    def ready(self) -> bool:
        """Whether a backup is up and passing its checks."""
        return any(s.up for s in self.backups)

    def engaged(self, weights: dict[str, int]) -> bool:
        """Whether the fallback serves now: no primary that carries weight is up, and a backup is."""
        serving = [s for s in self.primaries if s.version is not None and weights.get(s.version, 0) > 0]
        return self.ready and not any(s.up for s in serving)

    def fallback_served(self) -> int:
        """Requests the backups have answered since the router started."""
        return sum(s.served for s in self.backups)
