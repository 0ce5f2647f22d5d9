"""What verify checks of a tombstone (decision 0054): that it is plausible as the engine's
purge of a closed case at the end of its retention period — a seq after the opening,
its times in order, a purge no sooner than the retention period it records (a year, the
shortest any policy gives, when it records none), no later than the verification — and
that its case is not in the store beside it. On memory, SQLite and PostgreSQL.

Each field is the tombstone's own word: a forger who writes plausible times passes these
checks; only a digest saved before tells (tests/test_tombstone_digest.py)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import START, drive
from tests.stores import STORE_KINDS, each_store
from tests.test_audit import history
from workflow import AuditFailure, Engine, ManualClock, audit
from workflow.store import Store, Tombstone

#: When the forged tombstones say they were purged, and when verify runs.
LATER = START + timedelta(days=8 * 366)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


def _engine(store: Store) -> tuple[Engine, ManualClock]:
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock)  # case-0 and case-1, seven events each, open
    engine.open_case(actor="agent:a", customer={"id": "c9", "name": "Old"}, channel="email",
                     subject="old", case_id="case-old")  # fmt: skip
    drive(engine, "case-old", "closed")
    return engine, clock


def _found(store: Store, now: datetime | None = LATER) -> list[tuple[str, Any, str]]:
    return [(f.case_id, f.seq, f.problem) for f in audit.verify_store(store, now=now)]


def test_a_purge_records_the_policy_s_retention_and_verifies_at_any_time_after(
    store: Store,
) -> None:
    engine, clock = _engine(store)
    clock.set(START + timedelta(days=7 * 366))
    (tombstone,) = engine.purge_expired(actor="system:retention")
    assert tombstone.retention_years == 6  # the bundled policy's
    assert list(store.tombstones()) == [tombstone]
    assert engine.verify() == []  # at the engine's now: the purge's own time
    assert _found(store) == []
    assert _found(store, now=None) == []


def _forged(store: Store, case_id: str, **fields: Any) -> Tombstone:
    """The case deleted and a tombstone written in its place, as someone who can write
    to the database would (``Store.purge`` takes the tombstone as given)."""
    case = store.load(case_id)
    assert case.closed_at is not None or case_id != "case-old"
    tombstone = Tombstone(
        case_id=case_id,
        version=case.version,
        head_hash=case.head_hash,
        opened_at=case.opened_at,
        closed_at=case.closed_at or case.updated_at,
        purged_at=LATER,
        purged_by="system:retention",
        reason="retention period of 6 years after closing ended",
        retention_years=6,
    )
    tombstone = dataclasses.replace(tombstone, **fields)
    store.purge(tombstone)
    return tombstone


def test_a_tombstone_of_a_case_at_its_opening_is_reported(store: Store) -> None:
    """A case at seq 1 was never closed or withdrawn: either is a step of its own."""
    engine, _ = _engine(store)
    engine.open_case(actor="agent:a", customer={"id": "c8", "name": "New"}, channel="email",
                     case_id="case-new")  # fmt: skip
    _forged(store, "case-new")
    assert _found(store) == [
        ("case-new", None, "purged, but its tombstone is at seq 1: a case's first event is its "
         "opening, and a case is purged only once a later step closed or withdrew it"),
    ]  # fmt: skip


def test_a_purge_before_the_retention_period_it_records_ended_is_reported(
    store: Store,
) -> None:
    _engine(store)
    closed = store.load("case-old").closed_at
    assert closed is not None
    _forged(store, "case-old", purged_at=closed + timedelta(days=30))
    assert _found(store) == [
        ("case-old", None, f"purged, but its tombstone says it was purged at "
         f"{(closed + timedelta(days=30)).isoformat()}, before its retention period of 6 "
         f"years after it closed at {closed.isoformat()} ended (at "
         f"{closed.replace(year=closed.year + 6).isoformat()})"),
    ]  # fmt: skip


def test_without_a_recorded_retention_a_purge_within_a_year_is_reported(
    store: Store,
) -> None:
    """A tombstone written before retention was recorded (or by another program) is held
    to a year, the shortest retention period a policy can give."""
    _engine(store)
    closed = store.load("case-old").closed_at
    assert closed is not None
    _forged(store, "case-old", purged_at=closed + timedelta(days=300), retention_years=None)
    (finding,) = _found(store)
    assert finding[2] == (
        f"purged, but its tombstone says it was purged at "
        f"{(closed + timedelta(days=300)).isoformat()}, before a year, the shortest retention "
        "period a policy gives (the tombstone does not record its own) after it closed at "
        f"{closed.isoformat()} ended (at {closed.replace(year=closed.year + 1).isoformat()})"
    )
    assert next(iter(store.tombstones())).retention_years is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            {"closed_at": START - timedelta(days=1)},
            "says it closed at 2026-11-01T09:00:00+00:00, before it opened at {opened}",
        ),
        (
            {"purged_at": START},
            "says it was purged at 2026-11-02T09:00:00+00:00, before it closed at {closed}",
        ),
        (
            {"retention_years": 0},
            "gives a retention period of 0 years, which no policy can (1 to 100)",
        ),
        (
            {"retention_years": 101},
            "gives a retention period of 101 years, which no policy can (1 to 100)",
        ),
    ],
    ids=["closed before opened", "purged before closed", "0 years", "101 years"],
)
def test_a_tombstone_whose_own_fields_contradict_each_other_is_reported(
    store: Store, fields: dict[str, Any], problem: str
) -> None:
    _engine(store)
    case = store.load("case-old")
    assert case.closed_at is not None
    _forged(store, "case-old", **fields)
    found = _found(store)
    shown = problem.format(closed=case.closed_at.isoformat(), opened=case.opened_at.isoformat())
    assert ("case-old", None, "purged, but its tombstone " + shown) in found


def test_a_purge_dated_after_the_verification_is_reported(store: Store) -> None:
    """A clock set wrong (or `privacy purge --at` a time to come, before decision 0060
    refused it): the tombstone says the case was purged at a time that has not come.
    Only when verify is given its time."""
    engine, _ = _engine(store)
    _forged(store, "case-old", purged_at=LATER + timedelta(days=1))
    assert _found(store) == [
        ("case-old", None, "purged, but its tombstone says it was purged at "
         f"{(LATER + timedelta(days=1)).isoformat()}, after this verification's time "
         f"{LATER.isoformat()} (a clock set wrong, or a purge judged at a time to come, "
         "which `privacy purge --at` took before decision 0060)"),
    ]  # fmt: skip
    assert _found(store, now=None) == []
    assert [f.case_id for f in engine.verify()] == ["case-old"]  # the engine's clock


def test_a_tombstone_beside_its_case_is_reported(store: Store) -> None:
    """A store holding a tombstone and a case of one id: a tombstone written beside the
    case, or a case opened with a purged case's id before the stores refused that
    (decision 0060). A digest cannot hold both."""
    _engine(store)
    case = store.load("case-old")
    assert case.closed_at is not None
    tombstone = Tombstone(
        "case-old", case.version, case.head_hash, case.opened_at, case.closed_at,
        START + timedelta(days=7 * 366), "system:retention", "by hand", 6,
    )  # fmt: skip
    if isinstance(store, MemoryStore):
        store._tombstones.append(tombstone)
    else:
        assert isinstance(store, SqlStore)
        with store.engine.begin() as conn:
            conn.execute(insert(store.tables.tombstones).values(dataclasses.asdict(tombstone)))
    assert _found(store) == [
        ("case-old", None, f"purged at {tombstone.purged_at.isoformat()} (its tombstone), but "
         "the store holds the case too: a purge deletes it (a tombstone written beside the "
         "case, or its id taken again by a case opened before complaintflow refused that)"),
    ]  # fmt: skip
    assert audit.verify_store(store, "case-old") == []  # the case alone is sound


# -- in an exported file ------------------------------------------------------------------


def _exported(store: Store) -> list[str]:
    out = io.StringIO()
    audit.export_jsonl(store, out)
    return out.getvalue().splitlines()


def _file_found(lines: list[str], now: datetime | None = LATER) -> list[tuple[str, Any, str]]:
    return [(f.case_id, f.seq, f.problem) for f in audit.verify_export(lines, now=now)]


def test_an_exported_tombstone_is_checked_as_the_store_s_naming_its_line(store: Store) -> None:
    """The tombstone line carries the retention period (format /4), so a file checks
    what the store checks, offline."""
    engine, clock = _engine(store)
    clock.set(START + timedelta(days=7 * 366))
    engine.purge_expired(actor="system:retention")
    lines = _exported(store)
    assert json.loads(lines[1])["purged"]["retention_years"] == 6
    assert _file_found(lines) == []
    record = json.loads(lines[1])["purged"]
    closed = record["closed_at"]
    soon = {**record, "purged_at": record["closed_at"]}
    assert _file_found([lines[0], json.dumps({"purged": soon}), *lines[2:]]) == [
        ("case-old", None, f"purged, but its tombstone (line 2) says it was purged at "
         f"{closed[:19]}+00:00, before its retention period of 6 years after it closed at "
         f"{closed[:19]}+00:00 ended (at 2032{closed[4:19]}+00:00)"),
    ]  # fmt: skip
    ahead = _file_found(lines, now=START)
    assert [problem.split(", after")[0] for _, _, problem in ahead] == [
        f"purged, but its tombstone (line 2) says it was purged at {record['purged_at'][:19]}+00:00"
    ]
    unrecorded = {**record, "retention_years": None}  # read; held to a year
    assert _file_found([lines[0], json.dumps({"purged": unrecorded}), *lines[2:]]) == []


@pytest.mark.parametrize(
    ("years", "problem"),
    [("6", "retention_years is not a whole number or null"),
     (True, "retention_years is not a whole number or null"),
     (6.0, "retention_years is not a whole number or null")],
)  # fmt: skip
def test_a_tombstone_line_whose_retention_is_not_a_number_is_refused(
    years: object, problem: str
) -> None:
    from adapters.memory import MemoryStore

    store = MemoryStore()
    engine, clock = _engine(store)
    clock.set(START + timedelta(days=7 * 366))
    engine.purge_expired(actor="system:retention")
    lines = _exported(store)
    record = {**json.loads(lines[1])["purged"], "retention_years": years}
    with pytest.raises(AuditFailure) as refused:
        audit.verify_export([lines[0], json.dumps({"purged": record}), *lines[2:]])
    assert str(refused.value) == f"case ?: line 2 is not a tombstone: {problem}"


def test_a_file_in_format_3_is_read_as_before() -> None:
    """/3 tombstone lines have no retention period (it is an unknown key there), and /3
    files no end line; their tombstones are held to a year."""
    from adapters.memory import MemoryStore

    store = MemoryStore()
    engine, clock = _engine(store)
    clock.set(START + timedelta(days=7 * 366))
    engine.purge_expired(actor="system:retention")
    lines = _exported(store)
    record = json.loads(lines[1])["purged"]
    del record["retention_years"]
    header = json.dumps({"format": "complaintflow-events/3", "personal": True,
                         "tombstones": True})  # fmt: skip
    old = [header, json.dumps({"purged": record}, sort_keys=True), *lines[2:-1]]
    tally = audit.Tally()
    assert audit.verify_export(old, tally=tally, now=LATER) == []
    assert (tally.cases, tally.events, tally.purged) == (2, 14, 1)
    with pytest.raises(AuditFailure, match="line 2 is not a tombstone: an unknown key "
                       "'retention_years'"):  # fmt: skip
        audit.verify_export([header, lines[1], *lines[2:-1]])
    with pytest.raises(AuditFailure, match=f"line {len(lines)} is an end line in a "
                       "complaintflow-events/3 file"):  # fmt: skip
        audit.verify_export([*old, lines[-1]])
