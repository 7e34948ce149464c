"""``PostgresProjectionStore.commit`` as one ``commit_batch`` call (007): its fence, and the
deliveries it awaits before its COMMIT."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from projections.lead import Applied, apply, empty
from services.processor.ports import BatchWrite, CheckpointMoved
from services.processor.records import Checkpoint, Record
from services.store.migrate import migrate
from services.store.pool import processor_pool
from services.store.projection_store import PostgresProjectionStore
from tests.unit.factories import FUNNEL, at, created


@pytest.fixture
async def pool(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_dsn)
    await migrate(conn)
    await conn.close()
    pool = await processor_pool(fresh_dsn, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> PostgresProjectionStore:
    return PostgresProjectionStore(pool, "c")


def _batch(lead: str, offset: int) -> BatchWrite:
    event = created(lead, at(1), "mql")
    result = apply(empty(lead), event, FUNNEL)
    assert isinstance(result, Applied)
    record = Record("t", 0, offset, lead.encode(), b"{}", 0, (("h", b"v"),))
    return BatchWrite(
        "t", [(record, event)], [result.state], [], {0: Checkpoint(offset, at(1))},
        before={lead: empty(lead)},
    )  # fmt: skip


async def _stored(pool: asyncpg.Pool) -> tuple[int | None, int, int]:
    return (
        await pool.fetchval("SELECT kafka_offset FROM projection_checkpoint"),
        await pool.fetchval("SELECT count(*) FROM event_archive"),
        await pool.fetchval("SELECT count(*) FROM lead_current"),
    )


async def test_a_batch_commits_its_rows_and_checkpoint_together(
    pool: asyncpg.Pool, store: PostgresProjectionStore
) -> None:
    await store.commit(_batch("L1", 0), {0: None})
    assert await _stored(pool) == (0, 1, 1)
    row = await pool.fetchrow("SELECT kafka_header_keys, kafka_header_values FROM event_archive")
    assert (row["kafka_header_keys"], row["kafka_header_values"]) == (["h"], [b"v"])
    # A record without headers: the columns' default, as the archive always stored it.
    bare = _batch("L2", 1)
    bare = BatchWrite("t", [(Record("t", 0, 1, b"L2", b"{}", 0), bare.accepted[0][1])],
                      bare.leads, [], bare.checkpoints, before=bare.before)  # fmt: skip
    await store.commit(bare, {0: 0})
    row = await pool.fetchrow(
        "SELECT kafka_header_keys, kafka_header_values FROM event_archive WHERE lead_id = 'L2'"
    )
    assert (row["kafka_header_keys"], row["kafka_header_values"]) == ([], [])


async def test_an_unexpected_stored_offset_raises_checkpoint_moved_and_writes_nothing(
    pool: asyncpg.Pool, store: PostgresProjectionStore
) -> None:
    await store.commit(_batch("L1", 0), {0: None})
    with pytest.raises(CheckpointMoved, match="partition 0: 0 != None"):
        await store.commit(_batch("L2", 1), {0: None})
    assert await _stored(pool) == (0, 1, 1)


async def test_a_failed_delivery_rolls_the_batch_back_with_its_own_exception(
    pool: asyncpg.Pool, store: PostgresProjectionStore
) -> None:
    async def fail() -> None:
        raise OSError("broker gone")

    with pytest.raises(OSError, match="broker gone"):
        await store.commit(_batch("L1", 0), {0: None}, asyncio.ensure_future(fail()))
    assert await _stored(pool) == (None, 0, 0)


async def test_the_commit_waits_for_deliveries_still_in_flight(
    pool: asyncpg.Pool, store: PostgresProjectionStore
) -> None:
    delivered = asyncio.get_running_loop().create_future()
    commit = asyncio.ensure_future(store.commit(_batch("L1", 0), {0: None}, delivered))
    await asyncio.sleep(0.2)
    # The rows are written but not committed until the deliveries are done.
    assert not commit.done()
    assert await _stored(pool) == (None, 0, 0)
    delivered.set_result(None)
    await commit
    assert await _stored(pool) == (0, 1, 1)


async def test_the_processor_pool_rolls_back_what_a_released_connection_left_open(
    pool: asyncpg.Pool,
) -> None:
    # The pool skips asyncpg's reset query, but an open transaction must still end.
    conn = await pool.acquire()
    await conn.execute("BEGIN")
    await conn.execute("CREATE TABLE left_open (x int)")
    await pool.release(conn)
    async with pool.acquire() as again, pool.acquire() as other:
        for c in (again, other):
            assert not c.is_in_transaction()
            assert await c.fetchval("SELECT to_regclass('left_open')") is None


async def test_arguments_prepared_ahead_serve_only_their_own_batch(
    pool: asyncpg.Pool, store: PostgresProjectionStore
) -> None:
    first, second = _batch("L1", 0), _batch("L2", 1)
    # The worker prepares batch N+1 while batch N is still committing.
    store.prepare(second, {0: 0})
    await store.commit(first, {0: None})
    await store.commit(second, {0: 0})
    assert await _stored(pool) == (1, 2, 2)
    # Prepared for one fence, committed with another: the fence that commit gets is checked.
    third = _batch("L3", 2)
    store.prepare(third, {0: 1})
    with pytest.raises(CheckpointMoved):
        await store.commit(third, {0: 0})
    assert await _stored(pool) == (1, 2, 2)
