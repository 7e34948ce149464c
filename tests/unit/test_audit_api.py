"""GET /v1/leads/{lead_id}/timeline against a hand-written reader, and what
``leadledger audit`` prints."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from rich.console import Console
from typer.testing import CliRunner

from events.codec import encode
from events.funnel import load_funnel
from services.api.app import create_app
from services.api.audit_models import LeadTimeline
from services.cli import app as cli_app
from services.cli_audit import timeline_table
from services.cli_format import duration

from .factories import at, moved
from .test_api import SETTINGS, FakeLeadReader, FakePublisher, fixed_clock
from .test_audit_timeline import NOW, rejected_row, sla_row, timeline


class FakeAuditReader:
    """Timelines from a dict."""

    def __init__(self, timelines: dict[str, LeadTimeline]) -> None:
        self.timelines = timelines

    async def timeline(self, lead_id: str) -> LeadTimeline | None:
        return self.timelines.get(lead_id)


def sample() -> LeadTimeline:
    bad = moved("L-audit", at(10), "mql", "customer", id="bad-1")
    return timeline(rejected=[rejected_row(encode(bad), rejected_at=NOW)], sla_rows=[sla_row()])


def build_app(reader: FakeAuditReader | None) -> FastAPI:
    return create_app(
        SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(), clock=fixed_clock,
        audit_reader=reader,
    )  # fmt: skip


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(FakeAuditReader({"L-audit": sample()})))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_the_timeline_lists_events_rejections_and_sla_facts_as_json(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/leads/L-audit/timeline")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["lead_id"] == "L-audit"
    kinds = [e["kind"] for e in body["entries"]]
    assert kinds.count("rejected") == 1
    assert kinds.count("sla") == 1
    times = [e["at"] for e in body["entries"]]
    assert times == sorted(times)
    won = next(e for e in body["entries"] if e["type"] == "deal.won")
    assert won["deal"]["amount"] == "12500.00"
    assert won["kafka"] == {"topic": "t", "partition": 1, "offset": 8}


async def test_an_unknown_lead_is_a_404_naming_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/leads/L-nobody/timeline")
    assert response.status_code == 404
    assert response.json() == {"error": "lead not found", "lead_id": "L-nobody"}


async def test_without_an_audit_reader_the_timeline_answers_503() -> None:
    transport = httpx.ASGITransport(app=build_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/v1/leads/L-audit/timeline")).status_code == 503


async def test_the_lead_endpoint_still_answers_beside_its_timeline(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/leads/L-audit")).status_code == 404  # the fake has no leads


async def test_openapi_describes_the_timeline_and_its_entries(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/v1/leads/{lead_id}/timeline"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/LeadTimeline"
    }
    assert {"404", "422", "503"} <= set(op["responses"])
    schemas = spec["components"]["schemas"]
    assert {"TimelineEntry", "StageChangeOut", "OwnerChangeOut", "RejectionOut", "SlaOut"} <= set(
        schemas
    )


def render() -> list[str]:
    console = Console(width=220, record=True)
    console.print(timeline_table(sample()))
    return console.export_text().splitlines()


def test_the_audit_table_lists_every_entry_in_order_with_time_in_stage() -> None:
    lines = render()
    assert "Lead L-audit: sal (highest sal), owner rep-2 (sdr-emea)" in lines[0]
    body = [line for line in lines if line.startswith("│")]
    types = [line.split("│")[3].strip() for line in body]
    assert types[:4] == ["lead.created", "touchpoint.recorded", "lead.stage_changed", "sla.started"]
    assert types[4] == "lead.stage_changed", "the rejected move comes after the accepted one"
    mql = next(line for line in body if "lead -> mql" in line)
    assert "(after 10m in lead)" in mql
    assert "40m" in mql.split("│")[6]
    sal = next(line for line in body if "mql -> sal" in line)
    assert "so far" in sal
    assert any("rejected (disallowed_transition)" in line for line in body)
    assert "9 events, 1 rejected" in "".join(lines)


def test_rejected_records_are_printed_in_red() -> None:
    table = timeline_table(sample())
    styles = [row.style for row in table.rows]
    assert styles.count("red") == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (30, "30s"), (600, "10m"), (7800, "2h 10m"), (90000, "1d 1h")],
)
def test_durations_read_like_a_person_would_say_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_the_audit_command_rejects_an_unknown_format() -> None:
    result = CliRunner().invoke(cli_app, ["audit", "L-1", "--format", "xml"])
    assert result.exit_code == 2, result.output
