"""Secrets never reach an event: keys, URL passwords, tokens and known values are redacted."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest

from console.domain.journal import REDACTED, is_secret_key, prepare_payload, redact_text, usable_secrets


@pytest.mark.parametrize("key", ["token", "password", "db_password", "X-Api-Key", "api_key", "apiKey", "bearerToken",
                                 "Authorization", "client_secret", "PGPASSWORD", "aws_secret_access_key",
                                 "private_key", "cookie", "passphrase", "GITHUB_TOKEN"])
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["tokens_per_s", "max_tokens", "model", "content_hash", "ssh_client", "promql",
                                 "keyboard", "author", "passage", "monkey"])
def test_ordinary_keys(key):
    assert not is_secret_key(key)


@pytest.mark.parametrize("text,kept,gone", [
    ("postgresql://rewind:s3cretpw@db.example:5432/journal", "postgresql://rewind:[REDACTED]@db.example:5432/journal",
     "s3cretpw"),
    ("see https://user:pa55word@mlflow.internal/api", "https://user:[REDACTED]@mlflow.internal", "pa55word"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "Authorization: Bearer [REDACTED]", "eyJhbGci"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz' x", "Basic [REDACTED]", "dXNlcjpwYXNz"),
    ("bearer abcdefgh12345678 in a note", "bearer [REDACTED]", "abcdefgh12345678"),
    ("?access_token=abcd1234&page=2", "access_token=[REDACTED]&page=2", "abcd1234"),
    ("PGPASSWORD=hunter22 psql", "PGPASSWORD=[REDACTED] psql", "hunter22"),
    ('{"api_key": "k-123456"}', '"api_key": [REDACTED]', "k-123456"),
])
def test_credentials_in_text_are_redacted(text, kept, gone):
    redacted = redact_text(text)
    assert kept in redacted
    assert gone not in redacted


@pytest.mark.parametrize("text", ["max_tokens=3 and tokens: 500", "the basic checks passed", "p95 latency: 210 ms",
                                  "postgresql://rewind@db/journal", "ratio 0.05 (threshold)"])
def test_ordinary_text_is_kept(text):
    assert redact_text(text) == text


def test_known_secret_values_are_redacted_anywhere():
    secrets = usable_secrets(["canary-7f3a9c", None, "", "abc"])
    assert secrets == ("canary-7f3a9c",)
    assert redact_text("the token canary-7f3a9c leaked", secrets) == f"the token {REDACTED} leaked"


def test_payload_keys_and_nested_values_are_redacted():
    payload = {
        "token": "t0ps3cret", "headers": {"Authorization": "Bearer abcdefgh"}, "nested": [{"password": "x"}],
        "url": "postgresql://u:pw123456@h/db", "note": "ok", "password_env": None,
    }
    prepared = prepare_payload(payload)
    assert prepared["token"] == REDACTED
    assert prepared["headers"]["Authorization"] == REDACTED
    assert prepared["nested"][0]["password"] == REDACTED
    assert prepared["url"] == "postgresql://u:[REDACTED]@h/db"
    assert prepared["note"] == "ok"
    assert prepared["password_env"] is None  # nothing to hide


def test_redaction_is_idempotent():
    payload = {"text": "postgresql://u:pw123456@h/db Bearer abcdefghij password=hunter22", "token": "x"}
    once = prepare_payload(payload, ("hunter22",))
    assert prepare_payload(once, ("hunter22",)) == once


class Colour(StrEnum):
    RED = "red"


def test_payload_becomes_plain_json():
    prepared = prepare_payload({
        "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "tuple": (1, 2), "set": {"b", "a"},
        "when": datetime(2025, 3, 14, 9, 0, tzinfo=UTC), "path": Path("/tmp/x"), "enum": Colour.RED, 7: True,
    })
    assert prepared == {"nan": "NaN", "inf": "+Inf", "ninf": "-Inf", "tuple": [1, 2], "set": ["a", "b"],
                        "when": "2025-03-14T09:00:00.000000Z", "path": "/tmp/x", "enum": "red", "7": True}
    assert type(prepared["enum"]) is str


def test_values_without_a_json_form_are_refused():
    with pytest.raises(TypeError):
        prepare_payload({"x": object()})
    with pytest.raises(TypeError):
        prepare_payload({"when": datetime(2025, 1, 1)})
    with pytest.raises(TypeError):
        prepare_payload(["not", "a", "mapping"])  # type: ignore[arg-type]
