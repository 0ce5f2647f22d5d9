"""The initial schema: cases, events, deadlines, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.metadata.create_all(bind=op.get_bind())


def downgrade() -> None:
    tables = context.config.attributes["tables"]
    tables.metadata.drop_all(bind=op.get_bind())
