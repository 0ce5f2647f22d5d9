"""Working calendars: business time across weekends, holidays, DST and split shifts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.calendar import WorkingCalendar, advance, elapsed
from policies.errors import PolicyFileError
from policies.loader import parse_policy

HEL = ZoneInfo("Europe/Helsinki")
NYC = ZoneInfo("America/New_York")
WEEKDAYS_9_TO_5 = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}


def calendar(tz: str = "Europe/Helsinki", **kw: object) -> WorkingCalendar:
    kw.setdefault("hours", WEEKDAYS_9_TO_5)
    return WorkingCalendar(timezone=tz, **kw)  # type: ignore[arg-type]


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def test_a_friday_evening_ticket_is_due_on_monday_morning() -> None:
    fri = local(HEL, 2026, 11, 6, 16, 30)
    due = advance(calendar(), fri, timedelta(hours=4))
    assert due.astimezone(HEL) == datetime(2026, 11, 9, 12, 30, tzinfo=HEL)


def test_finnish_christmas_holidays_are_not_working_time() -> None:
    fi = calendar(country="FI")
    wed = local(HEL, 2026, 12, 23, 16, 0)
    due = advance(fi, wed, timedelta(hours=2))
    # 24-26 December are holidays (Thu-Sat), 27 is a Sunday.
    assert due.astimezone(HEL) == datetime(2026, 12, 28, 10, 0, tzinfo=HEL)
    assert fi.close_of_business_day(wed, 3).astimezone(HEL) == datetime(
        2026, 12, 30, 17, 0, tzinfo=HEL
    )
    assert fi.is_closed(date(2026, 12, 24))
    assert not calendar().is_closed(date(2026, 12, 24))


def test_extra_holidays_and_closures_are_not_working_time() -> None:
    shut = calendar(
        extra_holidays=[date(2026, 11, 9)],
        closures=[{"from": date(2026, 11, 10), "to": date(2026, 11, 11)}],
    )
    due = advance(shut, local(HEL, 2026, 11, 6, 16, 0), timedelta(hours=2))
    assert due.astimezone(HEL) == datetime(2026, 11, 12, 10, 0, tzinfo=HEL)


@pytest.mark.parametrize(
    ("zone", "friday", "monday"),
    [
        (HEL, (2026, 3, 27), (2026, 3, 30)),  # clocks go forward Sun 29 March
        (HEL, (2026, 10, 23), (2026, 10, 26)),  # clocks go back Sun 25 October
        (NYC, (2026, 3, 6), (2026, 3, 9)),  # forward Sun 8 March
        (NYC, (2026, 10, 30), (2026, 11, 2)),  # back Sun 1 November
    ],
)
def test_a_deadline_across_a_daylight_saving_change_keeps_its_local_time(
    zone: ZoneInfo, friday: tuple[int, int, int], monday: tuple[int, int, int]
) -> None:
    cal = calendar(tz=zone.key)
    start = local(zone, *friday, 16, 0)
    due = advance(cal, start, timedelta(hours=2))
    assert due.astimezone(zone) == datetime(*monday, 10, 0, tzinfo=zone)
    assert elapsed(cal, start, due) == timedelta(hours=2)


def test_calendar_time_counts_every_hour_even_across_dst() -> None:
    start = local(HEL, 2026, 3, 28, 12, 0)
    due = advance(None, start, timedelta(days=1))
    assert due - start == timedelta(hours=24)
    assert due.astimezone(HEL).hour == 13  # the clocks went forward an hour


def test_split_shifts_skip_the_lunch_break() -> None:
    cal = calendar(hours={"mon": ["08:00-12:00", "13:00-17:00"]})
    start = local(HEL, 2026, 11, 9, 11, 30)
    assert advance(cal, start, timedelta(hours=1)).astimezone(HEL) == datetime(
        2026, 11, 9, 13, 30, tzinfo=HEL
    )
    assert elapsed(cal, start, local(HEL, 2026, 11, 9, 14, 0)) == timedelta(hours=1, minutes=30)


def test_a_pause_over_a_weekend_does_not_count() -> None:
    fri = local(HEL, 2026, 11, 6, 16, 0)
    pause = (local(HEL, 2026, 11, 6, 17, 0), local(HEL, 2026, 11, 9, 10, 0))
    due = advance(None, fri, timedelta(hours=2), [pause])
    assert due.astimezone(HEL) == datetime(2026, 11, 9, 11, 0, tzinfo=HEL)
    business = advance(calendar(), fri, timedelta(hours=2), [pause])
    assert business.astimezone(HEL) == datetime(2026, 11, 9, 11, 0, tzinfo=HEL)


NIGHT_SHIFTS = {d: ["00:00-02:15", "02:45-06:00", "20:00-23:30"] for d in WEEKDAYS_9_TO_5}


def test_a_shift_that_ends_in_the_spring_forward_gap_ends_when_the_clocks_jump() -> None:
    # New York, Sunday 8 March 2026: 02:00 EST jumps to 03:00 EDT. Nobody can work
    # until 02:30 that night: the first shift ends at the jump, the second starts at 03:00.
    cal = calendar(tz="America/New_York", hours={"sun": ["00:00-02:30", "03:00-06:00"]})
    start, end = local(NYC, 2026, 3, 8, 0, 0), local(NYC, 2026, 3, 8, 6, 0)
    assert elapsed(cal, start, end) == end - start == timedelta(hours=5)
    jump = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert cal.day_intervals(date(2026, 3, 8)) == [(start, jump), (jump, end)]
    assert advance(cal, start, timedelta(hours=2)) == jump


def test_a_shift_that_starts_in_a_half_hour_gap_starts_when_the_clocks_jump() -> None:
    # Lord Howe Island, Sunday 4 October 2026: 02:00 (+10:30) jumps to 02:30 (+11).
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    cal = calendar(tz=lord_howe.key, hours={"sun": ["00:00-02:15", "02:20-06:00"]})
    start, end = local(lord_howe, 2026, 10, 4, 0, 0), local(lord_howe, 2026, 10, 4, 6, 0)
    jump = datetime(2026, 10, 3, 15, 30, tzinfo=UTC)
    assert cal.day_intervals(date(2026, 10, 4)) == [(start, jump), (jump, end)]
    assert elapsed(cal, start, end) == end - start == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("America/New_York", (2026, 3, 7)),  # forward at 02:00 on Sunday
        ("America/New_York", (2026, 10, 31)),  # back at 02:00 on Sunday
        ("Europe/London", (2026, 3, 28)),
        ("Europe/London", (2026, 10, 24)),
        ("Australia/Lord_Howe", (2026, 10, 3)),  # forward half an hour
        ("Australia/Lord_Howe", (2026, 4, 4)),  # back half an hour
        ("America/Havana", (2026, 3, 7)),  # forward at midnight
        ("Asia/Kathmandu", (2026, 3, 7)),  # +05:45, no daylight saving
    ],
)
@pytest.mark.parametrize("minutes", [60, 135, 150, 170, 400, 480, 700])
def test_night_shifts_across_a_daylight_saving_change_match_a_minute_by_minute_count(
    tz: str, day: tuple[int, int, int], minutes: int
) -> None:
    cal = calendar(tz=tz, hours={d: NIGHT_SHIFTS["mon"] for d in ("sat", "sun", "mon")})
    start = datetime(*day, 21, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC)
    due = advance(cal, start, timedelta(minutes=minutes))
    assert due == _brute_force_due(cal, start, minutes)
    assert elapsed(cal, start, due) == timedelta(minutes=minutes)


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1)),  # noqa: DTZ001
    st.integers(0, 60 * 24 * 10),
    st.sampled_from(["America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", None]),
    st.lists(st.tuples(st.integers(-600, 60 * 24 * 10), st.integers(0, 60 * 24 * 3)), max_size=3),
)
def test_elapsed_undoes_advance_with_overlapping_pauses(
    naive_start: datetime, minutes: int, tz: str | None, raw_pauses: list[tuple[int, int]]
) -> None:
    """Pauses may overlap each other, non-working time or the start; ``advance`` is
    monotonic and ``elapsed`` counts back exactly the amount it was given."""
    cal = calendar(tz=tz, hours={**WEEKDAYS_9_TO_5, "sun": NIGHT_SHIFTS["mon"]}) if tz else None
    start = naive_start.replace(tzinfo=UTC)
    pauses = [
        (start + timedelta(minutes=a), start + timedelta(minutes=a + b)) for a, b in raw_pauses
    ]
    amount = timedelta(minutes=minutes)
    due = advance(cal, start, amount, pauses)
    assert due >= start
    assert elapsed(cal, start, due, pauses) == amount
    assert advance(cal, start, amount + timedelta(minutes=1), pauses) > due


BAD_CALENDARS = [
    ("hours:\n      mon: ['09:00-12:00', '11:00-17:00']", "09:00-12:00 and 11:00-17:00 overlap"),
    ("hours:\n      mon: ['17:00-09:00']", "end after it starts"),
    ("hours:\n      mon: ['9-5']", "not an interval"),
    ("hours:\n      mon: []", "at least one day"),
    ("hours:\n      funday: ['09:00-17:00']", "unknown key 'funday'; the keys here are: mon, tue"),
]


@pytest.mark.parametrize(("hours", "problem"), BAD_CALENDARS)
def test_bad_working_hours_are_refused_when_the_policy_loads(hours: str, problem: str) -> None:
    head = "name: x\nversion: '1'\ncurrency: EUR\ncalendars:\n  office:\n    timezone: UTC\n"
    text = f"{head}    {hours}\n"
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="p.yaml")
    assert error.value.problems[0].location.startswith("calendars.office.hours")
    assert problem in str(error.value)


@pytest.mark.parametrize(
    ("fields", "where", "problem"),
    [
        ("timezone: Europe/Helsinky", "calendars.office.timezone", "IANA time zone"),
        (
            "timezone: UTC\n    country: XX",
            "calendars.office.country",
            "no public holidays are known for country 'XX'",
        ),
        (
            "timezone: UTC\n    country: fi",
            "calendars.office.country",
            "country 'fi' (did you mean 'FI'?)",
        ),
        (
            "timezone: UTC\n    country: US\n    subdivision: ZZ",
            "calendars.office.subdivision",
            "subdivision 'ZZ' of US; its subdivisions are: AK, AL,",
        ),
        (
            "timezone: UTC\n    subdivision: NY",
            "calendars.office.subdivision",
            "a subdivision needs a country",
        ),
    ],
)
def test_unknown_zones_and_countries_are_refused_naming_the_field(
    fields: str, where: str, problem: str
) -> None:
    text = (f"name: x\nversion: '1'\ncurrency: EUR\ncalendars:\n  office:\n    {fields}\n"
            "    hours: {mon: ['09:00-17:00']}\n")  # fmt: skip
    with pytest.raises(PolicyFileError) as error:
        parse_policy(text, file="p.yaml")
    assert error.value.problems[0].location.startswith(where)
    assert problem in str(error.value)


def _brute_force_due(cal: WorkingCalendar, start: datetime, minutes: int) -> datetime:
    """Minute by minute: a minute counts when its local wall-clock time falls inside the
    day's hours on a day that is not closed. Independent of ``advance``."""
    t, left = start, minutes
    while True:
        wall = t.astimezone(cal.zone)
        day = wall.date()
        spans = (
            []
            if cal.is_closed(day)
            else cal.hours.get(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()], [])
        )
        minute_of_day = wall.hour * 60 + wall.minute
        if any(a <= minute_of_day < b for a, b in spans):
            if left == 0:
                return t
            left -= 1
        elif left == 0 and any(minute_of_day == b for _, b in spans):
            return t
        t += timedelta(minutes=1)


@settings(max_examples=40, deadline=None)
@given(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 20)),  # noqa: DTZ001
    st.integers(1, 60 * 20),
    st.sampled_from(["Europe/Helsinki", "America/New_York", "Asia/Kolkata"]),
)
def test_business_deadlines_match_a_minute_by_minute_count(
    naive_start: datetime, minutes: int, tz: str
) -> None:
    cal = calendar(
        tz=tz, country="FI" if tz == "Europe/Helsinki" else None,
        hours={"mon": ["08:00-12:00", "13:00-16:30"], "tue": ["09:00-17:00"],
               "wed": ["09:00-17:00"], "thu": ["10:00-14:00"], "fri": ["09:00-12:00"]},
    )  # fmt: skip
    start = naive_start.replace(second=0, microsecond=0, tzinfo=UTC)
    expected = _brute_force_due(cal, start, minutes)
    got = advance(cal, start, timedelta(minutes=minutes))
    assert got == expected
