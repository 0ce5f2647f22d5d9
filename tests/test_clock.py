"""Time comes from an injected clock; naive datetimes are refused."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from freezegun import freeze_time

from adapters.memory import MemoryStore
from workflow import (
    ComplaintflowError,
    Engine,
    InvalidTime,
    ManualClock,
    SystemClock,
    audit,
    reports,
    sla,
)
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


# -- a time given to the library: refused as InvalidTime, naming the argument -----------

NAIVE = datetime(2026, 11, 2, 12, 0)  # noqa: DTZ001 - the naive time being refused
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _engine_with_case() -> tuple[Engine, str]:
    engine = Engine(MemoryStore(), clock=ManualClock(START))
    case = engine.open_case(actor="agent:a", customer={"id": "c", "name": "C"}, channel="chat")
    return engine, case.id


def _calls(engine: Engine, cid: str, value: object) -> dict[str, tuple[str, Callable[[], object]]]:
    """Every public call that takes a time from its caller: its name, and the argument
    the error must name."""
    when: Any = value
    case = engine.get(cid)
    return {
        "ManualClock": ("start", lambda: ManualClock(when)),
        "ManualClock.set": ("when", lambda: ManualClock(START).set(when)),
        "Engine.state_at": ("when", lambda: engine.state_at(cid, when)),
        "Engine.tick": ("now", lambda: engine.tick(when)),
        "Engine.sla_status": ("now", lambda: engine.sla_status(cid, when)),
        "Engine.purgeable": ("now", lambda: engine.purgeable(when)),
        "Engine.purge_expired": ("now", lambda: engine.purge_expired(actor="dpo:a", now=when)),
        "sla.verdicts": ("now", lambda: sla.verdicts(case, engine.policy, when)),
        "reports.summary(since)": ("since", lambda: reports.summary(engine, since=when)),
        "reports.recurring(until)": ("until", lambda: reports.recurring(engine, until=when)),
        "audit.state_at": ("when", lambda: audit.state_at(engine.history(cid), when)),
    }


@pytest.mark.parametrize("value", [NAIVE, datetime(9999, 12, 31, 23, 0, tzinfo=timezone(
    timedelta(hours=-5)))])  # fmt: skip
def test_a_naive_or_unholdable_time_is_invalid_time_naming_the_argument(value: datetime) -> None:
    """Regression: a plain ``ValueError`` (and from ``audit.state_at``, a ``TypeError``
    comparing a naive time with the events'); the error model wants the library's own
    error, with the argument it is about."""
    engine, cid = _engine_with_case()
    for name, (field, call) in _calls(engine, cid, value).items():
        with pytest.raises(InvalidTime) as refused:
            call()
        error = refused.value
        assert (name, error.field) == (name, field)
        assert isinstance(error, ComplaintflowError | ValueError), name
        assert ("naive datetime" if value is NAIVE else "outside the times UTC can hold") in (
            error.problem
        ), name
    assert engine.get(cid).version == 1


def test_a_value_that_is_no_time_at_all_is_invalid_time_and_still_a_type_error() -> None:
    engine, cid = _engine_with_case()
    for name, (field, call) in _calls(engine, cid, "2026-11-02T12:00:00+00:00").items():
        with pytest.raises(InvalidTime) as refused:
            call()
        assert isinstance(refused.value, TypeError), name
        assert (name, refused.value.field) == (name, field)
        assert "expected a datetime, got str" in str(refused.value), name


def test_a_clock_giving_naive_time_stays_a_plain_value_error_naming_the_clock() -> None:
    """A clock is the embedding program's, as the decide hook is: a naive ``now()`` is a
    bug there, not a refused input, so it is no ``ComplaintflowError`` that a handler
    turning refusals into messages would hide (docs/embedding.md)."""

    class NaiveClock:
        def now(self) -> datetime:
            return NAIVE

    with pytest.raises(ValueError, match=r"^clock\.now\(\): naive datetime") as refused:
        Engine(MemoryStore(), clock=NaiveClock()).open_case(
            actor="agent:a", customer={"id": "c", "name": "C"}, channel="chat"
        )
    assert not isinstance(refused.value, ComplaintflowError)


def test_a_report_period_that_ends_before_it_starts_is_invalid_time_at_until() -> None:
    engine, _ = _engine_with_case()
    with pytest.raises(InvalidTime, match="is not after since") as refused:
        reports.summary(engine, since=START, until=START - timedelta(days=1))
    assert refused.value.field == "until"


@pytest.mark.parametrize("export", [audit.export_jsonl, audit.export_csv])
@pytest.mark.parametrize("field", ["since", "until"])
def test_an_export_refuses_a_naive_window_before_writing_anything(
    export: Callable[..., int], field: str
) -> None:
    """Regression: the JSON Lines export wrote its header, then failed with a
    ``TypeError`` comparing the naive time with the first event's."""
    engine, _ = _engine_with_case()
    out = io.StringIO()
    with pytest.raises(InvalidTime) as refused:
        export(engine.store, out, **{field: NAIVE})
    assert refused.value.field == field
    assert out.getvalue() == ""
