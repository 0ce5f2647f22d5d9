"""The SQL store inside a support product's own database, under table names that need
quoting: a prefix with a hyphen or capitals, a schema in mixed case. Every statement the
store runs must name those tables, quoted as the database needs, or the store must say
why not; none may reach another set of tables whose name folds to the same."""

from __future__ import annotations

import json
import shlex
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from adapters import migrate, open_store
from adapters.sql import SqlStore
from adapters.sql_schema import SCHEMA_REVISION, build_tables
from adapters.urls import shown_url
from tests.conftest import START
from tests.stores import postgres_url, sqlite_url
from tests.test_operations import STORE_COMMANDS
from workflow import Engine, ManualClock, SchemaVersionError, StoreError, bundled_policy
from workflow.cli import main

#: A prefix that is no plain SQL name: a hyphen, capitals.
PREFIX = "Desk-CF_"


@contextmanager
def _pg_schema(name: str) -> Iterator[tuple[str, str]]:
    """``(url, schema)``: a new PostgreSQL schema ``name`` (and a random suffix), dropped
    after."""
    url = postgres_url()
    schema = f"{name}{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    quoted = admin.dialect.identifier_preparer.quote_schema(schema)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {quoted}")
    try:
        yield url, schema
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {quoted} CASCADE")
        admin.dispose()


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A schema whose name needs quoting (mixed case, a hyphen, a space), as a support
    product may name its own."""
    with _pg_schema("Acme-Support ") as place:
        yield place


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """``(url, schema)`` to put tables named with ``PREFIX`` in: an SQLite file (no
    schema), or a PostgreSQL schema named as ``pg_schema`` names it."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path), None
    else:
        yield request.getfixturevalue("pg_schema")


def test_a_store_under_a_prefix_and_schema_that_need_quoting_works_throughout(
    place: tuple[str, str | None],
) -> None:
    """Created, opened again, stepped, listed, swept, erased and scrubbed: each works on
    tables named ``Desk-CF_cases`` (in schema ``Acme-Support ...`` on PostgreSQL)."""
    url, schema = place
    clock = ManualClock(START)
    store = open_store(url, prefix=PREFIX, schema=schema, create=True)
    store.close()
    store = open_store(url, prefix=PREFIX, schema=schema)  # the revision is read back
    assert isinstance(store, SqlStore)
    assert store.schema_revision() == SCHEMA_REVISION
    try:
        _work_on(store, clock)
    finally:
        store.close()


def _work_on(store: SqlStore, clock: ManualClock) -> None:
    """Step, list, sweep, erase and scrub on ``store`` (under the retail policy, whose
    chat cases are to be acknowledged within ten minutes)."""
    engine = Engine(store, clock=clock, policy=bundled_policy("retail"))
    case = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="chat", subject="s",
        case_id="T-1", idempotency_key="open-T-1",
    )  # fmt: skip
    engine.acknowledge(case.id, actor="agent:a", idempotency_key="ack-T-1")
    engine.acknowledge(case.id, actor="agent:a", idempotency_key="ack-T-1")  # a retry
    engine.open_case(
        actor="agent:a", customer={"id": "c-2", "name": "Bo"}, channel="chat", subject="s",
        case_id="T-2",
    )  # fmt: skip
    assert [c.id for c in engine.find_cases(state="acknowledged").cases] == ["T-1"]
    clock.advance(hours=1)
    assert [entry.case.id for entry in engine.cases_at_risk(timedelta(0))] == ["T-2"]
    assert {event.type for event in engine.tick()} == {"sla_warning", "sla_breached"}
    assert len(engine.erase_customer("c-1", actor="agent:dpo", reason="asked")) == 1
    store.scrub()
    assert engine.verify() == []
    assert [e.type for e in engine.history("T-1")] == ["open", "acknowledge", "erase_personal_data"]


@pytest.mark.postgres
def test_the_schema_revision_is_read_from_the_tables_named_not_a_lower_cased_namesake() -> None:
    """PostgreSQL folds an unquoted name to lower case: ``CF_X_alembic_version`` read
    unquoted is ``cf_x_alembic_version``, another set of tables. With that set at an old
    revision beside tables at the current one, the current ones open, and the old ones
    are still refused (each by its own revision)."""
    with _pg_schema("cf_names_") as (url, schema):
        engine = create_engine(url)
        config = migrate._config(build_tables("cf_x_", schema))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            migrate.command.upgrade(config, "0003")
        engine.dispose()
        SqlStore(url, prefix="CF_X_", schema=schema, create=True).close()

        store = SqlStore(url, prefix="CF_X_", schema=schema)
        assert store.schema_revision() == SCHEMA_REVISION
        store.close()
        with pytest.raises(SchemaVersionError, match="is at schema 0003; this complaintflow"):
            SqlStore(url, prefix="cf_x_", schema=schema)


def test_the_command_line_reaches_tables_under_a_prefix_and_schema(
    place: tuple[str, str | None],
) -> None:
    """``cases list``, ``sla tick``, ``audit verify`` and ``privacy erase`` with the
    prefix and schema the embedding program gave ``open_store``: they read and write
    those tables (every other command opens them the same way:
    tests/test_operations.py)."""
    url, schema = place
    store = open_store(url, prefix=PREFIX, schema=schema, create=True)
    yesterday = ManualClock(datetime.now(UTC) - timedelta(days=1))  # `sla tick` reads now
    Engine(store, clock=yesterday, policy=bundled_policy("retail")).open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="chat", case_id="T-1"
    )
    store.close()
    where = ["--store", url, "--prefix", PREFIX, *(["--schema", schema] if schema else [])]
    runner = CliRunner()

    listed = runner.invoke(main, ["cases", "list", *where, "--format", "json"])
    assert listed.exit_code == 0, listed.output
    assert [case["id"] for case in json.loads(listed.output)["cases"]] == ["T-1"]
    verified = runner.invoke(main, ["audit", "verify", *where])
    assert verified.exit_code == 0, verified.output
    swept = runner.invoke(main, ["sla", "tick", *where, "--policy", "bundled:retail"])
    assert swept.exit_code == 0, swept.output
    erased = runner.invoke(
        main, ["privacy", "erase", "c-1", *where, "--actor", "agent:dpo", "--reason", "asked"]
    )
    assert erased.exit_code == 0, erased.output
    store = open_store(url, prefix=PREFIX, schema=schema)
    try:
        history = Engine(store).history("T-1")
    finally:
        store.close()
    assert [event.type for event in history][-1] == "erase_personal_data"
    assert "sla_breached" in [event.type for event in history]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"prefx": "desk_"},
            "the SQL store takes no option prefx; its options are: create, durability, "
            "engine_options, prefix, schema, snapshot_cache",
        ),
        ({"prefix": 5}, "prefix: expected text (a table-name prefix such as 'cf_'), got int"),
        ({"schema": ["a"]}, "schema: expected text (a schema name) or None, got list"),
    ],
)
def test_open_store_refuses_an_option_the_sql_store_cannot_use_naming_it(
    tmp_path: Path, options: dict[str, object], expected: str
) -> None:
    """A mistyped option is a ``StoreError`` naming it and the options there are (as
    ``memory://`` and a third-party store say it), not a bare ``TypeError``; a prefix or
    schema that is not text is refused before any table is named after it."""
    url = sqlite_url(tmp_path)
    with pytest.raises(StoreError) as refused:
        open_store(url, create=True, **options)
    assert str(refused.value) == f"{url}: {expected}"
    assert not (tmp_path / "cases.db").exists()


def test_scrub_on_sqlite_vacuums_an_attached_schema_whose_name_needs_quoting(
    tmp_path: Path,
) -> None:
    """On SQLite a schema is an attached database; the scrub after an erasure vacuums
    it by name (``VACUUM "Side-DB"``), quoted like every other name."""
    main_file, side_file = tmp_path / "main.db", tmp_path / "side.db"

    def attached() -> sqlite3.Connection:
        connection = sqlite3.connect(main_file, check_same_thread=False)
        connection.execute('ATTACH DATABASE ? AS "Side-DB"', (str(side_file),))
        return connection

    store = open_store(
        f"sqlite:///{main_file}", prefix=PREFIX, schema="Side-DB", create=True,
        engine_options={"creator": attached},
    )  # fmt: skip
    try:
        engine = Engine(store, clock=ManualClock(START))
        engine.open_case(
            actor="agent:a", customer={"id": "c-1", "name": "Ann Example"}, channel="web",
            subject="s",
        )  # fmt: skip
        engine.erase_customer("c-1", actor="agent:dpo", reason="asked")
        store.scrub()
    finally:
        store.close()
    assert b"Ann Example" not in side_file.read_bytes()


def test_a_schema_sqlite_has_not_attached_is_named_as_such(tmp_path: Path) -> None:
    """On SQLite a schema is an attached database: ``--schema side`` without one was
    "no such table: side.sqlite_master ... run db upgrade", which no command mends."""
    url = sqlite_url(tmp_path)
    open_store(url, create=True).close()
    with pytest.raises(StoreError) as refused:
        open_store(url, schema="side")
    assert str(refused.value) == (
        f"{url} has no schema 'side': on SQLite a schema is a database attached to each "
        "connection (ATTACH DATABASE, through engine_options' creator: docs/embedding.md); "
        "leave the schema out for the file's own tables"
    )


@pytest.mark.parametrize(
    "command",
    [*(name.split() for name in STORE_COMMANDS), ["db", "init"], ["db", "upgrade"]],
    ids=[*STORE_COMMANDS, "db init", "db upgrade"],
)
def test_schema_with_a_sqlite_url_is_refused_naming_the_option(
    command: list[str], tmp_path: Path
) -> None:
    """The command line cannot attach a database to SQLite's connections, so `--schema`
    with a SQLite URL can never reach tables: it failed as a missing table, as "the
    database is unavailable or busy: unknown database side" (`db init`, leaving an
    empty file behind), or said to run `db init --schema`, which failed so. Now a usage
    error naming `--schema` and why, before anything is opened."""
    url = sqlite_url(tmp_path)
    if command[0] != "db":
        open_store(url, create=True).close()
    case_id = "case-1"
    given = [a.format(case=case_id) for a in STORE_COMMANDS.get(" ".join(command), [])]
    place = [url] if command[0] == "db" else ["--store", url]
    result = CliRunner().invoke(main, [*command, *given, *place, "--schema", "side"])
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert error == [
        "Error: Invalid value for --schema: 'side': a SQLite store has no schemas the "
        "command line can reach (on SQLite a schema is another database file attached to "
        "each connection, which only a program embedding complaintflow can attach: "
        'docs/embedding.md, "Inside your own database"); leave --schema out for the '
        "file's own tables"
    ]
    if command[0] == "db":
        assert not (tmp_path / "cases.db").exists()


def test_schema_main_with_a_sqlite_url_is_the_file_s_own_tables(tmp_path: Path) -> None:
    """``main`` is the name SQLite gives the file itself: those tables are reached."""
    url = sqlite_url(tmp_path)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "init", url, "--schema", "main"]).exit_code == 0
    result = runner.invoke(main, ["cases", "list", "--store", url, "--schema", "main"])
    assert result.exit_code == 0, result.output


def test_setting_up_tables_in_a_sqlite_schema_from_a_url_is_refused_and_leaves_no_file(
    tmp_path: Path,
) -> None:
    """``adapters.migrate.upgrade(url, schema=...)`` (what `db init` runs) connects by
    URL, so no database is ever attached: it was a StoreUnavailable ("unknown database
    side", worth a retry, it said) after creating an empty file."""
    from workflow import StoreUnavailable

    url = sqlite_url(tmp_path)
    with pytest.raises(StoreError) as refused:
        migrate.upgrade(url, schema="side")
    assert not isinstance(refused.value, StoreUnavailable)
    assert "has no schema 'side': on SQLite a schema is a database attached" in str(refused.value)
    assert not (tmp_path / "cases.db").exists()


def test_a_sqlite_schema_on_a_file_that_does_not_exist_names_no_command_that_fails(
    tmp_path: Path,
) -> None:
    """It said to run `complaintflow db init URL --schema side`, which cannot attach the
    schema either."""
    url = sqlite_url(tmp_path)
    with pytest.raises(SchemaVersionError) as missing:
        open_store(url, schema="side")
    message = str(missing.value)
    assert "there is no file" in message
    assert "complaintflow db init" not in message
    assert "create=True" in message
    assert "ATTACH" in message


@pytest.mark.postgres
def test_a_postgresql_schema_that_does_not_exist_is_named_as_such() -> None:
    """It sent the user to ``db init --schema``, which then failed: the schema must be
    made first (complaintflow makes tables, not schemas)."""
    url, schema = postgres_url(), f"no_such_{uuid.uuid4().hex[:8]}"
    with pytest.raises(StoreError) as refused:
        open_store(url, schema=schema)
    assert str(refused.value) == (
        f"{shown_url(url)} has no schema {schema!r}: complaintflow creates tables, not "
        f"schemas: create it first (CREATE SCHEMA {schema}), then run `complaintflow db "
        f"init {shown_url(url)} --schema {schema}`; or give the schema the tables are in"
    )


@pytest.mark.postgres
def test_db_init_in_a_postgresql_schema_that_does_not_exist_says_to_create_it_first() -> None:
    """`db init --schema` (what the store's error says to run) failed with "the database
    refused it: schema ... does not exist", saying nothing of what to do. It now says to
    create the schema first, as the store's error does, with the statement to run (the
    name quoted as PostgreSQL needs it); once that is done, the command it names works.
    `open_store(create=True)` says the same. complaintflow does not create the schema
    itself: a mistyped `--schema` would set up a second, empty set of tables."""
    from sqlalchemy import inspect

    url = postgres_url()
    schema = f"Missing Desk {uuid.uuid4().hex[:8]}"
    quoted = f'"{schema}"'
    expected = (
        f"{shown_url(url)} has no schema {schema!r}: complaintflow creates tables, not "
        f"schemas: create it first (CREATE SCHEMA {quoted}), then run "
        f"`complaintflow db init {shown_url(url)} --schema '{schema}'`; or give the "
        "schema the tables are in"
    )
    result = CliRunner().invoke(main, ["db", "init", url, "--schema", schema])
    assert result.exit_code == 1
    assert result.output == f"Error: {expected}\n"
    with pytest.raises(StoreError) as refused:
        open_store(url, schema=schema, create=True)
    assert str(refused.value) == expected
    admin = create_engine(url)
    try:
        with admin.connect() as conn:
            assert schema not in inspect(conn).get_schema_names()  # nothing made
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {quoted}")
        again = _quoted_command(expected)
        assert CliRunner().invoke(main, again[1:]).exit_code == 0
        open_store(url, schema=schema).close()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
        admin.dispose()


def _quoted_command(message: str) -> list[str]:
    """The command between the backticks of ``message``, split as a shell splits it."""
    return shlex.split(message.split("`")[1])


def test_commands_in_messages_are_quoted_for_the_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'Run `complaintflow ...`' put the URL, --prefix and --schema in unquoted: a file
    whose path holds a space, a prefix with a space, or a URL with ``&`` in its query
    (a shell's "run in the background") ran another command than the one meant."""
    import adapters.sql
    from workflow import StoreUnavailable

    folder = tmp_path / "support desk"
    folder.mkdir()
    url = f"sqlite:///{folder / 'cases.db'}?timeout=5&uri=false"
    prefix = "Desk CF_"
    with pytest.raises(SchemaVersionError) as missing:
        open_store(url, prefix=prefix)
    assert _quoted_command(str(missing.value)) == [
        "complaintflow", "db", "init", url, "--prefix", prefix,
    ]  # fmt: skip
    store = open_store(url, prefix=prefix, create=True)
    engine = Engine(store, clock=ManualClock(START))
    engine.open_case(actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="web")
    monkeypatch.setattr(adapters.sql, "SCRUB_WAIT_MS", 50)
    reader = sqlite3.connect(folder / "cases.db")
    reader.execute("BEGIN")
    reader.execute(f'SELECT count(*) FROM "{prefix}cases"').fetchone()  # holds the WAL
    try:
        with pytest.raises(StoreUnavailable) as blocked:
            engine.erase_customer("c-1", actor="dpo:kim", reason="asked")
    finally:
        reader.close()
        store.close()
    again = _quoted_command(str(blocked.value).split("Run ", 1)[1])
    assert again == ["complaintflow", "privacy", "scrub", "--store", url, "--prefix", prefix]
    result = CliRunner().invoke(main, again[1:])
    assert result.exit_code == 0, result.output


@pytest.mark.postgres
def test_a_masked_password_in_a_command_is_quoted_too() -> None:
    """A password is shown as ``***``, which a shell would expand as a glob; a schema
    name with a space is one word."""
    user, at, host = postgres_url().partition("@")
    url = f"{user}:not-needed{at}{host}" if ":" not in user.split("//")[-1] else postgres_url()
    schema = f"No Such {uuid.uuid4().hex[:8]}"
    with pytest.raises(StoreError) as refused:
        open_store(url, schema=schema)
    assert "***" in shown_url(url)
    assert _quoted_command(str(refused.value)) == [
        "complaintflow", "db", "init", shown_url(url), "--schema", schema,
    ]  # fmt: skip
