"""The HTTP API with the real KafkaPublisher against a real (Tansu) broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from events.catalog import EventData, LeadCreated, LeadStageChanged
from events.codec import decode, to_obj
from events.envelope import Event, make_event
from events.funnel import load_funnel
from services.api.app import create_app
from services.api.models import LeadDetail
from services.embedded.procs import free_port
from services.embedded.tansu import TansuBroker
from services.embedded.topics import ensure_topics, leadledger_topics
from services.publisher import KafkaPublisher
from services.settings import Settings
from tests.integration.helpers import consume_all

TOKEN = "it-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/cloudevents+json"}
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


class NoLeads:
    """A LeadReader that knows no lead: these tests are about the write path."""

    async def get_lead(self, lead_id: str) -> LeadDetail | None:
        return None


def event(data: EventData, id: str, subject: str, minutes: int) -> Event:
    return make_event(
        data, id=id, subject=subject, source="crm", time=T0 + timedelta(minutes=minutes)
    )


def body(events: Sequence[Event]) -> bytes:
    return orjson.dumps([to_obj(e) for e in events])


@pytest.fixture
async def publisher(fresh_topics: Settings) -> AsyncIterator[KafkaPublisher]:
    async with KafkaPublisher.from_settings(fresh_topics) as publisher:
        yield publisher


@pytest.fixture
async def client(
    fresh_topics: Settings, publisher: KafkaPublisher
) -> AsyncIterator[httpx.AsyncClient]:
    settings = fresh_topics.model_copy(update={"api_tokens": {TOKEN: "crm"}})
    app = create_app(settings, publisher, NoLeads(), load_funnel())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_accepted_events_are_on_the_topic_keyed_by_lead_with_cloudevents_headers(
    client: httpx.AsyncClient, fresh_topics: Settings
) -> None:
    events = [
        event(LeadCreated(stage="mql"), "a-1", "L-A", 0),
        event(LeadCreated(stage="lead"), "b-1", "L-B", 1),
        event(LeadStageChanged(from_stage="mql", to_stage="sal"), "a-2", "L-A", 2),
    ]

    response = await client.post("/v1/events", content=body(events), headers=AUTH)
    assert response.status_code == 202, response.text

    # 202 means the broker already has them: the very first read finds all three.
    records = await consume_all(fresh_topics.kafka_bootstrap, fresh_topics.events_topic, 3)
    assert len(records) == 3
    by_id = {decode(r.value).id: r for r in records if r.value is not None}
    for sent in events:
        record = by_id[sent.id]
        assert record.key == sent.subject.encode()
        assert decode(record.value) == sent
        headers: dict[str, Any] = dict(record.headers)
        assert headers == {"ce_type": sent.type.encode(), "ce_id": sent.id.encode(),
                           "ce_source": b"crm"}  # fmt: skip
    # Per-lead order comes from the key: both L-A events share a partition, in order.
    lead_a = [by_id["a-1"], by_id["a-2"]]
    assert lead_a[0].partition == lead_a[1].partition
    assert lead_a[0].offset < lead_a[1].offset


async def test_a_rejected_batch_puts_nothing_on_the_topic(
    client: httpx.AsyncClient, fresh_topics: Settings
) -> None:
    good = event(LeadCreated(stage="lead"), "ok-1", "L-C", 0)
    bad = event(LeadStageChanged(from_stage="lead", to_stage="customer"), "bad-1", "L-C", 1)
    marker = event(LeadCreated(stage="lead"), "marker", "L-D", 2)

    rejected = await client.post("/v1/events", content=body([good, bad]), headers=AUTH)
    accepted = await client.post("/v1/events", content=body([marker]), headers=AUTH)

    assert (rejected.status_code, accepted.status_code) == (422, 202)
    # Wait for one record and then a little longer: only the marker may ever show up.
    records = await consume_all(
        fresh_topics.kafka_bootstrap, fresh_topics.events_topic, 2, seconds=3.0
    )
    assert [decode(r.value).id for r in records if r.value is not None] == ["marker"]


async def test_a_broker_outage_gets_503_and_publishing_resumes_after_restart(
    tmp_path: Path,
) -> None:
    broker = TansuBroker(tmp_path, port=free_port())
    broker.start()
    try:
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            events_topic="api.outage",
            partitions=2,
            api_tokens={TOKEN: "crm"},
        )
        await ensure_topics(broker.bootstrap, leadledger_topics(settings))
        publisher = KafkaPublisher.from_settings(settings, request_timeout_ms=2000)
        async with publisher:
            app = create_app(settings, publisher, NoLeads(), load_funnel())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

                async def post(event_id: str) -> int:
                    created = event(LeadCreated(), event_id, "L-O", 0)
                    response = await client.post(
                        "/v1/events", content=body([created]), headers=AUTH
                    )
                    return response.status_code

                assert await post("before") == 202
                broker.stop()
                assert await post("during") == 503
                # Tansu keeps nothing across a restart: recreate the topics, then retry.
                broker.start()
                await ensure_topics(broker.bootstrap, leadledger_topics(settings))
                assert await post("after") == 202
        records = await consume_all(broker.bootstrap, settings.events_topic, 1, seconds=10.0)
        assert [decode(r.value).id for r in records if r.value is not None] == ["after"]
    finally:
        broker.stop()


async def test_a_publisher_cannot_start_without_a_broker() -> None:
    publisher = KafkaPublisher(f"127.0.0.1:{free_port()}", "nowhere")

    with pytest.raises(KafkaConnectionError):
        await publisher.start()
    with pytest.raises(RuntimeError, match="before start"):
        await publisher.publish([])
