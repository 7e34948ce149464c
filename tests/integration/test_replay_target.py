"""A replay's target schema changes at once or not at all, on real Tansu and PostgreSQL.

The replay builds into a staging schema and renames it into place: a replay that fails
midway leaves no schema behind, a failed ``--replace`` leaves the previous schema as it was,
and a refused target is refused before anything is read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.processor.records import Record
from services.replay.engine import ReplayPlan, replay
from services.replay.parallel import WorkerFailed, replay_parallel
from services.replay.schema import SchemaExists
from services.replay.sources import KafkaSource
from services.settings import Settings
from tests.integration.helpers import fetch, publish, scalar
from tests.unit.factories import one_of_each

pytestmark = pytest.mark.timeout(300)

LEADS = [f"T-{n}" for n in range(40)]


def plan_for(settings: Settings, schema: str, *, replace: bool = False) -> ReplayPlan:
    funnel = load_funnel()
    return ReplayPlan(
        dsn=settings.database_url, schema=schema, topic=settings.events_topic, funnel=funnel,
        sla_rules=compile_rules(load_sla(funnel), funnel), replace=replace,
        email_hmac_key=b"k",
    )  # fmt: skip


async def published(settings: Settings, leads: list[str]) -> None:
    await publish(settings.kafka_bootstrap, settings.events_topic,
                  [e for lead in leads for e in one_of_each(lead)])  # fmt: skip


class FailsMidway:
    """The records of a real source, then a failure after its first batch."""

    def __init__(self, inner: KafkaSource) -> None:
        self.inner = inner
        self.read = 0

    async def open(self) -> int:
        return await self.inner.open()

    async def batches(self) -> AsyncIterator[list[Record]]:
        async for batch in self.inner.batches():
            self.read += len(batch)
            yield batch
            raise ConnectionResetError("the broker went away")

    async def close(self) -> None:
        await self.inner.close()


class CountedOpens(KafkaSource):
    """A Kafka source that counts its opens."""

    opens = 0

    async def open(self) -> int:
        self.opens += 1
        return await super().open()


class MissingTopicShares(KafkaSource):
    """A source whose workers' shares name a topic that does not exist: each worker fails."""

    def only(self, partitions: tuple[int, ...]) -> KafkaSource:
        return KafkaSource(self.bootstrap, f"{self.topic}.missing", self.batch_size, partitions)


async def schemas(dsn: str) -> set[str]:
    rows = await fetch(dsn, "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'"
                            " AND nspname <> 'information_schema'")  # fmt: skip
    return {r["nspname"] for r in rows}


async def lead_ids(dsn: str, schema: str) -> list[str]:
    rows = await fetch(dsn, f"SELECT lead_id FROM {schema}.lead_current ORDER BY lead_id")
    return [r["lead_id"] for r in rows]


async def test_a_replay_that_fails_midway_leaves_no_schema_behind(
    fresh_topics: Settings,
) -> None:
    await published(fresh_topics, LEADS)
    before = await schemas(fresh_topics.database_url)
    source = FailsMidway(KafkaSource(fresh_topics.kafka_bootstrap, fresh_topics.events_topic, 50))
    with pytest.raises(ConnectionResetError):
        await replay(plan_for(fresh_topics, "broken"), source)
    assert source.read > 0, "the replay had read records when it failed"
    assert await schemas(fresh_topics.database_url) == before


async def test_a_failed_replace_leaves_the_previous_schema_as_it_was(
    fresh_topics: Settings,
) -> None:
    await published(fresh_topics, LEADS[:10])
    bootstrap, topic = fresh_topics.kafka_bootstrap, fresh_topics.events_topic
    await replay(plan_for(fresh_topics, "kept"), KafkaSource(bootstrap, topic, 50))
    first = await lead_ids(fresh_topics.database_url, "kept")
    assert first == sorted(LEADS[:10])
    await published(fresh_topics, LEADS[10:])
    source = FailsMidway(KafkaSource(bootstrap, topic, 50))
    with pytest.raises(ConnectionResetError):
        await replay(plan_for(fresh_topics, "kept", replace=True), source)
    assert await lead_ids(fresh_topics.database_url, "kept") == first
    assert not {s for s in await schemas(fresh_topics.database_url) if s.startswith("ll_build_")}
    # The same replace, through: the schema now holds every lead, and nothing else is left.
    await replay(plan_for(fresh_topics, "kept", replace=True), KafkaSource(bootstrap, topic, 50))
    assert await lead_ids(fresh_topics.database_url, "kept") == sorted(LEADS)
    assert not {s for s in await schemas(fresh_topics.database_url) if s.startswith("ll_build_")}
    assert await scalar(fresh_topics.database_url, "SELECT count(*) FROM kept.replay_run") == 1


async def test_an_existing_target_is_refused_before_anything_is_read(
    fresh_topics: Settings,
) -> None:
    await published(fresh_topics, LEADS[:5])
    conn = await asyncpg.connect(fresh_topics.database_url)
    try:
        await conn.execute("CREATE SCHEMA taken")
    finally:
        await conn.close()
    source = CountedOpens(fresh_topics.kafka_bootstrap, fresh_topics.events_topic, 50)
    for workers in (1, 2):
        with pytest.raises(SchemaExists, match="pass --replace"):
            await replay_parallel(plan_for(fresh_topics, "taken"), source, workers)
    assert source.opens == 0


async def test_a_parallel_replay_whose_worker_fails_leaves_no_schema_behind(
    fresh_topics: Settings,
) -> None:
    await published(fresh_topics, LEADS[:5])
    before = await schemas(fresh_topics.database_url)
    source = MissingTopicShares(fresh_topics.kafka_bootstrap, fresh_topics.events_topic, 50)
    with pytest.raises(WorkerFailed, match="missing"):
        await replay_parallel(plan_for(fresh_topics, "lost"), source, 2)
    assert await schemas(fresh_topics.database_url) == before


async def test_a_replay_drops_staging_schemas_left_by_killed_replays_but_not_one_in_progress(
    fresh_topics: Settings,
) -> None:
    await published(fresh_topics, LEADS[:5])
    dsn = fresh_topics.database_url
    building = await asyncpg.connect(dsn)
    try:
        await building.execute("CREATE SCHEMA ll_build_killed")
        await building.execute("CREATE SCHEMA ll_build_running")
        # What a replay still at work holds: the lock named after its staging schema.
        await building.execute("SELECT pg_advisory_lock($1, hashtext($2))", 0x11B1,
                               "ll_build_running")  # fmt: skip
        source = KafkaSource(fresh_topics.kafka_bootstrap, fresh_topics.events_topic, 50)
        await replay(plan_for(fresh_topics, "after_a_kill"), source)
        left = {s for s in await schemas(dsn) if s.startswith("ll_build_")}
        assert left == {"ll_build_running"}
        assert await lead_ids(dsn, "after_a_kill") == sorted(LEADS[:5])
    finally:
        await building.close()
