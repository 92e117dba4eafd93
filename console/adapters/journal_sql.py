"""The decision journal on SQLAlchemy Core: SQLite by default, PostgreSQL for a shared journal.

Tables (created on first use):

- ``journal_incidents``: one row per incident with its chain head
  (``head_seq``, ``head_hash``); the head is what reveals a deleted last event,
  and on PostgreSQL the row is the per-incident lock.
- ``journal_events``: one row per event, primary key ``(incident_id, seq)``
  (so a sequence number can never repeat); the payload is stored as its
  canonical JSON text, exactly the bytes that were hashed. Triggers refuse
  ``UPDATE`` and ``DELETE`` (and ``TRUNCATE`` on PostgreSQL): events are
  append-only, and anyone who drops the triggers to edit one is caught by
  ``rewind journal verify``.
- ``journal_meta``: the schema version (``schema_version``: the format; a journal newer
  than this Rewind is refused) and revision (``schema_revision``: additive changes such
  as indexes and triggers, which older Rewinds ignore safely). A journal at an older
  revision is brought up to date on first use, under the write lock.

Revision 2 adds the index ``journal_events_kind`` (kind, incident, sequence), which the
lookups across every incident use (``find_events``: the incidents' opened and closed
events, the last action, the previous champion), and on PostgreSQL a trigger that
NOTIFYs ``rewind_journal`` with ``INCIDENT_ID SEQ`` whenever an incident's head moves,
in the writer's transaction: consoles LISTEN (:class:`PgJournalWatch`) and read only
the events after the last sequence number they hold.

Appends are serialised per incident: on SQLite by ``BEGIN IMMEDIATE`` (the
database's write lock, taken before the head is read), on PostgreSQL by
``SELECT ... FOR UPDATE`` of the incident's row. The head is read, the events
sealed after it, inserted, the head moved, and the transaction committed; a
conflict or a busy database is retried. An append returns only after the
commit: SQLite runs in WAL mode with ``synchronous=FULL`` (the WAL is fsync'd
at every commit), PostgreSQL with its default synchronous commit.

The database password is never logged, stored or shown: :meth:`SqlJournal.describe`
and every error name the database without it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from console.domain.errors import (
    ConfigError,
    ConflictError,
    JournalError,
    LockHeldError,
    NotFoundError,
)
from console.domain.journal import (
    GENESIS_HASH,
    Actor,
    Event,
    EventDraft,
    EventKind,
    IncidentHead,
    JournalNews,
    LockChange,
    format_ts,
    parse_kind,
    seal_chain,
)
from console.runtime import gc_paused

SCHEMA_VERSION = 1
SCHEMA_REVISION = 2
NOTIFY_CHANNEL = "rewind_journal"
"""The PostgreSQL channel every head move is announced on, as ``INCIDENT_ID SEQ``."""
_SCHEMA_LOCK_KEY = 0x5265776E64  # "Rewnd": the advisory lock that serialises table creation on PostgreSQL
_CHUNK = 2000

metadata = MetaData()

incidents_table = Table(
    "journal_incidents", metadata,
    Column("incident_id", String(64), primary_key=True),
    Column("created_at", String(40), nullable=False),
    Column("head_seq", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
)

events_table = Table(
    "journal_events", metadata,
    Column("incident_id", String(64), ForeignKey("journal_incidents.incident_id"), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("ts", String(40), nullable=False),
    Column("actor_user", Text, nullable=False),
    Column("actor_host", Text, nullable=False),
    Column("actor_ssh", Text, nullable=True),
    Column("kind", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The primary key is the UNIQUE(incident_id, seq) constraint: a sequence number never repeats.
    PrimaryKeyConstraint("incident_id", "seq", name="journal_events_incident_seq"),
    # The lookups across every incident select by kind (revision 2).
    Index("journal_events_kind", "kind", "incident_id", "seq"),
)

meta_table = Table(
    "journal_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

locks_table = Table(
    "journal_action_locks", metadata,
    Column("model", String(255), primary_key=True),
    Column("action_id", String(64), nullable=False),
    Column("holder", Text, nullable=False),
    Column("acquired_at", String(40), nullable=False),
)
"""One row per model while an action changes it: the lock every console sees, on every machine."""

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS journal_events_no_update BEFORE UPDATE ON journal_events "
        "BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS journal_events_no_delete BEFORE DELETE ON journal_events "
        "BEGIN SELECT RAISE(ABORT, 'journal events are append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION journal_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'journal events are append-only'; END $$",
        "CREATE TRIGGER journal_events_no_change BEFORE UPDATE OR DELETE ON journal_events "
        "FOR EACH ROW EXECUTE FUNCTION journal_events_append_only()",
        "CREATE TRIGGER journal_events_no_truncate BEFORE TRUNCATE ON journal_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION journal_events_append_only()",
    ],
}

_NOTIFY_HEAD = [
    "CREATE OR REPLACE FUNCTION journal_incidents_notify() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', NEW.incident_id || ' ' || NEW.head_seq); RETURN NULL; END $$",
    "CREATE OR REPLACE TRIGGER journal_incidents_notify AFTER INSERT OR UPDATE OF head_seq ON journal_incidents "
    "FOR EACH ROW EXECUTE FUNCTION journal_incidents_notify()",
]
"""Revision 2 on PostgreSQL: a head move is announced at its commit (a rolled-back one never is)."""

_EVENT_COLUMNS = (
    events_table.c.incident_id, events_table.c.seq, events_table.c.ts, events_table.c.actor_user,
    events_table.c.actor_host, events_table.c.actor_ssh, events_table.c.kind, events_table.c.payload,
    events_table.c.prev_hash, events_table.c.hash,
)

# Statements built once: an append must cost little more than its commit's fsync.
_HEAD = select(incidents_table.c.head_seq, incidents_table.c.head_hash).where(
    incidents_table.c.incident_id == bindparam("key_incident_id"))
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_EVENTS_AFTER = select(*_EVENT_COLUMNS).where(events_table.c.incident_id == bindparam("key_incident_id")).where(
    events_table.c.seq > bindparam("after_seq")).order_by(events_table.c.seq)
_MOVE_HEAD = incidents_table.update().where(incidents_table.c.incident_id == bindparam("key_incident_id")).values(
    head_seq=bindparam("new_seq"), head_hash=bindparam("new_hash"))
_INSERT_INCIDENT = incidents_table.insert()
_INSERT_EVENTS = events_table.insert()
_LOCK_HOLDER = select(locks_table.c.action_id, locks_table.c.holder, locks_table.c.acquired_at).where(
    locks_table.c.model == bindparam("key_model"))
_INSERT_LOCK = locks_table.insert()
_DELETE_LOCK = locks_table.delete().where(locks_table.c.model == bindparam("key_model")).where(
    locks_table.c.action_id == bindparam("key_action_id"))

_RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def journal_url(url: str) -> URL:
    """Parse a journal URL: ``sqlite:///PATH``, or ``postgresql://...`` (driven by psycopg 3).

    Plain ``postgresql://`` and ``postgres://`` URLs are given the psycopg driver.

    Raises:
        ConfigError: for a malformed URL or an unsupported database (the URL is
            not echoed: a malformed one cannot be trusted to hide its password).
    """
    scheme = url.split("://", 1)[0] if "://" in url else ""
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a malformed port only fails when read
    except Exception:  # noqa: BLE001 - ArgumentError, ValueError: the URL is malformed either way
        raise ConfigError(
            f"journal.url: not a database URL (scheme {scheme or 'missing'!r}); expected sqlite:///PATH "
            "or postgresql://USER@HOST[:PORT]/DATABASE"
        ) from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else None
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError("journal.url: a SQLite journal needs a file path (sqlite:///PATH)")
        return parsed.set(database=str(Path(parsed.database).expanduser()))
    if backend in ("postgresql", "postgres"):
        if driver not in (None, "psycopg"):
            raise ConfigError(f"journal.url: driver {driver!r} is not supported; use postgresql:// (psycopg 3)")
        if not parsed.database:
            raise ConfigError("journal.url: a PostgreSQL journal URL must name the database (…/DATABASE)")
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigError(f"journal.url: {backend!r} databases are not supported; use sqlite:/// or postgresql://")


def display_url(url: URL) -> str:
    """A journal URL as a user would write it, without its password."""
    shown = url._replace(password=None)  # URL.set() treats None as "unchanged"
    if shown.get_backend_name() == "postgresql":
        shown = shown.set(drivername="postgresql")
    return shown.render_as_string(hide_password=True)


class SqlJournal:
    """A :class:`~console.adapters.protocols.Journal` on SQLite or PostgreSQL.

    Args:
        url: ``sqlite:///PATH`` or ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE``.
        busy_timeout_s: how long a writer waits for another one's lock.
        connect_timeout_s: how long to wait for a PostgreSQL server to answer.
        retries: how many times an append is retried after a conflict.
    """

    def __init__(self, url: str, busy_timeout_s: float = 30.0, connect_timeout_s: float = 5.0,
                 retries: int = 8) -> None:
        self.url = journal_url(url)
        self.dialect = "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"
        self.retries = retries
        self._password = self.url.password if isinstance(self.url.password, str) else None
        self._ready = False
        try:
            if self.dialect == "sqlite":
                self._engine = self._sqlite_engine(busy_timeout_s)
            else:
                self._engine = create_engine(
                    self.url, hide_parameters=True, pool_pre_ping=False,
                    connect_args={"connect_timeout": max(1, int(connect_timeout_s)), "application_name": "rewind"},
                )
        except (NoSuchModuleError, ImportError) as exc:
            raise ConfigError(f"journal.url: {self.describe()}: driver not available ({exc})") from None
        dialect = self._engine.dialect
        head = _HEAD_FOR_UPDATE if self.dialect == "postgresql" else _HEAD
        self._head_sql = _DriverStatement(head, dialect)
        self._insert_event_sql = _DriverStatement(_INSERT_EVENTS, dialect)
        self._move_head_sql = _DriverStatement(_MOVE_HEAD, dialect)
        self._lock_holder_sql = _DriverStatement(_LOCK_HOLDER, dialect)
        self._insert_lock_sql = _DriverStatement(_INSERT_LOCK, dialect)
        self._delete_lock_sql = _DriverStatement(_DELETE_LOCK, dialect)
        self._events_after_sql = _DriverStatement(_EVENTS_AFTER, dialect)

    # --- set-up -----------------------------------------------------------------------------

    def _sqlite_engine(self, busy_timeout_s: float) -> Engine:
        path = Path(self.url.database or "")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise JournalError(f"journal {path}: cannot be created ({exc.strerror})") from None
        engine = create_engine(self.url, hide_parameters=True, connect_args={"timeout": busy_timeout_s})
        busy_ms = int(busy_timeout_s * 1000)

        @event.listens_for(engine, "connect")
        def _configure(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI objects
            # Transactions are begun explicitly below, so the driver must not begin its own.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            # A writer takes the write lock before it reads the head: appends are serialised.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("rewind_write") else "BEGIN")

        return engine

    def describe(self) -> str:
        """Which database holds the journal (never with its password)."""
        if self.dialect == "sqlite":
            return f"SQLite journal {self.url.database}"
        return f"PostgreSQL journal {display_url(self.url)}"

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    def _scrub(self, message: str) -> str:
        if self._password:
            message = message.replace(self._password, "***")
        return message

    def _reason(self, exc: BaseException) -> str:
        original = getattr(exc, "orig", None) or exc
        lines = [line.strip() for line in str(original).splitlines() if line.strip()]
        return self._scrub(lines[0] if lines else original.__class__.__name__)

    @contextmanager
    def _errors(self, doing: str, reraise: type[BaseException] | None = None) -> Iterator[None]:
        """Turn database errors into one clear :class:`JournalError` line (``reraise``: left to the caller)."""
        try:
            yield
        except SQLAlchemyError as exc:
            if reraise is not None and isinstance(exc, reraise):
                raise
            raise JournalError(f"{self.describe()}: {doing} failed: {self._reason(exc)}") from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(rewind_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _snapshot(self) -> Iterator[Connection]:
        """A read transaction that sees one consistent state of the journal."""
        with self._engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        # Several consoles may meet a brand-new SQLite file at once; switching it to WAL
        # and creating the tables can meet SQLITE_BUSY outside the busy handler's reach.
        for attempt in range(self.retries + 1):
            try:
                return self._prepare_schema()
            except DBAPIError as exc:
                if attempt == self.retries or not self._retryable(exc):
                    raise JournalError(f"{self.describe()}: preparing the journal tables failed: "
                                       f"{self._reason(exc)}") from None
            time.sleep(min(0.5, 0.01 * 2 ** attempt) * random.uniform(0.5, 1.5))

    def _prepare_schema(self) -> None:
        with self._errors("preparing the journal tables", reraise=DBAPIError):
            present = inspect(self._engine)
            if not (present.has_table(meta_table.name) and present.has_table(locks_table.name)):
                with self._write() as conn:
                    if self.dialect == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                    existed = inspect(conn).has_table(events_table.name)
                    metadata.create_all(conn)
                    if not existed:  # a new journal starts at the latest revision
                        for statement in _APPEND_ONLY[self.dialect]:
                            conn.exec_driver_sql(statement)
                        self._add_revision_2(conn)
                        conn.execute(meta_table.insert(), {"key": "schema_revision", "value": str(SCHEMA_REVISION)})
                    if _meta(conn, "schema_version") is None:
                        conn.execute(meta_table.insert(), {"key": "schema_version", "value": str(SCHEMA_VERSION)})
            with self._engine.connect() as conn:
                version, revision = _meta(conn, "schema_version"), _meta(conn, "schema_revision")
        if version is not None and int(version) > SCHEMA_VERSION:
            raise JournalError(f"{self.describe()}: schema version {version} is newer than this Rewind "
                               f"understands ({SCHEMA_VERSION}); upgrade Rewind")
        if int(revision or 1) < SCHEMA_REVISION:
            self._upgrade()
        self._ready = True

    def _upgrade(self) -> None:
        """Bring a journal made by an older Rewind to :data:`SCHEMA_REVISION`, once, under the write lock."""
        with self._errors("upgrading the journal tables", reraise=DBAPIError), self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            recorded = _meta(conn, "schema_revision")
            revision = int(recorded or 1)
            if revision >= SCHEMA_REVISION:
                return  # another console upgraded it meanwhile
            if revision < 2:
                self._add_revision_2(conn)
            if recorded is None:
                conn.execute(meta_table.insert(), {"key": "schema_revision", "value": str(SCHEMA_REVISION)})
            else:
                conn.execute(meta_table.update().where(meta_table.c.key == "schema_revision"),
                             {"value": str(SCHEMA_REVISION)})

    def _add_revision_2(self, conn: Connection) -> None:
        """The index for the lookups across every incident; on PostgreSQL, the head-move NOTIFY trigger."""
        for index in events_table.indexes:
            index.create(conn, checkfirst=True)
        if self.dialect == "postgresql":
            for statement in _NOTIFY_HEAD:
                conn.exec_driver_sql(statement)

    # --- writing -----------------------------------------------------------------------------

    def append(self, incident_id: str, drafts: Sequence[EventDraft], new_incident: bool = False,
               lock: LockChange | None = None) -> list[Event]:
        """Seal ``drafts`` after the incident's last event and commit them, all or none.

        With ``lock``, the model's action lock is taken (before the events) or
        released (after them) in the same transaction.

        Raises:
            ConflictError: ``new_incident`` and the incident already exists.
            NotFoundError: not ``new_incident`` and the incident does not exist.
            JournalError: the database failed, or stayed busy through every retry.
        """
        if not drafts:
            return []
        self._ensure_schema()
        key = {"key_incident_id": incident_id}
        last_error: BaseException | None = None
        for attempt in range(self.retries + 1):
            try:
                with self._write() as conn:
                    head = self._head_sql.execute(conn, key).first()
                    if new_incident:
                        if head is not None:
                            raise ConflictError(f"incident {incident_id} already exists in the {self.describe()}")
                        conn.execute(_INSERT_INCIDENT, {
                            "incident_id": incident_id, "created_at": drafts[0].ts,
                            "head_seq": 0, "head_hash": GENESIS_HASH})
                        last_seq, last_hash = 0, GENESIS_HASH
                    elif head is None:
                        raise NotFoundError(f"no incident {incident_id} in the {self.describe()}")
                    else:
                        last_seq, last_hash = int(head[0]), head[1]
                    if lock is not None and lock.take:
                        self._take_lock(conn, lock)
                    sealed = seal_chain(drafts, last_seq, last_hash)
                    self._insert_event_sql.execute_many(conn, [_row(e) for e in sealed])
                    self._move_head_sql.execute(conn, {"key_incident_id": incident_id, "new_seq": sealed[-1].seq,
                                                       "new_hash": sealed[-1].hash})
                    if lock is not None and not lock.take:
                        self._delete_lock_sql.execute(conn, {"key_model": lock.model, "key_action_id": lock.action_id})
                return sealed
            except IntegrityError as exc:
                if new_incident:
                    raise ConflictError(f"incident {incident_id} already exists in the {self.describe()}") from None
                last_error = exc
            except DBAPIError as exc:
                if not self._retryable(exc):
                    raise JournalError(f"{self.describe()}: appending to incident {incident_id} failed: "
                                       f"{self._reason(exc)}") from None
                last_error = exc
            except SQLAlchemyError as exc:
                raise JournalError(f"{self.describe()}: appending to incident {incident_id} failed: "
                                   f"{self._reason(exc)}") from None
            time.sleep(min(0.5, 0.005 * 2 ** attempt) * random.uniform(0.5, 1.5))
        raise JournalError(f"{self.describe()}: appending to incident {incident_id} failed after "
                           f"{self.retries + 1} attempts: {self._reason(last_error) if last_error else 'busy'}")

    def _take_lock(self, conn: Connection, lock: LockChange) -> None:
        """Insert the model's lock row in ``conn``'s transaction, or raise LockHeldError naming the holder.

        A concurrent insert of the same model fails on the primary key
        (IntegrityError), which the caller's retry turns into a fresh read.
        """
        row = self._lock_holder_sql.execute(conn, {"key_model": lock.model}).first()
        if row is not None:
            action_id, holder, acquired_at = row
            if action_id == lock.action_id:
                return
            raise LockHeldError(f"action {action_id} by {holder} since {acquired_at}")
        self._insert_lock_sql.execute(conn, {"model": lock.model, "action_id": lock.action_id,
                                             "holder": lock.holder, "acquired_at": format_ts(time.time())})

    def _retryable(self, exc: DBAPIError) -> bool:
        if exc.connection_invalidated:
            return False
        original = exc.orig
        if self.dialect == "sqlite":
            message = str(original).lower()
            return "locked" in message or "busy" in message
        return getattr(original, "sqlstate", None) in _RETRYABLE_SQLSTATES

    def import_incident(self, events: Sequence[Event]) -> IncidentHead:
        """Store an already-sealed incident whole, in one transaction.

        Raises:
            ConflictError: the incident is already in the journal (nothing is written).
        """
        if not events:
            raise ValueError("nothing to import")
        self._ensure_schema()
        incident_id = events[0].incident_id
        head = IncidentHead(incident_id, events[-1].seq, events[-1].hash, events[0].ts)
        with self._errors(f"importing incident {incident_id}"):
            try:
                with self._write() as conn:
                    exists = conn.execute(select(incidents_table.c.incident_id).where(
                        incidents_table.c.incident_id == incident_id)).first()
                    if exists is not None:
                        raise ConflictError(f"incident {incident_id} is already in the {self.describe()}; "
                                            "nothing was imported")
                    conn.execute(incidents_table.insert(), {
                        "incident_id": incident_id, "created_at": head.created_at,
                        "head_seq": head.seq, "head_hash": head.hash})
                    for start in range(0, len(events), _CHUNK):
                        conn.execute(events_table.insert(), [_row(e) for e in events[start:start + _CHUNK]])
            except IntegrityError as exc:
                raise ConflictError(f"incident {incident_id}: the import conflicts with the {self.describe()} "
                                    f"({self._reason(exc)}); nothing was imported") from None
        return head

    # --- reading -----------------------------------------------------------------------------

    def incidents(self) -> list[IncidentHead]:
        """Every incident's head, oldest first; events without a head show with ``seq`` -1."""
        self._ensure_schema()
        with self._errors("listing incidents"), self._snapshot() as conn:
            heads = [IncidentHead(r[0], int(r[1]), r[2], r[3]) for r in conn.execute(
                select(incidents_table.c.incident_id, incidents_table.c.head_seq, incidents_table.c.head_hash,
                       incidents_table.c.created_at)
                .order_by(incidents_table.c.created_at, incidents_table.c.incident_id))]
            orphans = conn.execute(
                select(events_table.c.incident_id, func.min(events_table.c.ts))
                .where(events_table.c.incident_id.not_in(select(incidents_table.c.incident_id)))
                .group_by(events_table.c.incident_id)).all()
        heads.extend(IncidentHead(r[0], -1, "", r[1]) for r in orphans)
        return heads

    def read_chain(self, incident_id: str) -> tuple[IncidentHead, list[Event]]:
        """An incident's head and its events in sequence order, from one snapshot.

        Raises:
            NotFoundError: the journal has no such incident.
        """
        self._ensure_schema()
        with self._errors(f"reading incident {incident_id}"), self._snapshot() as conn, gc_paused():
            head_row = conn.execute(
                select(incidents_table.c.head_seq, incidents_table.c.head_hash, incidents_table.c.created_at)
                .where(incidents_table.c.incident_id == incident_id)).first()
            actors: dict[tuple, Actor] = {}
            events = [_event(row, actors) for row in conn.execute(
                select(*_EVENT_COLUMNS).where(events_table.c.incident_id == incident_id)
                .order_by(events_table.c.seq))]
        if head_row is None:
            if not events:
                raise NotFoundError(f"no incident {incident_id} in the {self.describe()}")
            return IncidentHead(incident_id, -1, "", events[0].ts), events
        return IncidentHead(incident_id, int(head_row[0]), head_row[1], head_row[2]), events

    def read_chains(self, opened_since: str | None = None) -> list[tuple[IncidentHead, list[Event]]]:
        """Every incident's head and events (those opened at or after ``opened_since`` only, when given).

        Two queries from one snapshot, however many incidents: statistics over a thousand
        incidents must not pay a query (and a transaction) per incident. They run as driver
        SQL (compiled once per call), which reads rows several times faster than Core's result
        processing. Incidents come oldest first, as :meth:`incidents` lists them; events without
        a head (only tampering makes them) come last, with ``seq`` -1, whatever ``opened_since``.
        """
        self._ensure_schema()
        heads_query = select(incidents_table.c.incident_id, incidents_table.c.head_seq, incidents_table.c.head_hash,
                             incidents_table.c.created_at)
        events_query = select(*_EVENT_COLUMNS)
        if opened_since is not None:
            since = bindparam("opened_since")
            heads_query = heads_query.where(incidents_table.c.created_at >= since)
            events_query = events_query.where(
                events_table.c.incident_id.in_(select(incidents_table.c.incident_id)
                                               .where(incidents_table.c.created_at >= since))
                | events_table.c.incident_id.not_in(select(incidents_table.c.incident_id)))
        heads_sql = _DriverStatement(heads_query.order_by(incidents_table.c.created_at, incidents_table.c.incident_id),
                                     self._engine.dialect)
        events_sql = _DriverStatement(events_query.order_by(events_table.c.incident_id, events_table.c.seq),
                                      self._engine.dialect)
        values = {} if opened_since is None else {"opened_since": opened_since}
        actors: dict[tuple, Actor] = {}
        by_incident: dict[str, list[Event]] = {}
        with self._errors("reading the incidents"), self._snapshot() as conn, gc_paused():
            heads = [IncidentHead(r[0], int(r[1]), r[2], r[3]) for r in heads_sql.execute(conn, values)]
            for row in events_sql.execute(conn, values):
                event = _event(row, actors)
                listed = by_incident.get(event.incident_id)
                if listed is None:
                    listed = by_incident[event.incident_id] = []
                listed.append(event)
        chains = [(head, by_incident.pop(head.incident_id, [])) for head in heads]
        chains.extend((IncidentHead(incident_id, -1, "", events[0].ts), events)
                      for incident_id, events in by_incident.items())
        return chains

    def events(self, incident_id: str, kinds: Collection[EventKind] | None = None) -> Iterator[Event]:
        """An incident's events (of ``kinds`` only, when given) in sequence order, streamed."""
        self._ensure_schema()
        query = select(*_EVENT_COLUMNS).where(events_table.c.incident_id == incident_id)
        if kinds:
            query = query.where(events_table.c.kind.in_(sorted(str(k) for k in kinds)))
        query = query.order_by(events_table.c.seq)
        actors: dict[tuple, Actor] = {}
        with self._errors(f"reading incident {incident_id}"), self._snapshot() as conn:
            for row in conn.execution_options(yield_per=_CHUNK).execute(query):
                yield _event(row, actors)

    def events_after(self, incident_id: str, after_seq: int) -> list[Event]:
        """An incident's events with sequence numbers above ``after_seq``, in order: a follower's catch-up.

        One range read on the primary key, however long the incident already is.
        """
        self._ensure_schema()
        actors: dict[tuple, Actor] = {}
        with self._errors(f"reading incident {incident_id}"), self._snapshot() as conn:
            return [_event(row, actors) for row in self._events_after_sql.execute(
                conn, {"key_incident_id": incident_id, "after_seq": after_seq})]

    def watch(self) -> PgJournalWatch | None:
        """A LISTEN on every head move (PostgreSQL), or ``None`` on SQLite, which cannot announce them.

        No I/O here: the watch connects when first waited on.
        """
        return PgJournalWatch(self) if self.dialect == "postgresql" else None

    def find_events(self, kinds: Collection[EventKind], containing: str | None = None) -> list[Event]:
        """Every event of ``kinds`` in every incident (those whose payload's canonical JSON holds ``containing``
        only, when given), by incident and sequence number.

        One query, however many incidents. ``containing`` narrows the rows with a LIKE (ASCII
        case-insensitive on SQLite); only exact, case-sensitive matches are kept.
        """
        self._ensure_schema()
        query = select(*_EVENT_COLUMNS).where(events_table.c.kind.in_(sorted(str(k) for k in kinds)))
        if containing is not None:
            query = query.where(events_table.c.payload.contains(containing, autoescape=True))
        query = query.order_by(events_table.c.incident_id, events_table.c.seq)
        actors: dict[tuple, Actor] = {}
        with self._errors("searching the events"), self._snapshot() as conn:
            found = [_event(row, actors) for row in conn.execute(query)]
        return found if containing is None else [event for event in found if containing in event.payload_json]


class PgJournalWatch:
    """Hears the head moves of a PostgreSQL journal (LISTEN on :data:`NOTIFY_CHANNEL`), on a connection of its own.

    A dropped connection (server restarted, network cut, backend terminated) is noticed
    by the next wait, which reports the error; the wait after that reconnects (after a
    short back-off while it keeps failing) and reports ``resync``, since NOTIFY is never
    replayed: what was committed in between is read by sequence number. TCP keepalives
    notice a silent network within about 25 s. One thread waits on a watch and closes it.
    """

    BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)
    """Pauses between failed reconnections, the last one repeated."""

    def __init__(self, journal: SqlJournal, connect_timeout_s: float = 5.0) -> None:
        self.journal = journal
        self.connect_timeout_s = connect_timeout_s
        self._conninfo = journal.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None
        self._failures = 0
        self._retry_at = 0.0
        self._error: str | None = None

    def wait(self, timeout: float) -> JournalNews:
        """See :meth:`console.adapters.protocols.JournalWatch.wait`."""
        import psycopg

        deadline = time.monotonic() + max(0.0, timeout)
        if self._conn is None:
            pause = self._retry_at - time.monotonic()
            if pause > 0:
                time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
                if time.monotonic() < self._retry_at:
                    return JournalNews(error=self._error)
            try:
                self._conn = self._connect()
            except (psycopg.Error, OSError) as exc:
                self._failed(exc)
                return JournalNews(error=self._error)
            self._failures, self._error = 0, None
            return JournalNews(resync=True)
        heads: dict[str, int] = {}
        try:
            for note in self._conn.notifies(timeout=max(0.0, deadline - time.monotonic()), stop_after=1):
                _heard(heads, note.payload)
            if heads:  # and whatever else is already here, without waiting
                for note in self._conn.notifies(timeout=0.0):
                    _heard(heads, note.payload)
        except (psycopg.Error, OSError) as exc:
            self._drop()
            self._error = f"{self.journal.describe()}: listening for new events failed: {self.journal._reason(exc)}"
            return JournalNews(error=self._error)  # the next wait reconnects at once
        return JournalNews(heads)

    def _connect(self) -> Any:  # noqa: ANN401 - a psycopg Connection, imported lazily
        import psycopg

        conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)),
                               application_name="rewind-watch", keepalives=1, keepalives_idle=10,
                               keepalives_interval=5, keepalives_count=3)
        try:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self.BACKOFF_S[min(self._failures, len(self.BACKOFF_S) - 1)]
        self._failures += 1
        self._error = f"{self.journal.describe()}: cannot listen for new events: {self.journal._reason(exc)}"

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - the connection is gone either way
                pass

    def close(self) -> None:
        """Stop listening and release the connection."""
        self._drop()


def _heard(heads: dict[str, int], payload: str) -> None:
    incident_id, _, seq = payload.rpartition(" ")
    if incident_id and seq.isdigit():
        heads[incident_id] = max(heads.get(incident_id, 0), int(seq))


class _DriverStatement:
    """A Core statement compiled once for the engine's dialect and run as driver SQL.

    The append path runs three statements per event; skipping SQLAlchemy's
    per-call compilation and parameter processing there roughly halves its
    overhead, so an append costs little more than its commit.
    """

    def __init__(self, statement, dialect) -> None:  # noqa: ANN001 - a Core statement and a Dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = compiled.positiontup  # None for named parameter styles

    def _params(self, values: dict) -> tuple | dict:
        return values if self.order is None else tuple(values[name] for name in self.order)

    def execute(self, conn: Connection, values: dict):  # noqa: ANN201 - a CursorResult
        return conn.exec_driver_sql(self.sql, self._params(values))

    def execute_many(self, conn: Connection, rows: list[dict]) -> None:
        if len(rows) == 1:
            conn.exec_driver_sql(self.sql, self._params(rows[0]))
        else:
            conn.exec_driver_sql(self.sql, [self._params(r) for r in rows])


def _meta(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar()
    return value


def _row(event: Event) -> dict:
    return {
        "incident_id": event.incident_id, "seq": event.seq, "ts": event.ts,
        "actor_user": event.actor.user, "actor_host": event.actor.host, "actor_ssh": event.actor.ssh_client,
        "kind": str(event.kind), "payload": event.payload_json, "prev_hash": event.prev_hash, "hash": event.hash,
    }


def _event(row: Sequence, actors: dict[tuple, Actor]) -> Event:
    incident_id, seq, ts, user, host, ssh, kind, payload, prev_hash, digest = row
    key = (user, host, ssh)
    actor = actors.get(key)
    if actor is None:
        actor = actors[key] = Actor(user, host, ssh)
    return Event(incident_id, int(seq), ts, actor, parse_kind(kind), payload, prev_hash, digest)


class SqlActionLock:
    """The per-model action lock (:class:`~console.adapters.protocols.ActionLock`), beside the journal.

    Kept in the journal's database so that consoles on several machines sharing a
    PostgreSQL journal see each other's actions; the primary key on the model
    makes taking it atomic. It is taken and released by :meth:`SqlJournal.append`
    together with an action's intent and outcome; this class reads it, and lets
    recovery release a lock whose console died.
    """

    def __init__(self, journal: SqlJournal) -> None:
        self.journal = journal

    def release(self, model: str, action_id: str) -> None:
        """Give the lock back, if ``action_id`` holds it."""
        journal = self.journal
        journal._ensure_schema()
        with journal._errors(f"releasing the lock on {model}"), journal._write() as conn:
            journal._delete_lock_sql.execute(conn, {"key_model": model, "key_action_id": action_id})

    def holder(self, model: str) -> tuple[str, str] | None:
        """``(action_id, holder)`` of the model's lock, or ``None`` when free."""
        journal = self.journal
        journal._ensure_schema()
        with journal._errors(f"reading the lock on {model}"), journal._snapshot() as conn:
            row = journal._lock_holder_sql.execute(conn, {"key_model": model}).first()
        return None if row is None else (row[0], row[1])

    def held(self) -> list[tuple[str, str, str]]:
        """Every lock held now: ``(model, action_id, holder)``."""
        journal = self.journal
        journal._ensure_schema()
        with journal._errors("reading the action locks"), journal._snapshot() as conn:
            rows = conn.execute(select(locks_table.c.model, locks_table.c.action_id, locks_table.c.holder)).all()
        return [(row.model, row.action_id, row.holder) for row in rows]
