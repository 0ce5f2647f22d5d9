"""Options the command line took and then ignored or misused, refused up front as usage
errors naming them; ids and log values shown escaped (docs/decisions/0063)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from freezegun import freeze_time

from adapters.memory import MemoryStore
from policies.errors import PolicyFileError
from policies.loader import bundled_names, bundled_path, bundled_policy
from tests.conftest import START
from workflow import Engine, ManualClock
from workflow.cli import main
from workflow.errors import InvalidErasure, InvalidQuery

HOSTILE_ID = "old-\x9b2J\x1b[2J"


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """One store the commands open for any URL."""
    shared = MemoryStore()
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url, **_: shared)
    return shared


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


# --- 1. --limit below 1 ---------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_sla_tick_refuses_a_limit_below_one_naming_it(store: MemoryStore, limit: str) -> None:
    result = _cli("sla", "tick", "--store", "memory://", "--limit", limit)
    assert result.exit_code == 2, result.output
    assert "Invalid value for --limit" in result.output  # as cases list names it
    assert f"{limit} is not 1 or more" in result.output
    assert "events fired" not in result.output


@pytest.mark.parametrize("command", [["cases", "list"], ["cases", "at-risk", "--within", "4h"]])
@pytest.mark.parametrize("limit", ["0", "-1"])
def test_every_other_limit_option_refuses_a_limit_below_one(
    store: MemoryStore, command: list[str], limit: str
) -> None:
    result = _cli(*command, "--store", "memory://", "--limit", limit)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for --limit: {limit} is not from 1 to 1000" in result.output


@pytest.mark.parametrize("limit", [0, -1, True, 2.5, "10"])
def test_engine_tick_refuses_a_limit_that_is_not_a_whole_number_of_one_or_more(
    limit: object,
) -> None:
    engine = Engine(MemoryStore(), clock=ManualClock(START))
    with pytest.raises(InvalidQuery) as refused:
        engine.tick(limit=limit)  # type: ignore[arg-type]
    assert refused.value.filter == "limit"
    assert str(refused.value).startswith("tick: limit: ")


def test_engine_tick_takes_a_limit_above_the_query_maximum() -> None:
    """A sweep has no upper bound of its own (it never had): only a query's pages do."""
    assert Engine(MemoryStore(), clock=ManualClock(START)).tick(limit=5000) == []


# --- 2. report --calendar -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "html"])
def test_an_unknown_calendar_is_a_usage_error_listing_the_calendars(
    store: MemoryStore, fmt: str
) -> None:
    result = _cli("report", "regulatory", "--store", "memory://", "--policy", "bundled:retail",
                  "--format", fmt, "--calendar", "customer-servce")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--calendar'" in result.output
    assert "no calendar 'customer-servce'" in result.output
    assert "did you mean 'customer-service'?" in result.output
    assert "the policy's calendars are: customer-service" in result.output


def test_a_calendar_given_with_a_policy_without_calendars_says_so(store: MemoryStore) -> None:
    result = _cli("report", "regulatory", "--store", "memory://", "--calendar", "nope")
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--calendar'" in result.output
    assert "the policy has no calendars" in result.output
    assert "--policy bundled:" in result.output


@pytest.mark.parametrize(
    "name", ["sla", "breaches", "steps", "spend", "handling", "summary", "recurring"]
)
def test_a_report_that_uses_no_calendar_refuses_one(store: MemoryStore, name: str) -> None:
    result = _cli("report", name, "--store", "memory://", "--policy", "bundled:retail",
                  "--calendar", "customer-service")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--calendar'" in result.output
    assert f"the {name} report takes no calendar" in result.output


def test_a_known_calendar_is_still_used(store: MemoryStore) -> None:
    result = _cli("report", "regulatory", "--store", "memory://", "--policy", "bundled:retail",
                  "--calendar", "customer-service")  # fmt: skip
    assert result.exit_code == 0, result.output


# --- 3. bundled_policy("nope") --------------------------------------------------------


def test_bundled_policy_of_an_unknown_name_says_there_is_none_and_lists_them() -> None:
    with pytest.raises(PolicyFileError) as refused:
        bundled_policy("retial")
    known = ", ".join(bundled_names())
    assert str(refused.value) == (
        "there is no bundled policy called 'retial' (did you mean 'retail'?); the bundled "
        f"policies are: {known}"
    )
    with pytest.raises(PolicyFileError) as refused:
        bundled_path("sas", cases=True)
    assert str(refused.value).startswith("there is no bundled cases file called 'sas'")


# --- 4. privacy erase " " -------------------------------------------------------------


@pytest.mark.parametrize("blank", [" ", "   ", "\t"])
def test_privacy_erase_refuses_a_blank_customer_id(store: MemoryStore, blank: str) -> None:
    result = _cli("privacy", "erase", blank, "--store", "memory://", "--actor", "dpo:kim",
                  "--reason", "DSR-1")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Invalid value for 'CUSTOMER_ID': it is blank" in result.output


@pytest.mark.parametrize("blank", [" ", "  \t"])
def test_erase_customer_refuses_a_blank_customer_id(blank: str) -> None:
    engine = Engine(MemoryStore(), clock=ManualClock(START))
    with pytest.raises(InvalidErasure, match="customer_id is blank"):
        engine.erase_customer(blank, actor="dpo:kim", reason="DSR-1")


# --- 5. values on the terminal --------------------------------------------------------


def test_the_command_lines_log_lines_show_values_escaped(store: MemoryStore) -> None:
    from workflow import replay
    from workflow.events import GENESIS, make_event

    customer = "c-1"
    data = {"customer": {"id": customer, "name": "Ann", "tier": "standard"},
            "channel": "email", "priority": "normal", "complainant_type": "unknown"}  # fmt: skip
    event = make_event(HOSTILE_ID, 1, "open", START, "agent:a", data, "p@sha256:x", GENESIS)
    store.append(replay([event]), [event], 0)  # written before values were held apart
    result = _cli("privacy", "erase", customer, "--store", "memory://", "--actor", "dpo:kim",
                  "--reason", "DSR-1")  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "erasure refused" in result.stderr
    assert "\x9b" not in result.stderr
    assert "\x1b" not in result.stderr
    assert "old-\\x9b2J\\x1b[2J" in result.stderr


def _legacy_closed_case(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A closed case whose id was stored before ids were checked (decision 0036)."""
    from policies.loader import parse_policy
    from tests.test_privacy import CONTACT, PATH, RETENTION_POLICY, drive

    monkeypatch.setattr("workflow.engine.case_id_problem", lambda _: None)
    clock = ManualClock(START)
    engine = Engine(store, policy=parse_policy(RETENTION_POLICY, file="r.yaml"), clock=clock)
    engine.open_case(actor="agent:a", customer={"id": "c-1", "name": "N"}, channel="email",
                     subject="s", case_id=HOSTILE_ID)  # fmt: skip
    drive(engine, clock, HOSTILE_ID, len(PATH), CONTACT)
    assert engine.get(HOSTILE_ID).state == "closed"
    return engine


LATER = (START + timedelta(days=3 * 366)).isoformat()


def test_privacy_purge_and_purged_show_case_ids_escaped(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.test_privacy import RETENTION_POLICY

    engine = _legacy_closed_case(store, monkeypatch)
    policy_file = tmp_path / "retention.yaml"
    policy_file.write_text(RETENTION_POLICY)
    dry = _cli("privacy", "purge", "--store", "memory://", "--policy", str(policy_file),
               "--actor", "system:retention", "--at", LATER, "--dry-run")  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[0].startswith("old-\\x9b2J\\x1b[2J  closed ")
    assert "\x9b" not in dry.output
    assert "\x1b" not in dry.output
    engine.clock.set(datetime.fromisoformat(LATER))  # type: ignore[attr-defined]
    engine.purge_expired(actor="system:retention")
    listed = _cli("privacy", "purged", "--store", "memory://")
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("old-\\x9b2J\\x1b[2J  seq ")


def test_sla_tick_shows_case_ids_escaped(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workflow.engine.case_id_problem", lambda _: None)
    with freeze_time(START):
        Engine(store, policy=bundled_policy("retail")).open_case(
            actor="system:x", customer={"id": "c", "name": "N"}, channel="social",
            subject="s", case_id=HOSTILE_ID,
        )  # fmt: skip
    with freeze_time(START + timedelta(hours=2)):
        result = _cli("sla", "tick", "--store", "memory://", "--policy", "bundled:retail")
    assert result.exit_code == 0, result.output
    assert "\x9b" not in result.output
    assert "\x1b" not in result.output
    assert "old-\\x9b2J\\x1b[2J  sla_breached" in result.output
