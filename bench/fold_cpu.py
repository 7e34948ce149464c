"""CPU of the pure lead fold alone: ``projections.lead.apply`` over pre-decoded events.

No Kafka, no PostgreSQL, no decode in the timed part: the events are decoded once, then each
repetition folds them into fresh per-lead states (as the processor's lead cache does) and
reports ``time.process_time()`` per event, so the figure is CPU, not wall clock, and other
processes on the machine disturb it little.

``--mix seeded`` (default) folds ``bench.common.lead_events``: every lead walks the main path
(``lead.created`` + five ``lead.stage_changed``), what the throughput benchmarks feed.
``--mix sim`` folds the simulator's journeys (touchpoints, assignments, contacts, deals,
regressions, merges), so the paths that the seeded stream never takes are measured too.

    .venv/bin/python -m bench.fold_cpu [--events 50000] [--repeat 3] [--mix seeded|sim]

It also prints a digest of what the fold produced (changes, rejections, final states), so two
versions of the fold can be compared for identical results.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from datetime import UTC, datetime, timedelta

from events.codec import decode
from events.envelope import Event
from events.funnel import Funnel, load_funnel
from projections.lead import Applied, LeadState, apply, empty
from services.gc_policy import tune_for_batches


def seeded_events(total: int) -> list[Event]:
    # Imported here: bench.common pulls in aiokafka and the embedded stack.
    from bench.common import lead_events

    # A fixed start, so every run folds the very same events (and the digest can compare).
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [decode(value) for _, value in lead_events(total, start=start)]


def sim_events(total: int) -> list[Event]:
    from services.simulator.journeys import SimConfig, journey

    cfg = SimConfig()
    rng = random.Random(cfg.seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events: list[Event] = []
    n = 0
    while len(events) < total:
        events.extend(journey(n, start + timedelta(minutes=n), rng, cfg))
        n += 1
    # Event-time order across leads, like a partition's log; per lead the journey's order.
    events.sort(key=lambda e: e.time)
    return events[:total]


def fold_once(events: list[Event], funnel: Funnel) -> tuple[float, int]:
    """Seconds of CPU for one pass over ``events`` and how many were accepted."""
    states: dict[str, LeadState] = {}
    accepted = 0
    start = time.process_time()
    for event in events:
        subject = event.subject
        state = states.get(subject)
        if state is None:
            state = empty(subject)
        result = apply(state, event, funnel)
        if isinstance(result, Applied):
            states[subject] = result.state
            accepted += 1
    return time.process_time() - start, accepted


def digest(events: list[Event], funnel: Funnel) -> str:
    """A digest of everything the fold produced (each result's changes or rejection, and the
    final states), untimed: two versions of the fold must print the same."""
    states: dict[str, LeadState] = {}
    h = hashlib.sha256()
    for event in events:
        subject = event.subject
        result = apply(states.get(subject) or empty(subject), event, funnel)
        if isinstance(result, Applied):
            states[subject] = result.state
            h.update(repr((result.out_of_order, result.changes)).encode())
        else:
            h.update(repr(result.rejection).encode())
    for lead_id in sorted(states):
        state = states[lead_id]
        h.update(repr((lead_id, [e.id for e in state.events], state.view)).encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mix", choices=("seeded", "sim"), default="seeded")
    args = parser.parse_args(argv)

    # The worker's collector setting, so the fold pays what it pays in production.
    tune_for_batches()
    funnel = load_funnel()
    events = seeded_events(args.events) if args.mix == "seeded" else sim_events(args.events)
    figures = []
    for _ in range(args.repeat):
        seconds, accepted = fold_once(events, funnel)
        figures.append(seconds / len(events) * 1e6)
    shown = ", ".join(f"{f:.2f}" for f in figures)
    print(
        f"fold_cpu mix={args.mix} events={len(events)} accepted={accepted}: "
        f"min {min(figures):.2f} us/event (runs: {shown})  digest {digest(events, funnel)}"
    )


if __name__ == "__main__":
    main()
