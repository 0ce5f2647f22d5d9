"""Tombstones of cases purged at the end of their retention period.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.tombstones.create(bind=op.get_bind())


def downgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.tombstones.drop(bind=op.get_bind())
