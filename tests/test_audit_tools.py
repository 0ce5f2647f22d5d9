"""The audit tools at their edges: store digests, time travel, exports read offline."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from tests.conftest import START, unchecked_actor
from tests.stores import sqlite_url
from tests.test_audit import history, tamper
from workflow import Engine, ManualClock, audit
from workflow.cli import main
from workflow.errors import AuditFailure
from workflow.events import GENESIS, event_from_json, make_event


def _sqlite_history(tmp_path: Path) -> tuple[str, Engine, ManualClock]:
    url = sqlite_url(tmp_path)
    clock = ManualClock(START)
    engine = Engine(SqlStore(url, create=True), clock=clock)
    history(engine, clock)
    return url, engine, clock


# -- store digests ---------------------------------------------------------------------


def test_the_saved_digest_is_of_the_heads_saved_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step landing while ``audit digest`` runs must not leave a "digest" that is not
    the digest of the "heads" next to it (the store was read once)."""
    url, engine, _ = _sqlite_history(tmp_path)
    real_heads = audit.closing_heads

    def heads_then_a_step(store: object) -> list[audit.ClosingHead]:
        found = real_heads(store)  # type: ignore[arg-type]
        engine.add_note("case-0", actor="agent:a", text="landed meanwhile")
        return found

    monkeypatch.setattr(audit, "closing_heads", heads_then_a_step)
    saved = json.loads(CliRunner().invoke(main, ["audit", "digest", "--store", url]).output)
    assert saved["format"] == "complaintflow-digest/2"
    quads = [(cid, seq, head, audit.read_closed(closed))
             for cid, (seq, head, closed) in saved["heads"].items()]  # fmt: skip
    assert saved["digest"] == audit.closing_digest_of(quads)


def test_a_digest_file_whose_heads_were_edited_is_refused(tmp_path: Path) -> None:
    """A case rewritten consistently and the saved heads edited to match: the heads no
    longer give the digest saved with them, so verify refuses the file."""
    url, _, _ = _sqlite_history(tmp_path)
    runner = CliRunner()
    saved = json.loads(runner.invoke(main, ["audit", "digest", "--store", url]).output)
    tamper(url, "UPDATE cf_events SET hash = (CASE WHEN SUBSTR(hash, 1, 1) = 'f' THEN 'e' "
                "ELSE 'f' END) || SUBSTR(hash, 2) "
                "WHERE case_id = 'case-1' AND seq = 7")  # fmt: skip
    check = SqlStore(url)
    new_head = check.events("case-1")[-1].hash
    check.close()
    assert new_head != saved["heads"]["case-1"][1]
    saved["heads"]["case-1"][1] = new_head
    file = tmp_path / "digest.json"
    file.write_text(json.dumps(saved))
    result = runner.invoke(main, ["audit", "verify", "--store", url, "--digest", str(file)])
    assert result.exit_code == 1, result.output
    assert "its heads do not give its digest" in result.output


def test_a_digest_of_a_case_without_events_is_an_error_not_a_crash(tmp_path: Path) -> None:
    url, _, _ = _sqlite_history(tmp_path)
    tamper(url, "DELETE FROM cf_events WHERE case_id = 'case-1'")
    result = CliRunner().invoke(main, ["audit", "digest", "--store", url])
    assert result.exit_code == 1
    assert result.output.startswith("Error: case case-1: has no events"), result.output
    assert not isinstance(result.exception, IndexError)


def test_a_saved_digest_and_cases_added_deleted_or_of_another_store(tmp_path: Path) -> None:
    """A case opened after the digest is fine; a case deleted entirely is found; a digest
    of another store names every case it holds as missing."""
    url, engine, _clock = _sqlite_history(tmp_path)
    heads = {cid: (seq, head) for cid, seq, head in audit.heads(engine.store)}
    engine.open_case(actor="agent:a", customer={"id": "c9", "name": "N"}, channel="chat",
                     subject="later", case_id="case-9")  # fmt: skip
    engine.add_note("case-0", actor="agent:a", text="later")
    assert audit.check_digest(engine.store, heads) == []
    tamper(url, "DELETE FROM cf_events WHERE case_id = 'case-0'")
    tamper(url, "DELETE FROM cf_cases WHERE case_id = 'case-0'")
    assert [(f.case_id, f.problem) for f in audit.check_digest(engine.store, heads)] == [
        ("case-0", "is in the saved digest but not in the store")
    ]
    other = MemoryStore()
    oclock = ManualClock(START)
    oengine = Engine(other, clock=oclock)
    oengine.open_case(actor="agent:a", customer={"id": "x", "name": "N"}, channel="chat",
                      subject="s", case_id="other-1")  # fmt: skip
    other_heads = {cid: (seq, head) for cid, seq, head in audit.heads(other)}
    assert [f.case_id for f in audit.check_digest(engine.store, other_heads)] == ["other-1"]


# -- time travel -----------------------------------------------------------------------


def test_state_at_before_the_case_opened_names_the_case() -> None:
    store = MemoryStore()
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock, n_cases=1)
    with pytest.raises(AuditFailure, match="case case-0: the case did not exist at "
                                           r"2026-11-02T08:59:59\+00:00 \(opened "):  # fmt: skip
        engine.state_at("case-0", START - timedelta(seconds=1))


def test_state_at_an_events_own_time_includes_it_in_any_zone() -> None:
    store = MemoryStore()
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock, n_cases=1)
    second = store.events("case-0")[1]
    assert engine.state_at("case-0", second.at).version == 2
    assert engine.state_at("case-0", second.at - timedelta(microseconds=1)).version == 1
    elsewhere = second.at.astimezone(timezone(timedelta(hours=-5)))
    assert engine.state_at("case-0", elsewhere).version == 2


def test_show_after_an_erasure_reveals_no_personal_value(tmp_path: Path) -> None:
    url, engine, _ = _sqlite_history(tmp_path)
    engine.erase_customer("c0", actor="dpo:kim", reason="DSR-7")
    shown = CliRunner().invoke(main, ["audit", "show", "case-0", "--store", url,
                                      "--at", "2026-11-02T11:00:00Z"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "Ann" not in shown.output
    assert "ann@example.com" not in shown.output
    assert "[erased]" in shown.output
    assert engine.state_at("case-0", datetime(2026, 11, 2, 11, tzinfo=UTC)).customer.name == (
        "[erased]"
    )


def _timed_history(url: str) -> Engine:
    """case-t under the SLA policy: the acknowledgement breaches (warning, breach and
    escalation recorded by the sweeper at 12:00), a team lead resumes, and the case
    moves to another policy at 14:00."""
    from tests.test_properties import NEXT_POLICY, SLA_POLICY

    clock = ManualClock(START)
    store = SqlStore(url, create=True)
    engine = Engine(store, clock=clock, policy=SLA_POLICY)
    engine.open_case(actor="agent:alice", customer={"id": "c-1", "name": "Ann Example"},
                     channel="email", subject="Broken vase", case_id="case-t")  # fmt: skip
    clock.set(datetime(2026, 11, 2, 12, 0, tzinfo=UTC))
    engine.tick()
    clock.advance(minutes=10, seconds=30)
    engine.resume("case-t", actor="team-lead:sam", note="ok")
    clock.set(datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    moved = Engine(store, clock=clock, policy=NEXT_POLICY, previous_policies=[SLA_POLICY])
    moved.migrate_policy("case-t", actor="agent:alice", reason="policy 2 replaces 1")
    return engine


def _line(output: str, seq: int) -> str:
    return next(line for line in output.splitlines() if line.split()[:1] == [str(seq)])


def test_show_gives_times_in_utc_the_policy_and_the_sla_verdicts_in_full(
    tmp_path: Path,
) -> None:
    """An auditor reads each time to the second with its zone, the policy each event ran
    under told apart by its digest (the declared version alone does not), and the whole
    of each event's data: an SLA breach names its target and due time."""
    from tests.test_properties import NEXT_POLICY, SLA_POLICY

    url = sqlite_url(tmp_path)
    _timed_history(url).store.close()
    shown = CliRunner().invoke(main, ["audit", "show", "case-t", "--store", url])
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "UTC" in out.splitlines()[0]
    old, new = SLA_POLICY.stamp, NEXT_POLICY.stamp
    breach = _line(out, 3)
    assert breach.split()[1:4] == ["2026-11-02T12:00:00Z", "system:sla", "sla_breached"]
    assert old[: len("1@sha256:") + 8] in breach
    assert '"target": "ack"' in breach
    assert '"due_at": "2026-11-02T11:00:00.000000+00:00"' in breach
    assert "2026-11-02T12:10:30Z" in _line(out, 5)
    assert new[: len("2@sha256:") + 8] in _line(out, 6)
    assert old in out  # each policy's full stamp, once
    assert new in out
    assert out.splitlines()[-1] == "state: received, version 6, priority normal"
    at = CliRunner().invoke(main, ["audit", "show", "case-t", "--store", url,
                                   "--at", "2026-11-02T13:00:00+01:00"])  # fmt: skip
    assert at.exit_code == 0, at.output
    assert "as it stood at 2026-11-02T12:00:00Z" in at.output.splitlines()[0]
    assert at.output.splitlines()[-1] == "state: escalated, version 4, priority normal"


def test_show_prints_no_control_character_from_the_history(tmp_path: Path) -> None:
    """An actor id or a note holding a carriage return, a terminal escape or a
    right-to-left override cannot overwrite or reorder what the auditor's terminal
    shows: such characters are printed as escapes."""
    url = sqlite_url(tmp_path)
    clock = ManualClock(START)
    engine = Engine(SqlStore(url, create=True), clock=clock)
    # Ids the engine refuses now, as a history written before may hold them (0036).
    engine.open_case(actor=unchecked_actor("agent", "x\r  1 2026-11-02T09:00:00Z agent:alice"),
                     customer={"id": "c", "name": "N"}, channel="chat", case_id="case-c",
                     subject="s")  # fmt: skip
    engine.add_note("case-c", actor=unchecked_actor("agent", "y\x1b[2K\x9b2K"),
                    text="paid \u202e0001 EUR")  # fmt: skip
    shown = CliRunner().invoke(main, ["audit", "show", "case-c", "--store", url])
    assert shown.exit_code == 0, shown.output
    for char in "\r\x1b\x9b\u202e":
        assert char not in shown.output
    assert "agent:x\\r" in _line(shown.output, 1)
    assert "\\u202e" in _line(shown.output, 2)


@pytest.mark.parametrize("lands", ["before", "after"])
def test_show_gives_the_state_of_the_timeline_it_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lands: str
) -> None:
    """A step landing while ``audit show`` reads (before or after it reads the events)
    must not give a state line of another version than the timeline's last event."""
    url = sqlite_url(tmp_path)
    clock = ManualClock(START)
    engine = Engine(SqlStore(url, create=True), clock=clock)
    history(engine, clock, n_cases=1)

    class StepMeanwhile:
        def __init__(self, store: SqlStore) -> None:
            self._store = store

        def __getattr__(self, name: str) -> object:
            return getattr(self._store, name)

        def events(self, case_id: str) -> list[object]:
            if lands == "before":
                engine.add_note(case_id, actor="agent:a", text="landed meanwhile")
            found = self._store.events(case_id)
            if lands == "after":
                engine.add_note(case_id, actor="agent:a", text="landed meanwhile")
            return found  # type: ignore[return-value]

    monkeypatch.setattr("workflow.cli.common.open_store",
                        lambda u: StepMeanwhile(SqlStore(u)))  # fmt: skip
    shown = CliRunner().invoke(main, ["audit", "show", "case-0", "--store", url])
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if line.split()[0].isdigit()]
    last = int(rows[-1].split()[0])
    assert shown.output.splitlines()[-1].startswith(f"state: promised, version {last},")


@pytest.mark.parametrize("at", [[], ["--at", "2026-11-02T10:00:00Z"]])
def test_show_of_a_case_whose_snapshot_was_edited_is_a_one_line_error(
    tmp_path: Path, at: list[str]
) -> None:
    """Regression: an auditor looking at a tampered case got a Python traceback (the
    snapshot failed validation); the error names the case and what to run."""
    url, _, _ = _sqlite_history(tmp_path)
    tamper(url, "UPDATE cf_cases SET snapshot = REPLACE(snapshot, '\"transfers\":0', "
                "'\"transfers\":\"x\"') WHERE case_id = 'case-0'")  # fmt: skip
    shown = CliRunner().invoke(main, ["audit", "show", "case-0", "--store", url, *at])
    assert shown.exit_code == 1, shown.output
    assert shown.output.splitlines() == [
        "Error: case case-0: the stored snapshot is unreadable: transfers: Input should be "
        "a valid integer, unable to parse string as an integer (run `complaintflow audit "
        "verify --store URL --case case-0`)"
    ]


#: The last instant of year 9999 five hours west of UTC: year 10000 in UTC, which a
#: ``datetime`` cannot hold (and the first of year 1 east of UTC: year 0).
BEYOND = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
BEFORE_ALL = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))


def test_state_at_far_in_the_future_is_the_case_as_it_stands() -> None:
    store = MemoryStore()
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock, n_cases=1)
    assert engine.state_at("case-0", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) == (
        engine.get("case-0")
    )


@pytest.mark.parametrize("when", [BEYOND, BEFORE_ALL])
def test_state_at_a_time_utc_cannot_hold_is_refused_naming_it(when: datetime) -> None:
    """Not an ``OverflowError`` from deep inside: a ``ValueError`` that says which time
    and why."""
    store = MemoryStore()
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock, n_cases=1)
    with pytest.raises(ValueError, match=r"state_at\(when\): .* is outside the times UTC can "
                                         "hold"):  # fmt: skip
        engine.state_at("case-0", when)


@pytest.mark.parametrize("option", ["--at", "--since", "--until"])
def test_a_cli_time_utc_cannot_hold_is_a_usage_error_naming_the_option(
    tmp_path: Path, option: str
) -> None:
    """The command line reads times as the API does: ``audit show --at`` agrees with
    ``state_at`` instead of printing a timeline for a time the API refuses."""
    url, _, _ = _sqlite_history(tmp_path)
    command = ["audit", "show", "case-0"] if option == "--at" else ["audit", "export"]
    result = CliRunner().invoke(main, [*command, "--store", url, option, BEYOND.isoformat()])
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "outside the times UTC can hold" in result.output


# -- exports read offline ----------------------------------------------------------------


def _export(n_cases: int = 2) -> list[str]:
    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock, n_cases=n_cases)
    out = io.StringIO()
    audit.export_jsonl(store, out)
    return out.getvalue().splitlines()


def test_an_export_with_times_not_in_utc_does_not_verify() -> None:
    """Every event re-hashed consistently with its time written without a zone (or at
    another offset): docs/audit.md hashes ``at`` as UTC ``+00:00``, so an auditor's own
    check would fail these hashes; verify-file must not call the file sound."""
    for shift in (lambda at: at.replace(tzinfo=None),
                  lambda at: at.astimezone(timezone(timedelta(hours=-5)))):  # fmt: skip
        lines, prev = [], GENESIS
        for line in _export(n_cases=1):
            obj = json.loads(line)
            if "format" in obj or "personal" in obj or "end" in obj:
                lines.append(line)
                continue
            e = event_from_json(obj)
            forged = make_event(e.case_id, e.seq, e.type, shift(e.at), e.actor, e.data,
                                e.policy_version, prev)  # fmt: skip
            prev = forged.hash
            lines.append(json.dumps(forged.to_json()))
        not_utc = r"line \d+ is not an event: at .* is not a UTC time"
        with pytest.raises(AuditFailure, match=not_utc):
            audit.verify_export(lines)


def test_exports_as_files_mangle_them() -> None:
    """What verify-file says of the usual accidents to an export file."""
    lines = _export()
    assert audit.verify_export(lines) == []
    # CRLF line endings and an extra blank line change nothing.
    assert audit.verify_export([line + "\r\n" for line in lines] + ["\r\n", ""]) == []
    assert audit.verify_export([*lines[:4], "", *lines[4:]]) == []
    # The last line cut: refused, naming the line.
    with pytest.raises(AuditFailure, match=f"line {len(lines)} is not JSON"):
        audit.verify_export([*lines[:-1], lines[-1][:40]])
    # No header: refused.
    with pytest.raises(AuditFailure, match="not a complaintflow export"):
        audit.verify_export(lines[1:])
    # A duplicated line: located.
    dup = [*lines[:6], lines[5], *lines[6:]]
    assert "case-0" in {f.case_id for f in audit.verify_export(dup)}
    # Two cases' events interleaved: located.
    first = next(n for n, line in enumerate(lines) if '"case_id": "case-1"' in line and
             '"personal"' not in line)  # fmt: skip
    mixed = [*lines[:5], lines[first], *lines[5:first], *lines[first + 1 :]]
    assert audit.verify_export(mixed) != []
