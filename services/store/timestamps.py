"""``timestamptz`` values on the processor's connections, encoded in half the driver's time.

asyncpg's own encoder compares every datetime with its two infinities, which are naive, so
each comparison of an aware value calls ``utcoffset``; it then converts to UTC and subtracts
its epoch. That was ~1.1 us per value, and a batch commit sends about nine per event (archive,
lead, stage and handoff rows; more with SLA timers). The processor's datetimes are all in
``datetime.UTC`` (the codec normalises event times, everything else is derived from them or
read back from PostgreSQL), and an aware value never equals a naive infinity, so for those the
microseconds since PostgreSQL's epoch are the whole answer (~0.5 us with the call). Anything
else goes the driver's way, step by step. Decoding gives what asyncpg's decoder gives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import asyncpg

#: PostgreSQL's epoch, and its infinities as asyncpg maps them (naive datetime.max / min).
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_INFINITY, _NEG_INFINITY = datetime.max, datetime.min
_PG_INFINITY, _PG_NEG_INFINITY = 2**63 - 1, -(2**63)


def encode(value: date) -> tuple[int]:
    """A ``timestamptz`` as asyncpg's tuple format: microseconds since 2000-01-01 UTC."""
    if type(value) is datetime and value.tzinfo is UTC:
        t = value - _PG_EPOCH
        return ((t.days * 86400 + t.seconds) * 1_000_000 + t.microseconds,)
    return _encode_other(value)


def _encode_other(value: object) -> tuple[int]:
    # asyncpg's timestamptz_encode, step by step: dates at local midnight, naive infinities,
    # then any other datetime converted to UTC (a naive one taken as local time).
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise TypeError(
                "expected a datetime.date or datetime.datetime instance, "
                f"got {type(value).__name__!r}"
            )
        local = datetime.now(UTC).astimezone().utcoffset()
        value = datetime(value.year, value.month, value.day, tzinfo=timezone(local or timedelta()))
    if value == _INFINITY:
        return (_PG_INFINITY,)
    if value == _NEG_INFINITY:
        return (_PG_NEG_INFINITY,)
    t = value.astimezone(UTC) - _PG_EPOCH
    return ((t.days * 86400 + t.seconds) * 1_000_000 + t.microseconds,)


def decode(value: tuple[int]) -> datetime:
    """What asyncpg's own decoder returns: an aware UTC datetime, or a naive infinity."""
    us = value[0]
    if us == _PG_INFINITY:
        return _INFINITY
    if us == _PG_NEG_INFINITY:
        return _NEG_INFINITY
    return _PG_EPOCH + timedelta(microseconds=us)


async def use_fast_timestamptz(conn: asyncpg.Connection) -> None:
    """Route the connection's ``timestamptz`` values (scalars, arrays, row fields, COPY)
    through ``encode`` and ``decode``."""
    await conn.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=encode, decoder=decode, format="tuple"
    )
