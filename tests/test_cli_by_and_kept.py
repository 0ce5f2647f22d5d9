"""``report --by`` refused by the reports that do not group by it, and ``privacy purge``
saying which cases it kept and why (docs/decisions/0065)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from policies.loader import parse_policy
from policies.model import default_policy
from tests import test_unreadable_snapshots as unreadable
from tests.conftest import START
from tests.stores import SQL_KINDS, sql_tables
from tests.test_privacy import CONTACT, PATH, RETENTION_POLICY, drive
from workflow import Engine, ManualClock, Store, Tombstone
from workflow.cli import main


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """One store the commands open for any URL."""
    shared = MemoryStore()
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url, **_: shared)
    return shared


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


# --- 1. report --by -------------------------------------------------------------------

OTHERS = ["sla", "breaches", "steps", "handling", "summary", "recurring", "regulatory"]


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("by", ["agent", "kind"])  # the default too, given
def test_a_report_that_does_not_group_refuses_by(store: MemoryStore, name: str, by: str) -> None:
    result = _cli("report", name, "--store", "memory://", "--policy", "bundled:retail",
                  "--by", by)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--by'" in result.output
    assert f"the {name} report takes no --by" in result.output
    assert "only spend groups by it" in result.output
    assert len(result.output.strip().splitlines()[-1]) < 400  # one line


@pytest.mark.parametrize("name", OTHERS)
def test_a_report_without_by_is_unchanged(store: MemoryStore, name: str) -> None:
    result = _cli("report", name, "--store", "memory://", "--policy", "bundled:retail")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args", [["spend"], ["--format", "html"], ["sla", "--format", "html"]])
def test_spend_and_the_html_page_take_by(store: MemoryStore, args: list[str]) -> None:
    result = _cli("report", *args, "--store", "memory://", "--policy", "bundled:retail",
                  "--by", "agent")  # fmt: skip
    assert result.exit_code == 0, result.output


# --- 2. what a purge kept -------------------------------------------------------------

HOSTILE_ID = "old-\x9b2J\x1b[2J"


def _expired_cases(store: Store, *, other: bool = True) -> tuple[Engine, ManualClock]:
    """case-a, case-b and HOSTILE_ID closed under RETENTION_POLICY, case-other closed
    under the default policy (which the purging engine is not given); every retention
    period ended by the clock's time when this returns."""
    retention = parse_policy(RETENTION_POLICY, file="r.yaml")
    clock = ManualClock(START)
    for cid, policy in (("case-a", retention), ("case-b", retention), (HOSTILE_ID, retention),
                        ("case-other", default_policy())):  # fmt: skip
        if cid == "case-other" and not other:
            continue
        engine = Engine(store, policy=policy, clock=clock)
        engine.open_case(actor="agent:a", customer={"id": "c", "name": "N"}, channel="email",
                         subject="s", case_id=cid)  # fmt: skip
        drive(engine, clock, cid, len(PATH), CONTACT)
        assert engine.get(cid).state == "closed"
    clock.advance(days=365 * 30)
    return Engine(store, policy=retention, clock=clock), clock


def _changes_meanwhile(engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch,
                       case_id: str) -> None:  # fmt: skip
    """Another worker adds a note to ``case_id`` just before the purge deletes it."""
    purge = store.purge

    def racing(tombstone: Tombstone) -> None:
        if tombstone.case_id == case_id:
            engine.add_note(case_id, actor="agent:b", text="a late note")
        purge(tombstone)

    monkeypatch.setattr(store, "purge", racing)


def test_purge_expired_says_which_cases_it_kept_and_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    monkeypatch.setattr("workflow.engine.case_id_problem", lambda _: None)
    engine, _ = _expired_cases(store)

    planned = engine.purge_expired(actor="system:retention", dry_run=True)
    assert sorted(t.case_id for t in planned) == sorted(["case-a", "case-b", HOSTILE_ID])
    assert [(k.case_id, k.reason) for k in planned.kept] == [("case-other", "policy not given")]

    _changes_meanwhile(engine, store, monkeypatch, "case-b")
    done = engine.purge_expired(actor="system:retention")
    assert sorted(t.case_id for t in done) == sorted(["case-a", HOSTILE_ID])
    assert isinstance(done, list)  # callers comparing with lists still can
    assert [(k.case_id, k.reason) for k in done.kept] == [
        ("case-b", "changed"),
        ("case-other", "policy not given"),
    ]
    changed, other = done.kept
    assert "changed while the purge ran" in changed.detail
    assert "the next purge judges it again" in changed.detail
    assert default_policy().stamp in other.detail
    assert set(store.case_ids()) == {"case-b", "case-other"}


def test_privacy_purge_lists_the_cases_it_kept_after_those_it_purged(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("workflow.engine.case_id_problem", lambda _: None)
    engine, clock = _expired_cases(store)
    policy_file = tmp_path / "retention.yaml"
    policy_file.write_text(RETENTION_POLICY)
    _changes_meanwhile(engine, store, monkeypatch, HOSTILE_ID)
    with freeze_time(clock.now()):
        result = _cli("privacy", "purge", "--store", "memory://", "--policy", str(policy_file),
                      "--actor", "system:retention")  # fmt: skip
    assert result.exit_code == 0, result.output  # as sla tick when it skips cases
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines[:3]] == ["case-a", "case-b", "2 cases purged"]
    assert lines[3].startswith("case-other  kept: its policy ")  # kept ones by id
    assert "--policy" in lines[3]
    assert lines[4].startswith("old-\\x9b2J\\x1b[2J  kept: it changed while the purge ran")
    assert lines[5:] == ["2 cases kept"]
    assert "\x9b" not in result.stdout
    assert "\x1b" not in result.stdout


def test_privacy_purge_keeps_its_output_when_nothing_was_kept(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("workflow.engine.case_id_problem", lambda _: None)
    _, clock = _expired_cases(store, other=False)
    policy_file = tmp_path / "retention.yaml"
    policy_file.write_text(RETENTION_POLICY)
    with freeze_time(clock.now()):
        result = _cli("privacy", "purge", "--store", "memory://", "--policy", str(policy_file),
                      "--actor", "system:retention")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "3 cases purged"
    assert "kept" not in result.output


@pytest.fixture(params=SQL_KINDS)
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlStore, str, str]]:
    with sql_tables(request.param, tmp_path) as tables:
        yield tables


def test_a_case_with_an_unreadable_snapshot_is_kept_and_said_so(
    sql: tuple[SqlStore, str, str], tmp_path: Path
) -> None:
    store, url, prefix = sql
    engine, clock = unreadable._engine(store)
    unreadable.cases(engine, clock)
    for cid in ("case-0", "case-1"):
        engine.withdraw(cid, actor="agent:a", reason="resolved elsewhere")
    unreadable.spoil(url, prefix, "wrong type")
    clock.set(START + timedelta(days=800))
    done = engine.purge_expired(actor="system:retention")
    assert [t.case_id for t in done] == ["case-1"]
    ((kept_id, reason, detail),) = [(k.case_id, k.reason, k.detail) for k in done.kept]
    assert (kept_id, reason) == ("case-0", "unreadable")
    assert "its stored snapshot is unreadable (customer.contact: " in detail
    assert "audit verify --store URL --case case-0" in detail
    unreadable._shows_no_value(detail)

    policy_file = tmp_path / "timed.yaml"
    policy_file.write_text(unreadable.POLICY_TEXT)
    with freeze_time(clock.now()):
        result = _cli("privacy", "purge", "--store", url, "--prefix", prefix, "--policy",
                      str(policy_file), "--actor", "system:retention", "--dry-run")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "0 cases would be purged",
        f"case-0  kept: {detail}",
        "1 cases kept",
    ]
