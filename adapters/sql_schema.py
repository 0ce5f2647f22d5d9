"""The SQL store's tables, built for a table-name prefix and a schema name, so the store
can live inside a support product's own database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)

from workflow.domain import MAX_ASSIGNEE

#: The schema revision this code reads and writes (the Alembic head in adapters/migrations).
SCHEMA_REVISION = "0005"


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in any database (SQLite keeps no offset: it is added back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def case_query_indexes(prefix: str) -> list[Index]:
    """The cases table's indexes revision 0004 adds, for ``find_cases``: the order of
    pages, and each of the two columns it added followed by that order (a page of one
    agent's cases is read in order, not sorted). These two are partial: a case with no
    assignee, or not escalated, has no entry, so a step on it writes none (SQLite
    rewrites the entry of every index on a column an UPDATE sets, changed or not)."""
    return [
        Index(f"{prefix}cases_opened", "opened_at", "case_id"),
        *(
            Index(
                f"{prefix}cases_{name}",
                name,
                "opened_at",
                "case_id",
                sqlite_where=text(f"{name} IS NOT NULL"),
                postgresql_where=text(f"{name} IS NOT NULL"),
            )
            for name in ("assignee", "escalated_to")
        ),
    ]


@dataclass(frozen=True)
class Tables:
    metadata: MetaData
    cases: Table
    events: Table
    deadlines: Table
    idempotency: Table
    tombstones: Table
    version_table: str


def build_tables(prefix: str = "cf_", schema: str | None = None) -> Tables:
    metadata = MetaData(schema=schema)
    cases = Table(
        f"{prefix}cases",
        metadata,
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
        # Revision 0004 (added after the snapshot, as ALTER TABLE adds columns): the
        # assignee (NULL for one over MAX_ASSIGNEE characters, assigned before assign
        # refused such names) and the role the case is escalated to now.
        Column("assignee", String(MAX_ASSIGNEE)),
        Column("escalated_to", String(64)),
        Index(f"{prefix}cases_customer", "customer_id"),
        Index(f"{prefix}cases_state", "state"),
        *case_query_indexes(prefix),
    )
    case_fk = f"{schema + '.' if schema else ''}{prefix}cases.case_id"
    events = Table(
        f"{prefix}events",
        metadata,
        Column("case_id", String(200), ForeignKey(case_fk), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("type", String(40), nullable=False),
        Column("at", UtcDateTime, nullable=False),
        Column("actor", String(300), nullable=False),
        Column("data", Text, nullable=False),
        Column("policy_version", String(200), nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        PrimaryKeyConstraint("case_id", "seq", name=f"{prefix}events_pk"),
        Index(f"{prefix}events_at", "at"),
    )
    deadlines = Table(
        f"{prefix}deadlines",
        metadata,
        Column("case_id", String(200), ForeignKey(case_fk), nullable=False),
        Column("key", String(200), nullable=False),
        Column("target", String(64), nullable=False),
        Column("step", String(40), nullable=False),
        Column("kind", String(10), nullable=False),
        Column("percent", Integer, nullable=False),
        Column("status", String(10), nullable=False, default="pending"),
        Column("due_at", UtcDateTime, nullable=False),
        Column("claimed_until", UtcDateTime),
        PrimaryKeyConstraint("case_id", "key", name=f"{prefix}deadlines_pk"),
        Index(f"{prefix}deadlines_due", "status", "due_at"),
    )
    idempotency = Table(
        f"{prefix}idempotency",
        metadata,
        Column("key", String(200), primary_key=True),
        Column("case_id", String(200), nullable=False),
        Column("version", Integer, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        # The command's fingerprint (workflow.idempotency); NULL for keys recorded
        # before revision 0003.
        Column("fingerprint", String(200)),
    )
    tombstones = Table(
        f"{prefix}tombstones",
        metadata,
        Column("case_id", String(200), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("head_hash", String(64), nullable=False),
        Column("opened_at", UtcDateTime, nullable=False),
        Column("closed_at", UtcDateTime, nullable=False),
        Column("purged_at", UtcDateTime, nullable=False),
        Column("purged_by", String(300), nullable=False),
        Column("reason", Text, nullable=False),
        # The retention period the purge judged by (revision 0005; NULL for tombstones
        # written before whose reason does not give it).
        Column("retention_years", Integer),
    )
    return Tables(
        metadata, cases, events, deadlines, idempotency, tombstones, f"{prefix}alembic_version"
    )
