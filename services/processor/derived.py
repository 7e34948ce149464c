"""The derived-events sink: ``sla.*`` events to the derived topic, keyed by lead id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from events.codec import encode
from events.envelope import Event
from services.processor.dead_letters import SendFn


class KafkaDerived:
    """Implements ``DerivedSink`` over a producer ``send`` that returns a delivery future."""

    def __init__(self, send: SendFn) -> None:
        self._send = send

    async def send(self, events: Sequence[Event]) -> None:
        pending = [await self._send(event.key, encode(event), _headers(event)) for event in events]
        # The batch commits only once the broker has every derived event.
        await asyncio.gather(*(p for p in pending if isinstance(p, Awaitable)))


def _headers(event: Event) -> list[tuple[str, bytes]]:
    return [("ce_type", event.type.encode()), ("ce_id", event.id.encode())]
