"""A digest saved outside the database is what proves a purge (decision 0054): `audit
digest` writes `complaintflow-digest/2`, each case's head with when it closed (null
while open), so a tombstone written by hand for a case that was open at the saved
head, or one that moves its closing time back to pass the retention check, is found —
in the store (`audit verify --digest`) and in an export (`audit verify-file --digest`).
Digest files written before (no format, heads alone) are still read, and cannot tell."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time
from sqlalchemy import create_engine, delete, insert

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from adapters.sql_schema import build_tables
from tests.conftest import START, drive
from tests.stores import SQL_KINDS, sql_tables
from tests.test_audit import history
from workflow import Engine, ManualClock, audit
from workflow.cli import main
from workflow.events import format_at
from workflow.store import Tombstone

#: When the forger writes the tombstone, and when the auditor verifies.
FORGED_AT = START + timedelta(days=20)
VERIFIED_AT = START + timedelta(days=30)


def _run(*args: str) -> Result:
    with freeze_time(VERIFIED_AT):
        return CliRunner().invoke(main, list(args))


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlStore, str, str]]:
    """case-0 and case-1 open at seq 7; case-old closed."""
    with sql_tables(request.param, tmp_path) as (store, url, prefix):
        clock = ManualClock(START)
        engine = Engine(store, clock=clock)
        history(engine, clock)
        engine.open_case(actor="agent:a", customer={"id": "c9", "name": "Old"},
                         channel="email", subject="old", case_id="case-old")  # fmt: skip
        drive(engine, "case-old", "closed")
        yield store, url, prefix


def _digests(url: str, prefix: str, tmp_path: Path) -> tuple[Path, Path]:
    """The digest `audit digest` saves now (/2), and one as it saved them before."""
    saved = _run("audit", "digest", "--store", url, "--prefix", prefix)
    assert saved.exit_code == 0, saved.output
    new = tmp_path / "digest.json"
    new.write_text(saved.output, encoding="utf-8")
    heads = {cid: head[:2] for cid, head in json.loads(saved.output)["heads"].items()}
    old = tmp_path / "digest-before-0054.json"
    old.write_text(json.dumps({
        "digest": audit.digest_of((cid, seq, head) for cid, (seq, head) in heads.items()),
        "heads": heads,
    }), encoding="utf-8")  # fmt: skip
    return new, old


def _forge_purge(url: str, prefix: str, case_id: str, **fields: Any) -> None:
    """What someone with write access to the database does: delete the case, and write
    a tombstone holding its head (read before), with times that pass every check a
    tombstone's own fields allow."""
    tables = build_tables(prefix)
    engine = create_engine(url)
    with engine.begin() as conn:
        version, head = conn.execute(
            tables.events.select()
            .with_only_columns(tables.events.c.seq, tables.events.c.hash)
            .where(tables.events.c.case_id == case_id)
            .order_by(tables.events.c.seq.desc())
            .limit(1)
        ).one()
        for table in (tables.deadlines, tables.idempotency, tables.events, tables.cases):
            conn.execute(delete(table).where(table.c.case_id == case_id))
        row = {
            "case_id": case_id,
            "version": version,
            "head_hash": head,
            "opened_at": FORGED_AT - timedelta(days=8 * 366),
            "closed_at": FORGED_AT - timedelta(days=7 * 366),
            "purged_at": FORGED_AT,
            "purged_by": "system:retention",
            "reason": "retention period of 6 years after closing ended",
            "retention_years": 6,
        }
        conn.execute(insert(tables.tombstones).values(**{**row, **fields}))
    engine.dispose()


def _export(url: str, prefix: str, tmp_path: Path) -> Path:
    file = tmp_path / "events.jsonl"
    done = _run("audit", "export", "--store", url, "--prefix", prefix, "-o", str(file))
    assert done.exit_code == 0, done.output
    return file


def test_audit_digest_saves_when_each_case_closed(
    sql: tuple[SqlStore, str, str], tmp_path: Path
) -> None:
    store, url, prefix = sql
    new, _ = _digests(url, prefix, tmp_path)
    saved = json.loads(new.read_text())
    closed = store.load("case-old").closed_at
    assert closed is not None
    assert saved["format"] == "complaintflow-digest/2"
    assert saved["heads"]["case-0"][2] is None
    assert saved["heads"]["case-old"][2] == format_at(closed)
    assert saved["digest"] == audit.store_digest(store)
    heads = audit.closing_heads(store)
    assert saved["digest"] == audit.closing_digest_of(heads)
    assert [head[3] for head in heads] == [None, None, closed]


def test_a_tombstone_written_by_hand_for_a_case_open_at_the_saved_head_is_found(
    sql: tuple[SqlStore, str, str], tmp_path: Path
) -> None:
    """The gap: a case deleted and a tombstone written holding the digest's head, with
    times that pass the retention check. Its own fields cannot tell it from a purge; a
    digest saved before, which says the case was open at that head, can."""
    _, url, prefix = sql
    new, old = _digests(url, prefix, tmp_path)
    value = json.loads(new.read_text())["digest"]
    _forge_purge(url, prefix, "case-1")
    alone = _run("audit", "verify", "--store", url, "--prefix", prefix)
    assert alone.exit_code == 0, alone.output  # plausible on its own fields
    before = _run("audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(old))
    assert before.exit_code == 0, before.output  # a digest of heads alone cannot tell
    found = _run("audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(new))
    assert found.exit_code == 1
    open_at_head = (
        "purged, but the saved digest has it open at seq 7, its tombstone's: a case is "
        "purged only once closed or withdrawn, a step after which its head is another (the "
        "tombstone was written by hand, or by another program)"
    )
    assert found.output.splitlines() == [
        f"TAMPERED  case case-1 event 7: {open_at_head}",
        f"{url}: 1 problem(s) (2 cases, 17 events; 1 purged case: its tombstone only; "
        f"checked against the saved digest {value} (3 cases))",
    ]
    exported = _export(url, prefix, tmp_path)
    offline = _run("audit", "verify-file", str(exported), "--digest", str(new))
    assert offline.exit_code == 1
    assert offline.output.splitlines()[0] == f"TAMPERED  case case-1 event 7: {open_at_head}"
    assert _run("audit", "verify-file", str(exported), "--digest", str(old)).exit_code == 0


def test_a_closed_case_purged_early_is_found_whatever_closing_time_its_tombstone_gives(
    sql: tuple[SqlStore, str, str], tmp_path: Path
) -> None:
    """Closed at the saved head: its tombstone must give that closing time, and then the
    retention check holds the purge to it."""
    store, url, prefix = sql
    closed = store.load("case-old").closed_at
    assert closed is not None
    new, _ = _digests(url, prefix, tmp_path)
    _forge_purge(url, prefix, "case-old")  # closed_at moved seven years back
    moved = _run("audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(new))
    assert moved.exit_code == 1
    assert moved.output.splitlines()[0] == (
        f"TAMPERED  case case-old event 10: purged, but its tombstone says it closed at "
        f"{(FORGED_AT - timedelta(days=7 * 366)).isoformat()}, and the saved digest at "
        f"{closed.isoformat()} (the tombstone was edited, or written by hand)"
    )
    exported = _export(url, prefix, tmp_path)
    offline = _run("audit", "verify-file", str(exported), "--digest", str(new))
    assert "case case-old event 10: purged, but its tombstone (line 2) says it closed at" in (
        offline.output
    )


def test_a_closed_case_purged_early_with_its_true_closing_time_fails_the_retention_check(
    sql: tuple[SqlStore, str, str], tmp_path: Path
) -> None:
    store, url, prefix = sql
    case = store.load("case-old")
    assert case.closed_at is not None
    new, _ = _digests(url, prefix, tmp_path)
    _forge_purge(url, prefix, "case-old", opened_at=case.opened_at, closed_at=case.closed_at)
    found = _run("audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(new))
    assert found.exit_code == 1
    (line,) = [line for line in found.output.splitlines() if line.startswith("TAMPERED")]
    assert line.startswith(
        "TAMPERED  case case-old: purged, but its tombstone says it was purged at "
        f"{FORGED_AT.isoformat()}, before its retention period of 6 years"
    )


def test_a_purge_by_the_engine_verifies_against_a_digest_saved_before_it(
    sql: tuple[SqlStore, str, str], tmp_path: Path
) -> None:
    """The closing time a /2 digest holds for a closed case is its tombstone's: the
    digest of the store does not change with the purge."""
    store, url, prefix = sql
    new, _ = _digests(url, prefix, tmp_path)
    value = json.loads(new.read_text())["digest"]
    purge_at = START + timedelta(days=7 * 366)
    engine = Engine(store, clock=ManualClock(purge_at))
    assert [t.case_id for t in engine.purge_expired(actor="system:retention")] == ["case-old"]
    assert audit.store_digest(store) == value
    with freeze_time(purge_at + timedelta(days=1)):
        result = CliRunner().invoke(
            main, ["audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(new)]
        )
        exported = _export(url, prefix, tmp_path)
        offline = CliRunner().invoke(main, ["audit", "verify-file", str(exported), "--digest",
                                            str(new)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert offline.exit_code == 0, offline.output


def test_check_digest_without_closing_times_checks_the_head_alone() -> None:
    """A digest written before decision 0054 (or ``closed=None``): as before."""
    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    heads = {cid: (seq, head) for cid, seq, head, _ in audit.closing_heads(store)}
    case = store.load("case-1")
    store.purge(Tombstone("case-1", case.version, case.head_hash, START, START,
                          START + timedelta(days=400), "x:y", "by hand", None))  # fmt: skip
    assert audit.check_digest(store, heads) == []
    assert [(f.case_id, f.seq) for f in audit.check_digest(
        store, heads, {"case-0": None, "case-1": None})] == [("case-1", 7)]  # fmt: skip


def test_the_closing_time_is_the_last_closing_not_undone_by_a_reopening() -> None:
    """As replay's ``closed_at``: a reopening clears it, the next closing sets it."""
    store = MemoryStore()
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "A"},
                           channel="email", subject="broken").id  # fmt: skip

    def closing() -> datetime | None:
        ((_, _, _, closed),) = audit.closing_heads(store)
        assert closed == store.load(cid).closed_at
        return closed

    assert closing() is None
    drive(engine, cid, "closed")
    first = closing()
    assert first is not None
    clock.advance(hours=2)
    engine.reopen(cid, actor="agent:a", reason="the customer wrote again")
    assert closing() is None
    clock.advance(hours=1)
    engine.withdraw(cid, actor="agent:a", reason="resolved elsewhere")
    assert closing() == clock.now()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["heads"]["case-old"].__setitem__(2, "2020-01-01T00:00:00.000000+00:00"),
         "its heads do not give its digest"),
        (lambda d: d["heads"]["case-0"].__setitem__(2, "yesterday"),
         "case case-0's closed 'yesterday' is not a UTC time written as "
         "YYYY-MM-DDTHH:MM:SS.ffffff+00:00 (or null, while it is open)"),
        (lambda d: d["heads"]["case-0"].pop(),
         'is not a digest written by `complaintflow audit digest` (a JSON object with '
         '"heads": {case id: [seq, head hash, closed]})'),
        (lambda d: d.__setitem__("format", "complaintflow-digest/9"),
         "is in the format 'complaintflow-digest/9', which this complaintflow does not read "
         "(it reads complaintflow-digest/2, and digests written before it)"),
    ],
    ids=["closing time edited", "not a time", "no closing time", "unknown format"],
)  # fmt: skip
def test_a_digest_file_whose_closing_times_do_not_read_is_refused(
    sql: tuple[SqlStore, str, str], tmp_path: Path, edit: Any, message: str
) -> None:
    _, url, prefix = sql
    new, _ = _digests(url, prefix, tmp_path)
    saved = json.loads(new.read_text())
    edit(saved)
    new.write_text(json.dumps(saved))
    result = _run("audit", "verify", "--store", url, "--prefix", prefix, "--digest", str(new))
    assert result.exit_code == 1
    assert message in result.output
