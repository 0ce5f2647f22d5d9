"""The SQLite hot path (adapters.sqlite_hot) writes exactly the rows Core writes, keeps
one transaction per step, and its driver errors are translated like Core's."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from adapters import open_store
from adapters.sql import SqlStore
from adapters.sql_schema import UtcDateTime
from adapters.sqlite_hot import utc_text
from adapters.testing import StoreContract
from policies.loader import bundled_policy
from tests.conftest import PATH, START
from tests.stores import sqlite_url
from workflow import (
    ConcurrencyConflict,
    Engine,
    ManualClock,
    SchemaVersionError,
    SnapshotUnreadable,
    StoreError,
    StoreUnavailable,
)
from workflow.domain import Case, evolve
from workflow.events import Event, make_event
from workflow.replay import replay

_SQLITE = sqlite_dialect()


def _core_only(store: SqlStore) -> SqlStore:
    """The same store with the hot path switched off: everything through Core."""
    store._hot = None
    return store


class TestSqliteStoreThroughCore(StoreContract):
    """The Core path still serves PostgreSQL and other SQLite drivers: it keeps passing
    the contract on SQLite too."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = _core_only(SqlStore(sqlite_url(tmp_path), create=True))
        yield store
        store.close()


def test_the_sqlite_store_takes_the_hot_path(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    assert store._hot is not None
    store.close()


def _busy_history(store: SqlStore) -> None:
    """Steps that write every kind of row: cases, events, SLA deadlines, idempotency
    keys, a cap check that reads the customer's other case, and SLA events fired by a
    sweep on the case left open."""
    clock = ManualClock(START)
    engine = Engine(store, policy=bundled_policy("retail"), clock=clock)
    for n in range(2):
        cid = engine.open_case(
            actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="email",
            subject="broken", case_id=f"case-{n}", idempotency_key=f"open-{n}",
        ).id  # fmt: skip
        for step, inputs in PATH if n == 0 else PATH[:3]:
            clock.advance(minutes=47)
            actor = "customer:c-1" if step == "accept_remedy" else "agent:a"
            if step == "accept_remedy":
                inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
            engine.step(cid, step, actor=actor, idempotency_key=f"{cid}-{step}", **inputs)
    clock.advance(days=10)
    engine.tick()
    engine.open_case(
        actor="agent:a", customer={"id": "c-2", "name": "Bo"}, channel="email", case_id="case-2"
    )  # its acknowledgement deadline stays pending


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as conn:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
            for table in tables
        }


def test_the_hot_path_writes_exactly_the_rows_core_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools

    import workflow.personal

    hot_dir, core_dir = tmp_path / "hot", tmp_path / "core"
    hot_dir.mkdir()
    core_dir.mkdir()
    for folder, make in ((hot_dir, lambda s: s), (core_dir, _core_only)):
        # The same salts for personal values in both runs, so the rows can be equal.
        counter = itertools.count()

        def salt(n: int, counter: itertools.count[int] = counter) -> bytes:
            return next(counter).to_bytes(n, "big")

        monkeypatch.setattr(workflow.personal.secrets, "token_bytes", salt)
        store = make(SqlStore(sqlite_url(folder), create=True))
        _busy_history(store)
        store.close()
    hot, core = _rows(hot_dir / "cases.db"), _rows(core_dir / "cases.db")
    assert {table: len(rows) for table, rows in hot.items()} == {
        table: len(rows) for table, rows in core.items()
    }
    assert len(hot["cf_events"]) > 15  # 10 + 4 steps + 1 open, and the sweep's SLA events
    assert hot["cf_deadlines"]
    assert len(hot["cf_idempotency"]) == 14
    assert hot == core


def test_a_locked_database_is_store_unavailable_and_the_store_recovers(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)

    @event.listens_for(store.engine, "checkout")
    def _wait_briefly(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")  # not 30 s

    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    blocker = sqlite3.connect(tmp_path / "cases.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailable, match="unavailable or busy") as error:
        engine.acknowledge(cid, actor="agent:a")
    assert isinstance(error.value.__cause__, sqlite3.OperationalError)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert store.load(cid).version == 1
    assert engine.acknowledge(cid, actor="agent:a").version == 2
    store.close()


def test_a_refused_write_rolls_back_the_whole_step(tmp_path: Path) -> None:
    """The idempotency key is the step's last statement: when it is refused, the case
    row and event written before it in the same transaction are rolled back."""
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = Engine(store, clock=ManualClock(START))
    first = engine.open_case(
        actor="agent:a", customer={"id": "c", "name": "N"}, channel="web", case_id="case-1"
    ).id
    second = engine.open_case(
        actor="agent:a", customer={"id": "c", "name": "N"}, channel="web", case_id="case-2"
    ).id
    engine.add_note(first, actor="agent:a", text="x", idempotency_key="taken")
    snapshot, events, version = _note(engine, store, second)
    with pytest.raises(ConcurrencyConflict):
        store.append(snapshot, events, version, idempotency_key="taken")
    assert store.load(second).version == 1
    assert len(store.events(second)) == 1
    store.close()


def _note(engine: Engine, store: SqlStore, case_id: str) -> tuple[Case, list[Event], int]:
    case = store.load(case_id)
    event = make_event(
        case_id, case.version + 1, "add_note", START, "agent:a", {"text": "n"},
        engine.policy.stamp, case.head_hash,
    )  # fmt: skip
    return replay([*store.events(case_id), event]), [event], case.version


_EARLIEST, _LATEST = datetime(1, 1, 2), datetime(9999, 12, 30)  # noqa: DTZ001 (bounds)


@given(st.datetimes(min_value=_EARLIEST, max_value=_LATEST, timezones=st.timezones()))
def test_the_hot_path_formats_times_as_core_does(moment: datetime) -> None:
    core = UtcDateTime().dialect_impl(_SQLITE).bind_processor(_SQLITE)
    assert core is not None
    assert utc_text(moment) == core(moment)


def test_the_hot_path_refuses_naive_times_as_core_does() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc_text(datetime(2026, 11, 2, 9, 0))  # noqa: DTZ001
    assert utc_text(None) is None


def test_a_remembered_utc_text_serves_only_the_same_instant() -> None:
    moment = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert utc_text(moment) == "2026-11-01 05:30:00.000000"  # now remembered
    assert utc_text(moment.astimezone(timezone(timedelta(hours=2)))) == utc_text(moment)
    # the same wall time in another zone is another instant
    same_fields = datetime(2026, 11, 1, 5, 30, tzinfo=timezone(timedelta(hours=2)))
    assert utc_text(same_fields) == "2026-11-01 03:30:00.000000"
    # an ambiguous wall time: each fold its own instant, one of them the remembered one
    new_york = ZoneInfo("America/New_York")
    first, second = (datetime(2026, 11, 1, 1, 30, fold=f, tzinfo=new_york) for f in (0, 1))
    assert utc_text(second.astimezone(UTC)) == "2026-11-01 06:30:00.000000"
    assert (utc_text(first), utc_text(second)) == (
        "2026-11-01 05:30:00.000000",
        "2026-11-01 06:30:00.000000",
    )
    with pytest.raises(ValueError, match="naive"):
        utc_text(moment.replace(tzinfo=None))


def test_the_store_gives_its_own_connection_back_on_close_and_after_an_error(
    tmp_path: Path,
) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    pool = store.engine.pool
    assert pool.checkedout() == 1  # type: ignore[attr-defined]  # the store's own
    with pytest.raises(StoreError):
        store.append(store.load(cid), [], 1)  # refused before any SQL: keeps it
    with sqlite3.connect(tmp_path / "cases.db") as conn:
        conn.execute("DROP TABLE cf_idempotency")
    snapshot, events, version = _note(engine, store, cid)
    with pytest.raises(SchemaVersionError, match=r"no such table.*run `complaintflow db upgrade"):
        store.append(snapshot, events, version, idempotency_key="k")
    assert pool.checkedout() == 0  # type: ignore[attr-defined]  # given back, in doubt
    assert store.load(cid).version == 1  # the failed step left nothing
    assert pool.checkedout() == 1  # type: ignore[attr-defined]
    store.close()
    assert pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_call_that_finds_the_stores_connection_busy_takes_a_pooled_one(
    tmp_path: Path,
) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    hot = store._hot
    assert hot is not None
    own = hot._own
    with hot._own_lock:  # as if another thread were in a call on it
        case = engine.acknowledge(cid, actor="agent:a")  # loaded and written on another
        assert store.load(cid) == case
        snapshot, events, version = _note(engine, store, cid)
        store.append(snapshot, events, version)
        with pytest.raises(ConcurrencyConflict):
            store.append(snapshot, events, version)  # the same step again: stale
        assert store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # given back
    assert hot._own is own
    assert store.load(cid) == snapshot
    assert engine.add_note(cid, actor="agent:a", text="n").version == 4
    store.close()


def test_a_single_event_that_does_not_continue_the_case_is_refused(tmp_path: Path) -> None:
    """The store's quick check of one more event falls back to ``check_append``'s."""
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid, other = (
        engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
        for _ in range(2)
    )
    snapshot, events, version = _note(engine, store, cid)
    others = _note(engine, store, other)[1]
    with pytest.raises(StoreError, match="appended to case"):
        store.append(snapshot, others, version)
    with pytest.raises(StoreError, match="event seq 2, expected 3"):
        store.append(snapshot, events, version + 1)
    with pytest.raises(StoreError, match="snapshot version 3"):
        store.append(evolve(snapshot, version=3), events, version)
    assert store.load(cid).version == 1
    store.append(snapshot, events, version)
    assert store.load(cid) == snapshot
    store.close()


def _step_in_child(store: SqlStore, cid: str, out: Any) -> None:
    own_before = store._hot._own if store._hot is not None else None
    engine = Engine(store, clock=ManualClock(START))
    case = engine.acknowledge(cid, actor="agent:a")
    hot = store._hot
    assert hot is not None
    out.put((case.version, hot._own is not own_before, hot._own_pid == os.getpid()))


def test_a_forked_child_takes_its_own_connection_not_its_parents(tmp_path: Path) -> None:
    import multiprocessing

    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    assert store._hot is not None
    assert store._hot._own is not None  # the parent's, in use
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_step_in_child, args=(store, cid, out))
    child.start()
    version, replaced, current = out.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert (version, replaced, current) == (2, True, True)
    assert engine.add_note(cid, actor="agent:a", text="after the child").version == 3
    store.close()


def test_a_snapshot_stored_as_bytes_is_refused_as_core_refuses_it(tmp_path: Path) -> None:
    """The hot path hands the stored value on as the driver gives it, as Core does: a
    snapshot row turned into a BLOB of the same bytes is refused alike both ways, as
    ``audit verify`` reports it ("not text"; it used to load as the case both ways,
    and before that the hot path turned it into the text ``"b'...'"``)."""
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    engine.acknowledge(cid, actor="agent:a")
    with sqlite3.connect(tmp_path / "cases.db") as conn:
        conn.execute("UPDATE cf_cases SET snapshot = CAST(snapshot AS BLOB)")
    core = _core_only(SqlStore(url))
    for reader in (core, store):
        with pytest.raises(SnapshotUnreadable) as raised:
            reader.load(cid)
        assert raised.value.problems == (("the case", "it is not text"),)
    core.close()
    store.close()


@pytest.mark.parametrize("hot", [True, False], ids=["hot", "core"])
def test_an_event_with_a_naive_time_is_a_store_error_on_both_paths(
    tmp_path: Path, hot: bool
) -> None:
    """Core reports a value its bind processors refuse as a ``StatementError``, which the
    store translates into a ``StoreError``; the hot path says the same, and writes
    nothing either."""
    store = SqlStore(sqlite_url(tmp_path), create=True)
    if not hot:
        _core_only(store)
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    case = store.load(cid)
    naive = datetime(2026, 11, 2, 10, 0)  # noqa: DTZ001 (the point)
    event = make_event(
        cid, 2, "add_note", naive, "agent:a", {"text": "n"}, engine.policy.stamp, case.head_hash
    )
    with pytest.raises(StoreError, match=f"writing case {cid}: .*naive datetimes are refused"):
        store.append(evolve(case, version=2, head_hash=event.hash), [event], 1)
    assert store.load(cid) == case
    assert len(store.events(cid)) == 1
    store.close()


def _synchronous(store: SqlStore) -> tuple[object, object]:
    """``PRAGMA synchronous`` on the writer's pool (whose connections the hot path
    uses too) and the reader's: 1 NORMAL, 2 FULL."""
    with store.engine.connect() as writer, store.reader.connect() as reader:
        return (
            writer.exec_driver_sql("PRAGMA synchronous").scalar(),
            reader.exec_driver_sql("PRAGMA synchronous").scalar(),
        )


@pytest.mark.parametrize(("durability", "expected"), [("normal", 1), ("full", 2)])
def test_durability_sets_synchronous_on_every_sqlite_connection(
    tmp_path: Path, durability: str, expected: int
) -> None:
    store = open_store(sqlite_url(tmp_path), create=True, durability=durability)
    try:
        assert _synchronous(cast(SqlStore, store)) == (expected,) * 2
    finally:
        store.close()


def test_the_sqlite_store_is_durable_through_a_power_cut_by_default(tmp_path: Path) -> None:
    """A step the store says is written survives a power cut: FULL syncs the WAL at
    each commit (NORMAL only at checkpoints). docs/decisions/0045."""
    store = open_store(sqlite_url(tmp_path), create=True)
    try:
        assert _synchronous(cast(SqlStore, store)) == (2, 2)
    finally:
        store.close()


@pytest.mark.parametrize("durability", ["FULL", "fsync", "", None, 2])
def test_an_unknown_durability_is_refused_naming_the_ones_there_are(
    tmp_path: Path, durability: object
) -> None:
    """It used to give NORMAL silently ("FULL" in capitals included): a store asked for
    power-cut durability that quietly lacked it."""
    url = sqlite_url(tmp_path)
    with pytest.raises(StoreError) as refused:
        open_store(url, create=True, durability=durability)
    assert str(refused.value) == (
        f"{url}: durability: expected 'normal' or 'full', got {durability!r}"
    )
    assert not (tmp_path / "cases.db").exists()
