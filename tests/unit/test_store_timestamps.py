"""The processor connections' ``timestamptz`` codec gives the driver's own values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.store import timestamps

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def reference(value: datetime) -> int:
    """What asyncpg writes for an aware datetime: microseconds from 2000-01-01 UTC."""
    return (value.astimezone(UTC) - PG_EPOCH) // timedelta(microseconds=1)


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_a_utc_datetime_encodes_to_its_microseconds_since_the_postgres_epoch(
    naive: datetime,
) -> None:
    value = naive.replace(tzinfo=UTC)
    assert timestamps.encode(value) == (reference(value),)
    assert timestamps.decode(timestamps.encode(value)) == value


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_a_datetime_in_another_zone_encodes_as_the_same_instant(
    naive: datetime, minutes: int
) -> None:
    value = naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    assert timestamps.encode(value) == (reference(value),)


def test_a_decoded_value_is_in_the_utc_singleton_as_the_driver_returns_it() -> None:
    value = timestamps.decode((86_400_000_001,))
    assert value == datetime(2000, 1, 2, 0, 0, 0, 1, tzinfo=UTC)
    assert value.tzinfo is UTC


def test_the_naive_infinities_map_to_postgres_infinities_and_back() -> None:
    assert timestamps.encode(datetime.max) == (2**63 - 1,)
    assert timestamps.encode(datetime.min) == (-(2**63),)
    assert timestamps.decode((2**63 - 1,)) is datetime.max
    assert timestamps.decode((-(2**63),)) is datetime.min


def test_a_naive_datetime_and_a_date_are_taken_as_local_time_as_the_driver_takes_them() -> None:
    naive = datetime(2026, 5, 1, 12, 30)
    assert timestamps.encode(naive) == (reference(naive.astimezone()),)
    local = datetime.now(UTC).astimezone().utcoffset() or timedelta()
    midnight = datetime(2026, 5, 1, tzinfo=timezone(local))
    assert timestamps.encode(date(2026, 5, 1)) == (reference(midnight),)


def test_anything_else_is_refused_with_the_drivers_type_error() -> None:
    with pytest.raises(TypeError, match=r"expected a datetime\.date or datetime\.datetime"):
        timestamps.encode("2026-05-01")  # type: ignore[arg-type]
