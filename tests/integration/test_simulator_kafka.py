"""The demo simulator against a real (Tansu) broker: keyed, decodable, well-formed records."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from events.codec import decode
from events.funnel import load_funnel
from events.validation import check_against_funnel
from services.settings import Settings
from services.simulator.run import run_simulator

EXPECTED = 300


async def _consume(settings: Settings, count: int) -> list[ConsumerRecord]:
    """Read ``count`` records from the start of every partition of the events topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        # Manual assignment, no group: a group join on Tansu would add seconds for nothing.
        partitions = [TopicPartition(settings.events_topic, p) for p in range(settings.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(30.0):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
        # Anything beyond the expected count would be a bug in max_events: look briefly.
        extra = await consumer.getmany(timeout_ms=500)
        records.extend(r for batch in extra.values() for r in batch)
        return records
    finally:
        await consumer.stop()


async def test_the_simulator_publishes_exactly_max_events_decodable_events_keyed_by_lead(
    fresh_topics: Settings,
) -> None:
    settings = fresh_topics
    started = datetime.now(UTC)
    published = await asyncio.wait_for(
        run_simulator(
            settings.kafka_bootstrap,
            settings.events_topic,
            rate=5000.0,
            speedup=1_000_000.0,
            seed=3,
            backfill=timedelta(days=2),
            max_events=EXPECTED,
            leads_per_hour=60.0,
        ),
        timeout=60.0,
    )
    assert published == EXPECTED

    records = await _consume(settings, EXPECTED)
    assert len(records) == EXPECTED
    funnel = load_funnel()
    ids = set()
    for record in records:
        assert record.value is not None
        event = decode(record.value)
        assert record.key == event.key
        assert re.fullmatch(rb"L-\d{6}", record.key)
        assert dict(record.headers) == {
            "ce_type": event.type.encode(),
            "ce_id": event.id.encode(),
            "ce_source": event.source.encode(),
        }
        assert check_against_funnel(event, funnel) is None
        # The simulated clock started two days back and never ran past the wall clock.
        assert started - timedelta(days=2, seconds=5) <= event.time <= datetime.now(UTC)
        ids.add((event.source, event.id))
    assert len(ids) == EXPECTED
    # Per lead, the partition preserves event-time order.
    by_lead: dict[bytes, list[datetime]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        by_lead.setdefault(record.key, []).append(decode(record.value or b"").time)
    assert len(by_lead) > 10
    assert all(times == sorted(times) for times in by_lead.values())


async def test_the_simulator_stops_promptly_when_asked(fresh_topics: Settings) -> None:
    settings = fresh_topics
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_simulator(
            settings.kafka_bootstrap,
            settings.events_topic,
            rate=20.0,
            backfill=timedelta(hours=6),
            stop=stop,
        )
    )
    await asyncio.sleep(1.5)
    stop_at = asyncio.get_running_loop().time()
    stop.set()
    published = await asyncio.wait_for(task, timeout=10.0)
    assert asyncio.get_running_loop().time() - stop_at < 5.0
    # The cap allows ~20 events/s plus a small burst.
    assert 0 < published <= 20 * 2 + 5
