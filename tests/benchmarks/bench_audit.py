"""Benchmark: verifying histories from the SQLite store vs. a baseline that only
serialises and hashes the same events in memory; and the peak memory of exporting a
million events.

Run:  python -m tests.benchmarks.bench_audit [--cases 500] [--rounds 5] [--export-events 1000000]
(``--export-events 0`` skips the export, which takes most of a minute.)

The verify figure is a ratio measured in one run (target >= 0.5x). The export figure is
the process's peak resident memory growth while streaming the export to /dev/null
(target: flat, under 200 MiB), with the store filled by copying one case's rows in bulk
(opening 100,000 cases through the engine would take far longer than the measurement).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.sql import SqlStore
from workflow import Engine, ManualClock, audit
from workflow.events import Event, canonical

from .bench_engine import quiet_logger
from .bench_sql import lifecycle

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def filled(path: Path, cases: int) -> SqlStore:
    store = SqlStore(f"sqlite:///{path}", create=True)
    engine = Engine(store, clock=ManualClock(START), logger=quiet_logger())
    for i in range(cases):
        lifecycle(engine, i, START + timedelta(days=3))
    return store


def baseline(events: list[Event]) -> float:
    """Events per second: serialise and hash each event, nothing else."""
    began = time.perf_counter()
    for e in events:
        hashlib.sha256(
            canonical(
                e.case_id, e.seq, e.type, e.at, e.actor, e.data, e.policy_version, e.prev_hash
            )
        ).hexdigest()
    return len(events) / (time.perf_counter() - began)


def verify_rate(store: SqlStore, events: int) -> float:
    """Events per second: ``audit.verify_store`` over the whole store (chains, hashes,
    personal values, snapshot == replay), read from the SQLite file."""
    began = time.perf_counter()
    findings = audit.verify_store(store)
    seconds = time.perf_counter() - began
    assert findings == []
    return events / seconds


_CASE_COLUMNS = (
    "case_id, version, state, customer_id, channel, category, priority, policy_version, "
    "opened_at, updated_at, assignee, escalated_to, snapshot"
)


def copy_up(path: Path, template_db: Path, target_events: int) -> int:
    """Fill ``path`` with copies of one case's rows until it holds ``target_events``."""
    SqlStore(f"sqlite:///{path}", create=True).close()
    src = sqlite3.connect(template_db)
    # The snapshot last (the table has columns after it since schema 0004).
    case = src.execute(f"SELECT {_CASE_COLUMNS} FROM cf_cases LIMIT 1").fetchone()
    events = src.execute(
        "SELECT * FROM cf_events WHERE case_id=? ORDER BY seq", (case[0],)
    ).fetchall()
    src.close()
    copies = target_events // len(events)
    own_id = f'{{"id":{json.dumps(case[0])},'
    assert case[-1].startswith(own_id)  # the snapshot, last column, names its case first
    dst = sqlite3.connect(path)
    dst.executemany(
        f"INSERT INTO cf_cases ({_CASE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            # Each copy's snapshot names the copy: a snapshot naming another case is
            # refused when it is read (decision 0035), as the export reads each one.
            (cid, *case[1:-1], f'{{"id":"{cid}",' + case[-1][len(own_id) :])
            for cid in (f"copy-{i:07d}" for i in range(copies))
        ),
    )
    dst.executemany(
        "INSERT INTO cf_events VALUES (?,?,?,?,?,?,?,?,?)",
        ((f"copy-{i:07d}", *e[1:]) for i in range(copies) for e in events),
    )
    dst.commit()
    dst.close()
    return copies * len(events)


def export_peak(path: Path) -> tuple[int, float, float]:
    """Events exported, seconds, and the peak resident memory growth in MiB."""
    store = SqlStore(f"sqlite:///{path}")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    with open(os.devnull, "w", encoding="utf-8") as sink:
        count = audit.export_jsonl(store, sink)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.close()
    return count, seconds, (after - before) / 1024


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--export-events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "verify.db"
        store = filled(db, args.cases)
        events = [e for cid in store.case_ids() for e in store.events(cid)]
        bases, rates = [], []
        for _ in range(args.rounds):  # interleaved, so both see the same machine load
            bases.append(baseline(events))
            rates.append(verify_rate(store, len(events)))
        store.close()
        base, rate = statistics.median(bases), statistics.median(rates)
        print(f"baseline, hash in memory : {base:10.0f} events/s (median of {args.rounds})")
        print(f"verify from SQLite       : {rate:10.0f} events/s ({len(events)} events)")
        print(f"ratio verify / baseline  : {rate / base:10.2f}x   (target >= 0.5x)")
        exported, peak = 0, 0.0
        if args.export_events > 0:
            exported, seconds, peak = export_peak_of(Path(tmp), db, args.export_events)
            print(f"export {exported} events : {seconds:6.1f} s, peak memory growth "
                  f"{peak:6.1f} MiB   (target: flat, < 200 MiB)")  # fmt: skip
        else:
            print("export                   : skipped (--export-events 0)")
    return {"ratio": rate / base, "export_events": exported, "export_peak_mib": peak}


def export_peak_of(tmp: Path, template: Path, target: int) -> tuple[int, float, float]:
    big = tmp / "export.db"
    copy_up(big, template, target)
    count, seconds, peak = export_peak(big)
    return count, seconds, peak


if __name__ == "__main__":
    main()
