"""Sales feedback per program: the pure aggregation, GET /v1/feedback and the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from typer.testing import CliRunner

from events.envelope import Event
from events.funnel import load_funnel
from projections.closed_loop.feedback import Dimension, FeedbackRow, feedback
from projections.closed_loop.program import program_of
from services.api.app import create_app
from services.api.feedback import report
from services.cli import app as cli_app
from services.cli_feedback import feedback_csv, feedback_table

from .factories import FUNNEL, at, created, disqualified, moved, recycled, touched
from .test_api import SETTINGS, FakeLeadReader, FakePublisher, fixed_clock

START, END = at(days=-1), at(days=30)


def bad_webinar_lead(lead: str) -> list[Event]:
    return [
        touched(lead, at(0), "cmp-webinar", "webinar"),
        created(lead, at(1), "lead"),
        moved(lead, at(5), "lead", "mql"),
        disqualified(lead, at(50), "mql", "poor_fit"),
        recycled(lead, at(60), "disqualified"),
    ]


def good_search_lead(lead: str) -> list[Event]:
    return [
        touched(lead, at(0), "cmp-search", "paid_search"),
        created(lead, at(1), "lead"),
        moved(lead, at(5), "lead", "mql"),
        moved(lead, at(9), "mql", "sal"),
    ]


HISTORIES = {
    "W1": bad_webinar_lead("W1"),
    "W2": [*bad_webinar_lead("W2")[:3], recycled("W2", at(20), "mql", "not now")],
    "S1": good_search_lead("S1"),
}


def test_the_program_is_the_lead_creation_touch_else_the_first_touch() -> None:
    history = [touched("L", at(0), "cmp-a"), touched("L", at(2), "cmp-b"), created("L", at(3))]
    assert program_of([*history, touched("L", at(9), "cmp-c")]).campaign_id == "cmp-b"
    later = [created("L", at(0)), touched("L", at(5), "cmp-late"), touched("L", at(7), "cmp-x")]
    assert program_of(later).campaign_id == "cmp-late"
    assert program_of([created("L", at(0))]).campaign_id is None


def test_rejections_disqualifications_and_rehandoffs_count_per_campaign() -> None:
    rows = {r.key: r for r in feedback(HISTORIES, FUNNEL, START, END, "campaign")}
    webinar, search = rows["cmp-webinar"], rows["cmp-search"]
    assert (webinar.handoffs, webinar.rejected, webinar.disqualified) == (2, 2, 1)
    assert (webinar.suppressing, webinar.suppressed_rehandoffs) == (1, 1)
    assert webinar.reasons == {"poor_fit": 1}
    assert webinar.leads == {"W1", "W2"}
    assert (search.handoffs, search.rejected, search.rejected_share) == (1, 0, 0.0)
    assert list(rows) == ["cmp-webinar", "cmp-search"], "worst programs first"


def test_the_period_is_half_open_on_event_time() -> None:
    rows = feedback(HISTORIES, FUNNEL, at(30), at(55), "channel")
    assert [(r.key, r.disqualified, r.rejected, r.handoffs) for r in rows] == [("webinar", 1, 1, 0)]


def test_rows_by_source_use_the_lead_source() -> None:
    assert {r.key for r in feedback(HISTORIES, FUNNEL, START, END, "source")} == {"(none)"}


class FakeFeedbackReader:
    async def feedback(self, start: datetime, end: datetime, by: Dimension) -> list[FeedbackRow]:
        return feedback(HISTORIES, FUNNEL, start, end, by)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(), fixed_clock)
    app.state.feedback_reader = FakeFeedbackReader()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


async def test_the_api_serves_the_report_with_a_total(client: httpx.AsyncClient) -> None:
    params = {"from": "2025-01-05", "to": "2025-03-01", "by": "channel"}
    response = await client.get("/v1/feedback", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["key"] for r in body["rows"]] == ["webinar", "paid_search"]
    assert body["total"]["handoffs"] == 3
    assert body["total"]["rejected_percent"] == 66.67
    assert "/v1/feedback" in (await client.get("/openapi.json")).json()["paths"]


async def test_bad_parameters_get_a_422_with_a_reason(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/feedback", params={"by": "rep"})).status_code == 422
    empty = await client.get("/v1/feedback", params={"from": "2025-02-01", "to": "2025-01-01"})
    assert empty.status_code == 422
    assert "empty" in empty.json()["error"]


async def test_without_a_reader_the_endpoint_says_so() -> None:
    app = create_app(SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(), fixed_clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        assert (await c.get("/v1/feedback")).status_code == 503


def test_the_table_and_csv_show_every_row_and_the_total() -> None:
    body = report(START, END, "campaign", feedback(HISTORIES, FUNNEL, START, END, "campaign"))
    lines = feedback_csv(body).splitlines()
    assert lines[0].startswith("campaign,handoffs,rejected")
    assert lines[1] == "cmp-webinar,2,2,100.0,1,1,1,2,poor_fit:1"
    assert lines[-1].startswith("total,3,2,66.67")
    assert feedback_table(body).row_count == 3


@pytest.mark.parametrize(
    "args", [["--by", "rep"], ["--format", "xml"], ["--from", "2025-02-01", "--to", "2025-01-01"]]
)
def test_bad_cli_input_exits_2_with_a_message(args: list[str]) -> None:
    result = CliRunner().invoke(cli_app, ["feedback", *args])
    assert result.exit_code == 2
