"""Reading a case's history as an auditor: who did what, when, under which policy, and
whether the chain and the snapshot hold. Run:  python examples/audit_trail.py
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from itertools import pairwise

import structlog

from adapters import open_store
from workflow import GENESIS, Engine, ManualClock, replay, vault_of


def main() -> None:
    # Your application configures logging; here: warnings only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    engine = Engine(open_store("memory://"), clock=clock)
    cid = engine.open_case(
        actor="agent:alice",
        customer={"id": "c-9", "name": "Cy"},
        channel="phone",
        subject="Late delivery",
    ).id
    clock.advance(minutes=4)
    engine.acknowledge(cid, actor="agent:alice")
    clock.advance(minutes=9)
    engine.listen(cid, actor="agent:alice", note="Promised Friday, arrived Tuesday.")
    engine.add_note(cid, actor="agent:bob", text="Courier confirms a depot delay.")

    history = engine.history(cid)
    for event in history:
        print(
            f"{event.seq} {event.at:%Y-%m-%d %H:%M} {event.actor:<12} {event.type:<12}"
            f" {event.hash[:12]} <- {event.prev_hash[:12]}"
        )
    chain_ok = history[0].prev_hash == GENESIS and all(
        later.prev_hash == earlier.hash for earlier, later in pairwise(history)
    )
    hashes_ok = all(event.expected_hash() == event.hash for event in history)
    print("chain links:", chain_ok, "| hashes match content:", hashes_ok)
    case = engine.get(cid)
    print("snapshot equals replay:", replay(history, vault_of(case.personal)) == case)
    print("policy:", history[-1].policy_version)


if __name__ == "__main__":
    main()
