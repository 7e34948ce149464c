"""The replay's one bulk write: every registered projection COPYed into the target schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.replay.memory import ReplayState
from services.replay.projections import PROJECTIONS
from services.replay.schema import connect_in

#: consumer name of the checkpoints a replay writes into its own schema
REPLAY_CONSUMER = "leadledger-replay"


async def write_state(
    dsn: str,
    schema: str,
    state: ReplayState,
    run: tuple[str, datetime | None, int],
    on_table: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """COPY the final state into ``schema`` in one transaction; rows written per table.
    ``run``: (source, as-of, records read) for the schema's ``replay_run`` row."""
    written: dict[str, int] = {}
    conn = await connect_in(dsn, schema)
    try:
        async with conn.transaction():
            for projection in PROJECTIONS:
                # Rows stream into the binary COPY as they are built: a table's rows are
                # never all held at once next to the state they come from. The server's
                # "COPY n" counts them, not a generator wrapped around each row.
                status = await conn.copy_records_to_table(
                    projection.table, columns=projection.columns, records=projection.rows(state)
                )
                written[projection.table] = n = _copied(status)
                if on_table is not None:
                    on_table(projection.table, n)
            # Where the replay stopped, per partition: the as-of cut and audits read it.
            await conn.copy_records_to_table(
                "projection_checkpoint",
                columns=("consumer", "kafka_topic", "kafka_partition", "kafka_offset",
                         "stream_time"),
                records=[(REPLAY_CONSUMER, t, p, c.offset, c.stream_time)
                         for (t, p), c in sorted(state.checkpoints.items())],
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO replay_run (source, as_of, credit_as_of, records)"
                " VALUES ($1, $2, $3, $4)",
                *run[:2], state.credit_as_of, run[2],
            )  # fmt: skip
    finally:
        await conn.close()
    return written


def _copied(status: str) -> int:
    """The row count of a COPY command tag (``COPY 42``)."""
    verb, _, count = status.partition(" ")
    if verb != "COPY" or not count.isdigit():
        raise ValueError(f"unexpected COPY status {status!r}")
    return int(count)
