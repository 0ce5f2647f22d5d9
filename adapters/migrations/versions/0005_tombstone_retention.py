"""Tombstones record the retention period their purge judged by (decision 0054), so a
verifier without the policy can check that a case was purged no earlier than that many
years after it closed. Tombstones written before get it from their reason, which the
engine wrote as ``retention period of N years after closing ended``; one whose reason
does not say so (written by other software) keeps NULL.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import re

from alembic import context, op
from sqlalchemy import Column, Integer, bindparam, select, update

from adapters.sql_schema import Tables

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: The reason ``Engine.purge_expired`` wrote before revision 0005 (and still writes).
_REASON = re.compile(r"retention period of ([1-9][0-9]{0,2}) years after closing ended")
#: The retention periods a policy can give (``policies.model.Retention``).
_YEARS = range(1, 101)


def upgrade() -> None:
    tables: Tables = context.config.attributes["tables"]
    tombstones = tables.tombstones
    bind = op.get_bind()
    op.add_column(tombstones.name, Column("retention_years", Integer), schema=tombstones.schema)
    c = tombstones.c
    found = []
    for case_id, reason in bind.execute(select(c.case_id, c.reason)).all():
        given = _REASON.fullmatch(reason) if isinstance(reason, str) else None
        if given is not None and int(given.group(1)) in _YEARS:
            found.append({"b_case_id": case_id, "b_years": int(given.group(1))})
    if found:
        write = (
            update(tombstones)
            .where(c.case_id == bindparam("b_case_id"))
            .values(retention_years=bindparam("b_years"))
        )
        bind.execute(write, found)


def downgrade() -> None:
    tombstones = context.config.attributes["tables"].tombstones
    op.drop_column(tombstones.name, "retention_years", schema=tombstones.schema)
