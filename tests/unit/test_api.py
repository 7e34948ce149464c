"""The HTTP API against hand-written fakes: a recording publisher and a dict-backed reader."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from events.catalog import EventData, LeadAssigned, LeadCreated, LeadStageChanged
from events.codec import to_obj
from events.envelope import Event, make_event
from events.funnel import load_funnel
from services.api.app import create_app
from services.api.auth import source_for_token
from services.api.models import HandoffOut, LeadDetail, StageTimeOut, StageVisit
from services.settings import Settings

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CRM = {"Authorization": "Bearer tok-crm"}
JSON = {"Content-Type": "application/json"}


class FakePublisher:
    """Records every published batch; fails every call while ``failure`` is set."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.failure: Exception | None = None

    async def publish(self, events: Sequence[Event]) -> None:
        if self.failure is not None:
            raise self.failure
        self.batches.append(list(events))


class FakeLeadReader:
    """Leads from a dict; ``failure`` makes every read raise (a database outage)."""

    def __init__(self, leads: dict[str, LeadDetail] | None = None) -> None:
        self.leads = dict(leads or {})
        self.failure: Exception | None = None

    async def get_lead(self, lead_id: str) -> LeadDetail | None:
        if self.failure is not None:
            raise self.failure
        return self.leads.get(lead_id)


def fixed_clock() -> datetime:
    return NOW


SETTINGS = Settings(
    api_tokens={"tok-crm": "crm", "tok-web": "web-forms"},
    max_body_bytes=4096,
    max_batch_events=5,
    max_future_skew_seconds=300.0,
)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def reader() -> FakeLeadReader:
    return FakeLeadReader({"L-1": lead_detail("L-1")})


@pytest.fixture
def app(publisher: FakePublisher, reader: FakeLeadReader) -> FastAPI:
    return create_app(SETTINGS, publisher, reader, load_funnel(), clock=fixed_clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


def event(
    data: EventData | None = None,
    *,
    id: str = "e-1",
    subject: str = "L-1",
    source: str = "crm",
    time: datetime = NOW - timedelta(minutes=1),
) -> dict[str, Any]:
    """One event as the JSON object a client sends."""
    payload = data if data is not None else LeadStageChanged(from_stage="mql", to_stage="sal")
    return to_obj(make_event(payload, id=id, subject=subject, source=source, time=time))


async def post(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        "/v1/events", content=orjson.dumps(body), headers={**JSON, **CRM, **(headers or {})}
    )


def rejected_count(reason: str) -> float:
    labels = {"reason": reason, "component": "api"}
    return REGISTRY.get_sample_value("leadledger_events_rejected_total", labels) or 0.0


def lead_detail(lead_id: str) -> LeadDetail:
    t0 = datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
    t1 = t0 + timedelta(hours=2)
    return LeadDetail(
        lead_id=lead_id,
        current_stage="sal",
        highest_stage="sal",
        owner_id="rep-7",
        team="sales",
        created_at=t0,
        entered_current_at=t1,
        last_event_at=t1,
        event_count=3,
        stage_history=[
            StageVisit(
                stage="mql",
                team="marketing",
                entered_at=t0,
                exited_at=t1,
                seconds=7200.0,
                from_stage=None,
                reason=None,
                entered_via="lead.created",
            ),
            StageVisit(
                stage="sal",
                team="sales",
                entered_at=t1,
                exited_at=None,
                seconds=None,
                from_stage="mql",
                reason=None,
                entered_via="lead.stage_changed",
            ),
        ],
        time_in_stage=[
            StageTimeOut(stage="mql", visits=1, cumulative_seconds=7200.0, latest_seconds=7200.0)
        ],
        handoff=HandoffOut(
            started_at=t0,
            assigned_at=t0 + timedelta(minutes=30),
            action="accepted",
            action_at=t1,
            latency_seconds=7200.0,
            system_delay_seconds=1800.0,
            human_delay_seconds=5400.0,
        ),
        handoffs=[],
    )


# --- publishing --------------------------------------------------------------------------


async def test_a_single_valid_event_is_published_and_answered_202(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await post(client, event(id="e-42"))

    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "ids": ["e-42"]}
    assert [[e.id for e in batch] for batch in publisher.batches] == [["e-42"]]
    assert publisher.batches[0][0].data == LeadStageChanged(from_stage="mql", to_stage="sal")


async def test_a_batch_is_published_whole_and_in_request_order(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    batch = [
        event(LeadCreated(stage="mql"), id="a", subject="L-9"),
        event(LeadAssigned(owner_id="rep-1", team="sales"), id="b", subject="L-9"),
        event(id="c", subject="L-9"),
    ]

    response = await post(client, batch)

    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "ids": ["a", "b", "c"]}
    assert len(publisher.batches) == 1
    assert [e.id for e in publisher.batches[0]] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
    ],
)
async def test_json_and_cloudevents_content_types_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await post(client, [event()], headers={"Content-Type": content_type})

    assert response.status_code == 202


async def test_an_unsupported_content_type_gets_415_with_a_json_body(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await post(client, event(), headers={"Content-Type": "text/plain"})

    assert response.status_code == 415
    assert "application/cloudevents+json" in response.json()["error"]
    assert publisher.batches == []


async def test_an_old_schema_version_is_upcast_before_publishing(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    v1 = {**event(), "schemaversion": 1, "data": {"from": "mql", "to": "sal"}}
    del v1["dataschema"]

    response = await post(client, v1)

    assert response.status_code == 202
    published = publisher.batches[0][0]
    assert published.schemaversion == 2
    assert published.data == LeadStageChanged(from_stage="mql", to_stage="sal")


async def test_an_empty_batch_is_accepted_and_publishes_nothing(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await post(client, [])

    assert response.status_code == 202
    assert response.json() == {"accepted": 0, "ids": []}
    assert publisher.batches == []


async def test_an_event_within_the_future_skew_is_accepted(client: httpx.AsyncClient) -> None:
    response = await post(client, event(time=NOW + timedelta(seconds=299)))

    assert response.status_code == 202


# --- authentication ----------------------------------------------------------------------


async def test_a_request_without_a_token_gets_401_with_a_bearer_challenge(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    response = await client.post("/v1/events", content=orjson.dumps(event()), headers=JSON)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["reason"] == "missing_token"
    assert publisher.batches == []


async def test_an_unknown_token_gets_401_naming_an_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, event(), headers={"Authorization": "Bearer tok-crm-guess"})

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert response.json()["reason"] == "unknown_token"


async def test_a_non_bearer_authorization_header_gets_401(client: httpx.AsyncClient) -> None:
    response = await post(client, event(), headers={"Authorization": "Basic dG9rLWNybTo="})

    assert response.status_code == 401
    assert response.json()["reason"] == "invalid_authorization"


async def test_a_token_for_another_source_gets_403(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    batch = [event(id="ok"), event(id="theirs", source="web-forms")]

    response = await post(client, batch)

    assert response.status_code == 403
    body = response.json()
    assert body["allowed_source"] == "crm"
    assert body["forbidden"] == [{"index": 1, "id": "theirs", "source": "web-forms"}]
    assert "index 1" in body["error"]
    assert publisher.batches == []


def test_a_token_maps_only_to_its_own_source() -> None:
    tokens = {"tok-crm": "crm", "tok-web": "web-forms"}

    assert source_for_token("tok-web", tokens) == "web-forms"
    assert source_for_token("tok-cr", tokens) is None
    assert source_for_token("tok-crm ", tokens) is None
    assert source_for_token("tök-crm", tokens) is None


# --- rejections --------------------------------------------------------------------------


async def test_malformed_json_gets_400_and_is_counted(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    before = rejected_count("malformed_json")

    response = await client.post("/v1/events", content=b'{"id": ', headers={**JSON, **CRM})

    assert response.status_code == 400
    assert response.json()["rejected"][0]["reason"] == "malformed_json"
    assert rejected_count("malformed_json") == before + 1
    assert publisher.batches == []


async def test_one_bad_event_rejects_the_whole_batch_and_publishes_nothing(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    batch = [
        event(id="good"),
        event(LeadStageChanged(from_stage="lead", to_stage="customer"), id="bad"),
    ]

    response = await post(client, batch)

    assert response.status_code == 422
    body = response.json()
    assert "nothing was published" in body["error"]
    [rejected] = body["rejected"]
    assert rejected["index"] == 1
    assert rejected["id"] == "bad"
    assert rejected["reason"] == "disallowed_transition"
    assert rejected["errors"][0]["loc"] == "data.to_stage"
    assert publisher.batches == []


async def test_an_unknown_event_type_is_rejected_with_its_reason(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, {**event(), "type": "lead.teleported"})

    assert response.status_code == 422
    [rejected] = response.json()["rejected"]
    assert (rejected["index"], rejected["reason"]) == (0, "unknown_type")


async def test_a_schema_violation_names_the_offending_field(client: httpx.AsyncClient) -> None:
    response = await post(client, {**event(), "data": {"from_stage": "mql"}})

    assert response.status_code == 422
    [rejected] = response.json()["rejected"]
    assert rejected["reason"] == "schema_violation"
    assert [e["loc"] for e in rejected["errors"]] == ["data.to_stage"]


async def test_an_envelope_without_a_subject_is_rejected_as_invalid(
    client: httpx.AsyncClient,
) -> None:
    no_subject = {k: v for k, v in event().items() if k != "subject"}

    response = await post(client, no_subject)

    [rejected] = response.json()["rejected"]
    assert rejected["reason"] == "invalid_envelope"
    assert rejected["errors"][0]["loc"] == "subject"


async def test_duplicate_ids_in_one_batch_get_422_duplicate(client: httpx.AsyncClient) -> None:
    before = rejected_count("duplicate")

    response = await post(client, [event(id="x"), event(id="y"), event(id="x")])

    assert response.status_code == 422
    [rejected] = response.json()["rejected"]
    assert (rejected["index"], rejected["reason"]) == (2, "duplicate")
    assert "index 0" in rejected["detail"]
    assert rejected_count("duplicate") == before + 1


async def test_an_event_too_far_in_the_future_is_rejected(client: httpx.AsyncClient) -> None:
    response = await post(client, event(time=NOW + timedelta(seconds=301)))

    assert response.status_code == 422
    [rejected] = response.json()["rejected"]
    assert rejected["reason"] == "future_event"
    assert rejected["errors"][0]["loc"] == "time"


async def test_every_rejected_event_is_counted_by_reason(client: httpx.AsyncClient) -> None:
    bad_stage = event(LeadStageChanged(from_stage="mql", to_stage="limbo"), id="s")
    batch = [bad_stage, {**event(id="t"), "type": "nope"}, {**event(id="u"), "type": "nope"}]
    before = rejected_count("unknown_stage"), rejected_count("unknown_type")

    response = await post(client, batch)

    assert response.status_code == 422
    after = rejected_count("unknown_stage"), rejected_count("unknown_type")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)


async def test_a_body_declaring_more_than_the_limit_gets_413(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    before = rejected_count("oversized")
    big = orjson.dumps([event(id=f"e-{i}") for i in range(40)])
    assert len(big) > SETTINGS.max_body_bytes

    response = await client.post("/v1/events", content=big, headers={**JSON, **CRM})

    assert response.status_code == 413
    assert response.json()["rejected"][0]["reason"] == "oversized"
    assert rejected_count("oversized") == before + 1
    assert publisher.batches == []


async def test_a_chunked_body_cannot_bypass_the_size_limit(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        for i in range(40):
            yield orjson.dumps(event(id=f"e-{i}")) + b","
        yield b"{}]"

    response = await client.post("/v1/events", content=chunks(), headers={**JSON, **CRM})

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["rejected"][0]["reason"] == "oversized"
    assert publisher.batches == []


async def test_a_batch_with_more_events_than_allowed_gets_413_and_counts_each_event(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    before = rejected_count("oversized")

    response = await post(client, [event(id=f"e-{i}") for i in range(6)])

    assert response.status_code == 413
    assert "limit is 5" in response.json()["error"]
    assert rejected_count("oversized") == before + 6
    assert publisher.batches == []


async def test_a_broker_failure_gets_503_so_the_client_retries(
    client: httpx.AsyncClient, publisher: FakePublisher
) -> None:
    publisher.failure = ConnectionError("broker down")

    response = await post(client, event())

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Retry" in response.json()["error"]


# --- reading -----------------------------------------------------------------------------


async def test_a_known_lead_is_returned_with_rfc3339_times_and_no_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/leads/L-1")

    assert response.status_code == 200
    body = response.json()
    assert body["current_stage"] == "sal"
    assert body["created_at"] == "2024-04-01T09:00:00Z"
    assert body["stage_history"][1]["exited_at"] is None
    assert body["handoff"]["human_delay_seconds"] == 5400.0
    assert LeadDetail.model_validate(body) == lead_detail("L-1")


async def test_an_unknown_lead_gets_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/leads/L-404")

    assert response.status_code == 404
    assert response.json() == {"error": "lead not found", "lead_id": "L-404"}


async def test_a_too_long_lead_id_gets_422_in_the_common_error_shape(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/leads/" + "x" * 129)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "the request is not valid"
    assert body["rejected"][0]["errors"][0]["loc"] == "path.lead_id"


async def test_a_failing_reader_gets_a_json_500(app: FastAPI, reader: FakeLeadReader) -> None:
    reader.failure = RuntimeError("database down")
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/v1/leads/L-1")

    assert response.status_code == 500
    assert response.json() == {"error": "internal server error", "rejected": []}


# --- operations and errors ---------------------------------------------------------------


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_metrics_label_requests_by_route_template_not_raw_path(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/v1/leads/L-metrics-probe")

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'route="/v1/leads/{lead_id}"' in text
    assert "L-metrics-probe" not in text
    assert "leadledger_http_request_duration_seconds_bucket" in text


async def test_unknown_paths_and_methods_get_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/nothing-here")
    wrong_method = await client.delete("/v1/events")

    assert (missing.status_code, missing.json()["error"]) == (404, "Not Found")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "Method Not Allowed"
    labels = {"route": "<unmatched>", "method": "GET", "status": "404"}
    assert REGISTRY.get_sample_value("leadledger_http_requests_total", labels)


# --- OpenAPI -----------------------------------------------------------------------------


async def test_openapi_lists_every_response_of_the_ingest_endpoint(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    assert spec["info"]["title"] == "leadledger"
    post_events = spec["paths"]["/v1/events"]["post"]
    assert {"202", "400", "401", "403", "413", "422"} <= set(post_events["responses"])
    refs = {code: r["content"]["application/json"]["schema"]["$ref"] for code, r in
            post_events["responses"].items()}  # fmt: skip
    assert refs["202"].endswith("/Accepted")
    assert refs["403"].endswith("/ForbiddenBody")
    assert refs["422"].endswith("/ErrorBody")
    assert post_events["security"] == [{"bearerAuth": []}]


async def test_openapi_describes_the_body_as_one_event_or_a_batch(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    body = spec["paths"]["/v1/events"]["post"]["requestBody"]
    one_of = body["content"]["application/json"]["schema"]["oneOf"]
    assert one_of[0] == {"$ref": "#/components/schemas/CloudEvent"}
    assert one_of[1]["type"] == "array"
    assert one_of[1]["maxItems"] == SETTINGS.max_batch_events
    assert "leadledger schema export" in body["description"]
    assert set(body["content"]) == {
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
    }
    envelope = spec["components"]["schemas"]["CloudEvent"]
    assert {"id", "source", "type", "subject", "time", "data"} <= set(envelope["required"])


async def test_openapi_describes_the_lead_endpoint_with_lead_detail(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    responses = spec["paths"]["/v1/leads/{lead_id}"]["get"]["responses"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LeadDetail"
    }
    assert "404" in responses
    lead = spec["components"]["schemas"]["LeadDetail"]
    assert {"stage_history", "time_in_stage", "handoff", "handoffs"} <= set(lead["properties"])


async def test_the_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()
