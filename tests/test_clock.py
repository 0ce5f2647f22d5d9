"""Time comes from an injected clock; naive datetimes are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from adapters.memory import MemoryStore
from workflow import Engine, ManualClock, SystemClock
from workflow.clock import to_utc


def test_the_system_clock_reads_utc_now_so_freezegun_can_freeze_it() -> None:
    with freeze_time("2026-11-02 09:00:00"):
        assert SystemClock().now() == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        engine = Engine(MemoryStore())
        case = engine.open_case(actor="agent:a", customer={"id": "c", "name": "C"}, channel="chat")
        assert case.opened_at == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    assert clock.advance(hours=2) == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(timedelta(minutes=-1))
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2026, 11, 1, tzinfo=UTC))


def test_times_in_other_zones_are_stored_as_utc() -> None:
    helsinki = timezone(timedelta(hours=2))
    assert to_utc(datetime(2026, 11, 2, 11, 0, tzinfo=helsinki), "t") == datetime(
        2026, 11, 2, 9, 0, tzinfo=UTC
    )


def test_naive_datetimes_are_refused_naming_where() -> None:
    with pytest.raises(ValueError, match="ManualClock start: naive datetime"):
        ManualClock(datetime(2026, 11, 2))  # noqa: DTZ001


@pytest.mark.parametrize(
    "when",
    [
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_a_time_utc_cannot_hold_is_refused_naming_where(when: datetime) -> None:
    """Regression: ``astimezone`` raised a bare ``OverflowError`` ("date value out of
    range") from ``tick``, ``sla_status``, ``state_at``..."""
    with pytest.raises(ValueError, match=r"tick\(now\): .* is outside the times UTC can hold"):
        Engine(MemoryStore()).tick(when)
