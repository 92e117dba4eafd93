"""The HAProxy Runtime API: weights, the shadow mirror and server states over the admin socket.

The Runtime API is a line protocol: one connection, commands separated by
``;``, the answer read until HAProxy closes the socket. Weights are written as
one line of ``set weight`` commands after every server has been checked to
exist, so a typo cannot leave a backend half-changed; the result is read back.

The mirror is an entry of a runtime map (``router.shadow_map``) that the
backend's Lua action reads per request: ``<shadow server> <baseline server>
<percent>``; it is replaced and read back in one exchange. The fallback is a
backup server; its health and counters come from ``show stat``.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.routing import (
    FallbackState,
    Mirror,
    RouterState,
    ServerHealth,
    ServerNaming,
    ServerState,
    describe_mirror,
    validate_weight,
)

# srv_admin_state bits (HAProxy's SRV_ADMF_*): any maintenance flag, or draining.
_ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20
_ADMIN_DRAIN = 0x08 | 0x10 | 0x40
_OP_RUNNING = 2


@dataclass(frozen=True)
class SocketAddress:
    """A unix socket path, or a TCP host and port."""

    path: str | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> SocketAddress:
        """Parse ``/path/to.sock``, ``unix:/path``, ``host:port`` or ``tcp:host:port``."""
        text = text.strip()
        if text.startswith("unix:"):
            return cls(path=text[len("unix:"):])
        if text.startswith("tcp:"):
            text = text[len("tcp:"):]
        elif text.startswith("/") or text.startswith("."):
            return cls(path=text)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise UsageError(f"router.socket {text!r}: expected a socket path or host:port")
        return cls(host=host.strip("[]"), port=int(port))

    def __str__(self) -> str:
        return self.path if self.path else f"{self.host}:{self.port}"


class HAProxyRouter:
    """A model router on HAProxy, one backend per model, one server per version."""

    counts_from_metrics = False
    reports_health = True
    """HAProxy counts every request it sends a server (``stot``), at once."""

    def __init__(self, address: str, backends: dict[str, str], server_template: str = "v{version}",
                 timeout_s: float = 2.0, shadow_map: str | None = None, static_default: bool = False) -> None:
        self.address = SocketAddress.parse(address)
        self.backends = dict(backends)
        self.naming = ServerNaming(server_template)
        self.timeout_s = timeout_s
        self.shadow_map = shadow_map
        self.static_default = static_default

    def describe(self) -> str:
        """Where the router is, for messages."""
        return f"HAProxy at {self.address}"

    # -- the wire ---------------------------------------------------------------------------
    def command(self, line: str) -> str:
        """Send one command line and return HAProxy's whole answer.

        Raises:
            RouterError: when the socket cannot be reached or the exchange fails.
        """
        try:
            if self.address.path:
                conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: object = self.address.path
            else:
                conn = socket.socket(socket.AF_INET6 if ":" in (self.address.host or "") else socket.AF_INET)
                target = (self.address.host, self.address.port)
            with conn:
                conn.settimeout(self.timeout_s)
                conn.connect(target)
                conn.sendall(line.encode() + b"\n")
                chunks = []
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
        except FileNotFoundError:
            raise RouterError(f"{self.describe()}: admin socket does not exist (router.socket)") from None
        except ConnectionRefusedError:
            raise RouterError(f"{self.describe()}: connection refused; is HAProxy running? (router.socket)") from None
        except PermissionError:
            raise RouterError(f"{self.describe()}: permission denied on the admin socket (router.socket)") from None
        except TimeoutError:
            raise RouterError(f"{self.describe()}: no answer within {self.timeout_s:g}s") from None
        except OSError as exc:
            raise RouterError(f"{self.describe()}: {exc.strerror or exc}") from None
        return b"".join(chunks).decode("utf-8", "replace")

    def backend(self, model: str) -> str:
        """The backend that carries ``model``'s traffic.

        Raises:
            NotFoundError: when the config maps no backend to the model.
        """
        try:
            return self.backends[model]
        except KeyError:
            known = ", ".join(sorted(self.backends)) or "none"
            raise NotFoundError(
                f"model {model!r} has no backend in router.backends (configured: {known})"
            ) from None

    # -- reads ------------------------------------------------------------------------------
    def list_backends(self) -> list[str]:
        """Every backend HAProxy runs (``show backend``), sorted.

        Raises:
            RouterError: when HAProxy cannot be reached or answers something else than a list of names.
        """
        answer = self.command("show backend")
        lines = [line.strip() for line in answer.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("#"):
            text = answer.strip() or "empty answer"
            raise RouterError(f"{self.describe()}: unexpected answer to show backend: {text[:120]}")
        return sorted(line for line in lines[1:] if not line.startswith("#"))

    def read_state(self, model: str) -> RouterState:
        """Every server of the model's backend, with weight and state.

        Raises:
            NotFoundError: when the backend does not exist in HAProxy.
            RouterError: when HAProxy cannot be reached or answers unexpectedly.
        """
        backend = self.backend(model)
        before, state = self._parse_state(model, backend, self.command(f"show servers state {backend}"))
        if before:
            raise RouterError(f"{self.describe()}: unexpected answer to show servers state: {before[0][:120]}")
        return state

    def _parse_state(self, model: str, backend: str, answer: str) -> tuple[list[str], RouterState]:
        """Split an answer ending in ``show servers state`` into the lines before it and the state.

        Raises:
            NotFoundError / RouterError: no state in the answer.
        """
        lines = [line for line in answer.splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines)
                      if line.strip().isdigit() and (i + 1 == len(lines) or lines[i + 1].startswith("#"))), None)
        if start is None:
            text = answer.strip() or "empty answer"
            if "find backend" in text or "No such backend" in text:
                raise NotFoundError(
                    f"{self.describe()}: backend {backend!r} (router.backends.{model}) does not exist"
                )
            raise RouterError(f"{self.describe()}: unexpected answer to show servers state: {text[:120]}")
        header = None
        servers: list[ServerState] = []
        for line in lines[start + 1:]:
            if line.startswith("#"):
                header = line.lstrip("# ").split()
                continue
            if header is None:
                continue
            row = dict(zip(header, line.split(), strict=False))
            if row.get("be_name") != backend:
                continue
            admin = int(row.get("srv_admin_state", "0"))
            servers.append(
                ServerState(
                    server=row["srv_name"],
                    version=self.naming.version(row["srv_name"]),
                    weight=int(row["srv_uweight"]),
                    operational=int(row.get("srv_op_state", _OP_RUNNING)) == _OP_RUNNING,
                    admin_state="maint" if admin & _ADMIN_MAINT else "drain" if admin & _ADMIN_DRAIN else "ready",
                    address=f"{row.get('srv_addr')}:{row.get('srv_port')}",
                )
            )
        return lines[:start], RouterState(backend=backend, servers=tuple(servers))

    def _stat_rows(self, backend: str) -> list[dict[str, str]]:
        """``show stat`` of one backend (its servers and the backend line), as rows of named fields."""
        lines = self.command(f"show stat {backend} 4 -1; show stat {backend} 2 -1").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise RouterError(f"{self.describe()}: unexpected answer to show stat: {' '.join(lines)[:120]}")
        header = lines[0][2:].split(",")
        return [row for line in lines[1:] if line and not line.startswith("#")
                for row in [dict(zip(header, line.split(","), strict=False))] if row.get("pxname") == backend]

    def served(self, model: str) -> dict[str, int]:
        """Requests each version's server has answered since HAProxy started (its ``stot`` counter)."""
        totals: dict[str, int] = {}
        for row in self._stat_rows(self.backend(model)):
            version = self.naming.version(row.get("svname", ""))
            if version is not None:
                totals[version] = int(row.get("stot") or 0)
        return totals

    def fallback(self, model: str) -> FallbackState:
        """Every server's health and counters, the backups among them, and the router's own default answers.

        The requests HAProxy answered itself (``http-request return``, the fixed default)
        are those the backend counted and no server did.
        """
        backend = self.backend(model)
        servers = []
        backend_total = failed = 0
        for row in self._stat_rows(backend):
            name = row.get("svname", "")
            if name == "BACKEND":
                # What callers got: a request retried on another server counts once, as it ended.
                backend_total = int(row.get("stot") or 0)
                failed = int(row.get("hrsp_4xx") or 0) + int(row.get("hrsp_5xx") or 0)
                continue
            servers.append(ServerHealth(
                server=name, version=self.naming.version(name), backup=row.get("bck") == "1",
                status=row.get("status", ""), check=row.get("check_status", "").lstrip("* "),
                served=int(row.get("stot") or 0), answered_2xx=int(row.get("hrsp_2xx") or 0),
                answered_5xx=int(row.get("hrsp_5xx") or 0),
            ))
        # The Runtime API cannot list a backend's rules: whether a fixed default is configured is declared
        # in Rewind's config (router.static_default); its use is seen in the counter above.
        default_answers = max(0, backend_total - sum(s.served for s in servers))
        return FallbackState(backend, tuple(servers), default_answers, default_armed=self.static_default,
                             failed_answers=failed)

    def set_admin_state(self, model: str, servers: dict[str, str], expected: dict[str, str] | None) -> FallbackState:
        """Put servers in ``maint`` or back to ``ready`` (``servers``: server name -> state), compare-and-set.

        Args:
            model: the model whose backend to change.
            servers: server name -> ``maint`` | ``ready``.
            expected: server name -> the admin state last seen; any difference aborts before writing.

        Returns:
            The fallback state read back after the change.

        Raises:
            ConflictError: a server's admin state is not what the caller expected.
            NotFoundError: a server the backend does not have.
            RouterError: HAProxy refused or cannot be reached.
        """
        backend = self.backend(model)
        state = self.read_state(model)
        current = {s.server: s.admin_state for s in state.servers}
        missing = sorted(set(servers) - set(current))
        if missing:
            raise NotFoundError(f"{self.describe()}: backend {backend!r} has no server {missing[0]!r}")
        bad = sorted(v for v in servers.values() if v not in ("maint", "ready"))
        if bad:
            raise UsageError(f"server state {bad[0]!r} is neither maint nor ready")
        if expected is not None:
            changed = {n: (w, current.get(n)) for n, w in expected.items() if current.get(n) != w}
            if changed:
                detail = ", ".join(f"{n} is {now} (expected {was})" for n, (was, now) in sorted(changed.items()))
                raise ConflictError(f"{self.describe()}: server states changed since they were read: {detail}")
        commands = "; ".join(f"set server {backend}/{name} state {wanted}" for name, wanted in sorted(servers.items()))
        answer = self.command(commands).strip()
        if answer:
            raise RouterError(f"{self.describe()}: refused set server state: {answer.splitlines()[0][:120]}")
        after = {s.server: s.admin_state for s in self.read_state(model).servers}
        wrong = {n: after.get(n) for n, w in servers.items() if after.get(n) != w}
        if wrong:
            raise RouterError(f"{self.describe()}: read-back shows server states {wrong}, not {servers}")
        return self.fallback(model)

    # -- the shadow mirror ------------------------------------------------------------------
    def _map(self) -> str:
        if not self.shadow_map:
            raise RouterError(f"{self.describe()}: no shadow mirror is configured (router.shadow_map)")
        return self.shadow_map

    def _parse_mirror(self, backend: str, answer: str) -> Mirror | None:
        """The backend's entry in a ``show map`` answer, or ``None``."""
        for line in answer.splitlines():
            fields = line.split()
            if len(fields) == 5 and fields[1] == backend:
                shadow, baseline = self.naming.version(fields[2]), self.naming.version(fields[3])
                if shadow is None or baseline is None or not fields[4].isdigit():
                    raise RouterError(f"{self.describe()}: the mirror entry of {backend} is not understood: "
                                      f"{' '.join(fields[1:])[:120]}")
                return Mirror(shadow, baseline, int(fields[4]))
            if line.strip() and not line.startswith("0x"):
                raise RouterError(f"{self.describe()}: unexpected answer to show map: {line.strip()[:120]} "
                                  "(router.shadow_map)")
        return None

    def read_mirror(self, model: str) -> Mirror | None:
        """Which version shadows which for this model's backend, or ``None``.

        Raises:
            RouterError: no shadow map configured, or HAProxy does not know it.
        """
        return self._parse_mirror(self.backend(model), self.command(f"show map {self._map()}"))

    def set_mirror(self, model: str, mirror: Mirror | None, expected: Mirror | None) -> Mirror | None:
        """Replace the backend's mirror (``None`` removes it), compare-and-set; the read-back.

        The entry is deleted and added again, then the map read, in one exchange.

        Raises:
            ConflictError: the mirror is not what the caller expected.
            NotFoundError: a version with no server in the backend.
            RouterError: HAProxy refused or cannot be reached, or the read-back differs.
        """
        backend = self.backend(model)
        path = self._map()
        current = self.read_mirror(model)
        if current != expected:
            raise ConflictError(f"{self.describe()}: the mirror changed since it was read: "
                                f"{describe_mirror(current)} (expected {describe_mirror(expected)})")
        commands = [f"del map {path} {backend}"] if current is not None else []
        if mirror is not None:
            servers = {s.version for s in self.read_state(model).servers}
            for version in (mirror.shadow, mirror.baseline):
                if version not in servers:
                    raise NotFoundError(f"{self.describe()}: backend {backend!r} has no server for version {version}")
            value = f"{self.naming.server(mirror.shadow)} {self.naming.server(mirror.baseline)} {mirror.percent}"
            commands.append(f"add map {path} {backend} {value.replace(' ', chr(92) + ' ')}")
        if not commands:
            return None
        answer = self.command("; ".join(commands) + f"; show map {path}")
        after = self._parse_mirror(backend, "\n".join(line for line in answer.splitlines() if line.startswith("0x")))
        refused = [line for line in answer.splitlines() if line.strip() and not line.startswith("0x")]
        if refused or after != mirror:
            raise RouterError(f"{self.describe()}: setting the mirror failed: "
                              f"{(refused or ['read-back shows ' + describe_mirror(after)])[0][:120]}")
        return after

    # -- writes -----------------------------------------------------------------------------
    def set_weights(
        self, model: str, weights: dict[str, int], expected: dict[str, int] | None = None, checked: bool = False
    ) -> RouterState:
        """Set the weights of several versions as one operation, with compare-and-set.

        Args:
            model: the model whose backend to change.
            weights: version -> new weight (0..256).
            expected: version -> the weight the caller last saw; any difference
                aborts before anything is written. ``None`` skips the comparison.
            checked: the caller has just compared ``expected`` (naming every
                version in ``weights``) with a state it read under its action
                lock, so the backend is not read again before writing.

        Returns:
            The backend's state read back after the change (in the same
            exchange as the write).

        Raises:
            NotFoundError: a version with no server in the backend.
            ConflictError: a weight is no longer what the caller expected.
            RouterError: HAProxy refused a command or cannot be reached.
        """
        for version, weight in weights.items():
            try:
                validate_weight(weight)
            except ValueError as exc:
                raise UsageError(f"version {version}: {exc}") from None
        backend = self.backend(model)
        if not weights:  # nothing to write (HAProxy 2.6 answers an empty command with its help text)
            return self.read_state(model)
        if checked and (expected is None or set(weights) - set(expected)):
            raise UsageError("set_weights(checked=True) needs an expected weight for every version it sets")
        if not checked:
            current = self.read_state(model).weights()
            missing = sorted(v for v in weights if v not in current)
            if missing:
                raise NotFoundError(
                    f"{self.describe()}: backend {backend!r} has no server for version "
                    f"{missing[0]} (expected server {self.naming.server(missing[0])!r})"
                )
            if expected is not None:
                changed = {v: (w, current.get(v)) for v, w in expected.items() if current.get(v) != w}
                if changed:
                    detail = ", ".join(f"v{v} is {now} (expected {was})" for v, (was, now) in sorted(changed.items()))
                    raise ConflictError(f"{self.describe()}: weights changed since they were read: {detail}")
        commands = "; ".join(
            f"set weight {backend}/{self.naming.server(version)} {weight}"
            for version, weight in sorted(weights.items())
        )
        # The read-back rides on the same connection: HAProxy runs the commands in order.
        refused, after = self._parse_state(model, backend, self.command(f"{commands}; show servers state {backend}"))
        if refused:
            raise RouterError(
                f"{self.describe()}: refused set weight: {refused[0].strip()} (weights now {after.weights()})"
            )
        wrong = {v: after.weights().get(v) for v, w in weights.items() if after.weights().get(v) != w}
        if wrong:
            raise RouterError(f"{self.describe()}: read-back shows weights {wrong}, not {weights}")
        return after
