"""A purged case's id is not taken again (decision 0060): ``open_case`` with it is
``CasePurged`` (a ``CaseAlreadyExists``) naming the purge, and nothing is written. It
was accepted: the store then held a tombstone and a case of one id, every digest of it
was refused as edited, and a second purge of the id failed on SQL. On memory, SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import create_engine, delete, insert, text

from adapters.sql import SqlStore
from tests.conftest import START, drive
from tests.stores import SQL_KINDS, STORE_KINDS, each_store, sql_tables
from workflow import (
    CaseAlreadyExists,
    CaseNotFound,
    CasePurged,
    ConcurrencyConflict,
    Engine,
    ManualClock,
    audit,
)
from workflow.cli import main
from workflow.store import Store

PURGE_AT = START + timedelta(days=7 * 366)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


def _purged(store: Store) -> tuple[Engine, ManualClock]:
    """case-old opened, closed and purged; case-kept open."""
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    for cid in ("case-old", "case-kept"):
        engine.open_case(actor="agent:a", customer={"id": "c1", "name": "Ann"},
                         channel="email", subject="broken", case_id=cid)  # fmt: skip
    drive(engine, "case-old", "closed")
    clock.set(PURGE_AT)
    assert [t.case_id for t in engine.purge_expired(actor="system:retention")] == ["case-old"]
    return engine, clock


def _reopen_id(engine: Engine, **more: object) -> None:
    engine.open_case(actor="agent:b", customer={"id": "c2", "name": "Bo"}, channel="chat",
                     case_id="case-old", **more)  # fmt: skip


@pytest.mark.parametrize("key", [None, "k-open-again"])
def test_opening_a_case_with_a_purged_case_s_id_is_refused_naming_the_purge(
    store: Store, key: str | None
) -> None:
    engine, _ = _purged(store)
    digest = audit.store_digest(store)
    with pytest.raises(CasePurged) as refused:
        _reopen_id(engine, idempotency_key=key)
    error = refused.value
    assert isinstance(error, CaseAlreadyExists)
    assert isinstance(error, ConcurrencyConflict)
    assert (error.case_id, error.purged_at) == ("case-old", PURGE_AT)
    assert str(error) == (
        f"case case-old was purged at {PURGE_AT.isoformat()} (its tombstone keeps the id); "
        "nothing was written. A purged case's id is not used again: open the complaint under "
        "another id."
    )
    with pytest.raises(CaseNotFound):
        store.load("case-old")
    assert list(store.case_ids()) == ["case-kept"]
    assert [c.id for c in store.customer_cases("c2")] == []
    if key is not None:
        assert store.find_idempotent(key) is None
    assert audit.store_digest(store) == digest
    assert engine.verify() == []
    # Not retried: reloading cannot make the id free.
    runs = []

    def again() -> None:
        runs.append(1)
        _reopen_id(engine)

    with pytest.raises(CasePurged):
        engine.retrying(again, attempts=3)
    assert runs == [1]


def test_a_case_that_exists_is_still_case_already_exists(store: Store) -> None:
    engine, _ = _purged(store)
    with pytest.raises(CaseAlreadyExists) as refused:
        engine.open_case(actor="agent:a", customer={"id": "c1", "name": "Ann"},
                         channel="email", case_id="case-kept")  # fmt: skip
    assert type(refused.value) is CaseAlreadyExists


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str, str]]:
    with sql_tables(request.param, tmp_path) as tables:
        yield tables


def test_digests_of_the_store_still_verify_after_the_refusal(
    sql: tuple[Store, str, str], tmp_path: Path
) -> None:
    """What the reuse broke: the digest's heads are keyed by id, so it could hold only
    one of the two, and every later `verify --digest` refused the file as edited."""
    store, url, prefix = sql
    engine, _ = _purged(store)
    with pytest.raises(CasePurged):
        _reopen_id(engine)
    with freeze_time(PURGE_AT + timedelta(days=1)):
        saved = CliRunner().invoke(main, ["audit", "digest", "--store", url, "--prefix", prefix])
        assert saved.exit_code == 0, saved.output
        file = tmp_path / "digest.json"
        file.write_text(saved.output, encoding="utf-8")
        assert sorted(json.loads(saved.output)["heads"]) == ["case-kept", "case-old"]
        verified = CliRunner().invoke(
            main, ["audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(file)]
        )
    assert verified.exit_code == 0, verified.output


@pytest.fixture
def postgres() -> Iterator[SqlStore]:
    from tests.stores import postgres_store

    for store in postgres_store():
        assert isinstance(store, SqlStore)
        yield store


@pytest.mark.postgres
def test_an_opening_racing_a_purge_of_the_id_on_postgresql_sees_the_tombstone(
    postgres: SqlStore,
) -> None:
    """The purge deletes the case and writes its tombstone in one transaction; an
    opening of the id meanwhile waits on the case row's key, and once the purge commits
    it finds the tombstone: it looks after inserting the row, not before."""
    store = postgres
    engine = Engine(store, clock=ManualClock(START))
    engine.open_case(actor="agent:a", customer={"id": "c1", "name": "Ann"}, channel="email",
                     subject="broken", case_id="case-old")  # fmt: skip
    drive(engine, "case-old", "closed")
    case = store.load("case-old")
    assert case.closed_at is not None
    t = store.tables
    outcome: list[BaseException | None] = []

    def opening() -> None:
        try:
            _reopen_id(engine)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    purging = create_engine(store.url)
    try:
        with purging.connect() as conn:
            conn.begin()
            for table in (t.deadlines, t.idempotency, t.events, t.cases):
                conn.execute(delete(table).where(table.c.case_id == "case-old"))
            conn.execute(insert(t.tombstones).values(
                case_id="case-old", version=case.version, head_hash=case.head_hash,
                opened_at=case.opened_at, closed_at=case.closed_at, purged_at=PURGE_AT,
                purged_by="system:retention", reason="by the test", retention_years=6,
            ))  # fmt: skip
            worker = threading.Thread(target=opening)
            worker.start()
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE :insert"
            )
            with purging.connect() as watch:
                for _ in range(2000):  # until the opening waits on the purge
                    found = watch.execute(waiting, {"insert": f"INSERT INTO {t.cases.name}%"})
                    if found.scalar():
                        break
                    time.sleep(0.005)
                else:
                    pytest.fail("the opening never waited on the purge's lock")
            conn.commit()
            worker.join()
    finally:
        purging.dispose()
    (error,) = outcome
    assert isinstance(error, CasePurged), error
    with pytest.raises(CaseNotFound):
        store.load("case-old")
    assert audit.verify_store(store) == []
