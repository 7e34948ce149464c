"""Attribution reports from the real archive: a constructed history goes through the real
broker and processor into PostgreSQL, then the API and the CLI must give the hand-computed
credit to the cent, explain a deal exactly, and see a deal as open before its win."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from typer.testing import CliRunner

from events.catalog import (
    DealCreated,
    DealLost,
    DealWon,
    EventData,
    LeadCreated,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.envelope import Event, make_event
from events.funnel import load_funnel
from services.api.app import create_app
from services.cli import app as cli_app
from services.settings import Settings
from services.store.attribution_reader import PostgresAttributionReader
from services.store.lead_reader import PostgresLeadReader
from tests.integration.helpers import processor, publish, scalar, wait_until
from tests.unit.test_api import FakePublisher

D = timedelta(days=1)
H = timedelta(hours=1)
#: Midnight UTC 40 days ago: every event is in the past, within the allowed lateness.
BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 40 * D
#: The report period: deals won from day 5 to the end of day 24.
FROM, TO = (BASE + 5 * D).date().isoformat(), (BASE + 24 * D).date().isoformat()


def touch(campaign: str, channel: str) -> TouchpointRecorded:
    return TouchpointRecorded(campaign_id=campaign, channel=channel, touch_type="form_fill")


def deal(kind: type[DealCreated | DealWon | DealLost], deal_id: str, amount: str,
         currency: str = "EUR") -> EventData:  # fmt: skip
    extra = {"reason": "price"} if kind is DealLost else {}
    return kind(deal_id=deal_id, amount=Decimal(amount), currency=currency, **extra)


LEAD = LeadCreated(stage="lead")
#: lead -> (offset from BASE, payload). Expected credit under W is worked out in the tests.
STORY: dict[str, list[tuple[timedelta, EventData]]] = {
    "A": [(0 * H, touch("webinar", "events")), (1 * H, LEAD), (D, touch("ads", "paid")),
          (D + H, LeadStageChanged(from_stage="lead", to_stage="mql")),
          (3 * D, deal(DealCreated, "DA", "1000.00")), (4 * D, touch("retarget", "paid")),
          (10 * D, deal(DealWon, "DA", "1000.00"))],
    "B": [(0 * H, LEAD), (2 * D, deal(DealCreated, "DB", "500.00")),
          (6 * D, deal(DealWon, "DB", "500.00"))],
    "C": [(D, touch("webinar", "events")), (D + H, LEAD),
          (8 * D, deal(DealCreated, "DC", "300.00"))],
    "D": [(2 * D, LEAD), (2 * D, touch("ads", "paid")),
          (3 * D, deal(DealCreated, "DD", "250.00", "USD")),
          (7 * D, deal(DealWon, "DD", "250.00", "USD"))],
    "E": [(0 * H, touch("webinar", "events")), (H, LEAD),
          (D, deal(DealCreated, "DE", "700.00")), (2 * D, deal(DealWon, "DE", "700.00"))],
    "F": [(3 * D, touch("ads", "paid")), (3 * D + H, LEAD),
          (4 * D, deal(DealCreated, "DF", "400.00")), (9 * D, deal(DealLost, "DF", "400.00"))],
    "G": [(20 * D, touch("webinar", "events")), (20 * D + H, LEAD),
          (22 * D, deal(DealCreated, "DG", "900.00")), (27 * D, deal(DealWon, "DG", "900.00"))],
}  # fmt: skip


def events() -> list[Event]:
    """The story in event-time order (so nothing is too late), plus one disallowed move."""
    out = [
        make_event(data, id=f"attr-{lead}-{i}", subject=f"attr-{lead}", source="crm", time=BASE + t)
        for lead, steps in STORY.items()
        for i, (t, data) in enumerate(steps)
    ]
    bad = LeadStageChanged(from_stage="mql", to_stage="customer")
    out.append(make_event(bad, id="attr-A-bad", subject="attr-A", source="crm", time=BASE + 2 * D))
    return sorted(out, key=lambda e: (e.time, e.id))


@pytest.fixture
async def folded(fresh_topics: Settings, tmp_path: Path) -> Settings:
    """The story published and folded by a real processor; the processor is stopped after."""
    s = fresh_topics
    history = events()
    await publish(s.kafka_bootstrap, s.events_topic, history)
    with processor(s, tmp_path) as proc:
        await wait_until(
            lambda: scalar(s.database_url, "SELECT count(*) FROM event_archive"),
            lambda n: n == len(history) - 1, seconds=60, what="the archive", watch=proc,
        )  # fmt: skip
        await wait_until(
            lambda: scalar(s.database_url, "SELECT count(*) FROM rejected_event"),
            lambda n: n == 1, seconds=30, what="the rejected move", watch=proc,
        )  # fmt: skip
    return s


async def get(settings: Settings, url: str, **reader_options: Any) -> httpx.Response:
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        funnel = load_funnel()
        app = create_app(
            settings, FakePublisher(), PostgresLeadReader(pool), funnel,
            attribution_reader=PostgresAttributionReader(pool, funnel, **reader_options),
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(url)
    finally:
        await pool.close()


def revenue(model: dict[str, Any], currency: str = "EUR") -> dict[str | None, str]:
    return {
        r["key"]: r["revenue"]
        for r in model["rows"]
        if r["dimension"] == "campaign" and r["currency"] == currency
    }


async def cli(settings: Settings, *args: str) -> str:
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": settings.database_url})
    result = await asyncio.to_thread(runner.invoke, cli_app, ["attribution", *args])
    assert result.exit_code == 0, result.output
    return result.output


async def test_reports_from_the_archive_match_hand_computed_credit_to_the_cent(
    folded: Settings,
) -> None:
    s = folded
    compare = f"/v1/attribution?from={FROM}&to={TO}&compare=first,last,linear,W&by=campaign"
    response = await get(s, compare)
    assert response.status_code == 200, response.text
    body = response.json()
    first, last, linear, w = body["models"]
    assert [m["model"]["label"] for m in body["models"]] == [
        "first_touch@v1", "last_touch@v1", "linear@v1", "w_shaped@v1",
    ]  # fmt: skip
    # Won in the period: DA (EUR 1,000.00 over webinar, ads, retarget) and DB (no touch, EUR
    # 500.00); DD in USD. DE was won before it, DG after it; DF was lost; DC is still open.
    assert revenue(w) == {"webinar": "600.00", "ads": "300.00", "retarget": "100.00",
                          None: "500.00"}  # fmt: skip
    assert revenue(first) == {"webinar": "1000.00", None: "500.00"}
    # webinar's row is there under every model: it holds DC's pipeline.
    assert revenue(last) == {"retarget": "1000.00", "webinar": "0.00", None: "500.00"}
    assert revenue(linear) == {"webinar": "333.34", "ads": "333.33", "retarget": "333.33",
                               None: "500.00"}  # fmt: skip
    assert revenue(w, "USD") == {"ads": "250.00"}
    eur = w["totals"][0]
    assert (eur["won_deals"], eur["revenue"], eur["unattributed"], eur["lost_deals"]) == (
        2, "1500.00", "500.00", 1,
    )  # fmt: skip
    assert (eur["open_deals"], eur["pipeline"], eur["pending"]) == (1, "300.00", "300.00")

    # A one-row cursor page gives the same answer as the default: streaming is invisible.
    paged = await get(s, compare, prefetch=1)
    assert paged.json()["models"] == body["models"]

    # The CLI reads through the same reader: its JSON is the API's body.
    as_of = body["as_of"]
    args = ["--from", FROM, "--to", TO, "--compare", "first,last,linear,W", "--by", "campaign"]
    out = await cli(s, *args, "--as-of", as_of, "--format", "json")
    assert orjson.loads(out)["models"] == body["models"]
    table = await cli(s, *args, "--as-of", as_of)
    assert "w_shaped@v1" in table
    assert "(unattributed)" in table
    assert "1,500.00" in table


async def test_explain_and_as_of_show_each_touch_and_the_deal_open_before_its_win(
    folded: Settings,
) -> None:
    s = folded
    explained = (await get(s, "/v1/attribution/deals/DA?compare=W,linear,time_decay")).json()
    assert (explained["lead_id"], explained["status"], explained["amount"]) == (
        "attr-A", "won", "1000.00",
    )  # fmt: skip
    for model in explained["explanations"]:
        assert sum(Decimal(c["share"]) for c in model["credits"]) == 1
        assert sum(Decimal(c["amount"]) for c in model["credits"]) == Decimal("1000.00")
    w = explained["explanations"][0]
    assert [(c["campaign_id"], c["positions"], c["amount"]) for c in w["credits"]] == [
        ("webinar", ["first", "lead_creation"], "600.00"),
        ("ads", ["opportunity_creation"], "300.00"),
        ("retarget", ["closed_won"], "100.00"),
    ]

    before_win = (BASE + 8 * D).isoformat()
    url = f"/v1/attribution?from={FROM}&to={TO}&as_of={before_win}&by=campaign"
    (w_then,) = (await get(s, url.replace("+00:00", "Z"))).json()["models"]
    eur = w_then["totals"][0]
    # On day 8, DA (won day 10) is open; DF (lost day 9) too; DB (won day 6) is revenue.
    assert (eur["won_deals"], eur["revenue"], eur["open_deals"]) == (1, "500.00", 3)
    retarget = next(r for r in w_then["rows"] if r["key"] == "retarget")
    assert (retarget["revenue"], retarget["pipeline"], retarget["pending"]) == (
        "0.00", "100.00", "100.00",
    )  # fmt: skip

    out = await cli(s, "--explain", "DA", "--as-of", before_win, "--format", "csv")
    lines = list(csv.DictReader(io.StringIO(out)))
    assert [x["positions"] for x in lines] == ["first|lead_creation", "opportunity_creation",
                                               "pending"]  # fmt: skip
    assert {x["status"] for x in lines} == {"open"}
    assert sum(Decimal(x["amount"]) for x in lines) == Decimal("1000.00")
    table = await cli(s, "--explain", "DA")
    assert "closed_won" in table
    assert "Deal DA of lead attr-A: won, EUR 1,000.00 (w_shaped@v1)" in table
    missing = await get(s, "/v1/attribution/deals/DG?as_of=" + FROM)
    assert missing.status_code == 404, "DG did not exist yet"
