"""Tombstones of cases purged at the end of their retention period.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import Column, Integer, MetaData, String, Table, Text

from adapters.sql_schema import Tables, UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tombstones(tables: Tables) -> Table:
    """The tombstones table as this revision made it (0005 adds ``retention_years``)."""
    current = tables.tombstones
    return Table(
        current.name,
        MetaData(schema=current.schema),
        Column("case_id", String(200), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("head_hash", String(64), nullable=False),
        Column("opened_at", UtcDateTime, nullable=False),
        Column("closed_at", UtcDateTime, nullable=False),
        Column("purged_at", UtcDateTime, nullable=False),
        Column("purged_by", String(300), nullable=False),
        Column("reason", Text, nullable=False),
    )


def upgrade() -> None:
    _tombstones(context.config.attributes["tables"]).create(bind=op.get_bind())


def downgrade() -> None:
    _tombstones(context.config.attributes["tables"]).drop(bind=op.get_bind())
