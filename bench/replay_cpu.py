"""CPU of the replay without Kafka or PostgreSQL: the fold (``services.replay.engine.fold_source``
over records held in memory) and the building of every COPY row, per event.

The records are ``bench.stage_cpu.records`` (fixed times, so every run folds the very same
log), handed over in batches of ``--batch-size`` as ``KafkaSource`` would. Prints, per pass,
``time.process_time()`` per event of the fold and of building the rows of every registered
projection (what ``services.replay.writer`` streams into COPY, without the driver's encoding),
and a digest of those rows (in any order), so two versions or batch sizes can be compared
for identical output. ``--keep-leads`` lowers the replay's working set (as at 1M events,
where leads are packed); ``--profile`` runs one pass under cProfile.

    .venv/bin/python -m bench.replay_cpu [--events 200000] [--repeat 3] [--batch-size 20000]
        [--keep-leads 50000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import pstats
import time
from collections.abc import AsyncIterator

from bench.stage_cpu import records
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.processor.records import Record
from services.replay.engine import KEEP_LEADS, ReplayPlan, fold_source, no_cycle_collection
from services.replay.projections import PROJECTIONS


class ListSource:
    """A replay source over records in memory."""

    def __init__(self, recs: list[Record], batch_size: int) -> None:
        self.recs, self.batch_size = recs, batch_size

    async def open(self) -> int:
        return len(self.recs)

    async def batches(self) -> AsyncIterator[list[Record]]:
        for i in range(0, len(self.recs), self.batch_size):
            yield self.recs[i : i + self.batch_size]

    async def close(self) -> None:
        return None


async def one_pass(
    plan: ReplayPlan, recs: list[Record], batch_size: int, keep_leads: int
) -> tuple[float, float, str]:
    with no_cycle_collection():
        result = await fold_source(plan, ListSource(recs, batch_size), keep_leads=keep_leads)
        cpu = time.process_time()
        tables = [(p.table, list(p.rows(result.state))) for p in PROJECTIONS]
        rows_cpu = time.process_time() - cpu
        # Sorted, as the read models' digests are: the order of a table's rows follows the
        # batches (a lead's rows come with its last commit), which PostgreSQL does not keep.
        h = hashlib.sha256()
        for table, rows in tables:
            h.update(f"{table}:{len(rows)}".encode())
            for line in sorted(repr(r) for r in rows):
                h.update(line.encode())
    return result.read_cpu, rows_cpu, h.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--keep-leads", type=int, default=KEEP_LEADS)
    parser.add_argument("--profile", action="store_true", help="cProfile one pass")
    args = parser.parse_args()
    funnel = load_funnel()
    plan = ReplayPlan(
        dsn="", schema="bench", topic="bench", funnel=funnel,
        sla_rules=compile_rules(load_sla(funnel), funnel), email_hmac_key=b"bench",
    )  # fmt: skip
    recs = records(args.events)
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(one_pass(plan, recs, args.batch_size, args.keep_leads))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(45)
        return
    folds, builds = [], []
    for _ in range(args.repeat):
        gc.collect()
        fold, build, digest = asyncio.run(one_pass(plan, recs, args.batch_size, args.keep_leads))
        folds.append(fold / len(recs) * 1e6)
        builds.append(build / len(recs) * 1e6)
        print(f"fold {folds[-1]:6.2f} µs/event  rows {builds[-1]:6.2f} µs/event  digest {digest}")
    print(f"best fold {min(folds):.2f}, rows {min(builds):.2f} µs/event over {len(recs)} events")


if __name__ == "__main__":
    main()
