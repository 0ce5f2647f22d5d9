"""Events are hash-chained per case over a canonical serialisation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from workflow import GENESIS, Customer, Engine
from workflow.engine import customer_data
from workflow.events import canonical, canonical_json, event_from_json, format_at, make_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_is_sorted_compact_utf8_json(value: dict[str, Any]) -> None:
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == expected
    assert json.loads(canonical_json(value)) == value


@given(
    st.text(),
    st.integers(min_value=1),
    st.text(),
    st.datetimes(timezones=st.just(UTC)),
    st.text(),
    st.dictionaries(st.text(), json_values, max_size=5),
    st.text(),
)
def test_an_events_canonical_bytes_are_sorted_compact_utf8_json(
    case_id: str,
    seq: int,
    type_: str,
    at: datetime,
    actor: str,
    data: dict[str, Any],
    policy: str,
) -> None:
    """The engine's fast writer gives exactly ``json.dumps(sort_keys=True, ...)``."""
    body = {
        "actor": actor,
        "at": at.isoformat(timespec="microseconds"),
        "case_id": case_id,
        "data": data,
        "policy_version": policy,
        "prev_hash": GENESIS,
        "seq": seq,
        "type": type_,
    }
    expected = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(case_id, seq, type_, at, actor, data, policy, GENESIS) == expected.encode()


def test_each_event_hashes_its_canonical_bytes_and_chains_to_the_previous(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("apologised")
    history = engine.history(cid)
    assert history[0].prev_hash == GENESIS
    for previous, event in pairwise(history):
        assert event.prev_hash == previous.hash
    for event in history:
        body = canonical(
            event.case_id,
            event.seq,
            event.type,
            event.at,
            event.actor,
            event.data,
            event.policy_version,
            event.prev_hash,
        )
        assert hashlib.sha256(body).hexdigest() == event.hash == event.expected_hash()
    assert engine.get(cid).head_hash == history[-1].hash


def test_the_canonical_bytes_are_documented_exactly() -> None:
    """docs/audit.md shows this event's canonical form; keep them in step."""
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    body = canonical(
        "case-1", 2, "listen", at, "agent:alice", {"note": "Vase broke ☹"}, "1@sha256:ab", GENESIS
    )
    assert (
        body
        == (
            '{"actor":"agent:alice","at":"2026-11-02T09:00:00.000000+00:00","case_id":"case-1",'
            '"data":{"note":"Vase broke ☹"},"policy_version":"1@sha256:ab","prev_hash":"'
            + "0" * 64
            + '","seq":2,"type":"listen"}'
        ).encode()
    )


def test_an_edited_event_no_longer_matches_its_hash(
    engine: Engine, case_in: Callable[[str], str]
) -> None:
    cid = case_in("listening")
    event = engine.history(cid)[-1]
    edited = replace(event, data={"note": "the customer was rude"})
    assert edited.expected_hash() != edited.hash


@given(st.dictionaries(st.text(), json_values, max_size=6), st.text())
def test_an_engine_made_event_keeps_its_data_as_the_text_it_hashed(
    data: dict[str, Any], actor: str
) -> None:
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert make_event("case-1", 1, "open", at, actor, data, "p", GENESIS).data_text is None
    event = make_event("case-1", 1, "open", at, actor, data, "p", GENESIS, keep_text=True)
    assert event.data_text == canonical_json(data)
    assert event.data_text is not None
    assert event.data_text.encode() in canonical("case-1", 1, "open", at, actor, data, "p",
                                                 GENESIS)  # fmt: skip
    # Not part of what the event is: not compared, not shown, not carried by a copy.
    plain = event_from_json(event.to_json())
    assert plain.data_text is None
    assert plain == event
    assert repr(event) == repr(replace(event))  # a copy carries no text to show
    assert replace(event, data={"x": 1}).data_text is None


def test_an_event_round_trips_through_json(engine: Engine, case_in: Callable[[str], str]) -> None:
    cid = case_in("promised")
    for event in engine.history(cid):
        again = event_from_json(json.loads(json.dumps(event.to_json())))
        assert again == event
        assert again.expected_hash() == event.hash


def test_docs_audit_shows_the_same_canonical_bytes() -> None:
    """docs/audit.md's example is the library's output, byte for byte."""
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    body = canonical(
        "case-1", 2, "listen", at, "agent:alice", {"note": "Vase broke ☹"}, "1@sha256:ab", GENESIS
    )
    assert body.decode() in page


@given(st.datetimes(timezones=st.just(UTC)))
def test_an_instant_is_written_exactly_as_isoformat_writes_it(at: datetime) -> None:
    """The fast writer of ``at`` texts gives ``isoformat(timespec="microseconds")``."""
    assert format_at(at) == at.isoformat(timespec="microseconds")


@pytest.mark.parametrize(
    "customer",
    [
        {"id": "c-1", "name": "Ann"},
        {"id": "c-2", "name": "Bo", "contact": "bo@example.com", "tier": "gold"},
        {"id": "c-3", "name": "Cy", "account": "A-9", "contact": "+44 1"},
    ],
)
def test_the_open_event_records_the_customer_as_pydantic_dumps_it(
    customer: dict[str, Any],
) -> None:
    adapter = TypeAdapter(Customer)
    valid = adapter.validate_python(customer)
    expected = adapter.dump_python(valid, mode="json", exclude_none=True)
    assert customer_data(valid) == expected
    assert list(customer_data(valid)) == list(expected)
    assert {f.name for f in fields(Customer)} == {"id", "name", "contact", "account", "tier"}
