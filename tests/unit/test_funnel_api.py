"""GET /v1/funnel over an in-memory reader that runs the same pure report code as the
Postgres one; the tables and CSV printed by ``leadledger funnel``; its usage errors."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from rich.console import Console
from typer.testing import CliRunner

from events.funnel import load_funnel
from projections.funnel_lead import lead_flow
from projections.funnel_report import FunnelBuilder, FunnelQuery
from services import funnel_render
from services.api import funnel_flow as funnel_api
from services.api.app import create_app
from services.api.funnel_models import FunnelReport, report_of
from services.cli import app as cli_app

from .factories import FUNNEL, at
from .test_api import SETTINGS, FakeLeadReader, FakePublisher
from .test_funnel_flow import HISTORY

NOW = at(days=30)


class InMemoryFunnelReader:
    """``FunnelReader`` over the hand-built histories; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[object, ...]] = []

    async def report(self, query: FunnelQuery) -> FunnelReport:
        q = query
        self.asked.append((q.start, q.end, q.as_of, q.by, q.previous, q.cohorts))
        builder = FunnelBuilder(FUNNEL, query)
        for lead, events in HISTORY.items():
            builder.add(lead_flow(lead, events, FUNNEL, q.as_of))
        return report_of(builder.result(), q.by)


def build_app(reader: InMemoryFunnelReader | None) -> FastAPI:
    app = create_app(SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(),
                     clock=lambda: NOW)  # fmt: skip
    if reader is not None:
        funnel_api.install(app, reader)
    return app


@pytest.fixture
def reader() -> InMemoryFunnelReader:
    return InMemoryFunnelReader()


@pytest.fixture
async def client(reader: InMemoryFunnelReader) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(reader))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


PERIOD = "from=2025-01-16T09:00:00Z&to=2025-01-26T09:00:00Z&as_of=2025-02-05T09:00:00Z"


async def test_the_report_carries_every_stage_the_previous_period_breakdowns_and_cohorts(
    client: httpx.AsyncClient, reader: InMemoryFunnelReader
) -> None:
    response = await client.get(f"/v1/funnel?{PERIOD}&compare=previous&by=campaign,team"
                                "&cohorts=true")  # fmt: skip
    assert response.status_code == 200, response.text
    body = response.json()
    # Days 10, 20 and 30 of the factories' clock.
    assert reader.asked == [(at(days=10), at(days=20), at(days=30), ("campaign", "team"),
                             True, True)]  # fmt: skip
    mql = next(s for s in body["period"]["stages"] if s["stage"] == "mql")
    assert (mql["balance_start"], mql["inflow"], mql["outflow"], mql["balance_end"]) == (
        1, 2, 2, 1,
    )  # fmt: skip
    assert (mql["entrants"], mql["converted"], mql["conversion"]) == (2, 0, "0.0000")
    assert (mql["median_seconds"], mql["p90_seconds"]) == (86400.0, 7 * 86400.0)
    assert body["previous"]["start"] == "2025-01-06T09:00:00Z"
    lead_change = next(c for c in body["changes"] if c["stage"] == "lead")
    assert lead_change["inflow"] == 1 - 2
    assert body["by"] == ["campaign", "team"]
    assert {(b["dimension"], b["key"]) for b in body["breakdowns"]} >= {
        ("campaign", "cmp-x"), ("team", "sdr-emea"),
    }  # fmt: skip
    assert body["cohorts"] == [{"month": "2025-01", "created": 5, "current": {
        "mql": 2, "opportunity": 1, "nurture": 1, "disqualified": 1}}]  # fmt: skip
    assert any("nearest-rank" in d for d in body["definitions"])


async def test_defaults_are_the_current_quarter_as_of_now(
    client: httpx.AsyncClient, reader: InMemoryFunnelReader
) -> None:
    response = await client.get("/v1/funnel")
    assert response.status_code == 200, response.text
    start, end, as_of, by, previous, cohorts = reader.asked[0]
    assert (f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}", as_of) == ("2025-01-01", "2025-04-01", NOW)
    assert (by, previous, cohorts) == ((), False, False)
    assert response.json()["previous"] is None


@pytest.mark.parametrize(
    "query",
    ["by=region", "from=2025-02-01&to=2025-01-01", "from=yesterday", "compare=last_year"],
)
async def test_bad_parameters_get_a_422_with_a_reason(
    client: httpx.AsyncClient, query: str
) -> None:
    response = await client.get(f"/v1/funnel?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]


async def test_an_api_without_a_funnel_reader_answers_503_and_documents_the_endpoint() -> None:
    transport = httpx.ASGITransport(app=build_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/v1/funnel")
        spec = (await client.get("/openapi.json")).json()
    assert response.status_code == 503
    assert response.json()["error"] == "the funnel reader is not configured"
    operation = spec["paths"]["/v1/funnel"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "from", "to", "as_of", "by", "compare", "cohorts",
    }  # fmt: skip
    assert "FunnelReport" in spec["components"]["schemas"]


async def test_tables_and_csv_show_the_report_figures(reader: InMemoryFunnelReader) -> None:
    query = FunnelQuery(at(days=10), at(days=20), NOW, ("campaign",), previous=True, cohorts=True)
    report = await reader.report(query)
    console = Console(width=200, record=True)
    for table in funnel_render.tables(report):
        console.print(table)
    text = console.export_text()
    assert "Funnel flow" in text
    assert "Previous period" in text
    assert "Change against the previous period" in text
    assert "cmp-x" in text
    assert "2025-01" in text
    assert "100.00%" in text, "lead -> mql: B converted"
    rows = list(csv.DictReader(io.StringIO(funnel_render.report_csv(report))))
    sql = next(r for r in rows if r["section"] == "period" and r["stage"] == "sql")
    assert (sql["inflow"], sql["balance_end"], sql["converted"], sql["conversion"]) == (
        "1", "1", "1", "1.0000",
    )  # fmt: skip
    assert {r["section"] for r in rows} == {"period", "previous", "breakdown", "cohort"}


@pytest.mark.parametrize(
    "args",
    [["--format", "xml"], ["--by", "region"], ["--compare", "last"],
     ["--from", "2025-02-01", "--to", "2025-01-01"]],
)  # fmt: skip
def test_the_cli_refuses_bad_options_with_exit_code_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli_app, ["funnel", *args])
    assert result.exit_code == 2, result.output


def test_funnel_check_still_validates_the_packaged_funnel() -> None:
    result = CliRunner().invoke(cli_app, ["funnel", "check"])
    assert result.exit_code == 0, result.output
    assert "opportunity" in result.output


async def test_the_funnel_chart_is_a_png(reader: InMemoryFunnelReader, tmp_path: Path) -> None:
    from services.charts import funnel_chart

    report = await reader.report(FunnelQuery(at(days=10), at(days=20), NOW, previous=True))
    out = tmp_path / "funnel.png"
    funnel_chart(report, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_an_unreachable_database_is_a_message_and_exit_code_1() -> None:
    from services.embedded.procs import free_port

    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": dsn})
    for args in (["funnel"], ["plan", "--revenue", "10", "--period", "2027-Q1"]):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 1, result.output
        assert "cannot reach PostgreSQL" in result.output
