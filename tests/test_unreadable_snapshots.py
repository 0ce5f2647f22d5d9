"""A stored snapshot that does not read back as a case (edited in the database, a bad
third-party write, a BLOB, invalid JSON, a key a case does not have) is a
``SnapshotUnreadable`` naming the case and what is wrong, never the values; the sweeper
skips it, erasure and reports refuse, retention leaves it, verify locates it, and every
command meeting it prints one line (docs/decisions/0035).

The memory store cannot hold such a snapshot: it keeps the ``Case`` it was given, which
was validated when it was built. The tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time
from sqlalchemy import create_engine
from structlog.testing import capture_logs

from adapters.sql import SqlStore
from policies.loader import parse_policy
from tests.conftest import PATH, START
from tests.stores import SQL_KINDS, sql_tables, sqlite_url
from workflow import (
    ComplaintflowError,
    Engine,
    ErasureRefused,
    ManualClock,
    SnapshotUnreadable,
    StoreError,
    audit,
    reports,
)
from workflow.cli import main

NAME = "Ann Secretname"
CONTACT = "ann@example.com"
#: Values that must not appear in an error, a log line or a command's output.
SECRETS = (NAME, CONTACT, "Secretname", "-40.00", "case-9")

POLICY_TEXT = """
name: timed
version: "1"
currency: EUR
retention:
  years: 1
sla:
  targets:
    - {id: feedback, step: request_feedback, within: PT1H}
"""
POLICY = parse_policy(POLICY_TEXT, file="timed.yaml")


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlStore, str, str]]:
    with sql_tables(request.param, tmp_path) as tables:
        yield tables


def cases(engine: Engine, clock: ManualClock) -> None:
    """case-0 and case-2 of customer c0 (named NAME), case-1 of customer c1: each
    promised, its SLA target (feedback within an hour of the promise) running."""
    for i, customer in ((0, "c0"), (1, "c1"), (2, "c0")):
        engine.open_case(
            actor="agent:a", customer={"id": customer, "name": NAME}, channel="email",
            subject="broken", case_id=f"case-{i}",
        )  # fmt: skip
        for step, inputs in PATH[:6]:
            clock.advance(minutes=30)
            actor = "customer:c" if step == "accept_remedy" else "agent:a"
            if step == "accept_remedy":
                inputs = {**inputs, "due": clock.now() + timedelta(days=3)}
            engine.step(f"case-{i}", step, actor=actor, **inputs)


def tamper(url: str, sql_text: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql_text)
    engine.dispose()


def spoil(url: str, prefix: str, how: str, case_id: str = "case-0") -> None:
    """Make the stored snapshot of ``case_id`` something that is not that case."""
    old, new = EDITS[how]
    if old is None:
        tamper(url, f"UPDATE {prefix}cases SET snapshot = {new} WHERE case_id = '{case_id}'")
        return
    tamper(url, f"UPDATE {prefix}cases SET snapshot = REPLACE(snapshot, '{old}', '{new}') "
                f"WHERE case_id = '{case_id}'")  # fmt: skip


#: How: (text replaced, its replacement) or (None, an SQL expression for the snapshot).
EDITS: dict[str, tuple[str | None, str]] = {
    "wrong type": (f'"contact":"{CONTACT}"', f'"contact":["{CONTACT}"]'),
    "extra key": ('"transfers":0', f'"transfers":0,"note":"{NAME}"'),
    "validator": ('"amount":"40.00"', '"amount":"-40.00"'),
    "invalid JSON": (None, "SUBSTR(snapshot, 1, 60)"),
    "not an object": (None, f"'[\"{NAME}\"]'"),
    "another case": ('"id":"case-0"', '"id":"case-9"'),
}
#: What each edit is reported as: (field path, problem) pairs, in order.
PROBLEMS: dict[str, list[tuple[str, str]]] = {
    "wrong type": [("customer.contact", "Input should be a valid string")],
    "extra key": [("note", "Unexpected keyword argument")],
    "validator": [("offers.0.options.0", "an invalid value (value_error)")],
    "invalid JSON": [("the case", "Invalid JSON: EOF while parsing an object at line 1 column 60")],
    "not an object": [("the case", "Input should be an object")],
    "another case": [("id", "names another case")],
}


def _engine(store: SqlStore) -> tuple[Engine, ManualClock]:
    clock = ManualClock(START)
    return Engine(store, clock=clock, policy=POLICY), clock


def _shows_no_value(text: str) -> None:
    leaked = [value for value in SECRETS if value in text]
    assert leaked == [], text


@pytest.mark.parametrize("how", list(EDITS))
def test_load_of_a_snapshot_that_is_not_the_case_names_the_case_and_the_problems(
    sql: tuple[SqlStore, str, str], how: str
) -> None:
    """Not pydantic's ValidationError (which quotes the stored values, the customer's
    name and contact among them) but a ComplaintflowError naming the case, the field
    paths and the kinds of problem; the original error is not kept (it holds the
    values). Every read path: the store that wrote the case, a fresh one, SQLAlchemy
    Core instead of the SQLite hot path, and a customer's cases."""
    store, url, prefix = sql
    cases(_engine(store)[0], ManualClock(START))
    spoil(url, prefix, how)
    fresh = SqlStore(url, prefix=prefix)
    core = SqlStore(url, prefix=prefix)
    core._hot = None
    try:
        for reader in (store, fresh, core):
            with pytest.raises(SnapshotUnreadable) as raised:
                reader.load("case-0")
            error = raised.value
            assert isinstance(error, StoreError)
            assert isinstance(error, ComplaintflowError)
            assert error.case_id == "case-0"
            assert list(error.problems) == PROBLEMS[how]
            assert str(error).startswith("case case-0: the stored snapshot is unreadable: ")
            assert error.__cause__ is None
            assert error.__context__ is None
            _shows_no_value(str(error))
            assert reader.load("case-1").id == "case-1"
            with pytest.raises(SnapshotUnreadable) as raised:
                reader.customer_cases("c0")
            assert raised.value.case_id == "case-0"
            assert [c.id for c in reader.customer_cases("c1")] == ["case-1"]
    finally:
        fresh.close()
        core.close()


def test_a_snapshot_stored_as_bytes_is_unreadable_as_verify_says(tmp_path: Path) -> None:
    """SQLite keeps whatever type a row is given. A BLOB holding the very JSON verify
    already reported as "not text"; load read it as the case. Both now refuse it."""
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    cases(_engine(store)[0], ManualClock(START))
    tamper(url, "UPDATE cf_cases SET snapshot = CAST(snapshot AS BLOB) WHERE case_id = 'case-0'")
    core = SqlStore(url)
    core._hot = None
    for reader in (store, core):
        with pytest.raises(SnapshotUnreadable) as raised:
            reader.load("case-0")
        assert list(raised.value.problems) == [("the case", "it is not text")]
        with pytest.raises(SnapshotUnreadable):
            reader.customer_cases("c0")
    assert [(f.case_id, f.problem) for f in audit.verify_store(store)] == [
        ("case-0", "the stored snapshot is unreadable: it is not text")
    ]
    core.close()
    store.close()


@pytest.mark.parametrize("how", ["wrong type", "extra key", "validator", "invalid JSON"])
def test_verify_still_locates_it_without_quoting_a_value(
    sql: tuple[SqlStore, str, str], how: str
) -> None:
    store, url, prefix = sql
    cases(_engine(store)[0], ManualClock(START))
    spoil(url, prefix, how)
    fresh = SqlStore(url, prefix=prefix)
    for findings in (audit.verify_store(store), audit.verify_store(fresh, "case-0")):
        assert [(f.case_id, f.seq) for f in findings] == [("case-0", None)]
        where, what = PROBLEMS[how][0]
        assert findings[0].problem == f"the stored snapshot is unreadable: {where}: {what}"
    fresh.close()


def test_the_sweep_skips_the_case_with_a_warning_and_sweeps_the_rest(
    sql: tuple[SqlStore, str, str],
) -> None:
    """Regression: the first such case stopped ``tick`` with a ValidationError, so no
    other case's warnings or breaches fired."""
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    spoil(url, prefix, "wrong type")
    with capture_logs() as logs:
        fired = engine.tick(START + timedelta(days=1))
    assert sorted({e.case_id for e in fired}) == ["case-1", "case-2"]
    assert {e.type for e in fired} == {"sla_warning", "sla_breached"}
    skipped = [line for line in logs if line["event"] == "sla sweep: case skipped"]
    assert [(line["case_id"], line["log_level"]) for line in skipped] == [("case-0", "warning")]
    assert "stored snapshot is unreadable" in skipped[0]["error"]
    _shows_no_value(repr(logs))


def test_erasure_of_a_customer_with_such_a_case_erases_nothing_and_names_it(
    sql: tuple[SqlStore, str, str],
) -> None:
    """It may hold the customer's values and cannot be rewritten without them: the
    erasure is refused as a whole (as for a case whose events hold plain values), so
    that no erasure reports success while the values stay in the database."""
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    spoil(url, prefix, "extra key")
    with capture_logs() as logs, pytest.raises(ErasureRefused) as raised:
        engine.erase_customer("c0", actor="dpo:kim", reason="DSR-7")
    message = str(raised.value)
    assert message.startswith("customer c0: case case-0's stored snapshot is unreadable")
    assert message.endswith("Nothing was erased.")
    assert isinstance(raised.value.__cause__, SnapshotUnreadable)
    _shows_no_value(message)
    assert engine.get("case-2").customer.name == NAME  # not erased either
    assert [e.type for e in engine.history("case-2")][-1] == "accept_remedy"
    refused = [line for line in logs if line["event"] == "erasure refused"]
    assert [(line["case_id"], line["log_level"]) for line in refused] == [("case-0", "warning")]
    _shows_no_value(repr(logs))


def test_retention_leaves_the_case_with_a_warning_and_purges_the_rest(
    sql: tuple[SqlStore, str, str],
) -> None:
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    for cid in ("case-0", "case-1"):
        engine.withdraw(cid, actor="agent:a", reason="resolved elsewhere")
    spoil(url, prefix, "wrong type")
    clock.set(START + timedelta(days=800))
    with capture_logs() as logs:
        done = engine.purge_expired(actor="system:retention")
    assert [t.case_id for t in done] == ["case-1"]
    left = [line for line in logs if line["event"].startswith("retention: ")]
    assert [(line["case_id"], line["log_level"]) for line in left] == [("case-0", "warning")]
    _shows_no_value(repr(logs))


@pytest.mark.parametrize(
    "report", ["sla_attainment", "compensation_spend", "handling", "summary", "recurring"]
)
def test_a_report_refuses_rather_than_leave_the_case_out(
    sql: tuple[SqlStore, str, str], report: str
) -> None:
    """Figures that silently leave a case out read as complete (decision 0027)."""
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    spoil(url, prefix, "wrong type")
    with pytest.raises(SnapshotUnreadable) as raised:
        getattr(reports, report)(engine)
    assert raised.value.case_id == "case-0"


def test_a_capped_offer_reading_the_customer_s_other_cases_is_refused_naming_the_case(
    sql: tuple[SqlStore, str, str],
) -> None:
    store, url, prefix = sql
    capped = parse_policy(
        POLICY_TEXT + "caps:\n  per_customer: {amount: '500.00', period: P365D}\n",
        file="capped.yaml",
    )
    clock = ManualClock(START)
    engine = Engine(store, clock=clock, policy=capped)
    cases(engine, clock)
    cid = engine.open_case(
        actor="agent:a", customer={"id": "c0", "name": NAME}, channel="email",
        subject="again", case_id="case-3",
    ).id  # fmt: skip
    for step, inputs in PATH[:4]:
        engine.step(cid, step, actor="agent:a", **inputs)
    spoil(url, prefix, "wrong type")
    with pytest.raises(SnapshotUnreadable) as raised:
        engine.step(cid, "offer_remedy", actor="agent:a", **PATH[4][1])
    assert raised.value.case_id == "case-0"
    assert engine.get(cid).state == "apologised"  # nothing written


# -- the command line: one line, never a traceback, never a value ----------------------


def _cli_store(tmp_path: Path, *, withdrawn: bool = False) -> tuple[str, Path]:
    """A SQLite store of ``cases``, case-0 unreadable (case-0 and case-1 withdrawn
    first if ``withdrawn``), and the policy file."""
    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    engine, clock = _engine(store)
    cases(engine, clock)
    if withdrawn:
        for cid in ("case-0", "case-1"):
            engine.withdraw(cid, actor="agent:a", reason="resolved elsewhere")
    store.close()
    spoil(url, "cf_", "wrong type")
    policy = tmp_path / "timed.yaml"
    policy.write_text(POLICY_TEXT, encoding="utf-8")
    return url, policy


ERROR = (
    "Error: case case-0: the stored snapshot is unreadable: customer.contact: Input should "
    "be a valid string (run `complaintflow audit verify --store URL --case case-0`)"
)


@pytest.mark.parametrize(
    "args",
    [
        ["sla", "status", "case-0", "--policy", "{policy}"],
        ["audit", "show", "case-0"],
        ["audit", "show", "case-0", "--at", "2026-11-02T10:00:00Z"],
        ["audit", "export", "--case", "case-0"],
        ["audit", "export", "--format", "csv", "-o", "{tmp}/out.csv"],
        ["report", "summary", "--policy", "{policy}"],
        ["report", "sla", "--policy", "{policy}"],
        ["report", "spend", "--format", "html", "--policy", "{policy}", "-o", "{tmp}/r.html"],
    ],
    ids=lambda args: " ".join(a for a in args[:3] if "{" not in a),
)
def test_every_command_reading_the_case_prints_one_line(tmp_path: Path, args: list[str]) -> None:
    url, policy = _cli_store(tmp_path)
    given = [a.format(policy=policy, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, [*given, "--store", url])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.output.splitlines() == [ERROR]


def test_privacy_erase_prints_one_line(tmp_path: Path) -> None:
    url, _ = _cli_store(tmp_path)
    result = CliRunner().invoke(
        main, ["privacy", "erase", "c0", "--store", url, "--actor", "dpo:kim", "--reason", "DSR-7"]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2, result.output  # the warning (stderr), then the error
    assert lines[-1].startswith("Error: customer c0: case case-0's stored snapshot is ")
    _shows_no_value(result.output)


@pytest.mark.parametrize(
    "args",
    [
        ["sla", "tick", "--policy", "{policy}"],
        ["privacy", "purge", "--policy", "{policy}", "--actor", "system:r", "--at", "{later}"],
    ],
    ids=["sla tick", "privacy purge"],
)
def test_batch_commands_warn_once_and_carry_on(tmp_path: Path, args: list[str]) -> None:
    url, policy = _cli_store(tmp_path, withdrawn=args[0] == "privacy")
    given = [a.format(policy=policy, later="2029-01-01T00:00:00Z") for a in args]
    # The SLA breaches are due; the purge's --at has come (decision 0060).
    frozen = START + timedelta(days=1) if args[0] == "sla" else START + timedelta(days=800)
    with freeze_time(frozen):
        result = CliRunner().invoke(main, [*given, "--store", url])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    warnings = [line for line in result.stderr.splitlines() if "case-0" in line]
    assert len(warnings) == 1, result.output
    assert "warning" in warnings[0]
    # Each also says on stdout, after what it did, that it kept (privacy purge, decision
    # 0065) or skipped (sla tick, decision 0066) the case, and why.
    said = [line for line in result.stdout.splitlines() if "case-0" in line]
    assert said == (["case-0  kept: its stored snapshot is unreadable (customer.contact: "
                     "Input should be a valid string), so its retention cannot be judged: "
                     "repair it (run `complaintflow audit verify --store URL --case case-0`)"]
                    if args[0] == "privacy" else
                    ["case-0  skipped: case case-0: the stored snapshot is unreadable: "
                     "customer.contact: Input should be a valid string (run `complaintflow "
                     "audit verify --store URL --case case-0`)"]), result.output  # fmt: skip
    assert result.stdout.splitlines()[-1] == (
        "1 cases kept" if args[0] == "privacy" else "1 cases skipped"
    )
    _shows_no_value(result.output)


def test_the_command_an_unreadable_snapshot_names_is_quoted_for_a_shell() -> None:
    """A case id may hold a space or a shell's metacharacters (docs/decisions/0036): the
    command to run keeps it one word."""
    from workflow.errors import SnapshotUnreadable

    error = SnapshotUnreadable("ticket 42; rm -rf x", [("state", "is not a state")])
    assert str(error).endswith(
        "(run `complaintflow audit verify --store URL --case 'ticket 42; rm -rf x'`)"
    )


# -- listing cases: the page is listed, the unreadable case in it (decision 0054) --------


class _ScanOnly(SqlStore):
    """The SQL store as a third party's store that does not find cases itself."""

    find_cases = None  # type: ignore[assignment]
    cases_at_risk = None  # type: ignore[assignment]


def test_find_cases_lists_the_page_and_the_case_that_does_not_read_back_in_its_place(
    sql: tuple[SqlStore, str, str],
) -> None:
    """One spoilt snapshot failed the whole page (every case of every customer listed
    with it). Now the others are listed, and the case is reported with what is wrong,
    in its place: a walk through the pages meets every case once."""
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    spoil(url, prefix, "wrong type", "case-1")
    fresh = Engine(SqlStore(url, prefix=prefix), policy=POLICY)
    try:
        page = fresh.find_cases()
        assert [c.id for c in page.cases] == ["case-0", "case-2"]
        (unreadable,) = page.unreadable
        assert unreadable.case_id == "case-1"
        assert unreadable.problems == (("customer.contact", "Input should be a valid string"),)
        assert unreadable.opened_at == store.events("case-1")[0].at
        assert str(unreadable) == str(unreadable.error)
        assert str(unreadable).startswith("case case-1: the stored snapshot is unreadable: ")
        _shows_no_value(str(unreadable))
        assert page.next_cursor is None
        walked: list[str] = []
        cursor = None
        while True:
            step = fresh.find_cases(limit=1, cursor=cursor)
            walked += [c.id for c in step.cases] + [u.case_id for u in step.unreadable]
            assert len(step.cases) + len(step.unreadable) == 1
            cursor = step.next_cursor
            if cursor is None:
                break
        assert walked == ["case-0", "case-1", "case-2"]
        # Filters match by the columns the store keeps apart from the snapshot.
        assert [u.case_id for u in fresh.find_cases(customer_id="c1").unreadable] == ["case-1"]
        assert fresh.find_cases(customer_id="c0").unreadable == ()
    finally:
        fresh.store.close()


def test_a_store_that_does_not_find_cases_lists_it_on_the_first_page(
    sql: tuple[SqlStore, str, str],
) -> None:
    """Read through ``load`` alone, the case cannot be matched or placed (its fields are
    in the snapshot): it is reported on the first page, whatever the filters."""
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    spoil(url, prefix, "wrong type", "case-1")
    scan = Engine(_ScanOnly(url, prefix=prefix), policy=POLICY)
    try:
        first = scan.find_cases(limit=1)
        assert [c.id for c in first.cases] == ["case-0"]
        assert [(u.case_id, u.opened_at) for u in first.unreadable] == [("case-1", None)]
        second = scan.find_cases(limit=1, cursor=first.next_cursor)
        assert ([c.id for c in second.cases], second.unreadable) == (["case-2"], ())
        assert [u.case_id for u in scan.find_cases(customer_id="c0").unreadable] == ["case-1"]
    finally:
        scan.store.close()


def test_cases_list_lists_the_page_and_warns_of_the_case(tmp_path: Path) -> None:
    url, _ = _cli_store(tmp_path)
    table = CliRunner().invoke(main, ["cases", "list", "--store", url])
    assert table.exit_code == 0, table.output
    warning = ERROR.replace("Error: ", "warning: ")
    assert table.stderr.splitlines() == [warning]
    assert [line.split()[:2] for line in table.stdout.splitlines()[1:]] == [
        ["case-0", "(unreadable)"], ["case-1", "promised"], ["case-2", "promised"]
    ]  # fmt: skip
    as_json = CliRunner().invoke(main, ["cases", "list", "--store", url, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert [c["id"] for c in document["cases"]] == ["case-1", "case-2"]
    assert document["unreadable"] == [
        {
            "id": "case-0",
            "opened_at": "2026-11-02T09:00:00.000000+00:00",
            "problems": [
                {"field": "customer.contact", "problem": "Input should be a valid string"}
            ],
            "error": ERROR.removeprefix("Error: "),
        }
    ]
    _shows_no_value(table.output + as_json.output)


# -- the cases at risk: the list, the unreadable case in it (decision 0060) -------------

#: When each case's soonest deadline is due: the warning of its feedback target (an hour
#: after it opened), at 75%.
DUE = {f"case-{i}": START + timedelta(minutes=45, hours=3 * i) for i in range(3)}


def test_cases_at_risk_lists_the_others_and_the_case_that_does_not_read_back_in_its_place(
    sql: tuple[SqlStore, str, str],
) -> None:
    """One spoilt snapshot failed the whole list, as it failed a page of ``find_cases``
    before decision 0054. Now the others are listed, and the case is reported with
    its deadline and what is wrong, in its place by that deadline."""
    store, url, prefix = sql
    engine, clock = _engine(store)
    cases(engine, clock)
    spoil(url, prefix, "wrong type", "case-1")
    for fresh in (Engine(SqlStore(url, prefix=prefix), policy=POLICY),
                  Engine(_ScanOnly(url, prefix=prefix), policy=POLICY)):  # fmt: skip
        try:
            found = fresh.cases_at_risk(timedelta(days=1), now=START)
            assert [(e.case.id, e.due_at) for e in found] == [
                ("case-0", DUE["case-0"]), ("case-2", DUE["case-2"])
            ]  # fmt: skip
            (unreadable,) = found.unreadable
            assert (unreadable.case.case_id, unreadable.due_at) == ("case-1", DUE["case-1"])
            assert (unreadable.step, unreadable.kind) == ("request_feedback", "warn")
            assert unreadable.case.problems == (
                ("customer.contact", "Input should be a valid string"),
            )
            assert str(unreadable).startswith("case case-1: the stored snapshot is unreadable")
            _shows_no_value(str(unreadable))
            # It takes its place in the limit.
            first = fresh.cases_at_risk(timedelta(days=1), now=START, limit=2)
            assert [e.case.id for e in first] == ["case-0"]
            assert [u.case.case_id for u in first.unreadable] == ["case-1"]
            assert fresh.cases_at_risk(timedelta(hours=2), now=START).unreadable == ()
        finally:
            fresh.store.close()


def test_cases_at_risk_warns_of_the_case_and_lists_it_in_its_place(tmp_path: Path) -> None:
    url, _ = _cli_store(tmp_path)  # case-0 unreadable
    at = ["--within", "1d", "--at", START.isoformat()]
    table = CliRunner().invoke(main, ["cases", "at-risk", "--store", url, *at])
    assert table.exit_code == 0, table.output
    assert table.stderr.splitlines() == [ERROR.replace("Error: ", "warning: ")]
    assert [line.split()[:4] for line in table.stdout.splitlines()[1:]] == [
        ["case-0", "(unreadable)", "request_feedback", "warn"],
        ["case-1", "promised", "request_feedback", "warn"],
        ["case-2", "promised", "request_feedback", "warn"],
    ]
    limited = CliRunner().invoke(main, ["cases", "at-risk", "--store", url, *at, "--limit", "1"])
    assert limited.stdout.splitlines()[1:] == [
        limited.stdout.splitlines()[1],
        "more cases are at risk than --limit 1 shows",
    ]
    assert limited.stdout.splitlines()[1].split()[:2] == ["case-0", "(unreadable)"]
    as_json = CliRunner().invoke(
        main, ["cases", "at-risk", "--store", url, *at, "--format", "json"]
    )
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert [c["id"] for c in document["cases"]] == ["case-1", "case-2"]
    assert document["unreadable"] == [
        {
            "id": "case-0",
            "opened_at": "2026-11-02T09:00:00.000000+00:00",
            "problems": [
                {"field": "customer.contact", "problem": "Input should be a valid string"}
            ],
            "error": ERROR.removeprefix("Error: "),
            "deadline": {
                "step": "request_feedback",
                "kind": "warn",
                "target": "feedback",
                "due_at": "2026-11-02T09:45:00.000000+00:00",
            },
        }
    ]
    assert document["more"] is False
    _shows_no_value(table.output + limited.output + as_json.output)
