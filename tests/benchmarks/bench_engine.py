"""Benchmark: full complaint lifecycles through the engine vs. the bare checklist machine,
and the memory an open case takes in the memory store.

Run:  python -m tests.benchmarks.bench_engine [--rounds 7] [--lifecycles 2000]

Both sides run in the same process, interleaved round by round, so machine noise hits
both; the figure to read is the ratio (engine / bare), not the absolute rates.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from transitions import Machine

from adapters.memory import MemoryStore
from workflow import Actor, Engine, ManualClock
from workflow.checklist import CHECKLIST, State, transition_table

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AGENT = Actor(role="agent", id="alice")
CUSTOMER = Actor(role="customer", id="c-1")
REFUND = [{"kind": "refund", "amount": {"amount": "40.00", "currency": "EUR"}}]


def quiet_logger() -> Any:
    """A structlog logger that drops info lines, as a production service logging at
    WARNING would (the engine still builds every log call)."""
    wrapper = structlog.make_filtering_bound_logger(logging.WARNING)
    return wrapper(structlog.ReturnLogger(), [], {})


class _Bare:
    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = State.RECEIVED.value


def bare_machine() -> Machine:
    """The checklist's graph on a shared Machine with no guards and no conditions."""
    return Machine(
        model=None,
        states=[s.value for s in State],
        transitions=transition_table(with_conditions=False),
        initial=State.RECEIVED.value,
        auto_transitions=False,
    )


def bare_lifecycles(machine: Machine, n: int) -> None:
    events = [machine.events[name] for name in CHECKLIST]
    for _ in range(n):
        model = _Bare()
        for event in events:
            event.trigger(model)
        assert model.state == State.CLOSED


def new_engine() -> tuple[Engine, ManualClock]:
    clock = ManualClock(START)
    return Engine(MemoryStore(), clock=clock, logger=quiet_logger()), clock


def open_and_record(engine: Engine, i: int) -> str:
    case = engine.open_case(
        actor=AGENT,
        customer={"id": f"cust-{i}", "name": f"Customer {i}", "contact": f"c{i}@example.com"},
        channel="email",
        subject=f"Parcel {i} arrived broken",
        category="delivery",
        occurred_on="2026-11-01",
        details=f"Order {i}: the box was crushed and the vase inside smashed.",
    )
    cid = case.id
    engine.acknowledge(cid, actor=AGENT)
    engine.listen(cid, actor=AGENT, note=f"Customer {i}: it was a gift, and it is ruined.")
    engine.record(cid, actor=AGENT)
    return cid


def finish(engine: Engine, cid: str, due: datetime) -> None:
    engine.apologise(cid, actor=AGENT, message="We are sorry, and thank you for telling us.")
    engine.offer_remedy(cid, actor=AGENT, options=REFUND)
    engine.accept_remedy(cid, actor=CUSTOMER, option=1, promise="Refund 40 EUR", due=due)
    engine.keep_promise(cid, actor=AGENT, evidence="refund ref R-1")
    engine.request_feedback(cid, actor=AGENT)
    engine.close(cid, actor=AGENT)


def engine_lifecycles(engine: Engine, clock: ManualClock, n: int) -> None:
    due = clock.now() + timedelta(days=3)
    for i in range(n):
        cid = open_and_record(engine, i)
        finish(engine, cid, due)
    assert engine.get(cid).state == State.CLOSED


def rate(run: Callable[[int], None], n: int) -> float:
    gc.collect()
    began = time.perf_counter()
    run(n)
    return n / (time.perf_counter() - began)


def throughput(rounds: int, lifecycles: int) -> dict[str, float]:
    machine = bare_machine()
    bare_rates: list[float] = []
    engine_rates: list[float] = []
    bare_lifecycles(machine, 50)  # warm up both
    engine, clock = new_engine()
    engine_lifecycles(engine, clock, 50)
    for _ in range(rounds):
        bare_rates.append(rate(partial(bare_lifecycles, machine), lifecycles))
        engine, clock = new_engine()  # a fresh store each round: no growth across rounds
        engine_rates.append(rate(partial(engine_lifecycles, engine, clock), lifecycles))
    bare = statistics.median(bare_rates)
    eng = statistics.median(engine_rates)
    return {"bare_per_s": bare, "engine_per_s": eng, "ratio": eng / bare}


def memory_per_open_case(cases: int, stage: str) -> float:
    """Bytes held by the memory store per open case, measured with tracemalloc."""
    engine, clock = new_engine()
    due = clock.now() + timedelta(days=3)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(cases):
        cid = open_and_record(engine, i)
        if stage == "promised":
            engine.apologise(cid, actor=AGENT, message="We are sorry; thank you for telling us.")
            engine.offer_remedy(cid, actor=AGENT, options=REFUND)
            engine.accept_remedy(cid, actor=CUSTOMER, option=1, promise="Refund", due=due)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / cases


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--lifecycles", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=5000, help="open cases for the memory figure")
    args = parser.parse_args(argv)
    result = throughput(args.rounds, args.lifecycles)
    recorded = memory_per_open_case(args.cases, "recorded")
    promised = memory_per_open_case(args.cases, "promised")
    print(f"bare checklist machine : {result['bare_per_s']:10.0f} lifecycles/s (median)")
    print(f"engine, memory store   : {result['engine_per_s']:10.0f} lifecycles/s (median)")
    print(f"ratio engine / bare    : {result['ratio']:10.2f}x   (target >= 0.33x)")
    print(f"memory per open case, at 'recorded' (4 events): {recorded / 1024:6.2f} KiB")
    print(
        f"memory per open case, at 'promised' (7 events): {promised / 1024:6.2f} KiB"
        "   (target <= 4 KiB)"
    )
    return {**result, "recorded_bytes": recorded, "promised_bytes": promised}


if __name__ == "__main__":
    main()
