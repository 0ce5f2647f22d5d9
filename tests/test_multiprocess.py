"""Real processes on one database: no lost update, gapless chains, state == replay, each
SLA deadline fired once; and a process killed mid-write leaves no half-written step."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.sql import SqlStore
from policies.loader import parse_policy
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import ConcurrencyConflict, Engine, ManualClock, StepRefused, replay, vault_of

POLICY_TEXT = """
name: multiprocess
version: "1"
currency: EUR
sla:
  warn_at: [75]
  targets:
    - {id: ack, step: acknowledge, within: PT1H}
"""
T0 = datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
CASES = 200
WORKERS = 4
OPS = 120


def _engine(url: str, prefix: str, at: datetime) -> Engine:
    return Engine(
        SqlStore(url, prefix=prefix), policy=parse_policy(POLICY_TEXT), clock=ManualClock(at)
    )


def _worker(url: str, prefix: str, seed: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    rng = random.Random(seed)
    engine = _engine(url, prefix, T0 + timedelta(hours=2))
    ids = list(engine.store.case_ids())
    notes: list[tuple[str, str]] = []
    for n in range(OPS):
        cid = rng.choice(ids)
        action = rng.choice(["note", "note", "ack", "tick"])
        try:
            if action == "note":
                text = f"w{seed}-{n}"
                engine.retrying(
                    lambda cid=cid, text=text: engine.add_note(
                        cid, actor=f"agent:w{seed}", text=text
                    ),
                    attempts=50,
                )
                notes.append((cid, text))
            elif action == "ack":
                engine.retrying(lambda cid=cid: engine.acknowledge(cid, actor=f"agent:w{seed}"),
                                attempts=50)  # fmt: skip
            else:
                engine.tick(limit=20)
        except StepRefused:
            pass  # e.g. acknowledging a case another worker acknowledged
        except ConcurrencyConflict:
            pass  # gave up after 50 tries: the others kept winning
    engine.store.close()
    out.put(notes)


def _run_workers(url: str, prefix: str) -> list[tuple[str, str]]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    procs = [
        context.Process(target=_worker, args=(url, prefix, seed, queue)) for seed in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    notes = [note for _ in procs for note in queue.get(timeout=300)]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    return notes


def _check(url: str, prefix: str, notes: list[tuple[str, str]]) -> None:
    engine = _engine(url, prefix, T0 + timedelta(hours=3))
    engine.tick(limit=10_000)  # whatever the workers' ticks left
    store = engine.store
    by_case: dict[str, set[str]] = {}
    for cid, text in notes:
        by_case.setdefault(cid, set()).add(text)
    for cid in store.case_ids():
        history = store.events(cid)
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        case = store.load(cid)
        assert replay(history, vault_of(case.personal)) == case
        assert by_case.get(cid, set()) <= {note.text for note in case.notes}  # none lost
        fired = [e.data["key"] for e in history if e.type.startswith("sla_")]
        assert sorted(fired) == ["0:ack:breach", "0:ack:warn75"]  # each exactly once
        assert store.pending_deadlines(cid) == []
    store.close()


def _prepare(url: str, prefix: str) -> None:
    store = SqlStore(url, prefix=prefix, create=True)
    engine = Engine(store, policy=parse_policy(POLICY_TEXT), clock=ManualClock(T0))
    for i in range(CASES):
        engine.open_case(
            actor="system:test", customer={"id": f"c{i}", "name": "N"}, channel="email",
            case_id=f"case-{i:03d}",
        )  # fmt: skip
    store.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> tuple[str, str]:
    return sqlite_url(tmp_path), "cf_"


@pytest.fixture
def postgres_db() -> Iterator[tuple[str, str]]:
    url, prefix = postgres_url(), fresh_prefix()
    yield url, prefix
    drop_tables(url, prefix)


@pytest.mark.parametrize(
    "db", ["sqlite_db", pytest.param("postgres_db", marks=pytest.mark.postgres)]
)
def test_four_processes_on_the_same_cases_lose_nothing_and_fire_each_deadline_once(
    db: str, request: pytest.FixtureRequest
) -> None:
    url, prefix = request.getfixturevalue(db)
    _prepare(url, prefix)
    notes = _run_workers(url, prefix)
    assert len(notes) > WORKERS * OPS // 3
    _check(url, prefix, notes)


def _writer(url: str, prefix: str, ready: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    engine = _engine(url, prefix, T0)
    ids = list(engine.store.case_ids())
    ready.set()
    n = 0
    while True:  # until killed
        cid = ids[n % len(ids)]
        engine.add_note(cid, actor="agent:doomed", text=f"note {n}")
        n += 1


@pytest.mark.parametrize(
    "db", ["sqlite_db", pytest.param("postgres_db", marks=pytest.mark.postgres)]
)
def test_a_process_killed_mid_write_leaves_no_half_written_step(
    db: str, request: pytest.FixtureRequest
) -> None:
    url, prefix = request.getfixturevalue(db)
    _prepare(url, prefix)
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    proc = context.Process(target=_writer, args=(url, prefix, ready))
    proc.start()
    assert ready.wait(timeout=60)
    time.sleep(1.5)
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
    proc.join(timeout=30)
    store = SqlStore(url, prefix=prefix)
    written = 0
    for cid in store.case_ids():
        history = store.events(cid)
        case = store.load(cid)
        assert case.version == history[-1].seq == len(history)
        assert replay(history, vault_of(case.personal)) == case
        written += len(case.notes)
    assert written > 0
    store.close()
