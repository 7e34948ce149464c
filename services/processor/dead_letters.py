"""Dead letters: rejected records go to the rejected-events topic, byte for byte, with why."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import orjson

from services.processor.ports import RejectedRecord

#: (key, value, headers) -> awaitable that resolves once the broker has the record.
SendFn = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[object]]


def dead_letter_headers(x: RejectedRecord) -> list[tuple[str, bytes]]:
    """The original headers plus the reason and the source coordinates."""
    r = x.record
    return [
        *r.headers,
        ("ll_reason", x.rejection.reason.value.encode()),
        ("ll_detail", x.rejection.detail.encode()[:4096]),
        ("ll_errors", orjson.dumps([{"loc": e.loc, "msg": e.msg} for e in x.rejection.errors])),
        ("ll_source_topic", r.topic.encode()),
        ("ll_source_partition", str(r.partition).encode()),
        ("ll_source_offset", str(r.offset).encode()),
        ("ll_source_timestamp_ms", str(r.timestamp_ms).encode()),
    ]


class KafkaDeadLetters:
    """Implements ``DeadLetterSink`` over any producer ``send`` that returns a delivery future."""

    def __init__(self, send: SendFn) -> None:
        self._send = send

    async def send(self, rejected: Sequence[RejectedRecord]) -> None:
        pending = [
            await self._send(x.record.key, x.record.value, dead_letter_headers(x)) for x in rejected
        ]
        # Wait for delivery of all, so the batch commits only once the dead letters are safe.
        await asyncio.gather(*(p for p in pending if isinstance(p, Awaitable)))
