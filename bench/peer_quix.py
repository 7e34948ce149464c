"""The quixstreams peer: the same fold into RocksDB state with a changelog topic.

Runs in its own venv (``bench/.venv-quix``; see bench/README.md) and imports nothing of the
project but ``bench/fold.py``. ``bench/peers.py`` starts it as::

    bench/.venv-quix/bin/python bench/peer_quix.py BOOTSTRAP TOPIC EXPECTED STATE_DIR

and reads one JSON line ``{"events": N, "seconds": S}`` from its stdout.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
from quixstreams import Application, State

# Its own venv has no install of the project: load bench/fold.py from beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fold import fold_stage


def main(bootstrap: str, topic_name: str, expected: int, state_dir: str) -> None:
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{time.time_ns()}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        use_changelog_topics=True,
        # Tansu rejects InitProducerId, so no idempotent producer.
        producer_extra_config={"enable.idempotence": False},
        loglevel="WARNING",
    )
    topic = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes")
    progress: dict[str, Any] = {"done": 0, "first": None}

    def apply(value: bytes, state: State) -> None:
        state.set("s", fold_stage(state.get("s"), orjson.loads(value)))
        progress["done"] += 1
        if progress["first"] is None:
            progress["first"] = time.perf_counter()
        if progress["done"] >= expected:
            app.stop()

    app.dataframe(topic).update(apply, stateful=True)
    app.run()
    # Quix buffers state writes and flushes them (RocksDB + changelog produce + offset commit)
    # at each checkpoint, the last one on the way out of run(): measure until it is durable,
    # as leadledger is measured until its read model and checkpoint are committed.
    durable = time.perf_counter()
    # Quix hands records to the function one by one: the first "batch" is one record.
    seconds = durable - (progress["first"] or durable)
    sys.stdout.write(orjson.dumps({"events": progress["done"] - 1, "seconds": seconds}).decode())
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
