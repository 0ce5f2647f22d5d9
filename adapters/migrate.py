"""Schema lifecycle for the SQL store: Alembic migrations shipped in the package."""

from __future__ import annotations

import hashlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text

from adapters.sql import _require_sqlite_file, _translated, shown_url
from adapters.sql_schema import Tables, build_tables

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(tables: Tables) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["tables"] = tables
    return config


def _lock_key(tables: Tables) -> int:
    """A 64-bit advisory lock key naming these tables (their schema and prefix)."""
    name = f"complaintflow:{tables.metadata.schema or ''}.{tables.version_table}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _one_at_a_time(connection: Connection, tables: Tables) -> None:
    """On PostgreSQL, wait for any other process setting up these tables (several
    deploys running ``db upgrade`` at once) until its transaction ends; it is then read
    at its new revision. SQLite's write lock already serialises them."""
    if connection.dialect.name == "postgresql":
        key = _lock_key(tables)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def init_schema(engine: Engine, tables: Tables) -> None:
    """Bring the database to the current schema revision (creating it if empty)."""
    config = _config(tables)
    with engine.begin() as connection:
        _one_at_a_time(connection, tables)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def upgrade(url: str, *, prefix: str = "cf_", schema: str | None = None) -> None:
    """``complaintflow db init|upgrade URL``: create or upgrade the tables."""
    _require_sqlite_file(url, create=True, prefix=prefix, schema=schema)
    with _translated(f"setting up the tables in {shown_url(url)}"):
        engine = create_engine(url)
        try:
            init_schema(engine, build_tables(prefix, schema))
        finally:
            engine.dispose()
