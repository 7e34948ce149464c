"""HTTP ingest throughput of the API (``leadledger api``): batches of 500 and single events,
events/s and per-request p50/p99 latency, with the broker on the same machine.

    .venv/bin/python -m bench.ingest [--events 100000] [--single 3000] [--batch 500]
                                     [--concurrency 4] [--passes 3]

Each pass starts the API as a child process (its own port) against an embedded Tansu and
PostgreSQL, then POSTs ``/v1/events`` with ``--concurrency`` requests in flight: first
``--events`` events in batches of ``--batch``, then ``--single`` one-event requests. A
request counts when the API answered 202 (it answers after the broker acknowledged every
event of the request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson

from bench.common import Stack, create_topic, lead_events, logs_dir, machine, stack
from bench.latency import percentile
from services.embedded.procs import free_port, spawn_logged, stop_process, wait_for_port

TOKEN = "dev-token-crm"  # the default token, publishing for source "crm"


async def post_all(port: int, bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    """POST every body; (elapsed seconds, per-request latencies). Raises on any non-202."""
    queue = list(reversed(bodies))
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def run(client: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            t0 = time.perf_counter()
            response = await client.post("/v1/events", content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(run(client) for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


def bodies(n: int, per_request: int) -> list[bytes]:
    events = [orjson.loads(v) for _, v in lead_events(n, prefix=f"I{uuid.uuid4().hex[:6]}")]
    if per_request == 1:
        return [orjson.dumps(e) for e in events]
    return [orjson.dumps(events[i : i + per_request]) for i in range(0, n, per_request)]


def one_pass(st: Stack, args: argparse.Namespace, work: Path) -> dict[str, tuple[float, ...]]:
    suffix = uuid.uuid4().hex[:8]
    topic = f"bench.ingest.{suffix}"
    asyncio.run(create_topic(st.bootstrap, topic))
    port = free_port()
    env = dict(os.environ) | {
        "LEADLEDGER_KAFKA_BOOTSTRAP": st.bootstrap,
        "LEADLEDGER_DATABASE_URL": st.fresh_database(),
        "LEADLEDGER_EVENTS_TOPIC": topic,
        "LEADLEDGER_API_PORT": str(port),
        "LEADLEDGER_DATA_DIR": str(work / f"api-{port}"),
        "LEADLEDGER_LOG_LEVEL": "warning",
    }
    proc = spawn_logged(
        [sys.executable, "-m", "services", "api"], work / f"api-{port}.log", env=env
    )
    out: dict[str, tuple[float, ...]] = {}
    try:
        wait_for_port("127.0.0.1", port, timeout=60, proc=proc, what="leadledger api")
        for label, n, per in (
            (f"batches of {args.batch}", args.events, args.batch),
            ("single events", args.single, 1),
        ):
            seconds, lat = asyncio.run(post_all(port, bodies(n, per), args.concurrency))
            out[label] = (n / seconds, percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000)
    finally:
        stop_process(proc, timeout=20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--single", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    print(machine())
    results: dict[str, list[tuple[float, ...]]] = {}
    with logs_dir("ll-bench-ingest-") as work, stack() as st:
        for p in range(args.passes):
            for label, got in one_pass(st, args, work).items():
                results.setdefault(label, []).append(got)
                print(
                    f"pass {p + 1} {label:<18} {got[0]:>9,.0f} events/s  "
                    f"request p50 {got[1]:.1f} ms, p99 {got[2]:.1f} ms",
                    flush=True,
                )
    print(f"\n{args.concurrency} requests in flight")
    for label, runs in results.items():
        rates = [r[0] for r in runs]
        print(
            f"{label:<18} events/s min {min(rates):,.0f} median {statistics.median(rates):,.0f}"
            f" max {max(rates):,.0f}; request p50 median "
            f"{statistics.median(r[1] for r in runs):.1f} ms, p99 median "
            f"{statistics.median(r[2] for r in runs):.1f} ms"
        )


if __name__ == "__main__":
    main()
