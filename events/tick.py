"""Tick records: stream-time advances for partitions with no lead traffic.

A tick says "event time on this partition has reached ``time``". The processor publishes one
to each of its partitions every few seconds in live mode (and a producer that knows its own
clock, like the demo simulator, may publish them instead). Ticks live in the event log, so a
replay sees the same ticks at the same offsets and fires the same SLA breaches.

A tick is recognised by its ``ll_kind: tick`` header, never by its key (it has none); its
value is a small JSON object. It is counted as a tick, never as an accepted or rejected event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from events.errors import Rejection, RejectReason

TICK_TYPE = "leadledger.tick"
KIND_HEADER = "ll_kind"
TICK_HEADERS: list[tuple[str, bytes]] = [(KIND_HEADER, b"tick")]


class Tick(BaseModel):
    """A decoded tick: the stream time it claims for its partition."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    time: AwareDatetime
    source: str


def is_tick(headers: Sequence[tuple[str, bytes]]) -> bool:
    """Whether a record's headers mark it as a tick."""
    return (KIND_HEADER, b"tick") in headers


def encode_tick(time: datetime, source: str) -> bytes:
    """The value of a tick record at ``time`` (timezone-aware)."""
    return orjson.dumps({"type": TICK_TYPE, "time": time.isoformat(), "source": source})


def decode_tick(value: bytes) -> Tick | Rejection:
    """The tick in a record value, or why it is not one."""
    try:
        tick = Tick.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        return Rejection(
            RejectReason.INVALID_ENVELOPE, f"not a valid tick: {where}: {first['msg']}"
        )
    if tick.type != TICK_TYPE:
        return Rejection(RejectReason.UNKNOWN_TYPE, f"a tick must have type {TICK_TYPE!r}")
    return tick
