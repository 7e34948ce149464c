"""The replay's own binary COPY encoding, byte for byte as PostgreSQL's send functions."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.replay import binary_copy as bc


def test_a_timestamptz_is_microseconds_since_2000_in_utc_whatever_its_zone() -> None:
    at = datetime(2000, 1, 2, 0, 0, 1, 5, tzinfo=UTC)
    expected = struct.pack(">iq", 8, 86_400_000_000 + 1_000_005)
    assert bc.timestamptz(at) == expected
    assert bc.timestamptz(at.astimezone(timezone(timedelta(hours=-7)))) == expected
    assert bc.timestamptz(datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)) == struct.pack(
        ">iq", 8, -1_000_000
    )


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(TypeError):
        bc.timestamptz(datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        bc.row_encoder([bc.timestamptz])([datetime(2026, 1, 1)])


def test_arrays_carry_one_dimension_the_element_type_and_each_element() -> None:
    tags = bc.text_array_memo()(["met", "started"])
    body = struct.pack(">iiiii", 1, 0, 25, 2, 1) + bc.text("met") + bc.text("started")
    assert tags == struct.pack(">i", len(body)) + body
    empty = struct.pack(">iii", 0, 0, 1184)
    assert bc.timestamptz_array([]) == struct.pack(">i", len(empty)) + empty


def test_the_generated_row_encoder_writes_what_the_column_encoders_write() -> None:
    columns: list[bc.Encoder] = [
        bc.text, bc.int4, bc.timestamptz, bc.timestamptz_array, bc.float8, bc.text,
        bc.text_array_memo(),
    ]  # fmt: skip
    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    row = ("L-ü", 3, at, [at, at + timedelta(hours=1)], 1.5, None, ["started"])
    expected = struct.pack(">h", 7) + b"".join(
        struct.pack(">i", -1) if v is None else enc(v) for enc, v in zip(columns, row, strict=True)
    )
    assert bc.row_encoder(columns)(row) == expected


async def test_the_stream_has_the_header_every_row_and_the_trailer() -> None:
    encode = bc.row_encoder([bc.int4])
    out = b"".join([c async for c in bc.encoded_chunks(map(encode, [(1,), (2,)]))])
    assert out == bc.HEADER + encode((1,)) + encode((2,)) + struct.pack(">h", -1)
