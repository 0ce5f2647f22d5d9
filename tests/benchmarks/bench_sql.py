"""Benchmark: durable steps per second through the engine on SQLite, against raw
``sqlite3`` doing the same writes (one transaction per step, same journal and sync
settings); and on PostgreSQL, one worker against two.

Run:  python -m tests.benchmarks.bench_sql [--cases 300] [--rounds 3] [--postgres URL]
                                             [--durability full|normal]

Durable: each step is committed before the next starts, in WAL mode with the same
``synchronous`` setting on both sides: FULL, the store's default (the WAL is synced at
each commit: a step survives a power cut), or with ``--durability normal`` NORMAL (a
step survives a crash of the process; a power cut may lose the last ones). The raw side
replays, per step, exactly the statements the store issues — update the case row with
its snapshot, insert the event, replace the case's deadlines — with rows of the same
size, in one ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from adapters.sql import SqlStore
from workflow import Engine, ManualClock

from .bench_engine import AGENT, CUSTOMER, quiet_logger

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STEPS_PER_CASE = 10  # open + nine checklist steps
Durability = Literal["normal", "full"]


def lifecycle(engine: Engine, i: int, due: datetime) -> None:
    cid = engine.open_case(
        actor=AGENT,
        customer={"id": f"cust-{i}", "name": f"Customer {i}", "contact": f"c{i}@example.com"},
        channel="email",
        subject=f"Parcel {i} arrived broken",
        category="delivery",
        occurred_on="2026-11-01",
        details=f"Order {i}: the box was crushed and the vase inside smashed.",
        case_id=f"case-{os.getpid()}-{i}",
    ).id
    engine.acknowledge(cid, actor=AGENT)
    engine.listen(cid, actor=AGENT, note="It was a gift, and it is ruined.")
    engine.record(cid, actor=AGENT)
    engine.apologise(cid, actor=AGENT, message="We are sorry, and thank you for telling us.")
    engine.offer_remedy(
        cid,
        actor=AGENT,
        options=[{"kind": "refund", "amount": {"amount": "40.00", "currency": "EUR"}}],
    )
    engine.accept_remedy(cid, actor=CUSTOMER, option=1, promise="Refund 40 EUR", due=due)
    engine.keep_promise(cid, actor=AGENT, evidence="refund ref R-1")
    engine.request_feedback(cid, actor=AGENT)
    engine.close(cid, actor=AGENT)


def engine_steps(url: str, cases: int, offset: int = 0, durability: Durability = "full") -> float:
    """Durable steps per second through the engine."""
    store = SqlStore(url, create=True, durability=durability)
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            _check_synchronous(conn.exec_driver_sql("PRAGMA synchronous").scalar(), durability)
    clock = ManualClock(START)
    engine = Engine(store, clock=clock, logger=quiet_logger())
    due = START + timedelta(days=3)
    began = time.perf_counter()
    for i in range(offset, offset + cases):
        lifecycle(engine, i, due)
    seconds = time.perf_counter() - began
    store.close()
    return cases * STEPS_PER_CASE / seconds


#: ``PRAGMA synchronous`` reads back as a number.
_SYNCHRONOUS: dict[str, int] = {"normal": 1, "full": 2}


def _check_synchronous(found: object, durability: Durability) -> None:
    """Both sides must commit with the setting asked for, or the ratio compares unlike."""
    if found != _SYNCHRONOUS[durability]:
        raise RuntimeError(f"synchronous is {found!r}, not {durability.upper()}")


#: The raw side's tables: the cases table has the store's columns, in its order, and
#: its indexes (tests/test_benchmark_smoke.py checks both against the store's).
RAW_SCHEMA = """
CREATE TABLE cases (case_id TEXT PRIMARY KEY, version INT, state TEXT, customer_id TEXT,
  channel TEXT, category TEXT, priority TEXT, policy_version TEXT, opened_at TEXT,
  updated_at TEXT, snapshot TEXT, assignee TEXT, escalated_to TEXT);
CREATE INDEX cases_customer ON cases(customer_id);
CREATE INDEX cases_state ON cases(state);
CREATE INDEX cases_opened ON cases(opened_at, case_id);
CREATE INDEX cases_assignee ON cases(assignee, opened_at, case_id) WHERE assignee IS NOT NULL;
CREATE INDEX cases_escalated_to ON cases(escalated_to, opened_at, case_id)
  WHERE escalated_to IS NOT NULL;
CREATE TABLE events (case_id TEXT REFERENCES cases(case_id), seq INT, type TEXT, at TEXT,
  actor TEXT, data TEXT, policy_version TEXT, prev_hash TEXT, hash TEXT,
  PRIMARY KEY (case_id, seq));
CREATE INDEX events_at ON events(at);
CREATE TABLE deadlines (case_id TEXT REFERENCES cases(case_id), key TEXT, due_at TEXT,
  status TEXT, PRIMARY KEY (case_id, key));
"""
#: A case's first step writes every column; later steps set what a step can change (the
#: store leaves the case id, customer, channel and opening time as written: a column an
#: UPDATE sets has its index entries rewritten, changed or not).
RAW_INSERT_CASE = "INSERT INTO cases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
RAW_UPDATE_CASE = (
    "UPDATE cases SET version=?, state=?, category=?, priority=?, policy_version=?, "
    "updated_at=?, snapshot=?, assignee=?, escalated_to=? WHERE case_id=? AND version=?"
)


def raw_steps(path: Path, sample_db: Path, cases: int, durability: Durability = "full") -> float:
    """The same writes with raw sqlite3: one transaction per step."""
    sample = sqlite3.connect(sample_db)
    snapshot = sample.execute("SELECT snapshot FROM cf_cases LIMIT 1").fetchone()[0]
    events = sample.execute(
        "SELECT type, at, actor, data, policy_version, prev_hash, hash FROM cf_events "
        "WHERE case_id = (SELECT case_id FROM cf_cases LIMIT 1) ORDER BY seq"
    ).fetchall()
    sample.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={durability.upper()}")
    _check_synchronous(conn.execute("PRAGMA synchronous").fetchone()[0], durability)
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(RAW_SCHEMA)
    began = time.perf_counter()
    for i in range(cases):
        cid = f"case-{i}"
        for seq, (type_, at, actor, data, pv, prev, hash_) in enumerate(events, start=1):
            conn.execute("BEGIN IMMEDIATE")
            if seq == 1:
                conn.execute(
                    RAW_INSERT_CASE,
                    (cid, 1, "received", f"cust-{i}", "email", "delivery", "normal", pv, at, at,
                     snapshot, None, None),
                )  # fmt: skip
            else:
                # The lifecycle assigns no one and escalates nothing: NULL, as the store's.
                conn.execute(
                    RAW_UPDATE_CASE,
                    (seq, type_, "delivery", "normal", pv, at, snapshot, None, None, cid,
                     seq - 1),
                )  # fmt: skip
            conn.execute(
                "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)",
                (cid, seq, type_, at, actor, data, pv, prev, hash_),
            )
            conn.execute("DELETE FROM deadlines WHERE case_id=?", (cid,))
            conn.execute("COMMIT")
    seconds = time.perf_counter() - began
    conn.close()
    return cases * len(events) / seconds


def sqlite_ratio(
    cases: int, rounds: int, durability: Durability = "full"
) -> tuple[float, float, float]:
    engine_rates, raw_rates = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "engine.db"
            engine_rates.append(engine_steps(f"sqlite:///{db}", cases, durability=durability))
            raw_rates.append(raw_steps(Path(tmp) / "raw.db", db, cases, durability))
    e, r = statistics.median(engine_rates), statistics.median(raw_rates)
    return e, r, e / r


def _pg_worker(url: str, cases: int, offset: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(engine_steps(url, cases, offset))


def postgres_scaling(url: str, cases: int) -> tuple[float, float]:
    """Total steps/s with one worker process, then two at once on the same database."""
    SqlStore(url, create=True).close()
    context = multiprocessing.get_context("spawn")
    totals = []
    for workers in (1, 2):
        queue = context.Queue()
        procs = [
            context.Process(
                target=_pg_worker, args=(url, cases, 100_000 * (w + 1) * workers, queue)
            )
            for w in range(workers)
        ]
        began = time.perf_counter()
        for proc in procs:
            proc.start()
        for _ in procs:
            queue.get(timeout=600)
        for proc in procs:
            proc.join()
        totals.append(workers * cases * STEPS_PER_CASE / (time.perf_counter() - began))
    return totals[0], totals[1]


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("COMPLAINTFLOW_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--durability",
        choices=["full", "normal"],
        default="full",
        help="SQLite's synchronous setting on both sides (default: full, the store's own)",
    )
    args = parser.parse_args(argv)
    e, r, ratio = sqlite_ratio(args.cases, args.rounds, args.durability)
    print(f"SQLite, synchronous   : {args.durability.upper()} on both sides")
    print(f"SQLite, engine        : {e:8.0f} durable steps/s (median)")
    print(f"SQLite, raw sqlite3   : {r:8.0f} durable steps/s (median)")
    print(f"ratio engine / raw    : {ratio:8.2f}x   (target >= 0.5x)")
    result = {"sqlite_engine": e, "sqlite_raw": r, "sqlite_ratio": ratio}
    if args.postgres:
        one, two = postgres_scaling(args.postgres, args.cases)
        print(f"PostgreSQL, 1 worker  : {one:8.0f} steps/s")
        print(f"PostgreSQL, 2 workers : {two:8.0f} steps/s (together)")
        print(f"ratio 2 / 1 workers   : {two / one:8.2f}x")
        result.update({"pg_one": one, "pg_two": two, "pg_ratio": two / one})
    return result


if __name__ == "__main__":
    main()
