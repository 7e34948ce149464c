"""The ``--as-of`` cut: where each partition's replay stops. Pure.

A partition is replayed up to, not including, its first record whose own time (an event's
``time`` or a tick's) is after the as-of instant. From there on that partition is done: its
stream time never passes the instant, which is the state the live processor held when the
partition's stream time reached it. A record whose time cannot be read (it will be rejected
as malformed) moves no stream time, so it stays in while its partition is before the cut.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import orjson

from services.processor.records import Record


def record_time(record: Record) -> datetime | None:
    """The event time or tick time a record claims, or None if it has none readable."""
    try:
        obj = orjson.loads(record.value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("time"), str):
        return None
    try:
        when = datetime.fromisoformat(obj["time"])
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # the codec rejects naive times; it moves no stream time
    return when


class AsOfCut:
    """Stateful filter over record batches; remembers which partitions have stopped."""

    def __init__(self, as_of: datetime) -> None:
        self.as_of = as_of
        self.stopped: set[int] = set()
        self.dropped = 0

    def keep(self, records: Iterable[Record]) -> list[Record]:
        """The records of this batch that are before the cut of their partition."""
        out: list[Record] = []
        for record in records:
            if record.partition in self.stopped:
                self.dropped += 1
                continue
            when = record_time(record)
            if when is not None and when > self.as_of:
                self.stopped.add(record.partition)
                self.dropped += 1
                continue
            out.append(record)
        return out
