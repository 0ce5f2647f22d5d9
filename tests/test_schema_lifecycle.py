"""`complaintflow db init|upgrade` and the schema errors, as a support product meets them:
its own table prefix or schema, several deploys at once, credentials in the URL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
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


#: A revision no complaintflow this old knows: what a newer complaintflow's `db
#: upgrade` leaves in the version table.
NEWER = "0099"


def _set_revisions(url: str, prefix: str, *revisions: str) -> None:
    """The version table's rows replaced by ``revisions`` (as another complaintflow, or
    a hand edit, would leave them)."""
    from sqlalchemy import text

    version_table = build_tables(prefix).version_table
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {version_table}"))
            for revision in revisions:
                conn.execute(
                    text(f"INSERT INTO {version_table} (version_num) VALUES (:r)"), {"r": revision}
                )
    finally:
        engine.dispose()


def _schema_state(url: str, prefix: str) -> tuple[dict[str, list[str]], list[str]]:
    """The prefix's tables with their columns, and the version table's rows."""
    from sqlalchemy import inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            tables = {
                name: sorted(c["name"] for c in found.get_columns(name))
                for name in sorted(found.get_table_names())
                if name.startswith(prefix)
            }
            version_table = build_tables(prefix).version_table
            rows = conn.execute(text(f"SELECT version_num FROM {version_table}")).scalars()
            return tables, sorted(rows)
    finally:
        engine.dispose()


def _assert_names_the_newer_schema(error: BaseException) -> None:
    message = str(error)
    assert f"is at schema {NEWER}" in message
    assert f"the newest this complaintflow knows is {SCHEMA_REVISION}" in message
    assert "upgrade the complaintflow package" in message
    assert "\n" not in message


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def newer_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(url, prefix)`` of tables a newer complaintflow set up: at revision ``NEWER``,
    holding a case. On PostgreSQL the tables have a prefix of their own, dropped after."""
    url = postgres_url() if request.param == "postgres" else sqlite_url(tmp_path)
    prefix = fresh_prefix()
    try:
        store = SqlStore(url, prefix=prefix, create=True)
        Engine(store, clock=ManualClock(START)).open_case(
            actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="web",
            case_id="case-1",
        )  # fmt: skip
        store.close()
        _set_revisions(url, prefix, NEWER)
        yield url, prefix
    finally:
        drop_tables(url, prefix)


def test_a_newer_schema_is_refused_before_any_migration_and_nothing_is_written(
    newer_database: tuple[str, str],
) -> None:
    """A database a newer complaintflow upgraded: opening it to create the tables (what
    `demo` and `open_store(url, create=True)` do) or upgrading it says it is newer, which
    revision it is at and which this package knows, and to upgrade the package; it
    neither crashes in Alembic nor writes anything."""
    from adapters import open_store

    url, prefix = newer_database
    before = _schema_state(url, prefix)
    assert before[1] == [NEWER]
    for opening in (
        lambda: open_store(url, prefix=prefix, create=True),
        lambda: SqlStore(url, prefix=prefix, create=True),
        lambda: SqlStore(url, prefix=prefix),
        lambda: migrate.upgrade(url, prefix=prefix),
    ):
        with pytest.raises(SchemaVersionError) as error:
            opening()
        _assert_names_the_newer_schema(error.value)
        assert _schema_state(url, prefix) == before


@pytest.mark.parametrize("command", ["init", "upgrade"])
def test_db_init_and_upgrade_refuse_a_newer_schema_in_one_line(
    newer_database: tuple[str, str], command: str
) -> None:
    """`complaintflow db init|upgrade` on a newer database: one line saying to upgrade
    complaintflow (not Alembic's "Can't locate revision"), a non-zero exit, no change."""
    from click.testing import CliRunner

    from workflow.cli import main

    url, prefix = newer_database
    before = _schema_state(url, prefix)
    result = CliRunner().invoke(main, ["db", command, url, "--prefix", prefix])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    assert "Can't locate revision" not in result.output
    _assert_names_the_newer_schema(result.output.removeprefix("Error: ").rstrip("\n"))
    assert _schema_state(url, prefix) == before


def test_demo_on_a_newer_schema_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """`complaintflow demo --store URL` creates the tables if needed: on a database a
    newer complaintflow set up it says so in one line and exits non-zero."""
    from click.testing import CliRunner

    from workflow.cli import main

    url = sqlite_url(tmp_path)
    SqlStore(url, create=True).close()
    _set_revisions(url, "cf_", NEWER)
    result = CliRunner().invoke(main, ["demo", "--store", url])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output.count("\n") == 1, result.output
    _assert_names_the_newer_schema(result.output.removeprefix("Error: ").rstrip("\n"))
    assert _schema_state(url, "cf_")[1] == [NEWER]


def test_an_older_revision_this_package_does_not_know_is_not_sent_to_db_upgrade(
    tmp_path: Path,
) -> None:
    """A revision that is not one of this package's migrations cannot be upgraded from,
    whatever it sorts like ('0000' sorts before every real one): the error must not name
    `db upgrade`, which would fail on it."""
    url = sqlite_url(tmp_path)
    SqlStore(url, create=True).close()
    _set_revisions(url, "cf_", "0000")
    for opening in (lambda: SqlStore(url), lambda: SqlStore(url, create=True)):
        with pytest.raises(SchemaVersionError) as error:
            opening()
        assert "db upgrade" not in str(error.value)
        assert "is at schema 0000" in str(error.value)
        assert "upgrade the complaintflow package" in str(error.value)


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
    column or holding U+0000 (assigned before `assign` refused such names; PostgreSQL
    cannot store the latter in a column) and a snapshot that is not a case's JSON leave
    the columns empty, with a warning naming the assignees' cases."""
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
        for n in range(7):
            engine.open_case(actor="agent:a", customer={"id": f"c-{n}", "name": "Ann"},
                             channel="web", case_id=f"case-{n}")  # fmt: skip
        engine.assign("case-0", actor="team-lead:t", to="agent:alice")
        engine.escalate("case-1", actor="agent:a", reason="manager", to_role="team-lead")
        engine.assign("case-2", actor="team-lead:t", to="agent:bob")
        engine.escalate("case-2", actor="agent:bob", reason="legal", to_role="legal")
        engine.resume("case-2", actor="legal:l")
        engine.assign("case-4", actor="team-lead:t", to="agent:x")
        engine.assign("case-6", actor="team-lead:t", to="agent:y")
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
            # case-6: assigned to a name holding U+0000 (in the snapshot's JSON, escaped).
            conn.execute(text(
                f"UPDATE {dotted}{old}cases SET snapshot = REPLACE(snapshot, "
                "'\"assignee\":\"agent:y\"', '\"assignee\":\"agent:\\u0000y\"') "
                "WHERE case_id = 'case-6'"
            ))  # fmt: skip
        with pytest.raises(SchemaVersionError, match="is at schema 0003; this complaintflow"):
            SqlStore(url, prefix=old, schema=schema)

        options = ["--prefix", old, *(["--schema", schema] if schema else [])]
        result = CliRunner().invoke(main, ["db", "upgrade", url, *options])
        assert result.exit_code == 0, result.output
        assert f"schema at revision {SCHEMA_REVISION}" in result.output
        assert warned == [
            "schema 0004: 2 case(s) have an assignee longer than 300 characters or holding "
            "U+0000, left out of the assignee column (find_cases(assignee=...) does not "
            "find them until they are assigned again): case-4, case-6"
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
            ("case-6", None, None),
        ]

        store = SqlStore(url, prefix=old, schema=schema)
        engine = Engine(store, clock=clock)
        assert [c.id for c in engine.find_cases(assignee="agent:alice").cases] == ["case-0"]
        assert [c.id for c in engine.find_cases(escalated_to="team-lead").cases] == ["case-1"]
        assert engine.get("case-4").assignee == long_name
        engine.add_note("case-4", actor="agent:a", text="still written")  # column left NULL
        assert engine.get("case-6").assignee == "agent:\x00y"
        engine.add_note("case-6", actor="agent:a", text="still written")  # column left NULL
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
def test_other_alembic_errors_are_store_errors_in_one_line(backend: str, tmp_path: Path) -> None:
    """A version table Alembic cannot upgrade from (two rows, one the ancestor of the
    other: a hand edit) is a SchemaVersionError saying where, in one line, with
    Alembic's error kept as the cause; not Alembic's CommandError."""
    from alembic.util.exc import CommandError
    from click.testing import CliRunner

    from adapters import open_store
    from workflow.cli import main

    url = postgres_url() if backend == "postgres" else sqlite_url(tmp_path)
    prefix = fresh_prefix()
    try:
        SqlStore(url, prefix=prefix, create=True).close()
        _set_revisions(url, prefix, "0002", SCHEMA_REVISION)
        before = _schema_state(url, prefix)
        for opening in (
            lambda: open_store(url, prefix=prefix, create=True),
            lambda: migrate.upgrade(url, prefix=prefix),
        ):
            with pytest.raises(SchemaVersionError) as error:
                opening()
            message = str(error.value)
            assert "\n" not in message
            assert "Alembic could not bring the tables to schema" in message
            assert "overlaps" in message  # Alembic's own words, first line
            assert isinstance(error.value.__cause__, CommandError)
            assert _schema_state(url, prefix) == before
        result = CliRunner().invoke(main, ["db", "upgrade", url, "--prefix", prefix])
        assert result.exit_code == 1
        assert result.output.count("\n") == 1, result.output
        assert "Alembic could not bring the tables to schema" in result.output
    finally:
        drop_tables(url, prefix)


def test_the_schema_revision_is_the_head_of_the_shipped_migrations() -> None:
    """``SCHEMA_REVISION`` (what the store checks) and the migrations' head (what `db
    upgrade` reaches) are the same revision."""
    assert migrate.known_revisions()[-1] == SCHEMA_REVISION


def test_docs_adapters_quotes_the_newer_schema_refusal_as_it_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/adapters.md shows the refusal of a newer schema: keep it the real output."""
    from click.testing import CliRunner

    from workflow.cli import main

    monkeypatch.chdir(tmp_path)
    url = "sqlite:///cases.db"
    SqlStore(url, create=True).close()
    _set_revisions(url, "cf_", NEWER)
    page = (Path(__file__).resolve().parent.parent / "docs" / "adapters.md").read_text()
    command = f"$ complaintflow db upgrade {url}\n"
    shown = page[page.index(command) + len(command) :].split("\n", 1)[0]
    result = CliRunner().invoke(main, ["db", "upgrade", url])
    assert result.output == f"{shown}\n"


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
        for revision in ("0001", "0002", "0003", "0004", "0005"):
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


# -- db init|upgrade on SQLite, with other processes on the file --------------------


def test_a_sqlite_upgrade_that_fails_part_way_changes_nothing_and_runs_again(
    tmp_path: Path,
) -> None:
    """`db upgrade` on SQLite ran the migrations on a plain engine, whose driver opens
    no transaction before DDL: 0004's two ``ADD COLUMN`` were committed one by one, so
    a failure after them (here an index of the same name made by hand; a lock held by
    a worker past the timeout, a kill, a full disk alike) left the columns at revision
    0003, and every later `db upgrade` failed on "duplicate column name". Now the whole
    upgrade is one transaction, as on PostgreSQL: nothing is changed, and once the
    cause is gone it runs again."""
    from click.testing import CliRunner
    from sqlalchemy import text

    from workflow.cli import main

    url = sqlite_url(tmp_path)
    _at_revision(url, "cf_", "0003")
    before = _schema_state(url, "cf_")
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text("CREATE INDEX cf_cases_opened ON cf_cases (opened_at)"))
    result = CliRunner().invoke(main, ["db", "upgrade", url])
    assert result.exit_code == 1, result.output
    assert "cf_cases_opened" in result.output
    assert _schema_state(url, "cf_") == before  # no column added, still at 0003
    with admin.begin() as conn:
        conn.execute(text("DROP INDEX cf_cases_opened"))
    admin.dispose()
    result = CliRunner().invoke(main, ["db", "upgrade", url])
    assert result.exit_code == 0, result.output
    assert _schema_state(url, "cf_")[1] == [SCHEMA_REVISION]


def test_two_deploys_running_db_upgrade_at_once_on_sqlite_both_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/adapters.md says SQLite's write lock lets one `db upgrade` set up the tables
    while another waits, as PostgreSQL's advisory lock does. It did not: the first
    created its tables outside any transaction, and the second, reading no revision
    yet, failed creating them again ("table ... already exists"). Now each upgrade
    takes the write lock at its start (``BEGIN IMMEDIATE``) and the second, waiting for
    it, finds the schema current."""
    url = sqlite_url(tmp_path)
    upgrade = migrate.command.upgrade
    upgraded = threading.Event()

    def slow_upgrade(config: Any, revision: str) -> None:
        upgrade(config, revision)
        upgraded.set()
        time.sleep(0.5)  # the tables are made, not yet committed: the other one starts

    monkeypatch.setattr(migrate.command, "upgrade", slow_upgrade)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate.upgrade(url)
        except BaseException as exc:
            errors.append(exc)

    first, second = threading.Thread(target=run), threading.Thread(target=run)
    first.start()
    assert upgraded.wait(60)
    second.start()
    first.join()
    second.join()
    assert errors == []
    store = SqlStore(url)
    assert store.schema_revision() == SCHEMA_REVISION
    store.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_db_upgrade_to_0005_gives_old_tombstones_the_retention_their_reason_names(
    backend: str, tmp_path: Path
) -> None:
    """Tombstones written at revision 0004 say their retention period only in their
    reason (``retention period of 6 years after closing ended``, the engine's words):
    `complaintflow db upgrade` records it in the new column, so that verify checks them
    against it; a reason in other words (another program's purge) leaves it empty."""
    from click.testing import CliRunner
    from sqlalchemy import text

    from workflow.cli import main

    url = postgres_url() if backend == "postgres" else sqlite_url(tmp_path)
    old = fresh_prefix()
    try:
        _at_revision(url, old, "0004")
        admin = create_engine(url)
        with admin.begin() as conn:
            for case_id, reason in (
                ("case-a", "retention period of 6 years after closing ended"),
                ("case-b", "retention period of 10 years after closing ended"),
                ("case-c", "purged by hand"),
            ):
                conn.execute(
                    text(
                        f"INSERT INTO {old}tombstones (case_id, version, head_hash, opened_at, "
                        "closed_at, purged_at, purged_by, reason) VALUES (:case_id, 3, :head, "
                        ":opened, :closed, :purged, 'system:retention', :reason)"
                    ),
                    {
                        "case_id": case_id,
                        "head": "a" * 64,
                        "opened": START,
                        "closed": START,
                        "purged": START.replace(year=2040),
                        "reason": reason,
                    },
                )
        admin.dispose()
        result = CliRunner().invoke(main, ["db", "upgrade", url, "--prefix", old])
        assert result.exit_code == 0, result.output
        store = SqlStore(url, prefix=old)
        try:
            found = {t.case_id: t.retention_years for t in store.tombstones()}
        finally:
            store.close()
        assert found == {"case-a": 6, "case-b": 10, "case-c": None}
    finally:
        drop_tables(url, old)
