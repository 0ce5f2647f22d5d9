"""Shared fixtures: a manual clock, an engine on the memory store, and a helper that
drives a case to any state of the checklist."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from hypothesis import settings

from adapters.memory import MemoryStore
from workflow import Actor, Engine, ManualClock, Money, Remedy

settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
AGENT = "agent:alice"
OTHER_AGENT = "agent:bob"
LEAD = "team-lead:sam"
CUSTOMER = "customer:c-1"

REFUND = Remedy(kind="refund", amount=Money.of("40.00", "EUR"))

#: How to reach each state of the main path from the one before.
PATH: list[tuple[str, dict[str, Any]]] = [
    ("acknowledge", {"message": "We have your complaint."}),
    ("listen", {"note": "The parcel arrived broken; the vase inside is smashed."}),
    (
        "record",
        {
            "category": "delivery",
            "contact": "ann@example.com",
            "occurred_on": "2026-11-01",
            "details": "Order 42: box crushed, vase broken.",
        },
    ),
    ("apologise", {"message": "We are sorry, and thank you for telling us."}),
    ("offer_remedy", {"options": [REFUND]}),
    ("accept_remedy", {"option": 1, "promise": "Refund 40 EUR", "due": START + timedelta(days=5)}),
    ("keep_promise", {"evidence": "refund reference R-1"}),
    ("request_feedback", {"message": "How did we do?"}),
    ("close", {"resolution": "refunded"}),
]
STATE_AFTER = {
    "acknowledge": "acknowledged",
    "listen": "listening",
    "record": "recorded",
    "apologise": "apologised",
    "offer_remedy": "remedy_offered",
    "accept_remedy": "promised",
    "keep_promise": "promise_kept",
    "request_feedback": "feedback_requested",
    "close": "closed",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def engine(store: MemoryStore, clock: ManualClock) -> Engine:
    return Engine(store, clock=clock)


def unchecked_actor(role: str, id_: str) -> Actor:
    """An ``Actor`` built without the checks ``Actor(...)`` makes, as the engine recorded
    actors before ids were checked: ONLY for tests that simulate histories stored then
    (docs/decisions/0036-actor-roles-and-ids.md). The engine takes an ``Actor`` as built,
    so steps taken by it write events such a history holds."""
    actor = object.__new__(Actor)
    object.__setattr__(actor, "role", role)
    object.__setattr__(actor, "id", id_)
    return actor


def open_case(engine: Engine, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "actor": AGENT,
        "customer": {"id": "c-1", "name": "Ann Example"},
        "channel": "email",
        "subject": "Parcel arrived broken",
    }
    fields.update(overrides)
    return engine.open_case(**fields).id


def drive(engine: Engine, case_id: str, to_state: str) -> None:
    """Take main-path steps until the case is in ``to_state``."""
    for step, inputs in PATH:
        if engine.get(case_id).state == to_state:
            return
        actor = CUSTOMER if step == "accept_remedy" else AGENT
        engine.step(case_id, step, actor=actor, **inputs)
    assert engine.get(case_id).state == to_state


@pytest.fixture
def case_in(engine: Engine) -> Callable[[str], str]:
    """``case_in("recorded")`` opens a case and drives it to that state."""

    def make(state: str) -> str:
        case_id = open_case(engine)
        if state != "received":
            drive(engine, case_id, state)
        return case_id

    return make


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    """The CLI configures structlog (it is an application); undo that after each test."""
    yield
    structlog.reset_defaults()
