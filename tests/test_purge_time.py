"""A purge is not judged at a time to come (decision 0060): `privacy purge --at T` and
``purge_expired(now=T)`` with T later than the engine's clock deleted cases whose
retention period had not ended, and recorded T as the purge's time. Now refused, naming
the argument, and nothing is deleted; a dry run, and ``purgeable``, may still look
ahead (they delete nothing). On memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from freezegun import freeze_time

from tests.conftest import START, drive
from tests.stores import STORE_KINDS, each_store, sqlite_url
from workflow import Engine, InvalidTime, ManualClock
from workflow.cli import main
from workflow.store import Store

#: When case-old's retention period (the bundled policy's six years) ends, about.
ENDS = START + timedelta(days=6 * 366)


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from each_store(request.param, tmp_path)


def _closed(store: Store) -> tuple[Engine, ManualClock]:
    clock = ManualClock(START)
    engine = Engine(store, clock=clock)
    engine.open_case(actor="agent:a", customer={"id": "c1", "name": "Ann"}, channel="email",
                     subject="broken", case_id="case-old")  # fmt: skip
    drive(engine, "case-old", "closed")
    return engine, clock


def test_a_purge_judged_at_a_time_to_come_is_refused_and_deletes_nothing(store: Store) -> None:
    engine, clock = _closed(store)
    clock.set(ENDS - timedelta(days=30))  # its retention period has not ended
    ahead = ENDS + timedelta(days=1)
    with pytest.raises(InvalidTime) as refused:
        engine.purge_expired(actor="system:retention", now=ahead)
    assert refused.value.field == "now"
    assert str(refused.value) == (
        f"purge_expired(now): {ahead.isoformat()} is later than the engine's clock "
        f"({clock.now().isoformat()}): a purge judged at a time to come would delete cases "
        "whose retention period has not ended; give a time no later than now, or "
        "dry_run=True to list what that time would purge"
    )
    assert [c.id for c in engine.find_cases().cases] == ["case-old"]
    assert list(store.tombstones()) == []
    planned = engine.purge_expired(actor="system:retention", now=ahead, dry_run=True)
    assert [t.case_id for t in planned] == ["case-old"]
    assert [c.id for c in engine.purgeable(ahead)] == ["case-old"]
    assert engine.purge_expired(actor="system:retention") == []  # by the clock: not yet
    assert list(store.tombstones()) == []
    clock.set(ahead)
    assert [t.case_id for t in engine.purge_expired(actor="system:retention", now=ahead)] == [
        "case-old"
    ]


def test_a_purge_judged_at_an_earlier_time_is_taken(store: Store) -> None:
    """An earlier time only purges less: what had ended by then."""
    engine, clock = _closed(store)
    clock.set(ENDS + timedelta(days=400))
    done = engine.purge_expired(actor="system:retention", now=ENDS + timedelta(days=1))
    assert [t.case_id for t in done] == ["case-old"]
    assert done[0].purged_at == ENDS + timedelta(days=1)


def test_privacy_purge_at_a_time_to_come_is_a_usage_error_naming_at(tmp_path: Path) -> None:
    from adapters.sql import SqlStore

    url = sqlite_url(tmp_path)
    store = SqlStore(url, create=True)
    _closed(store)
    store.close()
    ahead = (ENDS + timedelta(days=1)).isoformat()
    with freeze_time(ENDS - timedelta(days=30)):
        refused = CliRunner().invoke(
            main, ["privacy", "purge", "--store", url, "--actor", "system:r", "--at", ahead]
        )
        dry = CliRunner().invoke(main, ["privacy", "purge", "--store", url, "--actor",
                                        "system:r", "--at", ahead, "--dry-run"])  # fmt: skip
        listed = CliRunner().invoke(main, ["privacy", "purged", "--store", url])
    assert refused.exit_code == 2, refused.output
    assert refused.output.splitlines()[-1] == (
        f"Error: Invalid value for --at: {ahead} is later than now "
        f"({(ENDS - timedelta(days=30)).isoformat()}): a purge judged at a time to come "
        "would delete cases whose retention period has not ended; give a time no later "
        "than now, or --dry-run to list what that time would purge"
    )
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        f"case-old  closed {START:%Y-%m-%d}  would be purged",
        "1 cases would be purged",
    ]
    assert listed.output.splitlines()[-1] == "0 purged cases"
