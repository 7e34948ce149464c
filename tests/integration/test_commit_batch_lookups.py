"""``commit_batch`` (009) updates a batch's rows by key lookups, not by walking the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.store.migrate import migrate
from services.store.pool import processor_pool

T0 = datetime(2026, 12, 1, tzinfo=UTC)
LEADS, STAYS, UPDATED = 4000, 5, 2000


async def test_a_large_batch_of_stage_updates_reads_only_its_own_rows(fresh_dsn: str) -> None:
    pool = await processor_pool(fresh_dsn, max_size=1)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            # A table a few times the batch's size, with statistics: where the planner, left
            # alone, merges or hashes the whole primary key with the batch's rows.
            await conn.execute(
                "INSERT INTO lead_stage_history (lead_id, seq, stage, team, entered_at,"
                " entered_via) SELECT 'L' || l, s, 'mql', 'marketing', $1, 'e'"
                " FROM generate_series(1, $2) l, generate_series(0, $3 - 1) s",
                T0, LEADS, STAYS,
            )  # fmt: skip
            await conn.execute("ANALYZE lead_stage_history")
            closed = T0 + timedelta(hours=1)
            updates = [
                (f"L{lead}", STAYS - 1, "mql", "marketing", T0, closed, 3600.0, None, None, "e")
                for lead in range(1, UPDATED + 1)
            ]
            args: list[object] = [None] * 29
            args[0:4] = ["c", "t", [], []]
            args[13] = updates
            args[26:29] = [[], [], []]
            call = "SELECT commit_batch(" + ", ".join(f"${i}" for i in range(1, 30)) + ")"
            async with conn.transaction():
                assert await conn.fetchval(call, *args) is None
                fetched = await conn.fetchval(
                    "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables"
                    " WHERE relname = 'lead_stage_history'"
                )
            stored = await conn.fetchval(
                "SELECT count(*) FROM lead_stage_history WHERE exited_at = $1", closed
            )
        assert stored == UPDATED
        # One index fetch per updated row, not the table's 20,000.
        assert fetched == UPDATED
    finally:
        await pool.close()
