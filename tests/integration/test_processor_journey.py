"""A lead's whole journey through the real broker, the real processor and real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from confluent_kafka import Producer

from events.codec import encode
from events.envelope import Event
from events.funnel import load_funnel
from services.api.app import create_app
from services.publisher import KafkaPublisher
from services.settings import Settings
from services.store.lead_reader import PostgresLeadReader
from tests.integration.helpers import fetch, processor, publish, scalar, wait_until
from tests.integration.journey import (
    EXPECTED_SECONDS,
    HANDOFF_LATENCY,
    HUMAN_DELAY,
    SYSTEM_DELAY,
    full_journey,
)


def publish_with_librdkafka(bootstrap: str, topic: str, events: list[Event]) -> None:
    """Upstream systems do not all use aiokafka: publish through librdkafka too."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False})
    for event in events:
        producer.produce(topic, value=encode(event), key=event.key)
    assert producer.flush(30) == 0


async def processed_count(settings: Settings) -> int:
    return int(await scalar(settings.database_url, "SELECT count(*) FROM event_archive") or 0)


def histogram_count(metrics_text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    prefix = f"{name}_count{{{want}}}" if want else f"{name}_count"
    for line in metrics_text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.split()[-1])
    return 0.0


async def assert_journey_projected(settings: Settings, lead: str, web_port: int) -> None:
    row = (
        await fetch(settings.database_url, "SELECT * FROM lead_current WHERE lead_id = $1", lead)
    )[0]
    assert row["current_stage"] == "customer"
    assert row["highest_stage"] == "customer"
    assert row["owner_id"] == "rep-1"
    assert row["owner_team"] == "sdr-emea"
    assert row["event_count"] == 11
    assert row["handoff_action"] == "contacted"
    assert row["handoff_latency_seconds"] == HANDOFF_LATENCY
    history = await fetch(
        settings.database_url,
        "SELECT stage, seconds FROM lead_stage_history WHERE lead_id = $1 ORDER BY seq",
        lead,
    )
    assert [r["stage"] for r in history] == [
        "lead", "mql", "sal", "sql", "opportunity", "customer"
    ]  # fmt: skip
    assert {r["stage"]: r["seconds"] for r in history if r["seconds"] is not None} == (
        EXPECTED_SECONDS
    )
    handoff = (
        await fetch(settings.database_url, "SELECT * FROM lead_handoff WHERE lead_id = $1", lead)
    )[0]
    assert handoff["system_delay_seconds"] == SYSTEM_DELAY
    assert handoff["human_delay_seconds"] == HUMAN_DELAY
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{web_port}/metrics")).text
    assert histogram_count(text, "leadledger_handoff_latency_seconds", action="contacted") >= 1
    assert 'leadledger_stage_transitions_total{from_stage="mql",to_stage="sal"}' in text
    assert histogram_count(text, "leadledger_processor_batch_events") >= 1
    assert histogram_count(text, "leadledger_processor_batch_duration_seconds") >= 1
    await assert_api_shows(settings, lead)


async def assert_api_shows(settings: Settings, lead: str) -> None:
    """The HTTP API, over the real read models, tells the same story."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    publisher = KafkaPublisher.from_settings(settings)
    app = create_app(settings, publisher, PostgresLeadReader(pool), load_funnel())
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            body = (await client.get(f"/v1/leads/{lead}")).json()
            missing = await client.get("/v1/leads/L-nobody")
    finally:
        await pool.close()
    assert missing.status_code == 404
    assert body["current_stage"] == "customer"
    assert [v["stage"] for v in body["stage_history"]][:2] == ["lead", "mql"]
    closed = {t["stage"]: t["cumulative_seconds"] for t in body["time_in_stage"]}
    assert {k: closed[k] for k in EXPECTED_SECONDS} == EXPECTED_SECONDS
    assert body["handoff"]["latency_seconds"] == HANDOFF_LATENCY
    assert body["handoff"]["system_delay_seconds"] == SYSTEM_DELAY
    assert body["handoff"]["human_delay_seconds"] == HUMAN_DELAY


@pytest.mark.parametrize("client", ["aiokafka", "librdkafka"])
async def test_a_full_journey_ends_with_the_right_stage_time_in_stage_and_handoff(
    fresh_topics: Settings, tmp_path: Path, client: str
) -> None:
    settings = fresh_topics
    lead = f"L-{client}"
    events = full_journey(lead, datetime.now(UTC) - timedelta(days=10))
    if client == "aiokafka":
        await publish(settings.kafka_bootstrap, settings.events_topic, events)
    else:
        publish_with_librdkafka(settings.kafka_bootstrap, settings.events_topic, events)
    with processor(settings, tmp_path) as proc:
        await wait_until(
            lambda: processed_count(settings),
            lambda n: n == len(events),
            what="11 events",
            watch=proc,
        )
        assert proc.alive, proc.log_tail()
        await assert_journey_projected(settings, lead, proc.web_port)
        lag = await wait_until(
            lambda: consumer_lag(proc.web_port), lambda v: v is not None, seconds=15,
            what="the consumer lag gauge", watch=proc,
        )  # fmt: skip
        assert lag == 0


async def consumer_lag(web_port: int) -> float | None:
    """Summed lag over the partitions the worker reports; None before the first report."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{web_port}/metrics")).text
    values = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("leadledger_processor_consumer_lag_records{")
    ]
    return sum(values) if values else None
