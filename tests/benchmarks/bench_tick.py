"""Benchmark: ``Engine.tick()`` with 1% of open cases due, at two store sizes.

Run:  python -m tests.benchmarks.bench_tick [--sizes 10000,1000000] [--rounds 3]

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
import statistics
import time
from datetime import UTC, datetime, timedelta

from adapters.memory import MemoryStore
from policies.loader import parse_policy
from workflow import Engine, ManualClock

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


def time_tick(store: MemoryStore) -> tuple[float, int]:
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
    args = parser.parse_args(argv)
    small, large = (int(s) for s in args.sizes.split(","))
    per_event: dict[int, list[float]] = {small: [], large: []}
    fired_at: dict[int, int] = {}
    for size in (small, large):
        for _ in range(args.rounds):
            store = filled_store(size)
            seconds, fired = time_tick(store)
            per_event[size].append(seconds / fired)
            fired_at[size] = fired
            del store
    a = statistics.median(per_event[small])
    b = statistics.median(per_event[large])
    print(f"open cases {small:>9}: {fired_at[small]:>7} events fired, {a * 1e6:8.1f} us/event")
    print(f"open cases {large:>9}: {fired_at[large]:>7} events fired, {b * 1e6:8.1f} us/event")
    print(f"ratio per event, {large} / {small} open cases: {b / a:.2f}   (target <= 2)")
    return {"small_us": a * 1e6, "large_us": b * 1e6, "ratio": b / a}


if __name__ == "__main__":
    main()
