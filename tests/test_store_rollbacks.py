"""PostgreSQL ends a transaction to settle a race: a deadlock (SQLSTATE 40P01), or a
serialization failure (40001: under ``REPEATABLE READ`` or ``SERIALIZABLE``, which a
database's ``default_transaction_isolation`` may set for every session, a row changed
by a transaction committed since this one began). The server rolled the step back:
nothing was written, and the step read a case that changed under it. That is a
``ConcurrencyConflict``, which ``Engine.retrying`` retries, not a ``StoreUnavailable``
("the database is unavailable or busy"), which it does not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, event, make_url, text

from adapters.sql import SqlStore
from policies.loader import parse_policy
from tests.conftest import START, drive
from tests.stores import postgres_store, postgres_url
from tests.test_engine_policy import POLICY, apologised, new_engine, pay, refund
from workflow import ConcurrencyConflict, Engine, ManualClock, PolicyViolation

pytestmark = pytest.mark.postgres


def _waiting_for_a_row_lock(admin: SqlEngine, prefix: str) -> None:
    """Return once a session waits for a lock in a statement locking rows of the tables
    named by ``prefix`` (``SELECT ... FOR UPDATE``: a capped step's write), polled, for
    60 s at most."""
    give_up = time.monotonic() + 60
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND pid <> pg_backend_pid() AND strpos(query, :table) > 0 "
        "AND strpos(query, 'FOR UPDATE') > 0"
    )
    with admin.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        while not conn.execute(query, {"table": f"{prefix}cases"}).scalar():
            assert time.monotonic() < give_up, "the step never waited for the row lock"
            time.sleep(0.01)


def _in_a_thread(action: Callable[[], object]) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = action()
        except Exception as error:  # what is checked is the outcome
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.fixture
def serializable() -> Iterator[SqlStore]:
    """A store on a database whose sessions run ``SERIALIZABLE`` by default (as a
    DBA's ``ALTER DATABASE ... SET default_transaction_isolation`` makes them)."""
    options = {"connect_args": {"options": "-c default_transaction_isolation=serializable"}}
    yield from postgres_store(engine_options=options)  # type: ignore[misc]


def test_a_serialization_failure_waiting_for_a_case_is_a_conflict_and_retried(
    serializable: SqlStore,
) -> None:
    """Regression: an acceptance read the customer's other case, then waited for its
    row, locked by another worker's note on it; the note committed, and the server
    ended the acceptance with a serialization failure. It was ``StoreUnavailable``
    ("the database is unavailable or busy ...; nothing was written"), which
    ``Engine.retrying`` does not retry, for what is a conflict like any other."""
    store = serializable
    engine, clock = new_engine(store=store)
    first, second = apologised(engine), apologised(engine)
    engine.offer_remedy(first, actor="agent:alice", options=[refund("50")])
    due = clock.now() + timedelta(days=1)
    other = SqlStore(store.url, prefix=store.prefix)
    try:
        holding, release = threading.Event(), threading.Event()

        @event.listens_for(other.engine, "commit")
        def _hold_the_commit(conn: Any) -> None:
            holding.set()
            assert release.wait(60)

        note, _ = _in_a_thread(
            lambda: Engine(other, policy=POLICY, clock=ManualClock(clock.now())).add_note(
                second, actor="agent:bob", text="called them"
            )
        )
        assert holding.wait(60)  # the note holds the second case's row
        accept, outcome = _in_a_thread(
            lambda: engine.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)
        )
        _waiting_for_a_row_lock(store.engine, store.prefix)
        release.set()
        note.join(60)
        accept.join(60)
    finally:
        other.close()
    assert isinstance(outcome.get("error"), ConcurrencyConflict), outcome
    assert engine.get(first).state == "remedy_offered"  # nothing was written
    retried = engine.retrying(
        lambda: engine.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)
    )
    assert retried.state == "promised"


def test_a_deadlock_the_server_breaks_is_a_conflict_and_retried() -> None:
    """Regression: a step the server chose to end to break a deadlock (here with
    another program's transaction, which locked the customer's second case and then
    wanted the first) was ``StoreUnavailable``; it wrote nothing, and a retry goes
    through once the other transaction is done."""
    stores = postgres_store()
    store: SqlStore = next(stores)  # type: ignore[assignment]
    admin = create_engine(postgres_url())
    try:
        engine, clock = new_engine(store=store)
        first, second = apologised(engine), apologised(engine)
        engine.offer_remedy(first, actor="agent:alice", options=[refund("50")])
        due = clock.now() + timedelta(days=1)
        cases = store.tables.cases
        touch = cases.update().values(version=cases.c.version)
        with admin.connect() as program:
            superuser = program.execute(text("SELECT rolsuper FROM pg_roles "
                                             "WHERE rolname = current_user")).scalar()  # fmt: skip
            if superuser:  # the step, not this transaction, is the one the server ends
                program.execute(text("SET LOCAL deadlock_timeout = '60s'"))
            # The step locks the customer's cases in id order: this transaction takes the
            # later one, so the step holds the earlier and waits; then it wants the earlier.
            earlier, later = sorted((first, second))
            program.execute(touch.where(cases.c.case_id == later))
            accept, outcome = _in_a_thread(
                lambda: engine.accept_remedy(
                    first, actor="customer:c", option=1, promise="r", due=due
                )
            )
            _waiting_for_a_row_lock(admin, store.prefix)
            program.execute(touch.where(cases.c.case_id == earlier))  # the deadlock
            accept.join(60)
            program.rollback()
        assert isinstance(outcome.get("error"), ConcurrencyConflict), outcome
        assert engine.get(first).state == "remedy_offered"
        retried = engine.retrying(
            lambda: engine.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)
        )
        assert retried.state == "promised"
    finally:
        admin.dispose()
        stores.close()


@pytest.mark.parametrize("code", ["40001", "40P01"])
@pytest.mark.parametrize("when", ["writing", "committing"])
def test_a_step_the_server_rolls_back_to_settle_a_race_is_a_conflict(code: str, when: str) -> None:
    """Under ``SERIALIZABLE`` the server may refuse the COMMIT itself (40001: another
    transaction's write made this one's reads stale). Whether it ends the step at a
    statement or at its commit, nothing was written, the store knows it (the server
    said so), and the step is a conflict. A trigger raises the code here, at the
    events' insert or (deferred) at the commit, as the server's own check would."""
    stores = postgres_store()
    store: SqlStore = next(stores)  # type: ignore[assignment]
    prefix = store.prefix
    function = f'"{prefix}race"'
    events = f'"{prefix}events"'
    timing = "DEFERRABLE INITIALLY DEFERRED" if when == "committing" else "NOT DEFERRABLE"
    admin = create_engine(postgres_url())
    try:
        engine, _ = new_engine(store=store)
        cid = apologised(engine)
        with admin.begin() as conn:
            conn.execute(text(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION 'settled a race' USING ERRCODE = '{code}'; END $$"
            ))  # fmt: skip
            conn.execute(text(
                f'CREATE CONSTRAINT TRIGGER "{prefix}race" AFTER INSERT ON {events} {timing} '
                f"FOR EACH ROW EXECUTE FUNCTION {function}()"
            ))  # fmt: skip
        with pytest.raises(ConcurrencyConflict) as conflict:
            engine.add_note(cid, actor="agent:alice", text="called them")
        assert conflict.value.case_id == cid
        assert len(store.events(cid)) == 5  # the note is not there
    finally:
        stores.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP FUNCTION IF EXISTS {function}() CASCADE"))
        admin.dispose()


def _waiting_for_an_advisory_lock(admin: SqlEngine, role: str) -> None:
    """Return once a session of ``role`` waits for an advisory lock, polled, for 60 s at
    most."""
    give_up = time.monotonic() + 60
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND wait_event = 'advisory' AND usename = :role"
    )
    with admin.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        while not conn.execute(query, {"role": role}).scalar():
            assert time.monotonic() < give_up, "the step never reached the gate"
            time.sleep(0.01)


def test_a_case_paid_while_the_cap_check_scans_the_customers_cases_is_seen() -> None:
    """Regression (decision 0061, left alone; 0062): the capped step's write locks the
    customer's rows with one ``SELECT ... FOR UPDATE``, whose snapshot is taken when it
    starts; rows are locked after the scan. A case of the same customer opened, offered
    and accepted by another worker between that snapshot and the first row lock was
    not seen (a locking read sees no row inserted after its snapshot), and both cases
    were paid: 10 + 50 + 50 EUR against a cap of 100. Here the step is held inside that
    scan by a gate: a row-level security policy on the cases table (the step's store
    connects as a role of its own, not a superuser, which security policies would not
    bind) whose function waits for an advisory lock the test holds, only in a statement
    that locks rows. The other worker (a superuser, not gated) pays the new case
    meanwhile. Now the step reads the customer's cases again once they are locked (a
    new snapshot) and conflicts; retried, it is refused by the cap."""
    stores = postgres_store()
    store: SqlStore = next(stores)  # type: ignore[assignment]
    prefix = store.prefix
    tables = store.tables
    role, gate = f'"{prefix}app"', f'"{prefix}gate"'
    key = int(prefix[1:-1], 16)  # the advisory lock of this test's tables
    names = [t.name for t in tables.metadata.sorted_tables] + [tables.version_table]
    admin = create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    app: SqlStore | None = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN"))
            conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {role}"))
            for name in names:
                conn.execute(text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{name}" TO {role}'))
            conn.execute(text(
                f"CREATE FUNCTION {gate}() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$ "
                "BEGIN IF strpos(current_query(), 'FOR UPDATE') > 0 THEN "
                f"PERFORM pg_advisory_lock_shared({key}); "
                f"PERFORM pg_advisory_unlock_shared({key}); END IF; RETURN true; END $$"
            ))  # fmt: skip
            conn.execute(text(f'ALTER TABLE "{tables.cases.name}" ENABLE ROW LEVEL SECURITY'))
            conn.execute(text(f'CREATE POLICY {gate} ON "{tables.cases.name}" USING ({gate}())'))
        engine, clock = new_engine(store=store)
        pay(engine, apologised(engine), "10.00", clock)
        first = apologised(engine)
        engine.offer_remedy(first, actor="agent:alice", options=[refund("50")])
        due = clock.now() + timedelta(days=1)
        url = make_url(postgres_url()).set(username=role.strip('"'))
        app = SqlStore(url.render_as_string(hide_password=False), prefix=prefix)
        worker = Engine(app, policy=POLICY, clock=ManualClock(clock.now()))
        with admin.connect() as holder:
            holder.execute(text(f"SELECT pg_advisory_lock({key})"))
            accept, outcome = _in_a_thread(
                lambda: worker.accept_remedy(
                    first, actor="customer:c", option=1, promise="r", due=due
                )
            )
            _waiting_for_an_advisory_lock(
                admin, role.strip('"')
            )  # inside the scan, its snapshot taken
            second = apologised(engine)  # meanwhile another worker opens, offers, pays
            pay(engine, second, "50.00", clock)
            holder.execute(text(f"SELECT pg_advisory_unlock({key})"))
            accept.join(60)
        error = outcome.get("error")
        assert isinstance(error, ConcurrencyConflict), outcome
        assert error.case_id == second
        assert engine.get(first).state == "remedy_offered"  # nothing was written
        with pytest.raises(PolicyViolation, match="cap"):  # retried: it sees the payment
            worker.accept_remedy(first, actor="customer:c", option=1, promise="r", due=due)
    finally:
        if app is not None:
            app.close()
        stores.close()
        with admin.connect() as conn:
            conn.execute(text(f"DROP FUNCTION IF EXISTS {gate}() CASCADE"))
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def _race_on(admin: SqlEngine, prefix: str, table: str, statement: str, code: str) -> str:
    """A trigger that raises ``code`` before each ``statement`` on the table ``table``
    (as the server would to settle a race there); returns its function, to drop."""
    function = f'"{prefix}race"'
    with admin.begin() as conn:
        conn.execute(text(
            f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION 'settled a race' USING ERRCODE = '{code}'; END $$"
        ))  # fmt: skip
        conn.execute(text(
            f'CREATE TRIGGER "{prefix}race" BEFORE {statement} ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION {function}()"
        ))  # fmt: skip
    return function


@pytest.mark.parametrize("code", ["40001", "40P01"])
def test_a_deadline_claim_the_server_rolls_back_claims_nothing_until_the_next_tick(
    code: str,
) -> None:
    """Regression: under a default of ``REPEATABLE READ`` or ``SERIALIZABLE`` the
    sweeper's claim (an ``UPDATE`` of the due deadlines) fails with a serialization
    failure when a step rewrote one of those deadlines since the claim began, and a
    deadlock is possible with another program's transaction. It was
    ``StoreUnavailable`` ("the database is unavailable or busy"), and ``tick`` (and
    ``complaintflow sla tick``) stopped on it. The server rolled the claim back: nothing
    is claimed, the tick fires nothing, and the next tick claims the deadlines."""
    stores = postgres_store()
    store: SqlStore = next(stores)  # type: ignore[assignment]
    admin = create_engine(postgres_url())
    function = None
    try:
        clock = ManualClock(START)
        timed = parse_policy(
            "name: timed\nversion: '1'\ncurrency: EUR\nsla:\n  targets:\n"
            "    - {id: ack, step: acknowledge, within: PT1H}\n"
        )
        engine = Engine(store, clock=clock, policy=timed)
        engine.open_case(actor="agent:a", customer={"id": "c", "name": "Ann"},
                         channel="email", subject="broken", case_id="case-late")  # fmt: skip
        clock.set(START + timedelta(hours=2))
        deadlines = store.tables.deadlines.name
        function = _race_on(admin, store.prefix, deadlines, "UPDATE", code)
        assert engine.tick() == []
        assert store.due_deadlines(clock.now()) == []
        with admin.begin() as conn:
            conn.execute(text(f"DROP FUNCTION {function}() CASCADE"))
        fired = engine.tick()  # the deadlines were left unclaimed
        assert {e.case_id for e in fired} == {"case-late"}
        assert [e.type for e in fired] == ["sla_warning", "sla_breached"]
    finally:
        stores.close()
        if function is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP FUNCTION IF EXISTS {function}() CASCADE"))
        admin.dispose()


@pytest.mark.parametrize("code", ["40001", "40P01"])
def test_a_purge_the_server_rolls_back_is_a_conflict_and_the_case_kept(code: str) -> None:
    """Regression: under a default of ``REPEATABLE READ`` or ``SERIALIZABLE`` a purge
    that waited for a case a step changed meanwhile fails with a serialization failure
    (a deadlock with another program's transaction is the same). It was
    ``StoreUnavailable``, and ``purge_expired`` (which keeps a case that changed
    meanwhile, a ``ConcurrencyConflict``) stopped on it, leaving the cases after it
    unpurged. Now it is a conflict: nothing of the case is deleted, the purge goes on
    with the other cases, and the next purge judges the case again."""
    stores = postgres_store()
    store: SqlStore = next(stores)  # type: ignore[assignment]
    admin = create_engine(postgres_url())
    function = None
    try:
        clock = ManualClock(START)
        engine = Engine(store, clock=clock)
        for cid in ("case-a", "case-b"):
            engine.open_case(actor="agent:a", customer={"id": "c", "name": "Ann"},
                             channel="email", subject="broken", case_id=cid)  # fmt: skip
            drive(engine, cid, "closed")
        clock.set(START + timedelta(days=7 * 366))
        tombstone = engine.purge_expired(actor="system:retention", dry_run=True)[0]
        assert tombstone.case_id == "case-a"
        cases = store.tables.cases
        with admin.begin() as conn:  # only case-a's purge meets the race
            conn.execute(text(
                f"CREATE FUNCTION \"{store.prefix}race\"() RETURNS trigger LANGUAGE plpgsql "
                f"AS $$ BEGIN IF OLD.case_id = 'case-a' THEN RAISE EXCEPTION 'settled a race' "
                f"USING ERRCODE = '{code}'; END IF; RETURN OLD; END $$"
            ))  # fmt: skip
            conn.execute(text(
                f'CREATE TRIGGER "{store.prefix}race" BEFORE DELETE ON "{cases.name}" '
                f'FOR EACH ROW EXECUTE FUNCTION "{store.prefix}race"()'
            ))  # fmt: skip
        function = f'"{store.prefix}race"'
        with pytest.raises(ConcurrencyConflict) as conflict:
            store.purge(tombstone)
        assert (conflict.value.case_id, conflict.value.expected) == ("case-a", tombstone.version)
        assert [t.case_id for t in engine.purge_expired(actor="system:retention")] == ["case-b"]
        assert len(store.events("case-a")) == tombstone.version  # nothing of it deleted
        with admin.begin() as conn:
            conn.execute(text(f"DROP FUNCTION {function}() CASCADE"))
        assert [t.case_id for t in engine.purge_expired(actor="system:retention")] == ["case-a"]
    finally:
        stores.close()
        if function is not None:
            with admin.begin() as conn:
                conn.execute(text(f"DROP FUNCTION IF EXISTS {function}() CASCADE"))
        admin.dispose()
