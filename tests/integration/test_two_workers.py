"""Horizontal scale: two processor workers of one consumer group split the partitions, and
together they build exactly the read model one worker builds alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from events.codec import encode
from services.embedded.postgres import EmbeddedPostgres
from services.settings import Settings
from tests.integration.conftest import TEST_PARTITIONS, unique_suffix
from tests.integration.helpers import ProcessorHandle, fetch, processor, publish, wait_until
from tests.integration.journey import full_journey

M = timedelta(minutes=1)
LEADS = 120

#: Every read model a worker writes, in a total order, without wall-clock columns.
TABLES = {
    "lead_current": "SELECT * FROM lead_current ORDER BY lead_id",
    "lead_stage_history": "SELECT * FROM lead_stage_history ORDER BY lead_id, seq",
    "lead_handoff": "SELECT * FROM lead_handoff ORDER BY lead_id, seq",
    "sla_timer": "SELECT * FROM sla_timer ORDER BY lead_id, policy, cycle_id",
    "event_archive": "SELECT * FROM event_archive ORDER BY event_id",
    "rejected_event": "SELECT * FROM rejected_event ORDER BY kafka_partition, kafka_offset",
}
VOLATILE = {"updated_at", "archived_at", "rejected_at"}


def history() -> list[tuple[bytes | None, bytes]]:
    t0 = datetime.now(UTC) - timedelta(days=20)
    records: list[tuple[bytes | None, bytes]] = []
    for i in range(LEADS):
        lead = f"W-{i:04d}"
        records += [(e.key, encode(e)) for e in full_journey(lead, t0 + i * M)]
        if i % 40 == 0:
            records.append((lead.encode(), b"not json"))
    return records


async def snapshot(dsn: str) -> dict[str, list[dict[str, object]]]:
    out = {}
    for table, sql in TABLES.items():
        rows = await fetch(dsn, sql)
        out[table] = [{k: v for k, v in dict(r).items() if k not in VOLATILE} for r in rows]
    return out


async def applied(dsn: str, topic: str) -> int:
    """Records of ``topic`` covered by the checkpoints (0 before the first commit)."""
    try:
        rows = await fetch(
            dsn,
            "SELECT coalesce(sum(kafka_offset + 1), 0) FROM projection_checkpoint"
            " WHERE kafka_topic = $1",
            topic,
        )
    except asyncpg.UndefinedTableError:  # the worker has not created its tables yet
        return 0
    return int(rows[0][0])


async def metric(worker: ProcessorHandle, name: str) -> float:
    """Sum of a metric's samples on a worker's /metrics (0 while it is not up yet)."""
    try:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{worker.web_port}/metrics")).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def test_two_workers_split_the_partitions_and_equal_one_worker_row_by_row(
    fresh_topics: Settings, embedded_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    s = fresh_topics
    records = history()
    pair_db = f"test_{unique_suffix()}"
    embedded_pg.create_database(pair_db)
    try:
        single = s.model_copy(update={"processor_id": "single"})
        pair = s.model_copy(
            update={"database_url": embedded_pg.dsn_for(pair_db), "processor_id": "pair"}
        )
        # No wall-clock ticks: the log then holds only the published records, and both runs
        # end at the same offset with the same stream time.
        quiet = {"tick_interval_seconds": 0}
        first = ProcessorHandle(pair, tmp_path, **quiet)
        second = ProcessorHandle(pair, tmp_path, **quiet)
        first.start()
        second.start()
        try:
            # Publish only once the group has settled with a share for each, so the split
            # is real rather than one worker finishing before the other joined.
            shares = await wait_until(
                lambda: _shares(first, second),
                lambda got: sorted(got) == [2, 2],
                seconds=90, what="both workers assigned two partitions each", watch=first,
            )  # fmt: skip
            assert sum(shares) == TEST_PARTITIONS
            await publish(s.kafka_bootstrap, s.events_topic, records)
            with processor(single, tmp_path, **quiet):
                for dsn in (single.database_url, pair.database_url):
                    await wait_until(
                        lambda dsn=dsn: applied(dsn, s.events_topic),  # type: ignore[misc]
                        lambda n: n == len(records), seconds=120, what="every record",
                    )  # fmt: skip
            processed = [
                await metric(w, "leadledger_events_processed_total") for w in (first, second)
            ]
            assert first.alive, first.log_tail()
            assert second.alive, second.log_tail()
        finally:
            first.stop()
            second.stop()
        assert all(n > 0 for n in processed), f"each worker applied its share: {processed}"
        assert sum(processed) == LEADS * len(full_journey("x", datetime.now(UTC)))

        alone, together = await snapshot(single.database_url), await snapshot(pair.database_url)
        assert len(alone["lead_current"]) == LEADS
        assert alone["sla_timer"], "the default SLA policies ran"
        for table in TABLES:
            assert together[table] == alone[table], table
    finally:
        embedded_pg.drop_database(pair_db)


async def _shares(*workers: ProcessorHandle) -> list[int]:
    return [int(await metric(w, "leadledger_processor_assigned_partitions")) for w in workers]
