"""KafkaPublisher: puts validated events on the lead events topic and waits for the acks.

Key = lead id (per-lead order comes from the partition), value = the canonical codec bytes,
plus ``ce_type``, ``ce_id`` and ``ce_source`` headers so consumers and tools can route or
filter without parsing the value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from events.codec import encode
from events.envelope import Event
from services.settings import Settings

__all__ = ["KafkaPublisher", "record_headers"]


def record_headers(event: Event) -> list[tuple[str, bytes]]:
    """The CloudEvents attributes copied into Kafka record headers."""
    return [
        ("ce_type", event.type.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
    ]


class KafkaPublisher:
    """An aiokafka producer for one topic; implements ``services.api.ports.Publisher``.

    Call ``start()`` before ``publish()`` and ``stop()`` when done, or use ``async with``.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        client_id: str = "leadledger-api",
        linger_ms: int = 5,
        request_timeout_ms: int = 15_000,
        idempotent: bool = False,
    ) -> None:
        self.topic = topic
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            # Off by default: Tansu fails InitProducerId. Duplicates from retries are harmless
            # anyway (the processor applies an event id once); real Kafka turns it on.
            "enable_idempotence": idempotent,
            "acks": "all",
            # A few ms of batching turns a burst of single-event requests into few produces.
            "linger_ms": linger_ms,
            "request_timeout_ms": request_timeout_ms,
        }
        self._producer: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> KafkaPublisher:
        """A publisher for ``settings.events_topic`` at ``settings.kafka_bootstrap``."""
        kwargs.setdefault("idempotent", settings.kafka_idempotent_producer)
        return cls(settings.kafka_bootstrap, settings.events_topic, **kwargs)

    async def start(self) -> None:
        """Connect to the cluster; raises (and cleans up) if no broker answers."""
        if self._producer is not None:
            raise RuntimeError("KafkaPublisher already started")
        # Built here, not in __init__: the producer binds to the running event loop.
        producer = AIOKafkaProducer(**self._config)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        """Flush pending records and disconnect; safe to call twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, events: Sequence[Event]) -> None:
        """Send every event, then wait until the broker has acknowledged all of them.

        Sends are queued first so one request's events share produce requests; the first
        delivery error is raised after every future has settled (none is left unawaited).
        """
        producer = self._producer
        if producer is None:
            raise RuntimeError("KafkaPublisher.publish() called before start()")
        deliveries: list[asyncio.Future[Any]] = []
        try:
            for event in events:
                value, headers = encode(event), record_headers(event)
                deliveries.append(
                    await producer.send(self.topic, value=value, key=event.key, headers=headers)
                )
        finally:
            # Settle what was queued even if a later send() failed: no unretrieved futures.
            outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def __aenter__(self) -> KafkaPublisher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
