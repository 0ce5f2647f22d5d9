"""Tampering is detected and located; state_at replays history; exports verify offline."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from adapters.sql import SqlStore
from tests.conftest import PATH, START
from tests.stores import SQL_KINDS, sql_tables, sqlite_url
from tests.test_properties import good_inputs
from workflow import Case, Engine, ManualClock, Money, Remedy, StepRefused, allowed_steps, audit
from workflow.cli import main
from workflow.domain import evolve
from workflow.errors import AuditFailure
from workflow.personal import ERASED


def history(engine: Engine, clock: ManualClock, n_cases: int = 2) -> list[str]:
    ids = []
    for i in range(n_cases):
        cid = engine.open_case(
            actor="agent:a", customer={"id": f"c{i}", "name": "Ann"}, channel="email",
            subject="broken", case_id=f"case-{i}",
        ).id  # fmt: skip
        for step, inputs in PATH[:6]:
            clock.advance(minutes=30)
            actor = "customer:c" if step == "accept_remedy" else "agent:a"
            if step == "accept_remedy":
                inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
            engine.step(cid, step, actor=actor, **inputs)
        ids.append(cid)
    return ids


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlStore, str, str]]:
    with sql_tables(request.param, tmp_path) as tables:
        yield tables


def tamper(url: str, sql_text: str, **params: Any) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql_text, params if params else ())
    engine.dispose()


def located(findings: list[audit.Finding]) -> set[tuple[str, int | None]]:
    return {(f.case_id, f.seq) for f in findings}


def setup(sql: tuple[SqlStore, str, str]) -> tuple[SqlStore, str, str]:
    store, url, prefix = sql
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    assert audit.verify_store(store) == []
    return store, url, prefix


def param(url: str) -> str:
    return "?" if url.startswith("sqlite") else "%s"


def test_an_untouched_store_verifies_clean(sql: tuple[SqlStore, str, str]) -> None:
    store, _, _ = setup(sql)
    assert audit.verify_store(store) == []


def test_one_byte_changed_in_an_events_data_is_located(sql: tuple[SqlStore, str, str]) -> None:
    store, url, p = setup(sql)
    tamper(url, f"UPDATE {p}events SET data = REPLACE(data, 'vase', 'vasE') "
                f"WHERE case_id = 'case-1' AND seq = 3")  # fmt: skip
    findings = audit.verify_store(store)
    assert ("case-1", 3) in located(findings)
    assert any("does not match its hash" in f.problem for f in findings)
    assert {f.case_id for f in findings} == {"case-1"}


def test_a_deleted_event_is_located(sql: tuple[SqlStore, str, str]) -> None:
    store, url, p = setup(sql)
    tamper(url, f"DELETE FROM {p}events WHERE case_id = 'case-0' AND seq = 4")
    assert ("case-0", 5) in located(audit.verify_store(store))


def test_two_swapped_events_are_located(sql: tuple[SqlStore, str, str]) -> None:
    store, url, p = setup(sql)
    tamper(url, f"UPDATE {p}events SET seq = 99 WHERE case_id = 'case-0' AND seq = 3")
    tamper(url, f"UPDATE {p}events SET seq = 3 WHERE case_id = 'case-0' AND seq = 4")
    tamper(url, f"UPDATE {p}events SET seq = 4 WHERE case_id = 'case-0' AND seq = 99")
    where = located(audit.verify_store(store))
    assert {("case-0", 3), ("case-0", 4)} <= where


def test_a_forged_inserted_event_is_located(sql: tuple[SqlStore, str, str]) -> None:
    store, url, p = setup(sql)
    last = store.events("case-1")[-1]
    forged = {
        "actor": "agent:mallory", "at": last.at + timedelta(minutes=1), "case_id": "case-1",
        "data": json.dumps({"text": "refund approved"}), "policy_version": last.policy_version,
        "prev_hash": last.hash, "seq": last.seq + 1, "type": "add_note", "hash": "f" * 64,
    }  # fmt: skip
    columns = ", ".join(forged)
    marks = ", ".join(param(url) for _ in forged)
    values = tuple(v.replace(tzinfo=None) if isinstance(v, datetime) and url.startswith("sqlite")
                   else v for v in forged.values())  # fmt: skip
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"INSERT INTO {p}events ({columns}) VALUES ({marks})", values)
    engine.dispose()
    findings = audit.verify_store(store)
    assert ("case-1", last.seq + 1) in located(findings)


def test_an_edited_snapshot_is_located(sql: tuple[SqlStore, str, str]) -> None:
    store, url, p = setup(sql)
    tamper(url, f"UPDATE {p}cases SET snapshot = REPLACE(snapshot, '\"transfers\":0', "
                f"'\"transfers\":3') WHERE case_id = 'case-0'")  # fmt: skip
    findings = audit.verify_store(store)
    assert located(findings) == {("case-0", None)}
    assert "snapshot differs" in findings[0].problem


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        # A key the case does not have, holding anything at all.
        ('"transfers":0', '"transfers":0,"note":"paid in cash"', "note: Unexpected keyword"),
        # A field left at its default, renamed: read back, the case looked the same.
        ('"escalation":null', '"escalated":null', "escalated: Unexpected keyword"),
        # A key given twice: readers differ on which value counts.
        ('"transfers":0', '"transfers":5,"transfers":0', "'transfers' appears twice"),
    ],
    ids=["added", "renamed", "twice"],
)
def test_a_snapshot_with_a_key_a_case_does_not_have_is_located(
    sql: tuple[SqlStore, str, str], old: str, new: str, problem: str
) -> None:
    # Read back leniently, each of these snapshots gives the same case as a replay.
    store, url, p = setup(sql)
    tamper(url, f"UPDATE {p}cases SET snapshot = REPLACE(snapshot, '{old}', '{new}') "
                f"WHERE case_id = 'case-0'")  # fmt: skip
    assert new in _snapshot_of(url, p, "case-0")
    fresh = SqlStore(url, prefix=p)
    # The whole store, and the case alone (its snapshot as stored, not as ``load`` reads it).
    for findings in (audit.verify_store(store), audit.verify_store(fresh, "case-0")):
        assert [(f.case_id, f.seq) for f in findings] == [("case-0", None)]
        assert findings[0].problem.startswith("the stored snapshot is unreadable: ")
        assert problem in findings[0].problem
    assert audit.verify_store(fresh, "case-1") == []
    fresh.close()


def _snapshot_of(url: str, prefix: str, case_id: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        text = conn.exec_driver_sql(
            f"SELECT snapshot FROM {prefix}cases WHERE case_id = '{case_id}'"
        ).scalar_one()
    engine.dispose()
    return str(text)


def test_an_edited_personal_value_is_located(sql: tuple[SqlStore, str, str]) -> None:
    # The customer's name sits in the snapshot only (events hold its salted reference):
    # changing it there, even consistently, no longer gives the reference.
    store, url, p = setup(sql)
    tamper(url, f"UPDATE {p}cases SET snapshot = REPLACE(snapshot, '\"Ann\"', '\"Bob\"') "
                f"WHERE case_id = 'case-0'")  # fmt: skip
    findings = audit.verify_store(store)
    assert located(findings) == {("case-0", None)}
    assert [f.problem for f in findings] == [
        f"personal value {store.load('case-0').personal[0].ref} was altered (it no longer "
        "gives its reference)"
    ]


def test_a_saved_digest_proves_nothing_was_rewritten(sql: tuple[SqlStore, str, str]) -> None:
    store, url, p = setup(sql)
    heads = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    assert audit.check_digest(store, heads) == []
    # Rewrite a whole case consistently (new hashes all the way): the chain verifies,
    # the saved digest does not.
    # (Hashes differ from run to run: personal values are salted afresh.)
    tamper(url, f"UPDATE {p}events SET hash = (CASE WHEN SUBSTR(hash, 1, 1) = 'a' THEN 'b' "
                f"ELSE 'a' END) || SUBSTR(hash, 2) WHERE case_id = 'case-1'")  # fmt: skip
    assert ("case-1", heads["case-1"][0]) in located(audit.check_digest(store, heads))


def test_the_store_digest_changes_with_any_case() -> None:
    from adapters.memory import MemoryStore

    store = MemoryStore()
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    history(engine, clock)
    before = audit.store_digest(store)
    engine.add_note("case-0", actor="agent:a", text="later")
    assert audit.store_digest(store) != before
    assert before.startswith("sha256:")


def test_an_export_verifies_offline_and_a_tampered_export_does_not() -> None:
    from adapters.memory import MemoryStore

    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    out = io.StringIO()
    assert audit.export_jsonl(store, out) == 14
    text = out.getvalue()
    assert audit.verify_export(text.splitlines()) == []
    forged = text.replace('"Refund 40 EUR"', '"Refund 400 EUR"')
    findings = audit.verify_export(forged.splitlines())
    assert {f.case_id for f in findings} == {"case-0", "case-1"}
    assert all("does not match its hash" in f.problem for f in findings)


def test_an_export_line_with_a_key_twice_is_refused() -> None:
    # Python reads the last of two equal keys, other readers the first: a line with a
    # forged first value and the true last one must not verify as the true one.
    from adapters.memory import MemoryStore

    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock, n_cases=1)
    out = io.StringIO()
    audit.export_jsonl(store, out)
    text = out.getvalue()
    assert audit.verify_export(text.splitlines()) == []
    forged = text.replace('"promise": "Refund 40 EUR"',
                          '"promise": "Refund 400 EUR", "promise": "Refund 40 EUR"')  # fmt: skip
    assert forged != text
    lines = forged.splitlines()
    number = next(n for n, line in enumerate(lines, start=1) if "Refund 400 EUR" in line)
    with pytest.raises(AuditFailure, match=f"line {number} is not JSON: the key 'promise' "
                                           "appears twice in one object"):  # fmt: skip
        audit.verify_export(lines)


def test_state_at_gives_the_case_as_it_stood(engine: Engine, clock: ManualClock,
                                             case_in: Callable[[str], str]) -> None:  # fmt: skip
    cid = case_in("recorded")
    then = clock.now()
    clock.advance(hours=1)
    engine.apologise(cid, actor="agent:a", message="sorry")
    assert engine.state_at(cid, then).state == "recorded"
    assert engine.state_at(cid, clock.now()) == engine.get(cid)
    with pytest.raises(ValueError, match="naive"):
        engine.state_at(cid, datetime(2026, 11, 2))  # noqa: DTZ001


#: Steps to try: mostly the next main-path step (so walks get far: promises, closing,
#: reopening), another allowed step (a side path), a withdrawal, a policy migration, an
#: erasure of the customer; each after a wait that is often none (several events at one
#: instant) and maybe a sweep of the SLA deadlines first.
long_walks = st.lists(
    st.tuples(
        st.sampled_from(
            ("next",) * 8 + (1, 3, 4, 5, 6, 7, 8, "withdraw", "migrate_policy", "erase")
        ),
        st.integers(0, 9),  # variant: which actor, which engine, which amount
        st.one_of(st.just(0), st.integers(0, 60 * 30)),  # minutes to wait first
        st.booleans(),  # whether the SLA sweeper runs first
    ),
    min_size=30,
    max_size=100,
)


#: Who takes a step that not any agent may take.
_ACTORS = {
    "accept_remedy": "customer:c",
    "decline_remedy": "customer:c",
    "record_feedback": "customer:c",
    "approve_offer": "team-lead:d",
    "refuse_offer": "team-lead:d",
}


def _side(allowed: tuple[str, ...], pick: int) -> str:
    """One of the steps ``allowed`` other than withdrawing (tried on its own, rarely)."""
    steps = [step for step in allowed if step != "withdraw"]
    return steps[pick % len(steps)]


def _erased(case: Case) -> Case:
    """``case`` with its personal values erased, as a replay reads it once they are."""
    customer = case.customer
    return evolve(
        case,
        customer=evolve(
            customer,
            name=ERASED,
            contact=None if customer.contact is None else ERASED,
            account=None if customer.account is None else ERASED,
        ),
        personal=(),
    )


@settings(max_examples=100, deadline=None)
@given(long_walks, st.integers(-12 * 60, 14 * 60))
def test_state_at_matches_the_snapshot_after_every_step(
    plan: list[tuple[str | int, int, int, bool]], offset_minutes: int
) -> None:
    """Over long random cases under SLA targets (sweeps, late steps with their warnings
    and breaches chained at one instant, escalations), migrations to another policy,
    erasures, reopenings and withdrawals: ``state_at`` each instant something happened
    is the case as the last thing at that instant left it (personal values erased since
    read as erased), the same in any time zone, and just before it the case as the
    instant before left it."""
    from adapters.memory import MemoryStore
    from tests.test_properties import NEXT_POLICY, SLA_POLICY, needs_approval_above_50

    clock = ManualClock(START)
    store = MemoryStore()
    timed = Engine(store, clock=clock, policy=SLA_POLICY, decide=needs_approval_above_50)
    moved = Engine(store, clock=clock, policy=NEXT_POLICY, previous_policies=[SLA_POLICY])
    cid = timed.open_case(actor="agent:a", customer={"id": "c", "name": "N"},
                          channel="chat", subject="s").id  # fmt: skip
    at: dict[datetime, Case] = {clock.now(): store.load(cid)}  # the last case at each instant
    for pick, variant, wait, sweep in plan:
        clock.advance(minutes=wait)
        engine = moved if variant >= 8 else timed
        if sweep and engine.tick():
            case = store.load(cid)
            at[case.updated_at] = case
        if pick == "erase":
            for case in engine.erase_customer("c", actor="dpo:kim", reason="DSR-1"):
                at[case.updated_at] = case
            continue
        case = store.load(cid)
        allowed = allowed_steps(case.state)
        step = (
            ("record_feedback" if case.state == "feedback_requested" and not case.feedback
             else allowed[0]) if pick == "next"
            else pick if isinstance(pick, str)
            else _side(allowed, pick)
        )  # fmt: skip
        inputs = good_inputs(step, clock.now(), variant)
        if step == "migrate_policy":
            inputs = {"reason": "policy 2 replaces 1"}
        if step == "offer_remedy" and case.policy_version != SLA_POLICY.stamp:
            inputs = {"options": [Remedy(kind="refund", amount=Money.of("40", "USD"))]}
        actor = _ACTORS.get(step, ("agent:a", "agent:b")[variant % 2])
        try:
            case = engine.step(cid, step, actor=actor, **inputs)
        except StepRefused:
            continue
        at[case.updated_at] = case
    history = store.events(cid)
    erasures = [e.seq for e in history if e.type == "erase_personal_data"]
    zone = timezone(timedelta(minutes=offset_minutes))
    instants = sorted(at)
    for i, when in enumerate(instants):
        snapshot = at[when]
        expected = _erased(snapshot) if any(s > snapshot.version for s in erasures) else snapshot
        assert timed.state_at(cid, when) == expected
        assert moved.state_at(cid, when.astimezone(zone)) == expected
        just_before = when - timedelta(microseconds=1)
        if i == 0:
            with pytest.raises(AuditFailure, match="did not exist"):
                timed.state_at(cid, just_before)
        else:
            assert timed.state_at(cid, just_before).version == at[instants[i - 1]].version
    types = [e.type for e in history]
    times = [e.at for e in history]
    event(f"events: {len(history) // 20 * 20}+")
    event(f"closed: {'close' in types}")
    event(f"reopened: {'reopen' in types}")
    event(f"withdrawn: {'withdraw' in types}")
    event(f"escalated: {'escalate' in types}")
    event(f"sla breach: {'sla_breached' in types}")
    event(f"migrated: {'migrate_policy' in types}")
    event(f"erased: {bool(erasures)}")
    event(f"events sharing an instant: {len(set(times)) < len(times)}")


def test_the_audit_commands(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    history(Engine(store, clock=clock), clock)
    store.close()
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "verify", "--store", url])
    assert ok.exit_code == 0, ok.output
    assert "verified, no problems" in ok.output
    saved = tmp_path / "digest.json"
    saved.write_text(runner.invoke(main, ["audit", "digest", "--store", url]).output)
    exported = tmp_path / "events.jsonl"
    runner.invoke(main, ["audit", "export", "--store", url, "-o", str(exported)])
    assert runner.invoke(main, ["audit", "verify-file", str(exported)]).exit_code == 0
    shown = runner.invoke(main, ["audit", "show", "case-0", "--store", url,
                                 "--at", "2026-11-02T10:05:00+00:00"])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip().endswith("state: listening, version 3, priority normal")
    tamper(url, "UPDATE cf_events SET actor = 'agent:z' WHERE case_id = 'case-0' AND seq = 2")
    bad = runner.invoke(main, ["audit", "verify", "--store", url, "--digest", str(saved)])
    assert bad.exit_code == 1
    assert "TAMPERED  case case-0 event 2: content does not match its hash" in bad.output


def test_csv_export_has_one_row_per_event_and_a_time_window() -> None:
    import csv

    from adapters.memory import MemoryStore

    store = MemoryStore()
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    out = io.StringIO()
    assert audit.export_csv(store, out) == 14
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["type"] for r in rows[:2]] == ["open", "acknowledge"]
    assert json.loads(rows[2]["data"]) == {"note": PATH[1][1]["note"]}
    window = io.StringIO()
    since, until = START + timedelta(minutes=30), START + timedelta(minutes=90)
    assert audit.export_csv(store, window, ["case-0"], since=since, until=until) == 2


def test_csv_export_cells_a_spreadsheet_would_run_as_formulas_are_neutralised() -> None:
    import csv

    from adapters.memory import MemoryStore

    store = MemoryStore()
    engine = Engine(store, clock=ManualClock(START))
    engine.open_case(
        actor="agent:a",
        customer={"id": "c", "name": "Ann"},
        channel="email",
        subject='=HYPERLINK("http://evil")',
        case_id="=cmd|' /C calc'!A0",
    )
    out = io.StringIO()
    audit.export_csv(store, out)
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["case_id"] == "'=cmd|' /C calc'!A0"
    assert row["data"].startswith("{")  # JSON text: never a formula, left as it is
    assert json.loads(row["data"])["subject"] == '=HYPERLINK("http://evil")'


def test_sqlite_reads_stored_histories_below_core_as_core_reads_them(tmp_path: Path) -> None:
    # The whole-store read on SQLite runs on the DBAPI connection: the same histories as
    # through Core, odd rows included (events without a case before and after the
    # others, a case without events, ``at`` in other forms, data that is not JSON).
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock, n_cases=3)
    columns = "seq, type, at, actor, data, policy_version, prev_hash, hash"
    for orphan in ("a-orphan", "z-orphan"):
        copy = f"SELECT '{orphan}', {columns} FROM cf_events WHERE case_id = 'case-0'"
        tamper(url, f"INSERT INTO cf_events (case_id, {columns}) {copy}")
    tamper(url, "INSERT INTO cf_cases SELECT 'case-9', version, state, customer_id, channel, "
                "category, priority, policy_version, opened_at, updated_at, snapshot, "
                "assignee, escalated_to FROM cf_cases WHERE case_id = 'case-2'")  # fmt: skip
    tamper(url, "UPDATE cf_events SET at = '2026-11-02T09:30:00+00:00' "
                "WHERE case_id = 'case-1' AND seq = 2")  # fmt: skip
    tamper(url, "UPDATE cf_events SET at = 12345 WHERE case_id = 'case-1' AND seq = 3")
    tamper(url, "UPDATE cf_events SET data = 'not json' WHERE case_id = 'case-2' AND seq = 2")
    assert store._hot is not None
    below = list(store.stored_histories())
    core = SqlStore(url)
    core._hot = None
    assert list(core.stored_histories()) == below
    assert [h.case_id for h in below] == ["a-orphan", "case-0", "case-1", "case-2", "case-9",
                                          "z-orphan"]  # fmt: skip
    assert below[1].events[0][3] == store.events("case-0")[0].at.isoformat(timespec="microseconds")
    findings = audit.verify_store(store)
    assert findings == audit.verify_store(core)
    assert located(findings) >= {("a-orphan", None), ("case-1", 3), ("case-2", 2),
                                 ("case-9", None), ("z-orphan", None)}  # fmt: skip
    core.close()
    store.close()


@pytest.mark.parametrize(
    "text",
    ['{"a":[1,2.5,"x"],"b":null}', "{}", ' {"a":1}', '{"a":1} ', '{"a":1}x', "", "nope",
     '{"a":', "[1]", '"text"', "1e400", '{"a":NaN}', '{"a":"\\ud800"}'],
)  # fmt: skip
def test_stored_data_is_read_as_json_loads_reads_it(text: str) -> None:
    try:
        expected: Any = json.loads(text)
    except ValueError as exc:
        error = exc
    else:
        assert audit._json_value(text) == expected
        assert type(audit._json_value(text)) is type(expected)
        return
    with pytest.raises(type(error), match=f"^{re.escape(str(error))}$"):
        audit._json_value(text)


def test_data_that_is_not_text_is_read_or_refused_as_json_loads_does() -> None:
    assert audit._json_value(b'{"a":1}') == json.loads(b'{"a":1}')  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be str, bytes or bytearray"):
        audit._json_value(5)  # type: ignore[arg-type]


def test_a_snapshot_in_another_json_form_verifies_and_its_edits_are_found(tmp_path: Path) -> None:
    # Snapshots not in case_to_json's form (spaces, keys in another order: another
    # serialiser) skip the fast path, are compared as cases, and still verify.
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    for cid, indent in (("case-0", 1), ("case-1", None)):
        snapshot = json.loads(_snapshot(url, cid))
        reordered = dict(reversed(list(snapshot.items())))  # "personal" first
        _set_snapshot(url, cid, json.dumps(reordered, indent=indent))
    assert audit.verify_store(store) == []
    fresh = SqlStore(url)
    assert audit.verify_store(fresh) == []
    # A personal value edited in a reordered snapshot is still found, and only that.
    edited = _snapshot(url, "case-1").replace('"Ann"', '"Bob"')
    _set_snapshot(url, "case-1", edited)
    findings = audit.verify_store(fresh)
    assert [(f.case_id, f.seq) for f in findings] == [("case-1", None)]
    assert "was altered" in findings[0].problem
    fresh.close()
    store.close()


def test_a_sound_extra_personal_value_in_a_snapshot_is_a_difference(tmp_path: Path) -> None:
    from workflow.personal import seal

    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock, n_cases=1)
    assert audit._stored_personal(_snapshot(url, "case-0")) == list(store.load("case-0").personal)
    snapshot = json.loads(_snapshot(url, "case-0"))
    extra = seal("someone else")
    snapshot["personal"].append({"ref": extra.ref, "salt": extra.salt, "value": extra.value})
    text = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False)
    _set_snapshot(url, "case-0", text)
    findings = audit.verify_store(SqlStore(url))
    assert [(f.case_id, f.seq, f.problem) for f in findings] == [
        ("case-0", None, "the stored snapshot differs from a replay of its events")
    ]
    store.close()


def _snapshot(url: str, case_id: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        text = conn.exec_driver_sql(
            "SELECT snapshot FROM cf_cases WHERE case_id = ?", (case_id,)
        ).scalar_one()
    engine.dispose()
    return str(text)


def _set_snapshot(url: str, case_id: str, text: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE cf_cases SET snapshot = ? WHERE case_id = ?", (text, case_id))
    engine.dispose()


def test_a_snapshot_stored_as_bytes_is_located_not_a_crash(tmp_path: Path) -> None:
    # SQLite keeps whatever type a row is given: a snapshot turned into a BLOB (the same
    # bytes) is not the text the store wrote. Verify names the case, as it does for event
    # columns that are not text, instead of failing with a TypeError; both read paths.
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    history(Engine(store, clock=clock), clock)
    tamper(url, "UPDATE cf_cases SET snapshot = CAST(snapshot AS BLOB) WHERE case_id = 'case-0'")
    core = SqlStore(url)
    core._hot = None
    for reader in (store, core):
        findings = audit.verify_store(reader)
        assert [(f.case_id, f.seq) for f in findings] == [("case-0", None)]
        assert findings[0].problem == "the stored snapshot is unreadable: it is not text"
    core.close()
    store.close()
