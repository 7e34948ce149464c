"""Replay benchmark: ``leadledger replay`` over 1,000,000 events against the raw aiokafka limit.

On its own embedded Tansu + PostgreSQL it seeds a topic of ~200-byte lead events (4
partitions, ``bench/common.py: lead_events``), measures the raw limit over that same topic
(``getmany`` + ``orjson.loads`` + a dict fold, ``bench/common.py: raw_limit``), then runs the
real replay engine (``services.replay.engine.replay``: the live BatchPipeline with the SLA and
closed-loop engines over an in-memory store, then the bulk COPY of every read model) several
passes, each into a fresh schema. Replay rates include the final write.

    .venv/bin/python -m bench.replay [--events 1000000] [--passes 3] [--batch-size 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time

from bench.common import machine, raw_limit, seeded_topic, stack, summary
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.replay.engine import ReplayPlan, replay
from services.replay.sources import KafkaSource
from services.settings import Settings


async def run(events: int, passes: int, batch_size: int) -> None:
    print(machine())
    with stack() as s:
        started = time.perf_counter()
        topic, _ = await seeded_topic(s.bootstrap, events, partitions=4)
        print(f"seeded {events:,} events into {topic} in {time.perf_counter() - started:.0f}s")
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
            result = await replay(plan, KafkaSource(s.bootstrap, topic, batch_size))
            seconds = time.perf_counter() - t0
            rates.append(result.records / seconds)
            print(f"pass {n + 1}: raw {raw_limit_rate:,.0f} ev/s; replay {result.records:,}"
                  f" records in {seconds:.1f}s (fold {result.read_seconds:.1f}s, write"
                  f" {result.write_seconds:.1f}s) = {rates[-1]:,.0f} ev/s,"
                  f" {rates[-1] / raw_limit_rate:.1%} of raw")  # fmt: skip
    print(summary("raw limit (getmany+orjson+dict)", raw))
    print(summary("replay (fold + bulk COPY)", rates))
    print(f"ratio of medians: {statistics.median(rates) / statistics.median(raw):.1%}"
          " (target >= 40%)")  # fmt: skip
    # The bench's own process: the seeded records plus the replay's state at its peak.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:,.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.passes, args.batch_size))


if __name__ == "__main__":
    main()
