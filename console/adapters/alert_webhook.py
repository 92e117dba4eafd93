"""The HTTP side of ``rewind alerts serve``: Alertmanager's webhook on a small standard-library server.

- ``POST /alerts``: the body (at most :data:`MAX_BODY_BYTES`, with a ``Content-Length``) is
  handed to the receiving callable, which returns only once the journal committed:
  **200** with what each alert did; **400** for a payload that can never be accepted
  (:class:`~console.domain.alert_events.PayloadRefused`: not JSON, another version),
  which Alertmanager does not retry; **503** when anything else failed (the journal),
  which Alertmanager retries.
- ``GET /healthz``: **200** ``ok`` (no token needed: it says nothing).
- With a token, a request without ``Authorization: Bearer <token>`` gets **401**
  (compared in constant time, before the body is read).
- **404** elsewhere, **405** for another method, **411** without a length, **413** over the limit.

One line per request goes to the log: time, client, method, path (never its query),
status, milliseconds, bytes, and what the alerts did; never a header or the body.
Connections close after each answer, so stopping waits only for requests in flight.
"""

from __future__ import annotations

import hmac
import http.server
import ipaddress
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from console.domain.alert_events import PayloadRefused
from console.domain.errors import ConfigError, RewindError

MAX_BODY_BYTES = 4 * 1024 * 1024
"""The largest notification taken: a group of about 3,000 alerts."""
READ_TIMEOUT_S = 30.0
"""How long a connection may take to send its request."""
ALERTS_PATH, HEALTH_PATH = "/alerts", "/healthz"

Receive = Callable[[bytes], tuple[Mapping[str, object], str]]
"""Takes a notification's body; returns the answer's JSON document and a line for the log, once journaled."""


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9095`` for IPv6) as a host and a port.

    Raises:
        ConfigError: not ``HOST:PORT`` with a port from 0 (any free one) to 65535.
    """
    host, sep, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"alerts.listen: {text!r} is not HOST:PORT (e.g. 127.0.0.1:9095)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_text(exc: BaseException) -> str:
    """What a failure may tell the sender: a Rewind error's own line (written to be shown), else its class."""
    return f"{exc.__class__.__name__}: {exc}" if isinstance(exc, RewindError) else exc.__class__.__name__


class WebhookServer:
    """Alertmanager's webhook receiver, served from a background thread.

    Args:
        listen: ``HOST:PORT`` (port 0: any free one; see :attr:`address`).
        receive: takes a notification's body (see :data:`Receive`).
        token: the bearer token a request must carry (``None``: none is asked for).
        log: where the request lines go.
        max_body: the largest body taken, in bytes.
    """

    def __init__(self, listen: str, receive: Receive, token: str | None, log: Callable[[str], None],
                 max_body: int = MAX_BODY_BYTES) -> None:
        host, port = parse_listen(listen)
        expected = f"Bearer {token}".encode() if token else None
        server_self = self

        class Handler(http.server.BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            timeout = READ_TIMEOUT_S
            server_version = "rewind-alerts"
            sys_version = ""

            def answer(self, status: int, document: Mapping[str, object], note: str = "",
                       headers: Mapping[str, str] | None = None) -> None:
                payload = (json.dumps(document, ensure_ascii=False) + "\n").encode("utf-8")
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    note += " (the sender hung up before the answer)"
                server_self._log_request(self, status, note)

            def authorised(self) -> bool:
                given = (self.headers.get("Authorization") or "").strip().encode("utf-8", "replace")
                if expected is None or hmac.compare_digest(given, expected):
                    return True
                self.answer(401, {"error": "a bearer token is required (Authorization: Bearer ...)"},
                            "refused: no or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="rewind"'})
                return False

            def do_GET(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
                self.started = time.monotonic()
                path = self.path.split("?", 1)[0]
                if path == HEALTH_PATH:
                    self.answer(200, {"ok": True})
                elif path == ALERTS_PATH:
                    self.answer(405, {"error": f"{ALERTS_PATH} takes POST"}, headers={"Allow": "POST"})
                else:
                    self.answer(404, {"error": f"nothing at {path[:100]}: POST {ALERTS_PATH}, GET {HEALTH_PATH}"})

            def do_POST(self) -> None:  # noqa: N802
                self.started = time.monotonic()
                path = self.path.split("?", 1)[0]
                if path != ALERTS_PATH:
                    self.answer(404 if path != HEALTH_PATH else 405, {"error": f"POST {ALERTS_PATH}"})
                    return
                if not self.authorised():
                    return
                length_text = self.headers.get("Content-Length")
                if length_text is None or not length_text.strip().isdigit():
                    self.close_connection = True
                    self.answer(411, {"error": "a Content-Length is required"})
                    return
                length = int(length_text)
                if length > max_body:
                    self.close_connection = True
                    self.answer(413, {"error": f"the body is over {max_body} bytes"}, f"refused: {length} bytes")
                    return
                try:
                    body = self.rfile.read(length)
                except OSError:
                    server_self._log_request(self, 0, "the sender hung up before the body")
                    return
                self.body_bytes = len(body)
                try:
                    document, note = receive(body)
                except PayloadRefused as exc:
                    self.answer(400, {"ok": False, "error": str(exc)}, f"refused: {exc}")
                    return
                except Exception as exc:  # noqa: BLE001 - anything else is worth a retry: 503, Alertmanager retries
                    self.answer(503, {"ok": False, "error": f"not journaled, send it again: {_error_text(exc)}"},
                                f"failed: {_error_text(exc)}")
                    return
                self.answer(200, document, note)

            def do_PUT(self) -> None:  # noqa: N802
                self.started = time.monotonic()
                self.answer(405, {"error": f"POST {ALERTS_PATH}, GET {HEALTH_PATH}"}, headers={"Allow": "GET, POST"})

            do_DELETE = do_PATCH = do_PUT  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
                pass  # one line per request is written by answer(), without the request line's query

        self._server = http.server.ThreadingHTTPServer((host, port), Handler)
        # In-flight requests finish on stop (their journal writes commit); idle connections do not linger,
        # since every connection closes after its answer (HTTP/1.0).
        self._server.daemon_threads = False
        self._server.block_on_close = True
        self._log = log
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """``http://HOST:PORT``."""
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def _log_request(self, handler: http.server.BaseHTTPRequestHandler, status: int, note: str) -> None:
        started = getattr(handler, "started", time.monotonic())
        path = handler.path.split("?", 1)[0][:100]
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = (f"{when} {handler.client_address[0]} {handler.command} {path} {status} "
                f"{(time.monotonic() - started) * 1000:.1f}ms {getattr(handler, 'body_bytes', 0)}B")
        self._log(f"{line} {note}".rstrip())

    def start(self) -> WebhookServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="alerts-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop taking requests, let those in flight finish, and close the socket."""
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever's loop, which only runs once started
            self._thread.join()
        self._server.server_close()
