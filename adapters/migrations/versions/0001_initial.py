"""The initial schema: cases, events, deadlines, idempotency keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import context, op
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

from adapters.sql_schema import Tables, UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _initial(tables: Tables) -> list[Table]:
    # The tables of this revision as the code has them still: later revisions add
    # theirs, or columns (``_cases``, ``_idempotency``).
    return [tables.events, tables.deadlines]


def _cases(tables: Tables) -> Table:
    """The cases table as this revision made it (0004 adds ``assignee`` and
    ``escalated_to``, and indexes)."""
    current = tables.cases
    prefix = current.name.removesuffix("cases")
    return Table(
        current.name,
        MetaData(schema=current.schema),
        Column("case_id", String(200), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("state", String(40), nullable=False),
        Column("customer_id", String(200), nullable=False),
        Column("channel", String(20), nullable=False),
        Column("category", String(64)),
        Column("priority", String(20), nullable=False),
        Column("policy_version", String(200), nullable=False),
        Column("opened_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("snapshot", Text, nullable=False),
        Index(f"{prefix}cases_customer", "customer_id"),
        Index(f"{prefix}cases_state", "state"),
    )


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
    _cases(tables).create(bind=op.get_bind())
    tables.metadata.create_all(bind=op.get_bind(), tables=_initial(tables))
    _idempotency(tables).create(bind=op.get_bind())


def downgrade() -> None:
    tables = context.config.attributes["tables"]
    _idempotency(tables).drop(bind=op.get_bind())
    tables.metadata.drop_all(bind=op.get_bind(), tables=_initial(tables))
    _cases(tables).drop(bind=op.get_bind())
