"""A parallel replay's worker process: fold a share of the partitions, report to the parent,
wait for the credit's as-of time, then send every table's rows (see
``services.replay.parallel``)."""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Iterable, Iterator
from itertools import islice
from multiprocessing.connection import Connection
from typing import Any

from services import run_async
from services.replay.binary_copy import body_chunks
from services.replay.engine import (
    ReplayCounts,
    ReplayPlan,
    Source,
    add_credits,
    fold_source,
    latest_time,
    no_cycle_collection,
)
from services.replay.memory import ReplayState
from services.replay.parallel_merge import Folded
from services.replay.projections import PROJECTIONS
from services.replay.writer import state_tables

#: rows per message, for the tables whose rows asyncpg encodes in the parent
ROWS_PER_MESSAGE = 10_000


def work(plan: ReplayPlan, pipe: Connection) -> None:
    """A worker process: wait for its share of the source, fold it, report, wait for the
    credit time, send the rows. Started before the parent knows the partitions: it may be
    told to stop instead, or find the pipe closed (the parent failed to open the source)."""
    try:
        order = pipe.recv()
    except EOFError:
        return
    if order[0] != "fold":
        return
    source: Source = order[1]
    try:
        run_async.run(_fold_and_send(plan, source, pipe))
    except BaseException:  # reported to the parent, which raises it as WorkerFailed
        # Unless the parent has given up already (another worker failed first): then there is
        # no one to tell, and a second traceback about the closed pipe would only be noise.
        with contextlib.suppress(OSError):
            pipe.send(("error", traceback.format_exc()))
        pipe.close()
        return
    pipe.close()
    # Everything is sent and nothing is left to flush: exit without freeing the folded state
    # object by object, seconds of CPU at 1M events that the parent's write would compete with.
    os._exit(0)


async def _fold_and_send(plan: ReplayPlan, source: Source, pipe: Connection) -> None:
    def progress(n: int, total: int | None) -> None:
        if total is None and n:
            pipe.send(("progress", n))

    with no_cycle_collection():
        result = await fold_source(plan, source, progress, credit=False)
        st = result.state
        leads = set(st.leads)
        leads.update(st.packed)
        leads.update(x.lead_id for x in st.rejected if x.lead_id is not None)
        folded = Folded(
            result.records, result.ticks, result.cut, result.read_cpu, latest_time(st), leads,
            st.accepted_ids, st.identities, st.checkpoints,
        )  # fmt: skip
        pipe.send(("folded", folded))
        del folded, leads
        order = pipe.recv()
        if order[0] != "write":
            return
        add_credits(plan, st, order[1])
        _send_rows(pipe, st)


def _send_rows(pipe: Connection, st: ReplayState) -> None:
    """The counts, then each table in ``PROJECTIONS`` order, then ``done``."""
    pipe.send(("counts", ReplayCounts.of(st)))
    tables = state_tables(st)
    for projection in PROJECTIONS:
        data = tables(projection)
        if data.binary is not None:
            for chunk in body_chunks(data.binary):
                pipe.send(("binary", chunk))
        else:
            for batch in _batched(data.records, ROWS_PER_MESSAGE):
                pipe.send(("records", batch))
        pipe.send(("end", projection.table))
    pipe.send(("done", None))


def _batched(rows: Iterable[tuple[Any, ...]], n: int) -> Iterator[list[tuple[Any, ...]]]:
    it = iter(rows)
    while batch := list(islice(it, n)):
        yield batch
