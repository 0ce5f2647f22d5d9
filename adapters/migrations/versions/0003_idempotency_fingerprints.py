"""Idempotency keys keep the fingerprint of the command they name (decision 0032).
Keys recorded before have none (NULL): the engine checks their case and step only.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import Column, String

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = context.config.attributes["tables"].idempotency
    op.add_column(table.name, Column("fingerprint", String(200)), schema=table.schema)


def downgrade() -> None:
    table = context.config.attributes["tables"].idempotency
    op.drop_column(table.name, "fingerprint", schema=table.schema)
