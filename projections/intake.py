"""Checks on a record before its event reaches a fold: key, clock skew and lateness.

Time comes from the record (its broker timestamp) and from the partition's stream time, never
from the wall clock, so a replay of the same log accepts and rejects exactly the same records.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from events.envelope import Event
from events.errors import FieldError, Rejection, RejectReason


def check_intake(
    event: Event,
    key: bytes | None,
    broker_time: datetime,
    stream_time: datetime | None,
    *,
    max_future_skew: timedelta,
    allowed_lateness: timedelta,
) -> Rejection | None:
    """None if the record may be folded, else why not.

    ``broker_time`` is when the broker appended the record; an event cannot have happened
    after it (beyond clock skew). ``stream_time`` is the largest event time already applied
    on the partition; events older than it by more than ``allowed_lateness`` are too late for
    the SLA timers that already fired on that partition.
    """
    if not key:
        return Rejection(
            RejectReason.MISSING_KEY,
            "the Kafka record has no key; publish with key = lead id (the event subject)",
        )
    if key != event.key:
        return Rejection(
            RejectReason.KEY_MISMATCH,
            f"the record key {key[:128]!r} is not the event subject {event.subject!r}",
            (FieldError("subject", "must equal the Kafka record key"),),
        )
    if event.time - broker_time > max_future_skew:
        return Rejection(
            RejectReason.FUTURE_EVENT,
            f"event time {event.time.isoformat()} is more than {max_future_skew} after the "
            f"broker received it ({broker_time.isoformat()})",
            (FieldError("time", "must not be in the future"),),
        )
    if stream_time is not None and stream_time - event.time > allowed_lateness:
        return Rejection(
            RejectReason.TOO_LATE,
            f"event time {event.time.isoformat()} is more than {allowed_lateness} behind the "
            f"partition's stream time {stream_time.isoformat()}",
            (FieldError("time", "is beyond the allowed lateness"),),
        )
    return None


def check_tick(
    tick_time: datetime, broker_time: datetime, max_future_skew: timedelta
) -> Rejection | None:
    """None if a tick may advance stream time. A tick from the future of its broker timestamp
    would fire every breach early, so ticks obey the same skew rule as events."""
    if tick_time - broker_time > max_future_skew:
        return Rejection(
            RejectReason.FUTURE_EVENT,
            f"tick time {tick_time.isoformat()} is more than {max_future_skew} after the "
            f"broker received it ({broker_time.isoformat()})",
            (FieldError("time", "must not be in the future"),),
        )
    return None
