"""The initial schema: cases, events, deadlines, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import Column, Integer, MetaData, String, Table

from adapters.sql_schema import Tables, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _initial(tables: Tables) -> list[Table]:
    # The tables of this revision as the code has them still: later revisions add
    # theirs, or columns (``_idempotency``).
    return [tables.cases, tables.events, tables.deadlines]


def _idempotency(tables: Tables) -> Table:
    """The idempotency table as this revision made it (0003 adds ``fingerprint``)."""
    current = tables.idempotency
    return Table(
        current.name,
        MetaData(schema=current.schema),
        Column("key", String(200), primary_key=True),
        Column("case_id", String(200), nullable=False),
        Column("version", Integer, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    )


def upgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.metadata.create_all(bind=op.get_bind(), tables=_initial(tables))
    _idempotency(tables).create(bind=op.get_bind())


def downgrade() -> None:
    tables = context.config.attributes["tables"]
    _idempotency(tables).drop(bind=op.get_bind())
    tables.metadata.drop_all(bind=op.get_bind(), tables=_initial(tables))
