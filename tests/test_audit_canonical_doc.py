"""docs/audit.md's canonical bytes, re-implemented from the page alone (no ``json``
module, no import of ``workflow.events``' serialiser), reproduce the hash of every event
the engine makes: an auditor can check a chain with nothing but the page."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import PATH, START
from tests.stores import sqlite_url
from workflow import Engine, ManualClock
from workflow.events import GENESIS, Event, make_event

_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
          "\f": "\\f"}  # fmt: skip


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        members = (_string(key) + ":" + _value(value[key]) for key in sorted(value))
        return "{" + ",".join(members) + "}"
    raise TypeError(f"not allowed in an event: {value!r}")


def _at(at: datetime) -> str:
    u = at.astimezone(UTC)
    return (f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
            f"{u.second:02d}.{u.microsecond:06d}+00:00")  # fmt: skip


def doc_hash(event: Event) -> str:
    """The hash as docs/audit.md "The canonical bytes, exactly" defines it."""
    body = {"actor": event.actor, "at": _at(event.at), "case_id": event.case_id,
            "data": event.data, "policy_version": event.policy_version,
            "prev_hash": event.prev_hash, "seq": event.seq, "type": event.type}  # fmt: skip
    return hashlib.sha256(_value(body).encode("utf-8")).hexdigest()


AWKWARD = [
    "plain",
    "Vase broke ☹ — café, naïve, 日本語, 𝄞 and 🎉",
    'quotes " and backslash \\ and slash /',
    "controls \x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f end",
    "not control for JSON: \x7f \x80 \x9f \u2028 \u2029 \ufeff",
    "",
    "\\u00e9 written out",
]


def test_the_docs_canonical_bytes_reproduce_engine_hashes_on_awkward_text(
    tmp_path: Path,
) -> None:
    """Every awkward text through real steps, on the memory store and SQLite (read back
    from the database), hashes as the page says."""
    for store in (MemoryStore(), SqlStore(sqlite_url(tmp_path), create=True)):
        clock = ManualClock(START + timedelta(microseconds=7))
        engine = Engine(store, clock=clock)
        for n, text in enumerate(AWKWARD):
            cid = engine.open_case(actor="agent:ä", customer={"id": f"c{n}", "name": text or "x"},
                                   channel="email", subject=text or "s", details=text or None,
                                   case_id=f"case-{n}-é").id  # fmt: skip
            clock.advance(microseconds=123457)
            engine.add_note(cid, actor="agent:a", text=text or "t")
            said = text or "t"
            for step, inputs in [
                ("acknowledge", {"message": said}),
                ("listen", {"note": said}),
                ("record", {**PATH[2][1], "contact": said, "details": said}),
            ]:
                clock.advance(seconds=1, microseconds=1)
                engine.step(cid, step, actor="agent:a", **inputs)
        for cid in store.case_ids():
            events = store.events(cid)
            assert len(events) == 5, [e.type for e in events]
            for event in events:
                assert doc_hash(event) == event.hash, (cid, event.seq, event.type)
        store.close()


def test_the_docs_example_body_is_what_is_hashed() -> None:
    body = ('{"actor":"agent:alice","at":"2026-11-02T09:00:00.000000+00:00","case_id":"case-1",'
            '"data":{"note":"Vase broke ☹"},"policy_version":"1@sha256:ab","prev_hash":"'
            + GENESIS + '","seq":2,"type":"listen"}')  # fmt: skip
    event = make_event("case-1", 2, "listen", datetime(2026, 11, 2, 9, tzinfo=UTC),
                       "agent:alice", {"note": "Vase broke ☹"}, "1@sha256:ab", GENESIS)  # fmt: skip
    assert event.hash == hashlib.sha256(body.encode("utf-8")).hexdigest() == doc_hash(event)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**40), max_value=10**40)
    | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6), inner,
                      max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    data=st.dictionaries(st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
                         json_values, max_size=5),
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30)),
                                               timezone(timedelta(hours=14))])),
    seq=st.integers(1, 10**12),
    keep_text=st.booleans(),
)  # fmt: skip
def test_the_docs_canonical_bytes_reproduce_made_events_on_any_json_data(
    data: dict[str, Any], at: datetime, seq: int, keep_text: bool
) -> None:
    """Nested data, big and negative integers, empty objects and lists, booleans and
    null, keys in any script, times with microseconds in any zone."""
    # ``make_event`` takes the engine's validated values: its times are UTC (the engine's
    # clock is converted; an export with another offset is refused when read).
    at = at.astimezone(UTC)
    event = make_event("c-ü", seq, "add_note", at, "agent:ß", data, "1@sha256:ab", GENESIS,
                       keep_text=keep_text)  # fmt: skip
    assert doc_hash(event) == event.hash
    assert doc_hash(event) == event.expected_hash()
