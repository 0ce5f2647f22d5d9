"""An export is whole or says it is not (decision 0054): a JSON Lines file ends with a
line counting what it holds (format /4), so a file cut at a line boundary, or an export
that failed part-way, does not verify; `audit export -o FILE` is written whole or not at
all; to stdout, an export that fails part-way ends with an error saying what it wrote is
incomplete, and exit status 1."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import START
from tests.stores import SQL_KINDS, sql_tables, sqlite_url
from tests.test_audit import history
from tests.test_unreadable_snapshots import spoil
from workflow import AuditFailure, Engine, ManualClock, SnapshotUnreadable, audit
from workflow.cli import main


def _lines(n_cases: int = 2) -> list[str]:
    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock, n_cases)
    out = io.StringIO()
    assert audit.export_jsonl(store, out) == 7 * n_cases
    return out.getvalue().splitlines()


def test_the_last_line_counts_what_the_file_holds() -> None:
    lines = _lines()
    assert json.loads(lines[0])["format"] == "complaintflow-events/4"
    assert json.loads(lines[-1]) == {"end": {"cases": 2, "events": 14, "tombstones": 0}}
    assert audit.verify_export(lines) == []
    empty = io.StringIO()
    audit.export_jsonl(MemoryStore(), empty)
    assert empty.getvalue().splitlines()[1:] == [
        '{"end": {"cases": 0, "events": 0, "tombstones": 0}}'
    ]
    assert audit.verify_export(empty.getvalue().splitlines()) == []


def test_a_file_cut_at_any_line_boundary_does_not_verify() -> None:
    """Before the end line, a file cut after a whole case read as a sound, shorter
    export (decision 0028 left it to a digest)."""
    lines = _lines()
    for kept in range(1, len(lines)):
        with pytest.raises(AuditFailure) as refused:
            audit.verify_export(lines[:kept])
        assert str(refused.value) == (
            f"case ?: the file ends at line {kept} without its end line: the export is "
            "incomplete (it failed part-way, or the file was cut short)"
        )


@pytest.mark.parametrize(
    "end",
    [
        {"end": {"cases": 2, "events": 14}},
        {"end": {"cases": 2, "events": 14, "tombstones": 0, "more": 1}},
        {"end": {"cases": "2", "events": 14, "tombstones": 0}},
        {"end": {"cases": True, "events": 14, "tombstones": 0}},
        {"end": {"cases": -1, "events": 14, "tombstones": 0}},
        {"end": [2, 14, 0]},
        {"end": {"cases": 2, "events": 14, "tombstones": 0}, "note": "x"},
    ],
)
def test_a_malformed_end_line_is_refused_naming_the_line(end: object) -> None:
    lines = _lines()
    with pytest.raises(AuditFailure) as refused:
        audit.verify_export([*lines[:-1], json.dumps(end)])
    assert str(refused.value) == (
        f'case ?: line {len(lines)} is not an end line ({{"end": {{"cases": N, "events": N, '
        '"tombstones": N}}, each a whole number)'
    )


def test_a_line_after_the_end_line_is_refused() -> None:
    lines = _lines()
    with pytest.raises(AuditFailure, match=f"line {len(lines) + 1} follows the end line "
                       f"\\(line {len(lines)}\\): an end line is the file's last"):  # fmt: skip
        audit.verify_export([*lines, lines[3]])


def test_counts_that_differ_from_the_file_are_a_finding_about_the_file() -> None:
    """Lines removed (a whole case, say) or added: the end line no longer counts them.
    A forger can count again: only a digest saved before proves a file whole."""
    lines = _lines()
    without = [line for line in lines if '"case-1"' not in line]
    (finding,) = audit.verify_export(without)
    assert (finding.case_id, finding.seq) == (audit.FILE, None)
    assert str(finding) == (
        "the file: the end line (line 11) counts 2 cases, 14 events, 0 tombstones, but the "
        "file holds 1 case, 7 events, 0 tombstones: lines were removed or added"
    )


# -- an export that fails part-way ---------------------------------------------------------


@pytest.fixture(params=SQL_KINDS)
def spoilt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    """Three cases, the second's snapshot unreadable (decision 0035)."""
    with sql_tables(request.param, tmp_path) as (store, url, prefix):
        clock = ManualClock(START)
        history(Engine(store, clock=clock), clock, 3)
        spoil(url, prefix, "wrong type", "case-1")
        yield SqlStore(url, prefix=prefix)


def test_an_export_that_fails_part_way_has_no_end_line_and_does_not_verify(
    spoilt: SqlStore,
) -> None:
    out = io.StringIO()
    with pytest.raises(SnapshotUnreadable):
        audit.export_jsonl(spoilt, out)
    spoilt.close()
    written = out.getvalue().splitlines()
    assert {e.case_id for e in audit.read_jsonl(written)} == {"case-0"}  # whole, then stops
    with pytest.raises(AuditFailure, match="without its end line: the export is incomplete"):
        audit.verify_export(written)


def _cli_spoilt(tmp_path: Path) -> str:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock, 3)
    store.close()
    spoil(url, "cf_", "wrong type", "case-1")
    return url


UNREADABLE = (
    "Error: case case-1: the stored snapshot is unreadable: customer.contact: Input should "
    "be a valid string (run `complaintflow audit verify --store URL --case case-1`)"
)


def test_an_export_to_stdout_that_fails_part_way_says_what_it_wrote_is_incomplete(
    tmp_path: Path,
) -> None:
    url = _cli_spoilt(tmp_path)
    result = CliRunner().invoke(main, ["audit", "export", "--store", url])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{UNREADABLE}; the JSON Lines written to stdout stops there and is incomplete (it "
        "has no end line: `complaintflow audit verify-file` refuses it)"
    ]
    partial = tmp_path / "partial.jsonl"
    partial.write_text(result.stdout, encoding="utf-8")
    assert result.stdout.count("\n") > 1  # the header and case-0 were written
    refused = CliRunner().invoke(main, ["audit", "verify-file", str(partial)])
    assert refused.exit_code == 1
    assert "without its end line: the export is incomplete" in refused.output
    csv = CliRunner().invoke(main, ["audit", "export", "--store", url, "--format", "csv"])
    assert csv.exit_code == 1
    assert csv.stderr.splitlines() == [
        f"{UNREADABLE}; the CSV written to stdout stops there and is incomplete"
    ]


def test_an_export_to_a_file_that_fails_leaves_no_file_and_an_earlier_one_as_it_was(
    tmp_path: Path,
) -> None:
    url = _cli_spoilt(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    for fmt in ("jsonl", "csv"):
        target = folder / f"events.{fmt}"
        result = CliRunner().invoke(
            main, ["audit", "export", "--store", url, "--format", fmt, "-o", str(target)]
        )
        assert result.exit_code == 1
        assert result.output.splitlines() == [UNREADABLE]  # nothing was written: no "incomplete"
        assert list(folder.iterdir()) == []  # no file, no temporary file left behind
    earlier = folder / "events.jsonl"
    earlier.write_text("an earlier export\n", encoding="utf-8")
    CliRunner().invoke(main, ["audit", "export", "--store", url, "-o", str(earlier)])
    assert earlier.read_text(encoding="utf-8") == "an earlier export\n"
    assert list(folder.iterdir()) == [earlier]
