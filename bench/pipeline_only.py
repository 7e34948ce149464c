"""The processor's batch pipeline alone, without Kafka or Faust: how fast can it decode, fold,
run the SLA engine and the closed loop, and commit to PostgreSQL?

Feeds the seeded records (``bench/common.py: lead_events``) to ``BatchPipeline`` in batches,
with the real ``PostgresProjectionStore``, the default funnel and SLA policies and the closed
loop wired as the worker wires it (``--no-sla``, ``--no-closed-loop`` leave them out); derived
events and dead letters go to sinks that only count. ``--profile`` prints the top of a
cProfile of one pass.

Each pass also prints the CPU it cost per event, in this process (the client side: decode,
fold, row encoding, the driver) and in PostgreSQL (the postmaster's reaped children, i.e. the
pass's backends, which exit when its pool closes), and the round trips to PostgreSQL per
commit (a call on the connection, a COPY counting two: the CopyIn handshake and the end).
The machine is shared, so compare CPU per event rather than the rates.

    .venv/bin/python -m bench.pipeline_only [--events 50000] [--batch 2000] [--profile]
        [--no-sla] [--no-closed-loop]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from bench.common import lead_events, stack, summary
from events.envelope import Event
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.gc_policy import BatchCollector, tune_for_batches
from services.processor.closed_loop import ClosedLoopEngine
from services.processor.pipeline import BatchPipeline, ClosedLoopWiring, SlaWiring
from services.processor.ports import RejectedRecord
from services.processor.records import Record
from services.processor.sla_engine import SlaEngine
from services.store.migrate import migrate
from services.store.pool import processor_pool
from services.store.projection_store import PostgresProjectionStore


class CountingDerived:
    def __init__(self) -> None:
        self.n = 0

    async def send(self, events: Sequence[Event]) -> None:
        self.n += len(events)


class CountingDeadLetters:
    def __init__(self) -> None:
        self.n = 0

    async def send(self, rejected: Sequence[RejectedRecord]) -> None:
        self.n += len(rejected)


def records(total: int, partitions: int = 4) -> list[Record]:
    now_ms = int(time.time() * 1000)
    offsets = [0] * partitions
    out = []
    for key, value in lead_events(total):
        p = hash(key) % partitions
        out.append(Record("bench", p, offsets[p], key, value, now_ms))
        offsets[p] += 1
    return out


class RoundTrips:
    """Counts the calls a commit makes on its connection (BEGIN and COMMIT included)."""

    #: Connection methods that each cost (at least) one round trip, with how many.
    METHODS = {"execute": 1, "executemany": 1, "fetch": 1, "fetchrow": 1, "fetchval": 1,
               "copy_records_to_table": 2}  # fmt: skip

    def __init__(self) -> None:
        self.calls = 0
        self.commits = 0
        self.in_commit = False

    @contextmanager
    def counting(self) -> Iterator[None]:
        saved = {m: getattr(asyncpg.Connection, m) for m in self.METHODS}
        for name, trips in self.METHODS.items():
            setattr(asyncpg.Connection, name, self._wrap(saved[name], trips))
        try:
            yield
        finally:
            for name, method in saved.items():
                setattr(asyncpg.Connection, name, method)

    def _wrap(self, method: Callable[..., Any], trips: int) -> Callable[..., Any]:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += trips if self.in_commit else 0
            return await method(*args, **kwargs)

        return counted


def server_cpu(pid: int) -> float:
    """CPU seconds of the postmaster's reaped children (its backends) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


async def one_pass(
    dsn: str, recs: list[Record], batch: int, sla: bool, closed_loop: bool, trips: RoundTrips
) -> tuple[float, int]:
    pool = await processor_pool(dsn)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        funnel = load_funnel(None)
        rules = compile_rules(load_sla(funnel, None), funnel)
        store = PostgresProjectionStore(pool, "bench")
        derived = CountingDerived()
        pipe = BatchPipeline(
            "bench", funnel, store, CountingDeadLetters(),
            sla=SlaWiring(SlaEngine(rules), store, derived) if sla else None,
            # As the worker wires it: pseudonymised addresses, identity fence, re-handoffs.
            closed_loop=ClosedLoopWiring(ClosedLoopEngine(funnel, b"bench"), store, derived)
            if closed_loop else None,
        )  # fmt: skip
        started = time.perf_counter()
        commit = store.commit

        async def counted_commit(*args: Any, **kwargs: Any) -> None:
            trips.commits += 1
            trips.in_commit = True
            try:
                await commit(*args, **kwargs)
            finally:
                trips.in_commit = False

        store.commit = counted_commit  # type: ignore[method-assign]
        collector = BatchCollector()  # as the worker does
        with trips.counting():
            for i in range(0, len(recs), batch):
                await pipe.process(recs[i : i + batch])
                collector.batch_done()
        return time.perf_counter() - started, derived.n
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-sla", action="store_true", help="without the SLA engine")
    parser.add_argument("--no-closed-loop", action="store_true", help="without the closed loop")
    args = parser.parse_args()
    tune_for_batches()  # as the worker does
    recs = records(args.events)
    with stack() as st:
        rates = []
        for n in range(args.passes):
            dsn = st.fresh_database()
            if args.profile and n == 0:
                prof = cProfile.Profile()
                prof.enable()
            trips = RoundTrips()
            cpu, server = time.process_time(), server_cpu(st.postgres.pid)
            seconds, derived = asyncio.run(
                one_pass(dsn, recs, args.batch, not args.no_sla, not args.no_closed_loop, trips)
            )
            cpu = time.process_time() - cpu
            # The pool is closed: give the postmaster a moment to reap its backends.
            time.sleep(0.5)
            server = server_cpu(st.postgres.pid) - server
            if args.profile and n == 0:
                prof.disable()
                pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
            rates.append(len(recs) / seconds)
            print(f"pass {n + 1}: {len(recs) / seconds:,.0f} events/s ({derived} derived),"
                  f" CPU {cpu / len(recs) * 1e6:.1f} us/event here and"
                  f" {server / len(recs) * 1e6:.1f} in PostgreSQL,"
                  f" {trips.calls / max(trips.commits, 1):.1f} round trips per commit"
                  f" (load {os.getloadavg()[0]:.1f})")  # fmt: skip
        parts = ["Postgres", *(["SLA"] if not args.no_sla else []),
                 *(["closed loop"] if not args.no_closed_loop else [])]  # fmt: skip
        print(summary(f"pipeline only ({', '.join(parts)})", rates))


if __name__ == "__main__":
    main()
