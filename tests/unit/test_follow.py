"""Following an incident: catch-up by sequence number (SQLite, polled), a watch's news (a scripted fake),
and the upgrade of a revision-1 SQLite journal."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from console.adapters.journal_sql import SCHEMA_REVISION, SqlJournal
from console.domain.journal import Actor, JournalNews
from console.services.follow import IncidentFollower
from console.services.journal import JournalService


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'journal.db'}"


@pytest.fixture
def writer(url):
    service = JournalService(SqlJournal(url), Actor("alice", "bastion"))
    yield service
    service.close()


class CountingJournal(SqlJournal):
    """A SQLite journal that records each catch-up's starting point."""

    def __init__(self, url: str, watch=None) -> None:
        super().__init__(url)
        self.asked: list[int] = []
        self._fake_watch = watch

    def events_after(self, incident_id, after_seq):
        self.asked.append(after_seq)
        return super().events_after(incident_id, after_seq)

    def watch(self):
        return self._fake_watch


class ScriptedWatch:
    """A watch that hands out scripted news, then empty news."""

    def __init__(self, *news: JournalNews) -> None:
        self.news = list(news)
        self.closed = False

    def wait(self, timeout):
        return self.news.pop(0) if self.news else JournalNews()

    def close(self):
        self.closed = True


def test_a_catch_up_reads_only_the_events_after_the_last_one_held(writer, url):
    incident = writer.open_incident("m", "2", "follow").incident_id
    journal = CountingJournal(url)
    follower = IncidentFollower(journal)
    follower.follow(incident)
    assert [e.seq for e in follower.catch_up()] == [1]
    writer.note(incident, "one")
    writer.note(incident, "two")
    assert [e.seq for e in follower.catch_up()] == [2, 3]
    assert follower.catch_up() == []
    assert journal.asked == [0, 1, 3]  # never the whole timeline again
    assert [e.seq for e in follower.events] == [1, 2, 3]
    assert not follower.live


def test_on_sqlite_a_wait_polls_and_returns_another_writers_events(writer, url):
    incident = writer.open_incident("m", "2", "follow").incident_id
    follower = JournalService(SqlJournal(url), Actor("bob", "bastion")).follower(poll_s=0.05)
    follower.follow(incident)
    assert [e.seq for e in follower.wait(1.0)] == [1]
    writer.note(incident, "from another console")
    assert [e.seq for e in follower.wait(2.0)] == [2]
    assert follower.wait(0.1) == []


def test_a_journal_changed_under_the_follower_is_read_again_from_the_start(writer, url):
    incident = writer.open_incident("m", "2", "follow").incident_id
    writer.note(incident, "one")
    follower = IncidentFollower(SqlJournal(url))
    follower.follow(incident)
    follower.catch_up()
    follower.events = [*follower.events[:-1], replace(follower.events[-1], hash="f" * 64)]  # held: a different #2
    writer.note(incident, "two")
    assert [e.seq for e in follower.catch_up()] == [1, 2, 3]  # #3 does not link to the #2 held: start over
    assert follower.events[-2].hash != "f" * 64
    follower.follow(incident, head_seq=1)  # the journal says the head is below what is held: replaced
    assert follower.events == []


def test_another_incident_starts_from_its_first_event(writer, url):
    first = writer.open_incident("m", "2", "first").incident_id
    second = writer.open_incident("n", "2", "second").incident_id
    writer.note(first, "only in the first")
    follower = IncidentFollower(SqlJournal(url))
    follower.follow(first)
    assert [e.seq for e in follower.catch_up()] == [1, 2]
    follower.follow(second)
    assert [(e.incident_id, e.seq) for e in follower.catch_up()] == [(second, 1)]


def test_a_watch_wakes_the_follower_for_its_incident_and_after_a_reconnection(writer, url):
    incident = writer.open_incident("m", "2", "follow").incident_id
    watch = ScriptedWatch(
        JournalNews(resync=True),                      # listening: catch up
        JournalNews({"INC-OTHER": 9}),                 # another incident's head: nothing to read
        JournalNews(error="cannot listen: connection refused"),
        JournalNews(resync=True),                      # back: catch up what was written meanwhile
    )
    journal = CountingJournal(url, watch)
    follower = IncidentFollower(journal, poll_s=60.0)
    follower.follow(incident)
    assert follower.live
    assert [e.seq for e in follower.wait(0.0)] == [1]
    writer.note(incident, "written while the watch was down")
    assert follower.wait(0.0) == []                    # the other incident's news reads nothing
    assert follower.wait(0.0) == [] and follower.error == "cannot listen: connection refused"
    assert [e.seq for e in follower.wait(0.0)] == [2]
    assert follower.error is None
    assert journal.asked == [0, 1]
    writer.note(incident, "three")
    watch.news.append(JournalNews({incident: 3}))
    assert [e.seq for e in follower.wait(0.0)] == [3]
    follower.close()
    assert watch.closed and not follower.live


def test_a_revision_1_journal_is_upgraded_on_first_use(writer, url, tmp_path):
    incident = writer.open_incident("m", "2", "old").incident_id
    writer.close()
    with sqlite3.connect(tmp_path / "journal.db") as db:  # what a revision-1 Rewind left
        db.execute("DROP INDEX journal_events_kind")
        db.execute("DELETE FROM journal_meta WHERE key = 'schema_revision'")
    journal = SqlJournal(url)
    assert [e.seq for e in journal.events_after(incident, 0)] == [1]
    journal.close()
    with sqlite3.connect(tmp_path / "journal.db") as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        meta = dict(db.execute("SELECT key, value FROM journal_meta"))
        plan = db.execute("EXPLAIN QUERY PLAN SELECT * FROM journal_events WHERE kind IN ('action.applied') "
                          "ORDER BY incident_id, seq").fetchall()
    assert "journal_events_kind" in indexes
    assert meta == {"schema_version": "1", "schema_revision": str(SCHEMA_REVISION)}
    assert "journal_events_kind" in str(plan)
