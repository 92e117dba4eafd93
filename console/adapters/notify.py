"""Outbound HTTP for playbooks: notifications to Slack-compatible webhooks, and calls to named endpoints.

A webhook's URL usually carries a token (Slack's do) and an endpoint's headers
carry credentials, so both are read from the environment or a file at call
time, sent, and forgotten: nothing this module returns or raises holds them.
Results and errors name the webhook or endpoint by its config name only; the
text of a transport error or of a receiver's answer is scrubbed of every
secret the call used before it reaches a message.

No retries here: a failure is one :class:`~console.domain.delivery.DeliveryError`
line, and the caller (the playbook runner, which dedupes through the journal)
decides. Each call sends its dedupe key as an ``Idempotency-Key`` header, so a
receiver that supports it can drop a repeat. Redirects are never followed: a
3xx answer is an error, and the credentials never travel to another host.
Proxies named by ``HTTPS_PROXY``/``NO_PROXY`` are used, as httpx does by default
(a bastion often reaches Slack only through one).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from console import __version__
from console.domain.delivery import Delivery, DeliveryError, EndpointError, NotifyError
from console.domain.errors import ConfigError

USER_AGENT = f"rewind/{__version__}"
_IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")
_EXCERPT_BYTES = 512
_EXCERPT_CHARS = 80
_REDACTED = "[redacted]"


@dataclass(frozen=True)
class HttpTarget:
    """One configured webhook or endpoint; its URL and header values are read only when it is called.

    Attributes:
        name: the config name playbooks use (``oncall``).
        setting: where it is configured, for messages (``notify.webhooks.oncall``).
        url: a literal URL (a loopback receiver, a test); kept out of ``repr``.
        url_env: the environment variable holding the URL.
        url_file: the file holding the URL.
        timeout_s: how long to wait to connect, and then for each part of the answer.
        method: ``POST``, ``PUT`` or ``PATCH``.
        headers_env: ``(header name, environment variable)`` pairs: header values come from env only.
    """

    name: str
    setting: str
    url: str | None = field(default=None, repr=False)
    url_env: str | None = None
    url_file: str | None = None
    timeout_s: float = 5.0
    method: str = "POST"
    headers_env: tuple[tuple[str, str], ...] = ()


def secret_value(env: str | None, file: str | None, setting: str,
                 environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the named environment variable or file (``None`` when neither is named).

    Args:
        env: the environment variable holding it.
        file: the file holding it (``~`` expanded).
        setting: the setting without its ``_env``/``_file`` suffix, for messages
            (``notify.webhooks.oncall.url``).
        environ: the environment; default ``os.environ``, read now.

    Raises:
        ConfigError: the variable is unset or empty, or the file cannot be read or is empty;
            the message names the setting and the variable or file, never a value.
    """
    if env:
        value = (os.environ if environ is None else environ).get(env, "").strip()
        if not value:
            raise ConfigError(f"{setting}_env names {env}, which is not set")
        return value
    if file:
        try:
            value = Path(file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{setting}_file {file}: cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{setting}_file {file}: is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{setting}_file {file}: is empty")
        return value
    return None


class _Outbound:
    """What webhooks and endpoints share: resolving a target's secrets and sending one request."""

    kind = "target"
    error: type[DeliveryError] = DeliveryError

    def __init__(self, targets: Mapping[str, HttpTarget], environ: Mapping[str, str] | None = None) -> None:
        self._targets = dict(targets)
        self._environ = environ

    def _names(self) -> tuple[str, ...]:
        return tuple(sorted(self._targets))

    def _describe(self, section: str) -> str:
        if not self._targets:
            return f"no {self.kind}s configured ({section})"
        return f"{self.kind}s {', '.join(self._names())}"

    def _target(self, name: str, section: str) -> HttpTarget:
        target = self._targets.get(name)
        if target is None:
            known = f"{section} has {', '.join(self._names())}" if self._targets else f"{section} is empty"
            raise self.error(f"{self.kind} {name!r} is not configured ({known})", name=name)
        return target

    def _url(self, target: HttpTarget) -> str:
        """The target's URL, read now; checked to be an absolute http(s) URL without showing it."""
        if target.url is not None:
            url, where = target.url, f"{target.setting}.url"
        else:
            url = secret_value(target.url_env, target.url_file, f"{target.setting}.url", self._environ) or ""
            where = (f"{target.setting}.url_env {target.url_env}" if target.url_env
                     else f"{target.setting}.url_file {target.url_file}")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"{where}: does not hold an absolute http:// or https:// URL")
        return url

    def _headers(self, target: HttpTarget) -> dict[str, str]:
        """The target's configured headers, their values read from the environment now."""
        environ = os.environ if self._environ is None else self._environ
        headers: dict[str, str] = {}
        for header, env in target.headers_env:
            setting = f"{target.setting}.headers_env.{header}"
            value = environ.get(env, "").strip()
            if not value:
                raise ConfigError(f"{setting} names {env}, which is not set")
            if not value.isascii() or not value.isprintable():
                raise ConfigError(f"{setting}: {env} holds a line break or a character a header cannot carry")
            headers[header] = value
        return headers

    def _send(self, target: HttpTarget, method: str, body: bytes, dedupe_key: str | None,
              extra_headers: Mapping[str, str], done: str) -> Delivery:
        """Send one JSON request to ``target`` and turn the answer into a Delivery or a one-line error.

        Raises:
            ConfigError: the URL or a header's value cannot be read.
            DeliveryError: (this class's ``error``) unreachable, no answer in time, or a non-2xx answer.
        """
        label = f"{self.kind} {target.name}"
        if dedupe_key is not None and not _IDEMPOTENCY_KEY.match(dedupe_key):
            raise ValueError(f"{label}: a dedupe key is 1 to 255 printable ASCII characters without spaces")
        url = self._url(target)
        headers = {**extra_headers, "Content-Type": "application/json", "User-Agent": USER_AGENT}
        if dedupe_key is not None:
            headers["Idempotency-Key"] = dedupe_key
        secrets = _secrets_of(url, extra_headers.values())

        def fail(what: str, status: int | None = None, outcome_unknown: bool = False) -> DeliveryError:
            return self.error(_one_line(f"{label}: {what}", secrets), name=target.name, status=status,
                              outcome_unknown=outcome_unknown)

        started = time.monotonic()
        try:
            with httpx.Client(timeout=target.timeout_s, follow_redirects=False) as client:
                with client.stream(method, url, content=body, headers=headers) as response:
                    status, phrase = response.status_code, response.reason_phrase
                    excerpt = "" if 200 <= status < 300 else _excerpt(response, started + target.timeout_s)
        except (httpx.ConnectTimeout, httpx.PoolTimeout):
            raise fail(f"unreachable (no connection within {target.timeout_s:g} s)") from None
        except httpx.TimeoutException:
            raise fail(f"no answer within {target.timeout_s:g} s (it may have been received)",
                       outcome_unknown=True) from None
        except httpx.ConnectError as exc:
            raise fail(f"unreachable ({_reason(exc)})") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise fail(f"the connection broke before an answer ({_reason(exc)}; it may have been received)",
                       outcome_unknown=True) from None
        except httpx.HTTPError as exc:
            raise fail(f"failed ({type(exc).__name__})") from None
        elapsed_ms = round((time.monotonic() - started) * 1000)
        answer = f"HTTP {status} {phrase}".rstrip()
        if 300 <= status < 400:
            raise fail(f"answered {answer}: a redirect, not followed", status=status)
        if not 200 <= status < 300:
            raise fail(f"refused with {answer}" + (f": {excerpt}" if excerpt else ""), status=status)
        summary = _one_line(f"{label}: {done}, {answer} in {elapsed_ms} ms", secrets)
        return Delivery(status=status, ok=True, summary=summary)


class WebhookNotifier(_Outbound):
    """Posts notifications to Slack-compatible incoming webhooks (``{"text": ...}``), by name.

    Args:
        webhooks: the configured webhooks by name.
        environ: where ``url_env`` is looked up; default ``os.environ``, read at each post.
    """

    kind = "webhook"
    error = NotifyError

    def describe(self) -> str:
        """The configured webhooks by name, for messages (never their URLs)."""
        return self._describe("notify.webhooks")

    def webhooks(self) -> tuple[str, ...]:
        """The configured webhook names, sorted."""
        return self._names()

    def post(self, webhook: str, text: str, dedupe_key: str) -> Delivery:
        """Post ``text`` to the webhook named ``webhook``.

        ``&``, ``<`` and ``>`` are escaped as Slack's message format requires, so
        text from a template or a responder's reason is shown as written and
        cannot turn into a link or an ``<!channel>`` mention.

        Args:
            webhook: the webhook's name in ``notify.webhooks``.
            text: the message, Slack mrkdwn.
            dedupe_key: sent as the ``Idempotency-Key`` header (1-255 printable ASCII, no spaces).

        Returns:
            The receiver's 2xx answer.

        Raises:
            NotifyError: unknown webhook, unreachable, no answer in time, or a non-2xx answer;
                one line naming the webhook, never its URL.
            ConfigError: the webhook's ``url_env`` is unset or its ``url_file`` unreadable.
            ValueError: the dedupe key cannot be a header value.
        """
        target = self._target(webhook, "notify.webhooks")
        body = json.dumps({"text": slack_escape(text)}, ensure_ascii=False).encode("utf-8")
        return self._send(target, "POST", body, dedupe_key, {}, "posted")


class HttpEndpoints(_Outbound):
    """Calls the configured HTTP endpoints with a JSON body, by name.

    Args:
        endpoints: the configured endpoints by name.
        environ: where ``url_env`` and ``headers_env`` are looked up; default ``os.environ``, read at each call.
    """

    kind = "endpoint"
    error = EndpointError

    def describe(self) -> str:
        """The configured endpoints by name, for messages (never their URLs or headers)."""
        return self._describe("endpoints")

    def names(self) -> tuple[str, ...]:
        """The configured endpoint names, sorted."""
        return self._names()

    def call(self, endpoint: str, body: Mapping[str, object], *, dedupe_key: str | None = None) -> Delivery:
        """Send ``body`` as JSON to the endpoint named ``endpoint`` with its method and headers.

        Args:
            endpoint: the endpoint's name in ``endpoints``.
            body: the JSON object to send.
            dedupe_key: when given, sent as the ``Idempotency-Key`` header.

        Returns:
            The endpoint's 2xx answer.

        Raises:
            EndpointError: unknown endpoint, a body that is not JSON, unreachable, no answer in
                time, or a non-2xx answer; one line naming the endpoint, never its URL or headers.
            ConfigError: the endpoint's URL or a header's variable is unset, or its file unreadable.
            ValueError: the dedupe key cannot be a header value.
        """
        target = self._target(endpoint, "endpoints")
        try:
            content = json.dumps(dict(body), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise EndpointError(_one_line(f"endpoint {endpoint}: the body cannot be sent as JSON ({exc})", ()),
                                name=endpoint) from None
        headers = self._headers(target)
        return self._send(target, target.method, content, dedupe_key, headers, f"{target.method} accepted")


def slack_escape(text: str) -> str:
    """``text`` with ``&``, ``<`` and ``>`` escaped as Slack's message format requires."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _secrets_of(url: str, header_values: Iterable[str]) -> tuple[str, ...]:
    """Every string a message must not show, longest first: the URL, its path and query, and the header values.

    A header value's credential without its scheme (``Bearer``, ``Basic``...) counts too: a receiver may echo it alone.
    """
    parsed = httpx.URL(url)
    found = {url, url.split("://", 1)[-1], parsed.raw_path.decode("ascii", "replace"), parsed.path}
    for value in header_values:
        found.update((value, *value.split(None, 1)[1:]))
    if parsed.password:
        found.add(parsed.password)
    return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))


def _one_line(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` on one line, every secret in it replaced."""
    for secret in secrets:
        text = text.replace(secret, _REDACTED)
    return " ".join(text.split())


def _reason(exc: Exception) -> str:
    """A transport error's own words, without the ``[Errno N]`` prefix (the caller scrubs secrets)."""
    text = re.sub(r"\[Errno -?\d+\]\s*", "", str(exc)).strip()
    return text[:_EXCERPT_CHARS] or type(exc).__name__


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The first line of a refusing answer's body (what Slack says: ``invalid_token``), short; never waits long."""
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= _EXCERPT_BYTES or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass  # the status says enough
    text = data[:_EXCERPT_BYTES].decode("utf-8", "replace").strip()
    first = text.splitlines()[0] if text else ""
    first = "".join(ch for ch in first if ch.isprintable())
    return first if len(first) <= _EXCERPT_CHARS else first[:_EXCERPT_CHARS - 1] + "…"
