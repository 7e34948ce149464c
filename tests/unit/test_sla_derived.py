"""Derived ``sla.*`` events on their way to the broker: sent together, awaited together, and
the processor's producer sized so that a live batch of them goes out in one request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path

from events.codec import encode
from services.processor.derived import KafkaDerived
from services.processor.worker import create_app
from services.settings import Settings

from .test_sla_pipeline import history, pipeline


class SlowBroker:
    """A producer whose deliveries resolve only when the test says so."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]] = []
        self.deliveries: list[asyncio.Future[None]] = []
        self.sent_when_first_awaited: int | None = None

    async def send(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Awaitable[None]:
        self.sent.append((key, value, headers))
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return self._awaited(delivery)

    async def _awaited(self, delivery: asyncio.Future[None]) -> None:
        if self.sent_when_first_awaited is None:
            self.sent_when_first_awaited = len(self.sent)
        await delivery


async def settle() -> None:
    """Let every task that is ready run (a few turns of the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def derived_events() -> list[bytes]:
    pipe, _, derived = pipeline()
    await pipe.process(history().records)
    return [encode(e) for e in derived.sent]


async def test_every_derived_event_is_sent_before_any_delivery_is_awaited() -> None:
    pipe, _, recorded = pipeline()
    await pipe.process(history().records)
    broker = SlowBroker()
    sending = asyncio.ensure_future(KafkaDerived(broker.send).send(recorded.sent))
    await settle()

    assert len(broker.sent) == len(recorded.sent) > 1
    assert broker.sent_when_first_awaited == len(recorded.sent)
    assert [k for k, _, _ in broker.sent] == [e.key for e in recorded.sent]
    assert not sending.done(), "the batch may not commit before the broker has them"
    for delivery in broker.deliveries[:-1]:
        delivery.set_result(None)
    await settle()
    assert not sending.done(), "one undelivered event still holds the batch"
    broker.deliveries[-1].set_result(None)
    await sending


async def test_the_processors_producer_fits_a_live_batch_of_derived_events_in_one_request(
    tmp_path: Path,
) -> None:
    # A send that finds its partition's producer batch full waits a broker round trip (one
    # request in flight per broker), so a batch's derived events must fit: at 1,000 events/s
    # a fetch brings a few hundred events and about twice as many derived ones, over four
    # partitions.
    largest = max(len(value) + 100 for value in await derived_events())  # + key and headers
    app = create_app(Settings(data_dir=tmp_path))

    assert app.conf.producer_max_batch_size >= 500 * largest
    assert app.conf.producer_linger == 0.0, "the batch's sends come together; lingering delays"
    assert app.conf.producer_acks == -1, "every replica has them before the batch commits"
