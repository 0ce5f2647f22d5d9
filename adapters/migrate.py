"""Schema lifecycle for the SQL store: Alembic migrations shipped in the package."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from adapters.sql import (
    _driver_named,
    _require_sqlite_file,
    _sqlite_setup,
    _translated,
    attached_schema,
    no_schema,
    schema_too_new,
    shown_url,
)
from adapters.sql_schema import SCHEMA_REVISION, Tables, build_tables
from workflow.errors import SchemaVersionError

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


@cache
def known_revisions() -> tuple[str, ...]:
    """The schema revisions this package's migrations know, oldest first: the last is
    the head (``SCHEMA_REVISION``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    walked = [script.revision for script in ScriptDirectory.from_config(config).walk_revisions()]
    return tuple(reversed(walked))


def _refuse_unknown(connection: Connection, tables: Tables, url: str) -> None:
    """Tables at a revision none of this package's migrations know were set up by a
    newer complaintflow: refused before Alembic is asked to upgrade from it (it would
    fail with "Can't locate revision"), so nothing is written."""
    options = {
        "version_table": tables.version_table,
        "version_table_schema": tables.metadata.schema,
    }
    found = MigrationContext.configure(connection, opts=options).get_current_heads()
    for revision in found:
        if revision not in known_revisions():
            raise schema_too_new(url, revision)


def init_schema(engine: Engine, tables: Tables) -> None:
    """Bring the database to the current schema revision (creating it if empty).
    Tables at a revision this package does not know raise ``SchemaVersionError`` before
    anything is written; so does any other error Alembic raises (in one line, Alembic's
    error kept as the cause)."""
    config = _config(tables)
    url = engine.url.render_as_string(hide_password=True)
    with engine.begin() as connection:
        schema = tables.metadata.schema
        if schema is not None and schema not in inspect(connection).get_schema_names():
            prefix = tables.cases.name.removesuffix("cases")
            raise no_schema(url, engine.dialect, prefix, schema)
        _one_at_a_time(connection, tables)
        _refuse_unknown(connection, tables, url)
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except (CommandError, RevisionError) as error:
            first_line = str(error).split("\n", 1)[0].rstrip()
            raise SchemaVersionError(
                f"{url}: Alembic could not bring the tables to schema {SCHEMA_REVISION}: "
                f"{first_line}; nothing was changed"
            ) from error


def upgrade(url: str, *, prefix: str = "cf_", schema: str | None = None) -> None:
    """``complaintflow db init|upgrade URL``: create or upgrade the tables. A schema on
    SQLite is refused before anything is opened: connections made from a URL have no
    database attached (``open_store(..., create=True)`` with a ``creator`` that attaches
    it sets up such tables)."""
    _require_sqlite_file(url, create=True, prefix=prefix, schema=schema)
    with _translated(f"setting up the tables in {shown_url(url)}"), _driver_named(url):
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            if attached_schema(schema):
                engine.dispose()
                raise no_schema(url, engine.dialect, prefix, schema)
            # As the store's own connections: the whole upgrade one transaction that
            # takes the write lock at its start (the driver opens none before DDL, so
            # each CREATE or ALTER was committed by itself), waiting 30 s for it.
            _sqlite_setup(engine, "FULL", immediate=True)
        try:
            init_schema(engine, build_tables(prefix, schema))
        finally:
            engine.dispose()
