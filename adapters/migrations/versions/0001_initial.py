"""The initial schema: cases, events, deadlines, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import Table

from adapters.sql_schema import Tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _initial(tables: Tables) -> list[Table]:
    # The tables of this revision only: later revisions add theirs.
    return [tables.cases, tables.events, tables.deadlines, tables.idempotency]


def upgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.metadata.create_all(bind=op.get_bind(), tables=_initial(tables))


def downgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.metadata.drop_all(bind=op.get_bind(), tables=_initial(tables))
