"""Sustained live throughput of leadledger's real processor, one worker and two.

    .venv/bin/python -m bench.live [--events 100000] [--passes 3] [--sla none|default|both]

Per pass and configuration: fresh topics and database; the worker(s) start and join the
consumer group on the empty events topic (two workers: distinct web ports, one group, two
partitions each); then the events are published (aiokafka, as fast as it goes) while the
processor works. Measured from the first committed batch until the checkpoints in
PostgreSQL cover the last event (read model and checkpoints committed). The raw aiokafka
limit is measured on the same topic in the same pass, for the ratio.

``--sla none`` runs with no SLA policies (``bench/sla-none.yaml``: the fold the peers do);
``default`` with the packaged policies (timers, derived events to Kafka, ``sla_timer``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from pathlib import Path

from bench.common import (
    Stack,
    create_topic,
    lead_events,
    logs_dir,
    machine,
    raw_limit,
    seed,
    stack,
    summary,
)
from bench.processor import measure

NO_SLA = Path(__file__).resolve().parent / "sla-none.yaml"


async def one(st: Stack, n: int, workers: int, sla: str, work: Path) -> tuple[float, float]:
    """(processor events/s, raw limit events/s) on a fresh topic of ``n`` events."""
    topic = f"bench.live.{uuid.uuid4().hex[:8]}"
    await create_topic(st.bootstrap, topic)
    records = lead_events(n)
    overrides = {"sla_file": str(NO_SLA)} if sla == "none" else {}
    rate = await measure(
        st.bootstrap, st.fresh_database(), topic, len(records), work, workers=workers,
        overrides=overrides, publish=lambda: seed(st.bootstrap, topic, records),
    )  # fmt: skip
    raw = await raw_limit(st.bootstrap, topic, len(records))
    return rate.per_second, raw.per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--sla", choices=("none", "default", "both"), default="both")
    args = parser.parse_args()
    slas = ("none", "default") if args.sla == "both" else (args.sla,)
    print(machine())
    results: dict[str, list[tuple[float, float]]] = {}
    with logs_dir("ll-bench-live-") as work, stack() as st:
        for p in range(args.passes):
            for sla in slas:
                for workers in (1, 2):
                    label = f"{workers} worker{'s' if workers > 1 else ''}, SLA {sla}"
                    got = asyncio.run(one(st, args.events, workers, sla, work))
                    results.setdefault(label, []).append(got)
                    print(
                        f"pass {p + 1} {label:<24} {got[0]:>8,.0f} events/s"
                        f"  (raw limit {got[1]:,.0f}/s, {got[0] / got[1]:.1%})",
                        flush=True,
                    )
    print(f"\n{args.events:,} events per run")
    for label, runs in results.items():
        print(summary(label, [r for r, _ in runs]))
        ratios = [r / raw for r, raw in runs]
        print(f"{'':<34} ratio to the raw limit, median {statistics.median(ratios):.1%}")


if __name__ == "__main__":
    main()
