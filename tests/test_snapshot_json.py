"""The SQL store writes snapshots member by member from the case's last text
(adapters.snapshot_json): the text is always exactly ``case_to_json``'s."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.memory import MemoryStore
from adapters.snapshot_json import _FIELDS, SnapshotJson
from adapters.sql import SqlStore
from policies.loader import bundled_policy
from tests.conftest import PATH
from tests.stores import sqlite_url
from tests.test_properties import attempts, good_inputs, needs_approval_above_50
from workflow import Engine, ManualClock, Policy, StepRefused, allowed_steps
from workflow.domain import Case, Note, case_to_json, evolve

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _expected(case: Case) -> str:
    return case_to_json(case).decode("utf-8")


def test_the_case_schema_is_written_member_by_member() -> None:
    """Not the fallback (whole texts every time): the fast path is what is tested."""
    assert _FIELDS is not None
    assert SnapshotJson(8).size == 8


@given(attempts, st.booleans())
def test_every_text_is_case_to_json_along_random_histories(
    plan: list[tuple[int | str, int, bool, int]], sla: bool
) -> None:
    clock = ManualClock(START)
    policy = (
        bundled_policy("retail")
        if sla
        else Policy(
            name="p", version="1", currency="EUR", feedback={"required_before_close": False}
        )
    )
    engine = Engine(MemoryStore(), clock=clock, policy=policy, decide=needs_approval_above_50)
    cid = engine.open_case(
        actor="agent:a", customer={"id": "c", "name": "C"}, channel="phone", subject="s"
    ).id
    writer = SnapshotJson(4)
    assert writer.text(engine.get(cid)) == _expected(engine.get(cid))
    for pick, variant, with_inputs, wait in plan:
        clock.advance(minutes=wait)
        if variant == 9:
            engine.tick()  # SLA warnings and breaches, if due
        state = engine.get(cid).state
        allowed = allowed_steps(state)
        step = pick if isinstance(pick, str) else allowed[pick % len(allowed)]
        actor = ("agent:a", "agent:b", "customer:c", "team-lead:d")[variant % 4]
        inputs = good_inputs(step, clock.now(), variant) if with_inputs else {}
        try:
            engine.step(cid, step, actor=actor, **inputs)
        except StepRefused:
            continue
        case = engine.get(cid)
        assert writer.text(case) == _expected(case)
    engine.erase_customer("c", actor="agent:a", reason="asked")
    case = engine.get(cid)
    assert writer.text(case) == _expected(case)


_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
_TEXT = st.text(max_size=12)  # any text: quotes, backslashes, control characters, non-ASCII


@st.composite
def _changes(draw: st.DrawFn, case: Case) -> dict[str, Any]:
    """Changes to some fields: new values, equal values in other objects (an equal
    datetime in another zone, an equal tuple), notes added, removed or reordered."""
    changes: dict[str, Any] = {}
    for name in draw(st.sets(st.sampled_from(Case.__slots__), max_size=6)):
        value = getattr(case, name)
        if isinstance(value, datetime):
            zone = draw(_ZONES)
            changes[name] = value.astimezone(zone) + timedelta(minutes=draw(st.integers(0, 3)))
        elif isinstance(value, str) and name not in ("channel", "priority", "complainant_type"):
            changes[name] = draw(_TEXT) or "x"
        elif isinstance(value, int) and not isinstance(value, bool):
            changes[name] = draw(st.integers(0, 10**12))
        elif name == "notes":
            notes = list(case.notes)
            kind = draw(st.sampled_from(["add", "drop", "reverse", "copy"]))
            if kind == "add":
                at = draw(st.datetimes(timezones=_ZONES))
                notes.append(Note(text=draw(_TEXT) or "n", by="agent:a", at=at))
            elif kind == "drop" and notes:
                del notes[draw(st.integers(0, len(notes) - 1))]
            elif kind == "reverse":
                notes.reverse()
            changes[name] = tuple(notes)
        elif isinstance(value, tuple):
            changes[name] = tuple(value)  # an equal tuple, another object (or the same: ())
    return changes


def _a_closed_case() -> Case:
    clock = ManualClock(START)
    engine = Engine(MemoryStore(), policy=bundled_policy("retail"), clock=clock)
    cid = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann \"A\" \u00e9"}, channel="email",
        subject="broken\n\t\u2603", case_id="case-1",
    ).id  # fmt: skip
    for step, inputs in PATH:
        clock.advance(minutes=47)
        actor = "customer:c-1" if step == "accept_remedy" else "agent:a"
        if step == "accept_remedy":
            inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
        engine.step(cid, step, actor=actor, **inputs)
    return engine.get(cid)


_CLOSED = _a_closed_case()


@given(st.data())
def test_every_text_is_case_to_json_after_arbitrary_changes(data: st.DataObject) -> None:
    writer = SnapshotJson(2)
    case = _CLOSED
    assert writer.text(case) == _expected(case)
    for _ in range(data.draw(st.integers(1, 6))):
        case = evolve(case, **data.draw(_changes(case)))
        assert writer.text(case) == _expected(case)


def test_a_writer_of_size_zero_writes_whole_texts_and_remembers_nothing() -> None:
    writer = SnapshotJson(0)
    assert writer.text(_CLOSED) == _expected(_CLOSED)
    assert len(writer) == 0


def test_the_writer_remembers_at_most_its_size_and_forgets_on_request() -> None:
    writer = SnapshotJson(2)
    for n in range(3):
        writer.text(evolve(_CLOSED, id=f"case-{n}"))
    assert len(writer) == 2
    writer.discard("case-2")
    assert len(writer) == 1
    writer.clear()
    assert len(writer) == 0


def test_the_sql_store_writes_case_to_json(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    clock = ManualClock(START)
    engine = Engine(store, policy=bundled_policy("retail"), clock=clock)
    cid = engine.open_case(
        actor="agent:a", customer={"id": "c-1", "name": "Ann"}, channel="email", subject="s"
    ).id
    for step, inputs in PATH:
        clock.advance(minutes=47)
        actor = "customer:c-1" if step == "accept_remedy" else "agent:a"
        if step == "accept_remedy":
            inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
        case = engine.step(cid, step, actor=actor, **inputs)
        with sqlite3.connect(tmp_path / "cases.db") as conn:
            (stored,) = conn.execute(
                "SELECT snapshot FROM cf_cases WHERE case_id = ?", (cid,)
            ).fetchone()
        assert stored == _expected(case)
    store.close()


def test_one_moment_in_several_fields_is_written_as_each_would_be() -> None:
    """Datetime texts are remembered by identity: the same object in several fields,
    and an equal instant in another zone (another text), both come out right."""
    writer = SnapshotJson(2)
    moment = datetime(2026, 11, 3, 10, 4, 5, 120, tzinfo=timezone(timedelta(hours=2)))
    case = evolve(_CLOSED, updated_at=moment, state_since=moment, closed_at=moment)
    assert writer.text(case) == _expected(case)
    assert '"closed_at":"2026-11-03T10:04:05.000120+02:00"' in writer.text(case)
    same_instant = moment.astimezone(UTC)
    case = evolve(case, updated_at=same_instant, state_since=same_instant)
    assert writer.text(case) == _expected(case)
    assert '"state_since":"2026-11-03T08:04:05.000120Z"' in writer.text(case)
