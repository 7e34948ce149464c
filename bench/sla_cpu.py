"""CPU of the processor's SLA engine alone: ``SlaEngine.lead_changed`` and ``advance`` over
pre-folded lead states, with an in-memory store that holds nothing.

The events are decoded and folded into lead states once, outside the timed part; each
repetition then feeds a fresh engine what the pipeline feeds it (per accepted event:
``lead_changed`` with the partition's stream time, then ``advance``), in batches drained and
committed as the pipeline does, and reports ``time.process_time()`` per event. It also prints
a digest of everything the engine produced (timer rows with their figures, derived event
bytes, fired counts, volume facts), so a change to the engine can be checked for identical
output on the same stream.

``--mix seeded`` (default): ``bench.common.lead_events``, what the throughput benchmarks feed.
``--mix sim``: the simulator's journeys (assignments, contacts, regressions, merges), with
one event in ``--late`` (default 50) delivered late, so refolds are measured too.
``--replay``: the replay's ``DeferredSlaEngine`` instead, with ``finish`` at the end.

    .venv/bin/python -m bench.sla_cpu [--events 20000] [--repeat 3] [--mix seeded|sim]
        [--replay] [--batch 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime

from bench.fold_cpu import sim_events
from events.codec import decode
from events.envelope import Event
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.lead import Applied, LeadState, apply, empty
from projections.sla import SlaRules, compile_rules
from projections.sla_emit import TimerRow
from services.gc_policy import tune_for_batches
from services.processor.derived import encoded
from services.processor.sla_engine import SlaEngine, SlaWrite
from services.replay.sla_deferred import DeferredSlaEngine

#: (partition, state after the event, the partition's stream time, in order)
Step = tuple[int, LeadState, datetime, bool]


class EmptyStore:
    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]:
        return {}

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]:
        return []


def seeded_events(total: int) -> list[Event]:
    """``bench.common.lead_events`` from a fixed start, so the digest is the same every run
    (business-hours thresholds depend on the time of day)."""
    from bench.common import lead_events

    start = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    return [decode(value) for _, value in lead_events(total, start)]


def late(events: list[Event], every: int, seed: int = 7) -> list[Event]:
    """``events`` with one in ``every`` moved a few places later (a late, out-of-order one)."""
    if every <= 0:
        return events
    rng = random.Random(seed)
    out = list(events)
    for i in range(0, len(out) - 8, every):
        j = i + rng.randint(1, 8)
        out.insert(j, out.pop(i))
    return out


def steps(events: list[Event], partitions: int = 4) -> list[Step]:
    funnel = load_funnel()
    states: dict[str, LeadState] = {}
    stream: dict[int, datetime] = {}
    out: list[Step] = []
    for event in events:
        subject = event.subject
        result = apply(states.get(subject) or empty(subject), event, funnel)
        if not isinstance(result, Applied):
            continue
        states[subject] = result.state
        p = zlib.crc32(subject.encode()) % partitions
        now = stream[p] = max(stream.get(p, event.time), event.time)
        out.append((p, result.state, now, not result.out_of_order))
    return out


def run_once(work: list[Step], rules: SlaRules, batch: int, replay: bool) -> tuple[float, Digest]:
    engine = DeferredSlaEngine(rules) if replay else SlaEngine(rules)
    store = EmptyStore()
    # Each write is digested (untimed) and dropped, as the pipeline drops it once committed.
    digest = Digest()

    async def go() -> float:
        spent = 0.0
        for i in range(0, len(work), batch):
            chunk = work[i : i + batch]
            partitions = {p for p, _, _, _ in chunk}
            leads = {s.lead_id for _, s, _, _ in chunk}
            started = time.process_time()
            await engine.prepare(store, partitions, leads)
            for p, state, now, in_order in chunk:
                engine.lead_changed(p, state, now, in_order)
                engine.advance(p, now)
            write = engine.drain()
            spent += time.process_time() - started
            digest.add(write)
            started = time.process_time()
            del write
            engine.committed()
            spent += time.process_time() - started
        if isinstance(engine, DeferredSlaEngine):
            started = time.process_time()
            write = engine.finish()
            spent += time.process_time() - started
            digest.add(write)
        return spent

    return asyncio.run(go()), digest


class Digest:
    """A digest of every write, and the facts fired and derived events built."""

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.fired = self.derived = 0

    def add(self, w: SlaWrite) -> None:
        h = self.h
        self.fired += w.fired
        self.derived += len(w.derived)
        h.update(f"fired {w.fired}\n".encode())
        for row in w.rows:
            # The emitted set sorted: a frozenset's repr follows the string hash seed.
            seen = (row.timer, row.partition, sorted(row.emitted), row.next_fire_at, row.status)
            h.update(repr((seen, w.figures[row.timer.key])).encode())
        for event in w.derived:
            h.update(encoded(event))
        for lead_id, facts in sorted(w.facts.items()):
            h.update(repr((lead_id, facts)).encode())

    def hexdigest(self) -> str:
        return self.h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mix", choices=("seeded", "sim"), default="seeded")
    parser.add_argument("--late", type=int, default=50, help="sim: one event in N late")
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--replay", action="store_true", help="the replay's deferred engine")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    tune_for_batches()  # as the worker does
    funnel = load_funnel()
    rules = compile_rules(load_sla(funnel, None), funnel)
    if args.mix == "seeded":
        events = seeded_events(args.events)
    else:
        events = late(sim_events(args.events), args.late)
    work = steps(events)
    print(f"{sum(not s[3] for s in work)} of {len(work)} accepted events out of order")
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        run_once(work, rules, args.batch, args.replay)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    figures = []
    digests = set()
    fired = derived = 0
    for _ in range(args.repeat):
        seconds, digest = run_once(work, rules, args.batch, args.replay)
        figures.append(seconds / len(work) * 1e6)
        digests.add(digest.hexdigest())
        fired, derived = digest.fired, digest.derived
    shown = ", ".join(f"{f:.1f}" for f in figures)
    print(
        f"sla_cpu mix={args.mix} replay={args.replay} events={len(work)} fired={fired} "
        f"derived={derived} digest={','.join(sorted(digests))}: "
        f"min {min(figures):.1f} us/event (runs: {shown})"
    )


if __name__ == "__main__":
    main()
