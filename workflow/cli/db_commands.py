"""``complaintflow db``: create or upgrade the SQL store's tables."""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from adapters.migrate import upgrade as upgrade_schema
from adapters.sql import SqlStore, shown_url
from workflow.cli.common import refuse_sqlite_schema
from workflow.errors import ComplaintflowError

_PREFIX = click.option("--prefix", default="cf_", show_default=True, help="Table-name prefix.")
_SCHEMA = click.option("--schema", default=None, help="Database schema (PostgreSQL).")


@click.group()
def db() -> None:
    """The SQL store's schema: init and upgrade (Alembic migrations shipped inside)."""


def _run(url: str, prefix: str, schema: str | None) -> None:
    try:
        scheme = urlsplit(url).scheme.split("+", 1)[0]
    except ValueError as exc:  # an unclosed "[": a message, not a traceback
        raise click.ClickException(f"{shown_url(url)} is not a URL: {exc}") from None
    if scheme not in ("sqlite", "postgresql"):
        raise click.ClickException(
            f"{shown_url(url)} is not a SQL store URL: `db` sets up the SQL store's tables "
            "(sqlite:///cases.db, postgresql+psycopg://user@host/db); the memory store "
            "needs none, and another store is set up as its own package says"
        )
    refuse_sqlite_schema(url, schema)
    try:
        upgrade_schema(url, prefix=prefix, schema=schema)
        store = SqlStore(url, prefix=prefix, schema=schema)
        revision = store.schema_revision()
        store.close()
    except ComplaintflowError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # a URL SQLAlchemy cannot read: say it plainly
        raise click.ClickException(f"{shown_url(url)}: {exc}") from None
    where = f"{prefix}*" + (f" in schema {schema}" if schema else "")
    click.echo(f"{shown_url(url)}: complaintflow schema at revision {revision} (tables {where})")


@db.command()
@click.argument("url")
@_PREFIX
@_SCHEMA
def init(url: str, prefix: str, schema: str | None) -> None:
    """Create complaintflow's tables in the database at URL."""
    _run(url, prefix, schema)


@db.command()
@click.argument("url")
@_PREFIX
@_SCHEMA
def upgrade(url: str, prefix: str, schema: str | None) -> None:
    """Upgrade complaintflow's tables at URL to this version's schema."""
    _run(url, prefix, schema)
