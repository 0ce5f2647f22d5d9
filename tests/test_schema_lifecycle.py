"""`complaintflow db init|upgrade` and the schema errors, as a support product meets them:
its own table prefix or schema, several deploys at once, credentials in the URL."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from adapters import migrate
from adapters.sql import SqlStore
from adapters.sql_schema import build_tables
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import SchemaVersionError


def _at_revision_0001(url: str, prefix: str) -> None:
    engine = create_engine(url)
    config = migrate._config(build_tables(prefix))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        migrate.command.upgrade(config, "0001")
    engine.dispose()


def test_the_command_a_schema_error_names_carries_the_prefix_and_schema(tmp_path: Path) -> None:
    """Running the command the error names must upgrade the tables the store reads, not
    create a second, default set next to them."""
    url = sqlite_url(tmp_path)
    _at_revision_0001(url, "support_cf_")
    with pytest.raises(SchemaVersionError) as error:
        SqlStore(url, prefix="support_cf_")
    assert f"run `complaintflow db upgrade {url} --prefix support_cf_`" in str(error.value)
    with pytest.raises(SchemaVersionError) as error:
        SqlStore(url, prefix="other_", schema="main")
    assert f"`complaintflow db init {url} --prefix other_ --schema main`" in str(error.value)


@pytest.mark.postgres
def test_a_schema_error_does_not_show_the_password_in_the_url() -> None:
    """Support products log these errors: the database password must not reach them."""
    url = postgres_url().replace("://postgres@", "://postgres:s3cret-pw@")
    with pytest.raises(SchemaVersionError) as error:
        SqlStore(url, prefix=fresh_prefix())
    assert "s3cret-pw" not in str(error.value)
    assert "postgres:***@" in str(error.value)


@pytest.mark.postgres
def test_two_deploys_running_db_upgrade_at_once_both_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pod of a support product may run `db upgrade` as it starts: the second waits
    for the first instead of failing on the tables the first is creating."""
    url = postgres_url()
    prefix = fresh_prefix()
    upgrade = migrate.command.upgrade

    def slow_upgrade(config: Any, revision: str) -> None:
        upgrade(config, revision)
        time.sleep(0.5)  # the tables exist, not yet committed

    monkeypatch.setattr(migrate.command, "upgrade", slow_upgrade)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(url, prefix=prefix)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join()
        assert errors == []
        store = SqlStore(url, prefix=prefix)
        assert store.schema_revision() == "0002"
        store.close()
    finally:
        drop_tables(url, prefix)
