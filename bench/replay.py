"""Replay benchmark: ``leadledger replay`` over 1,000,000 events against the raw aiokafka limit.

On its own embedded Tansu + PostgreSQL it seeds a topic of ~200-byte lead events (4
partitions, ``bench/common.py: lead_events``; in a child process, so that the peak RSS printed
is the replay's and not the seeder's: building and sending 1M records once grew this
process by ~4 GB, most of it orjson's unshrunk output buffers, see
``events/json_bytes.py``), measures the raw limit over that same topic
(``getmany`` + ``orjson.loads`` + a dict fold, ``bench/common.py: raw_limit``), then runs the
real replay engine as ``leadledger replay`` runs it (``services.replay.parallel``: with
``--workers`` processes, by default one per core, each folding its share of the partitions
through the live BatchPipeline with the SLA and closed-loop engines over an in-memory store;
then this process's bulk COPY of every read model) several passes, each into a fresh schema.
Replay rates include the final write. ``--workers 1`` is the fold in this process alone.

    .venv/bin/python -m bench.replay [--events 1000000] [--passes 3] [--batch-size 20000]
        [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import resource
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

from bench.common import create_topic, lead_events, machine, raw_limit, seed, stack, summary
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.replay.digest import overall_digest
from services.replay.engine import ReplayPlan
from services.replay.parallel import replay_parallel
from services.replay.projections import PROJECTIONS
from services.replay.schema import connect_in
from services.replay.sources import KafkaSource
from services.replay.tables import digest_schema
from services.settings import Settings


async def run(events: int, passes: int, batch_size: int, workers: int) -> None:
    print(machine())
    with stack() as s:
        started = time.perf_counter()
        topic = f"bench.events.{uuid.uuid4().hex[:8]}"
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            await asyncio.get_running_loop().run_in_executor(
                pool, _seed, s.bootstrap, topic, events
            )
        print(f"seeded {events:,} events into {topic} in {time.perf_counter() - started:.0f}s")
        rss = _RssPeak()
        dsn = s.fresh_database()
        funnel = load_funnel()
        rules = compile_rules(load_sla(funnel), funnel)
        key = Settings().email_hmac_key.get_secret_value().encode()
        raw, rates = [], []
        for n in range(passes):
            raw.append(raw_limit_rate := (await raw_limit(s.bootstrap, topic, events)).per_second)
            plan = ReplayPlan(dsn=dsn, schema=f"bench_{n}", topic=topic, funnel=funnel,
                              sla_rules=rules, email_hmac_key=key, replace=True)  # fmt: skip
            t0 = time.perf_counter()
            rss.start_pass()
            tables = _TableCpu()
            result = await replay_parallel(plan, KafkaSource(s.bootstrap, topic, batch_size),
                                           workers, on_table=tables)  # fmt: skip
            seconds = time.perf_counter() - t0
            per_table = tables.per_table(result.write_cpu)
            walls = tables.walls(result.write_seconds)
            rates.append(result.records / seconds)
            print(f"pass {n + 1}: raw {raw_limit_rate:,.0f} ev/s; replay {result.records:,}"
                  f" records in {seconds:.1f}s (fold {result.read_seconds:.1f}s, write"
                  f" {result.write_seconds:.1f}s) = {rates[-1]:,.0f} ev/s,"
                  f" {rates[-1] / raw_limit_rate:.1%} of raw; {result.workers} fold"
                  f" process(es){'' if result.fallback is None else ' (' + result.fallback + ')'};"
                  f" CPU: fold {result.read_cpu:.1f}s, write {result.write_cpu:.1f}s; RSS peak"
                  f" {rss.peak:,.0f} MiB (from {rss.base:,.0f}); load"
                  f" {os.getloadavg()[0]:.2f}")  # fmt: skip
            print(f"  write CPU per table: {per_table}")
            print(f"  write wall time per table: {walls}")
            t0 = time.perf_counter()
            digest = await _digest(dsn, plan.schema)
            print(f"  digest {digest} in {time.perf_counter() - t0:.1f}s (RSS peak of pass"
                  f" and digest {rss.peak:,.0f} MiB)")  # fmt: skip
            # The result holds the pass's whole folded state: left referenced, it stays
            # resident through the next pass, inflating its peak RSS and slowing its raw
            # reader (every collection walks it).
            del result
            gc.collect()
    print(summary("raw limit (getmany+orjson+dict)", raw))
    print(summary("replay (fold + bulk COPY)", rates))
    print(f"ratio of medians: {statistics.median(rates) / statistics.median(raw):.1%}"
          " (target >= 40%)")  # fmt: skip
    # The bench's own process (the seeding ran in a child): the replay's state at its peak.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:,.0f} MiB")


class _TableCpu:
    """``on_table`` of the write: when (this process's CPU time, and wall time) each table's
    COPY ended."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, float, float]] = []

    def __call__(self, table: str, rows: int | None) -> None:
        if rows is not None:  # None: the table's write starts
            self.ends.append((table, time.process_time(), time.perf_counter()))

    def per_table(self, write_cpu: float) -> str:
        """CPU per table, the write having taken ``write_cpu`` and just ended (the first
        table's includes the connection and the transaction's start)."""
        return _spans([(t, cpu) for t, cpu, _ in self.ends], time.process_time() - write_cpu)

    def walls(self, write_seconds: float) -> str:
        """Wall time per table (from the write's start, or the previous table's end)."""
        return _spans([(t, w) for t, _, w in self.ends], time.perf_counter() - write_seconds)


def _spans(ends: list[tuple[str, float]], start: float) -> str:
    """Each table's time since the previous table's end (the first: since ``start``)."""
    out = []
    for table, end in ends:
        if end - start >= 0.01:
            out.append(f"{table} {end - start:.2f}s")
        start = end
    return ", ".join(out)


async def _digest(dsn: str, schema: str) -> str:
    """The overall digest of the rebuilt read models (``services.replay.digest``), and each
    table's row count: a change to the replay must leave it identical."""
    conn = await connect_in(dsn, schema)
    try:
        tables = await digest_schema(conn, schema, PROJECTIONS)
    finally:
        await conn.close()
    counts = ", ".join(f"{t.table} {t.rows:,}" for t in tables if t.rows)
    return f"{overall_digest(tables)[:16]} ({counts})"


def _seed(bootstrap: str, topic: str, events: int) -> None:
    """In the child process: the topic and its records."""

    async def go() -> None:
        await create_topic(bootstrap, topic, 4)
        # A fixed start, so that every run rebuilds the same rows (the digest printed).
        await seed(bootstrap, topic, lead_events(events, start=datetime(2026, 1, 1, tzinfo=UTC)))

    asyncio.run(go())


class _RssPeak:
    """The kernel's high-water mark of this process's resident set (``VmHWM``), reset at the
    start of each pass (``/proc/self/clear_refs``, Linux 4.0+). A sampling thread missed
    peaks: it needs the GIL, which the fold holds."""

    def __init__(self) -> None:
        self.base = 0.0

    def start_pass(self) -> None:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.base = _status_mib("VmRSS")

    @property
    def peak(self) -> float:
        return _status_mib("VmHWM")


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise LookupError(field)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="fold processes (default: one per core, as leadledger replay)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.events, args.passes, args.batch_size, args.workers))


if __name__ == "__main__":
    main()
