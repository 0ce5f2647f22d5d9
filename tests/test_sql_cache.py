"""The SQL store's snapshot cache never shows a snapshot other than the stored one: a step
written by another store or process, an edited row, a conflicting append are all seen as
the database has them; and a case this store wrote is loaded without validating its JSON
again."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

import adapters.sql
from adapters.memory import MemoryStore
from adapters.snapshot_cache import SnapshotCache
from adapters.sql import SqlStore
from tests.conftest import START
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import ConcurrencyConflict, Engine, ManualClock
from workflow.domain import Case, read_snapshot
from workflow.events import make_event
from workflow.replay import replay
from workflow.store import Store

Stores = tuple[SqlStore, SqlStore, str, str]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    """Two stores on one database, as two processes would have."""
    if request.param == "sqlite":
        url, prefix = sqlite_url(tmp_path), "cf_"
    else:
        url, prefix = postgres_url(), fresh_prefix()
    first = SqlStore(url, prefix=prefix, create=True)
    second = SqlStore(url, prefix=prefix)
    yield first, second, url, prefix
    first.close()
    second.close()
    if request.param == "postgres":
        drop_tables(url, prefix)


def _engine(store: Store) -> Engine:
    return Engine(store, clock=ManualClock(START))


def _open(engine: Engine, case_id: str = "case-1") -> str:
    return engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="email", case_id=case_id
    ).id


class _CountingValidation:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, case_id: str, stored: object) -> Case:
        self.calls += 1
        return read_snapshot(case_id, stored)


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> _CountingValidation:
    counting = _CountingValidation()
    monkeypatch.setattr(adapters.sql, "read_snapshot", counting)
    return counting


def test_a_case_this_store_wrote_loads_without_validating_its_json_again(
    two_stores: Stores, validations: _CountingValidation
) -> None:
    store = two_stores[0]
    engine = _engine(store)
    cid = _open(engine)
    case = engine.acknowledge(cid, actor="agent:a")
    assert store.load(cid) is case
    assert validations.calls == 0


def test_a_step_another_store_wrote_is_loaded_not_the_cached_snapshot(
    two_stores: Stores,
) -> None:
    first, second, _, _ = two_stores
    cid = _open(_engine(first))
    cached = first.load(cid)
    theirs = _engine(second).add_note(cid, actor="agent:b", text="written elsewhere")
    loaded = first.load(cid)
    assert loaded == theirs
    assert (cached.version, loaded.version) == (1, 2)
    assert [n.text for n in loaded.notes] == ["written elsewhere"]


def test_a_snapshot_edited_in_place_is_loaded_as_stored_even_at_the_same_version(
    two_stores: Stores,
) -> None:
    """An edit that keeps the version (tampering, a hand fix) is what ``load`` and so
    ``audit.verify`` see: the cache is keyed on the stored text, not the version."""
    store, _, url, prefix = two_stores
    cid = _open(_engine(store))
    assert store.load(cid).customer.name == "Ann"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE {prefix}cases SET snapshot = REPLACE(snapshot, '\"Ann\"', '\"Bob\"')"
        )
    engine.dispose()
    loaded = store.load(cid)
    assert (loaded.version, loaded.customer.name) == (1, "Bob")


def test_a_conflicting_append_writes_nothing_and_caches_nothing(two_stores: Stores) -> None:
    first, second, _, _ = two_stores
    engine = _engine(first)
    cid = _open(engine)
    stale = first.load(cid)
    current = _engine(second).add_note(cid, actor="agent:b", text="first")
    event = make_event(
        cid, 2, "add_note", START, "agent:a", {"text": "lost"}, engine.policy.stamp,
        stale.head_hash,
    )  # fmt: skip
    with pytest.raises(ConcurrencyConflict) as conflict:
        first.append(replay([*first.events(cid)[:1], event]), [event], 1)
    assert (conflict.value.expected, conflict.value.found) == (1, 2)
    assert [e.data for e in first.events(cid)][1:] == [{"text": "first"}]
    assert first.load(cid) == current
    assert second.load(cid) == current


def test_without_a_cache_every_load_validates(
    tmp_path: Path, validations: _CountingValidation
) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True, snapshot_cache=0)
    cid = _open(_engine(store))
    first, second = store.load(cid), store.load(cid)
    assert first == second
    assert first is not second
    assert validations.calls == 2
    store.close()


def test_the_cache_holds_at_most_its_size_dropping_the_least_recent() -> None:
    cache = SnapshotCache(2)
    engine = _engine(MemoryStore())
    cases = [engine.store.load(_open(engine, f"case-{n}")) for n in range(3)]
    for n, case in enumerate(cases):
        cache.put(f"text-{n}", case)
    assert len(cache) == 2
    assert cache.match("case-0", "text-0") is None
    assert cache.match("case-2", "text-2") is cases[2]
    assert cache.match("case-2", "other text") is None


def test_a_negative_cache_size_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        SnapshotCache(-1)


def _note_in_another_process(url: str, case_id: str) -> None:
    store = SqlStore(url)
    _engine(store).add_note(case_id, actor="agent:other", text="from another process")
    store.close()


def test_a_step_another_process_wrote_is_loaded_not_the_cached_snapshot(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    cid = _open(_engine(store))
    assert store.load(cid).version == 1
    proc = multiprocessing.get_context("spawn").Process(
        target=_note_in_another_process, args=(url, cid)
    )
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    loaded = store.load(cid)
    assert (loaded.version, [n.text for n in loaded.notes]) == (2, ["from another process"])
    # and this store's next step continues from it
    assert _engine(store).add_note(cid, actor="agent:a", text="here").version == 3
    store.close()


def _traced(store: SqlStore) -> list[str]:
    """The statements the store's own SQLite connection runs from now on."""
    assert store._hot is not None
    assert store._hot._own is not None
    statements: list[str] = []
    store._hot._own.driver_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
    return statements


def test_on_sqlite_a_case_nobody_else_wrote_since_is_loaded_without_reading_its_row(
    tmp_path: Path,
) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = _engine(store)
    cid = _open(engine)
    statements = _traced(store)
    case = engine.acknowledge(cid, actor="agent:a")
    statements.clear()
    assert store.load(cid) is case
    assert statements == ["PRAGMA data_version"]
    store.close()


def test_on_sqlite_any_other_connection_s_commit_makes_the_next_load_read_the_row(
    tmp_path: Path,
) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = _engine(store)
    cid = _open(engine)
    other = _open(engine, "case-other")
    case = store.load(cid)
    statements = _traced(store)
    elsewhere = SqlStore(sqlite_url(tmp_path))
    _engine(elsewhere).add_note(other, actor="agent:b", text="another case entirely")
    elsewhere.close()
    assert store.load(cid) is case  # the same text: the cached Case, checked
    assert any(s.startswith("SELECT") for s in statements)
    statements.clear()
    assert store.load(cid) is case
    assert statements == ["PRAGMA data_version"]  # checked once, current again
    store.close()


def test_on_sqlite_a_commit_the_cache_never_heard_of_is_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the store's own commit is not followed by its cache update (an exception in
    between), the next load still reads the row: the stamp counts this connection's
    changes too."""
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = _engine(store)
    cid = _open(engine)
    assert store.load(cid).version == 1

    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(store.cache, "put", interrupted)
    with pytest.raises(KeyboardInterrupt):
        engine.add_note(cid, actor="agent:a", text="committed, never cached")
    monkeypatch.undo()
    loaded = store.load(cid)
    assert (loaded.version, [n.text for n in loaded.notes]) == (2, ["committed, never cached"])
    store.close()
