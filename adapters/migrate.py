"""Schema lifecycle for the SQL store: Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine

from adapters.sql import _require_sqlite_file, _translated
from adapters.sql_schema import Tables, build_tables

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config(tables: Tables) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["tables"] = tables
    return config


def init_schema(engine: Engine, tables: Tables) -> None:
    """Bring the database to the current schema revision (creating it if empty)."""
    config = _config(tables)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def upgrade(url: str, *, prefix: str = "cf_", schema: str | None = None) -> None:
    """``complaintflow db init|upgrade URL``: create or upgrade the tables."""
    _require_sqlite_file(url, create=True)
    with _translated(f"setting up the tables in {url}"):
        engine = create_engine(url)
        try:
            init_schema(engine, build_tables(prefix, schema))
        finally:
            engine.dispose()
