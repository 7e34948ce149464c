"""SLA clock arithmetic: hand-computed business-hours cases, DST, holidays, and properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.sla_clock import AlwaysOn, BusinessHours, Window

BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_FIVE: tuple[Window, ...] = ((time(9), time(17)),)
WEEKDAYS_ONLY = (NINE_TO_FIVE,) * 5 + ((), ())
H, M = timedelta(hours=1), timedelta(minutes=1)


def business(
    zone: str = "Europe/Berlin",
    weekly: tuple[tuple[Window, ...], ...] = WEEKDAYS_ONLY,
    holidays: frozenset[date] = frozenset(),
) -> BusinessHours:
    return BusinessHours("business", zone, weekly, holidays)


def local(y: int, mo: int, d: int, h: int, mi: int, zone: ZoneInfo = BERLIN) -> datetime:
    """A wall-clock time in ``zone``, as the UTC instant the clock works with."""
    return datetime(y, mo, d, h, mi, tzinfo=zone).astimezone(UTC)


CLOCK = business()


# --- hand-computed cases ------------------------------------------------------------------


def test_a_friday_evening_mql_with_a_one_hour_limit_is_due_monday_at_ten() -> None:
    friday_evening = local(2025, 1, 10, 18, 30)
    assert CLOCK.deadline(friday_evening, H) == local(2025, 1, 13, 10, 0)


def test_the_rest_of_friday_counts_and_the_remainder_runs_on_monday() -> None:
    assert CLOCK.deadline(local(2025, 1, 10, 16, 30), H) == local(2025, 1, 13, 9, 30)
    assert CLOCK.elapsed(local(2025, 1, 10, 16, 0), local(2025, 1, 13, 10, 0)) == 2 * H


def test_a_start_before_opening_counts_from_the_opening() -> None:
    assert CLOCK.deadline(local(2025, 1, 13, 7, 0), 30 * M) == local(2025, 1, 13, 9, 30)


def test_a_limit_that_uses_up_the_day_ends_at_closing_time_not_next_morning() -> None:
    assert CLOCK.deadline(local(2025, 1, 13, 16, 0), H) == local(2025, 1, 13, 17, 0)


def test_twenty_four_business_hours_are_three_working_days() -> None:
    assert CLOCK.deadline(local(2025, 1, 13, 9, 0), 24 * H) == local(2025, 1, 15, 17, 0)


def test_a_holiday_is_skipped() -> None:
    clock = business(holidays=frozenset({date(2025, 1, 13)}))
    assert clock.deadline(local(2025, 1, 10, 18, 30), H) == local(2025, 1, 14, 10, 0)
    assert clock.elapsed(local(2025, 1, 10, 16, 0), local(2025, 1, 14, 10, 0)) == 2 * H


def test_lunch_breaks_split_the_day_into_windows() -> None:
    clock = business(weekly=(((time(9), time(12)), (time(13), time(17))),) * 5 + ((), ()))
    assert clock.deadline(local(2025, 1, 13, 11, 30), H) == local(2025, 1, 13, 13, 30)
    assert clock.elapsed(local(2025, 1, 13, 11, 0), local(2025, 1, 13, 14, 0)) == 2 * H


def test_business_hours_stay_wall_clock_hours_across_the_spring_dst_change() -> None:
    # Berlin moves from UTC+1 to UTC+2 on Sunday 2025-03-30: Monday 09:30 is 07:30 UTC.
    friday = local(2025, 3, 28, 16, 30)
    due = CLOCK.deadline(friday, H)
    assert due == datetime(2025, 3, 31, 7, 30, tzinfo=UTC)
    assert due.astimezone(BERLIN).time() == time(9, 30)
    assert friday == datetime(2025, 3, 28, 15, 30, tzinfo=UTC)


def test_business_hours_stay_wall_clock_hours_across_the_autumn_dst_change() -> None:
    # Back from UTC+2 to UTC+1 on Sunday 2025-10-26: Monday 09:30 is 08:30 UTC.
    due = CLOCK.deadline(local(2025, 10, 24, 16, 30), H)
    assert due == datetime(2025, 10, 27, 8, 30, tzinfo=UTC)


def test_a_round_the_clock_sunday_is_23_hours_long_when_the_clocks_go_forward() -> None:
    clock = business(weekly=((),) * 6 + (((time(0), None),),))  # Sundays 00:00-24:00 only
    sunday, monday = local(2025, 3, 30, 0, 0), local(2025, 3, 31, 0, 0)
    assert clock.elapsed(sunday, monday) == 23 * H
    assert clock.deadline(sunday, 23 * H) == monday
    assert clock.elapsed(local(2025, 10, 26, 0, 0), local(2025, 10, 27, 0, 0)) == 25 * H


def test_a_new_york_clock_follows_the_us_dst_date_not_the_european_one() -> None:
    ny = ZoneInfo("America/New_York")
    clock = business(zone="America/New_York")
    # The US moved on 2025-03-09; Europe only on 2025-03-30.
    due = clock.deadline(local(2025, 3, 7, 16, 30, zone=ny), H)
    assert due == local(2025, 3, 10, 9, 30, zone=ny) == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)


def test_the_always_on_clock_is_plain_arithmetic() -> None:
    start = local(2025, 1, 10, 18, 30)
    assert AlwaysOn().deadline(start, H) == start + H
    assert AlwaysOn().elapsed(start, start + 3 * H) == 3 * H
    assert AlwaysOn().elapsed(start, start - H) == timedelta(0)


def test_no_time_elapses_backwards_and_a_zero_limit_is_due_at_once() -> None:
    start = local(2025, 1, 10, 18, 30)
    assert CLOCK.elapsed(start, start - H) == timedelta(0)
    assert CLOCK.deadline(start, timedelta(0)) == start


def test_a_clock_without_any_opening_hours_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one opening window"):
        business(weekly=((),) * 7)


# --- properties -----------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
CLOCKS = [
    business(zone, holidays=frozenset({date(2025, 3, 31), date(2025, 12, 25)})) for zone in ZONES
] + [
    business("Europe/Berlin", (((time(8), time(12)), (time(13), time(18))),) * 6 + ((),)),
    business("Australia/Lord_Howe", ((),) * 6 + (((time(0), None),),)),
    AlwaysOn(),
]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)
limits = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))
PROPS = settings(max_examples=150, deadline=None)


@PROPS
@given(clock=st.sampled_from(CLOCKS), start=instants, limit=limits)
def test_elapsed_up_to_the_deadline_is_exactly_the_limit(
    clock: BusinessHours | AlwaysOn, start: datetime, limit: timedelta
) -> None:
    assert clock.elapsed(start, clock.deadline(start, limit)) == limit


@PROPS
@given(clock=st.sampled_from(CLOCKS), points=st.lists(instants, min_size=3, max_size=3))
def test_elapsed_time_adds_up_over_consecutive_stretches(
    clock: BusinessHours | AlwaysOn, points: list[datetime]
) -> None:
    a, b, c = sorted(points)
    assert clock.elapsed(a, b) + clock.elapsed(b, c) == clock.elapsed(a, c)
    assert clock.elapsed(a, c) <= c - a


@PROPS
@given(clock=st.sampled_from(CLOCKS), start=instants, d1=limits, d2=limits)
def test_a_longer_limit_never_has_an_earlier_deadline(
    clock: BusinessHours | AlwaysOn, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    short, long = sorted((d1, d2))
    assert start <= clock.deadline(start, short) <= clock.deadline(start, long)


@PROPS
@given(clock=st.sampled_from(CLOCKS[:-1]), start=instants, limit=limits)
def test_a_deadline_falls_inside_opening_hours_or_at_a_closing_time(
    clock: BusinessHours, start: datetime, limit: timedelta
) -> None:
    due = clock.deadline(start, limit)
    if limit > timedelta(0):
        assert clock.is_open(due - timedelta(microseconds=1))
