"""Shared pieces of the benchmarks: the embedded stack, the seeded topic, the peers' fold, the
raw aiokafka limit and the min/median/max summary.

Every benchmark measures *sustained* throughput the same way: from the moment the first batch
of records has been handled (so consumer-group joins and start-up are left out) to the moment
the last record is reflected, counting only the records handled in between::

    rate = (total - done_at_first) / (t_last - t_first)

``raw_limit`` is the practical ceiling for one Python process on this machine: aiokafka's
``getmany`` + ``orjson.loads`` + the same small fold into a dict. Other benchmarks (and
``bench/replay.py``) report their rates as ratios to it, measured in the same run.

Run ``python -m bench.common raw --bootstrap HOST:PORT --topic T --expected N`` to measure the
raw limit in a process of its own (``bench/peers.py`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from bench.fold import fold_stage
from events.codec import decode
from events.json_bytes import dumps_to_keep
from services.embedded.postgres import EmbeddedPostgres
from services.embedded.procs import free_port
from services.embedded.tansu import TansuBroker
from services.embedded.topics import ensure_topics

#: The main path of the default funnel: every seeded lead walks it to the end.
MAIN_PATH = ("lead", "mql", "sal", "sql", "opportunity", "customer")
#: Offsets of each step from the lead's start (event time).
STEP_OFFSETS = (
    timedelta(0),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(days=1),
    timedelta(days=3),
)

Records = list[tuple[bytes, bytes]]


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    """A Tansu broker and a PostgreSQL server that one benchmark run owns."""

    broker: TansuBroker
    postgres: EmbeddedPostgres
    workdir: Path

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def fresh_database(self) -> str:
        """DSN of a new, empty database (each pass of the real processor gets one)."""
        name = f"bench_{uuid.uuid4().hex[:10]}"
        self.postgres.create_database(name)
        return self.postgres.dsn_for(name)


@contextmanager
def stack(postgres: bool = True) -> Iterator[Stack]:
    """Start Tansu (and PostgreSQL) in a temporary directory; stop both by PID afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="ll-bench-"))
    broker = TansuBroker(workdir / "logs", port=free_port())
    broker.start()
    pg = EmbeddedPostgres(workdir / "pg", free_port(), log_path=workdir / "logs" / "postgres.log")
    try:
        if postgres:
            pg.start()
        yield Stack(broker, pg, workdir)
    finally:
        if postgres:
            pg.stop()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def logs_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory for the workers' logs and data: removed after a run that went
    through, kept (and its path printed) after one that failed, when it is worth reading."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    except BaseException:
        print(f"logs kept in {work}", flush=True)
        raise
    shutil.rmtree(work, ignore_errors=True)


# --- the seeded topic ------------------------------------------------------------------------


def lead_events(total: int, start: datetime | None = None, prefix: str = "B") -> Records:
    """``total`` (key, value) records of leads walking the main path, in event-time order.

    Each lead is six events (``lead.created`` + five ``lead.stage_changed``) of about 200
    bytes: the CloudEvents attributes the contract requires, no optional ones. A new lead
    starts every 10 s of event time, all within the last ~10 days, so the real processor
    accepts every one (nothing too late, nothing from the future). The last lead may stop
    early.
    """
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    leads = -(-total // len(MAIN_PATH))
    timed: list[tuple[datetime, int, bytes, bytes]] = []
    for n in range(leads):
        lead = f"{prefix}-{n:07d}"
        t0 = start + timedelta(seconds=10 * n)
        for step, offset in enumerate(STEP_OFFSETS):
            at = t0 + offset
            if step == 0:
                type_, version = "lead.created", 1
                data = {"stage": "lead", "email": f"p{n}@example.com", "country": "DE"}
            else:
                type_, version = "lead.stage_changed", 2
                data = {"from_stage": MAIN_PATH[step - 1], "to_stage": MAIN_PATH[step]}
            # Kept: a million records held at once were 4 GB instead of 200 MB with orjson's
            # own buffers (events/json_bytes.py).
            value = dumps_to_keep(
                {
                    "specversion": "1.0",
                    "id": f"{lead}-{step}",
                    "source": "crm",
                    "type": type_,
                    "subject": lead,
                    "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "schemaversion": version,
                    "data": data,
                }
            )
            timed.append((at, n * 10 + step, lead.encode(), value))
    timed.sort()
    records = [(key, value) for _, _, key, value in timed[:total]]
    for _, value in records[:12]:
        decode(value)  # the contract accepts them (raises otherwise)
    return records


async def create_topic(bootstrap: str, topic: str, partitions: int = 4) -> None:
    """The topic with ``partitions`` and ``retention.ms`` set (Tansu needs it explicit)."""
    await ensure_topics(bootstrap, {topic: partitions})


async def seed(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """Publish ``records`` keyed by lead (per-lead order kept); returns the send rate."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(records) / (time.perf_counter() - started)


async def seeded_topic(
    bootstrap: str, total: int, partitions: int = 4, prefix: str = "B"
) -> tuple[str, Records]:
    """A new topic holding ``total`` lead events; returns its name and the records sent."""
    topic = f"bench.events.{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic, partitions)
    records = lead_events(total, prefix=prefix)
    await seed(bootstrap, topic, records)
    return topic, records


# --- measurement -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    """A sustained rate: records handled between the first batch and the last record."""

    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def to_json(self) -> bytes:
        return orjson.dumps({"events": self.events, "seconds": self.seconds})

    @staticmethod
    def from_json(raw: bytes | str) -> Rate:
        obj = orjson.loads(raw)
        return Rate(int(obj["events"]), float(obj["seconds"]))


class RateClock:
    """Marks the first handled batch and the last record: ``Rate`` of what came between."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._first: tuple[float, int] | None = None
        self._last = 0.0

    def handled(self, n: int) -> bool:
        """Count ``n`` more handled records; True once all ``total`` are."""
        self.done += n
        now = time.perf_counter()
        if self._first is None:
            self._first = (now, self.done)
        self._last = now
        return self.done >= self.total

    def rate(self) -> Rate:
        if self._first is None:
            return Rate(0, 0.0)
        t0, n0 = self._first
        return Rate(self.done - n0, self._last - t0)


async def raw_limit(bootstrap: str, topic: str, expected: int, seconds: float = 300.0) -> Rate:
    """The raw aiokafka limit on ``topic``: ``getmany`` + ``orjson.loads`` + ``fold_stage``.

    Reads every partition from offset 0 without a consumer group (nothing to join) until
    ``expected`` records were folded. Raises TimeoutError if they do not arrive in time.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        state: dict[bytes, list[Any]] = {}
        clock = RateClock(expected)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=10_000)
            n = 0
            for records in batches.values():
                for r in records:
                    key = r.key or b""
                    state[key] = fold_stage(state.get(key), orjson.loads(r.value))
                n += len(records)
            if n and clock.handled(n):
                return clock.rate()
        raise TimeoutError(f"raw reader saw {clock.done} of {expected} records in {seconds}s")
    finally:
        await consumer.stop()


def summary(label: str, rates: Sequence[float], unit: str = "events/s") -> str:
    """``label: min / median / max`` of several passes, rounded for reading."""
    lo, mid, hi = min(rates), statistics.median(rates), max(rates)
    return f"{label:<34} min {lo:>10,.0f}  median {mid:>10,.0f}  max {hi:>10,.0f} {unit}"


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpus = os.cpu_count()
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {cpus} cores ({model}), "
        f"Python {sys.version.split()[0]}, load average {load}"
    )


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    raw = sub.add_parser("raw", help="measure the raw aiokafka limit once; prints the Rate JSON")
    raw.add_argument("--bootstrap", required=True)
    raw.add_argument("--topic", required=True)
    raw.add_argument("--expected", type=int, required=True)
    args = parser.parse_args(argv)
    if args.command == "raw":
        rate = asyncio.run(raw_limit(args.bootstrap, args.topic, args.expected))
        sys.stdout.write(rate.to_json().decode() + "\n")


if __name__ == "__main__":
    _main()
