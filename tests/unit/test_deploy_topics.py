"""The compose topic job: deploy/kafka/topics.yaml and create_topics.py, run against a real
(Tansu) broker, since the script only speaks the plain Kafka admin protocol."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy.kafka.create_topics import TopicSpec, create_topics, load_topics, main
from services.embedded.procs import free_port
from services.embedded.tansu import TansuBroker
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ROOT / "deploy" / "kafka" / "topics.yaml"


def _default(name: str) -> object:
    return Settings.model_fields[name].default


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    with TansuBroker(tmp_path_factory.mktemp("tansu-topics"), port=free_port()) as tansu:
        yield tansu


async def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


def test_the_topic_file_defines_the_topics_the_service_uses_with_the_default_partitions() -> None:
    specs = {s.name: s for s in load_topics(TOPICS)}
    wanted = {_default(n) for n in ("events_topic", "rejected_topic", "derived_topic")}
    assert set(specs) == wanted
    assert {s.partitions for s in specs.values()} == {_default("partitions")}
    # The topics are the event history: nothing may expire.
    assert all(s.config["retention.ms"] == "-1" for s in specs.values())


def test_the_topic_job_creates_every_topic_and_a_second_run_changes_nothing(
    broker: TansuBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--bootstrap", broker.bootstrap, str(TOPICS)]) == 0
    first = capsys.readouterr().out
    assert main(["--bootstrap", broker.bootstrap, str(TOPICS)]) == 0
    second = capsys.readouterr().out
    specs = load_topics(TOPICS)
    counts = asyncio.run(_partition_counts(broker.bootstrap, [s.name for s in specs]))
    assert counts == {s.name: s.partitions for s in specs}
    assert first.count("created") == len(specs), first
    assert second.count("exists") == len(specs), second


def test_a_topic_with_another_partition_count_is_an_error_not_a_silent_pass(
    broker: TansuBroker,
) -> None:
    spec = TopicSpec("leadledger.test.mismatch", partitions=2, replication_factor=1)
    asyncio.run(create_topics(broker.bootstrap, [spec]))
    wider = TopicSpec(spec.name, partitions=4, replication_factor=1)
    with pytest.raises(RuntimeError, match="has 2 partitions, 4 defined"):
        asyncio.run(create_topics(broker.bootstrap, [wider]))


def test_a_definition_file_with_a_duplicate_topic_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "topics.yaml"
    entry = "  - {name: a, partitions: 1, replication_factor: 1}\n"
    path.write_text("topics:\n" + entry + entry)
    with pytest.raises(ValueError, match="defined twice"):
        load_topics(path)
