"""Concurrency and idempotency across stores: keys reused for another command, a
duplicate case id, forked workers, threads sharing one store."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import START
from tests.stores import STORE_KINDS, each_store
from workflow import (
    CaseAlreadyExists,
    ConcurrencyConflict,
    Engine,
    IdempotencyKeyReused,
    ManualClock,
    Store,
    StoreError,
)

CUSTOMER = {"id": "c-1", "name": "Ann Example"}


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    yield from each_store(request.param, tmp_path)


def _engine(store: Store) -> Engine:
    return Engine(store, clock=ManualClock(START))


def _open(engine: Engine, case_id: str | None = None, **more: Any) -> str:
    return engine.open_case(
        actor="agent:a", customer=CUSTOMER, channel="web", case_id=case_id, **more
    ).id


# -- an idempotency key names one command ---------------------------------------------


def test_a_key_reused_on_another_case_is_refused_not_answered_with_the_other_case(
    store: Store,
) -> None:
    """The key was spent on case A: the same key on case B is a different command. It
    must neither return case A (the caller asked about B) nor append to B."""
    engine = _engine(store)
    first, second = _open(engine, "case-a"), _open(engine, "case-b")
    engine.add_note(first, actor="agent:a", text="on a", idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused) as refused:
        engine.add_note(second, actor="agent:a", text="on b", idempotency_key="k-1")
    error = refused.value
    assert (error.key, error.case_id, error.step) == ("k-1", "case-b", "add_note")
    assert (error.earlier_case_id, error.earlier_step) == ("case-a", "add_note")
    assert "'k-1' was already used for 'add_note' on case case-a" in str(error)
    assert [e.type for e in engine.history(second)] == ["open"]


def test_a_key_reused_for_another_step_on_the_same_case_is_refused(store: Store) -> None:
    engine = _engine(store)
    cid = _open(engine)
    engine.add_note(cid, actor="agent:a", text="x", idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused, match="add_note"):
        engine.acknowledge(cid, actor="agent:a", idempotency_key="k-1")
    assert engine.get(cid).state == "received"
    assert [e.type for e in engine.history(cid)] == ["open", "add_note"]


def test_a_key_spent_on_a_step_is_refused_for_open_case_and_the_other_way(store: Store) -> None:
    engine = _engine(store)
    cid = _open(engine, idempotency_key="open-1")
    engine.add_note(cid, actor="agent:a", text="x", idempotency_key="note-1")
    with pytest.raises(IdempotencyKeyReused):
        engine.open_case(
            actor="agent:a", customer=CUSTOMER, channel="web", idempotency_key="note-1"
        )
    with pytest.raises(IdempotencyKeyReused):
        engine.add_note(cid, actor="agent:a", text="y", idempotency_key="open-1")
    assert list(store.case_ids()) == [cid]
    assert engine.get(cid).version == 2


def test_open_case_with_a_key_spent_on_another_case_id_is_refused(store: Store) -> None:
    engine = _engine(store)
    _open(engine, "case-a", idempotency_key="open-1")
    with pytest.raises(IdempotencyKeyReused, match="case-a"):
        _open(engine, "case-b", idempotency_key="open-1")
    assert list(store.case_ids()) == ["case-a"]


def test_a_retried_command_still_returns_the_first_result(store: Store) -> None:
    """The same command again (same case, same step, same inputs) returns what the
    first one left, after later steps too. An open_case retried with the id the first
    one made is another command (its explicit id is one of its inputs: decision 0032)."""
    engine = _engine(store)
    opened = engine.open_case(
        actor="agent:a", customer=CUSTOMER, channel="web", idempotency_key="open-1"
    )
    again = engine.open_case(
        actor="agent:a", customer=CUSTOMER, channel="web", idempotency_key="open-1"
    )
    assert again == opened
    with pytest.raises(IdempotencyKeyReused, match="the inputs differ"):
        _open(engine, opened.id, idempotency_key="open-1")
    assert _open(engine, "case-x", idempotency_key="open-x") == "case-x"
    assert _open(engine, "case-x", idempotency_key="open-x") == "case-x"
    noted = engine.add_note(opened.id, actor="agent:a", text="x", idempotency_key="note-1")
    engine.acknowledge(opened.id, actor="agent:a")
    assert engine.add_note(opened.id, actor="agent:a", text="x", idempotency_key="note-1") == noted
    assert engine.get(opened.id).version == 3
    assert sorted(store.case_ids()) == sorted([opened.id, "case-x"])


# -- a forked worker ------------------------------------------------------------------


def _step_and_close_in_child(store: SqlStore, case_id: str) -> None:
    """A forked worker uses the store it inherited, then closes it, as workers do."""
    engine = _engine(store)
    engine.add_note(case_id, actor="agent:child", text="from the child")
    assert store.find_idempotent("no-such-key") is None
    assert store.due_deadlines(START) == []
    store.close()


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)  # the memory store has no connections
def test_a_forked_worker_never_uses_or_closes_its_parents_connections(store: SqlStore) -> None:
    """After ``fork`` the child must open its own connections: sharing the parent's (a
    PostgreSQL socket, an SQLite handle) mixes two processes' traffic, and the child's
    ``close`` used to end the parent's PostgreSQL session under it."""
    engine = _engine(store)
    cid = _open(engine)
    engine.add_note(cid, actor="agent:parent", text="before")
    assert store.find_idempotent("no-such-key") is None  # the reader pool holds one now
    child = multiprocessing.get_context("fork").Process(
        target=_step_and_close_in_child, args=(store, cid)
    )
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    after = engine.add_note(cid, actor="agent:parent", text="after")
    assert [n.text for n in after.notes] == ["before", "from the child", "after"]
    assert store.find_idempotent("no-such-key") is None


# -- open_case with one explicit id from two workers -----------------------------------


def test_two_workers_opening_one_case_id_one_wins_and_the_other_is_told_it_exists(
    store: Store,
) -> None:
    """Two threads open the same ticket id at once: one case, one ``open`` event; the
    loser gets ``CaseAlreadyExists`` (still a ``ConcurrencyConflict``), which
    ``retrying`` does not retry: a reload cannot make the id free."""
    engine = _engine(store)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}
    calls: list[str] = []

    def open_it(who: str) -> None:
        def action() -> str:
            calls.append(who)
            return _open(engine, "ticket-42")

        barrier.wait()
        try:
            engine.retrying(action, attempts=5)
            outcomes[who] = "opened"
        except CaseAlreadyExists as error:
            outcomes[who] = (
                f"exists: {error.case_id}, a conflict: {isinstance(error, ConcurrencyConflict)}"
            )

    threads = [threading.Thread(target=open_it, args=(w,)) for w in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes.values()) == ["exists: ticket-42, a conflict: True", "opened"]
    assert len(calls) == 2  # the loser was not retried
    assert [e.type for e in engine.history("ticket-42")] == ["open"]
    with pytest.raises(CaseAlreadyExists, match="ticket-42 already exists"):
        _open(engine, "ticket-42")


_UNRAISABLE: list[str] = []


def _fork_hooks_ran_cleanly() -> None:
    """In the child: the at-fork hooks reported nothing (an exception in one is only
    reported, and the stores after it kept their parent's pools)."""
    assert _UNRAISABLE == [], _UNRAISABLE


def test_a_store_that_failed_to_open_does_not_break_the_fork_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``SqlStore`` whose engine could not be made (an unknown driver), still held by
    the error's traceback, is no open store: a later fork forgets the open stores'
    parent connections without tripping over it."""
    monkeypatch.setattr(
        "sys.unraisablehook", lambda unraisable: _UNRAISABLE.append(repr(unraisable.exc_value))
    )
    with pytest.raises(StoreError) as failed:
        SqlStore(f"sqlite+nosuchdriver:///{tmp_path / 'x.db'}", create=True)
    child = multiprocessing.get_context("fork").Process(target=_fork_hooks_ran_cleanly)
    child.start()
    child.join(timeout=30)
    assert failed.value is not None  # its traceback (and the half-made store) still held
    assert child.exitcode == 0


# -- the sweeper's claim on PostgreSQL --------------------------------------------------

SLA_POLICY = """
name: sweep
version: "1"
currency: EUR
sla:
  targets:
    - {id: ack, step: acknowledge, within: PT1H}
"""


@pytest.mark.postgres
def test_a_sweeper_passes_over_the_deadlines_another_worker_holds_and_claims_the_rest() -> None:
    """On PostgreSQL ``due_deadlines`` claims with ``FOR UPDATE SKIP LOCKED``: deadline
    rows another worker's transaction has locked are passed over, not waited for, and
    the other due deadlines are claimed at once. (The store's connection has a short
    ``lock_timeout``: a claim that waited for the locked rows fails instead of hanging.)
    Once that transaction ends, the rows it held are claimed by the next sweep."""
    from sqlalchemy import create_engine, text

    from policies.loader import parse_policy
    from tests.stores import drop_tables, fresh_prefix, postgres_url

    url, prefix = postgres_url(), fresh_prefix()
    store = SqlStore(
        url,
        prefix=prefix,
        create=True,
        engine_options={"connect_args": {"options": "-c lock_timeout=2000"}},
    )
    locker = create_engine(url)
    try:
        engine = Engine(store, policy=parse_policy(SLA_POLICY), clock=ManualClock(START))
        ids = [_open(engine, f"case-{n}") for n in range(6)]
        due = {(d.case_id, d.key) for cid in ids for d in store.pending_deadlines(cid)}
        assert {cid for cid, _ in due} == set(ids)
        now = START + timedelta(hours=2)  # every deadline is due
        with locker.connect() as other:
            held = {
                (row[0], row[1])
                for row in other.execute(
                    text(
                        f"SELECT case_id, key FROM {prefix}deadlines "
                        "WHERE case_id IN (:a, :b) FOR UPDATE"
                    ),
                    {"a": ids[0], "b": ids[1]},
                )
            }
            assert {cid for cid, _ in held} == {ids[0], ids[1]}
            claimed = {(d.case_id, d.key) for d in store.due_deadlines(now)}
            assert claimed == due - held
            other.rollback()
        assert {(d.case_id, d.key) for d in store.due_deadlines(now)} == held
    finally:
        store.close()
        locker.dispose()
        drop_tables(url, prefix)


# -- retrying's pauses -----------------------------------------------------------------


def _conflicting(times: int, engine: Engine, case_id: str) -> Any:
    """An action that meets a concurrent change ``times`` times, then adds a note."""
    left = [times]

    def action() -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise ConcurrencyConflict(case_id, 1, 2, step="add_note")
        return engine.add_note(case_id, actor="agent:a", text="at last")

    return action


def test_retrying_pauses_between_attempts_backing_off_with_jitter() -> None:
    """With ``backoff``, the pause before attempt n+1 is a random time between 0 and
    backoff * 2**(n-1) (exponential, full jitter): workers that met one conflict do not
    meet it again in lockstep. No pause before the first attempt or after the last."""
    engine = _engine(MemoryStore())
    cid = _open(engine)
    pauses: list[float] = []
    case = engine.retrying(
        _conflicting(3, engine, cid),
        attempts=4,
        backoff=timedelta(milliseconds=20),
        sleep=pauses.append,
    )
    assert [n.text for n in case.notes] == ["at last"]
    assert len(pauses) == 3
    for n, pause in enumerate(pauses, start=1):
        assert 0 <= pause <= 0.020 * 2 ** (n - 1)
    with pytest.raises(ConcurrencyConflict):
        engine.retrying(
            _conflicting(5, engine, cid),
            attempts=3,
            backoff=timedelta(milliseconds=20),
            sleep=pauses.append,
        )
    assert len(pauses) == 3 + 2  # two pauses between three attempts, none after the last


def test_retrying_pauses_are_random_not_one_fixed_schedule() -> None:
    """Full jitter: many retried conflicts do not all pause the same time."""
    engine = _engine(MemoryStore())
    cid = _open(engine)
    pauses: list[float] = []
    for _ in range(20):
        engine.retrying(
            _conflicting(1, engine, cid),
            backoff=timedelta(milliseconds=20),
            sleep=pauses.append,
        )
    assert len(pauses) == 20
    assert len(set(pauses)) > 1


def test_retrying_without_backoff_does_not_pause() -> None:
    engine = _engine(MemoryStore())
    cid = _open(engine)
    pauses: list[float] = []
    engine.retrying(_conflicting(2, engine, cid), sleep=pauses.append)
    assert pauses == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"attempts": 0}, "attempts must be at least 1"),
        ({"backoff": timedelta(seconds=-1)}, "backoff must be a timedelta of 0 or more"),
        ({"backoff": 0.1}, "backoff must be a timedelta of 0 or more"),
    ],
)
def test_retrying_refuses_attempts_or_backoff_it_cannot_use(
    options: dict[str, Any], expected: str
) -> None:
    engine = _engine(MemoryStore())
    ran: list[int] = []
    with pytest.raises(ValueError, match=expected):
        engine.retrying(lambda: ran.append(1), **options)
    assert ran == []


def test_retrying_pauses_are_capped_at_max_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Doubling without a bound: with the suggested 10 ms and 20 attempts, the last pause
    could be 10 ms * 2**18, 44 minutes, and the pauses together about an hour and a half.
    The bound stops doubling at ``max_backoff`` (1 s unless given)."""
    monkeypatch.setattr("workflow.engine.random.uniform", lambda low, high: high)
    engine = _engine(MemoryStore())
    cid = _open(engine)
    pauses: list[float] = []
    engine.retrying(
        _conflicting(19, engine, cid),
        attempts=20,
        backoff=timedelta(milliseconds=10),
        sleep=pauses.append,
    )
    assert pauses[:7] == [0.01 * 2**n for n in range(7)]  # 0.01 ... 0.64; 1.28 > 1: capped
    assert pauses[7:] == [1.0] * 12
    pauses.clear()
    engine.retrying(
        _conflicting(3, engine, cid),
        attempts=4,
        backoff=timedelta(milliseconds=100),
        max_backoff=timedelta(milliseconds=250),
        sleep=pauses.append,
    )
    assert pauses == [0.1, 0.2, 0.25]


def test_retrying_with_many_attempts_does_not_overflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """``backoff * 2**(n-1)`` as a float: past attempt 1025 it was OverflowError ("int
    too large to convert to float") from a retry that should simply have waited."""
    monkeypatch.setattr("workflow.engine.random.uniform", lambda low, high: high)
    engine = _engine(MemoryStore())
    cid = _open(engine)
    pauses: list[float] = []
    case = engine.retrying(
        _conflicting(1100, engine, cid),
        attempts=1101,
        backoff=timedelta(microseconds=1),
        sleep=pauses.append,
    )
    assert [n.text for n in case.notes][-1] == "at last"
    assert len(pauses) == 1100
    assert max(pauses) == 1.0


def test_retrying_refuses_a_max_backoff_below_the_backoff() -> None:
    engine = _engine(MemoryStore())
    ran: list[int] = []
    with pytest.raises(ValueError, match=r"max_backoff \(0:00:01\) is less than backoff"):
        engine.retrying(lambda: ran.append(1), backoff=timedelta(seconds=2))
    with pytest.raises(ValueError, match="max_backoff must be a timedelta"):
        engine.retrying(lambda: ran.append(1), max_backoff=1.0)  # type: ignore[arg-type]
    assert ran == []
