"""Alembic environment for complaintflow's SQL store. Run through ``adapters.migrate``
(``complaintflow db init|upgrade URL``), which passes the connection and the tables."""

from __future__ import annotations

from alembic import context

config = context.config
tables = config.attributes["tables"]
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=tables.metadata,
    version_table=tables.version_table,
    version_table_schema=tables.metadata.schema,
)
with context.begin_transaction():
    context.run_migrations()
