"""The processor pool's sessions: timestamps read and written as on a plain connection, and
key lookups planned on indexes whatever the table's size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import asyncpg

from services.store.migrate import migrate
from services.store.pool import processor_pool

VALUES = [
    datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2))),
    datetime.max,
    datetime.min,
]


async def test_timestamps_round_trip_through_the_pool_as_through_a_plain_connection(
    fresh_dsn: str,
) -> None:
    plain = await asyncpg.connect(fresh_dsn)
    pool = await processor_pool(fresh_dsn, max_size=1)
    try:
        await plain.execute("CREATE TABLE t (n int, at timestamptz, ats timestamptz[])")
        await plain.execute("CREATE TYPE t_row AS (n int, at timestamptz)")
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "t", records=[(i, v, [v, None]) for i, v in enumerate(VALUES)]
            )
            rows = [(i + 10, v) for i, v in enumerate(VALUES)]
            await conn.execute(
                "INSERT INTO t (n, at, ats) SELECT n, at, ARRAY[at] FROM unnest($1::t_row[])", rows
            )
            ours = await conn.fetch("SELECT n, at, ats, at::text AS shown FROM t ORDER BY n")
            echoed = await conn.fetchval("SELECT $1::timestamptz[]", VALUES)
        theirs = await plain.fetch("SELECT n, at, ats, at::text AS shown FROM t ORDER BY n")
        assert [tuple(r) for r in ours] == [tuple(r) for r in theirs]
        assert [r["at"] for r in theirs] == VALUES + VALUES
        assert echoed == VALUES
    finally:
        await pool.close()
        await plain.close()


async def test_an_update_by_key_planned_on_an_empty_table_still_uses_its_index(
    fresh_dsn: str,
) -> None:
    pool = await processor_pool(fresh_dsn, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            # The plan commit_batch keeps from its sixth call, made here on the first.
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            await conn.execute(
                "PREPARE u(lead_stage_row[]) AS UPDATE lead_stage_history t SET stage = d.stage"
                " FROM unnest($1) AS d WHERE t.lead_id = d.lead_id AND t.seq = d.seq"
            )
            plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN EXECUTE u('{}')"))
        assert "Index Scan using lead_stage_history_pkey" in plan
        assert "Seq Scan" not in plan
    finally:
        await pool.close()
