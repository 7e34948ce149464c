"""The publisher follows the producer settings: idempotence on for real Kafka, off for Tansu."""

from __future__ import annotations

from services.publisher import KafkaPublisher
from services.settings import Settings


def test_the_publisher_is_not_idempotent_by_default_because_tansu_refuses_it() -> None:
    publisher = KafkaPublisher.from_settings(Settings())

    assert publisher._config["enable_idempotence"] is False


def test_the_idempotent_producer_setting_turns_idempotence_on_for_real_kafka() -> None:
    publisher = KafkaPublisher.from_settings(Settings(kafka_idempotent_producer=True))

    assert publisher._config["enable_idempotence"] is True
