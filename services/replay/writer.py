"""The replay's one bulk write: every registered projection COPYed into the target schema."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

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
                # never all held at once next to the state they come from.
                counted = _Counted(projection.rows(state))
                await conn.copy_records_to_table(
                    projection.table, columns=projection.columns, records=counted
                )
                written[projection.table] = counted.n
                if on_table is not None:
                    on_table(projection.table, counted.n)
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


class _Counted:
    """The rows of an iterable, counted as COPY consumes them."""

    def __init__(self, rows: Iterable[tuple[Any, ...]]) -> None:
        self._rows = iter(rows)
        self.n = 0

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for row in self._rows:
            self.n += 1
            yield row
