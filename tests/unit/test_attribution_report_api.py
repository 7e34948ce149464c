"""GET /v1/attribution and /v1/attribution/deals/{id} over an in-memory reader that runs the
same pure report code as the Postgres one; and the time parameters both the API and CLI use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from events.attribution_config import load_attribution
from events.envelope import Event
from events.funnel import load_funnel
from services.api.app import create_app
from services.api.attribution_models import AttributionReport, DealExplanation, Dimension
from services.api.periods import model_list, parse_time, period, quarter_of
from services.cli import app as cli_app
from services.store.attribution_report import ReportBuilder, ReportSpec, explain, resolve_models

from .factories import FUNNEL, at
from .test_api import SETTINGS, FakeLeadReader, FakePublisher
from .test_attribution_report import HISTORIES

CONFIG = load_attribution()
#: 2025-02-25 09:00 UTC: in Q1 2025, after every deal of HISTORIES closed.
NOW = at(days=50)


class InMemoryAttributionReader:
    """``AttributionReader`` over lead histories in a dict; records what it was asked."""

    def __init__(self, histories: dict[str, list[Event]]) -> None:
        self.histories = histories
        self.asked: list[tuple[object, ...]] = []

    async def report(
        self,
        models: Sequence[str],
        start: datetime,
        end: datetime,
        as_of: datetime,
        by: Sequence[Dimension] = ("campaign", "channel"),
    ) -> AttributionReport:
        self.asked.append((list(models), start, end, as_of, tuple(by)))
        spec = ReportSpec(resolve_models(CONFIG, models), start, end, as_of, tuple(by))
        builder = ReportBuilder(spec, FUNNEL)
        for lead_id in sorted(self.histories):
            builder.add_lead(lead_id, self.histories[lead_id])
        return builder.report()

    async def explain(
        self, deal_id: str, models: Sequence[str], as_of: datetime
    ) -> DealExplanation | None:
        resolved = resolve_models(CONFIG, models)
        histories = [(lead, tuple(events)) for lead, events in sorted(self.histories.items())]
        return explain(deal_id, histories, resolved, FUNNEL, as_of=as_of)


@pytest.fixture
def reader() -> InMemoryAttributionReader:
    return InMemoryAttributionReader(HISTORIES)


def build_app(reader: InMemoryAttributionReader | None) -> FastAPI:
    return create_app(
        SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(), clock=lambda: NOW,
        attribution_reader=reader,
    )  # fmt: skip


@pytest.fixture
async def client(reader: InMemoryAttributionReader) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(reader))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_the_report_defaults_to_w_this_quarter_as_of_now_by_campaign_and_channel(
    client: httpx.AsyncClient, reader: InMemoryAttributionReader
) -> None:
    response = await client.get("/v1/attribution")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"] == {"start": "2025-01-01T00:00:00Z", "end": "2025-04-01T00:00:00Z"}
    assert body["as_of"] == "2025-02-25T09:00:00Z"
    assert body["by"] == ["campaign", "channel"]
    assert [m["model"]["label"] for m in body["models"]] == ["w_shaped@v1"]
    assert body["comparison"] == []
    assert reader.asked[0][0] == ["W"]


async def test_a_date_as_to_includes_that_whole_day_and_money_is_exact_decimal_strings(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/attribution?from=2025-01-06&to=2025-02-04&by=campaign")).json()
    assert body["period"]["end"] == "2025-02-05T00:00:00Z"
    (model,) = body["models"]
    rows = {(r["key"], r["currency"]): r["revenue"] for r in model["rows"]}
    assert rows == {
        ("webinar", "EUR"): "600.00", ("ads", "EUR"): "300.00", ("retarget", "EUR"): "100.00",
        (None, "EUR"): "500.00", ("ads", "USD"): "250.00",
    }  # fmt: skip
    assert {r["dimension"] for r in model["rows"]} == {"campaign"}


async def test_compare_returns_every_model_named_with_its_version_side_by_side(
    client: httpx.AsyncClient,
) -> None:
    body = (
        await client.get("/v1/attribution?from=2025-01-06&to=2025-02-04&compare=first,last,W")
    ).json()
    assert [m["model"]["label"] for m in body["models"]] == [
        "first_touch@v1", "last_touch@v1", "w_shaped@v1",
    ]  # fmt: skip
    retarget = next(r for r in body["comparison"] if r["key"] == "retarget")
    assert retarget["revenue"] == {
        "first_touch@v1": "0.00", "last_touch@v1": "1000.00", "w_shaped@v1": "100.00",
    }  # fmt: skip


async def test_as_of_before_a_win_reports_that_deal_as_open_pipeline(
    client: httpx.AsyncClient,
) -> None:
    url = "/v1/attribution?from=2025-01-06&to=2025-02-04&as_of=2025-01-13T09:00:00Z&by=campaign"
    (model,) = (await client.get(url)).json()["models"]
    eur = model["totals"][0]
    assert (eur["won_deals"], eur["revenue"], eur["open_deals"]) == (1, "500.00", 3)
    retarget = next(r for r in model["rows"] if r["key"] == "retarget")
    assert (retarget["revenue"], retarget["pending"]) == ("0.00", "100.00")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("model=X-shaped", "no attribution model 'X-shaped'"),
        ("from=2025-13-01", "neither a date"),
        ("from=2025-03-01&to=2025-01-31", "the period is empty"),
        ("as_of=yesterday", "neither a date"),
    ],
)
async def test_bad_parameters_answer_422_with_a_json_error_that_says_why(
    client: httpx.AsyncClient, query: str, message: str
) -> None:
    response = await client.get(f"/v1/attribution?{query}")
    assert response.status_code == 422
    assert message in response.json()["error"]


async def test_an_unknown_dimension_is_a_422_like_every_invalid_parameter(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/attribution?by=region")
    assert response.status_code == 422
    assert response.json()["rejected"][0]["errors"][0]["loc"] == "query.by"


async def test_explain_shows_each_touch_with_shares_summing_to_one_and_the_exact_amount(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/attribution/deals/D1?compare=W,linear")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["deal_id"], body["lead_id"], body["status"]) == ("D1", "L1", "won")
    for explanation in body["explanations"]:
        credits = explanation["credits"]
        assert sum(Decimal(c["share"]) for c in credits) == 1
        assert sum(Decimal(c["amount"]) for c in credits) == Decimal(body["amount"])
    assert body["explanations"][0]["credits"][0]["positions"] == ["first", "lead_creation"]


async def test_explain_before_the_win_shows_the_pending_touch_and_unknown_deals_are_404(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/attribution/deals/D1?as_of=2025-01-13T09:00:00Z")).json()
    assert body["status"] == "open"
    assert body["explanations"][0]["credits"][-1]["positions"] == ["pending"]
    missing = await client.get("/v1/attribution/deals/D404")
    assert missing.status_code == 404
    assert "D404" in missing.json()["error"]


async def test_without_an_attribution_reader_the_endpoints_answer_503() -> None:
    transport = httpx.ASGITransport(app=build_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/v1/attribution")).status_code == 503
        assert (await client.get("/v1/attribution/deals/D1")).status_code == 503


async def test_openapi_describes_the_report_and_the_explanation(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    report = spec["paths"]["/v1/attribution"]["get"]
    assert {p["name"] for p in report["parameters"]} == {
        "model", "from", "to", "as_of", "by", "compare",
    }  # fmt: skip
    assert report["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AttributionReport"
    }
    assert {"422", "503"} <= set(report["responses"])
    deal = spec["paths"]["/v1/attribution/deals/{deal_id}"]["get"]
    assert {p["name"] for p in deal["parameters"]} == {"deal_id", "model", "as_of", "compare"}
    assert "404" in deal["responses"]
    schemas = spec["components"]["schemas"]
    assert {"RollupRow", "CurrencyTotal", "ComparisonRow", "CreditOut", "ModelRef"} <= set(schemas)
    assert schemas["RollupRow"]["properties"]["revenue"]["type"] == "string"


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-07-01", False, datetime(2026, 7, 1, tzinfo=UTC)),
        ("2026-09-30", True, datetime(2026, 10, 1, tzinfo=UTC)),
        ("2026-09-30T12:30:00Z", True, datetime(2026, 9, 30, 12, 30, tzinfo=UTC)),
        ("2026-09-30T12:30:00", False, datetime(2026, 9, 30, 12, 30, tzinfo=UTC)),
        ("2026-09-30T14:30:00+02:00", False, datetime(2026, 9, 30, 12, 30, tzinfo=UTC)),
    ],
)
def test_a_date_is_utc_midnight_and_as_a_period_end_it_includes_the_whole_day(
    text: str, end: bool, expected: datetime
) -> None:
    assert parse_time(text, end_of_period=end) == expected


def test_the_default_period_is_the_current_calendar_quarter() -> None:
    assert quarter_of(datetime(2026, 11, 20, 9, tzinfo=UTC)) == (
        datetime(2026, 10, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert period(None, "2026-08-31", datetime(2026, 8, 2, tzinfo=UTC)) == (
        datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 9, 1, tzinfo=UTC),
    )  # fmt: skip
    with pytest.raises(ValueError, match="the period is empty"):
        period("2026-09-30", "2026-09-29", datetime(2026, 8, 2, tzinfo=UTC))


def test_a_compare_list_tolerates_blanks() -> None:
    assert model_list(" first,last, ,linear,W ") == ["first", "last", "linear", "W"]


@pytest.mark.parametrize(
    "args",
    [["--format", "xml"], ["--by", "region"], ["--from", "someday"], ["--model", "nope"]],
)
def test_the_cli_rejects_bad_options_before_reading_anything(args: list[str]) -> None:
    # "--model nope" fails when models are resolved, before a connection is used: the
    # database URL points nowhere, so reaching it would fail differently.
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    result = runner.invoke(cli_app, ["attribution", *args])
    assert result.exit_code == 2, result.output
