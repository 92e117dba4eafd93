"""A console following a PostgreSQL journal through a server restart loses nothing (catch-up by sequence number).

The server is this file's own (the restart cuts every connection to it).
"""

from __future__ import annotations

import pytest

from console.adapters.journal_sql import SqlJournal
from console.services.journal import JournalService
from tests.fixtures.journal_data import ACTOR
from tests.fixtures.postgres import (
    create_database,
    require_postgres_bin,
    restart_postgres,
    start_postgres,
    stop_postgres,
)
from tests.integration.test_journal_follow import _collect, _notified_within

pytestmark = pytest.mark.integration


def test_a_postgres_restart_is_followed_by_a_catch_up_that_loses_nothing():
    server = start_postgres(require_postgres_bin())
    try:
        url = create_database(server)
        service = JournalService(SqlJournal(url), ACTOR)
        incident = service.open_incident("m", "2", "restart").incident_id
        follower = service.follower()
        follower.follow(incident)
        service.note(incident, "before the restart")
        assert _collect(follower, 2) == [1, 2]

        restart_postgres(server)  # every connection is cut, the server is back on the same port
        service.close()
        service = JournalService(SqlJournal(url), ACTOR)  # a writer that connects after the restart
        service.note(incident, "after the restart 1")  # committed before the follower even knows it was cut
        service.note(incident, "after the restart 2")

        assert _collect(follower, 4) == [3, 4]
        assert follower.error is None
        assert [e.seq for e in follower.events] == [1, 2, 3, 4]
        assert _notified_within(follower, service, incident, 3.0) < 1.0
        follower.close()
        service.close()
    finally:
        stop_postgres(server)
