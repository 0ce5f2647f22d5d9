"""The SQLAlchemy store: SQLite (the embedded default) and PostgreSQL (many workers).

SQLAlchemy Core, except ``load`` and ``append`` on SQLite with the standard library's
driver, which run SQL compiled from the same Core statements on the DBAPI connection
(``adapters.sqlite_hot``, docs/decisions/0011). Loaded and written snapshots are kept in
a ``SnapshotCache``, always checked against the database; a snapshot's JSON is written
from the case's last one, field by field (``adapters.snapshot_json``, decision 0015).

One step is one transaction: the events, the snapshot, the case's deadlines and the
idempotency key commit together or not at all. The case's version guards every write
(optimistic concurrency). Driver errors become ``StoreError`` subclasses in one place,
``_translated``.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed step survives a crash of
the process and a power cut; ``durability="normal"`` gives ``synchronous=NORMAL``, about
a third faster, with which a power cut may lose the last committed steps, never half of
one: docs/decisions/0045), foreign keys on, and every write
transaction taking the write lock at its start (``BEGIN IMMEDIATE``), so two writers
never deadlock on a lock upgrade.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import time
import weakref
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
from typing import Any, Literal, TypeGuard

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    exc,
    insert,
    inspect,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy import column as sql_column
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql import ClauseElement

from adapters.memory import CLAIM_LEASE, check_append, check_unchanged, event_data_text
from adapters.snapshot_cache import DEFAULT_SIZE, SnapshotCache
from adapters.snapshot_json import SnapshotJson
from adapters.sql_schema import SCHEMA_REVISION, Tables, build_tables
from adapters.sqlite_hot import BEGIN, BY_CASE_ID, SqliteHotPath
from adapters.urls import shown_url as shown_url
from workflow.checklist import FINAL_STATES
from workflow.domain import MAX_ASSIGNEE, Case, read_snapshot
from workflow.errors import (
    CaseNotFound,
    ComplaintflowError,
    ConcurrencyConflict,
    SchemaVersionError,
    SnapshotUnreadable,
    StoreError,
    StoreMisconfigured,
    StoreUnavailable,
)
from workflow.events import Event, format_at
from workflow.query import (
    NUL,
    AtRisk,
    CaseAtRisk,
    CaseQuery,
    Listed,
    Position,
    UnreadableAtRisk,
    UnreadableCase,
)
from workflow.sla import Deadline
from workflow.store import StoredEvent, StoredHistory, Tombstone


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """The one place driver errors become complaintflow's (``raise ... from``)."""
    try:
        yield
    except ComplaintflowError:
        raise
    except (exc.SQLAlchemyError, sqlite3.Error) as error:
        raise _store_error(what, error) from error


def _store_error(what: str, error: exc.SQLAlchemyError | sqlite3.Error) -> StoreError:
    """What ``_translated`` raises for a driver error (the hot path, which runs on every
    step, catches them itself rather than entering a context manager)."""
    if isinstance(error, exc.OperationalError):
        return _operational(what, error.orig)
    if isinstance(error, exc.DBAPIError):
        return StoreError(f"{what}: the database refused it: {_primary(error.orig)}")
    if isinstance(error, exc.SQLAlchemyError):  # SQLite's URL forms follow, one a line
        return StoreError(f"{what}: {_primary(error)}")
    # The SQLite hot path (adapters.sqlite_hot) meets the driver's errors unwrapped.
    if isinstance(error, sqlite3.OperationalError):
        return _operational(what, error)
    return StoreError(f"{what}: the database refused it: {_primary(error)}")


def _primary(driver_error: BaseException | None) -> str:
    """The driver's message without what follows its first line: PostgreSQL adds
    ``DETAIL: Failing row contains (...)`` to a refused row, quoting its values (the
    snapshot, personal values and all), which no message that gets logged may carry.
    The whole driver error stays the ``__cause__``."""
    return str(driver_error).split("\n", 1)[0].rstrip()


@contextmanager
def _driver_named(url: str) -> Iterator[None]:
    """A URL naming a database driver that is not installed (``postgresql+psycopg2://``
    copied from another application): a ``StoreError`` naming it and the URL to give,
    not the ``ModuleNotFoundError`` SQLAlchemy lets through."""
    try:
        yield
    except ImportError as error:
        missing = error.name or str(error)
        raise StoreError(
            f"{shown_url(url)} names the database driver {missing!r}, which is not "
            "installed here: complaintflow ships with psycopg 3 for PostgreSQL "
            "(postgresql+psycopg://user@host/db; `pip install 'complaintflow[postgres]'`) "
            "and the standard library's sqlite3 (sqlite:///cases.db)"
        ) from error


def _require_sqlite_file(
    url: str, *, create: bool = False, prefix: str = "cf_", schema: str | None = None
) -> None:
    """Opening a SQLite file that is not there would create an empty one (a mistyped path
    would leave a stray database behind): refused unless asked to ``create``. A path
    that is a directory, or (to create) in a folder that does not exist, is refused
    naming it: SQLite would only say "unable to open database file"."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        return  # create_engine says what is wrong with it
    except ValueError as error:  # a port that is no number, an unclosed "[": no traceback
        raise StoreError(
            f"{shown_url(url)} is not a database URL: {error} (give one such as "
            "sqlite:///cases.db or postgresql+psycopg://user@host:5432/db)"
        ) from error
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
        or parsed.query.get("uri")
    ):
        return
    shown = shown_url(url)  # pysqlcipher's URL holds the key where a password goes
    if os.path.isdir(database):
        raise StoreError(f"{shown}: {database} is a directory, not a SQLite database file")
    folder = os.path.dirname(os.path.abspath(database))
    if create and not os.path.isdir(folder):
        raise StoreError(f"{shown}: there is no folder {folder} to create the database in")
    if not create and not os.path.exists(database):
        if attached_schema(schema):  # no command can attach it: only the embedder
            raise SchemaVersionError(
                f"{shown} has no complaintflow tables: there is no file {database}; "
                f"create them with open_store(url, schema={schema!r}, create=True) on "
                "connections that ATTACH the schema's database (engine_options' creator: "
                "docs/embedding.md)"
            )
        raise SchemaVersionError(
            f"{shown} has no complaintflow tables: there is no file {database}; "
            f"run `{schema_command('init', url, prefix, schema)}`"
        )


#: SQLite's extended result codes for a unique or primary key constraint.
_SQLITE_DUPLICATE = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
#: PostgreSQL's SQLSTATE for unique_violation.
_PG_DUPLICATE = "23505"


def _is_duplicate(error: exc.IntegrityError | sqlite3.IntegrityError) -> bool:
    """Whether an integrity error is a unique or primary key violation (what a race to
    create the same row gives), not another constraint refusing the row."""
    driver: Any = error.orig if isinstance(error, exc.IntegrityError) else error
    name = getattr(driver, "sqlite_errorname", None)
    if name is not None:
        return name in _SQLITE_DUPLICATE
    if isinstance(driver, sqlite3.IntegrityError):  # an SQLite without extended codes
        return str(driver).startswith("UNIQUE constraint failed")
    # psycopg 3 says ``sqlstate``, psycopg2 ``pgcode``.
    return _PG_DUPLICATE in (getattr(driver, "sqlstate", None), getattr(driver, "pgcode", None))


#: PostgreSQL's SQLSTATEs for a transaction the server ended to settle a race between
#: writers: serialization_failure (under REPEATABLE READ or SERIALIZABLE, a row changed
#: by a transaction committed since this one's snapshot, or a commit that would break
#: serializability) and deadlock_detected. The server rolled it back: nothing written.
_PG_RACE_LOST = frozenset({"40001", "40P01"})


def _race_lost(error: exc.OperationalError) -> bool:
    """Whether the server ended the transaction to settle a race (``_PG_RACE_LOST``)."""
    driver = error.orig
    return any(getattr(driver, code, None) in _PG_RACE_LOST for code in ("sqlstate", "pgcode"))


#: How long a scrub waits for other connections to finish reading, in milliseconds.
SCRUB_WAIT_MS = 5000


#: PostgreSQL's SQLSTATE for lock_not_available (``lock_timeout`` passed).
_PG_LOCK_TIMEOUT = "55P03"


def _scrub_blocked(again: str) -> StoreUnavailable:
    """A PostgreSQL scrub kept from a table; ``again`` is the command to run it again."""
    return StoreUnavailable(
        "scrubbing the database: another connection's transaction, begun before the scrub, "
        f"was still open after {SCRUB_WAIT_MS / 1000:g} seconds (it may see old row "
        "versions, or holds a table the scrub rewrites), so old row versions may remain; "
        f"the erasure or purge itself is committed. Run `{again}` when no other connection "
        "is in a long transaction."
    )


#: Other sessions of this database whose transaction began before ``:since`` and holds
#: a snapshot or a transaction id (either keeps ``VACUUM`` from dropping row versions
#: replaced after it; autovacuum's own do not).
_OLDER_TRANSACTIONS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() "
    "AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL) "
    "AND backend_type <> 'autovacuum worker' AND xact_start < :since"
)


def _wait_for_older_transactions(conn: Connection, again: str) -> None:
    """Wait (up to ``SCRUB_WAIT_MS``) until no other session of this database is in a
    transaction that began before now: one that is could still see the row versions an
    erasure or purge replaced, and ``VACUUM FULL`` would keep them."""
    since = conn.exec_driver_sql("SELECT clock_timestamp()").scalar()
    give_up = time.monotonic() + SCRUB_WAIT_MS / 1000
    while conn.execute(_OLDER_TRANSACTIONS, {"since": since}).scalar():
        if time.monotonic() >= give_up:
            raise _scrub_blocked(again)
        time.sleep(0.05)


#: How long a step whose commit lost its connection waits for the server to end the
#: transaction it held (committed or rolled back), in milliseconds.
LOST_COMMIT_WAIT_MS = 5000

#: Whether the server process ``:pid`` (another session than this one) may still be in
#: a transaction: it is there, and not idle or in a transaction already aborted. Its
#: state turns ``idle`` only once its COMMIT is done and visible.
_SESSION_IN_TRANSACTION = text(
    "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND pid <> pg_backend_pid() "
    "AND state IS DISTINCT FROM 'idle' "
    "AND state IS DISTINCT FROM 'idle in transaction (aborted)'"
)


def _server_process(conn: Connection) -> int | None:
    """The PostgreSQL server process ``conn`` talks to, as its driver knows it without
    asking the server (psycopg 3 and psycopg2); None for another driver."""
    driver: Any = conn.connection.dbapi_connection
    pid = getattr(getattr(driver, "info", None), "backend_pid", None)  # psycopg 3
    if pid is None and callable(get := getattr(driver, "get_backend_pid", None)):  # psycopg2
        pid = get()
    return pid if isinstance(pid, int) else None


class _CommitFailed(Exception):
    """``_append``'s commit failed with ``error`` (an ``OperationalError``): the server may
    have committed. ``process`` is the PostgreSQL server process that held the
    transaction (None if not known, and on SQLite)."""

    def __init__(self, error: exc.OperationalError, process: int | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.process = process


def _checkpoint(driver: Any, again: str) -> None:
    """Copy the whole WAL into the database file and truncate it; raise if another
    connection's read kept part of it (its old page images would stay readable).
    ``again`` is the command to run the scrub again."""
    busy, log, done = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy or (log != -1 and done != log):
        raise StoreUnavailable(
            "scrubbing the database: another connection is still reading, so the WAL "
            "could not be emptied and old row versions may remain in it; the erasure or "
            f"purge itself is committed. Run `{again}` when no other connection is "
            "reading."
        )


def _operational(what: str, driver_error: BaseException | None) -> StoreError:
    """SQLite reports missing tables and columns as operational errors too: those are
    not worth a retry, they need the schema command. So is a connection PostgreSQL
    refused for good (``_refused_for_good``)."""
    message = _primary(driver_error)  # libpq adds indented hints on further lines
    if message.startswith(("no such table", "no such column")):
        return SchemaVersionError(
            f"{what}: {message}: the tables are missing or at another revision; run "
            "`complaintflow db upgrade URL` (or `db init` for an empty database)"
        )
    attempts = _attempts(driver_error)
    if attempts:
        # A connection that failed: said as its last attempt (libpq's without SSL).
        message = _last_attempt(attempts)
        advice = _refused_for_good(attempts)
        if advice is not None:
            return StoreMisconfigured(
                f"{what}: the database refused the connection (a retry will not help): "
                f"{message}; {advice}"
            )
    return StoreUnavailable(f"{what}: the database is unavailable or busy: {message}")


#: A connection PostgreSQL (or libpq) refuses for a reason no retry mends, as their
#: messages say it, with what must change. libpq gives no SQLSTATE for an error at
#: connection time (the server sends one; libpq keeps only the text: psycopg/psycopg#1188),
#: so the text is all there is. A server whose messages are in another language
#: (``lc_messages``) is not recognised: its refusals stay ``StoreUnavailable``, as before.
_REFUSALS = tuple(
    (re.compile(pattern), advice)
    for pattern, advice in (
        (
            r'FATAL:  password authentication failed for user "',
            "give the user's password in the URL (user:password@host), or in PGPASSWORD "
            "or ~/.pgpass",
        ),
        (
            r"fe_sendauth: no password supplied",
            "the server asks for a password: give it in the URL (user:password@host), or "
            "in PGPASSWORD or ~/.pgpass",
        ),
        (
            r'FATAL:  database ".*" does not exist$',
            "create the database, or correct its name in the URL",
        ),
        (
            r'FATAL:  role ".*" does not exist$',
            "correct the user name in the URL, or create the role",
        ),
        (
            r"FATAL:  no pg_hba\.conf entry for ",
            "the server's pg_hba.conf has no line letting this user connect to this "
            "database from this host: its administrator must add one",
        ),
        (
            r"FATAL:  pg_hba\.conf rejects connection for ",
            "the server's pg_hba.conf rejects this user, database and host: connect as "
            "another user, or have its administrator change it",
        ),
        (
            r'FATAL:  role ".*" is not permitted to log in$',
            "the role may not log in: give another user in the URL, or ALTER ROLE ... LOGIN",
        ),
        (
            r'FATAL:  permission denied for database ".*"$',
            "the user may not connect to this database: GRANT CONNECT ON DATABASE ... TO it",
        ),
    )
)


#: Lines of a connection error that report no attempt of their own: libpq's indented
#: hints, the server's DETAIL and HINT, psycopg's heading over several hosts' failures.
_NOT_AN_ATTEMPT = ("\t", " ", "DETAIL:  ", "HINT:  ", "Multiple connection attempts failed")


def _attempts(driver_error: BaseException | None) -> list[str] | None:
    """The lines of a failed connection's error that report an attempt each; None for
    an error with an SQLSTATE (every error the server sends inside a session has one).
    libpq tries again without SSL (``sslmode=prefer``, its default) or GSS encryption,
    or at a host's next address, adding a line each; psycopg 3 lists each host's
    failure after the last host's (``- host: ...``)."""
    if driver_error is None or any(
        getattr(driver_error, code, None) for code in ("sqlstate", "pgcode")
    ):
        return None
    lines = str(driver_error).splitlines()
    return [line for line in lines if line and not line.startswith(_NOT_AN_ATTEMPT)]


def _last_attempt(attempts: list[str]) -> str:
    """The last host's last attempt (its attempts come first, before psycopg's list of
    every host's): the one without SSL, whose reason is the one that counts (a server
    whose ``pg_hba.conf`` has only ``hostnossl`` lines refuses every SSL attempt,
    whatever else is wrong)."""
    hosts = next((i for i, line in enumerate(attempts) if line.startswith("- host:")), None)
    return attempts[(len(attempts) if hosts is None else hosts) - 1]


def _refused_for_good(attempts: list[str]) -> str | None:
    """What must change for a connection the server refused for good to succeed
    (``_REFUSALS``, for ``_last_attempt``); None for anything else, a server that is
    down, starting, stopping or full among them. Every attempt must have been refused
    so: a retry may pass where one failed for another reason (a host that was down, a
    connection limit met on the attempt without SSL)."""
    advice = [
        next((advice for pattern, advice in _REFUSALS if pattern.search(line)), None)
        for line in attempts
    ]
    if not advice or None in advice:
        return None
    return advice[attempts.index(_last_attempt(attempts))]


def _sqlite_setup(engine: Engine, synchronous: str, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    if immediate:

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql(BEGIN)


def no_schema(url: str, dialect: Dialect, prefix: str, schema: str) -> StoreError:
    """The error for tables asked for in a ``schema`` the database at ``url`` does not
    have (on SQLite: no database is attached under that name). complaintflow does not
    create schemas (``db init`` neither): a mistyped one would get a second, empty set
    of tables, and the schema its owner and privileges (decision 0055)."""
    shown = shown_url(url)
    if dialect.name == "sqlite":
        return StoreError(
            f"{shown} has no schema {schema!r}: on SQLite a schema is a database attached "
            "to each connection (ATTACH DATABASE, through engine_options' creator: "
            "docs/embedding.md); leave the schema out for the file's own tables"
        )
    create = f"CREATE SCHEMA {dialect.identifier_preparer.quote_schema(schema)}"
    command = schema_command("init", url, prefix, schema)
    return StoreError(
        f"{shown} has no schema {schema!r}: complaintflow creates tables, not schemas: "
        f"create it first ({create}), then run `{command}`; or give the schema the "
        "tables are in"
    )


def attached_schema(schema: str | None) -> TypeGuard[str]:
    """Whether ``schema`` names, on SQLite, a database attached to the file (``main`` is
    the file itself: SQLite's names for them are case-insensitive)."""
    return schema is not None and schema.lower() != "main"


def schema_command(verb: str, url: str, prefix: str = "cf_", schema: str | None = None) -> str:
    """The ``complaintflow db`` command for these tables (their prefix and schema too:
    without them it would set up the default tables beside them)."""
    return _command("db", verb, shown_url(url), *_table_options(prefix, schema))


def _table_options(prefix: str, schema: str | None) -> tuple[str, ...]:
    """The command line's ``--prefix`` and ``--schema`` for these tables (none for the
    default ones)."""
    return (("--prefix", prefix) if prefix != "cf_" else ()) + (
        ("--schema", schema) if schema else ()
    )


def _command(*words: str) -> str:
    """A ``complaintflow`` command line to copy into a shell: each word quoted as the
    shell needs (a path with a space, a URL's ``&``, a masked password's ``***``)."""
    return shlex.join(("complaintflow", *words))


def schema_too_new(url: str, found: str) -> SchemaVersionError:
    """Tables at revision ``found``, which none of this package's migrations know: a
    newer complaintflow set them up (``url`` as messages show it)."""
    return SchemaVersionError(
        f"{url} is at schema {found}, newer than this complaintflow knows (the newest "
        f"this complaintflow knows is {SCHEMA_REVISION}): a newer complaintflow set up "
        "these tables; upgrade the complaintflow package (`pip install --upgrade "
        "complaintflow`) to use them. Nothing was changed"
    )


class SqlStore:
    """A ``workflow.Store`` on a SQL database, opened by URL.

    ``prefix`` and ``schema`` place the tables (``cf_cases`` ... by default) inside an
    existing database. ``create=True`` creates the tables in an empty database (what
    ``complaintflow db init`` does); otherwise the schema must be at the revision this
    code knows, or ``SchemaVersionError`` says which command to run.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cf_",
        schema: str | None = None,
        create: bool = False,
        durability: Literal["normal", "full"] = "full",
        snapshot_cache: int = DEFAULT_SIZE,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        if durability not in ("normal", "full"):  # anything else used to give NORMAL
            raise StoreError(
                f"{shown_url(url)}: durability: expected 'normal' or 'full', got {durability!r}"
            )
        # Names are made from these (a number would make tables ``5cases``).
        if not isinstance(prefix, str):
            raise StoreError(
                f"{shown_url(url)}: prefix: expected text (a table-name prefix such as "
                f"'cf_'), got {type(prefix).__name__}"
            )
        if schema is not None and not isinstance(schema, str):
            raise StoreError(
                f"{shown_url(url)}: schema: expected text (a schema name) or None, got "
                f"{type(schema).__name__}"
            )
        _require_sqlite_file(url, create=create, prefix=prefix, schema=schema)
        self.url = url
        self.prefix = prefix
        self.cache = SnapshotCache(snapshot_cache)
        self._json = SnapshotJson(snapshot_cache)
        self.tables: Tables = build_tables(prefix, schema)
        # A statement's parameters (a snapshot holds the customer's personal values) are
        # kept out of SQLAlchemy's error messages, which callers log and no erasure
        # reaches; ``engine_options={"hide_parameters": False}`` shows them when debugging.
        options = {"hide_parameters": True, **(engine_options or {})}
        with _translated(f"opening {shown_url(url)}"), _driver_named(url):
            self.engine = create_engine(url, **options)
            self.dialect = self.engine.dialect.name
            # Reads need no write lock: on SQLite they use their own engine, whose
            # statements run in autocommit (WAL gives each one a consistent snapshot).
            self.reader = self.engine
            if self.dialect == "sqlite":
                synchronous = "FULL" if durability == "full" else "NORMAL"
                _sqlite_setup(self.engine, synchronous, immediate=True)
                self.reader = create_engine(url, **options)
                _sqlite_setup(self.reader, synchronous, immediate=False)
        self._prepare_statements()
        # SQLite through the standard library's driver: the hot path below Core.
        self._hot: SqliteHotPath | None = None
        if self.dialect == "sqlite" and self.engine.dialect.driver == "pysqlite":
            self._hot = SqliteHotPath(self.engine, self._hot_statements(), stamps=schema is None)
        # Known to the at-fork hook once it has what the hook reads (engines, hot path):
        # a store whose engine could not be made is no store, and must not trip the hook.
        _STORES.add(self)
        try:
            if create:
                from adapters.migrate import init_schema

                with _translated(f"creating the tables in {shown_url(url)}"):
                    init_schema(self.engine, self.tables)
            self.check_schema()
        except BaseException:
            self.close()  # no connection left open behind the refusal
            raise

    def _prepare_statements(self) -> None:
        """Statements built once, executed with parameters (the hot path builds nothing)."""
        t = self.tables
        cases, events, deadlines = t.cases, t.events, t.deadlines
        row_columns = [c.name for c in cases.columns]
        self._insert_case = insert(cases)
        self._update_case = (
            update(cases)
            .where(cases.c.case_id == bindparam("b_case_id"))
            .where(cases.c.version == bindparam("b_expected"))
            .values({name: bindparam(name) for name in row_columns if name not in FIXED_COLUMNS})
        )
        self._case_version = select(cases.c.version).where(
            cases.c.case_id == bindparam("b_case_id")
        )
        self._snapshot = select(cases.c.snapshot).where(cases.c.case_id == bindparam("b_case_id"))
        self._tombstoned = select(t.tombstones.c.version).where(
            t.tombstones.c.case_id == bindparam("b_case_id")
        )
        self._customer_versions = select(cases.c.case_id, cases.c.version).where(
            cases.c.customer_id == bindparam("b_customer_id")
        )
        self._insert_events = insert(events)
        self._clear_deadlines = delete(deadlines).where(
            deadlines.c.case_id == bindparam("b_case_id")
        )
        self._insert_deadlines = insert(deadlines)
        self._insert_idempotency = insert(t.idempotency)
        self._events_after = (
            select(events)
            .where(events.c.case_id == bindparam("b_case_id"), events.c.seq > bindparam("b_after"))
            .order_by(events.c.seq)
        )

    def _hot_statements(self) -> dict[str, tuple[ClauseElement, tuple[str, ...]]]:
        """The hot path's statements, each with the names of a row's values, in order:
        the rows ``append`` builds are tuples in the table's column order."""
        t = self.tables
        case_columns = _columns(t.cases, CASE_COLUMNS)
        return {
            "snapshot": (self._snapshot, BY_CASE_ID),
            "case_version": (self._case_version, BY_CASE_ID),
            "tombstoned": (self._tombstoned, BY_CASE_ID),
            "customer_versions": (self._customer_versions, ("b_customer_id",)),
            "insert_case": (self._insert_case, case_columns),
            # the case's row (its id as the WHERE binds it), then the version expected
            "update_case": (self._update_case, ("b_case_id", *case_columns[1:], "b_expected")),
            "insert_events": (self._insert_events, _columns(t.events, EVENT_COLUMNS)),
            "clear_deadlines": (self._clear_deadlines, BY_CASE_ID),
            "insert_deadlines": (self._insert_deadlines, _columns(t.deadlines, DEADLINE_COLUMNS)),
            "insert_idempotency": (
                self._insert_idempotency,
                _columns(t.idempotency, IDEMPOTENCY_COLUMNS),
            ),
        }

    # -- schema ----------------------------------------------------------------------

    def schema_revision(self) -> str | None:
        """The revision recorded in the database, or None for an empty database."""
        reading = f"reading the schema version of {shown_url(self.url)}"
        with _translated(reading), self.reader.connect() as conn:
            version = self.tables.version_table
            schema = self.tables.metadata.schema
            if schema is not None and schema not in inspect(conn).get_schema_names():
                raise self._no_schema(schema)
            names = inspect(conn).get_table_names(schema=schema)
            if version not in names:
                return None
            # Quoted as the dialect quotes names (a prefix or schema in mixed case or
            # with a hyphen): the table Alembic made, not one its lower-cased name finds.
            table = sql_table(
                version, sql_column("version_num"), schema=self.tables.metadata.schema
            )
            row = conn.execute(select(table.c.version_num)).first()
            return str(row[0]) if row else None

    def _no_schema(self, schema: str) -> StoreError:
        """The schema the tables were asked for is not in the database (on SQLite: no
        database is attached under that name)."""
        return no_schema(self.url, self.engine.dialect, self.prefix, schema)

    def check_schema(self) -> None:
        found = self.schema_revision()
        if found == SCHEMA_REVISION:
            return
        url, schema = shown_url(self.url), self.tables.metadata.schema
        if found is None:
            command = schema_command("init", self.url, self.prefix, schema)
            where = f" in schema {schema}" if schema else ""
            raise SchemaVersionError(
                f"{url} has no complaintflow tables named {self.prefix}*{where}: run "
                f"`{command}` to create them; if they were made with another prefix or "
                "schema, open them with it (open_store's prefix= and schema=, the "
                "command line's --prefix and --schema)"
            )
        from adapters.migrate import known_revisions

        if found not in known_revisions():  # whatever it sorts like
            raise schema_too_new(url, found)
        command = schema_command("upgrade", self.url, self.prefix, schema)
        raise SchemaVersionError(
            f"{url} is at schema {found}; this complaintflow needs {SCHEMA_REVISION}: "
            f"run `{command}`"
        )

    # -- the store port ----------------------------------------------------------------

    def load(self, case_id: str) -> Case:
        """The case as stored now: its snapshot text is always read from the database,
        and validated into a ``Case`` unless it is the text the cache holds."""
        stamp: Hashable = None
        hot = self._hot
        if hot is not None:
            try:
                fresh, stored, stamp = hot.snapshot(case_id, self.cache)
            except (exc.SQLAlchemyError, sqlite3.Error) as error:
                raise _store_error(f"loading case {case_id}", error) from error
            if fresh is not None:
                return fresh
        else:
            with _translated(f"loading case {case_id}"), self.reader.connect() as conn:
                stored = conn.execute(self._snapshot, {"b_case_id": case_id}).scalar()
        if stored is None:
            raise CaseNotFound(case_id)
        return self._case_from(case_id, stored, stamp)

    def _case_from(self, case_id: str, stored: str, stamp: Hashable = None) -> Case:
        """The case from its stored snapshot: the cached one if the text is the one it
        was cached with, else read afresh (``SnapshotUnreadable`` if it is not the case)."""
        case = self.cache.match(case_id, stored)
        if case is None:
            case = read_snapshot(case_id, stored)
        self.cache.put(stored, case, stamp)
        return case

    def append(
        self,
        snapshot: Case,
        events: Sequence[Event],
        expected_version: int,
        deadlines: Sequence[Deadline] | None = None,
        idempotency_key: str | None = None,
        unchanged: Mapping[str, int] | None = None,
        idempotency_fingerprint: str | None = None,
    ) -> None:
        if (
            len(events) != 1
            or (first := events[0]).seq != expected_version + 1
            or snapshot.version != first.seq
            or first.case_id != snapshot.id
        ):  # not simply one more event for this case (what nearly every step appends)
            check_append(snapshot, events, expected_version)
        text = self._json.text(snapshot)
        try:
            row = _case_values(snapshot, text)
            event_rows = (
                [_event_values(events[0])] if len(events) == 1 else list(map(_event_values, events))
            )
            deadline_rows = None if deadlines is None else [_deadline_values(d) for d in deadlines]
            key_row = None
            if idempotency_key is not None:
                key_row = (
                    idempotency_key, snapshot.id, snapshot.version, snapshot.updated_at,
                    idempotency_fingerprint,
                )  # fmt: skip
            write = self._append if self._hot is None else self._hot.append
            try:
                stamp = write(row, expected_version, event_rows, deadline_rows, key_row, unchanged)
            except (exc.IntegrityError, sqlite3.IntegrityError) as error:
                if not _is_duplicate(error):  # a foreign key, a check, a trigger: not a race
                    raise _store_error(f"writing case {snapshot.id}", error) from error
                # Two writers raced to create the same case or to record the same
                # idempotency key; the database's unique constraint let one through.
                raise ConcurrencyConflict(snapshot.id, expected_version, None) from error
            except _CommitFailed as failed:
                # The connection was lost (or the database gave up) during the commit: the
                # server may have committed, and only its reply been lost. Ask before
                # saying it did not.
                if not self._written(events[-1], failed.error, failed.process):
                    lost = _store_error(f"writing case {snapshot.id}", failed.error)
                    raise type(lost)(f"{lost}; nothing was written") from failed.error
                stamp = None
            except exc.OperationalError as error:
                # Before the commit (a connection lost mid-statement, a lock or statement
                # timeout): the transaction was never committed. (A deadlock or a
                # serialization failure is a ConcurrencyConflict: ``_append``.)
                lost = _store_error(f"writing case {snapshot.id}", error)
                raise type(lost)(f"{lost}; nothing was written") from error
            except (exc.SQLAlchemyError, sqlite3.Error) as error:
                raise _store_error(f"writing case {snapshot.id}", error) from error
            except ValueError as error:
                # A value the hot path's binds refuse (a naive time): Core reports it as a
                # StatementError, translated above. The driver's own encoding errors pass
                # through unwrapped on both paths.
                if self._hot is None or isinstance(error, UnicodeError):
                    raise
                raise StoreError(f"writing case {snapshot.id}: {error}") from error
        except BaseException:
            # Nothing was written: the writer must not remember this snapshot (its
            # values, personal ones included, would outlive an erasure or a purge).
            self._json.discard(snapshot.id)
            raise
        self.cache.put(text, snapshot, stamp)

    def _append(
        self,
        case: Sequence[Any],
        expected_version: int,
        events: Sequence[Sequence[Any]],
        deadlines: Sequence[Sequence[Any]] | None,
        idempotency: Sequence[Any] | None,
        unchanged: Mapping[str, int] | None,
    ) -> Hashable:
        """``append`` through Core: PostgreSQL, and SQLite on a driver other than the
        standard library's. Rows as the hot path takes them (``_case_values`` ...).
        Returns no cache stamp (None)."""
        row = dict(zip(CASE_COLUMNS, case, strict=True))
        case_id = row.pop("case_id")
        committing, process = False, None
        try:
            with self.engine.begin() as conn:
                self._write_rows(
                    conn, case_id, row, expected_version, events, deadlines, idempotency, unchanged
                )
                if self.dialect == "postgresql":
                    process = _server_process(conn)
                committing = True  # the block's end commits
        except exc.OperationalError as error:
            if _race_lost(error):  # at a statement or at the commit: the server said so
                raise ConcurrencyConflict(case_id, expected_version, None) from error
            if committing:
                raise _CommitFailed(error, process) from error
            raise
        return None

    def _write_rows(
        self,
        conn: Connection,
        case_id: str,
        row: dict[str, Any],
        expected_version: int,
        events: Sequence[Sequence[Any]],
        deadlines: Sequence[Sequence[Any]] | None,
        idempotency: Sequence[Any] | None,
        unchanged: Mapping[str, int] | None,
    ) -> None:
        """``_append``'s statements, in its transaction on ``conn``."""
        if unchanged is not None:
            self._check_unchanged(conn, case_id, row["customer_id"], unchanged)
        if expected_version == 0:
            conn.execute(self._insert_case, {"case_id": case_id, **row})
            # After the insert: a purge of this id committing meanwhile made it wait
            # (on the case row's key), and its tombstone is seen now.
            if conn.execute(self._tombstoned, {"b_case_id": case_id}).first() is not None:
                raise ConcurrencyConflict(case_id, expected_version, None)  # purged: taken
        else:
            for name in FIXED_COLUMNS[1:]:  # not written again (a key here would be)
                del row[name]
            row.update(b_case_id=case_id, b_expected=expected_version)
            done = conn.execute(self._update_case, row)
            if done.rowcount != 1:
                found = conn.execute(self._case_version, {"b_case_id": case_id}).scalar()
                raise ConcurrencyConflict(case_id, expected_version, found)
        conn.execute(
            self._insert_events, [dict(zip(EVENT_COLUMNS, e, strict=True)) for e in events]
        )
        if deadlines is not None:
            conn.execute(self._clear_deadlines, {"b_case_id": case_id})
            if deadlines:
                conn.execute(
                    self._insert_deadlines,
                    [dict(zip(DEADLINE_COLUMNS, d, strict=True)) for d in deadlines],
                )
        if idempotency is not None:
            conn.execute(
                self._insert_idempotency,
                dict(zip(IDEMPOTENCY_COLUMNS, idempotency, strict=True)),
            )

    def _written(self, last: Event, error: exc.OperationalError, process: int | None) -> bool:
        """Whether an append whose commit failed with ``error`` was committed all the same
        (the server committed, and the connection dropped before its reply came): its
        last event is stored, with its hash. False only once the transaction is known to
        have ended (``_store_error`` then says that nothing was written): on PostgreSQL,
        when the server ``process`` that held it is gone or no longer in a transaction;
        until then the event may not be visible yet, and be committed after this asked.
        If the database cannot be asked, or that process still holds its transaction
        after ``LOST_COMMIT_WAIT_MS``, ``StoreUnavailable`` says the step may have been
        written."""
        case_id, cause = last.case_id, _primary(error.orig)
        retry = (
            "once the database is back, reload the case, or retry the step with the same "
            "idempotency key (a step retried without one may be written twice)"
        )
        try:
            ended = self.dialect != "postgresql" or self._transaction_ended(process)
            stored = self._stored_hash(case_id, last.seq)
        except StoreError as asking:  # unavailable, or refused (a password rotated)
            raise StoreUnavailable(
                f"writing case {case_id}: the connection was lost during the commit "
                f"({cause}) and the database could not be asked whether the step was "
                f"written ({asking}): it may have been written; {retry}"
            ) from error
        if stored == last.hash:
            return True
        if not ended:
            held = (
                f"its server process {process} still held the transaction after "
                f"{LOST_COMMIT_WAIT_MS / 1000:g} seconds"
                if process is not None
                else "the driver does not say which server process held the transaction"
            )
            raise StoreUnavailable(
                f"writing case {case_id}: the connection was lost during the commit "
                f"({cause}); the step is not stored yet, but {held}, and may yet be "
                f"committed: it may have been written; {retry}"
            ) from error
        return False

    def _transaction_ended(self, process: int | None) -> bool:
        """Whether the PostgreSQL server ``process`` no longer holds a transaction (it is
        gone, idle, or its transaction aborted): its transaction then committed or never
        will. Waits up to ``LOST_COMMIT_WAIT_MS`` for it (a server ends the session of a
        client that closed its connection as soon as it notices). False if it still holds
        one then, or if ``process`` is not known."""
        if process is None:
            return False
        give_up = time.monotonic() + LOST_COMMIT_WAIT_MS / 1000
        asking = f"asking whether server process {process} still holds a transaction"
        with _translated(asking), self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")  # fresh each time
            while conn.execute(_SESSION_IN_TRANSACTION, {"pid": process}).scalar():
                if time.monotonic() >= give_up:
                    return False
                time.sleep(0.05)
        return True

    def _stored_hash(self, case_id: str, seq: int) -> str | None:
        """The hash of the event ``seq`` of ``case_id`` as stored, on a new connection."""
        events = self.tables.events
        query = select(events.c.hash).where(events.c.case_id == case_id, events.c.seq == seq)
        with _translated(f"reading event {seq} of case {case_id}"), self.engine.connect() as c:
            found = c.execute(query).scalar()
        return None if found is None else str(found)

    def _check_unchanged(
        self, conn: Connection, case_id: str, customer_id: str, versions: Mapping[str, int]
    ) -> None:
        """Other cases the decision read must still be at those versions, and the
        customer must have no other case (one opened since the read was not counted).
        On PostgreSQL the customer's rows are locked until commit, so a concurrent
        writer waits and then sees the change (a case inserted meanwhile is paid
        nothing until a step of its own locks these rows); SQLite's write lock
        serialises writers already. The case's own row is locked with them, all in case
        id order: two writers that each read the other's case (two acceptances for one
        customer) lock in the same order, so one waits for the other instead of
        deadlocking.

        On PostgreSQL the customer's rows are then read once more, plainly: the locking
        statement sees only the rows of its snapshot, taken when it starts, and a case
        of the customer opened, offered and accepted by other workers between that
        snapshot and its first row lock (its own acceptance locked these rows, and
        released them before this statement got to them) would not be among them. A
        new statement has a new snapshot at ``READ COMMITTED``, and sees it (decision
        0062)."""
        c = self.tables.cases
        query = select(c.c.case_id, c.c.version).where(
            or_(c.c.customer_id == customer_id, c.c.case_id.in_(sorted({case_id, *versions})))
        )
        if self.dialect == "postgresql":
            locked = conn.execute(query.order_by(c.c.case_id).with_for_update())
            check_unchanged(case_id, versions, {row[0]: row[1] for row in locked})
        found = {row[0]: row[1] for row in conn.execute(query)}
        check_unchanged(case_id, versions, found)

    def events(self, case_id: str, after_seq: int = 0) -> list[Event]:
        t = self.tables
        with _translated(f"reading events of case {case_id}"), self.reader.connect() as conn:
            rows = conn.execute(
                self._events_after, {"b_case_id": case_id, "b_after": after_seq}
            ).all()
            if not rows:
                known = conn.execute(
                    select(t.cases.c.case_id).where(t.cases.c.case_id == case_id)
                ).first()
                if known is None:
                    raise CaseNotFound(case_id)
        return [_event(row) for row in rows]

    def customer_cases(self, customer_id: str) -> list[Case]:
        t = self.tables.cases
        with _translated(f"reading cases of customer {customer_id}"), self.reader.connect() as conn:
            rows = conn.execute(
                select(t.c.case_id, t.c.snapshot)
                .where(t.c.customer_id == customer_id)
                .order_by(t.c.opened_at)
            ).all()
        return [read_snapshot(case_id, stored) for case_id, stored in rows]

    def find_cases(self, query: CaseQuery, after: Position | None, limit: int) -> list[Listed]:
        """One query on the cases table's columns (each filter a column; the page order
        and ``after`` on the ``(opened_at, case_id)`` index), reading only the rows of
        the page. Snapshots are read as ``load`` reads them, through the cache, without
        filling it: a long list does not push out the cases being worked on. A snapshot
        that does not read back is an ``UnreadableCase``, matched and placed by the
        columns."""
        c = self.tables.cases.c
        case_key = self._byte_order(c.case_id)
        postgres = self.dialect == "postgresql"
        if postgres and any(NUL in value for value in query.equalities().values()):
            return []  # text PostgreSQL cannot store: no row holds it
        where: list[ColumnElement[bool]] = []
        if query.states is not None:
            where.append(c.state.in_(sorted(query.states)))
        where.extend(c[name] == value for name, value in query.equalities().items())
        for column, since, before in (
            (c.opened_at, query.opened_since, query.opened_before),
            (c.updated_at, query.updated_since, query.updated_before),
        ):
            if since is not None:
                where.append(column >= since)
            if before is not None:
                where.append(column < before)
        if after is not None:
            at, case_id = after
            if postgres:  # (a forged cursor's) ids after "a\0b" are those after "a"
                case_id = case_id.partition(NUL)[0]
            where.append(c.opened_at >= at)
            where.append(or_(c.opened_at > at, case_key > case_id))
        page = (
            select(c.case_id, c.snapshot, c.opened_at)
            .where(*where)
            .order_by(c.opened_at, case_key)
            .limit(limit)
        )
        with _translated("finding cases"), self.reader.connect() as conn:
            rows = conn.execute(page).all()
        return [self._listed_or_not(case_id, stored, opened) for case_id, stored, opened in rows]

    def _listed_or_not(self, case_id: str, stored: Any, opened_at: datetime) -> Listed:
        """``_listed``, or the case as unreadable, in its place on the page."""
        try:
            return self._listed(case_id, stored)
        except SnapshotUnreadable as error:
            return UnreadableCase.of(error, opened_at)

    def cases_at_risk(self, until: datetime, limit: int) -> list[AtRisk]:
        """The pending deadlines due by ``until`` in due order (the ``(status, due_at)``
        index the sweeper uses), with their open case's snapshot, read until ``limit``
        cases are found: each case's first row is its soonest deadline. A snapshot that
        does not read back is an ``UnreadableAtRisk``, found and placed by the columns
        and its deadline."""
        t = self.tables
        d, c = t.deadlines.c, t.cases.c
        columns = (d.case_id, d.key, d.target, d.step, d.kind, d.percent, d.due_at)
        due = (
            select(*columns, c.snapshot, c.opened_at)
            .join_from(t.deadlines, t.cases, d.case_id == c.case_id)
            .where(d.status == "pending", d.due_at <= until, c.state.not_in(sorted(FINAL_STATES)))
            .order_by(d.due_at, self._byte_order(d.case_id), self._byte_order(d.key))
        )
        first: dict[str, Any] = {}
        with _translated("finding cases at risk"), self.reader.connect() as conn:
            rows = conn.execution_options(yield_per=256).execute(due)
            try:
                for row in rows:
                    if row.case_id not in first:
                        first[row.case_id] = row
                        if len(first) == limit:
                            break
            finally:
                rows.close()
        return [self._at_risk(row) for row in first.values()]

    def _at_risk(self, row: Any) -> AtRisk:
        """A case at risk from its row, or the case as unreadable, in its place."""
        listed = self._listed_or_not(row.case_id, row.snapshot, row.opened_at)
        if isinstance(listed, UnreadableCase):
            return UnreadableAtRisk(listed, _deadline(row))
        return CaseAtRisk(listed, _deadline(row))

    def _byte_order(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """``column`` compared and sorted by code point (PostgreSQL's default collation
        sorts by language rules: ``case-a`` before ``case-B``)."""
        return column.collate("C") if self.dialect == "postgresql" else column

    def _listed(self, case_id: str, stored: Any) -> Case:
        """A listed case from its stored snapshot: the cached one if the text is the one
        it was cached with, else read afresh (``SnapshotUnreadable`` if it is not the
        case); not put in the cache."""
        cached = self.cache.match(case_id, stored)
        return cached if cached is not None else read_snapshot(case_id, stored)

    def case_ids(self) -> Iterator[str]:
        t = self.tables.cases
        with _translated("listing cases"), self.reader.connect() as conn:
            rows = conn.execute(select(t.c.case_id).order_by(t.c.opened_at, t.c.case_id)).all()
        return iter([row[0] for row in rows])

    def due_deadlines(self, now: datetime, limit: int = 1000) -> list[Deadline]:
        """Claims due deadlines for ``CLAIM_LEASE``: on PostgreSQL with ``FOR UPDATE SKIP
        LOCKED``, so workers ticking at once take different deadlines; on SQLite the write
        lock serialises the claim. A claim PostgreSQL rolled back to settle a race (a
        serialization failure under ``REPEATABLE READ`` or ``SERIALIZABLE``: a step
        rewrote a due deadline since the claim began; or a deadlock) claims nothing:
        none is returned, and the next tick claims them (decision 0062)."""
        d = self.tables.deadlines
        due = (
            select(d.c.case_id, d.c.key)
            .where(
                d.c.status == "pending",
                d.c.due_at <= now,
                (d.c.claimed_until.is_(None)) | (d.c.claimed_until < now),
            )
            .order_by(d.c.due_at)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        claim = (
            update(d)
            .where(tuple_(d.c.case_id, d.c.key).in_(due))
            .values(claimed_until=now + CLAIM_LEASE)
            .returning(d)
        )
        with _translated("claiming due deadlines"):
            try:
                with self.engine.begin() as conn:
                    rows = conn.execute(claim).all()
            except exc.OperationalError as error:
                if not _race_lost(error):
                    raise
                return []  # rolled back: nothing claimed
        found = [_deadline(row) for row in rows]
        found.sort(key=lambda x: (x.due_at, x.key))
        return found

    def pending_deadlines(self, case_id: str) -> list[Deadline]:
        d = self.tables.deadlines
        with _translated(f"reading deadlines of case {case_id}"), self.reader.connect() as conn:
            rows = conn.execute(
                select(d).where(d.c.case_id == case_id).order_by(d.c.due_at, d.c.key)
            ).all()
        return [_deadline(row) for row in rows]

    def find_idempotent(self, key: str) -> tuple[str, int, str | None] | None:
        t = self.tables.idempotency
        query = select(t.c.case_id, t.c.version, t.c.fingerprint).where(t.c.key == key)
        with _translated("reading an idempotency key"), self.reader.connect() as conn:
            row = conn.execute(query).first()
        return (row[0], row[1], row[2]) if row else None

    def stored_histories(self) -> Iterator[StoredHistory]:
        """Every case's snapshot text and stored events, in one read transaction (a
        consistent view while writers carry on), streamed: two cursors ordered by case id
        (byte order), merged case by case. On SQLite with the standard library's driver
        the two queries (compiled from the same Core statements) run on the DBAPI
        connection: per row, Core's result machinery cost more than SQLite's own reading
        (docs/decisions/0014-fast-verify.md)."""
        cases_q, events_q = self._history_queries()
        if self._hot is not None:
            with _translated("reading every case"):
                yield from self._raw_histories(cases_q, events_q)
            return
        with _translated("reading every case"):
            yield from self._core_histories(cases_q, events_q)

    def stored_history(self, case_id: str) -> StoredHistory | None:
        """One case's snapshot text and stored events, in one read transaction (for
        ``audit.verify_store(store, case_id)``); None if neither is stored."""
        cases_q, events_q = self._history_queries(case_id)
        with _translated(f"reading case {case_id}"), self.reader.connect() as conn:
            conn = self._one_snapshot(conn)
            cases, events = conn.execute(cases_q).all(), conn.execute(events_q).all()
        return next(_merged(cases, iter(events)), None)

    def _history_queries(self, case_id: str | None = None) -> tuple[Select[Any], Select[Any]]:
        """The two reads behind a stored history: case rows ``(case_id, snapshot)`` and
        event rows, both ordered by case id (byte order), for every case or one."""
        t = self.tables
        e = t.events
        case_key: ColumnElement[Any] = t.cases.c.case_id
        event_key: ColumnElement[Any] = e.c.case_id
        if self.dialect == "postgresql":
            case_key, event_key = case_key.collate("C"), event_key.collate("C")
        cases_q = select(t.cases.c.case_id, t.cases.c.snapshot).order_by(case_key)
        # ``at`` as the driver gives it (SQLite: text; PostgreSQL: an aware datetime),
        # turned into canonical text by ``_at_text`` without a datetime round trip.
        events_q = select(
            e.c.case_id, e.c.seq, e.c.type, type_coerce(e.c.at, String), e.c.actor, e.c.data,
            e.c.policy_version, e.c.prev_hash, e.c.hash,
        ).order_by(event_key, e.c.seq)  # fmt: skip
        if case_id is not None:
            cases_q = cases_q.where(t.cases.c.case_id == case_id)
            events_q = events_q.where(e.c.case_id == case_id)
        return cases_q, events_q

    def _core_histories(
        self, cases_q: Select[Any], events_q: Select[Any]
    ) -> Iterator[StoredHistory]:
        with self.reader.connect() as conn:
            conn = self._one_snapshot(conn).execution_options(yield_per=2000)
            yield from _merged(conn.execute(cases_q), iter(conn.execute(events_q)))

    def _one_snapshot(self, conn: Connection) -> Connection:
        """``conn`` with its reads in one transaction that sees one state of the database."""
        if self.dialect == "sqlite":
            conn.exec_driver_sql("BEGIN")  # one snapshot of the WAL for every read
            return conn
        return conn.execution_options(isolation_level="REPEATABLE READ")

    def _raw_histories(
        self, cases_q: ClauseElement, events_q: ClauseElement
    ) -> Iterator[StoredHistory]:
        """``stored_histories`` on the reader's DBAPI connection (SQLite, pysqlite): the
        same SQL, compiled by SQLAlchemy; the columns are text and integers, which Core
        hands over unprocessed on SQLite, so the rows are the same."""
        dialect = self.reader.dialect
        cases_sql, events_sql = (str(q.compile(dialect=dialect)) for q in (cases_q, events_q))
        pooled = self.reader.raw_connection()
        try:
            db = pooled.driver_connection
            assert db is not None
            db.execute("BEGIN")  # one snapshot of the WAL for both reads
            try:
                cases = db.cursor().execute(cases_sql)  # two cursors, read in step
                yield from _merged(cases, iter(db.cursor().execute(events_sql)))
            finally:
                if db.in_transaction:
                    db.rollback()
        finally:
            pooled.close()

    def purge(self, tombstone: Tombstone) -> None:
        case_id = tombstone.case_id
        with _translated(f"purging case {case_id}"), self._race_is_a_conflict(tombstone):
            self._purge(tombstone)

    @contextmanager
    def _race_is_a_conflict(self, tombstone: Tombstone) -> Iterator[None]:
        """A purge PostgreSQL rolled back to settle a race (a serialization failure under
        ``REPEATABLE READ`` or ``SERIALIZABLE``: a step changed the case, or the sweeper
        its deadlines, since the purge began; or a deadlock) is a ``ConcurrencyConflict``,
        at a statement or at the commit: nothing was deleted, and ``purge_expired``
        keeps the case, for the next purge to judge again (decision 0062)."""
        try:
            yield
        except exc.OperationalError as error:
            if not _race_lost(error):
                raise
            raise ConcurrencyConflict(tombstone.case_id, tombstone.version, None) from error

    def _purge(self, tombstone: Tombstone) -> None:
        """``purge``'s transaction."""
        t = self.tables
        case_id = tombstone.case_id
        where = {"b_case_id": case_id}
        with self.engine.begin() as conn:
            query = self._case_version
            if self.dialect == "postgresql":
                query = query.with_for_update()
            found = conn.execute(query, where).scalar()
            if found != tombstone.version:
                raise ConcurrencyConflict(case_id, tombstone.version, found)
            conn.execute(delete(t.idempotency).where(t.idempotency.c.case_id == case_id))
            conn.execute(self._clear_deadlines, where)
            conn.execute(delete(t.events).where(t.events.c.case_id == case_id))
            conn.execute(delete(t.cases).where(t.cases.c.case_id == case_id))
            self.cache.discard(case_id)  # its values must not stay in this process
            self._json.discard(case_id)
            conn.execute(
                insert(t.tombstones).values(
                    case_id=case_id,
                    version=tombstone.version,
                    head_hash=tombstone.head_hash,
                    opened_at=tombstone.opened_at,
                    closed_at=tombstone.closed_at,
                    purged_at=tombstone.purged_at,
                    purged_by=tombstone.purged_by,
                    reason=tombstone.reason,
                    retention_years=tombstone.retention_years,
                )
            )

    def tombstones(self) -> Iterator[Tombstone]:
        t = self.tables.tombstones
        with _translated("reading tombstones"), self.reader.connect() as conn:
            rows = conn.execute(select(t).order_by(t.c.purged_at, t.c.case_id)).all()
        return iter(
            [
                Tombstone(
                    case_id=row.case_id,
                    version=row.version,
                    head_hash=row.head_hash,
                    opened_at=row.opened_at,
                    closed_at=row.closed_at,
                    purged_at=row.purged_at,
                    purged_by=row.purged_by,
                    reason=row.reason,
                    retention_years=row.retention_years,
                )
                for row in rows
            ]
        )

    def scrub(self) -> None:
        """SQLite: checkpoint the WAL into the file, ``VACUUM`` (rewrites the file without
        free pages, where overwritten rows linger) and truncate the WAL. PostgreSQL:
        ``VACUUM FULL`` the tables, rewriting them without dead row versions (each table
        is locked while it is rewritten; the server's own WAL and backups follow their
        own retention: see docs/audit.md)."""
        t = self.tables
        again = _command(
            "privacy", "scrub", "--store", shown_url(self.url),
            *_table_options(self.prefix, t.metadata.schema),
        )  # fmt: skip
        with _translated("scrubbing the database"):
            if self.dialect == "sqlite":
                self.reader.dispose()  # no reader of ours may hold the WAL open
                raw = self.engine.raw_connection()
                schema = t.metadata.schema
                driver = raw.driver_connection
                assert driver is not None
                try:
                    driver.execute(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
                    _checkpoint(driver, again)
                    name = self.engine.dialect.identifier_preparer.quote_schema(schema or "")
                    driver.execute(f"VACUUM {name}" if schema else "VACUUM")
                    _checkpoint(driver, again)
                finally:
                    driver.execute("PRAGMA busy_timeout=30000")
                    raw.close()
            elif self.dialect == "postgresql":
                # ``VACUUM FULL``: a plain ``VACUUM`` frees a dead row's space but leaves
                # its bytes in the page until a later row overwrites them, readable in
                # the data files (and in any copy of them). Rewriting the table does not.
                # A row version a transaction older than the scrub may still see is
                # copied, not dropped: wait for such transactions first.
                quote = self.engine.dialect.identifier_preparer.format_table
                with self.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    _wait_for_older_transactions(conn, again)
                    conn.exec_driver_sql(f"SET lock_timeout = {SCRUB_WAIT_MS}")
                    try:
                        for table in (t.cases, t.events, t.deadlines, t.idempotency):
                            try:
                                conn.exec_driver_sql(f"VACUUM FULL {quote(table)}")
                            except exc.OperationalError as error:
                                if getattr(error.orig, "sqlstate", None) == _PG_LOCK_TIMEOUT:
                                    raise _scrub_blocked(again) from error
                                raise
                    finally:
                        conn.exec_driver_sql("RESET lock_timeout")

    def _forget_parent_connections(self) -> None:
        """In a child after ``fork``: the pools hold the parent's connections, which the
        child must neither use nor close (closing a PostgreSQL one ends the parent's
        session). Fresh pools, opened on first use; the old ones are kept, untouched."""
        for engine in dict.fromkeys((self.engine, self.reader)):
            _INHERITED.append(engine.pool)
            engine.dispose(close=False)
        if self._hot is not None:
            _INHERITED.append(self._hot.inherited())

    def close(self) -> None:
        self.cache.clear()
        self._json.clear()
        if self._hot is not None:
            self._hot.close()
        self.engine.dispose()
        self.reader.dispose()


#: The order of the values in the rows ``append`` builds: each table's columns.
CASE_COLUMNS = (
    "case_id", "version", "state", "customer_id", "channel", "category", "priority",
    "policy_version", "opened_at", "updated_at", "snapshot", "assignee", "escalated_to",
)  # fmt: skip
#: The case row's columns a case never changes, written when it is opened and left out
#: of the update every later step makes: SQLite rewrites the entry of every index on a
#: column an UPDATE sets, changed or not (decision 0037).
FIXED_COLUMNS = ("case_id", "customer_id", "channel", "opened_at")
EVENT_COLUMNS = (
    "case_id", "seq", "type", "at", "actor", "data", "policy_version", "prev_hash", "hash",
)  # fmt: skip
DEADLINE_COLUMNS = (
    "case_id", "key", "target", "step", "kind", "percent", "status", "due_at", "claimed_until",
)  # fmt: skip
IDEMPOTENCY_COLUMNS = ("key", "case_id", "version", "created_at", "fingerprint")


def _columns(table: Table, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names``, checked to be the table's columns in order (the rows are built so)."""
    found = tuple(column.name for column in table.columns)
    if found != names:  # pragma: no cover - a wiring slip
        raise TypeError(f"{table.name} has columns {found}, the store writes {names}")
    return names


def _case_values(case: Case, snapshot: str) -> tuple[Any, ...]:
    return (
        case.id,
        case.version,
        case.state,
        case.customer.id,
        case.channel._value_,
        case.category,
        case.priority._value_,
        case.policy_version,
        case.opened_at,
        case.updated_at,
        snapshot,
        # NULL for an assignee ``assign`` refuses now, held from before: longer than the
        # column, or holding U+0000 (PostgreSQL cannot store it); ``find_cases`` refuses
        # such a name as a filter. Inline (the step's hot path): nothing more for a case
        # without an assignee, a scan of at most 300 characters for one with.
        assignee
        if (assignee := case.assignee) is None
        or (len(assignee) <= MAX_ASSIGNEE and "\x00" not in assignee)
        else None,
        escalation.to_role if (escalation := case.escalation) is not None else None,
    )


def _event_values(e: Event) -> tuple[Any, ...]:
    return (
        e.case_id, e.seq, e.type, e.at, e.actor,
        e.data_text if e.data_text is not None else event_data_text(e), e.policy_version,
        e.prev_hash, e.hash,
    )  # fmt: skip


def _deadline_values(d: Deadline) -> tuple[Any, ...]:
    return (d.case_id, d.key, d.target, d.step, d.kind, d.percent, "pending", d.due_at, None)


def _event(row: Any) -> Event:
    return Event(
        case_id=row.case_id,
        seq=row.seq,
        type=row.type,
        at=row.at,
        actor=row.actor,
        data=json.loads(row.data),
        policy_version=row.policy_version,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _at_text(raw: Any) -> str:
    """The canonical text of a stored ``at``: SQLite keeps ``YYYY-MM-DD
    HH:MM:SS.ffffff`` (UTC), PostgreSQL gives an aware datetime. Anything else is
    returned as found (its hash will not match)."""
    if type(raw) is str and len(raw) == 26 and raw[10] == " ":
        return f"{raw[:10]}T{raw[11:]}+00:00"
    if isinstance(raw, datetime) and raw.tzinfo is not None:
        return format_at(raw.astimezone(UTC))
    return str(raw)


def _merged(cases: Iterable[Any], events: Iterator[Any]) -> Iterator[StoredHistory]:
    """Case rows ``(case_id, snapshot)`` and event rows, both ordered by case id, as
    histories: a case without events has none, events without a case no snapshot."""
    pending = next(events, None)
    for case_id, snapshot in cases:
        while pending is not None and pending[0] < case_id:  # events without a case
            orphans, pending = _same_case(pending, events)
            yield StoredHistory(orphans[0][0], None, orphans)
        mine: list[StoredEvent] = []
        if pending is not None and pending[0] == case_id:
            mine, pending = _same_case(pending, events)
        yield StoredHistory(case_id, snapshot, mine)
    while pending is not None:
        orphans, pending = _same_case(pending, events)
        yield StoredHistory(orphans[0][0], None, orphans)


def _same_case(first: Any, rows: Iterator[Any]) -> tuple[list[StoredEvent], Any]:
    """``first`` and the rows after it of the same case, as stored events; and the next
    case's first row. (Unrolled: this runs for every event a whole-store verify reads.)"""
    case_id = first[0]
    found: list[StoredEvent] = []
    add = found.append
    for row in chain((first,), rows):
        owner, seq, type_, at, actor, data, policy_version, prev_hash, hash_ = row
        if owner != case_id:
            return found, row
        if type(at) is str and len(at) == 26 and at[10] == " ":  # SQLite's UtcDateTime
            at = f"{at[:10]}T{at[11:]}+00:00"
        else:
            at = _at_text(at)
        add((owner, seq, type_, at, actor, data, policy_version, prev_hash, hash_))
    return found, None


def _deadline(row: Any) -> Deadline:
    return Deadline(
        case_id=row.case_id,
        key=row.key,
        target=row.target,
        step=row.step,
        kind=row.kind,
        percent=row.percent,
        due_at=row.due_at,
    )


#: Every open ``SqlStore`` in this process, for the at-fork hook.
_STORES: weakref.WeakSet[SqlStore] = weakref.WeakSet()
#: What a forked child inherited from its parent (pools, connections): kept referenced,
#: never used or closed, so no finaliser touches the parent's connections from here.
_INHERITED: list[Any] = []


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_parent_connections()


os.register_at_fork(after_in_child=_after_fork_in_child)
