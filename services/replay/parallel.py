"""A replay folded by several processes, each over a share of the partitions, written by one.

A replay's fold is CPU-bound Python (bench/README.md), so one process leaves every other core
idle. Partitions are independent for nearly all the pipeline keeps: a lead's events share its
Kafka key and so its partition, and with them its timers, stages, handoffs and suppressions.
Each worker process (started with ``spawn``: it inherits nothing of this one) folds its
partitions with ``engine.fold_source`` and sends its rows; this process COPYs them all in the
one transaction of ``writer.write_tables``. What crosses partitions is put together here:

- duplicate pairs: two leads with one email key can sit on two partitions. Each worker finds
  the pairs among its own leads; the pairs across workers come from every worker's key
  holders. A pair is a fact about the set of holders (``projections.closed_loop.duplicates``),
  so the set is the one a single process finds.
- attribution credit: every worker computes it as of the latest stream time of *all*
  partitions (sent once every fold is done), and a deal found on two leads keeps the rows of
  the lead first in lead-id order, as ``services.replay.credits`` does in one process.
- two assumptions are checked, not trusted: a lead named by records of two workers (a
  producer that changed a lead's key, a topic whose partition count changed) or an event id
  accepted by two workers would be folded together, or deduplicated, by one process. Then the
  workers' results are dropped and the replay runs again in this process, so the outcome
  never depends on the number of workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import chain
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from services.replay.engine import (
    Progress,
    ReplayCounts,
    ReplayPlan,
    ReplayResult,
    Source,
    no_cycle_collection,
    replay,
)
from services.replay.parallel_merge import Folded, cross_pairs, first_lead_credits, overlap
from services.replay.parallel_worker import work
from services.replay.projections import Projection
from services.replay.schema import building, check_target
from services.replay.writer import TableData, write_tables
from services.store.closed_loop_rows import duplicate_row


class PartitionedSource(Source, Protocol):
    #: after ``open``: the partitions the source reads
    partition_ids: tuple[int, ...]

    def only(self, partitions: tuple[int, ...]) -> PartitionedSource: ...


class WorkerFailed(RuntimeError):
    """A worker process raised (the message carries its traceback) or exited unfinished."""


async def replay_parallel(
    plan: ReplayPlan,
    source: PartitionedSource,
    workers: int,
    progress: Progress | None = None,
    on_table: Callable[[str, int | None], None] | None = None,
) -> ReplayResult:
    """``engine.replay`` with the fold spread over up to ``workers`` processes (one per share of
    the partitions); in this process alone when fewer than two would have work."""
    if workers < 2:
        # Straight to the one-process replay: opening the source to count its partitions
        # would be an open (and, on Kafka, an end-offset search) for nothing.
        return await replay(plan, source, progress, on_table)
    await check_target(plan.dsn, plan.schema, replace=plan.replace)
    # The workers start (a new interpreter and its imports, ~0.5 s) while this process opens
    # the source to learn its partitions; each gets its share once that is known.
    ctx = mp.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    done = [0]
    result: ReplayResult | None = None
    fallback: str | None = None
    try:
        for _ in range(workers):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=work, args=(plan, theirs), daemon=True)
            proc.start()
            theirs.close()
            pipes.append(ours)
            procs.append(proc)
        total = await source.open()
        partitions = source.partition_ids
        await source.close()
        used = min(workers, len(partitions))
        for i, pipe in enumerate(pipes):
            # A share for each of the first ``used``; the others (and all, when one process
            # would fold everything) are told to stop.
            pipe.send(("fold", source.only(partitions[i::used])) if used > 1 else ("stop",))
        if used > 1:

            def counted(n: int, total: int | None) -> None:
                done[0] += n
                if progress is not None:
                    progress(n, total)

            if progress is not None:
                progress(0, total)
            try:
                result = await _fold_and_write(plan, pipes[:used], counted, on_table)
            except _Overlap as exc:
                for pipe in pipes[:used]:
                    pipe.send(("stop",))
                fallback = str(exc)
    finally:
        for pipe in pipes:
            pipe.close()
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    if result is not None:
        return result
    if fallback is not None and progress is not None:
        # A fresh start in this process: the bar goes back to zero and counts them again.
        progress(-done[0], None)
    alone = await replay(plan, source, progress, on_table)
    alone.fallback = fallback
    return alone


async def _fold_and_write(
    plan: ReplayPlan,
    pipes: list[Connection],
    progress: Progress,
    on_table: Callable[[str, int | None], None] | None,
) -> ReplayResult:
    """Receive the folds of the workers behind ``pipes`` and write their rows; raises
    ``_Overlap`` when their shares were not independent."""
    started = time.perf_counter()
    # The staging schema is created and migrated while the workers fold.
    async with building(plan.dsn, plan.schema, replace=plan.replace) as staging:
        folded = await asyncio.to_thread(_receive_folds, pipes, progress)
        why = overlap(folded)
        if why is not None:
            raise _Overlap(why)
        as_of = plan.as_of or max((f.latest for f in folded if f.latest), default=None)
        for pipe in pipes:
            pipe.send(("write", as_of))
        result = ReplayResult(
            records=sum(f.records for f in folded), ticks=sum(f.ticks for f in folded),
            cut=sum(f.cut for f in folded), read_cpu=sum(f.read_cpu for f in folded),
            read_seconds=time.perf_counter() - started, workers=len(pipes),
        )  # fmt: skip
        with no_cycle_collection():  # millions of row tuples, as in engine.replay
            await _write(plan, staging, folded, pipes, as_of, result, on_table)
    return result


class _Overlap(Exception):
    """The workers' shares were not independent (the reason is the message): the replay
    starts again in one process, and the staging schema is dropped."""


async def _write(
    plan: ReplayPlan,
    schema: str,
    folded: list[Folded],
    pipes: list[Connection],
    as_of: datetime | None,
    result: ReplayResult,
    on_table: Callable[[str, int | None], None] | None,
) -> None:
    """COPY the workers' rows as they arrive: PostgreSQL takes one table while the workers
    still encode the next ones. A thread drains every pipe into its worker's feed, so no
    worker ever waits for this process to get to its rows."""
    feeds = [_Feed() for _ in pipes]
    # A thread of its own, started now: the reads below block this thread until it delivers.
    drain = threading.Thread(target=_drain, args=(pipes, feeds), daemon=True)
    drain.start()
    cross = cross_pairs([f.identities for f in folded])
    checkpoints = {k: v for f in folded for k, v in f.checkpoints.items()}

    def table(projection: Projection) -> TableData:
        name = projection.table
        rows = chain.from_iterable(feed.table(name) for feed in feeds)
        if projection.encoded is not None or projection.encoders is not None:
            return TableData(binary=rows)
        if name == "attribution_credit":
            return TableData(records=first_lead_credits(rows))
        if name == "lead_duplicate":
            return TableData(records=chain(rows, map(duplicate_row, cross)))
        return TableData(records=rows)

    started, cpu = time.perf_counter(), time.process_time()
    credit_as_of = as_of if plan.attribution is not None else None
    run = (plan.source, plan.as_of, result.records, credit_as_of)
    try:
        counts = [feed.counts() for feed in feeds]
        result.written = await write_tables(plan.dsn, schema, table, checkpoints, run, on_table)
    finally:
        for feed in feeds:
            feed.abandon()
        await asyncio.to_thread(drain.join)
    result.write_seconds = time.perf_counter() - started
    result.write_cpu = time.process_time() - cpu
    result.counts = ReplayCounts(
        sum(x.accepted for x in counts), sum(x.rejected for x in counts),
        sum(x.leads for x in counts), sum(x.timers for x in counts),
        result.written.get("attribution_credit", 0), sum(x.derived for x in counts) + len(cross),
    )  # fmt: skip


class _Feed:
    """One worker's messages after its fold, in the order it sent them (see ``parallel_worker``)."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        #: set by the writer, read by ``_drain``'s thread
        self.abandoned = False

    def table(self, name: str) -> Iterator[Any]:
        """The payloads of table ``name`` (binary chunks, or row tuples one by one)."""
        while True:
            kind, payload = self._next()
            if kind == "end":
                if payload != name:
                    raise WorkerFailed(f"a replay worker sent {payload!r} where {name!r} was due")
                return
            if kind == "binary":
                yield payload
            elif kind == "records":
                yield from payload
            else:
                raise WorkerFailed(f"a replay worker sent {kind!r} within table {name!r}")

    def counts(self) -> ReplayCounts:
        kind, payload = self._next()
        if kind != "counts":
            raise WorkerFailed(f"a replay worker sent {kind!r} where its counts were due")
        return payload  # type: ignore[no-any-return]

    def abandon(self) -> None:
        """Let ``_drain`` stop reading this worker (the write is over, or failed)."""
        self.abandoned = True

    def _next(self) -> tuple[Any, ...]:
        message = self.queue.get()
        if message[0] == "failed":
            raise WorkerFailed(message[1])
        return message


def _drain(pipes: list[Connection], feeds: list[_Feed]) -> None:
    """Move every worker's messages into its feed until it is done (or fails, or the write
    is abandoned)."""
    index = {id(p): i for i, p in enumerate(pipes)}
    open_ = set(range(len(pipes)))
    while open_:
        for pipe in wait([pipes[i] for i in open_], timeout=0.5):
            assert isinstance(pipe, Connection)
            i = index[id(pipe)]
            try:
                message = _recv(pipe)
            except WorkerFailed as exc:
                feeds[i].queue.put(("failed", str(exc)))
                open_.discard(i)
                continue
            if message[0] == "done":
                open_.discard(i)
            else:
                feeds[i].queue.put(message)
        # A write that ended (or failed) leaves the rest unread.
        for i in list(open_):
            if feeds[i].abandoned:
                open_.discard(i)


def _receive_folds(pipes: list[Connection], progress: Progress | None) -> list[Folded]:
    """Each worker's report of its fold; the progress messages before it go to ``progress``."""
    out: dict[int, Folded] = {}
    index = {id(p): i for i, p in enumerate(pipes)}
    while len(out) < len(pipes):
        for pipe in wait([p for i, p in enumerate(pipes) if i not in out]):
            assert isinstance(pipe, Connection)
            kind, payload = _recv(pipe)
            if kind == "progress":
                if progress is not None:
                    progress(payload, None)
            elif kind == "folded":
                out[index[id(pipe)]] = payload
            else:
                raise WorkerFailed(f"unexpected message {kind!r} from a replay worker")
    return [out[i] for i in range(len(pipes))]


def _recv(pipe: Connection) -> tuple[Any, ...]:
    try:
        message: tuple[Any, ...] = pipe.recv()
    except EOFError:
        raise WorkerFailed("a replay worker exited without finishing") from None
    if message[0] == "error":
        raise WorkerFailed(f"a replay worker failed:\n{message[1]}")
    return message
