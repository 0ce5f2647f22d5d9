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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from workflow.errors import ConcurrencyConflict

BEGIN = "BEGIN IMMEDIATE"

Row = Mapping[str, Any]


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
            # The type as this dialect runs it (a TypeDecorator's own bind_processor
            # would skip SQLite's DATETIME formatting): what Core binds, to the byte.
            type_ = compiled.binds[name].type.dialect_impl(dialect)
            process = type_.bind_processor(dialect)
            if process is not None:
                processors.append((index, process))
        self.processors = tuple(processors)

    def params(self, row: Row) -> list[Any]:
        values = [row[name] for name in self.names]
        for index, process in self.processors:
            values[index] = process(values[index])
        return values


class SqliteHotPath:
    """``load`` on the reader engine's pool, ``append`` as one ``BEGIN IMMEDIATE``
    transaction on the writer engine's pool. ``statements`` are the store's Core
    statements by name (see ``SqlStore._prepare_statements``)."""

    def __init__(self, writer: Engine, reader: Engine, statements: Mapping[str, ClauseElement]):
        self._writer = writer
        self._reader = reader
        dialect = writer.dialect
        self._sql = {name: Prepared(statement, dialect) for name, statement in statements.items()}
        for name in ("snapshot", "case_version", "clear_deadlines"):
            if self._sql[name].names != ("b_case_id",):  # pragma: no cover - a wiring slip
                raise TypeError(f"{name} must take the case id alone")

    def snapshot(self, case_id: str) -> str | None:
        """The case's stored snapshot text, or None if there is no such case."""
        pooled = self._reader.raw_connection()
        try:
            db = pooled.driver_connection
            row = db.execute(self._sql["snapshot"].sql, (case_id,)).fetchone()  # type: ignore[union-attr]
        finally:
            pooled.close()
        return None if row is None else str(row[0])

    def append(
        self,
        case: Row,
        expected_version: int,
        events: Sequence[Row],
        deadlines: Sequence[Row] | None,
        idempotency: Row | None,
        unchanged: Mapping[str, int] | None,
    ) -> None:
        """One step, in one transaction: the case row (inserted for version 0, else
        updated only at ``expected_version``), events, deadlines (None: left as they are),
        the idempotency key; or ``ConcurrencyConflict`` and nothing written."""
        sql = self._sql
        case_id = case["case_id"]
        pooled = self._writer.raw_connection()
        try:
            db: Any = pooled.driver_connection
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
        finally:
            pooled.close()

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
