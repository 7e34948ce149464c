"""Helpers for integration tests: run leadledger processes, publish, poll Postgres and Kafka."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from pydantic import SecretStr

from events.codec import encode
from events.envelope import Event
from services.embedded.procs import free_port, stop_process
from services.settings import Settings

T = TypeVar("T")


def settings_env(settings: Settings, **overrides: Any) -> dict[str, str]:
    """The environment a child process needs to build the same Settings."""
    env = dict(os.environ)
    values = settings.model_dump() | overrides
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            # str() of a secret is its mask; the child needs the value itself.
            text = value.get_secret_value()
        elif isinstance(value, dict):
            text = orjson.dumps(value).decode()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[f"LEADLEDGER_{name.upper()}"] = text
    return env


@contextmanager
def processor(settings: Settings, log_dir: Path, **overrides: Any) -> Iterator[ProcessorHandle]:
    """Run ``leadledger processor`` as a child with its own web port; stopped by PID after."""
    handle = ProcessorHandle(settings, log_dir, **overrides)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


class ProcessorHandle:
    """A processor child process that a test can SIGKILL and start again."""

    def __init__(self, settings: Settings, log_dir: Path, **overrides: Any) -> None:
        self.web_port = free_port()
        overrides.setdefault("broker_session_timeout_seconds", 4.0)
        overrides.setdefault("broker_rebalance_timeout_seconds", 8.0)
        self.env = settings_env(settings, processor_web_port=self.web_port, **overrides)
        self.log_path = log_dir / f"processor-{self.web_port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services", "processor"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def wait_until(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    seconds: float = 60.0,
    what: str = "condition",
    interval: float = 0.25,
    watch: ProcessorHandle | None = None,
) -> T:
    """Poll ``probe`` until ``done(value)``; fail with the last value after ``seconds``.

    With ``watch``, fail at once (with its log) if that process dies while we wait.
    """
    deadline = time.monotonic() + seconds
    value = await probe()
    while not done(value):
        if watch is not None and not watch.alive:
            raise AssertionError(f"the processor died waiting for {what}:\n{watch.log_tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}; last: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def publish(
    bootstrap: str,
    topic: str,
    items: Sequence[Event | tuple[bytes | None, bytes]],
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Publish events (keyed by lead id) or raw (key, value) pairs with aiokafka, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        pending = []
        for item in items:
            key, value = (item.key, encode(item)) if isinstance(item, Event) else item
            # One in-flight batch per partition keeps per-key order while sending fast.
            pending.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, topic: str, expected: int, seconds: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``expected`` records came or ``seconds`` passed."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + seconds
        while len(out) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def scalar(dsn: str, sql: str, *args: Any) -> Any:
    """One value from Postgres; None when the table does not exist yet."""
    try:
        rows = await fetch(dsn, sql, *args)
    except asyncpg.UndefinedTableError:
        return None
    return rows[0][0] if rows else None
