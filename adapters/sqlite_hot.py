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

from adapters.snapshot_cache import SnapshotCache
from adapters.sql_schema import UtcDateTime
from workflow.domain import Case
from workflow.errors import ConcurrencyConflict

BEGIN = "BEGIN IMMEDIATE"

Row = Mapping[str, Any]
#: What the database looked like to the store's own connection (see SqliteHotPath._stamp).
Stamp = tuple[int, int, int] | None


def utc_text(value: datetime | None) -> str | None:
    """A ``UtcDateTime`` as Core binds it on SQLite (``YYYY-MM-DD HH:MM:SS.ffffff`` in
    UTC), in a third of the time of the type's processor chain; tests/test_sqlite_hot_path.py
    checks the two agree."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is None:
        raise ValueError("naive datetimes are refused")
    if zone is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


class Prepared:
    """A Core statement compiled once for SQLite: its SQL text, and how to bind a row
    (named values) as its positional parameters."""

    __slots__ = ("names", "processors", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler):  # pragma: no cover - DDL is never given
            raise TypeError(f"{statement!r} is not a SQL statement")
        if compiled.positiontup is None:  # pragma: no cover - SQLite's paramstyle is qmark
            raise TypeError(f"{dialect.name} does not bind parameters by position")
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup)
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(self.names):
            type_ = compiled.binds[name].type
            if isinstance(type_, UtcDateTime):
                process: Callable[[Any], Any] | None = utc_text
            else:
                # The type as this dialect runs it (a TypeDecorator's own bind_processor
                # would skip SQLite's DATETIME formatting): what Core binds, to the byte.
                process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((index, process))
        self.processors = tuple(processors)

    def params(self, row: Row) -> list[Any]:
        values = [row[name] for name in self.names]
        for index, process in self.processors:
            values[index] = process(values[index])
        return values


class SqliteHotPath:
    """``load`` and ``append`` (one ``BEGIN IMMEDIATE`` transaction per step) on the
    writer engine's connections. ``statements`` are the store's Core statements by name
    (see ``SqlStore._prepare_statements``).

    The store keeps one connection checked out for itself and uses it whenever no other
    thread is: no pool checkout per call, and the pages it just wrote are still in its
    page cache when the next step loads the case. A thread that finds it busy takes a
    connection from the pool instead, so threads never queue behind each other here.
    """

    def __init__(
        self, writer: Engine, statements: Mapping[str, ClauseElement], *, stamps: bool = True
    ) -> None:
        self._writer = writer
        dialect = writer.dialect
        self._sql = {name: Prepared(statement, dialect) for name, statement in statements.items()}
        for name in ("snapshot", "case_version", "clear_deadlines"):
            if self._sql[name].names != ("b_case_id",):  # pragma: no cover - a wiring slip
                raise TypeError(f"{name} must take the case id alone")
        self._own_lock = threading.Lock()
        self._own: PoolProxiedConnection | None = None
        self._own_pid = 0
        # Cache stamps (see _stamp): only where PRAGMA data_version covers the tables,
        # i.e. they are in the main database, not an attached schema.
        self._stamps = stamps
        self._epoch = 0
        self._data_version: int | None = None

    def _take(self) -> tuple[Any, PoolProxiedConnection | None]:
        """A DBAPI connection, not in a transaction, for one call, and the pooled
        connection to give back after it (None: the store's own). Hand it back with
        ``_give_back``. (Explicit rather than a context manager: this runs twice a step.)"""
        if not self._own_lock.acquire(blocking=False):
            pooled = self._writer.raw_connection()
            return pooled.driver_connection, pooled
        try:
            own = self._own
            if own is None or self._own_pid != os.getpid():  # never a parent's, after fork
                own = self._own = self._writer.raw_connection()
                self._own_pid = os.getpid()
                self._epoch += 1
                self._data_version = None
            return own.driver_connection, None
        except BaseException:
            self._own_lock.release()
            raise

    def _give_back(self, pooled: PoolProxiedConnection | None, failed: bool) -> None:
        if pooled is not None:
            pooled.close()
            return
        try:
            if failed and self._own is not None:
                # In doubt about its state: back to the pool (which rolls back or
                # discards it), and a fresh one next time.
                own, self._own = self._own, None
                own.close()
        finally:
            self._own_lock.release()

    def close(self) -> None:
        """Give the store's own connection back to the pool."""
        with self._own_lock:
            own, self._own = self._own, None
            if own is not None and self._own_pid == os.getpid():
                own.close()

    def snapshot(self, case_id: str, cache: SnapshotCache) -> tuple[Case | None, str | None, Stamp]:
        """``(cached, None, stamp)`` when the cache's entry is proven current without
        reading the row; else ``(None, stored text or None if no such case, stamp)``,
        the stamp to put the case in the cache with."""
        db, pooled = self._take()
        failed = True
        try:
            stamp = self._stamp(db) if pooled is None else None
            cached = cache.fresh(case_id, stamp)
            if cached is not None:
                failed = False
                return cached, None, stamp
            row = db.execute(self._sql["snapshot"].sql, (case_id,)).fetchone()
            failed = False
        finally:
            self._give_back(pooled, failed)
        return None, None if row is None else str(row[0]), stamp

    def _stamp(self, db: Any) -> Stamp:
        """The database as the store's own connection sees it now: ``PRAGMA
        data_version`` changes whenever any other connection, in any process, commits;
        ``total_changes`` whenever this one changes a row; the epoch whenever the
        connection is replaced. Equal stamps: nothing was written in between, but what
        this store put in its cache itself (after its own commits)."""
        if not self._stamps:
            return None
        self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
        return (self._epoch, self._data_version, db.total_changes)

    def append(
        self,
        case: Row,
        expected_version: int,
        events: Sequence[Row],
        deadlines: Sequence[Row] | None,
        idempotency: Row | None,
        unchanged: Mapping[str, int] | None,
    ) -> Stamp:
        """One step, in one transaction: the case row (inserted for version 0, else
        updated only at ``expected_version``), events, deadlines (None: left as they are),
        the idempotency key; or ``ConcurrencyConflict`` and nothing written. Returns the
        stamp to cache the new snapshot with (None: none can be given)."""
        sql = self._sql
        case_id = case["case_id"]
        db, pooled = self._take()
        failed = True
        try:
            db.execute(BEGIN)
            try:
                if unchanged:
                    self._check_unchanged(db, unchanged)
                if expected_version == 0:
                    db.execute(sql["insert_case"].sql, sql["insert_case"].params(case))
                else:
                    update = sql["update_case"]
                    params = update.params(
                        {**case, "b_case_id": case_id, "b_expected": expected_version}
                    )
                    if db.execute(update.sql, params).rowcount != 1:
                        found = self._version(db, case_id)
                        raise ConcurrencyConflict(case_id, expected_version, found)
                insert = sql["insert_events"]
                if len(events) == 1:
                    db.execute(insert.sql, insert.params(events[0]))
                else:
                    db.executemany(insert.sql, [insert.params(e) for e in events])
                if deadlines is not None:
                    db.execute(sql["clear_deadlines"].sql, (case_id,))
                    if deadlines:
                        insert = sql["insert_deadlines"]
                        db.executemany(insert.sql, [insert.params(d) for d in deadlines])
                if idempotency is not None:
                    insert = sql["insert_idempotency"]
                    db.execute(insert.sql, insert.params(idempotency))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise
            failed = False
            # As of the data version last read on this connection (another connection's
            # commit since then changes it); total_changes now counts this commit.
            if pooled is None and self._stamps and self._data_version is not None:
                return (self._epoch, self._data_version, db.total_changes)
            return None
        except ConcurrencyConflict:
            failed = False  # the transaction was rolled back cleanly
            raise
        finally:
            self._give_back(pooled, failed)

    def _version(self, db: Any, case_id: str) -> int | None:
        row = db.execute(self._sql["case_version"].sql, (case_id,)).fetchone()
        return None if row is None else int(row[0])

    def _check_unchanged(self, db: Any, versions: Mapping[str, int]) -> None:
        """Other cases the decision read must still be at those versions (the write lock,
        taken at BEGIN IMMEDIATE, keeps them so until commit)."""
        for other, version in versions.items():
            found = self._version(db, other)
            if (found or 0) != version:
                raise ConcurrencyConflict(other, version, found)
