"""End-to-end latency of leadledger's real processor: publish -> read model, p50/p99, at a
fixed rate (default 1,000 events/s).

    .venv/bin/python -m bench.latency [--rate 1000] [--seconds 20] [--passes 3] [--sla none]

One worker with the packaged SLA policies (``--sla none``: none) joins the group on an empty
topic; then events are published at the fixed rate, each stamped when ``send()`` is called.
A poller reads the per-partition checkpoints from PostgreSQL every 5 ms: an event is in the
read model from the first poll whose checkpoint covers its offset (rows and checkpoint
commit in one transaction). So each latency includes up to one poll interval (5 ms) and the
poll query itself. Each pass also prints the worker's CPU time per event over the pass (from
/proc): on a shared machine it moves far less than the latencies do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.common import Stack, create_topic, lead_events, machine, stack
from bench.processor import prepare_topics, wait_assigned, worker

NO_SLA = Path(__file__).resolve().parent / "sla-none.yaml"
POLL = 0.005


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def publish_at(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], rate: float
) -> dict[tuple[int, int], float]:
    """Send at ``rate`` per second; (partition, offset) -> perf_counter at send()."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0)
    await producer.start()
    sent: list[tuple[float, asyncio.Future[object]]] = []
    try:
        start = time.perf_counter()
        for i, (key, value) in enumerate(records):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append((time.perf_counter(), await producer.send(topic, value, key=key)))
        out: dict[tuple[int, int], float] = {}
        for at, fut in sent:
            meta = await fut
            out[(meta.partition, meta.offset)] = at  # type: ignore[attr-defined]
        return out
    finally:
        await producer.stop()


async def poll_until(
    dsn: str, topic: str, total: int, seen: dict[int, list[tuple[float, int]]]
) -> None:
    """Record (time, checkpoint offset) per partition whenever a checkpoint moves."""
    conn = await asyncpg.connect(dsn)
    try:
        last: dict[int, int] = {}
        while sum(o + 1 for o in last.values()) < total:
            try:
                rows = await conn.fetch(
                    "SELECT kafka_partition, kafka_offset FROM projection_checkpoint"
                    " WHERE kafka_topic = $1",
                    topic,
                )
            except asyncpg.UndefinedTableError:
                rows = []
            now = time.perf_counter()
            for r in rows:
                p, o = r["kafka_partition"], r["kafka_offset"]
                if last.get(p) != o:
                    last[p] = o
                    seen.setdefault(p, []).append((now, o))
            await asyncio.sleep(POLL)
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_pass(
    st: Stack, rate: float, seconds: float, sla: str, work: Path
) -> tuple[list[float], float]:
    """Latencies of one pass, and the worker's CPU seconds from the first send to the end."""
    topic = f"bench.latency.{uuid.uuid4().hex[:8]}"
    await create_topic(st.bootstrap, topic)
    records = lead_events(int(rate * seconds))
    dsn = st.fresh_database()
    topics = await prepare_topics(st.bootstrap, topic)
    overrides = {"processor_id": f"bench-{uuid.uuid4().hex[:8]}"}
    if sla == "none":
        overrides["sla_file"] = str(NO_SLA)
    with worker(st.bootstrap, dsn, topics, work, **overrides) as w:
        await wait_assigned([w], 4)
        seen: dict[int, list[tuple[float, int]]] = {}
        poller = asyncio.create_task(poll_until(dsn, topic, len(records), seen))
        cpu_before = cpu_seconds(w.proc.pid)
        sent = await publish_at(st.bootstrap, topic, records, rate)
        await asyncio.wait_for(poller, timeout=120)
        cpu = cpu_seconds(w.proc.pid) - cpu_before
    latencies = []
    for (p, offset), at in sent.items():
        reflected = next(t for t, o in seen[p] if o >= offset)
        latencies.append(reflected - at)
    return latencies, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--sla", choices=("none", "default"), default="default")
    args = parser.parse_args()
    print(machine())
    p50s, p99s = [], []
    with stack() as st:
        # Inside the stack's directory, so the workers' data and logs go when it does.
        work = st.workdir / "workers"
        for p in range(args.passes):
            lat, cpu = asyncio.run(one_pass(st, args.rate, args.seconds, args.sla, work))
            p50, p99 = percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000
            p50s.append(p50)
            p99s.append(p99)
            print(
                f"pass {p + 1}: {len(lat):,} events at {args.rate:,.0f}/s, SLA {args.sla}: "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(lat) * 1000:.1f} ms; "
                f"worker CPU {cpu * 1e6 / len(lat):.0f} us/event",
                flush=True,
            )
    print(f"p50 ms: min {min(p50s):.1f} median {statistics.median(p50s):.1f} max {max(p50s):.1f}")
    print(f"p99 ms: min {min(p99s):.1f} median {statistics.median(p99s):.1f} max {max(p99s):.1f}")


if __name__ == "__main__":
    main()
