"""The journal under several writers and several live followers at once, on a real PostgreSQL.

Four writer processes append to one incident together while three followers (the
console's follow use case, each on its own connection) follow it through
LISTEN/NOTIFY: every event is kept, the hash chain verifies, and every follower gets
every event, in order and once, within a second of its write.
"""

from __future__ import annotations

import pytest

from tests.fixtures.journal_soak import run_soak

pytestmark = pytest.mark.integration

WRITERS, PER_WRITER, FOLLOWERS = 4, 100, 3


def test_many_writers_and_followers_lose_nothing_and_lag_under_a_second(postgres_url):
    result = run_soak(postgres_url, writers=WRITERS, per_writer=PER_WRITER, followers=FOLLOWERS, timeout_s=25)

    total = 1 + WRITERS * PER_WRITER  # the opening event and every note
    assert result.stored == list(range(1, total + 1))
    assert sorted(result.written) == result.stored, "a write reported committed is missing, or one is doubled"
    assert result.verified.ok, result.verified.problem.message() if result.verified.problem else ""
    assert result.verified.events == total
    for number, follower in enumerate(result.followers):
        assert follower.live, "the followers must be woken by NOTIFY on PostgreSQL, not by a timer"
        assert follower.seqs == result.stored, f"follower {number} missed, doubled or reordered events"
    assert result.lost == 0
    assert result.max_lag_s < 1.0, f"a follower got an event {result.max_lag_s:.3f} s after its write"
