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
            cases = (
                "case_id, version, state, customer_id, channel, category, priority, "
                "policy_version, opened_at, updated_at, snapshot"
            )  # the columns of revision 0001 (0004 adds two)
            conn.execute(text(
                f"INSERT INTO {old}cases ({cases}) SELECT {cases} FROM {head}cases"
            ))  # fmt: skip
            for table in ("events", "deadlines"):
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


def _at_revision_in(url: str, prefix: str, schema: str | None, revision: str) -> None:
    """The tables as complaintflow's migrations left them at ``revision``."""
    engine = create_engine(url)
    config = migrate._config(build_tables(prefix, schema))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        migrate.command.upgrade(config, revision)
    engine.dispose()


@pytest.mark.parametrize(
    ("backend", "schema"),
    [
        ("sqlite", None),
        pytest.param("postgres", None, marks=pytest.mark.postgres),
        pytest.param("postgres", "cf_upgrade_0004", marks=pytest.mark.postgres),
    ],
)
def test_db_upgrade_to_0004_fills_in_each_case_s_assignee_and_escalation(
    backend: str, schema: str | None, tmp_path: Path
) -> None:
    """A database at revision 0003 with cases in it: `complaintflow db upgrade` adds the
    assignee and escalation columns, filled in from each snapshot, and their indexes;
    the cases are then found by them, and steps carry on. An assignee longer than the
    column (assigned before `assign` refused such names) and a snapshot that is not a
    case's JSON leave the columns empty, with a warning naming the first's case."""
    import logging

    from click.testing import CliRunner
    from sqlalchemy import inspect, text

    from workflow.cli import main

    url = postgres_url() if backend == "postgres" else sqlite_url(tmp_path)
    old, head = fresh_prefix(), fresh_prefix()
    admin = create_engine(url)
    dotted = f"{schema}." if schema else ""
    if schema:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    warned: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: warned.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("complaintflow").addHandler(handler)
    try:
        writer = SqlStore(url, prefix=head, create=True)
        clock = ManualClock(START)
        engine = Engine(writer, clock=clock)
        for n in range(6):
            engine.open_case(actor="agent:a", customer={"id": f"c-{n}", "name": "Ann"},
                             channel="web", case_id=f"case-{n}")  # fmt: skip
        engine.assign("case-0", actor="team-lead:t", to="agent:alice")
        engine.escalate("case-1", actor="agent:a", reason="manager", to_role="team-lead")
        engine.assign("case-2", actor="team-lead:t", to="agent:bob")
        engine.escalate("case-2", actor="agent:bob", reason="legal", to_role="legal")
        engine.resume("case-2", actor="legal:l")
        engine.assign("case-4", actor="team-lead:t", to="agent:x")
        writer.close()
        _at_revision_in(url, old, schema, "0003")
        columns = (
            "case_id, version, state, customer_id, channel, category, priority, "
            "policy_version, opened_at, updated_at, snapshot"
        )
        long_name = "agent:" + "x" * 300
        with admin.begin() as conn:
            conn.execute(text(
                f"INSERT INTO {dotted}{old}cases ({columns}) SELECT {columns} FROM {head}cases"
            ))  # fmt: skip
            for table in ("events", "deadlines", "idempotency"):
                conn.execute(text(f"INSERT INTO {dotted}{old}{table} SELECT * FROM {head}{table}"))
            # case-4: assigned to a name longer than assign takes now; case-5: a snapshot
            # edited into something that is not a case.
            conn.execute(text(
                f"UPDATE {dotted}{old}cases SET snapshot = REPLACE(snapshot, "
                f"'\"assignee\":\"agent:x\"', '\"assignee\":\"{long_name}\"') "
                "WHERE case_id = 'case-4'"
            ))  # fmt: skip
            conn.execute(text(
                f"UPDATE {dotted}{old}cases SET snapshot = 'not json' WHERE case_id = 'case-5'"
            ))  # fmt: skip
        with pytest.raises(SchemaVersionError, match="is at schema 0003; this complaintflow"):
            SqlStore(url, prefix=old, schema=schema)

        options = ["--prefix", old, *(["--schema", schema] if schema else [])]
        result = CliRunner().invoke(main, ["db", "upgrade", url, *options])
        assert result.exit_code == 0, result.output
        assert "schema at revision 0004" in result.output
        assert warned == [
            "schema 0004: 1 case(s) have an assignee longer than 300 characters, left out "
            "of the assignee column (find_cases(assignee=...) does not find them until "
            "they are assigned again): case-4"
        ]
        with admin.connect() as conn:
            found = inspect(conn)
            indexes = {i["name"] for i in found.get_indexes(f"{old}cases", schema=schema)}
            rows = conn.execute(text(
                f"SELECT case_id, assignee, escalated_to FROM {dotted}{old}cases "
                "ORDER BY case_id"
            )).all()  # fmt: skip
        assert {f"{old}cases_{name}" for name in ("opened", "assignee", "escalated_to")} <= (
            indexes
        )
        assert [tuple(row) for row in rows] == [
            ("case-0", "agent:alice", None),
            ("case-1", None, "team-lead"),
            ("case-2", "agent:bob", None),
            ("case-3", None, None),
            ("case-4", None, None),
            ("case-5", None, None),
        ]

        store = SqlStore(url, prefix=old, schema=schema)
        engine = Engine(store, clock=clock)
        assert [c.id for c in engine.find_cases(assignee="agent:alice").cases] == ["case-0"]
        assert [c.id for c in engine.find_cases(escalated_to="team-lead").cases] == ["case-1"]
        assert engine.get("case-4").assignee == long_name
        engine.add_note("case-4", actor="agent:a", text="still written")  # column left NULL
        engine.assign("case-3", actor="team-lead:t", to="agent:alice")
        engine.resume("case-1", actor="team-lead:t")
        engine.assign("case-4", actor="team-lead:t", to="agent:alice")
        alice = engine.find_cases(assignee="agent:alice")
        assert [c.id for c in alice.cases] == ["case-0", "case-3", "case-4"]
        assert engine.find_cases(escalated_to="team-lead").cases == ()
        store.close()
    finally:
        logging.getLogger("complaintflow").removeHandler(handler)
        if schema:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        else:
            drop_tables(url, old)
        drop_tables(url, head)
        admin.dispose()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_new_tables_and_upgraded_ones_are_the_same(backend: str, tmp_path: Path) -> None:
    """`db init` runs every migration from the first, so a new database has the columns
    (in their order) and indexes of one upgraded revision by revision; and they are the
    tables the store's code describes."""
    from sqlalchemy import inspect

    url = postgres_url() if backend == "postgres" else sqlite_url(tmp_path)
    new, upgraded = fresh_prefix(), fresh_prefix()
    try:
        SqlStore(url, prefix=new, create=True).close()
        for revision in ("0001", "0002", "0003", "0004"):
            _at_revision(url, upgraded, revision)
        engine = create_engine(url)
        with engine.connect() as conn:
            found = inspect(conn)

            def shape(prefix: str, table: str) -> tuple[object, ...]:
                name = f"{prefix}{table}"
                columns = [c["name"] for c in found.get_columns(name)]
                indexes = sorted(
                    (i["name"].removeprefix(prefix), tuple(i["column_names"]))
                    for i in found.get_indexes(name)
                )
                return columns, indexes

            tables = ("cases", "events", "deadlines", "idempotency", "tombstones")
            shapes = {table: shape(new, table) for table in tables}
            assert shapes == {table: shape(upgraded, table) for table in tables}
        engine.dispose()
        code = build_tables(new)
        for table in tables:
            described = getattr(code, table)
            assert shapes[table][0] == [c.name for c in described.columns]
            assert shapes[table][1] == sorted(
                (i.name.removeprefix(new), tuple(c.name for c in i.columns))
                for i in described.indexes
                if i.name is not None
            )
    finally:
        drop_tables(url, new)
        drop_tables(url, upgraded)
