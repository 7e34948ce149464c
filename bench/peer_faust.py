"""The naive Faust peer: one agent, ``async for`` per event, the same fold in a plain dict.

Started by ``bench/peers.py`` as a process of its own::

    .venv/bin/python -m bench.peer_faust BOOTSTRAP TOPIC EXPECTED RESULT_FILE DATA_DIR

It writes the sustained Rate as JSON to RESULT_FILE once EXPECTED records were folded and then
waits to be stopped (by PID) like any worker.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.worker import Worker

from bench.common import RateClock
from bench.fold import fold_stage
from services.embedded.procs import free_port


def _write(path: Path, data: bytes) -> None:
    # Once, at the end of the measured run: blocking is harmless there.
    path.write_bytes(data)


def main(bootstrap: str, topic: str, expected: int, result: Path, data_dir: str) -> None:
    app = faust.App(
        f"bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=4,
        broker_session_timeout=4,
        broker_rebalance_timeout=8,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        web_port=free_port(),
        datadir=data_dir,
        producer_acks=1,
    )
    source = app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=4)
    state: dict[bytes, list[Any]] = {}
    clock = RateClock(expected)

    @app.agent(source)
    async def fold(stream: Any) -> None:
        async for event in stream.events():
            key = event.key or b""
            state[key] = fold_stage(state.get(key), orjson.loads(event.value))
            if clock.handled(1):
                _write(result, clock.rate().to_json())

    Worker(app, loglevel="warning", redirect_stdouts=False, quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), sys.argv[5])
