"""Personal data: held apart from the chain, erased on request with every chain still
verifying; retention purges that leave tombstones a saved digest still accepts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from adapters.urls import shown_url
from policies.loader import parse_policy
from tests.conftest import PATH, START
from tests.stores import drop_tables, fresh_prefix, postgres_url, sqlite_url
from workflow import ERASED, Engine, ManualClock, MissingInformation, Store, audit, replay, vault_of
from workflow.cli import main
from workflow.personal import Personal, is_reference, reference, seal, seal_data, unseal_data

NAME = "Jane Roe-Personal"
CONTACT = "jane.roe.personal@example.com"
LATER_CONTACT = "+44 7700 900123 personal"
ACCOUNT = "ACC-PERSONAL-99"
SECRETS = (NAME, CONTACT, LATER_CONTACT, ACCOUNT)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    if request.param == "memory":
        yield MemoryStore(), ""
        return
    if request.param == "sqlite":
        url, prefix = sqlite_url(tmp_path), "cf_"
    else:
        url, prefix = postgres_url(), fresh_prefix()
    store = SqlStore(url, prefix=prefix, create=True)
    yield store, url
    store.close()
    if request.param == "postgres":
        drop_tables(url, prefix)


def drive(engine: Engine, clock: ManualClock, cid: str, steps: int, contact: str) -> None:
    for step, inputs in PATH[:steps]:
        clock.advance(minutes=20)
        if step == "record":
            inputs = {**inputs, "contact": contact}
        if step == "accept_remedy":
            inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
        actor = "customer:c" if step == "accept_remedy" else "agent:a"
        engine.step(cid, step, actor=actor, **inputs)


def two_customers(engine: Engine, clock: ManualClock) -> tuple[str, str, str]:
    """Jane: one closed case, one open case (a later contact recorded); Bob: one case."""
    jane = {"id": "cust-jane", "name": NAME, "contact": CONTACT, "account": ACCOUNT}
    closed = engine.open_case(actor="agent:a", customer=jane, channel="email",
                              subject="broken vase", case_id="jane-1").id  # fmt: skip
    drive(engine, clock, closed, len(PATH), CONTACT)
    open_ = engine.open_case(actor="agent:a", customer=jane, channel="phone",
                             subject="late refund", case_id="jane-2").id  # fmt: skip
    drive(engine, clock, open_, 3, LATER_CONTACT)
    other = engine.open_case(actor="agent:a", customer={"id": "cust-bob", "name": "Bob Kept"},
                             channel="email", case_id="bob-1").id  # fmt: skip
    return closed, open_, other


def everything_stored(store: Store, url: str, tmp_path: Path) -> str:
    """All the text the store holds: raw database files for SQLite, every row of every
    table for PostgreSQL, every record for the memory store."""
    if isinstance(store, MemoryStore):
        parts = [repr(store.load(cid)) + repr(store.events(cid)) for cid in store.case_ids()]
        return "".join(parts)
    if url.startswith("sqlite"):
        return "".join(
            path.read_bytes().decode("latin-1")
            for path in tmp_path.iterdir()
            if path.name.startswith("cases.db")
        )
    assert isinstance(store, SqlStore)
    engine = create_engine(url)
    out = []
    with engine.connect() as conn:
        for table in store.tables.metadata.sorted_tables:
            out.extend(repr(tuple(row)) for row in conn.execute(table.select()))
            out.append(postgres_pages(conn, table.name))
    engine.dispose()
    return "".join(out)


def postgres_pages(conn: Any, table: str) -> str:
    """The raw bytes of every page of ``table`` and of its TOAST table, as the data files
    hold them (free space included: a dead row's bytes stay there until the page is
    rewritten), read with the ``pageinspect`` extension (a superuser's)."""
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pageinspect")
    except Exception:  # another test run created it at the same moment
        pass
    relations = [table]
    toast = conn.execute(
        text("SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = :t"), {"t": table}
    ).scalar()
    if toast and toast != "-":
        relations.append(toast)
    pages = []
    for relation in relations:
        blocks = conn.execute(
            text("SELECT pg_relation_size(CAST(:r AS regclass)) / 8192"), {"r": relation}
        ).scalar()
        for block in range(blocks):
            page = conn.execute(text("SELECT get_raw_page(:r, :b)"), {"r": relation, "b": block})
            pages.append(bytes(page.scalar()).decode("latin-1"))
    return "".join(pages)


def test_events_never_hold_personal_values_only_salted_references() -> None:
    store, clock = MemoryStore(), ManualClock(START)
    engine = Engine(store, clock=clock)
    closed, open_, _ = two_customers(engine, clock)
    for cid in (closed, open_):
        case = engine.get(cid)
        raw = json.dumps([e.to_json() for e in engine.history(cid)])
        assert not any(secret in raw for secret in SECRETS)
        opened = engine.history(cid)[0].data["customer"]
        assert all(is_reference(opened[k]) for k in ("name", "contact", "account"))
        by_ref = vault_of(case.personal)
        assert by_ref[opened["name"]].value == NAME
        assert all(entry.is_sound() for entry in case.personal)
    # The same name in two cases gets two references (fresh salts): no linking by ref.
    first = engine.history(closed)[0].data["customer"]["name"]
    second = engine.history(open_)[0].data["customer"]["name"]
    assert first != second
    assert engine.get(open_).customer.contact == LATER_CONTACT


def test_erasure_leaves_no_personal_value_anywhere_and_every_chain_verifies(
    any_store: tuple[Store, str], tmp_path: Path
) -> None:
    store, url = any_store
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    closed, open_, other = two_customers(engine, clock)
    digest_before = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    before = io.StringIO()
    audit.export_jsonl(store, before)
    assert NAME in before.getvalue()  # the export holds personal values until erasure
    assert NAME in everything_stored(store, url, tmp_path)

    clock.advance(days=1)
    erased = engine.erase_customer("cust-jane", actor="dpo:kim", reason="request DSR-7")

    assert {case.id for case in erased} == {closed, open_}
    for cid in (closed, open_):
        case = engine.get(cid)
        assert (case.customer.name, case.customer.contact) == (ERASED, ERASED)
        assert case.customer.account == ERASED
        assert case.personal == ()
        last = engine.history(cid)[-1]
        assert (last.type, last.actor) == ("erase_personal_data", "dpo:kim")
        assert last.data["reason"] == "request DSR-7"
        # As it stood before the erasure: the values are gone from history too.
        opened = case.opened_at + timedelta(minutes=1)
        assert engine.state_at(cid, opened).customer.name == ERASED
    assert engine.get(closed).state == "closed"  # erasure works on closed cases
    # name, contact, account at opening + the contact given when recording
    assert engine.history(closed)[-1].data["values_erased"] == 4
    assert engine.history(open_)[-1].data["values_erased"] == 4

    assert engine.verify() == []
    assert audit.check_digest(store, digest_before) == []
    stored = everything_stored(store, url, tmp_path)
    assert not [secret for secret in SECRETS if secret in stored]
    assert "Bob Kept" in stored  # other customers are untouched
    assert engine.get(other).customer.name == "Bob Kept"
    for writer in (audit.export_jsonl, audit.export_csv):
        out = io.StringIO()
        writer(store, out)
        assert not [secret for secret in SECRETS if secret in out.getvalue()]
        assert "Bob Kept" in out.getvalue()

    # The open case carries on, and a second erasure finds nothing left to erase.
    clock.advance(minutes=5)
    engine.step(open_, "apologise", actor="agent:a", message="Sorry, and thank you.")
    assert replay(engine.history(open_), vault_of(engine.get(open_).personal)) == engine.get(open_)
    assert engine.erase_customer("cust-jane", actor="dpo:kim", reason="again") == []
    assert engine.verify() == []


def test_an_erasure_needs_a_reason_and_a_customer() -> None:
    from workflow import ErasureRefused, InvalidErasure

    engine = Engine(MemoryStore(), clock=ManualClock(START))
    with pytest.raises(InvalidErasure, match="needs a reason") as refused:
        engine.erase_customer("cust", actor="dpo:kim", reason="  ")
    assert isinstance(refused.value, ErasureRefused)
    assert isinstance(refused.value, ValueError)
    with pytest.raises(InvalidErasure, match="customer_id"):
        engine.erase_customer("", actor="dpo:kim", reason="request")
    with pytest.raises(InvalidErasure, match="reason holds a lone surrogate U"):
        engine.erase_customer("cust", actor="dpo:kim", reason="DSR \udc80")
    assert engine.erase_customer("nobody", actor="dpo:kim", reason="request") == []


def test_an_erasure_step_cannot_be_taken_by_hand(engine: Engine) -> None:
    from workflow import StepNotAllowed

    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web").id
    with pytest.raises(StepNotAllowed, match="no step called"):
        engine.step(cid, "erase_personal_data", actor="agent:a", reason="x")
    assert "erase_personal_data" not in engine.allowed_steps(cid)


def test_exports_carry_personal_values_apart_and_verify_offline() -> None:
    store, clock = MemoryStore(), ManualClock(START)
    engine = Engine(store, clock=clock)
    two_customers(engine, clock)
    full = io.StringIO()
    audit.export_jsonl(store, full)
    lines = full.getvalue().splitlines()
    personal = [json.loads(line) for line in lines if '"personal"' in line[:12]]
    assert {p["personal"]["value"] for p in personal} >= {NAME, CONTACT, ACCOUNT}
    assert audit.verify_export(lines) == []

    # An edited personal value in the file no longer gives its reference.
    forged = [line.replace(NAME, "Someone Else") for line in lines]
    findings = audit.verify_export(forged)
    assert {f.case_id for f in findings} == {"jane-1", "jane-2"}
    assert all("was altered" in f.problem for f in findings)

    # A pseudonymised export has no values, still verifies, and reads as erased.
    bare = io.StringIO()
    audit.export_jsonl(store, bare, personal=False)
    assert NAME not in bare.getvalue()
    assert audit.verify_export(bare.getvalue().splitlines()) == []

    sheet = io.StringIO()
    audit.export_csv(store, sheet, ["jane-1"])
    assert NAME in sheet.getvalue()  # a spreadsheet shows the value, not its reference
    assert "personal:" not in sheet.getvalue()


@given(st.text(min_size=1, max_size=200))
def test_sealed_values_unseal_to_themselves_and_read_as_erased_without_the_vault(
    value: str,
) -> None:
    data = {"customer": {"id": "c", "name": value, "tier": "gold"}}
    sealed, entries = seal_data("open", data)
    assert data["customer"]["name"] == value  # the input is not changed
    (entry,) = entries
    assert sealed["customer"]["name"] == entry.ref == reference(entry.salt, value)
    assert unseal_data("open", sealed, vault_of(entries)) == (data, entries)
    assert unseal_data("open", sealed, {})[0]["customer"]["name"] == ERASED
    assert not Personal(entry.ref, entry.salt, value + "x").is_sound()


def legacy_case(store: Store, name: str = NAME) -> str:
    """A case as the code before personal values were held apart wrote it: the
    customer's name and contact as plain text in the ``open`` event."""
    from workflow.events import GENESIS, make_event

    data = {"customer": {"id": "cust-old", "name": name, "contact": CONTACT, "tier": "standard"},
            "channel": "email", "priority": "normal", "complainant_type": "unknown"}  # fmt: skip
    event = make_event("old-1", 1, "open", START, "agent:a", data, "p@sha256:x", GENESIS)
    store.append(replay([event]), [event], 0)
    return "old-1"


def test_events_written_before_references_replay_as_written_but_are_not_erased() -> None:
    from workflow import ErasureRefused
    from workflow.errors import AuditFailure

    store = MemoryStore()
    cid = legacy_case(store)
    engine = Engine(store, clock=ManualClock(START + timedelta(days=1)))
    case = engine.get(cid)
    assert (case.customer.name, case.customer.contact, case.personal) == (NAME, CONTACT, ())
    assert engine.replay(cid) == case
    assert engine.verify() == []
    # Its values are in the chained event itself: erasing them would rewrite history.
    with pytest.raises(ErasureRefused, match=r"old-1 were written before .* Nothing was erased"):
        engine.erase_customer("cust-old", actor="dpo:kim", reason="DSR-9")
    assert len(engine.history(cid)) == 1
    assert engine.get(cid).customer.name == NAME
    # Anything but text or a reference in a personal field does not replay.
    with pytest.raises(ValueError, match=r"customer\.name holds no reference"):
        unseal_data("open", {"customer": {"id": "c", "name": 42}}, {})
    event = engine.history(cid)[0]
    forged = type(event)(**{**event.to_json(), "data": {**event.data, "customer": {
        "id": "c", "name": 42}}})  # fmt: skip
    with pytest.raises(AuditFailure, match="holds no reference"):
        replay([forged])
    assert seal("x").ref != seal("x").ref
    for value in ("x", "Zoë Ünal", ""):
        made = seal(value)
        assert made == Personal(made.ref, made.salt, made.value)  # what validation builds
        assert made.value == value
        assert made.is_sound()
        assert len(bytes.fromhex(made.salt)) == 16


def test_an_export_in_the_earlier_format_still_verifies() -> None:
    store = MemoryStore()
    legacy_case(store)
    out = io.StringIO()
    audit.export_jsonl(store, out, personal=False)
    lines = out.getvalue().splitlines()[:-1]  # /1 had no end line
    lines[0] = json.dumps({"format": "complaintflow-events/1"})
    assert audit.verify_export(lines) == []
    assert NAME in "".join(lines)


def test_a_value_removed_without_a_recorded_erasure_is_found(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    engine = Engine(store, clock=ManualClock(START))
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": NAME},
                           channel="web").id  # fmt: skip
    case = engine.get(cid)
    ref = case.personal[0].ref
    # Edit the database as an erasure would, but with no erasure event.
    silent = replace_in_snapshot(case, name=ERASED)
    sql = create_engine(sqlite_url(tmp_path))
    with sql.begin() as conn:
        conn.execute(text("UPDATE cf_cases SET snapshot = :s WHERE case_id = :c"),
                     {"s": silent, "c": cid})  # fmt: skip
    sql.dispose()
    expected = [(cid, 1, f"personal value {ref} is missing and no erasure is recorded")]
    for findings in (engine.verify(), engine.verify(cid)):
        assert [(f.case_id, f.seq, f.problem) for f in findings] == expected
    exported = io.StringIO()
    audit.export_jsonl(store, exported)
    found = audit.verify_export(exported.getvalue().splitlines())
    assert [(f.case_id, f.problem) for f in found] == [(cid, expected[0][2])]
    store.close()


def replace_in_snapshot(case: Any, *, name: str) -> str:
    from workflow.domain import case_to_json, evolve

    erased = evolve(case, customer=evolve(case.customer, name=name), personal=())
    return case_to_json(erased).decode()


def test_malformed_event_data_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    store = SqlStore(sqlite_url(tmp_path), create=True)
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web",
                           subject="s").id  # fmt: skip
    drive(engine, clock, cid, 3, CONTACT)
    sql = create_engine(sqlite_url(tmp_path))
    with sql.begin() as conn:
        conn.execute(text("UPDATE cf_events SET data = REPLACE(data, '2026-11-01', "
                          "'2026-13-01') WHERE case_id = :c AND seq = 4"), {"c": cid})  # fmt: skip
    sql.dispose()
    for findings in (engine.verify(), engine.verify(cid)):
        assert (cid, 4) in {(f.case_id, f.seq) for f in findings}
        assert any("cannot be replayed" in f.problem for f in findings)
    store.close()


def test_a_scrub_kept_from_the_wal_by_a_reader_says_so_and_can_be_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import adapters.sql
    from workflow import StoreUnavailable

    monkeypatch.setattr(adapters.sql, "SCRUB_WAIT_MS", 50)
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    two_customers(engine, clock)
    reader = sqlite3.connect(tmp_path / "cases.db")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM cf_cases").fetchone()  # holds a read snapshot
    with pytest.raises(StoreUnavailable) as blocked:
        engine.erase_customer("cust-jane", actor="dpo:kim", reason="DSR-7")
    assert f"Run `complaintflow privacy scrub --store {url}` when" in str(blocked.value)
    assert engine.get("jane-1").customer.name == ERASED  # the erasure itself is committed
    reader.close()
    result = CliRunner().invoke(main, ["privacy", "scrub", "--store", url])
    assert result.exit_code == 0, result.output
    assert not [s for s in SECRETS if s in everything_stored(store, url, tmp_path)]
    store.close()


@pytest.mark.postgres
def test_a_postgresql_scrub_kept_from_a_table_by_a_reader_says_so_and_can_be_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.sql
    from workflow import StoreUnavailable

    monkeypatch.setattr(adapters.sql, "SCRUB_WAIT_MS", 50)
    url, prefix = postgres_url(), fresh_prefix()
    store = SqlStore(url, prefix=prefix, create=True)
    try:
        clock = ManualClock(START)
        engine = Engine(store, clock=clock)
        two_customers(engine, clock)
        other = create_engine(url)
        with other.connect() as reader:
            reader.execute(text(f"SELECT count(*) FROM {prefix}cases"))  # holds its table
            with pytest.raises(StoreUnavailable) as blocked:
                engine.erase_customer("cust-jane", actor="dpo:kim", reason="DSR-7")
        # The command to run again reaches these tables (without --prefix it would
        # scrub the default ones).
        command = f"complaintflow privacy scrub --store {shown_url(url)} --prefix {prefix}`"
        assert command in str(blocked.value)
        other.dispose()
        assert engine.get("jane-1").customer.name == ERASED  # the erasure is committed
        # Run again with the usual wait: 50 ms would also give up on any other session's
        # short transaction that happened to begin just before (another test run on the
        # same server, autovacuum's neighbours), which is not what this test is about.
        monkeypatch.setattr(adapters.sql, "SCRUB_WAIT_MS", 5000)
        store.scrub()
        assert not [s for s in SECRETS if s in everything_stored(store, url, tmp_path)]
    finally:
        store.close()
        drop_tables(url, prefix)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_driver_error_carries_no_personal_value_in_its_traceback(
    kind: str, tmp_path: Path
) -> None:
    """A write the database refuses (here the same case row written twice: a race the
    unique constraint settles) raises with the driver's error chained; the statement's
    parameters (the snapshot, with the customer's name, contact and salts) must not be
    in that text, which ends up in logs an erasure cannot reach."""
    import traceback

    from workflow import ConcurrencyConflict

    url, prefix = (sqlite_url(tmp_path), "cf_") if kind == "sqlite" else (
        postgres_url(), fresh_prefix())  # fmt: skip
    store = SqlStore(url, prefix=prefix, create=True)
    try:
        engine = Engine(store, clock=ManualClock(START))
        jane = {"id": "cust-jane", "name": NAME, "contact": CONTACT, "account": ACCOUNT}
        case = engine.open_case(actor="agent:a", customer=jane, channel="web", case_id="dup-1")
        with pytest.raises(ConcurrencyConflict) as raised:
            store.append(case, engine.history("dup-1"), 0)  # the open, a second time
        told = "".join(traceback.format_exception(raised.value))
        assert raised.value.__cause__ is not None  # the driver's error, chained
        assert not [secret for secret in SECRETS if secret in told]
    finally:
        store.close()
        if kind == "postgres":
            drop_tables(url, prefix)


def test_a_contact_longer_than_a_customer_record_holds_is_refused(engine: Engine) -> None:
    from workflow import InvalidStepData

    cid = engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="web",
                           subject="s").id  # fmt: skip
    engine.acknowledge(cid, actor="agent:a")
    engine.listen(cid, actor="agent:a", note="heard it all")
    with pytest.raises(InvalidStepData, match=r"contact.*longer than 500 characters"):
        engine.record(cid, actor="agent:a", category="delivery", contact="x" * 501,
                      occurred_on="2026-11-01", details="d")  # fmt: skip
    assert engine.get(cid).state == "listening"


# -- retention ---------------------------------------------------------------------------

RETENTION_POLICY = """
name: Short retention
version: "1"
currency: EUR
retention:
  years: 2
"""


def closed_cases(engine: Engine, clock: ManualClock) -> dict[str, str]:
    ids = {}
    for label in ("old", "recent", "open"):
        cid = engine.open_case(
            actor="agent:a", customer={"id": f"c-{label}", "name": "N"}, channel="email",
            subject="s", case_id=f"case-{label}",
        ).id  # fmt: skip
        drive(engine, clock, cid, len(PATH) if label != "open" else 2, CONTACT)
        ids[label] = cid
        clock.advance(days=400)  # each case opens 400 days after the one before
    return ids


def test_cases_past_their_retention_are_purged_leaving_tombstones(
    any_store: tuple[Store, str],
) -> None:
    store, _ = any_store
    clock = ManualClock(START)
    engine = Engine(
        store, policy=parse_policy(RETENTION_POLICY, file="retention.yaml"), clock=clock
    )
    ids = closed_cases(engine, clock)
    old_closed = engine.get(ids["old"]).closed_at
    recent_closed = engine.get(ids["recent"]).closed_at
    assert old_closed is not None
    assert recent_closed is not None
    saved = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    digest = audit.store_digest(store)
    now = old_closed.replace(year=old_closed.year + 2) + timedelta(minutes=1)
    assert recent_closed.replace(year=recent_closed.year + 2) > now

    planned = engine.purge_expired(actor="system:retention", now=now, dry_run=True)
    assert [t.case_id for t in planned] == [ids["old"]]
    assert set(store.case_ids()) == set(ids.values())  # a dry run deletes nothing

    assert clock.now() > now  # a purge is judged by a time that has come (decision 0060)
    done = engine.purge_expired(actor="system:retention", now=now)
    (tombstone,) = done
    assert tombstone.case_id == ids["old"]
    assert (tombstone.version, tombstone.closed_at) == (len(PATH) + 1, old_closed)
    assert tombstone.purged_by == "system:retention"
    assert "2 years" in tombstone.reason
    assert set(store.case_ids()) == {ids["recent"], ids["open"]}
    assert list(store.tombstones()) == [tombstone]
    from workflow import CaseNotFound

    with pytest.raises(CaseNotFound):
        store.events(ids["old"])
    with pytest.raises(CaseNotFound):
        store.load(ids["old"])
    assert store.pending_deadlines(ids["old"]) == []
    assert store.customer_cases("c-old") == []
    # Nothing earlier was rewritten: a digest saved before the purge still verifies,
    # and the store digest is the same (the tombstone keeps the case's head).
    assert audit.check_digest(store, saved) == []
    assert audit.store_digest(store) == digest
    assert engine.verify() == []
    assert engine.purge_expired(actor="system:retention", now=now) == []


def test_a_purged_case_leaves_nothing_of_its_content_in_the_database(
    any_store: tuple[Store, str], tmp_path: Path
) -> None:
    """A purge deletes the case's rows and scrubs: its personal values and its free text
    are gone from the database's files too, not only from its tables."""
    store, url = any_store
    clock = ManualClock(START)
    engine = Engine(store, policy=parse_policy(RETENTION_POLICY, file="r.yaml"), clock=clock)
    jane = {"id": "cust-jane", "name": NAME, "contact": CONTACT, "account": ACCOUNT}
    cid = engine.open_case(actor="agent:a", customer=jane, channel="email",
                           subject="purged subject text", case_id="jane-old").id  # fmt: skip
    drive(engine, clock, cid, len(PATH), LATER_CONTACT)
    engine.add_note(cid, actor="agent:a", text="a purged note about the vase")
    kept = engine.open_case(actor="agent:a", customer={"id": "cust-bob", "name": "Bob Kept"},
                            channel="email", case_id="bob-1").id  # fmt: skip
    clock.set(START + timedelta(days=3 * 366))
    done = engine.purge_expired(actor="system:retention")
    assert [t.case_id for t in done] == [cid]
    stored = everything_stored(store, url, tmp_path)
    gone = (*SECRETS, "purged subject text", "a purged note about the vase")
    assert not [text for text in gone if text in stored]
    assert "Bob Kept" in stored
    assert engine.get(kept).customer.name == "Bob Kept"
    assert engine.verify() == []


def test_a_forged_tombstone_does_not_satisfy_a_saved_digest() -> None:
    from dataclasses import replace

    store, clock = MemoryStore(), ManualClock(START)
    engine = Engine(store, policy=parse_policy(RETENTION_POLICY, file="r.yaml"), clock=clock)
    ids = closed_cases(engine, clock)
    saved = {cid: (seq, head) for cid, seq, head in audit.heads(store)}
    clock.set(START + timedelta(days=3650))
    engine.purge_expired(actor="system:retention")
    store._tombstones[0] = replace(store._tombstones[0], head_hash="f" * 64)
    findings = audit.check_digest(store, saved)
    assert [(f.case_id, f.problem) for f in findings] == [
        (
            ids["old"],
            "purged, but its tombstone differs from the digest: its head hash at seq "
            f"{saved[ids['old']][0]} is another (the chain was rewritten before the purge, or the "
            "tombstone edited)",
        )
    ]


def test_a_case_changed_before_its_purge_is_kept() -> None:
    store, clock = MemoryStore(), ManualClock(START)
    engine = Engine(store, policy=parse_policy(RETENTION_POLICY, file="r.yaml"), clock=clock)
    ids = closed_cases(engine, clock)
    stale = engine.purgeable(START + timedelta(days=3650))
    engine.add_note(ids["old"], actor="agent:a", text="a late note")
    from workflow import ConcurrencyConflict, Tombstone

    case = stale[0]
    assert case.closed_at is not None
    with pytest.raises(ConcurrencyConflict):
        store.purge(Tombstone(case.id, case.version, case.head_hash, case.opened_at,
                              case.closed_at, START, "x", "y"))  # fmt: skip
    assert ids["old"] in set(store.case_ids())


def test_a_29_february_closing_is_kept_until_28_february() -> None:
    from workflow.engine import retention_ends

    policy = parse_policy(RETENTION_POLICY, file="r.yaml")
    leap = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    assert retention_ends(leap, policy) == datetime(2030, 2, 28, 12, 0, tzinfo=UTC)


# -- schema and command line ------------------------------------------------------------


def test_a_database_at_revision_0001_upgrades_to_hold_tombstones(tmp_path: Path) -> None:
    from alembic import command

    from adapters.migrate import _config
    from adapters.sql_schema import build_tables
    from workflow import SchemaVersionError

    url = sqlite_url(tmp_path)
    engine = create_engine(url)
    config = _config(build_tables())
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
    with engine.connect() as conn:
        names = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master"))}
    engine.dispose()
    assert "cf_cases" in names
    assert "cf_tombstones" not in names
    with pytest.raises(SchemaVersionError, match="run `complaintflow db upgrade"):
        SqlStore(url)
    result = CliRunner().invoke(main, ["db", "upgrade", url])
    assert result.exit_code == 0, result.output
    store = SqlStore(url)
    assert list(store.tombstones()) == []
    store.close()


def test_the_privacy_commands(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    clock = ManualClock(START)
    engine = Engine(store, policy=parse_policy(RETENTION_POLICY, file="r.yaml"), clock=clock)
    two_customers(engine, clock)
    store.close()
    policy_file = tmp_path / "retention.yaml"
    policy_file.write_text(RETENTION_POLICY)
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result

    shown = run("audit", "show", "jane-1", "--store", url).output
    assert ACCOUNT in shown  # people read values, not references
    assert "personal:" not in shown
    erased = run("privacy", "erase", "cust-jane", "--store", url, "--actor", "dpo:kim",
                 "--reason", "DSR-7")  # fmt: skip
    shown = run("audit", "show", "jane-1", "--store", url).output
    assert ACCOUNT not in shown
    assert ERASED in shown
    assert "2 cases of customer cust-jane erased" in erased.output
    assert "0 cases" in run("privacy", "erase", "cust-jane", "--store", url, "--actor",
                            "dpo:kim", "--reason", "DSR-7").output  # fmt: skip
    assert "verified, no problems" in run("audit", "verify", "--store", url).output
    exported = run("audit", "export", "--store", url)
    assert NAME not in exported.output
    assert "Bob Kept" in exported.output
    bare = run("audit", "export", "--store", url, "--without-personal")
    assert "Bob Kept" not in bare.output

    later = (START + timedelta(days=3 * 366)).isoformat()
    dry = run("privacy", "purge", "--store", url, "--policy", str(policy_file), "--actor",
              "system:retention", "--at", later, "--dry-run")  # fmt: skip
    assert "jane-1" in dry.output
    assert "1 cases would be purged" in dry.output
    with freeze_time(START + timedelta(days=3 * 366 + 1)):  # --at has come (decision 0060)
        done = run("privacy", "purge", "--store", url, "--policy", str(policy_file),
                   "--actor", "system:retention", "--at", later)  # fmt: skip
    assert "1 cases purged" in done.output
    listed = run("privacy", "purged", "--store", url)
    assert "jane-1" in listed.output
    assert "by system:retention  retention 2 years" in listed.output  # the policy's
    naive = runner.invoke(main, ["privacy", "purge", "--store", url, "--actor", "a:x", "--at",
                                 "2030-01-01T00:00:00"])  # fmt: skip
    assert naive.exit_code != 0
    assert "naive" in naive.output.lower()


def test_a_case_whose_policy_is_not_loaded_is_never_judged_by_another_one() -> None:
    long_keep = parse_policy(RETENTION_POLICY.replace("years: 2", "years: 10"), file="l.yaml")
    store, clock = MemoryStore(), ManualClock(START)
    ids = closed_cases(Engine(store, policy=long_keep, clock=clock), clock)
    later = START + timedelta(days=365 * 7)
    clock.set(START + timedelta(days=365 * 12))
    short = parse_policy(RETENTION_POLICY, file="s.yaml")
    assert Engine(store, policy=short, clock=clock).purge_expired(actor="a:x", now=later) == []
    both = Engine(store, policy=short, previous_policies=[long_keep], clock=clock)
    assert both.purge_expired(actor="a:x", now=later) == []  # 10 years have not passed
    done = both.purge_expired(actor="a:x", now=START + timedelta(days=365 * 12))
    assert {t.case_id for t in done} == {ids["old"], ids["recent"]}
    assert all("10 years" in t.reason for t in done)


@pytest.mark.parametrize(
    ("step", "data"),
    [
        ("open", {"customer": {"name": "personal:" + "a" * 64, "contact": "plain", "id": "c"}}),
        ("open", {"customer": {"name": "personal:" + "b" * 64, "account": "personal:" + "c" * 64}}),
        ("open", {"customer": "personal:" + "d" * 64}),
        ("open", {"customer": None}),
        ("open", {"name": "personal:" + "e" * 64}),
        ("open", {}),
        ("record", {"contact": "personal:" + "f" * 64}),
        ("record", {"contact": "personal:short"}),
        ("record", {"contact": ["personal:" + "f" * 64]}),
        ("listen", {"contact": "personal:" + "f" * 64}),
    ],
)
def test_referenced_reads_the_fields_sealing_finds(step: str, data: dict[str, Any]) -> None:
    from workflow.personal import PERSONAL_PATHS, _fields, is_reference, referenced

    paths = PERSONAL_PATHS.get(step, ())
    fields = _fields(data, paths)[1] if paths else []
    expected = [parent[key] for parent, key, _ in fields if is_reference(parent[key])]
    assert referenced(step, data) == expected


def test_a_stale_write_after_an_erasure_leaves_no_value_in_the_stores_memory(
    tmp_path: Path,
) -> None:
    """A writer that loaded the case before the erasure loses the race; the snapshot it
    tried to write (with the values) must not stay anywhere in this process."""
    from workflow import ConcurrencyConflict
    from workflow.events import make_event
    from workflow.replay import apply

    store = SqlStore(sqlite_url(tmp_path), create=True)
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    _, open_, _ = two_customers(engine, clock)
    stale = store.load(open_)
    engine.erase_customer("cust-jane", actor="agent:dpo", reason="asked to be forgotten")
    note = make_event(open_, stale.version + 1, "add_note", clock.now(), "agent:a",
                      {"text": "late"}, stale.policy_version, stale.head_hash)  # fmt: skip
    with pytest.raises(ConcurrencyConflict):
        store.append(apply(stale, note, stale.state), [note], stale.version)
    held = repr(store._json._last) + repr(store.cache._cases)
    assert not [secret for secret in SECRETS if secret in held]
    store.close()


def test_an_erased_contact_is_no_contact_when_the_complaint_is_recorded(
    any_store: tuple[Store, str],
) -> None:
    """Regression: a case erased before ``record`` read ``[erased]`` as the customer's
    contact, and ``record`` accepted it without asking for one."""
    store, _ = any_store
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    jane = {"id": "cust-jane", "name": NAME, "contact": CONTACT}
    cid = engine.open_case(actor="agent:a", customer=jane, channel="email",
                           subject="broken vase", case_id="jane-erased").id  # fmt: skip
    drive(engine, clock, cid, 2, CONTACT)
    engine.erase_customer("cust-jane", actor="dpo:d", reason="asked to be forgotten")
    assert engine.get(cid).customer.contact == ERASED
    record = {k: v for k, v in PATH[2][1].items() if k != "contact"}
    before = engine.history(cid)
    with pytest.raises(MissingInformation) as refused:
        engine.record(cid, actor="agent:a", **record)
    assert refused.value.fields == ("contact",)
    assert engine.history(cid) == before
    assert engine.record(cid, actor="agent:a", contact=LATER_CONTACT, **record).state == "recorded"
    assert engine.get(cid).customer.contact == LATER_CONTACT
    assert engine.replay(cid) == engine.get(cid)
    assert engine.verify(cid) == []
