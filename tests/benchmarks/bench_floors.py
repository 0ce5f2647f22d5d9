"""Benchmark: where the time goes, against each target's own baseline, in one run.

Run:  python -m tests.benchmarks.bench_floors [--rounds 5] [--cases 300]

The three throughput targets (docs/benchmarks.md) compare the engine with a baseline
that does only part of its work. This splits the engine's work into the part no
implementation of the design can skip (its floor) and the rest, each measured against
the same baseline in the same run, so the figures are ratios, not absolute times:

- engine: the bare checklist machine's lifecycle vs. the bookkeeping every accepted step
  needs whatever the guards are: hash the event (``make_event``), build the new snapshot
  (``apply``) and append both to the memory store, for the same ten events;
- SQLite: raw ``sqlite3`` doing the same writes vs. ``SqlStore.append`` of the same
  prebuilt snapshots and events (the store alone, no engine) vs. the engine;
- audit: the in-memory serialise-and-hash loop vs. reading the stored rows, then also
  hashing them, also parsing their data, and the full ``verify_store`` (which also
  replays every case and compares it with its snapshot).

"best ratio" is what the target's ratio would be if everything but the floor were free.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from workflow import audit
from workflow.audit import _json_value
from workflow.domain import Case
from workflow.events import GENESIS, Event, make_event, stored_hash
from workflow.personal import vault_of
from workflow.replay import apply, opened_case, replay

from . import bench_audit, bench_engine, bench_sql

Step = tuple[Case, Event]


def _template() -> tuple[list[Event], list[str], dict[str, Any]]:
    """One lifecycle's events as the engine wrote them (memory store), the state after
    each, and the vault of the case's personal values."""
    engine, clock = bench_engine.new_engine()
    bench_engine.engine_lifecycles(engine, clock, 1)
    (cid,) = engine.store.case_ids()
    events = engine.history(cid)
    vault = vault_of(engine.get(cid).personal)
    states = [replay(events[: n + 1], vault).state for n in range(len(events))]
    return events, states, vault


def _lifecycle(template: tuple[list[Event], list[str], dict[str, Any]], cid: str) -> list[Step]:
    """The template's events for case ``cid``: hashed, each with its snapshot."""
    events, states, vault = template
    first = events[0]
    event = make_event(cid, 1, first.type, first.at, first.actor, first.data,
                       first.policy_version, GENESIS, keep_text=True)  # fmt: skip
    case = opened_case(event, vault)
    steps: list[Step] = [(case, event)]
    for old, state in zip(events[1:], states[1:], strict=True):
        event = make_event(cid, case.version + 1, old.type, old.at, old.actor, old.data,
                           old.policy_version, case.head_hash, keep_text=True)  # fmt: skip
        case = apply(case, event, state, vault)
        steps.append((case, event))
    return steps


def _append_all(store: Any, steps: list[Step]) -> None:
    for case, event in steps:
        store.append(case, (event,), case.version - 1)


def bookkeeping(template: tuple[list[Event], list[str], dict[str, Any]], n: int) -> None:
    """``n`` lifecycles of hashing, applying and appending to a memory store."""
    store = MemoryStore()
    for i in range(n):
        _append_all(store, _lifecycle(template, f"case-{i}"))


def engine_floor(rounds: int, lifecycles: int) -> dict[str, float]:
    template = _template()
    machine = bench_engine.bare_machine()
    parts: dict[str, Callable[[int], None]] = {
        "bare": lambda n: bench_engine.bare_lifecycles(machine, n),
        "bookkeeping": lambda n: bookkeeping(template, n),
        "engine": lambda n: bench_engine.engine_lifecycles(*bench_engine.new_engine(), n),
    }
    rates: dict[str, list[float]] = {name: [] for name in parts}
    for run in parts.values():
        run(20)  # warm up
    for _ in range(rounds):
        for name, run in parts.items():
            rates[name].append(bench_engine.rate(run, lifecycles))
    return {name: statistics.median(r) for name, r in rates.items()}


def sqlite_floor(rounds: int, cases: int) -> dict[str, float]:
    template = _template()
    rates: dict[str, list[float]] = {"raw": [], "store": [], "engine": []}
    steps_per_case = len(template[0])
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(rounds):
            engine_db = Path(tmp) / f"engine-{n}.db"
            rates["engine"].append(bench_sql.engine_steps(f"sqlite:///{engine_db}", cases))
            rates["raw"].append(bench_sql.raw_steps(Path(tmp) / f"raw-{n}.db", engine_db, cases))
            prebuilt = [_lifecycle(template, f"case-{i}") for i in range(cases)]
            store = SqlStore(f"sqlite:///{Path(tmp) / f'store-{n}.db'}", create=True)
            began = time.perf_counter()
            for steps in prebuilt:
                _append_all(store, steps)
            rates["store"].append(cases * steps_per_case / (time.perf_counter() - began))
            store.close()
    return {name: statistics.median(r) for name, r in rates.items()}


def audit_floor(rounds: int, cases: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = bench_audit.filled(Path(tmp) / "verify.db", cases)
        events = [e for cid in store.case_ids() for e in store.events(cid)]
        count = len(events)

        def rows(hash_: bool, parse: bool) -> Callable[[], None]:
            def run() -> None:
                for history in store.stored_histories():
                    for owner, seq, type_, at, actor, data, version, prev, digest in history.events:
                        if hash_:
                            _ = stored_hash(owner, seq, type_, at, actor, data, version,
                                            prev) == digest  # fmt: skip
                        if parse:
                            _json_value(data)

            return run

        parts: dict[str, Callable[[], object]] = {
            "baseline": lambda: bench_audit.baseline(events),
            "rows": rows(False, False),
            "rows+hash": rows(True, False),
            "rows+hash+parse": rows(True, True),
            "verify": lambda: audit.verify_store(store),
        }
        rates: dict[str, list[float]] = {name: [] for name in parts}
        for _ in range(rounds):
            for name, run in parts.items():
                began = time.perf_counter()
                run()
                rates[name].append(count / (time.perf_counter() - began))
        store.close()
    return {name: statistics.median(r) for name, r in rates.items()}


def _line(label: str, rate: float, base: float, unit: str) -> str:
    per = 1e6 / rate
    return f"  {label:26s} {per:9.1f} µs/{unit}   {base / rate:6.2f}x the baseline's time"


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--lifecycles", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=300)
    args = parser.parse_args(argv)
    result: dict[str, float] = {}

    e = engine_floor(args.rounds, args.lifecycles)
    print("engine, per lifecycle (baseline: the bare checklist machine)")
    print(_line("bare machine", e["bare"], e["bare"], "lifecycle"))
    print(_line("floor: hash+apply+append", e["bookkeeping"], e["bare"], "lifecycle"))
    print(_line("engine", e["engine"], e["bare"], "lifecycle"))
    best = 1 / (1 / e["bare"] + 1 / e["bookkeeping"]) / e["bare"]
    print(f"  ratio {e['engine'] / e['bare']:.2f}x; best ratio {best:.2f}x (target >= 0.33x)")
    result.update(engine_ratio=e["engine"] / e["bare"], engine_best=best)

    s = sqlite_floor(args.rounds, args.cases)
    print("SQLite, per durable step (baseline: raw sqlite3, the same writes)")
    print(_line("raw sqlite3", s["raw"], s["raw"], "step"))
    print(_line("SqlStore.append alone", s["store"], s["raw"], "step"))
    print(_line("engine", s["engine"], s["raw"], "step"))
    print(f"  ratio {s['engine'] / s['raw']:.2f}x; the store alone {s['store'] / s['raw']:.2f}x "
          "(target >= 0.5x)")  # fmt: skip
    result.update(sqlite_ratio=s["engine"] / s["raw"], sqlite_store=s["store"] / s["raw"])

    a = audit_floor(args.rounds, args.cases)
    print("audit, per event (baseline: serialise and hash in memory)")
    for name in ("baseline", "rows", "rows+hash", "rows+hash+parse", "verify"):
        print(_line(name, a[name], a["baseline"], "event"))
    print(f"  ratio {a['verify'] / a['baseline']:.2f}x; reading, hashing and parsing alone "
          f"{a['rows+hash+parse'] / a['baseline']:.2f}x (target >= 0.5x)")  # fmt: skip
    result.update(audit_ratio=a["verify"] / a["baseline"],
                  audit_floor=a["rows+hash+parse"] / a["baseline"])  # fmt: skip
    return result


if __name__ == "__main__":
    main()
