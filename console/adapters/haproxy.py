"""The HAProxy Runtime API: read and set per-version server weights over the admin socket.

The Runtime API is a line protocol: one connection, commands separated by
``;``, the answer read until HAProxy closes the socket. Weights are written as
one line of ``set weight`` commands after every server has been checked to
exist, so a typo cannot leave a backend half-changed; the result is read back.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from console.domain.errors import ConflictError, NotFoundError, RouterError, UsageError
from console.domain.routing import RouterState, ServerNaming, ServerState, validate_weight

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

    def __init__(self, address: str, backends: dict[str, str], server_template: str = "v{version}",
                 timeout_s: float = 2.0) -> None:
        self.address = SocketAddress.parse(address)
        self.backends = dict(backends)
        self.naming = ServerNaming(server_template)
        self.timeout_s = timeout_s

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

    def served(self, model: str) -> dict[str, int]:
        """Requests each version's server has answered since HAProxy started (its ``stot`` counter)."""
        backend = self.backend(model)
        lines = self.command(f"show stat {backend} 4 -1").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise RouterError(f"{self.describe()}: unexpected answer to show stat: {' '.join(lines)[:120]}")
        header = lines[0][2:].split(",")
        totals: dict[str, int] = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            version = self.naming.version(row.get("svname", ""))
            if row.get("pxname") == backend and version is not None:
                totals[version] = int(row.get("stot") or 0)
        return totals

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
