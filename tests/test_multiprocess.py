"""Real processes on one database: no lost update, gapless chains, state == replay, each
SLA deadline fired once, while four workers really contend (a start gate, hot cases, one
step taken by all four in lockstep, each worker reporting the conflicts it retried); and
a process killed mid-write leaves no half-written step, and a new process carries on."""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.sql import SqlStore
from policies.loader import parse_policy
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import Case, ConcurrencyConflict, Engine, ManualClock, StepRefused, replay, vault_of

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
OPS = 150
#: Half the random operations go to these few cases, so workers meet on them.
HOT = [f"case-{i:03d}" for i in range(1, 9)]
#: The case every worker steps at once (and no random operation touches).
LOCKSTEP = "case-000"
#: How long a worker waits for the others at a gate before giving up (a worker that
#: died before it breaks the gate: the others fail instead of hanging).
GATE_TIMEOUT = 120

Barrier = Any  # multiprocessing's Barrier (a proxy type mypy cannot name)


class _LockstepStore(SqlStore):
    """A ``SqlStore`` that, once armed, makes its next load of ``LOCKSTEP`` wait at a
    gate until every worker has loaded it: all four then append at the same expected
    version, so at least three of them must meet a ``ConcurrencyConflict`` and retry."""

    gate: Barrier | None = None

    def load(self, case_id: str) -> Case:
        case = super().load(case_id)
        gate = self.gate
        if gate is not None and case_id == LOCKSTEP:
            self.gate = None  # the retries' loads go straight on
            gate.wait(timeout=GATE_TIMEOUT)
        return case


#: The engine's log lines that say a worker met another's write (docs/embedding.md).
RETRIED = "retrying after a concurrent change"
SWEEP_LOST = "sla sweep: case changed under this worker"


class _Counted(logging.Handler):
    """Counts the engine's lines that say a worker met another's write: a retry, a
    sweep that lost the race for a case (a line is its name, then its keys)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts = {RETRIED: 0, SWEEP_LOST: 0}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for line in self.counts:
            if message.startswith(f"{line} "):
                self.counts[line] += 1


def _engine(url: str, prefix: str, at: datetime, logger: logging.Logger | None = None) -> Engine:
    return Engine(
        _LockstepStore(url, prefix=prefix),
        policy=parse_policy(POLICY_TEXT),
        clock=ManualClock(at),
        logger=logger,
    )


def _worker(url: str, prefix: str, seed: int, gate: Barrier, out: Any) -> None:
    logger = logging.getLogger(f"complaintflow.test.worker{seed}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    counted = _Counted()
    logger.addHandler(counted)
    rng = random.Random(seed)
    engine = _engine(url, prefix, T0 + timedelta(hours=2), logger)
    store = engine.store
    assert isinstance(store, _LockstepStore)
    ids = [cid for cid in store.case_ids() if cid != LOCKSTEP]
    notes: list[tuple[str, str]] = []
    gave_up = 0

    def note(cid: str, text: str) -> None:
        engine.retrying(
            lambda: engine.add_note(cid, actor=f"agent:w{seed}", text=text), attempts=50
        )
        notes.append((cid, text))

    gate.wait(timeout=GATE_TIMEOUT)  # the start gate: every worker is ready, all go
    store.gate = gate  # and all four step LOCKSTEP together, once
    note(LOCKSTEP, f"w{seed}-lockstep")
    for n in range(OPS):
        cid = rng.choice(HOT) if rng.random() < 0.5 else rng.choice(ids)
        action = rng.choice(["note", "note", "ack", "tick"])
        try:
            if action == "note":
                note(cid, f"w{seed}-{n}")
            elif action == "ack":
                engine.retrying(lambda cid=cid: engine.acknowledge(cid, actor=f"agent:w{seed}"),
                                attempts=50)  # fmt: skip
            else:
                engine.tick(limit=20)
        except StepRefused:
            pass  # e.g. acknowledging a case another worker acknowledged
        except ConcurrencyConflict:
            gave_up += 1  # after 50 tries: the others kept winning
    store.close()
    out.put(
        {
            "notes": notes,
            "retries": counted.counts[RETRIED],
            "sweeps_lost": counted.counts[SWEEP_LOST],
            "gave_up": gave_up,
        }
    )


def _run_workers(url: str, prefix: str) -> list[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    gate = context.Barrier(WORKERS)
    procs = [
        context.Process(target=_worker, args=(url, prefix, seed, gate, queue))
        for seed in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    try:
        reports = [queue.get(timeout=300) for _ in procs]
    finally:
        gate.abort()  # a worker still waiting at a gate (one died) fails, not hangs
        for proc in procs:
            proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * WORKERS
    return reports


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
    reports = _run_workers(url, prefix)
    notes = [note for report in reports for note in report["notes"]]
    # They contended: in the lockstep step all four loaded the case at one version and
    # one append won, so each of the other three met a conflict and retried (each
    # worker counts its own; the random operations on hot cases add more).
    retried = [report for report in reports if report["retries"] > 0]
    assert len(retried) >= WORKERS - 1, reports
    lockstep = {f"w{seed}-lockstep" for seed in range(WORKERS)}
    assert {text for cid, text in notes if cid == LOCKSTEP} == lockstep
    assert len(notes) > WORKERS * OPS // 3
    _check(url, prefix, notes)
    store = SqlStore(url, prefix=prefix)
    assert {n.text for n in store.load(LOCKSTEP).notes} == lockstep
    store.close()


#: How many notes the doomed writer has written before it is killed, at least.
BEFORE_KILL = 50
AFTER_CRASH = "after the crash"


def _writer(url: str, prefix: str, written: Any, ready: Any) -> None:
    engine = _engine(url, prefix, T0)
    ids = list(engine.store.case_ids())
    n = 0
    while True:  # until killed
        cid = ids[n % len(ids)]
        engine.add_note(cid, actor="agent:doomed", text=f"note {n}")
        n += 1
        written.value = n
        if n == BEFORE_KILL:
            ready.set()


def _carry_on(url: str, prefix: str, out: Any) -> None:
    """A new process after the crash: opens the same database and steps every case
    further: acknowledges half, notes all, then sweeps the other half's SLA deadlines."""
    engine = _engine(url, prefix, T0 + timedelta(minutes=30))
    ids = list(engine.store.case_ids())
    acknowledged = ids[::2]
    for cid in ids:
        if cid in acknowledged:
            engine.acknowledge(cid, actor="agent:next")
        engine.add_note(cid, actor="agent:next", text=AFTER_CRASH)
    fired = engine.tick(T0 + timedelta(hours=2))
    engine.store.close()
    out.put((acknowledged, sorted({e.case_id for e in fired})))


@pytest.mark.parametrize(
    "db", ["sqlite_db", pytest.param("postgres_db", marks=pytest.mark.postgres)]
)
def test_a_process_killed_mid_write_leaves_no_half_written_step_and_the_next_carries_on(
    db: str, request: pytest.FixtureRequest
) -> None:
    """A writer killed (SIGKILL) while it writes note after note: every case's events,
    snapshot and version agree (no half-written step), and a new process opens the same
    database and carries on (steps, notes, an SLA sweep) with every chain verifying."""
    url, prefix = request.getfixturevalue(db)
    _prepare(url, prefix)
    context = multiprocessing.get_context("spawn")
    # Unlocked: a lock the writer held when killed would never be released.
    written, ready = context.Value("i", 0, lock=False), context.Event()
    proc = context.Process(target=_writer, args=(url, prefix, written, ready))
    proc.start()
    assert ready.wait(timeout=60)
    time.sleep(0.5)  # it keeps writing
    os.kill(proc.pid, signal.SIGKILL)  # type: ignore[arg-type]
    proc.join(timeout=30)
    assert proc.exitcode == -signal.SIGKILL
    store = SqlStore(url, prefix=prefix)
    notes_before = 0
    for cid in store.case_ids():
        history = store.events(cid)
        case = store.load(cid)
        assert case.version == history[-1].seq == len(history)
        assert replay(history, vault_of(case.personal)) == case
        notes_before += len(case.notes)
    # Every note it reported written is there; at most the one in flight is too.
    assert written.value <= notes_before <= written.value + 1
    store.close()

    queue = context.Queue()
    after = context.Process(target=_carry_on, args=(url, prefix, queue))
    after.start()
    acknowledged, swept = queue.get(timeout=120)
    after.join(timeout=60)
    assert after.exitcode == 0
    engine = _engine(url, prefix, T0 + timedelta(hours=2))
    store = engine.store
    ids = list(store.case_ids())
    assert swept == sorted(set(ids) - set(acknowledged))
    for cid in ids:
        history = store.events(cid)
        case = store.load(cid)
        assert [e.seq for e in history] == list(range(1, len(history) + 1))
        assert case.version == len(history)
        assert replay(history, vault_of(case.personal)) == case
        assert case.notes[-1].text == AFTER_CRASH
        fired = sorted(e.data["key"] for e in history if e.type.startswith("sla_"))
        if cid in acknowledged:
            assert (case.state, fired) == ("acknowledged", [])
        else:
            assert (case.state, fired) == ("received", ["0:ack:breach", "0:ack:warn75"])
        assert store.pending_deadlines(cid) == []
    assert engine.verify() == []
    assert sum(len(store.load(cid).notes) for cid in ids) == notes_before + len(ids)
    store.close()
