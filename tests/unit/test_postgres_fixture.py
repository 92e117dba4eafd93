"""The PostgreSQL fixture's policy: skip without the server binaries, except in CI, where it fails."""

from __future__ import annotations

import pytest

from tests.fixtures import postgres


def test_missing_binaries_skip_outside_ci(monkeypatch):
    monkeypatch.setattr(postgres, "find_postgres_bin", lambda: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        postgres.require_postgres_bin()


def test_missing_binaries_fail_in_ci(monkeypatch):
    monkeypatch.setattr(postgres, "find_postgres_bin", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        postgres.require_postgres_bin()
