"""Working calendars and time arithmetic for SLA targets. Pure: no clock, no storage.

All arithmetic is on aware UTC instants. A calendar's weekly hours are local wall-clock
times in its IANA time zone; each day's intervals are turned into UTC instants with that
day's offset, so a daylight-saving change never shifts a deadline by an hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from policies.types import LocatedError, format_duration

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: How far ahead a deadline is searched for before the calendar is judged to have no time.
HORIZON_DAYS = 3 * 366

_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Interval = tuple[datetime, datetime]


def _interval(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _INTERVAL.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not an interval like '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{value!r} is not a time of day")
    return (h1 * 60 + m1, h2 * 60 + m2)


def _span(start: int, end: int) -> str:
    """``(540, 1020)`` as ``09:00-17:00``."""
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def _date_not_number(value: Any) -> Any:
    """A date is written as a date: pydantic would read a number as seconds since 1970
    (``20261224`` as 23 August 1970)."""
    if isinstance(value, int | float | Decimal):  # bool is an int
        raise ValueError(f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-12-24")
    return value


#: A day, from YAML text (``2026-12-24``) or a TOML date; never a number.
Day = Annotated[date, BeforeValidator(_date_not_number)]

#: Minutes from local midnight, start and end ("09:00-17:00" -> (540, 1020)).
Hours = Annotated[tuple[int, int], BeforeValidator(_interval)]


class Closure(BaseModel):
    """Dates (inclusive) on which the calendar has no working time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: Day = Field(alias="from")
    end: Day = Field(alias="to")

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end < self.start:
            raise ValueError(f"closure ends ({self.end}) before it starts ({self.start})")
        return self


class WorkingCalendar(BaseModel):
    """Weekly working hours in a time zone, minus public holidays, extra dates and
    closures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    country: str | None = None
    subdivision: str | None = None
    hours: dict[Weekday, list[Hours]]
    extra_holidays: list[Day] = []
    closures: list[Closure] = []

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. 'Europe/Helsinki')"
            ) from None
        return value

    @field_validator("hours")
    @classmethod
    def _sane_hours(
        cls, value: dict[str, list[tuple[int, int]]]
    ) -> dict[str, list[tuple[int, int]]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for day, intervals in value.items():
            ordered = sorted(intervals)
            for start, end in ordered:
                if end <= start:
                    problems.append(
                        ((day,), f"{_span(start, end)}: an interval must end after it starts")
                    )
            for (s1, e1), (s2, e2) in pairwise(ordered):
                if s2 < e1:
                    problems.append(
                        ((day,), f"{_span(s1, e1)} and {_span(s2, e2)} overlap: write one "
                                 "interval, or let one end where the next starts")
                    )  # fmt: skip
            value[day] = ordered
        if problems:
            raise LocatedError(problems)
        if not any(value.values()):
            raise ValueError("a calendar needs working hours on at least one day")
        return value

    @model_validator(mode="after")
    def _known_country(self) -> WorkingCalendar:
        if self.subdivision is not None and self.country is None:
            raise LocatedError([(("subdivision",), "a subdivision needs a country")])
        if self.country is None:
            return self
        supported = holidays.list_supported_countries()
        if self.country not in supported:
            hint = (
                f" (did you mean {self.country.upper()!r}?)"
                if self.country.upper() in supported
                else ""
            )
            raise LocatedError(
                [
                    (
                        ("country",),
                        f"no public holidays are known for country {self.country!r}{hint}: "
                        "write an ISO 3166 code the holidays package knows, e.g. 'DE', 'FI', "
                        "'US'",
                    )
                ]
            )
        subdivisions = supported[self.country]
        if self.subdivision is not None and self.subdivision not in subdivisions:
            known = ", ".join(subdivisions) if subdivisions else "none"
            raise LocatedError(
                [
                    (
                        ("subdivision",),
                        f"no public holidays are known for subdivision {self.subdivision!r} "
                        f"of {self.country}; its subdivisions are: {known}",
                    )
                ]
            )
        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
        except NotImplementedError as exc:
            raise ValueError(f"unknown holiday country or subdivision: {exc}") from None
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase | None:
        if self.country is None:
            return None
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def too_long(self, within: timedelta | None, business_days: int | None) -> str | None:
        """Why a target of ``within`` working time or ``business_days`` cannot be counted
        on this calendar (more than two years of its weekly hours: the deadline is
        searched for ``HORIZON_DAYS`` ahead), or None."""
        weekly = [sum(end - start for start, end in spans) for spans in self.hours.values()]
        longest = timedelta(minutes=sum(weekly) * 104)
        if within is not None and within > longest:
            return (
                f"within {format_duration(within)} is more than two years of working time "
                f"(at most {format_duration(longest)}, 104 weeks of its hours)"
            )
        most_days = 104 * sum(1 for m in weekly if m)
        if business_days is not None and business_days > most_days:
            return (
                f"business_days {business_days} is more than two years of business days "
                f"(at most {most_days}, 104 weeks of its working days)"
            )
        return None

    def is_closed(self, day: date) -> bool:
        """No working time on ``day``: a public holiday, an extra holiday or a closure."""
        if day in self.extra_holidays:
            return True
        if any(c.start <= day <= c.end for c in self.closures):
            return True
        return self._holidays is not None and day in self._holidays

    def day_intervals(self, day: date) -> list[Interval]:
        """``day``'s working intervals as UTC instants (empty on a closed day)."""
        if self.is_closed(day):
            return []
        out = []
        for start, end in self.hours.get(WEEKDAYS[day.weekday()], []):
            out.append((self._instant(day, start), self._instant(day, end)))
        return [(s, e) for s, e in out if e > s]

    def _instant(self, day: date, minutes: int) -> datetime:
        """The UTC instant of a wall-clock time on ``day``. A time the clocks skip (in the
        gap when they go forward) is the instant they jump, as a wall clock shows it: the
        first moment at or after that time. A repeated time (in the fold when they go
        back) is its first occurrence."""
        if minutes == 24 * 60:
            local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        else:
            local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        instant = local.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == local.replace(tzinfo=None):
            return instant
        return self._jump(local.replace(fold=1).astimezone(UTC), instant)

    def _jump(self, before: datetime, after: datetime) -> datetime:
        """The instant the zone's offset changes, between ``before`` (the old offset) and
        ``after`` (the new one); transitions fall on whole seconds."""
        offset = after.astimezone(self.zone).utcoffset()
        second = timedelta(seconds=1)
        while after - before > second:
            middle = before + (after - before) // 2
            middle -= timedelta(microseconds=middle.microsecond)
            if middle.astimezone(self.zone).utcoffset() == offset:
                after = middle
            else:
                before = middle
        return after

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def intervals_from(self, start: datetime) -> Iterator[Interval]:
        """Working intervals from ``start`` on, clipped to begin no earlier than it."""
        day = self.local_date(start) - timedelta(days=1)
        for offset in range(HORIZON_DAYS):
            for s, e in self.day_intervals(day + timedelta(days=offset)):
                if e > start:
                    yield (max(s, start), e)

    def close_of_business_day(self, start: datetime, days: int) -> datetime:
        """The end of the last working interval on the ``days``-th business day after the
        local day of ``start`` (that day not counted): 'by the close of the third business
        day after receipt'."""
        day = self.local_date(start)
        counted = 0
        for _ in range(HORIZON_DAYS):
            day += timedelta(days=1)
            intervals = self.day_intervals(day)
            if intervals:
                counted += 1
                if counted == days:
                    return intervals[-1][1]
        raise ValueError("the calendar has no business day within three years")


def _without(intervals: Iterator[Interval], pauses: Sequence[Interval]) -> Iterator[Interval]:
    """``intervals`` with the paused stretches cut out."""
    for start, end in intervals:
        pieces = [(start, end)]
        for ps, pe in pauses:
            nxt = []
            for s, e in pieces:
                if pe <= s or ps >= e:
                    nxt.append((s, e))
                    continue
                if s < ps:
                    nxt.append((s, ps))
                if pe < e:
                    nxt.append((pe, e))
            pieces = nxt
        yield from pieces


def _always(start: datetime) -> Iterator[Interval]:
    yield (start, datetime.max.replace(tzinfo=UTC))


def counted_intervals(
    calendar: WorkingCalendar | None, start: datetime, pauses: Sequence[Interval]
) -> Iterator[Interval]:
    """The stretches of time that count for a target: working time (or all time, without
    a calendar) from ``start``, minus pauses."""
    base = calendar.intervals_from(start) if calendar is not None else _always(start)
    return _without(base, pauses)


def advance(
    calendar: WorkingCalendar | None,
    start: datetime,
    amount: timedelta,
    pauses: Sequence[Interval] = (),
) -> datetime:
    """The instant at which ``amount`` of counted time has passed since ``start``."""
    if amount < timedelta(0):
        raise ValueError("cannot advance by a negative amount")
    left = amount
    for s, e in counted_intervals(calendar, start, pauses):
        if e - s >= left:
            return s + left
        left -= e - s
    raise ValueError("the calendar has no working time within three years")


def elapsed(
    calendar: WorkingCalendar | None,
    start: datetime,
    now: datetime,
    pauses: Sequence[Interval] = (),
) -> timedelta:
    """Counted time between ``start`` and ``now``."""
    total = timedelta(0)
    if now <= start:
        return total
    for s, e in counted_intervals(calendar, start, pauses):
        if s >= now:
            break
        total += min(e, now) - s
    return total


__all__ = [
    "WEEKDAYS",
    "Closure",
    "WorkingCalendar",
    "advance",
    "counted_intervals",
    "elapsed",
]
