"""A case stepped after a digest was saved, then purged at the end of its retention
period (decision 0060): its tombstone holds its last seq and head, the digest an
earlier one, and the events between are gone. That cannot be checked against the
digest, and it is not tampering: verify says so in a note and passes. A tombstone at a
seq before the digest's, at the digest's seq with another head, or closing the case
before the digest saw it closed, is still a finding. On memory, SQLite and PostgreSQL;
the command line on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import update

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import PATH, START, drive
from tests.stores import SQL_KINDS, STORE_KINDS, each_store, sql_tables
from tests.test_audit import history
from workflow import Engine, ManualClock, audit
from workflow.cli import main
from workflow.store import Store, Tombstone

#: When the purge runs: past the bundled policy's six years of retention.
PURGE_AT = START + timedelta(days=7 * 366)

SavedHeads = tuple[dict[str, tuple[int, str]], dict[str, datetime | None]]


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


def _engine(store: Store) -> tuple[Engine, ManualClock]:
    """case-0 and case-1 open at seq 7; case-old (customer c9) closed at seq 10."""
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock)
    engine.open_case(actor="agent:a", customer={"id": "c9", "name": "Old"}, channel="email",
                     subject="old", case_id="case-old")  # fmt: skip
    drive(engine, "case-old", "closed")
    return engine, clock


def _saved(store: Store) -> SavedHeads:
    """What a ``complaintflow-digest/2`` file saved now holds: heads, closing times."""
    heads = audit.closing_heads(store)
    return (
        {cid: (seq, head) for cid, seq, head, _ in heads},
        {cid: closed for cid, _, _, closed in heads},
    )


def _later(engine: Engine, clock: ManualClock, how: str) -> None:
    """A step on case-old after the digest: the case stays closed, or closes again."""
    clock.advance(days=1)
    if how == "erased":
        engine.erase_customer("c9", actor="dpo:kim", reason="DSR-7")
    elif how == "noted":
        engine.add_note("case-old", actor="agent:a", text="the customer wrote to thank us")
    else:
        engine.reopen("case-old", actor="agent:a", reason="the customer wrote again")
        clock.advance(hours=1)
        engine.withdraw("case-old", actor="agent:a", reason="resolved elsewhere")


def _exported(store: Store) -> list[str]:
    out = io.StringIO()
    audit.export_jsonl(store, out)
    return out.getvalue().splitlines()


def _checked(
    store: Store, saved: SavedHeads
) -> tuple[list[tuple[str, Any, str]], list[tuple[str, Any, str]]]:
    """The findings and the notes of ``check_digest`` against ``saved``."""
    notes: list[audit.Unchecked] = []
    findings = audit.check_digest(store, saved[0], saved[1], unchecked=notes)
    return [(f.case_id, f.seq, f.problem) for f in findings], [
        (n.case_id, n.seq, n.text) for n in notes
    ]


def _file_checked(
    lines: list[str], saved: SavedHeads
) -> tuple[list[tuple[str, Any, str]], list[tuple[str, Any, str]]]:
    notes: list[audit.Unchecked] = []
    findings = audit.verify_export(lines, saved[0], closed=saved[1], unchecked=notes, now=PURGE_AT)
    return [(f.case_id, f.seq, f.problem) for f in findings], [
        (n.case_id, n.seq, n.text) for n in notes
    ]


def _note(steps: int, seq: int, where: str = "") -> str:
    more = f"{steps} more step" + ("s" if steps != 1 else "")
    return (
        f"purged after {more} than the saved digest holds (its tombstone{where} is at seq "
        f"{seq + steps}): the events are gone, so its head at the digest's seq {seq} cannot "
        "be checked; a digest saved after its last step checks its tombstone"
    )


@pytest.mark.parametrize("how", ["erased", "noted", "reopened and withdrawn"])
def test_a_case_stepped_after_the_digest_and_purged_is_a_note_not_tampering(
    store: Store, how: str
) -> None:
    """The false report: `TAMPERED ... purged, but its tombstone differs from the digest`,
    though nothing was rewritten."""
    engine, clock = _engine(store)
    saved = _saved(store)
    _later(engine, clock, how)
    steps = 2 if how.startswith("reopened") else 1
    clock.set(PURGE_AT)
    (tombstone,) = engine.purge_expired(actor="system:retention")
    assert tombstone.version == 10 + steps
    assert engine.verify() == []
    assert _checked(store, saved) == ([], [("case-old", 10, _note(steps, 10))])
    assert audit.check_digest(store, *saved) == []  # no notes asked for: none given
    assert _file_checked(_exported(store), saved) == (
        [], [("case-old", 10, _note(steps, 10, " (line 2)"))]
    )  # fmt: skip


def test_a_case_open_at_the_digest_closed_and_purged_since_is_a_note(store: Store) -> None:
    engine, clock = _engine(store)
    saved = _saved(store)
    assert saved[1]["case-0"] is None
    for step, inputs in PATH[6:]:  # from promised
        clock.advance(days=1)
        engine.step("case-0", step, actor="agent:a", **inputs)
    clock.set(PURGE_AT + timedelta(days=2))
    (tombstone,) = [t for t in engine.purge_expired(actor="system:retention")
                    if t.case_id == "case-0"]  # fmt: skip
    steps = tombstone.version - 7
    assert _checked(store, saved) == ([], [("case-0", 7, _note(steps, 7))])


def _purged_as(store: Store, **fields: Any) -> None:
    """case-old purged, then its tombstone given ``fields`` (what someone who can write
    to the database does)."""
    case = store.load("case-old")
    assert case.closed_at is not None
    tombstone = Tombstone(
        case_id="case-old", version=case.version, head_hash=case.head_hash,
        opened_at=case.opened_at, closed_at=case.closed_at, purged_at=PURGE_AT,
        purged_by="system:retention", reason="retention period of 6 years after closing ended",
        retention_years=6,
    )  # fmt: skip
    store.purge(tombstone)
    if isinstance(store, MemoryStore):
        store._tombstones[:] = [dataclasses.replace(tombstone, **fields)]
        return
    assert isinstance(store, SqlStore)
    t = store.tables.tombstones
    with store.engine.begin() as conn:
        conn.execute(update(t).where(t.c.case_id == "case-old").values(**fields))


def test_a_tombstone_before_the_digest_s_seq_is_still_found(store: Store) -> None:
    _engine(store)
    saved = _saved(store)
    _purged_as(store, version=9)
    assert _checked(store, saved) == (
        [("case-old", 10, "purged, but its tombstone differs from the digest: it is at seq "
          "9, before the digest's seq 10 (a purge keeps the case's last seq: events deleted "
          "before the purge, or the tombstone edited)")],
        [],
    )  # fmt: skip


def test_a_tombstone_at_the_digest_s_seq_with_another_head_is_still_found(store: Store) -> None:
    _engine(store)
    saved = _saved(store)
    _purged_as(store, head_hash="f" * 64)
    assert _checked(store, saved) == (
        [("case-old", 10, "purged, but its tombstone differs from the digest: its head hash "
          "at seq 10 is another (the chain was rewritten before the purge, or the tombstone "
          "edited)")],
        [],
    )  # fmt: skip


def test_a_tombstone_after_the_digest_closing_the_case_before_it_saw_it_closed_is_found(
    store: Store,
) -> None:
    """A closing time never moves back: a reopening clears it and the next closing comes
    later. Steps after the digest cannot make the case's closing earlier than the one
    the digest saved, so a tombstone giving one was edited (to pass the retention
    check sooner, say)."""
    _engine(store)
    saved = _saved(store)
    closed = saved[1]["case-old"]
    assert closed is not None
    earlier = closed - timedelta(days=400)
    _purged_as(store, version=11, head_hash="e" * 64, closed_at=earlier)
    findings, notes = _checked(store, saved)
    assert findings == [
        ("case-old", 10, f"purged, but its tombstone says it closed at {earlier.isoformat()}, "
         f"before {closed.isoformat()}, when the saved digest has it closed at seq 10: a "
         "case's closing time never moves back (the tombstone was edited, or written by "
         "hand)"),
    ]  # fmt: skip
    assert notes == []


@pytest.mark.parametrize("days", [0, 30])
def test_a_tombstone_after_the_digest_closing_the_case_then_or_later_is_a_note(
    store: Store, days: int
) -> None:
    """Closed when the digest saw it (a step that does not reopen, an erasure), or
    later (reopened and closed again)."""
    _engine(store)
    saved = _saved(store)
    closed = saved[1]["case-old"]
    assert closed is not None
    _purged_as(store, version=12, head_hash="e" * 64, closed_at=closed + timedelta(days=days))
    assert _checked(store, saved) == ([], [("case-old", 10, _note(2, 10))])


# -- the command line ---------------------------------------------------------------------


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str, str]]:
    with sql_tables(request.param, tmp_path) as tables:
        yield tables


def _run(*args: str) -> Result:
    with freeze_time(PURGE_AT + timedelta(days=1)):
        return CliRunner().invoke(main, list(args))


def test_audit_verify_and_verify_file_print_the_note_and_pass(
    sql: tuple[Store, str, str], tmp_path: Path
) -> None:
    store, url, prefix = sql
    engine, clock = _engine(store)
    saved = _run("audit", "digest", "--store", url, "--prefix", prefix)
    assert saved.exit_code == 0, saved.output
    digest = tmp_path / "digest.json"
    digest.write_text(saved.output, encoding="utf-8")
    value = json.loads(saved.output)["digest"]
    _later(engine, clock, "erased")
    clock.set(PURGE_AT)
    engine.purge_expired(actor="system:retention")
    verified = _run("audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(digest))
    assert verified.exit_code == 0, verified.output
    assert verified.output.splitlines() == [
        f"NOTE      case case-old event 10: {_note(1, 10)}",
        f"{url}: verified, no problems (2 cases, 14 events; 1 purged case: its tombstone "
        f"only; checked against the saved digest {value} (3 cases), 1 purged after steps it "
        "does not hold: see the note)",
    ]
    file = tmp_path / "events.jsonl"
    exported = _run("audit", "export", "--store", url, "--prefix", prefix, "-o", str(file))
    assert exported.exit_code == 0, exported.output
    offline = _run("audit", "verify-file", str(file), "--digest", str(digest))
    assert offline.exit_code == 0, offline.output
    assert offline.output.splitlines()[0] == (
        f"NOTE      case case-old event 10: {_note(1, 10, ' (line 2)')}"
    )
