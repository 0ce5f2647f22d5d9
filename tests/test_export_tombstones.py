"""An export carries the purged cases' tombstones (``complaintflow-events/3``): a file
checked against a digest saved before a purge tells "purged" from "missing", and a
tombstone edited in the file is found where it is (decision 0050)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from adapters.sql import SqlStore
from tests.conftest import START, drive
from tests.stores import STORE_KINDS, each_store, sqlite_url
from tests.test_audit import history
from workflow import Engine, ManualClock, Store, audit
from workflow.cli import main
from workflow.errors import AuditFailure
from workflow.events import format_at
from workflow.store import Tombstone

PURGED = "case-old"


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


def _purged_store(store: Store) -> tuple[dict[str, tuple[int, str]], Tombstone]:
    """Two cases of seven events each and a third, closed, then purged at the end of its
    retention period; returns the heads of a digest saved before the purge, and the
    tombstone."""
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock)
    engine.open_case(actor="agent:a", customer={"id": "c9", "name": "Old"}, channel="email",
                     subject="old", case_id=PURGED)  # fmt: skip
    drive(engine, PURGED, "closed")
    saved = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    clock.advance(days=7 * 366)  # a purge is judged by the engine's clock (decision 0060)
    (tombstone,) = engine.purge_expired(actor="system:retention")
    assert tombstone.case_id == PURGED
    return saved, tombstone


def _exported(store: Store, **options: Any) -> list[str]:
    out = io.StringIO()
    audit.export_jsonl(store, out, **options)
    return out.getvalue().splitlines()


def _line_of(lines: list[str], case_id: str) -> int:
    """The line number (1 = the header) of ``case_id``'s tombstone."""
    (number,) = [n for n, line in enumerate(lines, start=1)
                 if json.loads(line).get("purged", {}).get("case_id") == case_id]  # fmt: skip
    return number


def _found(lines: list[str], saved: dict[str, tuple[int, str]] | None = None) -> list[Any]:
    return [(f.case_id, f.seq, f.problem) for f in audit.verify_export(lines, saved)]


# -- what the file holds ----------------------------------------------------------------


def test_a_whole_store_export_holds_a_line_per_tombstone(store: Store) -> None:
    _, tombstone = _purged_store(store)
    lines = _exported(store)
    assert json.loads(lines[0]) == {
        "format": "complaintflow-events/4", "personal": True, "tombstones": True
    }  # fmt: skip
    # The tombstones come right after the header, before any case's lines.
    assert json.loads(lines[1]) == {
        "purged": {
            "case_id": PURGED,
            "version": tombstone.version,
            "head_hash": tombstone.head_hash,
            "opened_at": format_at(tombstone.opened_at),
            "closed_at": format_at(tombstone.closed_at),
            "purged_at": format_at(tombstone.purged_at),
            "purged_by": "system:retention",
            "reason": tombstone.reason,
            "retention_years": 6,
        }
    }
    assert lines[1].startswith('{"purged": {"case_id": "case-old", "closed_at": "')
    assert format_at(tombstone.purged_at).endswith("+00:00")
    assert all("purged" not in json.loads(line) for line in lines[2:])
    # The last line counts what the file holds (decision 0054).
    assert json.loads(lines[-1]) == {"end": {"cases": 2, "events": 14, "tombstones": 1}}
    # Events are read from the file as before, the tombstone skipped.
    assert {e.case_id for e in audit.read_jsonl(lines)} == {"case-0", "case-1"}


def test_an_export_verifies_against_a_digest_saved_before_the_purge(store: Store) -> None:
    """The false alarm decision 0043 left: the purged case was "in the saved digest but
    not in the file". Its tombstone in the file, with the digest's head, is what the
    digest check of the database accepts too."""
    saved, _ = _purged_store(store)
    lines = _exported(store)
    tally = audit.Tally()
    assert audit.verify_export(lines, saved, tally=tally) == []
    assert (tally.cases, tally.events, tally.purged) == (2, 14, 1)
    assert audit.verify_export(lines, tally=(alone := audit.Tally())) == []
    assert (alone.cases, alone.events, alone.purged) == (2, 14, 1)


def test_verify_store_counts_the_purged_cases_in_its_tally(store: Store) -> None:
    _purged_store(store)
    tally = audit.Tally()
    assert audit.verify_store(store, tally=tally) == []
    assert (tally.cases, tally.events, tally.purged) == (2, 14, 1)
    one = audit.Tally()
    assert audit.verify_store(store, "case-0", tally=one) == []
    assert (one.cases, one.purged) == (1, 0)


@pytest.mark.parametrize("field", ["head_hash", "version"])
def test_a_tombstone_edited_in_the_file_is_found_at_its_case(store: Store, field: str) -> None:
    saved, tombstone = _purged_store(store)
    lines = _exported(store)
    number = _line_of(lines, PURGED)
    record = json.loads(lines[number - 1])
    record["purged"][field] = "f" * 64 if field == "head_hash" else tombstone.version - 1
    lines[number - 1] = json.dumps(record)
    assert _found(lines) == []  # alone, a tombstone proves nothing: nothing to compare
    seq = saved[PURGED][0]
    detail = (
        f"its head hash at seq {seq} is another (the chain was rewritten before the purge, "
        "or the tombstone edited)" if field == "head_hash"
        else f"it is at seq {seq - 1}, before the digest's seq {seq} (a purge keeps the case's "
        "last seq: events deleted before the purge, or the tombstone edited)"
    )  # fmt: skip
    assert _found(lines, saved) == [
        (PURGED, seq, f"purged, but its tombstone (line {number}) differs from the digest: "
         f"{detail}")
    ]  # fmt: skip


def test_a_tombstone_beside_the_cases_events_or_twice_is_found_naming_its_line(
    store: Store,
) -> None:
    saved, _ = _purged_store(store)
    lines = _exported(store)
    tomb = json.loads(lines[1])
    forged = {"purged": {**tomb["purged"], "case_id": "case-1"}}
    beside = [lines[0], json.dumps(forged), *lines[1:]]
    # The line added is not counted by the end line, either.
    added = (
        "",
        None,
        "the end line (line 22) counts 2 cases, 14 events, 1 tombstone, but the "
        "file holds 2 cases, 14 events, 2 tombstones: lines were removed or added",
    )
    assert _found(beside, saved) == [
        ("case-1", None, "line 2 is a tombstone of this case, but the file holds its events"),
        added,
    ]
    twice = [lines[0], lines[1], lines[1], *lines[2:]]
    assert _found(twice, saved) == [
        (PURGED, None, "line 3 is a second tombstone of this case (the first is line 2)"),
        added,
    ]


def _with_tombstone(lines: list[str], record: Any, raw: str | None = None) -> list[str]:
    return [lines[0], raw if raw is not None else json.dumps(record), *lines[2:]]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda t: [t], "expected an object"),
        (lambda t: {k: v for k, v in t.items() if k != "reason"}, "reason is missing"),
        (lambda t: {**t, "note": "x"}, "an unknown key 'note'"),
        (lambda t: {**t, "case_id": 7}, "case_id is not text"),
        (lambda t: {**t, "version": "7"}, "version is not a whole number of at least 1"),
        (lambda t: {**t, "version": True}, "version is not a whole number of at least 1"),
        (lambda t: {**t, "version": 0}, "version is not a whole number of at least 1"),
        (lambda t: {**t, "head_hash": "F" * 64}, "head_hash is not 64 lowercase hex digits"),
        (lambda t: {**t, "purged_by": None}, "purged_by is not text"),
        (lambda t: {**t, "opened_at": "2026-11-02T09:00:00+00:00"},
         "opened_at '2026-11-02T09:00:00+00:00' is not a UTC time written as "
         "YYYY-MM-DDTHH:MM:SS.ffffff+00:00"),
        (lambda t: {**t, "closed_at": "2026-11-02T10:00:00.000000+01:00"},
         "closed_at '2026-11-02T10:00:00.000000+01:00' is not a UTC time written as "
         "YYYY-MM-DDTHH:MM:SS.ffffff+00:00"),
        (lambda t: {**t, "purged_at": "yesterday"},
         "purged_at 'yesterday' is not a UTC time written as YYYY-MM-DDTHH:MM:SS.ffffff+00:00"),
    ],
)  # fmt: skip
def test_a_malformed_tombstone_line_is_refused_naming_the_line(edit: Any, problem: str) -> None:
    from adapters.memory import MemoryStore

    store = MemoryStore()
    _purged_store(store)
    lines = _exported(store)
    record = json.loads(lines[1])["purged"]
    with pytest.raises(AuditFailure) as refused:
        audit.verify_export(_with_tombstone(lines, {"purged": edit(record)}))
    assert str(refused.value).endswith(f"line 2 is not a tombstone: {problem}")


def test_a_tombstone_line_out_of_place_is_refused_naming_the_line() -> None:
    from adapters.memory import MemoryStore

    store = MemoryStore()
    _purged_store(store)
    lines = _exported(store)
    extra = json.dumps({**json.loads(lines[1]), "note": "x"})
    with pytest.raises(AuditFailure, match="line 2 is not a tombstone: a key other than "):
        audit.verify_export(_with_tombstone(lines, None, extra))
    after = [lines[0], *lines[2:5], lines[1], *lines[5:]]
    with pytest.raises(
        AuditFailure,
        match="line 5 is a tombstone after the cases' lines \\(tombstones come first\\)",
    ):
        audit.verify_export(after)
    old = [json.dumps({"format": "complaintflow-events/2", "personal": True}), *lines[1:]]
    with pytest.raises(AuditFailure, match="line 2 is a tombstone in a complaintflow-events/2 "):
        audit.verify_export(old)


# -- some cases, a time window, the earlier formats ---------------------------------------


def test_an_export_of_some_cases_holds_no_tombstones_and_says_so(store: Store) -> None:
    saved, _ = _purged_store(store)
    lines = _exported(store, case_ids=["case-0"])
    assert json.loads(lines[0])["tombstones"] is False
    assert not [line for line in lines if "purged" in json.loads(line)]
    assert _found(lines, saved) == [
        (cid, None, "is in the saved digest but not in the file (an export of some cases "
                    "or of a time window, a case purged since, or a file cut short)")
        for cid in ("case-1", PURGED)
    ]  # fmt: skip


def test_a_time_window_export_holds_every_tombstone(store: Store) -> None:
    """Events outside the window are left out, so cases are missing from the file; the
    tombstones are not events, and every one is there: the digest check tells the
    purged case from the ones the window left out, and says it may rely on that."""
    saved, _ = _purged_store(store)
    first = next(iter(audit.read_jsonl(_exported(store))))
    lines = _exported(store, since=first.at, until=first.at + timedelta(microseconds=1))
    assert json.loads(lines[0])["tombstones"] is True
    assert _line_of(lines, PURGED) == 2
    found = _found(lines, saved)
    assert (PURGED, None) not in {(cid, seq) for cid, seq, _ in found}
    missing = [cid for cid, _, problem in found if problem.startswith("is in the saved")]
    assert missing
    assert PURGED not in missing
    assert {problem for cid, _, problem in found if cid in missing} == {
        "is in the saved digest but not in the file, and no tombstone in it says it was "
        "purged (an export of a time window, a file cut short, or a case deleted from the "
        "store)"
    }


def test_an_export_in_format_2_still_verifies_as_before(store: Store) -> None:
    saved, _ = _purged_store(store)
    lines = _exported(store)
    older = {"purged", "end"}  # /2 files had neither
    old = [json.dumps({"format": "complaintflow-events/2", "personal": True}),
           *(line for line in lines[1:] if not older & set(json.loads(line)))]  # fmt: skip
    tally = audit.Tally()
    assert audit.verify_export(old, tally=tally) == []
    assert (tally.cases, tally.events, tally.purged) == (2, 14, 0)
    assert _found(old, saved) == [
        (PURGED, None, "is in the saved digest but not in the file (an export of some cases "
                       "or of a time window, a case purged since, or a file cut short)")
    ]  # fmt: skip


def test_the_csv_export_stays_one_row_per_event(store: Store) -> None:
    _purged_store(store)
    out = io.StringIO()
    assert audit.export_csv(store, out) == 14
    rows = out.getvalue().splitlines()
    assert len(rows) == 15
    assert not [row for row in rows if PURGED in row]


# -- the command line -------------------------------------------------------------------


def test_verify_file_counts_the_purged_cases_as_verify_does(tmp_path: Path) -> None:
    runner = CliRunner()
    url = sqlite_url(tmp_path)
    sql = SqlStore(url, create=True)
    try:
        clock = ManualClock(START)
        engine = Engine(sql, clock=clock)
        history(engine, clock)
        engine.open_case(actor="agent:a", customer={"id": "c9", "name": "Old"},
                         channel="email", subject="old", case_id=PURGED)  # fmt: skip
        drive(engine, PURGED, "closed")
        digest = tmp_path / "digest.json"
        digest.write_text(runner.invoke(main, ["audit", "digest", "--store", url]).output)
        clock.advance(days=2600)
        engine.purge_expired(actor="system:retention")
    finally:
        sql.close()
    value = json.loads(digest.read_text())["digest"]
    exported = tmp_path / "events.jsonl"
    done = runner.invoke(main, ["audit", "export", "--store", url, "-o", str(exported)])
    assert done.exit_code == 0, done.output
    with freeze_time(START + timedelta(days=2700)):  # after the purge
        result = runner.invoke(main, ["audit", "verify-file", str(exported), "--digest",
                                      str(digest)])  # fmt: skip
        on_store = runner.invoke(main, ["audit", "verify", "--store", url, "--digest",
                                        str(digest)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{exported}: verified, no problems (2 cases, 14 events; 1 purged case: its "
        f"tombstone only; checked against the saved digest {value} (3 cases))\n"
    )
    assert on_store.output == result.output.replace(str(exported), url)


def test_the_tombstone_line_docs_audit_md_shows_is_the_librarys_output_byte_for_byte() -> None:
    """An auditor writes their own reader from the page: its example line must be what
    the export writes for that tombstone, and read back as it."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "audit.md").read_text()
    (shown,) = [line.strip() for line in page.splitlines()
                if line.strip().startswith('{"purged": ')]  # fmt: skip
    tombstone = audit._tombstone_line(2, json.loads(shown))
    assert json.dumps({"purged": audit.tombstone_json(tombstone)}, sort_keys=True,
                      ensure_ascii=False) == shown  # fmt: skip
    out = io.StringIO()
    from adapters.memory import MemoryStore

    store = MemoryStore()
    store._tombstones.append(tombstone)
    audit.export_jsonl(store, out)
    assert out.getvalue().splitlines()[1] == shown
