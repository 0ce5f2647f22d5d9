"""The SQLite hot path: ``load`` and ``append`` run on the DBAPI connection that
SQLAlchemy's pool hands out, with SQL compiled once from the store's Core statements.

Per statement, Core's execution path (compiled-cache lookup, parameter processing,
result set-up, events) cost several times what SQLite itself spends on a one-row write,
so the two calls every step makes bypass it. Everything else stays with SQLAlchemy: the
engines and their pools and connect hooks (WAL, ``synchronous``, foreign keys, busy
timeout), the tables and their SQL (compiled here by SQLAlchemy for this database, so the
prefix, schema and quoting are the store's), the column types' bind processors (aware
UTC datetimes are stored as Core stores them), and every other query. See
docs/decisions/0011-sqlite-hot-path.md.

Errors are the driver's own (``sqlite3.Error``); ``SqlStore`` translates them with
everything else in ``adapters.sql._translated``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, Engine, PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from adapters.memory import check_unchanged
from adapters.snapshot_cache import SnapshotCache
from adapters.sql_schema import UtcDateTime
from workflow.domain import Case
from workflow.errors import ConcurrencyConflict

BEGIN = "BEGIN IMMEDIATE"

#: The database as the store's own connection saw it: ``(epoch, PRAGMA data_version,
#: total_changes)``. ``data_version`` changes whenever any other connection, in any
#: process, commits; ``total_changes`` whenever this one changes a row; the epoch whenever
#: the connection is replaced. Equal stamps: nothing was written in between, but what
#: this store put in its cache itself (after its own commits).
Stamp = tuple[int, int, int] | None


def utc_text(value: datetime | None) -> str | None:
    """A ``UtcDateTime`` as Core binds it on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff`` in
    UTC), in a fraction of the time of the type's processor chain;
    tests/test_sqlite_hot_path.py checks the two agree.

    The texts of the last few UTC datetimes are remembered, by the datetime (a step
    writes the same moment as the case's ``updated_at`` and its event's ``at``, and the
    case's ``opened_at`` at every step). Only plain ``datetime`` objects in ``UTC`` are
    keys: a datetime equal to one of them (any zone) is the same instant, so it has the
    same text (a datetime whose offset depends on ``fold`` is never equal to one in
    another zone, and naive ones never equal aware ones)."""
    if value is None:
        return None
    text = _UTC_TEXTS.get(value)
    if text is not None:
        return text
    text = _utc_text(value)
    if type(value) is datetime and value.tzinfo is UTC:
        if len(_UTC_TEXTS) >= _MAX_UTC_TEXTS:
            _UTC_TEXTS.clear()
        _UTC_TEXTS[value] = text
    return text


def _utc_text(value: datetime) -> str:
    zone = value.tzinfo
    if zone is None:
        raise ValueError("naive datetimes are refused")
    if zone is not UTC:
        value = value.astimezone(UTC)
    return _UTC_TEXT % (
        value.year, value.month, value.day, value.hour, value.minute, value.second,
        value.microsecond,
    )  # fmt: skip


_UTC_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
#: ``utc_text``'s memory: ``datetime (in UTC) -> text``.
_UTC_TEXTS: dict[datetime, str] = {}
_MAX_UTC_TEXTS = 64


class Prepared:
    """A Core statement compiled once for SQLite: its SQL text, and ``bind(row)``, the
    positional parameters for a row given as a tuple of values in ``source`` order (the
    table's columns, say)."""

    __slots__ = ("bind", "names", "sql")

    def __init__(self, statement: ClauseElement, source: Sequence[str], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DDL is never given
            raise TypeError(f"{statement!r} is not a SQL statement")
        if compiled.positiontup is None:  # pragma: no cover - SQLite's paramstyle is qmark
            raise TypeError(f"{dialect.name} does not bind parameters by position")
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup)
        missing = set(self.names) - set(source)
        if missing or len(self.names) != len(set(self.names)):  # pragma: no cover - wiring
            raise TypeError(f"{self.sql!r}: no value for {sorted(missing)} in {source}")
        # ``bind``, compiled once: one list display, each value taken from its place in
        # the source row and passed through its type's bind processor, if any (UTC
        # times: their remembered text, else ``utc_text``).
        scope: dict[str, Any] = {"utc_text": utc_text, "texts": _UTC_TEXTS}
        values = []
        for index, name in enumerate(self.names):
            value = f"row[{list(source).index(name)}]"
            type_ = compiled.binds[name].type
            if isinstance(type_, UtcDateTime):
                values.append(f"texts.get(v := {value}) or utc_text(v)")
                continue
            # The type as this dialect runs it (a TypeDecorator's own bind_processor
            # would skip SQLite's DATETIME formatting): what Core binds, to the byte.
            process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                scope[f"process_{index}"] = process
                value = f"process_{index}({value})"
            values.append(value)
        exec(f"def bind(row):\n    return [{', '.join(values)}]", scope)
        self.bind: Callable[[Sequence[Any]], list[Any]] = scope["bind"]


#: The one value the lookups by case id take.
BY_CASE_ID = ("b_case_id",)


class SqliteHotPath:
    """``load`` and ``append`` (one ``BEGIN IMMEDIATE`` transaction per step) on the
    writer engine's connections. ``statements`` are the store's Core statements by name
    (see ``SqlStore._hot_statements``), each with the names of the values a row for it
    holds, in order.

    The store keeps one connection checked out for itself and uses it whenever no other
    thread is: no pool checkout per call, and the pages it just wrote are still in its
    page cache when the next step loads the case. A thread that finds it busy takes a
    connection from the pool instead, so threads never queue behind each other here.
    """

    def __init__(
        self,
        writer: Engine,
        statements: Mapping[str, tuple[ClauseElement, Sequence[str]]],
        *,
        stamps: bool = True,
    ) -> None:
        self._writer = writer
        dialect = writer.dialect
        self._sql = {
            name: Prepared(statement, source, dialect)
            for name, (statement, source) in statements.items()
        }
        for name in ("snapshot", "case_version", "clear_deadlines", "tombstoned"):
            if self._sql[name].names != BY_CASE_ID:  # pragma: no cover - a wiring slip
                raise TypeError(f"{name} must take the case id alone")
        self._snapshot_sql = self._sql["snapshot"].sql
        self._tombstoned_sql = self._sql["tombstoned"].sql
        self._insert_case = self._sql["insert_case"]
        self._update_case = self._sql["update_case"]
        self._insert_events = self._sql["insert_events"]
        self._clear_deadlines_sql = self._sql["clear_deadlines"].sql
        self._customer_versions_sql = self._sql["customer_versions"].sql
        #: Where a case row (``insert_case``'s source, in order) holds the customer id.
        self._customer_at = list(statements["insert_case"][1]).index("customer_id")
        self._own_lock = threading.Lock()
        self._own: PoolProxiedConnection | None = None
        #: The store's own connection's driver connection and a cursor on it.
        self._own_db: Any = None
        self._own_cursor: Any = None
        self._own_pid = 0
        # Cache stamps (see Stamp): only where PRAGMA data_version covers the tables,
        # i.e. they are in the main database, not an attached schema.
        self._stamps = stamps
        self._epoch = 0
        self._data_version: int | None = None

    def _connect(self) -> None:
        """Check out the store's own connection (never a parent's, after a fork: that
        one is left alone, open, for the parent)."""
        own = self._writer.raw_connection()
        self._own = own
        self._own_db = own.driver_connection
        self._own_cursor = self._own_db.cursor()
        self._own_pid = _PID
        self._epoch += 1
        self._data_version = None

    def inherited(self) -> PoolProxiedConnection | None:
        """In a child after ``fork``: the parent's own connection, forgotten here (the
        next call checks out a new one) and handed to the caller to keep, unused. The
        lock is new too: a parent thread holding it at the fork never releases it here."""
        self._own_lock = threading.Lock()
        own, self._own = self._own, None
        self._own_db = self._own_cursor = None
        self._own_pid = 0
        return own

    def _drop_own(self) -> None:
        """After a driver error, in doubt about the own connection's state: back to the
        pool (which rolls back or discards it), and a fresh one next time. The caller
        holds ``_own_lock``."""
        own, self._own = self._own, None
        self._own_db = self._own_cursor = None
        if own is not None and self._own_pid == _PID:
            own.close()
        self._own_pid = 0

    def close(self) -> None:
        """Give the store's own connection back to the pool."""
        with self._own_lock:
            own, self._own = self._own, None
            self._own_db = self._own_cursor = None
            if own is not None and self._own_pid == os.getpid():
                own.close()
            self._own_pid = 0

    # ``snapshot`` and ``append`` run twice a step: the store's own connection is taken
    # inline (a non-blocking lock; a pid compare, so never a parent's after a fork) rather
    # than through a helper or a context manager. A thread that finds it busy takes a
    # pooled connection for the call instead.

    def snapshot(self, case_id: str, cache: SnapshotCache) -> tuple[Case | None, str | None, Stamp]:
        """``(cached, None, stamp)`` when the cache's entry is proven current without
        reading the row; else ``(None, stored text or None if no such case, stamp)``,
        the stamp to put the case in the cache with. The stored value is passed on as
        the driver gives it, as Core does (text, unless the row was given another type)."""
        lock = self._own_lock
        if not lock.acquire(False):
            pooled = self._writer.raw_connection()
            try:
                db: Any = pooled.driver_connection
                row = db.execute(self._snapshot_sql, (case_id,)).fetchone()
            finally:
                pooled.close()
            return None, None if row is None else row[0], None
        failed = True
        try:
            if self._own_pid != _PID:  # none yet, or a parent's (after a fork)
                self._connect()
            cursor = self._own_cursor
            stamp: Stamp = None
            if self._stamps:
                # The stamp (see Stamp), as of now.
                data_version = self._data_version = cursor.execute(_DATA_VERSION).fetchone()[0]
                stamp = (self._epoch, data_version, self._own_db.total_changes)
                cached = cache.fresh(case_id, stamp)
                if cached is not None:
                    failed = False
                    return cached, None, stamp
            row = cursor.execute(self._snapshot_sql, (case_id,)).fetchone()
            failed = False
        finally:
            if failed:
                self._drop_own()
            lock.release()
        return None, None if row is None else row[0], stamp

    def append(
        self,
        case: Sequence[Any],
        expected_version: int,
        events: Sequence[Sequence[Any]],
        deadlines: Sequence[Sequence[Any]] | None,
        idempotency: Sequence[Any] | None,
        unchanged: Mapping[str, int] | None,
    ) -> Stamp:
        """One step, in one transaction: the case row (its values in the table's column
        order; inserted for version 0, else updated only at ``expected_version``),
        events, deadlines (None: left as they are), the idempotency key (rows, each
        in its table's column order); or ``ConcurrencyConflict`` and nothing written.
        Returns the stamp to cache the new snapshot with (None: none can be given)."""
        lock = self._own_lock
        if not lock.acquire(False):
            pooled = self._writer.raw_connection()
            try:
                db = pooled.driver_connection
                self._write(
                    db, db, case, expected_version, events, deadlines, idempotency, unchanged
                )
            finally:
                pooled.close()
            return None
        failed = True
        try:
            if self._own_pid != _PID:  # none yet, or a parent's (after a fork)
                self._connect()
            db = self._own_db
            self._write(
                db, self._own_cursor, case, expected_version, events, deadlines, idempotency,
                unchanged,
            )  # fmt: skip
            failed = False
            # As of the data version last read on this connection (another connection's
            # commit since then changes it); total_changes now counts this commit.
            if self._stamps and self._data_version is not None:
                return (self._epoch, self._data_version, db.total_changes)
            return None
        except ConcurrencyConflict:
            failed = False  # the transaction was rolled back cleanly
            raise
        finally:
            if failed:
                self._drop_own()
            lock.release()

    def _write(
        self,
        db: Any,
        cursor: Any,
        case: Sequence[Any],
        expected_version: int,
        events: Sequence[Sequence[Any]],
        deadlines: Sequence[Sequence[Any]] | None,
        idempotency: Sequence[Any] | None,
        unchanged: Mapping[str, int] | None,
    ) -> None:
        """``append``'s transaction on ``db`` (through ``cursor``), rolled back on any
        error."""
        case_id = case[0]
        cursor.execute(BEGIN)
        try:
            if unchanged is not None:
                self._check_unchanged(db, case_id, case[self._customer_at], unchanged)
            if expected_version == 0:
                cursor.execute(self._insert_case.sql, self._insert_case.bind(case))
                if cursor.execute(self._tombstoned_sql, (case_id,)).fetchone() is not None:
                    raise ConcurrencyConflict(case_id, expected_version, None)  # purged
            else:
                update = self._update_case
                if cursor.execute(update.sql, update.bind((*case, expected_version))).rowcount != 1:
                    found = self._version(db, case_id)
                    raise ConcurrencyConflict(case_id, expected_version, found)
            insert = self._insert_events
            if len(events) == 1:
                cursor.execute(insert.sql, insert.bind(events[0]))
            else:
                cursor.executemany(insert.sql, [insert.bind(e) for e in events])
            if deadlines is not None:
                cursor.execute(self._clear_deadlines_sql, (case_id,))
                if deadlines:
                    insert = self._sql["insert_deadlines"]
                    cursor.executemany(insert.sql, [insert.bind(d) for d in deadlines])
            if idempotency is not None:
                insert = self._sql["insert_idempotency"]
                cursor.execute(insert.sql, insert.bind(idempotency))
            cursor.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise

    def _version(self, db: Any, case_id: str) -> int | None:
        row = db.execute(self._sql["case_version"].sql, (case_id,)).fetchone()
        return None if row is None else int(row[0])

    def _check_unchanged(
        self, db: Any, case_id: str, customer_id: str, versions: Mapping[str, int]
    ) -> None:
        """Other cases the decision read must still be at those versions, and the
        customer must have no other case (the write lock, taken at BEGIN IMMEDIATE,
        keeps them so until commit)."""
        rows = db.execute(self._customer_versions_sql, (customer_id,)).fetchall()
        found = {row[0]: int(row[1]) for row in rows}
        for other in versions:
            if other not in found:  # not the customer's (or gone): asked for itself
                version = self._version(db, other)
                if version is not None:
                    found[other] = version
        check_unchanged(case_id, versions, found)


_DATA_VERSION = "PRAGMA data_version"


#: This process's pid, kept current across ``fork`` by an at-fork hook (one ``getpid``
#: system call per fork rather than two per step).
_PID = os.getpid()


def _forked() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_forked)
