"""complaintflow as an operator runs it: tables placed with a prefix or in a schema and
reached from every command, store URLs naming a driver that is not installed, a
database that cannot be reached, and a connection lost while a step is written."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from adapters import open_store, sql
from adapters.sql import SqlStore
from tests.conftest import START
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import Engine, ManualClock
from workflow.cli import main
from workflow.errors import StoreError, StoreMisconfigured, StoreUnavailable


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _clean(result: Result) -> None:
    """A refusal as the command line promises it: exit 1, one line, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ")
    assert result.output.count("\n") == 1, result.output


def _opened_case(url: str, **options: Any) -> str:
    store = open_store(url, **options)
    try:
        engine = Engine(store, clock=ManualClock(START))
        case = engine.open_case(
            actor="agent:a",
            customer={"id": "c-1", "name": "Ann", "tier": "standard"},
            channel="email",
        )
        return case.id
    finally:
        store.close()


def _store_commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    """Every command of ``group`` that takes ``--store``, by its full name."""
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _store_commands(command, (*path, name))
        elif "--store" in {option for param in command.params for option in param.opts}:
            yield " ".join((*path, name)), command


#: What each command with ``--store`` needs besides it to run on a store holding one
#: case (``{case}``), of customer c-1. A command missing here fails the test below.
STORE_COMMANDS = {
    "audit verify": [],
    "audit digest": [],
    "audit show": ["{case}"],
    "audit export": [],
    "cases list": [],
    "cases at-risk": ["--within", "4h"],
    "privacy erase": ["c-1", "--actor", "dpo:kim", "--reason", "asked"],
    "privacy purge": ["--actor", "system:retention", "--dry-run"],
    "privacy purged": [],
    "privacy scrub": [],
    "report": ["summary"],
    "sla tick": [],
    "sla status": ["{case}"],
}


def test_every_command_with_a_store_is_listed_here() -> None:
    """The next test runs each command with ``--store`` (but the demo, which makes its
    own store): a new one must say what else it needs."""
    found = {name for name, _ in _store_commands(main)} - {"demo"}
    assert found == set(STORE_COMMANDS)


@pytest.mark.parametrize(("command", "arguments"), STORE_COMMANDS.items(), ids=list(STORE_COMMANDS))
def test_every_store_command_reaches_tables_set_up_with_a_prefix(
    command: str, arguments: list[str], tmp_path: Path
) -> None:
    """`db init URL --prefix P` places the tables; every command given the same
    `--prefix` opens them, on every path it takes (before, no command but `db` could
    reach them)."""
    url = sqlite_url(tmp_path)
    assert _run("db", "init", url, "--prefix", "support_cf_").exit_code == 0
    case_id = _opened_case(url, prefix="support_cf_")
    given = [argument.format(case=case_id) for argument in arguments]
    result = _run(*command.split(), *given, "--store", url, "--prefix", "support_cf_")
    assert result.exit_code == 0, result.output


def test_a_command_given_no_prefix_for_prefixed_tables_says_to_give_it(tmp_path: Path) -> None:
    """The command the error names would set up a second, empty set of tables beside the
    prefixed ones: the error says to give the prefix and schema the tables were set up
    with, if they were."""
    url = sqlite_url(tmp_path)
    assert _run("db", "init", url, "--prefix", "support_cf_").exit_code == 0
    result = _run("sla", "tick", "--store", url)
    _clean(result)
    assert "has no complaintflow tables named cf_*" in result.output
    assert "--prefix" in result.output
    assert "--schema" in result.output


def test_a_prefix_given_to_the_memory_store_is_refused_in_one_line() -> None:
    """The memory store has no tables: a `--prefix` for it is a mistake, said so."""
    result = _run("sla", "tick", "--store", "memory://", "--prefix", "x_")
    _clean(result)
    assert "memory:// takes no options ['prefix']" in result.output


def test_db_init_says_which_tables_it_set_up(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    result = _run("db", "init", url, "--prefix", "support_cf_")
    assert result.exit_code == 0, result.output
    assert "support_cf_" in result.output


# -- drivers and unreachable databases ----------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg2") is not None, reason="psycopg2 is installed here"
)
def test_a_url_naming_a_driver_that_is_not_installed_is_a_store_error() -> None:
    """`postgresql+psycopg2://` (a URL copied from another application) when psycopg2
    is not installed: a StoreError naming the driver and the URL to use, not Python's
    ModuleNotFoundError (a traceback from every command)."""
    with pytest.raises(StoreError) as refused:
        open_store("postgresql+psycopg2://postgres:pw@127.0.0.1/db")
    message = str(refused.value)
    assert "psycopg2" in message
    assert "postgresql+psycopg://" in message
    assert "pw@" not in message
    result = _run("sla", "tick", "--store", "postgresql+psycopg2://postgres@127.0.0.1/db")
    _clean(result)


def test_an_unreachable_database_is_one_line_and_safe_to_retry() -> None:
    """libpq's "connection refused" comes with a second, indented line: the command
    line's promise is one line (scripts and log collectors read it so)."""
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    with pytest.raises(StoreUnavailable) as refused:
        open_store(url)
    assert "\n" not in str(refused.value)
    _clean(_run("sla", "tick", "--store", url))


def _elsewhere(**parts: str) -> str:
    """The test database's URL with ``parts`` changed (``database``, ``username``...),
    and the password ``s3cret-pw`` (the test server trusts every local connection, so
    the password is never what refuses one)."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url()).set(password="s3cret-pw", **parts)
    return url.render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("parts", "said", "advice"),
    [
        ({"database": "cf_no_db"}, 'database "cf_no_db" does not exist', "create the database"),
        ({"username": "cf_no_role"}, 'role "cf_no_role" does not exist', "create the role"),
    ],
    ids=["database", "role"],
)
def test_a_database_or_role_that_does_not_exist_is_not_worth_a_retry(
    parts: dict[str, str], said: str, advice: str
) -> None:
    """PostgreSQL refuses the connection for good: it was a StoreUnavailable ("the
    database is unavailable or busy"), which embedders are told they may retry. Now a
    StoreMisconfigured (a StoreError, not a StoreUnavailable) saying what is wrong and
    what to change, the URL shown without its password; the command line exits 1 with
    it in one line, from every command and from `db init`."""
    url = _elsewhere(**parts)
    with pytest.raises(StoreMisconfigured) as refused:
        open_store(url)
    message = str(refused.value)
    assert not isinstance(refused.value, StoreUnavailable)
    assert said in message
    assert advice in message
    assert "unavailable or busy" not in message
    assert "s3cret-pw" not in message
    assert ":***@" in message
    assert "\n" not in message
    for command in (("sla", "tick", "--store", url), ("db", "init", url)):
        result = _run(*command)
        _clean(result)
        assert said in result.output
        assert advice in result.output
        assert "s3cret-pw" not in result.output


def _refusing(text: str) -> Any:
    """A connection factory (``engine_options``' ``creator``) that fails as psycopg 3
    fails to connect, with ``text``: no SQLSTATE (libpq gives none for an error at
    connection time: psycopg/psycopg#1188), only the message."""
    import psycopg

    def connect() -> Any:
        raise psycopg.OperationalError(text)

    return connect


#: The first of two attempts to a server with ssl = on whose pg_hba.conf has only
#: ``hostnossl`` lines for this client (psycopg 3.3, libpq 18, PostgreSQL 15, word for word).
_SSL_REFUSED = (
    'connection failed: connection to server at "127.0.0.1", port 5499 failed: FATAL:  '
    'no pg_hba.conf entry for host "127.0.0.1", user "{user}", database "{database}", SSL '
    "encryption\n"
)

#: What psycopg 3.3 (libpq 18) raised, word for word, against a PostgreSQL 15 server
#: whose pg_hba.conf asked this client for a password (scram-sha-256 and md5), had no
#: line for it, or a ``reject`` line; and for a role without LOGIN or without CONNECT
#: on the database. The test server trusts every local connection, so these cannot be
#: produced against it.
REFUSED = {
    "wrong password": (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  password authentication failed for user "desk"',
        "password",
    ),
    "no password": (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "fe_sendauth: no password supplied",
        "password",
    ),
    "no pg_hba.conf line": (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "desk", database '
        '"support", no encryption',
        "pg_hba.conf",
    ),
    "a reject line": (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "desk", '
        'database "support", no encryption',
        "pg_hba.conf",
    ),
    "no LOGIN": (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  role "desk" is not permitted to log in',
        "LOGIN",
    ),
    "no CONNECT": (
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  permission denied for database "support"\n'
        "DETAIL:  User does not have CONNECT privilege.",
        "CONNECT",
    ),
    "every one of several hosts": (
        'connection failed: connection to server at "10.0.0.2", port 5432 failed: '
        'FATAL:  password authentication failed for user "desk"\n'
        "Multiple connection attempts failed. All failures were:\n"
        "- host: '10.0.0.1', port: '5432', hostaddr: '10.0.0.1': connection failed: "
        'connection to server at "10.0.0.1", port 5432 failed: FATAL:  password '
        'authentication failed for user "desk"\n'
        "- host: '10.0.0.2', port: '5432', hostaddr: '10.0.0.2': connection failed: "
        'connection to server at "10.0.0.2", port 5432 failed: FATAL:  password '
        'authentication failed for user "desk"',
        "password",
    ),
    "over a socket": (
        'connection failed: connection to server on socket "/run/postgresql/'
        '.s.PGSQL.5432" failed: FATAL:  database "support" does not exist',
        "create the database",
    ),
    # A server with ssl = on whose pg_hba.conf lets this client in without SSL only
    # (``hostnossl``): libpq (sslmode=prefer, its default) tries SSL first, and the
    # reason that counts is the second attempt's, not the SSL one's pg_hba.conf line.
    "after an SSL attempt": (
        _SSL_REFUSED.format(user="postgres", database="nope")
        + 'connection to server at "127.0.0.1", port 5499 failed: FATAL:  database "nope" '
        "does not exist",
        "create the database",
    ),
}


@pytest.mark.parametrize(("text", "advice"), REFUSED.values(), ids=list(REFUSED))
def test_a_connection_refused_for_good_is_not_worth_a_retry(text: str, advice: str) -> None:
    """A wrong password or none, no pg_hba.conf line or a reject line, a role without
    LOGIN or CONNECT: a StoreMisconfigured naming the server's reason and what to
    change, in one line, the password masked; never a StoreUnavailable."""
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://desk:s3cret-pw@127.0.0.1:5432/support"
    with pytest.raises(StoreMisconfigured) as refused:
        open_store(url, engine_options={"creator": _refusing(text)})
    message = str(refused.value)
    last_attempt = text.split("\nMultiple")[0].split("\nDETAIL")[0].split("\n")[-1]
    assert last_attempt.split("failed: ")[-1] in message
    assert advice in message
    assert "s3cret-pw" not in message
    assert "desk:***@" in message
    assert "\n" not in message


def test_docs_adapters_quotes_a_refused_connection_as_it_is_printed() -> None:
    """docs/adapters.md shows a database name mistyped: keep it what the command line
    prints for libpq's text (the server's reason is given to the store as libpq gave
    it, a host name resolved to an address)."""
    pytest.importorskip("psycopg")
    page = (Path(__file__).resolve().parent.parent / "docs" / "adapters.md").read_text()
    command = "$ complaintflow sla tick --store "
    url, shown = page[page.index(command) + len(command) :].split("\n", 2)[:2]
    libpq = shown.split("(a retry will not help): ", 1)[1].rsplit("; create", 1)[0]
    with pytest.raises(StoreMisconfigured) as refused:
        open_store(url, engine_options={"creator": _refusing(libpq)})
    assert f"Error: {refused.value}" == shown


#: What a server that is down, starting, stopping or full says: a retry may succeed.
PASSING = {
    "down": 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
    "connections?",
    "starting up": 'connection failed: connection to server at "127.0.0.1", port 5432 '
    "failed: FATAL:  the database system is starting up",
    "shutting down": 'connection failed: connection to server at "127.0.0.1", port 5432 '
    "failed: FATAL:  the database system is shutting down",
    "full": 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
    "FATAL:  sorry, too many clients already",
    "a name not resolved": "failed to resolve host 'db': [Errno -3] Temporary failure "
    "in name resolution",
    "recovering": 'connection failed: connection to server at "127.0.0.1", port 5432 '
    "failed: FATAL:  the database system is in recovery mode",
    "a timeout": "connection timeout expired",
    # libpq tried SSL first (see _SSL_REFUSED): the attempt without SSL found the
    # server full for this role, this database or any but superusers, which passes.
    "a role's connection limit, after an SSL attempt": _SSL_REFUSED.format(
        user="desk", database="postgres"
    )
    + 'connection to server at "127.0.0.1", port 5499 failed: FATAL:  too many '
    'connections for role "desk"',
    "a database's connection limit, after an SSL attempt": _SSL_REFUSED.format(
        user="full_user", database="support"
    )
    + 'connection to server at "127.0.0.1", port 5499 failed: FATAL:  too many '
    'connections for database "support"',
    "the slots left reserved, after an SSL attempt": _SSL_REFUSED.format(
        user="full_user", database="postgres"
    )
    + 'connection to server at "127.0.0.1", port 5499 failed: FATAL:  remaining '
    "connection slots are reserved for non-replication superuser connections",
    # A server whose messages are in another language (lc_messages = 'de_DE'), its
    # words from PostgreSQL 15's catalogue: not recognised, so left to a retry loop.
    "a refusal in German": 'connection failed: connection to server at "127.0.0.1", '
    "port 5432 failed: FATAL:  Datenbank \u00bbsupport\u00ab existiert nicht",
    # Several hosts: the last refused the password, the first was down (a retry may
    # reach the first, whose pg_hba.conf may differ).
    "one of several hosts down": 'connection failed: connection to server at "10.0.0.2", '
    'port 5432 failed: FATAL:  password authentication failed for user "desk"\n'
    "Multiple connection attempts failed. All failures were:\n"
    "- host: '10.0.0.1', port: '5432', hostaddr: '10.0.0.1': connection failed: "
    'connection to server at "10.0.0.1", port 5432 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?\n"
    "- host: '10.0.0.2', port: '5432', hostaddr: '10.0.0.2': connection failed: "
    'connection to server at "10.0.0.2", port 5432 failed: FATAL:  password '
    'authentication failed for user "desk"',
}


@pytest.mark.parametrize("text", PASSING.values(), ids=list(PASSING))
def test_a_server_down_starting_or_full_stays_worth_a_retry(text: str) -> None:
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://desk:s3cret-pw@127.0.0.1:5432/support"
    with pytest.raises(StoreUnavailable) as refused:
        open_store(url, engine_options={"creator": _refusing(text)})
    assert "unavailable or busy" in str(refused.value)
    assert "\n" not in str(refused.value)
    # The reason shown is the last attempt's (the full for the role, not the SSL
    # attempt's pg_hba.conf line, which would send the operator to the wrong file).
    last_attempt = text.split("\nMultiple")[0].split("\n\t")[0].split("\n")[-1]
    assert last_attempt.split("failed: ")[-1] in str(refused.value)


# -- a connection lost while a step is written ---------------------------------------


class _LostConnection:
    """Makes the next commit of ``store`` lose its connection, ``after`` the commit
    reached the database (the server committed; its reply was lost) or before."""

    def __init__(self, store: SqlStore, *, committed: bool) -> None:
        import psycopg

        self.dialect: Any = store.engine.dialect
        self.real = self.dialect.do_commit
        self.committed = committed
        self.error = psycopg.OperationalError(
            "consuming input failed: server closed the connection unexpectedly\n"
            "\tThis probably means the server terminated abnormally"
        )

    def __enter__(self) -> _LostConnection:
        def do_commit(dbapi_connection: Any) -> None:
            self.dialect.do_commit = self.real  # once
            if self.committed:
                self.real(dbapi_connection)
            raise self.error

        self.dialect.do_commit = do_commit
        return self

    def __exit__(self, *_: object) -> None:
        self.dialect.do_commit = self.real


@pytest.fixture
def pg_store() -> Iterator[SqlStore]:
    url, prefix = postgres_url(), fresh_prefix()
    store = SqlStore(url, prefix=prefix, create=True)
    try:
        yield store
    finally:
        store.close()
        drop_tables(url, prefix)


@pytest.mark.postgres
def test_a_step_whose_commit_reached_the_database_is_not_reported_lost(
    pg_store: SqlStore,
) -> None:
    """The connection drops after the server committed the step (a restart, a failover,
    `pg_terminate_backend`): the store asks again and finds the step written, so the
    caller is not told to retry what is done (a retried note would be written twice)."""
    engine = Engine(pg_store, clock=ManualClock(START))
    case = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann", "tier": "standard"}, channel="email"
    )
    with _LostConnection(pg_store, committed=True):
        noted = engine.add_note(case.id, actor="agent:a", text="called back")
    assert noted.version == 2
    assert [e.type for e in engine.history(case.id)] == ["open", "add_note"]
    assert engine.get(case.id) == noted


@pytest.mark.postgres
def test_a_step_lost_before_its_commit_is_store_unavailable_and_writes_nothing(
    pg_store: SqlStore,
) -> None:
    engine = Engine(pg_store, clock=ManualClock(START))
    case = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann", "tier": "standard"}, channel="email"
    )
    with _LostConnection(pg_store, committed=False), pytest.raises(StoreUnavailable) as lost:
        engine.add_note(case.id, actor="agent:a", text="called back")
    assert "nothing was written" in str(lost.value)
    assert "\n" not in str(lost.value)
    assert [e.type for e in engine.history(case.id)] == ["open"]
    assert engine.retrying(lambda: engine.add_note(case.id, actor="agent:a", text="again"))


@pytest.mark.postgres
@pytest.mark.parametrize(
    "refusal",
    [
        StoreUnavailable("asking: the database is unavailable or busy: refused"),
        # The password rotated, or pg_hba.conf changed, as the store asked: the step's
        # fate is what the caller needs, not why the asking failed.
        StoreMisconfigured(
            "asking: the database refused the connection: FATAL:  password authentication "
            'failed for user "desk"'
        ),
    ],
    ids=["unavailable", "misconfigured"],
)
def test_a_step_whose_outcome_cannot_be_asked_says_it_may_have_been_written(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch, refusal: StoreError
) -> None:
    """The database is still gone when the store asks: it cannot know, and says so."""
    engine = Engine(pg_store, clock=ManualClock(START))
    case = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann", "tier": "standard"}, channel="email"
    )

    def unreachable(*_: object, **__: object) -> Any:
        raise refusal

    monkeypatch.setattr(pg_store, "_stored_hash", unreachable)
    with _LostConnection(pg_store, committed=True), pytest.raises(StoreUnavailable) as lost:
        engine.add_note(case.id, actor="agent:a", text="called back")
    assert "may have been written" in str(lost.value)
    assert "idempotency key" in str(lost.value)


class _CommitStillOpen:
    """Makes the next commit of ``store`` fail as a lost connection does while the server
    still holds the step's transaction: the client's side broke (a network timeout, a
    proxy) before COMMIT was processed, or the server is still committing (waiting for a
    synchronous standby). A new connection does not see the step yet; the server may
    commit it after the store asked. ``end`` ends that transaction as the server would."""

    def __init__(self, store: SqlStore) -> None:
        import psycopg

        self.dialect: Any = store.engine.dialect
        self.real = {
            name: getattr(self.dialect, name)
            for name in ("do_commit", "is_disconnect", "do_close", "do_terminate")
        }
        self.error = psycopg.OperationalError("consuming input failed: timed out")
        self.held: Any = None

    def __enter__(self) -> _CommitStillOpen:
        def do_commit(dbapi_connection: Any) -> None:
            self.dialect.do_commit = self.real["do_commit"]  # once
            # SQLAlchemy hands over its pool's proxy: hold the driver's connection.
            self.held = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
            raise self.error

        def is_disconnect(error: BaseException, *args: Any) -> bool:
            return error is self.error or bool(self.real["is_disconnect"](error, *args))

        def closing(name: str) -> Any:
            def close(dbapi_connection: Any) -> None:
                if dbapi_connection is not self.held:  # the server's side stays open
                    self.real[name](dbapi_connection)

            return close

        self.dialect.do_commit = do_commit
        self.dialect.is_disconnect = is_disconnect
        self.dialect.do_close = closing("do_close")
        self.dialect.do_terminate = closing("do_terminate")
        return self

    def end(self, *, commit: bool) -> None:
        """The held transaction ends: COMMIT arrives (``commit``), or the session dies."""
        if self.held is not None and not self.held.closed:
            if commit:
                self.held.commit()
            self.held.close()

    def __exit__(self, *_: object) -> None:
        for name, real in self.real.items():
            setattr(self.dialect, name, real)
        self.end(commit=False)


def _a_case(engine: Engine) -> str:
    return engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann", "tier": "standard"}, channel="email"
    ).id


@pytest.mark.postgres
def test_a_step_whose_transaction_the_server_still_holds_is_not_reported_unwritten(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step is not visible when the store asks, but its session still holds the
    transaction, and commits it afterwards: "nothing was written" would have been false
    (a caller retrying without a key writes the note twice). The store waits a moment
    for that session to end; it has not, so the step may have been written, and the
    error says so."""
    monkeypatch.setattr(sql, "LOST_COMMIT_WAIT_MS", 200)
    engine = Engine(pg_store, clock=ManualClock(START))
    case_id = _a_case(engine)
    with _CommitStillOpen(pg_store) as lost:
        with pytest.raises(StoreUnavailable) as refused:
            engine.add_note(case_id, actor="agent:a", text="called back")
        lost.end(commit=True)
    assert "nothing was written" not in str(refused.value)
    assert "may have been written" in str(refused.value)
    assert "idempotency key" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert [e.type for e in engine.history(case_id)] == ["open", "add_note"]


@pytest.mark.postgres
@pytest.mark.parametrize("commit", [True, False], ids=["committed", "rolled back"])
def test_a_step_whose_session_ends_while_the_store_waits_is_reported_as_it_ended(
    pg_store: SqlStore, monkeypatch: pytest.MonkeyPatch, commit: bool
) -> None:
    """The held transaction ends while the store waits for it (the server noticed the
    client had gone): committed, the step returns as written; rolled back, the error says
    nothing was written, and it was not."""
    engine = Engine(pg_store, clock=ManualClock(START))
    case_id = _a_case(engine)
    pause = time.sleep
    with _CommitStillOpen(pg_store) as lost:

        def ends_meanwhile(seconds: float) -> None:
            lost.end(commit=commit)
            pause(seconds)

        monkeypatch.setattr(sql.time, "sleep", ends_meanwhile)
        if commit:
            noted = engine.add_note(case_id, actor="agent:a", text="called back")
            assert noted.version == 2
            assert engine.get(case_id) == noted
        else:
            with pytest.raises(StoreUnavailable, match=r"; nothing was written$"):
                engine.add_note(case_id, actor="agent:a", text="called back")
    expected = ["open", "add_note"] if commit else ["open"]
    assert [e.type for e in engine.history(case_id)] == expected


# -- what commands print ---------------------------------------------------------------


def test_the_demo_does_not_print_the_store_url_s_password() -> None:
    """Cron mails and CI logs keep what a command prints."""
    result = _run("demo", "--store", "memory://ops:s3cret-pw@localhost")
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    assert "memory://ops:***@localhost" in result.output


@pytest.mark.postgres
def test_privacy_scrub_does_not_print_the_store_url_s_password(pg_store: SqlStore) -> None:
    url = pg_store.url.replace("://postgres@", "://postgres:s3cret-pw@")
    result = _run("privacy", "scrub", "--store", url, "--prefix", pg_store.prefix)
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    assert "postgres:***@" in result.output


def test_audit_verify_does_not_print_the_store_url_s_password() -> None:
    """Its closing line names what was verified: the store, its password masked."""
    result = _run("audit", "verify", "--store", "memory://ops:s3cret-pw@localhost")
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output
    assert result.output.startswith("memory://ops:***@localhost: verified, no problems")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+pysqlcipher://:s3cret-pw@/{tmp}/missing.db",  # its password is the key
        "sqlite+pysqlcipher://:s3cret-pw@/{tmp}",  # a directory
        "postgresql+psycopg://ops:s3cret-pw@db:port/support",  # a port that is no number
        "postgresql+psycopg://ops:s3cret-pw@[db/support",  # an unclosed bracket
        "sqlite://ops:s3cret-pw@/{tmp}/cases.db",  # SQLite's URL forms, in several lines
    ],
)
@pytest.mark.parametrize("command", [("sla", "tick", "--store"), ("db", "init")], ids=" ".join)
def test_a_store_url_refused_is_one_line_without_its_password(
    url: str, command: tuple[str, ...], tmp_path: Path
) -> None:
    """A URL the store cannot use is an `Error:` line naming it, the password masked:
    not a traceback (a port that is not a number, an unclosed bracket), not the URL as
    given (the missing file, the directory), not SQLAlchemy's several lines."""
    result = _run(*command, url.format(tmp=tmp_path))
    _clean(result)
    assert "s3cret-pw" not in result.output
    assert ":***@" in result.output
