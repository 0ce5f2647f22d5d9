"""What an auditor handed a store, a saved digest and an export reads from the audit
commands: what was verified, against which digest, where a tampering is, and what
became of a purged case (decision 0043)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from adapters.sql import SqlStore
from tests.conftest import START, drive
from tests.stores import sqlite_url
from tests.test_audit import history, tamper
from workflow import Engine, ManualClock, audit
from workflow.cli import main


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _store(tmp_path: Path) -> tuple[str, Engine, ManualClock]:
    """Two cases of seven events each (``tests.test_audit.history``) on SQLite."""
    url = sqlite_url(tmp_path)
    clock = ManualClock(START)
    engine = Engine(SqlStore(url, create=True), clock=clock)
    history(engine, clock)
    return url, engine, clock


def _purged_case(engine: Engine, clock: ManualClock) -> str:
    """A third case, closed, then purged at the end of its retention period."""
    cid = engine.open_case(actor="agent:a", customer={"id": "c9", "name": "Old"},
                           channel="email", subject="old", case_id="case-old").id  # fmt: skip
    drive(engine, cid, "closed")
    clock.advance(days=7 * 366)  # a purge is judged by the engine's clock (decision 0060)
    (tombstone,) = engine.purge_expired(actor="system:retention")
    assert tombstone.case_id == cid
    return cid


def _saved_digest(url: str, tmp_path: Path) -> Path:
    file = tmp_path / "digest.json"
    file.write_text(_run("audit", "digest", "--store", url).output, encoding="utf-8")
    return file


# -- what was verified ------------------------------------------------------------------


def test_verify_says_how_many_cases_and_events_it_verified(tmp_path: Path) -> None:
    """ "verified, no problems" alone reads the same for an empty database (the wrong
    file) as for a full one: the line says what was checked."""
    url, _, _ = _store(tmp_path)
    whole = _run("audit", "verify", "--store", url)
    assert whole.exit_code == 0, whole.output
    assert whole.output == f"{url}: verified, no problems (2 cases, 14 events)\n"
    one = _run("audit", "verify", "--store", url, "--case", "case-1")
    assert one.output == f"{url}: verified, no problems (1 case, 7 events)\n"
    empty = sqlite_url(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    SqlStore(empty, create=True).close()
    nothing = _run("audit", "verify", "--store", empty)
    assert nothing.output == f"{empty}: verified, no problems (0 cases, 0 events)\n"


def test_verify_counts_purged_cases_apart_from_the_cases_verified(tmp_path: Path) -> None:
    url, engine, clock = _store(tmp_path)
    _purged_case(engine, clock)
    with freeze_time(clock.now() + timedelta(days=8 * 366)):  # after the purge
        result = _run("audit", "verify", "--store", url)
    assert result.output == (
        f"{url}: verified, no problems (2 cases, 14 events; 1 purged case: its tombstone only)\n"
    )


def test_verify_file_says_how_many_cases_and_events_the_file_held(tmp_path: Path) -> None:
    url, _, _ = _store(tmp_path)
    exported = tmp_path / "events.jsonl"
    assert _run("audit", "export", "--store", url, "-o", str(exported)).exit_code == 0
    result = _run("audit", "verify-file", str(exported))
    assert result.output == f"{exported}: verified, no problems (2 cases, 14 events)\n"
    header_only = tmp_path / "cut.jsonl"
    header_only.write_text(exported.read_text().splitlines()[0] + "\n")
    cut = _run("audit", "verify-file", str(header_only))
    assert cut.exit_code == 1
    assert cut.output == (  # a /4 file ends with its end line (decision 0054)
        "Error: case ?: the file ends at line 1 without its end line: the export is "
        "incomplete (it failed part-way, or the file was cut short)\n"
    )
    empty = sqlite_url(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    SqlStore(empty, create=True).close()
    nothing = tmp_path / "nothing.jsonl"
    assert _run("audit", "export", "--store", empty, "-o", str(nothing)).exit_code == 0
    none = _run("audit", "verify-file", str(nothing))
    assert none.output == f"{nothing}: verified, no problems (0 cases, 0 events)\n"


def test_verify_tally_counts_what_verify_store_and_verify_export_read(tmp_path: Path) -> None:
    _, engine, _ = _store(tmp_path)
    tally = audit.Tally()
    assert audit.verify_store(engine.store, tally=tally) == []
    assert (tally.cases, tally.events) == (2, 14)
    lines = [
        json.dumps({"format": audit.EXPORT_FORMAT, "personal": False}),
        *(json.dumps(e.to_json()) for e in engine.history("case-0")),
        json.dumps({"end": {"cases": 1, "events": 7, "tombstones": 0}}),
    ]
    from_file = audit.Tally()
    assert audit.verify_export(lines, tally=from_file) == []
    assert (from_file.cases, from_file.events) == (1, 7)


# -- which digest -----------------------------------------------------------------------


def test_verify_against_a_digest_names_the_digest_it_checked(tmp_path: Path) -> None:
    """The short value kept apart (a ticket) is what an auditor compares: the command
    prints the digest it checked against, and how many cases that digest holds."""
    url, _, _ = _store(tmp_path)
    file = _saved_digest(url, tmp_path)
    value = json.loads(file.read_text())["digest"]
    result = _run("audit", "verify", "--store", url, "--digest", str(file))
    assert result.exit_code == 0, result.output
    assert f"checked against the saved digest {value} (2 cases)" in result.output
    exported = tmp_path / "events.jsonl"
    _run("audit", "export", "--store", url, "-o", str(exported))
    offline = _run("audit", "verify-file", str(exported), "--digest", str(file))
    assert f"checked against the saved digest {value} (2 cases)" in offline.output


def test_a_digest_file_without_its_digest_value_is_refused(tmp_path: Path) -> None:
    """Heads edited and the "digest" value deleted: without the value there is nothing
    to check the heads against, so the file is refused rather than trusted (the store
    would otherwise be reported as rewritten for the digest file's edit)."""
    url, engine, _ = _store(tmp_path)
    file = _saved_digest(url, tmp_path)
    saved = json.loads(file.read_text())
    del saved["digest"]
    saved["heads"]["case-1"][1] = "0" * 64
    file.write_text(json.dumps(saved))
    for command in (["audit", "verify", "--store", url], ["audit", "verify-file", str(file)]):
        result = _run(*command, "--digest", str(file))
        assert result.exit_code == 1, result.output
        assert result.output == (
            f'Error: {file} has no "digest" value: the heads cannot be checked against the '
            "value saved with them (the file was edited, or is not a digest written by "
            "`complaintflow audit digest`)\n"
        )
    assert engine.verify() == []


@pytest.mark.parametrize("twice", ["case-0", "digest"])
def test_a_digest_file_naming_a_case_or_its_value_twice_is_refused(
    tmp_path: Path, twice: str
) -> None:
    """JSON keeps the last of two equal keys: a head (or a value) written before the
    saved one was silently ignored, so the file a person reads said one thing and the
    command checked another. `audit digest` never writes a key twice: the file was
    edited."""
    url, _, _ = _store(tmp_path)
    file = _saved_digest(url, tmp_path)
    text = file.read_text(encoding="utf-8")
    if twice == "digest":
        edited = text.replace('"digest":', '"digest": "sha256:' + "0" * 64 + '", "digest":', 1)
    else:
        edited = text.replace('"heads": {', '"heads": {"case-0": [1, "' + "0" * 64 + '"], ', 1)
    file.write_text(edited, encoding="utf-8")
    assert json.loads(edited) == json.loads(text)  # what the command read before
    for command in (["audit", "verify", "--store", url], ["audit", "verify-file", str(file)]):
        result = _run(*command, "--digest", str(file))
        assert result.exit_code == 1, result.output
        assert result.output == (
            f"Error: {file} holds {twice!r} twice: only one of them could be checked (the "
            "file was edited; `complaintflow audit digest` writes each key once)\n"
        )


# -- where the tampering is -------------------------------------------------------------


def test_an_event_deleted_before_a_saved_head_does_not_blame_the_intact_head(
    tmp_path: Path,
) -> None:
    """Seq 3 deleted: the chain check locates it (seq 4 where 3 was due); the event at
    the saved head, seq 7, is still there with the saved hash, so the digest check does
    not call it rewritten (it looked the head up by position, and found seq 7 missing)."""
    url, engine, _ = _store(tmp_path)
    saved = {cid: (seq, head) for cid, seq, head in audit.heads(engine.store)}
    tamper(url, "DELETE FROM cf_events WHERE case_id = 'case-1' AND seq = 3")
    assert audit.check_digest(engine.store, saved) == []
    assert (("case-1", 4)) in {(f.case_id, f.seq) for f in engine.verify()}


def test_a_head_rewritten_is_still_found_against_the_digest(tmp_path: Path) -> None:
    url, engine, _ = _store(tmp_path)
    saved = {cid: (seq, head) for cid, seq, head in audit.heads(engine.store)}
    tamper(url, "UPDATE cf_events SET hash = :h WHERE case_id = 'case-1' AND seq = 7", h="0" * 64)
    assert [(f.case_id, f.seq, f.problem) for f in audit.check_digest(engine.store, saved)] == [
        ("case-1", 7, "differs from the saved digest: rewritten")
    ]
    tamper(url, "DELETE FROM cf_events WHERE case_id = 'case-1' AND seq >= 6")
    assert [(f.seq, f.problem) for f in audit.check_digest(engine.store, saved)] == [
        (7, "ends at seq 5, before the saved digest's seq 7: cut short, or events deleted")
    ]


# -- a purged case ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "show", "case-old"],
        ["audit", "verify", "--case", "case-old"],
        ["audit", "export", "--case", "case-old"],
    ],
)
def test_a_purged_case_asked_for_by_id_is_named_as_purged(
    tmp_path: Path, command: list[str]
) -> None:
    """Not "no case in the store", as for a case that never existed: its tombstone says
    when, by whom and why it went, and the head a saved digest holds for it."""
    url, engine, clock = _store(tmp_path)
    _purged_case(engine, clock)
    (tombstone,) = engine.store.tombstones()
    result = _run(*command, "--store", url)
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"Error: case case-old was purged on {tombstone.purged_at:%Y-%m-%dT%H:%M:%SZ} by "
        f"system:retention ({tombstone.reason}); its tombstone keeps its last seq "
        f"{tombstone.version} and head hash {tombstone.head_hash} (`complaintflow privacy "
        "purged` lists them)\n"
    )
    never = _run(*[("case-never" if part == "case-old" else part) for part in command],
                 "--store", url)  # fmt: skip
    assert never.output == "Error: no case 'case-never' in the store\n"


# -- export ranges ------------------------------------------------------------------------


def test_an_export_range_that_is_empty_is_a_usage_error(tmp_path: Path) -> None:
    """--until not after --since selects nothing: a slip (dates swapped) that would
    otherwise give an empty file that verifies."""
    url, _, _ = _store(tmp_path)
    result = _run("audit", "export", "--store", url, "--since", "2026-11-03T00:00:00Z",
                  "--until", "2026-11-02T00:00:00+00:00")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for --until: 2026-11-02T00:00:00+00:00 is not after --since " \
        "2026-11-03T00:00:00Z" in result.output  # fmt: skip


# -- running the command line ---------------------------------------------------------


def test_the_command_line_runs_as_python_m_workflow_cli(tmp_path: Path) -> None:
    """Where the console script is not on the PATH (a checkout, a locked-down audit
    machine), ``python -m workflow.cli`` runs the same commands."""
    url, _, _ = _store(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "workflow.cli", "audit", "verify", "--store", url],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{url}: verified, no problems (2 cases, 14 events)\n"
