"""What a secret or an address looks like in text: the journal redacts the first, playbooks refuse both.

The journal (:mod:`console.domain.journal`) removes credentials from what it
writes; the playbook checker (:mod:`console.domain.playbook_check`) refuses a
playbook that holds one, or an address where a configured name belongs. Both
read the shapes from here, so a shape learnt once protects both.

The findings say *what* a value looks like ("a bearer token"), never the value:
a message that echoed a secret would leak it into a terminal, a CI log or a
ticket.

Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

# -- secret-looking keys ----------------------------------------------------------------------------

_SECRET_WORDS = frozenset({
    "token", "password", "passwd", "pwd", "secret", "authorization", "apikey", "cookie",
    "credential", "credentials", "passphrase", "privatekey", "accesskey", "secretkey",
})
_SECRET_SUFFIXES = ("password", "passwd", "token", "secret", "apikey")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (``token``, ``db_password``, ``X-Api-Key``, ``bearerToken``...)."""
    parts = [p for p in _SPLIT.split(_CAMEL.sub("_", key).lower()) if p]
    for index, part in enumerate(parts):
        if part in _SECRET_WORDS or part.endswith(_SECRET_SUFFIXES):
            return True
        if index + 1 < len(parts) and part + parts[index + 1] in _SECRET_WORDS:
            return True
    return False


# -- secrets in text --------------------------------------------------------------------------------

URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/:@?#]*):([^\s/@?#]*)@")
"""A URL with ``user:password@`` in it (groups: scheme, user, password)."""

BEARER = re.compile(r"(?i)\b(bearer)(\s+)([A-Za-z0-9\-._~+/=]{8,})")
"""``Bearer <token>`` (groups: the word, the space, the token)."""

_AUTH_SCHEME = re.compile(r"(?i)\b(basic|digest|token)\s+([A-Za-z0-9\-._~+/=]{8,})")
_AUTH_HEADER = re.compile(r"(?i)\bauthorization\s*[:=]\s*[\"']?([^\s\"']{8,})")
_KEY_VALUE = re.compile(
    r"(?i)\b[\w.\-]*?(password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key)"
    r"(?:\s*=\s*|:(?=\S)|[\"']\s*:\s*)[\"']?([^\s&,;\"'<>]+)"
)
_PLACEHOLDER = re.compile(r"^(\{\{|\$|\*|x{3,}$|\.\.\.|…)", re.IGNORECASE)
"""A value that stands for a secret without being one: a reference, an environment variable, a mask."""

_KNOWN_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"), "a GitHub token"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), "a Google API key"),
    (re.compile(r"\b[sr]k_live_[0-9A-Za-z]{16,}"), "a Stripe secret key"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}(?:\.[A-Za-z0-9_\-]+)*"), "a JSON Web Token"),
    (re.compile(r"(?i)\bhooks\.slack\.com/(?:services|workflows)/\S+|"
                r"\bdiscord(?:app)?\.com/api/webhooks/\S+|\.webhook\.office\.com/\S+"),
     "a webhook URL (its path is the secret)"),
)
"""Credentials recognised by their own format, each with what to call it."""

_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://\S*")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/_\-=]{32,}")
MIN_SECRET_ENTROPY = 4.0
"""Bits per character from which a long token reads as random: random 32-character alphanumeric strings
score 4.0 to 5.0 (4.5 on average), a 64-character hex digest at most 4.0 and usually 3.8 (digests and
commit ids in prose pass)."""
MIN_CLASS_SWITCHES = 0.4
"""Share of neighbouring characters that switch between upper case, lower case and digits from which a
long token reads as random: random alphanumeric strings switch at 0.62 on average (under 0.4 for 1 in
1,000), words glued in CamelCase far less (``AbstractSingletonProxyFactoryBean`` 0.28)."""


def _random_looking(token: str) -> bool:
    """Letters and digits mixed, or upper and lower case mixed past the first letter: not a word."""
    has_digit = any(c.isdigit() for c in token)
    has_letter = any(c.isalpha() for c in token)
    mixed_case = any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    return (has_digit and has_letter) or mixed_case


def _class_switches(token: str) -> float:
    def kind(char: str) -> int:
        return 0 if char.isupper() else 1 if char.islower() else 2 if char.isdigit() else 3

    return sum(kind(a) != kind(b) for a, b in zip(token, token[1:], strict=False)) / (len(token) - 1)


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


def credential_in(text: str) -> str | None:
    """What credential ``text`` seems to hold, or ``None``.

    Ordinary prose passes, links included (a runbook URL is not a secret); what
    is refused is a credential's own shape: a known token format, an
    ``Authorization`` value, ``Bearer``/``Basic`` credentials, ``password=``
    style pairs, a URL with a password or a webhook URL whose path is its
    secret, and long random-looking strings outside URLs.

    Args:
        text: any text (a name, a step's prose, a message template).

    Returns:
        A description such as ``"a bearer token"``, never the value itself.
    """
    if len(text) < 8:
        return None
    for pattern, what in _KNOWN_SHAPES:
        if pattern.search(text):
            return what
    if "@" in text and URL_CREDENTIALS.search(text):
        return "a URL with a password in it"
    lower = text.lower()
    if "authorization" in lower:
        match = _AUTH_HEADER.search(text)
        if match and _random_looking(match.group(1)) and not _PLACEHOLDER.match(match.group(1)):
            return "an Authorization header"
    if "bearer" in lower and any(_random_looking(m.group(3)) for m in BEARER.finditer(text)):
        return "a bearer token"
    for match in _AUTH_SCHEME.finditer(text):
        if _random_looking(match.group(2)):
            return f"a {match.group(1).lower()} credential" if match.group(1).lower() != "token" else \
                "an authorization token"
    for match in _KEY_VALUE.finditer(text):
        if not _PLACEHOLDER.match(match.group(2)):
            return f"a {match.group(1).lower()}= value"
    for token in _LONG_TOKEN.findall(_URL.sub(" ", text)):
        if _random_looking(token) and _class_switches(token) >= MIN_CLASS_SWITCHES \
                and _entropy(token) >= MIN_SECRET_ENTROPY:
            return "a long random-looking string (a key or a token?)"
    return None


# -- addresses where a name belongs ------------------------------------------------------------------

_ADDRESS_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)^[a-z][a-z0-9+.\-]*://|^//|^www\."), "a URL"),
    (re.compile(r"(?i)^mailto:|^[^\s@]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)+$"), "an e-mail address"),
    (re.compile(r"(?i)^(?:localhost|\[[0-9a-f:.]+\]|[a-z0-9\-]+(?:\.[a-z0-9\-]+)+):\d{1,5}(?:/|$)"),
     "a host:port address"),
    (re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$"), "an IP address"),
    (re.compile(r"(?i)^[a-z0-9\-]+(?:\.[a-z0-9\-]+)+/"), "a URL"),
    (re.compile(r"^/"), "a URL path"),
)


def address_in(name: str) -> str | None:
    """What address ``name`` seems to be where a configured name belongs, or ``None``.

    Args:
        name: a value in a name's place (a webhook, an endpoint, a metric...).

    Returns:
        ``"a URL"``, ``"an e-mail address"``, ``"a host:port address"``,
        ``"an IP address"`` or ``"a URL path"``; never the value itself.
    """
    stripped = name.strip()
    for pattern, what in _ADDRESS_SHAPES:
        if pattern.search(stripped):
            return what
    return None
