"""How the tests reach each store: an SQLite file, and PostgreSQL from
``COMPLAINTFLOW_TEST_POSTGRES_URL`` (skipped with a reason outside CI when unset or
unreachable; under ``CI=true`` an unreachable server fails the run)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

POSTGRES_ENV = "COMPLAINTFLOW_TEST_POSTGRES_URL"


def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set; CI must test PostgreSQL")
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
        )
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {url} is unreachable under CI: {exc.orig}")
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc.orig}")
    finally:
        engine.dispose()
    return url


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cases.db'}"


def fresh_prefix() -> str:
    """A table prefix of its own, so tests on one PostgreSQL database never meet."""
    return f"t{uuid.uuid4().hex[:10]}_"


def drop_tables(url: str, prefix: str) -> None:
    from sqlalchemy import create_engine

    from adapters.sql_schema import build_tables

    engine = create_engine(url)
    tables = build_tables(prefix)
    try:
        with engine.begin() as conn:
            tables.metadata.drop_all(conn)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {tables.version_table}")
    finally:
        engine.dispose()


def postgres_language_collation_url() -> str:
    """A database beside the test database whose collation sorts text by language rules
    (ICU ``en-US``: ``case-a`` before ``case-B``, ``case-é`` before ``case-Z9``), as
    production databases made with a locale do; the test database may well be ``C``,
    under which byte order needs no asking. Made if missing, and kept, as the test
    database is."""
    from sqlalchemy import create_engine, make_url, text
    from sqlalchemy.exc import ProgrammingError

    url = make_url(postgres_url())
    name = f"{url.database}_language_collation"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if found.first() is None:
                try:
                    conn.execute(text(
                        f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' '
                        "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                    ))  # fmt: skip
                except ProgrammingError as exc:  # made meanwhile by another run
                    if "already exists" not in str(exc):
                        raise
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def postgres_store(url: str | None = None, **options: object) -> Iterator[object]:
    """A ``SqlStore`` on tables of its own (``url``: the test database unless given),
    closed and dropped after."""
    from adapters.sql import SqlStore

    url = url if url is not None else postgres_url()
    prefix = fresh_prefix()
    store = SqlStore(url, prefix=prefix, create=True, **options)  # type: ignore[arg-type]
    try:
        yield store
    finally:
        store.close()
        drop_tables(url, prefix)


#: The SQL databases a test of the SQL store runs on (PostgreSQL with the ``postgres``
#: mark: see ``postgres_url`` for when it is skipped or fails).
SQL_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def sql_tables(kind: str, tmp_path: Path) -> Iterator[tuple[Any, str, str]]:
    """``(store, url, prefix)``: a ``SqlStore`` on fresh tables, on SQLite (prefix
    ``cf_``, in ``tmp_path``) or PostgreSQL (a prefix of their own); closed after, and
    on PostgreSQL the tables dropped."""
    from adapters.sql import SqlStore

    if kind == "sqlite":
        url, prefix = sqlite_url(tmp_path), "cf_"
    else:
        url, prefix = postgres_url(), fresh_prefix()
    store = SqlStore(url, prefix=prefix, create=True)
    try:
        yield store, url, prefix
    finally:
        store.close()
        if kind == "postgres":
            drop_tables(url, prefix)


#: The stores a test runs on when it holds for every store (PostgreSQL carries the
#: ``postgres`` mark: see ``postgres_url`` for when it is skipped or fails).
STORE_KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def each_store(kind: str, tmp_path: Path) -> Iterator[Any]:
    """A fresh store of ``kind`` (one of ``STORE_KINDS``) for one test; closed after it,
    and on PostgreSQL its tables dropped."""
    if kind == "memory":
        from adapters.memory import MemoryStore

        yield MemoryStore()
    elif kind == "sqlite":
        from adapters.sql import SqlStore

        store = SqlStore(sqlite_url(tmp_path), create=True)
        try:
            yield store
        finally:
            store.close()
    else:
        yield from postgres_store()
