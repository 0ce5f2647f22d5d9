"""Cases are found by their key fields (decision 0037): the cases table gains
``assignee`` and ``escalated_to`` columns, filled in from each case's snapshot, and
indexes on them and on ``(opened_at, case_id)``, the order of ``find_cases``'s pages.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import json
import logging
from typing import Any

from alembic import context, op
from sqlalchemy import Column, Connection, String, Table, bindparam, select, update

from adapters.sql_schema import Tables, case_query_indexes
from workflow.domain import MAX_ASSIGNEE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: How many case rows are read and written at a time while filling the columns in.
BATCH = 1000
#: The longest role (a ``Slug``).
MAX_ROLE = 64

_log = logging.getLogger("complaintflow")


def _prefix(tables: Tables) -> str:
    return tables.cases.name.removesuffix("cases")


def upgrade() -> None:
    tables: Tables = context.config.attributes["tables"]
    cases = tables.cases
    bind = op.get_bind()
    op.add_column(cases.name, Column("assignee", String(MAX_ASSIGNEE)), schema=cases.schema)
    op.add_column(cases.name, Column("escalated_to", String(MAX_ROLE)), schema=cases.schema)
    _fill_in(bind, cases)
    # After the rows are written: each index built once, not entry by entry.
    by_name = {index.name: index for index in cases.indexes}
    for index in case_query_indexes(_prefix(tables)):
        by_name[index.name].create(bind=bind)


def downgrade() -> None:
    tables: Tables = context.config.attributes["tables"]
    cases = tables.cases
    for index in case_query_indexes(_prefix(tables)):
        assert index.name is not None
        op.drop_index(index.name, table_name=cases.name, schema=cases.schema)
    op.drop_column(cases.name, "escalated_to", schema=cases.schema)
    op.drop_column(cases.name, "assignee", schema=cases.schema)


def _fill_in(bind: Connection, cases: Table) -> None:
    """Each case's assignee and escalation role, read from its snapshot, a batch at a
    time in case id order. A snapshot that is not a case's JSON (it does not load
    either: decision 0035) leaves them NULL, and so does an assignee longer than the
    column or holding U+0000, which PostgreSQL cannot store (assign refuses such names
    now; that case is not found by assignee: the store writes NULL for it, too)."""
    c = cases.c
    write = (
        update(cases)
        .where(c.case_id == bindparam("b_case_id"))
        .values(assignee=bindparam("b_assignee"), escalated_to=bindparam("b_escalated_to"))
    )
    last: str | None = None
    left_out: list[str] = []
    while True:
        query = select(c.case_id, c.snapshot).order_by(c.case_id).limit(BATCH)
        if last is not None:
            query = query.where(c.case_id > last)
        rows = bind.execute(query).all()
        if not rows:
            break
        found = []
        for case_id, snapshot in rows:
            assignee, role, refused = _key_fields(snapshot)
            if refused:
                left_out.append(case_id)
            if assignee is not None or role is not None:
                found.append({"b_case_id": case_id, "b_assignee": assignee, "b_escalated_to": role})
        if found:
            bind.execute(write, found)
        last = rows[-1][0]
    if left_out:
        _log.warning(
            "schema 0004: %d case(s) have an assignee longer than %d characters or holding "
            "U+0000, left out of the assignee column (find_cases(assignee=...) does not "
            "find them until they are assigned again): %s",
            len(left_out),
            MAX_ASSIGNEE,
            ", ".join(left_out),
        )


def _key_fields(snapshot: Any) -> tuple[str | None, str | None, bool]:
    """``(assignee, role escalated to, whether the assignee was left out: too long, or
    holding U+0000)`` from a stored snapshot's JSON; None for what it does not hold as
    text."""
    try:
        data = json.loads(snapshot) if isinstance(snapshot, str) else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, None, False
    assignee = data.get("assignee")
    escalation = data.get("escalation")
    role = escalation.get("to_role") if isinstance(escalation, dict) else None
    refused = isinstance(assignee, str) and (len(assignee) > MAX_ASSIGNEE or "\x00" in assignee)
    if not isinstance(assignee, str) or refused or not assignee:
        assignee = None
    if not isinstance(role, str) or not 0 < len(role) <= MAX_ROLE:
        role = None
    return assignee, role, refused
