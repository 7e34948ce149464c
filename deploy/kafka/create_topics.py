"""Create the Kafka topics listed in a topic definition file; the compose ``kafka-topics`` job.

Usage: ``python create_topics.py --bootstrap kafka:9092 topics.yaml``

Idempotent: missing topics are created with their partitions, replication factor and config;
existing ones are only checked. A partition count that differs from the file is an error,
because Kafka cannot shrink a topic and growing it would move keyed records (a lead's
events) to another partition. Waits for the broker, since a freshly started Kafka answers
metadata requests before it accepts topic creation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

#: CreateTopics error code for a topic that exists already (another creator won a race).
TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicSpec:
    """One topic as the definition file declares it."""

    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def load_topics(path: Path) -> list[TopicSpec]:
    """Parse and check a topic definition file (see deploy/kafka/topics.yaml)."""
    document = yaml.safe_load(path.read_text())
    specs = [
        TopicSpec(
            name=str(entry["name"]),
            partitions=int(entry["partitions"]),
            replication_factor=int(entry["replication_factor"]),
            config={str(k): str(v) for k, v in (entry.get("config") or {}).items()},
        )
        for entry in document["topics"]
    ]
    for spec in specs:
        if spec.partitions < 1 or spec.replication_factor < 1:
            raise ValueError(f"{spec.name}: partitions and replication_factor must be >= 1")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"{path}: a topic is defined twice")
    return specs


async def _admin(bootstrap: str, wait_seconds: float) -> Any:
    deadline = time.monotonic() + wait_seconds
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadledger-topics")
        try:
            await admin.start()
            return admin
        except KafkaError as exc:
            await admin.close()
            if time.monotonic() > deadline:
                raise
            print(f"waiting for Kafka at {bootstrap}: {exc!r}", file=sys.stderr)
            await asyncio.sleep(2)


async def create_topics(
    bootstrap: str, specs: list[TopicSpec], wait_seconds: float = 60
) -> list[str]:
    """Create the missing topics, check every partition count; return the names created."""
    admin = await _admin(bootstrap, wait_seconds)
    try:
        # List first: a metadata request that names a missing topic may auto-create it with
        # the broker's default partition count.
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config)
                    for s in missing
                ]
            )
            for name, code, message in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"creating topic {name!r} failed: error {code}: {message}")
        described = await admin.describe_topics([s.name for s in specs])
    finally:
        await admin.close()
    actual = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    wrong = [
        f"{s.name} has {actual.get(s.name)} partitions, {s.partitions} defined"
        for s in specs
        if actual.get(s.name) != s.partitions
    ]
    if wrong:
        raise RuntimeError("topic partition mismatch: " + "; ".join(wrong))
    return [s.name for s in missing]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("definitions", type=Path, help="topic definition YAML")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for Kafka")
    args = parser.parse_args(argv)
    specs = load_topics(args.definitions)
    created = asyncio.run(create_topics(args.bootstrap, specs, args.wait))
    for spec in specs:
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name}: {spec.partitions} partitions, {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
