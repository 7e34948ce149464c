"""CPU of the processor's stage alone: ``BatchPipeline.stage`` (decode, intake checks, fold,
closed loop) over the seeded records, with an in-memory store that answers at once.

No Kafka, no PostgreSQL: every batch is staged and settled (nothing is written), so the lead
cache grows as in the worker. Reports ``time.process_time()`` per event spent in ``stage``,
and a digest of everything the stage produced (accepted ids, changes, final lead states,
closed-loop output), so two versions of the code can be compared for identical results.

    .venv/bin/python -m bench.stage_cpu [--events 200000] [--batch 2000] [--repeat 3]
        [--no-closed-loop] [--allocs] [--profile] [--gc freeze|tune]

``--gc freeze`` (the default) does what the worker does after each committed batch: the
young threshold is raised once and what survived a batch is frozen (``gc.freeze``), so the
collector never walks the lead cache again. ``--gc tune`` keeps only the raised threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.memory import NullSink, NullStore
from events.funnel import load_funnel
from projections.lead import LeadState
from services.gc_policy import tune_for_batches
from services.processor.closed_loop import ClosedLoopEngine
from services.processor.pipeline import BatchPipeline, ClosedLoopWiring
from services.processor.records import Record


def records(total: int, partitions: int = 4) -> list[Record]:
    from bench.common import lead_events

    # A fixed start and broker time, so every run stages the very same records.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    broker_ms = int((start + timedelta(days=30)).timestamp() * 1000)
    offsets = [0] * partitions
    out = []
    for key, value in lead_events(total, start=start):
        p = sum(key) % partitions
        out.append(Record("bench", p, offsets[p], key, value, broker_ms))
        offsets[p] += 1
    return out


def _digest_state(h: hashlib._Hash, state: LeadState) -> None:
    h.update(repr((state.lead_id, [e.id for e in state.events], state.view)).encode())


async def one_pass(
    recs: list[Record],
    batch: int,
    closed_loop: bool,
    allocs: bool,
    profile: cProfile.Profile | None = None,
    freeze: bool = True,
) -> tuple[float, str, float]:
    funnel = load_funnel(None)
    store = NullStore()
    pipe = BatchPipeline(
        "bench", funnel, store, NullSink(),
        closed_loop=ClosedLoopWiring(ClosedLoopEngine(funnel, b"bench"), store, NullSink())
        if closed_loop else None,
    )  # fmt: skip
    h = hashlib.sha256()
    cpu = 0.0
    blocks = 0
    for i in range(0, len(recs), batch):
        chunk = recs[i : i + batch]
        before = sys.getallocatedblocks() if allocs else 0
        if profile is not None:
            profile.enable()
        t0 = time.process_time()
        staged = await pipe.stage(chunk)
        cpu += time.process_time() - t0
        if profile is not None:
            profile.disable()
        if allocs:
            blocks += sys.getallocatedblocks() - before
        o = staged.outcome
        h.update(repr([e.id for e in o.accepted]).encode())
        h.update(repr(o.changes).encode())
        h.update(repr([(r.rejection, r.lead_id, r.event_id) for r in o.rejected]).encode())
        h.update(repr([e.id for e in o.out_of_order]).encode())
        if staged.write is not None:
            for s in staged.write.leads:
                _digest_state(h, s)
            h.update(repr(staged.write.checkpoints).encode())
            h.update(repr(staged.write.closed_loop).encode())
        pipe.settle(staged)
        if freeze:
            gc.freeze()  # as the worker's collector does after each committed batch
    if freeze:
        gc.unfreeze()  # so the next pass starts from the same collector state
    for state in pipe._leads.values():
        _digest_state(h, state)
    return cpu, h.hexdigest()[:16], blocks / len(recs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-closed-loop", action="store_true")
    parser.add_argument(
        "--allocs", action="store_true", help="also count net allocated blocks per event"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the stage, one pass")
    parser.add_argument(
        "--gc",
        choices=("freeze", "tune"),
        default="freeze",
        help="freeze survivors after each batch (as the worker does), or only the threshold",
    )
    args = parser.parse_args()
    tune_for_batches()  # as the worker does
    recs = records(args.events)
    freeze = args.gc == "freeze"
    if args.profile:
        prof = cProfile.Profile()
        asyncio.run(one_pass(recs, args.batch, not args.no_closed_loop, False, prof, freeze))
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        return
    figures = []
    for _ in range(args.repeat):
        gc.collect()
        cpu, digest, blocks = asyncio.run(
            one_pass(recs, args.batch, not args.no_closed_loop, args.allocs, None, freeze)
        )
        us = cpu / len(recs) * 1e6
        figures.append(us)
        extra = f"  {blocks:.1f} blocks/event kept" if args.allocs else ""
        print(f"stage {us:6.2f} µs/event  digest {digest}{extra}")
    print(f"best {min(figures):.2f} µs/event over {len(recs)} events")


if __name__ == "__main__":
    main()
