"""PostgreSQL's binary COPY format, encoded here for the replay's widest table (``sla_timer``).

asyncpg's ``copy_records_to_table`` encodes each value through its codec, which for arrays
walks every element through several abstract-class checks: the two arrays of an
``sla_timer`` row cost the client about as much as its other 18 values together (measured
~10 us a row). Here each column has one plain encoder, the few distinct tag lists are
encoded once, and rows go out in ~1 MiB chunks through ``copy_to_table``. The bytes follow
https://www.postgresql.org/docs/current/sql-copy.html (binary format) and the types' send
functions: int4 and float8 big-endian, timestamptz as microseconds since 2000-01-01 UTC,
text as UTF-8, a one-dimensional array as (1, has-nulls 0, element oid, length, lower bound
1) and its elements.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

#: file header: signature, flags, header extension length
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
#: a NULL field, and the epoch of PostgreSQL's binary timestamps
NULL = struct.pack(">i", -1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_TEXT_OID, _TIMESTAMPTZ_OID = 25, 1184
_CHUNK = 1 << 20

_int4 = struct.Struct(">ii").pack
#: a field of 8 bytes: its length, then the value
pack_int8 = struct.Struct(">iq").pack
pack_float8 = struct.Struct(">id").pack
_len = struct.Struct(">i").pack
_array_head = struct.Struct(">iiiii").pack

Encoder = Callable[[Any], bytes]


def text(v: str) -> bytes:
    b = v.encode()
    return _len(len(b)) + b


def int4(v: int) -> bytes:
    return _int4(4, v)


def float8(v: float) -> bytes:
    return pack_float8(8, v)


def _micros(v: datetime) -> int:
    # Exact: timedelta arithmetic in integers (a float timestamp would round microseconds).
    d = v - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def timestamptz(v: datetime) -> bytes:
    # A naive datetime raises TypeError: it cannot be subtracted from the aware epoch.
    return pack_int8(8, _micros(v))


def _array(oid: int, elements: Sequence[bytes]) -> bytes:
    if not elements:
        body = struct.pack(">iii", 0, 0, oid)
    else:
        body = _array_head(1, 0, oid, len(elements), 1) + b"".join(elements)
    return _len(len(body)) + body


def timestamptz_array(v: Sequence[datetime]) -> bytes:
    if not v:  # most timers have no escalation steps: one shared encoding
        return _EMPTY_TIMESTAMPTZ_ARRAY
    return _array(_TIMESTAMPTZ_OID, [timestamptz(x) for x in v])


_EMPTY_TIMESTAMPTZ_ARRAY = _array(_TIMESTAMPTZ_OID, ())


def text_array_memo() -> Encoder:
    """A ``text[]`` encoder that encodes each distinct list once (tag lists are few)."""
    seen: dict[tuple[str, ...], bytes] = {}

    def encode(v: Sequence[str]) -> bytes:
        key = tuple(v)
        found = seen.get(key)
        if found is None:
            found = seen[key] = _array(_TEXT_OID, [text(x) for x in key])
        return found

    return encode


class TextMemo:
    """A ``text`` encoder that encodes each distinct value once, for a column of names from
    the configuration (stages, teams, policies, statuses): a dict lookup costs less than the
    encoding. Never for a column of ids or free text, whose memo would grow by a row each."""

    __name__ = "text_memo"

    def __init__(self) -> None:
        self.seen: dict[str, bytes] = {}

    def __call__(self, v: str) -> bytes:
        found = self.seen.get(v)
        if found is None:
            found = self.seen[v] = text(v)
        return found


#: encoders ``row_encoder`` writes inline, by what they compute (the rest are called)
_INLINE = {
    "text": "b = {v}.encode(); ap(_len(len(b))); ap(b)",
    "int4": "ap(_int4(4, {v}))",
    "float8": "ap(_float8(8, {v}))",
    "timestamptz": (
        "d = {v} - _EPOCH; ap(_int8(8, (d.days * 86400 + d.seconds) * 1000000 + d.microseconds))"
    ),
}


def row_encoder(columns: Sequence[Encoder]) -> Callable[[Sequence[Any]], bytes]:
    """One row's bytes: its field count, then each value (NULL for None) by its encoder.

    Generated as one function with the plain encoders written inline: a call per value cost
    more than the encoding. A naive datetime still fails (subtracting the aware epoch
    raises), as in ``timestamptz``."""
    names = [f"c{i}" for i in range(len(columns))]
    scope: dict[str, Any] = {
        "_len": _len, "_int4": _int4, "_float8": pack_float8, "_int8": pack_int8, "_EPOCH": EPOCH,
        "_NULL": NULL, "_COUNT": struct.pack(">h", len(columns)),
    }  # fmt: skip
    lines = [f"def encode(row):\n    {', '.join(names)}, = row\n    out = [_COUNT]\n"
             "    ap = out.append\n"]  # fmt: skip
    for i, (name, enc) in enumerate(zip(names, columns, strict=True)):
        inline = _INLINE.get(getattr(enc, "__name__", ""))
        if isinstance(enc, TextMemo):
            # An encoding is never empty (it starts with its length), so ``or`` only calls
            # the memo for a value it has not seen.
            scope[f"_seen{i}"], scope[f"_enc{i}"] = enc.seen, enc
            body = f"ap(_seen{i}.get({name}) or _enc{i}({name}))"
        elif inline is not None and enc is globals()[enc.__name__]:
            body = inline.format(v=name)
        else:
            scope[f"_enc{i}"] = enc
            body = f"ap(_enc{i}({name}))"
        lines.append(f"    if {name} is None: ap(_NULL)\n    else: {body}\n")
    lines.append("    return b''.join(out)\n")
    exec("".join(lines), scope)
    encode: Callable[[Sequence[Any]], bytes] = scope["encode"]
    return encode


async def encoded_chunks(rows: Iterable[bytes]) -> AsyncIterator[bytes]:
    """The whole COPY stream (header, rows, trailer) in chunks of about ``_CHUNK`` bytes, of
    rows given as their bytes (or as ``body_chunks`` of them)."""
    yield HEADER
    for chunk in body_chunks(rows):
        yield chunk
    yield TRAILER


def body_chunks(rows: Iterable[bytes]) -> Iterator[bytes]:
    """Rows' bytes joined into chunks of about ``_CHUNK`` bytes, without header or trailer:
    what a parallel replay's worker sends the process that COPYs."""
    buf: list[bytes] = []
    size = 0
    for b in rows:
        buf.append(b)
        size += len(b)
        if size >= _CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)
