"""Create the Kafka topics leadledger needs, with explicit partition counts.

Plain Kafka admin protocol, so it works against Tansu and real Kafka alike.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.settings import Settings

__all__ = [
    "TopicError",
    "TopicPartitionMismatch",
    "delete_topics",
    "ensure_topics",
    "leadledger_topics",
]

#: Kafka error code for a CreateTopics race with another creator: the topic is there now.
_TOPIC_ALREADY_EXISTS = 36
#: Keep records forever: the topics are the event history. Tansu also wants an explicit value.
_TOPIC_CONFIGS = {"retention.ms": "-1"}


class TopicError(RuntimeError):
    """The broker refused to create or describe a topic."""


class TopicPartitionMismatch(TopicError):
    """An existing topic has a different partition count than requested."""


def leadledger_topics(settings: Settings) -> dict[str, int]:
    """Topic name -> partition count for the events, rejected and derived topics.

    All three share ``settings.partitions`` so that a lead's events, rejections and derived
    records land in partitions with the same number.
    """
    return {
        settings.events_topic: settings.partitions,
        settings.rejected_topic: settings.partitions,
        settings.derived_topic: settings.partitions,
    }


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] != 0:
            raise TopicError(f"describing topic {topic['topic']!r} failed: {topic}")
        counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def ensure_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create each missing topic with its partition count (replication 1); idempotent.

    Existing topics are only checked: a different partition count raises
    TopicPartitionMismatch, because Kafka cannot shrink a topic and keyed records would
    move partitions if it grew.
    """
    if not topics:
        return
    for name, partitions in topics.items():
        if partitions < 1:
            raise ValueError(f"topic {name!r}: partition count must be >= 1, got {partitions}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadledger-topics")
    await admin.start()
    try:
        # List first: a Metadata request naming a topic auto-creates it (with 4 partitions on
        # Tansu, with the broker default on Kafka), which would hide a missing topic.
        existing = set(await admin.list_topics())
        missing = [name for name in topics if name not in existing]
        if missing:
            response = await admin.create_topics(
                [NewTopic(name, topics[name], 1, topic_configs=_TOPIC_CONFIGS) for name in missing]
            )
            for name, code, message in response.topic_errors:
                if code not in (0, _TOPIC_ALREADY_EXISTS):
                    raise TopicError(f"creating topic {name!r} failed: error {code}: {message}")
        actual = await _partition_counts(admin, list(topics))
    finally:
        await admin.close()
    wrong = {
        name: (want, actual.get(name)) for name, want in topics.items() if actual.get(name) != want
    }
    if wrong:
        details = "; ".join(
            f"{name!r} has {have} partitions, {want} requested"
            for name, (want, have) in wrong.items()
        )
        raise TopicPartitionMismatch(
            f"topic partition mismatch at {bootstrap}: {details}. Recreate the topics or set "
            "the partition count to match."
        )


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Delete the named topics; names that do not exist are skipped."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="leadledger-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if not doomed:
            return
        response = await admin.delete_topics(doomed)
        failed = [(name, code) for name, code in response.topic_error_codes if code != 0]
        if failed:
            raise TopicError(f"deleting topics failed: {failed}")
    finally:
        await admin.close()
