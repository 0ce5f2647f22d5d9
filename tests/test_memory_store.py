"""The memory store's packed event histories: what goes in comes back exactly, what
cannot be packed is kept whole, and what is refused leaves nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from workflow import Case, Engine, ManualClock, StoreError
from workflow.domain import evolve
from workflow.events import Event, make_event, restored_event
from workflow.replay import apply
from workflow.store import Tombstone

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def opened(store: MemoryStore) -> tuple[Engine, str]:
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="email", case_id="case-m"
    ).id
    return engine, cid


def note(
    engine: Engine, cid: str, data: dict[str, Any], at: datetime, actor: str = "agent:a"
) -> tuple[Case, Event]:
    case = engine.store.load(cid)
    event = make_event(
        cid, case.version + 1, "add_note", at, actor, data, engine.policy.stamp, case.head_hash
    )
    return case, event


@settings(max_examples=60, deadline=None)
@given(
    extra=st.dictionaries(st.text(min_size=1), json_values, max_size=5),
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1),
    actor=st.text(min_size=1, max_size=300),
    micros=st.integers(-(10**15), 10**16),
)
def test_any_json_data_actor_and_time_come_back_exactly(
    extra: dict[str, Any], text: str, actor: str, micros: int
) -> None:
    data = {**extra, "text": text}  # an add_note's data, with anything else beside it
    store = MemoryStore()
    engine, cid = opened(store)
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    case, event = note(engine, cid, data, at, actor)
    store.append(apply(case, event, case.state), [event], case.version)
    back = store.events(cid)[-1]
    assert back == event
    assert back.expected_hash() == event.hash
    assert back.prev_hash == store.events(cid)[0].hash


def test_an_event_whose_time_is_not_in_utc_is_kept_as_given() -> None:
    store = MemoryStore()
    engine, cid = opened(store)
    paris = datetime(2026, 11, 2, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    case, event = note(engine, cid, {"text": "n"}, paris)
    store.append(apply(case, event, case.state), [event], case.version)
    back = store.events(cid)[-1]
    assert back.at.utcoffset() == timedelta(hours=2)
    assert back.expected_hash() == back.hash


def test_data_that_is_not_json_is_refused_and_nothing_is_written() -> None:
    store = MemoryStore()
    engine, cid = opened(store)
    case, event = note(engine, cid, {"text": "n"}, START)
    bad = restored_event(
        cid, 2, "add_note", START, "agent:a", {"amount": object()}, "p", case.head_hash, "0" * 64
    )
    with pytest.raises(StoreError, match="case case-m event 2: its data is not JSON"):
        store.append(apply(case, event, case.state), [bad], case.version, None, "key-1")
    assert len(store.events(cid)) == 1
    assert store.load(cid) == case
    assert store.find_idempotent("key-1") is None


def test_a_purged_case_leaves_no_event_behind() -> None:
    store = MemoryStore()
    _, cid = opened(store)
    case = store.load(cid)
    odd = make_event(cid, 2, "add_note", START, "agent:a", {"text": "n"}, "p", "f" * 64)
    store.append(apply(case, odd, case.state), [odd], case.version)
    last = store.load(cid)
    store.purge(
        Tombstone(cid, last.version, last.head_hash, last.opened_at, START, START, "system:t", "r")
    )
    assert store._events._packed == {}  # nothing of the case is held
    assert store._events._odd == {}


@pytest.mark.parametrize(
    "data",
    [{"t": (1, 2)}, {1: "a"}, {"x": {True: 1}}, {"text": "lone \ud800 surrogate"}],
    ids=["tuple", "int-key", "bool-key", "surrogate"],
)
def test_data_that_json_would_change_comes_back_as_given(data: dict[Any, Any]) -> None:
    store = MemoryStore()
    _, cid = opened(store)
    case = store.load(cid)
    event = restored_event(cid, 2, "add_note", START, "agent:a", data, "p", case.head_hash,
                           "a" * 64)  # fmt: skip
    store.append(evolve(case, version=2), [event], case.version)
    back = store.events(cid)[-1]
    assert back == event
    assert type(back.data) is dict
    assert back.data == data


@pytest.mark.parametrize(
    "changes",
    [{"hash_": None}, {"actor": None}, {"type_": ["x"]}, {"actor": "agent:\ud800"}],
    ids=["no-hash", "no-actor", "list-type", "surrogate-actor"],
)
def test_a_malformed_event_is_kept_as_given(changes: dict[str, Any]) -> None:
    store = MemoryStore()
    _, cid = opened(store)
    case = store.load(cid)
    fields: dict[str, Any] = {
        "case_id": cid, "seq": 2, "type_": "add_note", "at": START, "actor": "agent:a",
        "data": {"text": "n"}, "policy_version": "p", "prev_hash": case.head_hash,
        "hash_": "a" * 64,
    }  # fmt: skip
    event = restored_event(**{**fields, **changes})
    store.append(evolve(case, version=2), [event], case.version)
    assert store.events(cid)[-1] == event
    assert store.events(cid, after_seq=1) == [event]


def test_data_that_contains_itself_is_refused_as_not_json() -> None:
    """The canonical encoder runs without the standard encoder's circular-reference
    check (it recurses until Python's limit instead): such data is still "not JSON",
    refused with a ``StoreError`` naming the case and seq, and nothing is written."""
    store = MemoryStore()
    engine, cid = opened(store)
    case, event = note(engine, cid, {"text": "n"}, START)
    circular: dict[str, Any] = {"text": "n"}
    circular["self"] = circular
    bad = restored_event(
        cid, 2, "add_note", START, "agent:a", circular, "p", case.head_hash, "0" * 64
    )
    with pytest.raises(StoreError, match="case case-m event 2: its data is not JSON"):
        store.append(apply(case, event, case.state), [bad], case.version)
    assert len(store.events(cid)) == 1
    assert store.load(cid) == case


# -- find_cases's indexes -------------------------------------------------------------


def test_find_cases_reads_the_index_of_its_rarest_filter_and_keeps_it_current() -> None:
    """Made by the first query; an append only notes the case, the next query indexes
    it anew: a reassignment moves it, a purge takes it out, a case opened with an
    earlier time than those before it is put in its place."""
    from workflow.query import CaseQuery

    store = MemoryStore()
    clock = ManualClock(START + timedelta(hours=1))
    engine = Engine(store, clock=clock)
    ids = []
    for n in range(40):
        ids.append(engine.open_case(actor="agent:a", customer={"id": f"c-{n % 4}", "name": "N"},
                                    channel="email", case_id=f"case-{n:02d}").id)  # fmt: skip
        clock.advance(seconds=1)
    engine.assign(ids[5], actor="team-lead:t", to="agent:rare")
    assert store._index is None  # no query yet: appends pay nothing for it
    rare = CaseQuery(assignee="agent:rare")
    assert [c.id for c in store.find_cases(rare, None, 10)] == [ids[5]]
    index = store._index
    assert index is not None
    assert index.ids["assignee"] == {"agent:rare": {ids[5]}}
    engine.assign(ids[7], actor="team-lead:t", to="agent:rare")
    engine.assign(ids[5], actor="team-lead:t", to="agent:other")
    assert index.touched == {ids[5], ids[7]}
    assert [c.id for c in store.find_cases(rare, None, 10)] == [ids[7]]
    assert index.touched == set()
    assert index.ids["assignee"] == {"agent:rare": {ids[7]}, "agent:other": {ids[5]}}
    # A case opened by a worker whose clock is behind: first in page order.
    early = Engine(store, clock=ManualClock(START)).open_case(
        actor="agent:a", customer={"id": "c-0", "name": "N"}, channel="email", case_id="case-zz"
    )
    assert [c.id for c in store.find_cases(CaseQuery(), None, 2)] == ["case-zz", ids[0]]
    assert [c.id for c in store.find_cases(CaseQuery(customer_id="c-0"), None, 3)] == [
        early.id, ids[0], ids[4],
    ]  # fmt: skip
    case = store.load(ids[7])
    store.purge(Tombstone(case.id, case.version, case.head_hash, case.opened_at, START, START,
                          "dpo:x", "x"))  # fmt: skip
    assert store.find_cases(rare, None, 10) == []
    assert ids[7] not in index.values
    assert index.ids["assignee"] == {"agent:other": {ids[5]}}
    assert len(index.order) == 40
    after = (store.load(ids[37]).opened_at, ids[37])
    assert [c.id for c in store.find_cases(CaseQuery(), after, 10)] == ids[38:]
    assert [c.id for c in store.find_cases(CaseQuery(customer_id="c-1"), after, 10)] == []
