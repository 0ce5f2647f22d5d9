"""Benchmark: ``Engine.tick()`` with 1% of open cases due, at two store sizes.

Run:  python -m tests.benchmarks.bench_tick [--sizes 10000,1000000] [--rounds 3]
                                           [--store memory|sqlite]

Each size gets a fresh memory store holding that many open cases under a policy with one
SLA target (acknowledge within an hour, warning at 75%). 1% of the cases were opened two
hours before the tick (their warning and breach are due); the rest ten minutes before
(nothing due). The figure to read is the cost per fired deadline at the large size
relative to the small one, measured in the same run (target: <= 2, i.e. the sweep's cost
follows the number due, not the number of open cases).
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from policies.loader import parse_policy
from workflow import Engine, ManualClock, Store

from .bench_engine import quiet_logger

POLICY = parse_policy(
    """
name: tick benchmark
version: "1"
currency: EUR
sla:
  warn_at: [75]
  targets:
    - {id: ack, step: acknowledge, within: PT1H}
"""
)
NOW = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)


def filled_store(size: int) -> MemoryStore:
    store = MemoryStore()
    clock = ManualClock(NOW - timedelta(hours=2))
    engine = Engine(store, policy=POLICY, clock=clock, logger=quiet_logger())
    due = size // 100
    for i in range(size):
        if i == due:
            clock.set(NOW - timedelta(minutes=10))
        engine.open_case(
            actor="system:bench", customer={"id": f"c{i}", "name": f"N{i}"}, channel="email",
            case_id=f"case-{i:08d}",
        )  # fmt: skip
    return store


def filled_sqlite(size: int, path: str) -> SqlStore:
    """The same cases in an SQLite file. Two template cases (one due, one not) are opened
    through the engine, then their rows are copied in bulk under new ids (setting up a
    million cases through the engine would take far longer than the measurement)."""
    url = f"sqlite:///{path}"
    store = SqlStore(url, create=True)
    for template, opened in (("tpl-due", NOW - timedelta(hours=2)),
                             ("tpl-later", NOW - timedelta(minutes=10))):  # fmt: skip
        engine = Engine(store, policy=POLICY, clock=ManualClock(opened), logger=quiet_logger())
        engine.open_case(
            actor="system:bench", customer={"id": "c", "name": "N"}, channel="email",
            case_id=template,
        )  # fmt: skip
    store.close()
    conn = sqlite3.connect(path)
    due = size // 100
    for template, ids in (("tpl-due", range(due)), ("tpl-later", range(due, size))):
        case = conn.execute("SELECT * FROM cf_cases WHERE case_id=?", (template,)).fetchone()
        event = conn.execute("SELECT * FROM cf_events WHERE case_id=?", (template,)).fetchone()
        marks = conn.execute("SELECT * FROM cf_deadlines WHERE case_id=?", (template,)).fetchall()
        conn.executemany(  # the snapshot is column 10 (of 13 since schema 0004)
            "INSERT INTO cf_cases VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ((f"case-{i:08d}", *case[1:10], case[10].replace(template, f"case-{i:08d}"),
              *case[11:])
             for i in ids),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO cf_events VALUES (?,?,?,?,?,?,?,?,?)",
            ((f"case-{i:08d}", *event[1:]) for i in ids),
        )
        for mark in marks:
            conn.executemany(
                "INSERT INTO cf_deadlines VALUES (?,?,?,?,?,?,?,?,?)",
                ((f"case-{i:08d}", *mark[1:]) for i in ids),
            )
        for table in ("cf_deadlines", "cf_events", "cf_cases"):
            conn.execute(f"DELETE FROM {table} WHERE case_id=?", (template,))
    conn.commit()
    conn.close()
    return SqlStore(url)


def time_tick(store: Store) -> tuple[float, int]:
    """Seconds for one tick at NOW, and the events it fired."""
    engine = Engine(store, policy=POLICY, clock=ManualClock(NOW), logger=quiet_logger())
    gc.collect()
    began = time.perf_counter()
    fired = engine.tick(limit=10**9)
    return time.perf_counter() - began, len(fired)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args(argv)
    small, large = (int(s) for s in args.sizes.split(","))
    per_event: dict[int, list[float]] = {small: [], large: []}
    fired_at: dict[int, int] = {}
    for size in (small, large):
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                store: Store = (
                    filled_store(size)
                    if args.store == "memory"
                    else filled_sqlite(size, f"{tmp}/tick.db")
                )
                seconds, fired = time_tick(store)
                store.close()
            per_event[size].append(seconds / fired)
            fired_at[size] = fired
            del store
    a = statistics.median(per_event[small])
    b = statistics.median(per_event[large])
    print(f"store: {args.store}")
    print(f"open cases {small:>9}: {fired_at[small]:>7} events fired, {a * 1e6:8.1f} us/event")
    print(f"open cases {large:>9}: {fired_at[large]:>7} events fired, {b * 1e6:8.1f} us/event")
    print(f"ratio per event, {large} / {small} open cases: {b / a:.2f}   (target <= 2)")
    return {"small_us": a * 1e6, "large_us": b * 1e6, "ratio": b / a}


if __name__ == "__main__":
    main()
