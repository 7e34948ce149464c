"""Derived ``sla.*`` events on their way to the broker: a record batch per partition, every
one submitted before any delivery is awaited, each record in the partition ``send`` would
have chosen; and the processor's producer sized so that a live batch goes out in one
request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka.partitioner import DefaultPartitioner

from events.codec import encode
from events.envelope import Event
from services.processor.derived import DerivedRecord, KafkaDerived, encoded, send_batched
from services.processor.worker import create_app
from services.settings import Settings

from .factories import at, created
from .test_sla_pipeline import history, pipeline

TOPIC = "leadledger.derived"


class FakeBatch:
    """A record batch builder that holds ``room`` records."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    def append(
        self, *, key: bytes, value: bytes, timestamp: None, headers: list[tuple[str, bytes]]
    ) -> object | None:
        if len(self.records) == self.room:
            return None
        self.records.append((key, value, headers))
        return object()


class SlowBroker:
    """aiokafka's batch interface; deliveries resolve only when the test says so."""

    def __init__(self, partitions: int = 4, room: int = 1000) -> None:
        self.partitions = set(range(partitions))
        self.room = room
        self.submitted: list[tuple[int, FakeBatch]] = []
        self.deliveries: list[asyncio.Future[None]] = []
        self.submitted_when_first_awaited: int | None = None

    async def partitions_for(self, topic: str) -> set[int]:
        assert topic == TOPIC
        return self.partitions

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.room)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Awaitable[None]:
        self.submitted.append((partition, batch))
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.deliveries.append(delivery)
        return self._awaited(delivery)

    async def _awaited(self, delivery: asyncio.Future[None]) -> None:
        if self.submitted_when_first_awaited is None:
            self.submitted_when_first_awaited = len(self.submitted)
        await delivery

    def by_partition(self) -> dict[int, list[bytes]]:
        out: dict[int, list[bytes]] = {}
        for partition, batch in self.submitted:
            out.setdefault(partition, []).extend(value for _, value, _ in batch.records)
        return out

    def deliver_all(self) -> None:
        for delivery in self.deliveries:
            if not delivery.done():
                delivery.set_result(None)


async def settle() -> None:
    """Let every task that is ready run (a few turns of the loop)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def derived_events() -> list[Event]:
    pipe, _, derived = pipeline()
    await pipe.process(history().records)
    assert len({e.subject for e in derived.sent}) > 1
    return derived.sent


def sink(broker: SlowBroker) -> KafkaDerived:
    async def send(records: Sequence[DerivedRecord]) -> None:
        await send_batched(broker, TOPIC, DefaultPartitioner(), records)

    return KafkaDerived(send)


async def test_every_derived_event_is_submitted_before_any_delivery_is_awaited() -> None:
    events = await derived_events()
    broker = SlowBroker()
    sending = asyncio.ensure_future(sink(broker).send(events))
    await settle()

    assert sum(len(b.records) for _, b in broker.submitted) == len(events)
    assert broker.submitted_when_first_awaited == len(broker.submitted)
    assert not sending.done(), "the batch may not commit before the broker has them"
    for delivery in broker.deliveries[:-1]:
        delivery.set_result(None)
    await settle()
    assert not sending.done(), "one undelivered batch still holds the commit"
    broker.deliveries[-1].set_result(None)
    await sending


async def test_each_derived_event_goes_to_the_partition_of_its_key_in_its_order() -> None:
    events = await derived_events()
    broker = SlowBroker(room=3)  # full batches too: a partition's second batch follows
    sending = asyncio.ensure_future(sink(broker).send(events))
    await settle()
    broker.deliver_all()
    await sending

    partitions = list(range(4))
    expected: dict[int, list[bytes]] = {}
    for event in events:
        partition = DefaultPartitioner()(event.key, partitions, partitions)
        expected.setdefault(partition, []).append(encoded(event))
    assert broker.by_partition() == expected
    assert all(len(b.records) <= 3 for _, b in broker.submitted)


async def test_a_batch_without_derived_events_produces_nothing() -> None:
    broker = SlowBroker()
    await sink(broker).send([])
    assert broker.submitted == []


async def test_a_failed_delivery_fails_the_send_so_the_batch_does_not_commit() -> None:
    events = await derived_events()
    broker = SlowBroker()
    sending = asyncio.ensure_future(sink(broker).send(events))
    await settle()
    broker.deliveries[0].set_exception(OSError("broker went away"))
    broker.deliver_all()
    try:
        await sending
    except OSError:
        pass
    else:
        raise AssertionError("the send succeeded although the broker refused a batch")


async def test_the_processors_producer_fits_a_live_batch_of_derived_events_in_one_request(
    tmp_path: Path,
) -> None:
    # A submit that finds its partition's previous batch not yet sent waits a broker round
    # trip (one request in flight per broker), so a batch's derived events must fit: at
    # 1,000 events/s a fetch brings a few hundred events and about twice as many derived
    # ones, over four partitions.
    largest = max(len(encode(e)) + 100 for e in await derived_events())  # + key and headers
    app = create_app(Settings(data_dir=tmp_path))

    assert app.conf.producer_max_batch_size >= 500 * largest
    assert app.conf.producer_linger == 0.0, "the batch's sends come together; lingering delays"
    assert app.conf.producer_acks == -1, "every replica has them before the batch commits"


async def test_derived_events_are_encoded_byte_for_byte_as_the_codec_encodes_them() -> None:
    events = await derived_events()
    berlin = ZoneInfo("Europe/Berlin")
    # Rows loaded from the store may carry their instants in another zone; sub-second times
    # and a missing owner are the other shapes the fast path must write as pydantic does.
    shifted = [
        e.model_copy(
            update={
                "data": e.data.model_copy(
                    update={
                        "started_at": e.data.started_at.astimezone(berlin),  # type: ignore[attr-defined]
                        "deadline": e.data.deadline.replace(microsecond=120_000),  # type: ignore[attr-defined]
                        "owner_id": None,
                        "elapsed_seconds": 0.1 + 0.2,
                    }
                )
            }
        )
        for e in events
    ]
    kinds = {e.type for e in events}
    assert {"sla.started", "sla.met", "sla.breached"} <= kinds
    for event in [*events, *shifted]:
        assert encoded(event) == encode(event), event.id


def test_other_derived_events_take_the_codec() -> None:
    event = created("X", at(0), "mql", id="x0")
    assert encoded(event) == encode(event)
