"""Time comes from an injected clock. Every datetime complaintflow keeps is aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from workflow.errors import InvalidTime, NotATime


@runtime_checkable
class Clock(Protocol):
    """Anything with ``now()`` returning an aware datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock, in UTC. Reads ``datetime.now`` on every call, so freezegun works."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told: for tests, simulations and the demo."""

    def __init__(self, start: datetime) -> None:
        self._now = to_utc(start, "ManualClock start", field="start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new now."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock cannot move backwards")
        self._now = self._now + step
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware; not earlier than now)."""
        when = to_utc(when, "ManualClock.set", field="when")
        if when < self._now:
            raise ValueError("a clock cannot move backwards")
        self._now = when


def to_utc(value: datetime, where: str, *, field: str | None = None) -> datetime:
    """``value`` converted to UTC. A naive datetime is refused, and so is one that UTC
    cannot hold (``9999-12-31T23:00-05:00`` is in year 10000 there), as ``InvalidTime``
    naming ``field`` (the argument; ``where`` unless given) and starting its message with
    ``where`` (``tick(now)``); a value that is not a datetime as ``NotATime`` (a
    ``TypeError`` too)."""
    if type(value) is datetime and value.tzinfo is UTC:
        return value  # what ``astimezone`` would return
    name = field or where
    if not isinstance(value, datetime):
        raise NotATime(
            name, f"expected a datetime, got {type(value).__name__}", value=value, where=where
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidTime(
            name,
            f"naive datetime {value.isoformat()} refused; give a time zone (for example "
            "datetime.now(timezone.utc))",
            value=value,
            where=where,
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidTime(name, outside_utc(value), value=value, where=where) from None


def outside_utc(value: datetime) -> str:
    """What is wrong with an aware ``value`` that UTC cannot hold."""
    return f"{value.isoformat()} is outside the times UTC can hold (years 1 to 9999)"
