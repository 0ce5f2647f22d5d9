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
from adapters.sql_schema import SCHEMA_REVISION, build_tables
from tests.conftest import START
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import Engine, IdempotencyKeyReused, ManualClock, SchemaVersionError


def _at_revision_0001(url: str, prefix: str) -> None:
    _at_revision(url, prefix, "0001")


def _at_revision(url: str, prefix: str, revision: str) -> None:
    """The tables as complaintflow's migrations left them at ``revision``."""
    engine = create_engine(url)
    config = migrate._config(build_tables(prefix))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        migrate.command.upgrade(config, revision)
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
        assert store.schema_revision() == SCHEMA_REVISION
        store.close()
    finally:
        drop_tables(url, prefix)


@pytest.mark.parametrize("revision", ["0001", "0002"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_db_upgrade_adds_fingerprints_and_keeps_the_keys_recorded_before(
    backend: str, revision: str, tmp_path: Path
) -> None:
    """A database an earlier complaintflow made (tables at ``revision``, holding a case
    and idempotency keys): `complaintflow db upgrade` adds the fingerprint column. The
    keys recorded before have none and keep the case-and-step check (decision 0032);
    new keys are recorded with their fingerprint."""
    from click.testing import CliRunner
    from sqlalchemy import inspect, text

    from workflow.cli import main

    url = postgres_url() if backend == "postgres" else sqlite_url(tmp_path)
    old, head = fresh_prefix(), fresh_prefix()
    try:
        # A case with keys, written by a store at the head revision, then copied into
        # tables at the old revision (the columns they share).
        writer = SqlStore(url, prefix=head, create=True)
        engine = Engine(writer, clock=ManualClock(START))
        cid = engine.open_case(
            actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="web",
            case_id="case-old", idempotency_key="old-open",
        ).id  # fmt: skip
        engine.add_note(cid, actor="agent:a", text="before", idempotency_key="old-note")
        writer.close()
        _at_revision(url, old, revision)
        admin = create_engine(url)
        with admin.begin() as conn:
            for table in ("cases", "events", "deadlines"):
                conn.execute(text(f"INSERT INTO {old}{table} SELECT * FROM {head}{table}"))
            columns = "key, case_id, version, created_at"
            conn.execute(text(
                f"INSERT INTO {old}idempotency ({columns}) SELECT {columns} FROM {head}idempotency"
            ))  # fmt: skip
            before = {c["name"] for c in inspect(conn).get_columns(f"{old}idempotency")}
        assert "fingerprint" not in before
        with pytest.raises(SchemaVersionError, match="run `complaintflow db upgrade"):
            SqlStore(url, prefix=old)

        result = CliRunner().invoke(main, ["db", "upgrade", url, "--prefix", old])
        assert result.exit_code == 0, result.output
        assert f"schema at revision {SCHEMA_REVISION}" in result.output
        with admin.connect() as conn:
            after = {c["name"] for c in inspect(conn).get_columns(f"{old}idempotency")}
        admin.dispose()
        assert after == before | {"fingerprint"}

        store = SqlStore(url, prefix=old)
        engine = Engine(store, clock=ManualClock(START))
        assert store.find_idempotent("old-note") == (cid, 2, None)
        # A key recorded before the upgrade: case and step checked, not the inputs.
        kept = engine.add_note(cid, actor="agent:b", text="other", idempotency_key="old-note")
        assert [n.text for n in kept.notes] == ["before"]
        with pytest.raises(IdempotencyKeyReused, match="the step differs"):
            engine.acknowledge(cid, actor="agent:a", idempotency_key="old-note")
        # A key recorded now has its fingerprint, and other inputs are refused.
        engine.add_note(cid, actor="agent:a", text="after", idempotency_key="new-note")
        spent = store.find_idempotent("new-note")
        assert spent is not None
        assert spent[2] is not None
        with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
            engine.add_note(cid, actor="agent:a", text="else", idempotency_key="new-note")
        assert [e.type for e in store.events(cid)] == ["open", "add_note", "add_note"]
        assert engine.verify() == []
        store.close()
    finally:
        drop_tables(url, old)
        drop_tables(url, head)
