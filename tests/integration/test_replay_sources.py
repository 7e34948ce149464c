"""A replay's Kafka source on real Tansu: what a share of the partitions reads."""

from __future__ import annotations

import pytest

from services.replay.sources import KafkaSource
from services.settings import Settings
from tests.integration.helpers import publish
from tests.unit.factories import one_of_each

pytestmark = pytest.mark.timeout(120)


async def read_all(source: KafkaSource) -> int:
    total = await source.open()
    try:
        read = sum([len(b) async for b in source.batches()])
    finally:
        await source.close()
    assert read == total, "a source reads exactly what its open counted"
    return read


async def test_shares_end_where_the_whole_source_ended_when_it_was_opened(
    fresh_topics: Settings,
) -> None:
    bootstrap, topic = fresh_topics.kafka_bootstrap, fresh_topics.events_topic
    await publish(bootstrap, topic, [e for n in range(20) for e in one_of_each(f"S-{n}")])
    whole = KafkaSource(bootstrap, topic, 7)
    total = await whole.open()
    await whole.close()
    # Records published after the whole was opened belong to no share: every share stops at
    # the end offsets the whole found, so the shares add up to the total it counted.
    await publish(bootstrap, topic, [e for n in range(20, 30) for e in one_of_each(f"S-{n}")])
    shares = [whole.only(whole.partition_ids[i::2]) for i in range(2)]
    assert all(share.ends is not None for share in shares)
    assert sum([await read_all(share) for share in shares]) == total
    # A share of a source never opened searches for the ends itself: it sees everything.
    fresh = KafkaSource(bootstrap, topic, 7).only(whole.partition_ids)
    assert fresh.ends is None
    assert await read_all(fresh) > total
