"""The processor's connection pool: no reset query on every release, and index plans only.

asyncpg's default release runs ``Connection.reset()``: a round trip that ends listeners,
session settings and session advisory locks. The processor's store sets none of these: its
advisory locks are transaction-scoped (``pg_advisory_xact_lock``), it never LISTENs or SETs,
and its cursors live inside transactions. asyncpg still rolls back a transaction left open
before calling the custom reset, so skipping the query only saves that round trip, once per
commit and once per read.

Every statement of the processor looks a batch's keys up (``= ANY($1)``, a join with
``unnest`` of an argument) or inserts. Prepared statements and ``commit_batch``'s statements
keep the generic plan made on their sixth run, and a session's first runs see tables of a few
pages (a fresh deployment, a new database): a sequential scan or a hash join over the whole
table, then kept while the table grows, so each batch read the whole archive and history
(at 50 events per batch, 150 us of PostgreSQL CPU per event instead of 50). Sessions of this
pool disable sequential scans, so those plans use the indexes whatever the table's size then.
A full walk of an index is still an index plan: ``commit_batch`` itself also turns hash and
merge joins off while it runs (009), so its updates probe the keys of the batch's rows.

Its connections also encode ``timestamptz`` faster (``services.store.timestamps``).
"""

from __future__ import annotations

import asyncpg

from services.store.timestamps import use_fast_timestamptz

#: Session settings of the processor's connections (see the module doc).
SERVER_SETTINGS = {"enable_seqscan": "off"}


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    return None


async def processor_pool(dsn: str, max_size: int = 4) -> asyncpg.Pool:
    """A pool for ``PostgresProjectionStore``; see the module doc for its settings."""
    return await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        reset=_nothing_to_reset,
        server_settings=SERVER_SETTINGS,
        init=use_fast_timestamptz,
    )
