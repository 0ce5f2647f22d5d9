"""``Engine.tick`` says which cases with a deadline due it skipped, and why; ``sla tick``
lists them after the events it fired (decision 0066). Before, a skipped case was only a
log line: ``sla tick`` run without a case's ``--policy`` printed "0 events fired" and
nothing else on stdout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from adapters.memory import MemoryStore
from adapters.sql import SqlStore
from policies.loader import bundled_policy
from tests.stores import sqlite_url
from workflow import (
    ConcurrencyConflict,
    Engine,
    Fired,
    ManualClock,
    SkippedCase,
    Store,
    StoreUnavailable,
)
from workflow.cli import main

START = datetime(2026, 11, 9, 8, 0, tzinfo=UTC)
RETAIL = bundled_policy("retail")


def _due_case(store: Store, case_id: str = "case-1") -> None:
    """A social-media case under the retail policy: its acknowledgement breaches an
    hour after opening (and warns before)."""
    engine = Engine(store, policy=RETAIL, clock=ManualClock(START))
    engine.open_case(actor="system:x", customer={"id": "c", "name": "N"}, channel="social",
                     subject="s", case_id=case_id)  # fmt: skip


def test_a_case_whose_policy_the_engine_was_not_given_is_skipped_and_said_so() -> None:
    store = MemoryStore()
    _due_case(store)
    stranger = Engine(store, clock=ManualClock(START + timedelta(hours=2)))  # default policy
    fired = stranger.tick()
    assert isinstance(fired, Fired)
    assert fired == []  # still the list of events fired
    assert fired.skipped == (
        SkippedCase(
            "case-1",
            "policy not given",
            f"its policy {RETAIL.stamp} was not given, and no other policy's targets judge "
            "it: give that policy file too (--policy) and sweep again once this sweep's "
            "claim lapses (five minutes)",
        ),
    )
    assert store.events("case-1")[-1].type == "open"  # nothing written


def test_a_case_another_worker_changed_first_is_skipped_as_changed() -> None:
    class Racing(MemoryStore):
        """The sweep's append loses to another writer, once."""

        lost = False

        def append(self, *args: Any, **kwargs: Any) -> None:
            if not self.lost and len(args[1]) and args[1][0].type.startswith("sla_"):
                self.lost = True
                raise ConcurrencyConflict("case-1", expected=1, found=2)
            super().append(*args, **kwargs)

    store = Racing()
    _due_case(store)
    clock = ManualClock(START + timedelta(hours=2))
    engine = Engine(store, policy=RETAIL, clock=clock)
    fired = engine.tick()
    assert fired == []
    assert [(s.case_id, s.reason) for s in fired.skipped] == [("case-1", "changed")]
    clock.advance(timedelta(minutes=6))  # the lost sweep's claim has lapsed
    assert [e.type for e in engine.tick()][:1] == ["sla_warning"]  # the next sweep fires it


def test_a_sweep_that_skips_nothing_says_nothing_more() -> None:
    store = MemoryStore()
    _due_case(store)
    fired = Engine(store, policy=RETAIL, clock=ManualClock(START + timedelta(hours=2))).tick()
    assert [e.type for e in fired] == ["sla_warning", "sla_breached", "escalate"]
    assert fired.skipped == ()
    assert type(fired[:1]) is list  # a slice is a plain list, as documented


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> MemoryStore:
    """One store the CLI opens for any URL (standing in for a database file)."""
    shared = MemoryStore()
    monkeypatch.setattr("workflow.cli.common.open_store", lambda url: shared)
    return shared


def test_sla_tick_without_a_cases_policy_lists_it_as_skipped(store: MemoryStore) -> None:
    with pytest.MonkeyPatch.context() as before_the_check:  # ids stored before they
        before_the_check.setattr("workflow.engine.case_id_problem", lambda _: None)  # were checked
        _due_case(store, case_id="case-\x1b[2J")
    with freeze_time(START + timedelta(hours=2)):
        result = CliRunner().invoke(main, ["sla", "tick", "--store", "memory://"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "0 events fired",
        f"case-\\x1b[2J  skipped: its policy {RETAIL.stamp} was not given, and no other "
        "policy's targets judge it: give that policy file too (--policy) and sweep again "
        "once this sweep's claim lapses (five minutes)",
        "1 cases skipped",
    ]


def test_on_sqlite_a_refused_case_and_one_without_its_policy_are_skipped_the_others_fire(
    tmp_path: Path,
) -> None:
    """The SQL store's claim path: each skipped case once, with one reason, and not among
    the events fired; a store error is ``refused`` with its own message."""

    class Failing(SqlStore):
        def append(self, *args: Any, **kwargs: Any) -> None:
            if args[0].id == "case-2" and args[1][0].type.startswith("sla_"):
                raise StoreUnavailable("writing case case-2: the database is unavailable")
            super().append(*args, **kwargs)

    url = sqlite_url(tmp_path)
    SqlStore(url, create=True).close()
    store = Failing(url)
    for case_id in ("case-1", "case-2"):
        _due_case(store, case_id)
    later = type(RETAIL).model_validate({**RETAIL.model_dump(), "version": "2026.9"})
    other = Engine(store, policy=later, clock=ManualClock(START))
    other.open_case(actor="system:x", customer={"id": "d", "name": "N"}, channel="social",
                    subject="s", case_id="case-3")  # fmt: skip
    clock = ManualClock(START + timedelta(hours=2))
    fired = Engine(store, policy=RETAIL, clock=clock).tick()
    assert {e.case_id for e in fired} == {"case-1"}
    assert [(s.case_id, s.reason) for s in fired.skipped] == [
        ("case-2", "refused"),
        ("case-3", "policy not given"),
    ]
    assert fired.skipped[0].detail == "writing case case-2: the database is unavailable"
    store.close()
