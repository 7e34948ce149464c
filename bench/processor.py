"""Run leadledger's real processor (``leadledger processor``, a Faust worker) against a seeded
topic and a fresh PostgreSQL database, and measure it by its committed checkpoints.

"Handled" means committed: the read-model rows and their offset checkpoint are in
PostgreSQL. The first observation of any checkpoint marks the first batch; the run ends when
the checkpoints cover every record of the topic.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import Rate, create_topic
from services.embedded.procs import free_port, spawn_logged, stop_process

#: Settings for a benchmark worker: quick group joins on Tansu, no wall-clock ticks (the
#: seeded topic is all the input; ticks would add records the peers do not see).
BENCH_SETTINGS: dict[str, str] = {
    "broker_session_timeout_seconds": "4",
    "broker_rebalance_timeout_seconds": "8",
    "tick_interval_seconds": "0",
    "log_level": "warning",
}


async def prepare_topics(bootstrap: str, events_topic: str, partitions: int = 4) -> dict[str, str]:
    """Rejected and derived topics for a run on ``events_topic``; returns the settings."""
    suffix = uuid.uuid4().hex[:8]
    rejected, derived = f"bench.rejected.{suffix}", f"bench.derived.{suffix}"
    for name in (rejected, derived):
        await create_topic(bootstrap, name, partitions)
    return {"events_topic": events_topic, "rejected_topic": rejected, "derived_topic": derived}


@dataclass
class Worker:
    """A running ``leadledger processor`` child and its web port."""

    proc: subprocess.Popen[bytes]
    port: int

    async def metric(self, name: str) -> float:
        """Sum of a metric's samples on the worker's /metrics (0 while it is not up)."""
        try:
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        except httpx.HTTPError:
            return 0.0
        return sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )


@contextmanager
def worker(
    bootstrap: str, dsn: str, topics: dict[str, str], workdir: Path, **overrides: Any
) -> Iterator[Worker]:
    """One ``leadledger processor`` child with its own web port; stopped by PID afterwards."""
    port = free_port()
    values = {
        **BENCH_SETTINGS,
        **topics,
        "kafka_bootstrap": bootstrap,
        "database_url": dsn,
        "processor_web_port": str(port),
        "data_dir": str(workdir / f"worker-{port}"),
        **{k: str(v) for k, v in overrides.items()},
    }
    env = dict(os.environ) | {f"LEADLEDGER_{k.upper()}": v for k, v in values.items()}
    proc = spawn_logged(
        [sys.executable, "-m", "services", "processor"],
        workdir / f"processor-{port}.log",
        env=env,
    )
    try:
        yield Worker(proc, port)
    finally:
        stop_process(proc, timeout=20)


async def wait_assigned(workers: Sequence[Worker], partitions: int, seconds: float = 120) -> None:
    """Until the group has settled: the workers' assigned partitions add up, each has some."""
    deadline = time.monotonic() + seconds
    while True:
        shares = [await w.metric("leadledger_processor_assigned_partitions") for w in workers]
        if sum(shares) == partitions and all(shares):
            return
        if any(w.proc.poll() is not None for w in workers) or time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not settle: shares {shares}")
        await asyncio.sleep(0.2)


async def committed(conn: asyncpg.Connection, topic: str) -> int:
    """Records of ``topic`` covered by checkpoints (every consumer name, all partitions)."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(kafka_offset + 1), 0) FROM projection_checkpoint"
        " WHERE kafka_topic = $1",
        topic,
    )
    return int(value or 0)


async def wait_committed(
    dsn: str,
    topic: str,
    expected: int,
    procs: Sequence[subprocess.Popen[bytes]],
    seconds: float = 600.0,
    interval: float = 0.005,
) -> Rate:
    """Poll the checkpoints until they cover ``expected`` records; the sustained Rate."""
    deadline = time.monotonic() + seconds
    conn: asyncpg.Connection | None = None
    while conn is None:
        try:
            conn = await asyncpg.connect(dsn)
        except (OSError, asyncpg.PostgresError):
            await asyncio.sleep(0.1)
    first: tuple[float, int] | None = None
    try:
        while True:
            try:
                done = await committed(conn, topic)
            except asyncpg.UndefinedTableError:
                done = 0  # the worker has not migrated the database yet
            now = time.perf_counter()
            if done and first is None:
                first = (now, done)
            if done >= expected:
                assert first is not None
                return Rate(done - first[1], now - first[0])
            dead = [p.pid for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"processor {dead} exited before the end ({done}/{expected})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{done} of {expected} records committed in {seconds}s")
            await asyncio.sleep(interval)
    finally:
        await conn.close()


async def measure(
    bootstrap: str,
    dsn: str,
    topic: str,
    expected: int,
    workdir: Path,
    workers: int = 1,
    overrides: dict[str, Any] | None = None,
    publish: Callable[[], Coroutine[Any, Any, object]] | None = None,
    partitions: int = 4,
) -> Rate:
    """Run ``workers`` processors (one consumer group) over ``topic`` into ``dsn``, with
    ``overrides`` of their settings (``{"sla_file": ...}``). With ``publish``, the workers
    first join on the (empty) topic and ``publish()`` then sends the ``expected`` records.
    """
    overrides = dict(overrides or {})
    topics = await prepare_topics(bootstrap, topic)
    # A consumer group (and checkpoint name) of its own: Kafka offsets committed by an
    # earlier pass on the same topic would otherwise make this one start at the end.
    overrides.setdefault("processor_id", f"bench-{uuid.uuid4().hex[:8]}")
    with ExitStack() as stack:
        running = [
            stack.enter_context(worker(bootstrap, dsn, topics, workdir, **overrides))
            for _ in range(workers)
        ]
        if publish is not None:
            # Live: the group settles on an empty topic first, then the records arrive.
            await wait_assigned(running, partitions)
            task = asyncio.create_task(publish())
            rate = await wait_committed(dsn, topic, expected, [w.proc for w in running])
            await task
            return rate
        return await wait_committed(dsn, topic, expected, [w.proc for w in running])
