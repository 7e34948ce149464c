"""Resident memory per lead in the processor's live projections: the batch pipeline's lead
cache (folded ``LeadState`` per lead) and the SLA engine's timer rows and queues.

    .venv/bin/python -m bench.memory [--leads 100000,1000000] [--trace]

Runs the real ``BatchPipeline`` with the packaged funnel and SLA policies in this process,
over an in-memory store (no PostgreSQL, no Kafka: their memory is not the projections'), in
batches of 5,000 records generated on the fly and dropped after use. Each lead is created,
becomes an MQL (three SLA timers start), is assigned and accepted (SAL: the MQL timers are
met, ``contact_attempts`` starts), so every lead carries history and timer rows. A new lead
starts every 10 s of event time.

Prints the process's RSS growth per lead, and with ``--trace`` the tracemalloc breakdown of
what stays allocated (by source file), to show where the bytes go. Note the pipeline caps
its lead cache at ``Limits.cache_leads`` (200,000) and the SLA engine its row cache at the
same; evicted leads are refolded from the archive on their next event.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import tracemalloc
from collections.abc import Awaitable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import orjson

from events.envelope import Event
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.closed_loop.duplicates import Holder
from projections.sla import compile_rules
from projections.sla_emit import TimerRow
from services.processor.pipeline import BatchPipeline, SlaWiring
from services.processor.ports import BatchWrite, RejectedRecord
from services.processor.records import Checkpoint, Record
from services.processor.sla_engine import SlaEngine

STEPS = (
    ("lead.created", 1, {"stage": "lead", "email": "x@example.com"}, timedelta(0)),
    ("lead.stage_changed", 2, {"from_stage": "lead", "to_stage": "mql"}, timedelta(minutes=5)),
    ("lead.assigned", 1, {"owner_id": "rep-1", "team": "sdr-emea"}, timedelta(minutes=6)),
    ("lead.stage_changed", 2, {"from_stage": "mql", "to_stage": "sal"}, timedelta(minutes=30)),
)


class NullStore:
    """A store with nothing committed and that keeps nothing it is given."""

    async def load_checkpoints(
        self, topic: str, partitions: Sequence[int]
    ) -> dict[int, Checkpoint]:
        return {}

    async def load_histories(self, lead_ids: Sequence[str]) -> dict[str, list[Event]]:
        return {}

    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]:
        return set()

    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        return {}

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        return []

    async def commit(
        self,
        batch: BatchWrite,
        expected: dict[int, int | None],
        delivered: Awaitable[None] | None = None,
    ) -> None:
        if delivered is not None:
            await delivered

    async def load_identities(self, email_keys: Sequence[str]) -> dict[str, dict[str, Holder]]:
        return {}


class NullSink:
    async def send(self, items: Sequence[Event] | Sequence[RejectedRecord]) -> None:
        return None


def batches(leads: int, size: int = 5000) -> Iterator[list[Record]]:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10 * leads + 3600)
    now_ms = int(time.time() * 1000)
    offsets = [0, 0, 0, 0]
    batch: list[Record] = []
    # Leads overlap in time like live traffic: emit by event time across leads.
    window: list[tuple[datetime, int, int]] = []
    for n in range(leads):
        t0 = start + timedelta(seconds=10 * n)
        window += [(t0 + dt, n, i) for i, (_, _, _, dt) in enumerate(STEPS)]
        if len(window) >= size * 2 or n == leads - 1:
            window.sort()
            cut = len(window) if n == leads - 1 else len(window) // 2
            for at, lead_n, i in window[:cut]:
                type_, version, data, _ = STEPS[i]
                lead = f"M-{lead_n:07d}"
                value = orjson.dumps({
                    "specversion": "1.0", "id": f"{lead}-{i}", "source": "crm", "type": type_,
                    "subject": lead, "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "schemaversion": version, "data": data,
                })  # fmt: skip
                p = lead_n % 4
                batch.append(Record("mem", p, offsets[p], lead.encode(), value, now_ms))
                offsets[p] += 1
                if len(batch) >= size:
                    yield batch
                    batch = []
            window = window[cut:]
    if batch:
        yield batch


def rss() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run(leads: int) -> BatchPipeline:
    funnel = load_funnel(None)
    rules = compile_rules(load_sla(funnel, None), funnel)
    store = NullStore()
    pipe = BatchPipeline(
        "mem", funnel, store, NullSink(), sla=SlaWiring(SlaEngine(rules), store, NullSink())
    )
    for batch in batches(leads):
        await pipe.process(batch)
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--leads", default="100000,1000000")
    parser.add_argument("--trace", action="store_true", help="tracemalloc breakdown (slower)")
    args = parser.parse_args()
    for leads in (int(x) for x in args.leads.split(",")):
        if args.trace:
            tracemalloc.start()
        gc.collect()
        before, started = rss(), time.perf_counter()
        pipe = asyncio.run(run(leads))
        gc.collect()
        grown = rss() - before
        engine = pipe.sla.engine if pipe.sla is not None else None
        cached = len(pipe._leads)
        rows = len(engine._rows) if engine else 0
        pending = engine.pending_count() if engine else 0
        print(
            f"{leads:,} leads ({len(STEPS)} events each) in {time.perf_counter() - started:.0f} s:"
            f" RSS +{grown / 2**20:,.0f} MiB = {grown / leads:,.0f} B per lead seen,"
            f" {grown / max(cached, 1):,.0f} B per cached lead"
            f" ({cached:,} leads cached, SLA rows for {rows:,} leads, {pending:,} timers queued)"
        )
        if args.trace:
            snap = tracemalloc.take_snapshot()
            total = sum(s.size for s in snap.statistics("filename"))
            print(f"  tracemalloc: {total / 2**20:,.0f} MiB live, by file:")
            for stat in snap.statistics("filename")[:12]:
                name = stat.traceback[0].filename.split("site-packages/")[-1]
                per = stat.size / max(cached, 1)
                print(f"    {stat.size / 2**20:8.1f} MiB {per:7.0f} B/lead  {name}")
            tracemalloc.stop()
        del pipe, engine
        gc.collect()


if __name__ == "__main__":
    main()
