"""The processor's connection pool: no reset query on every release.

asyncpg's default release runs ``Connection.reset()``: a round trip that ends listeners,
session settings and session advisory locks. The processor's store sets none of these: its
advisory locks are transaction-scoped (``pg_advisory_xact_lock``), it never LISTENs or SETs,
and its cursors live inside transactions. asyncpg still rolls back a transaction left open
before calling the custom reset, so skipping the query only saves that round trip, once per
commit and once per read.
"""

from __future__ import annotations

import asyncpg


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    return None


async def processor_pool(dsn: str, max_size: int = 4) -> asyncpg.Pool:
    """A pool for ``PostgresProjectionStore``; see the module doc for the missing reset."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, reset=_nothing_to_reset)
