"""GET /v1/plan and ``leadledger plan`` over a fake funnel source holding the hand-worked
example: the plan's rates are the report's counts, bad parameters are refused, a zero rate
stops the plan with a reason, and the table, CSV and chart show it."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

from events.funnel import Funnel
from projections.funnel_flow import StageFlow, stage_order
from projections.funnel_report import FunnelFlow, FunnelQuery, WonTotal
from services import plan_render
from services.api import funnel_flow as funnel_api
from services.api.app import create_app
from services.api.plan_models import PlanRequest
from services.cli import app as cli_app
from services.store.plan_report import Planner

from .factories import FUNNEL, at
from .test_api import SETTINGS, FakeLeadReader, FakePublisher
from .test_funnel_api import InMemoryFunnelReader

NOW = at(days=200)
#: stage -> (entrants, converted, inflow) in the window: the hand-worked example's rates.
OBSERVED = {"lead": (100, 20, 1200), "mql": (100, 80, 240), "sal": (100, 50, 190),
            "sql": (100, 50, 95), "opportunity": (100, 50, 48)}  # fmt: skip


def stage(name: str, entrants: int, converted: int, inflow: int) -> StageFlow:
    rank = FUNNEL.rank(name)
    nxt = FUNNEL.main_path[rank + 1] if 0 <= rank < len(FUNNEL.main_path) - 1 else None
    return StageFlow(name, FUNNEL.team_of(name).value, nxt, 0, inflow, 0, 0, entrants,
                     converted if nxt else None, 0, None, None)  # fmt: skip


class FakeFlowSource:
    """A ``FlowSource`` that answers every window with the same observed figures."""

    def __init__(self, observed: dict[str, tuple[int, int, int]], won: int = 10) -> None:
        self.funnel: Funnel = FUNNEL
        self.observed = observed
        self.won = won
        self.asked: list[tuple[datetime, datetime, datetime]] = []

    async def flow(self, query: FunnelQuery) -> FunnelFlow:
        start, end, as_of = query.start, query.end, query.as_of
        self.asked.append((start, end, as_of))
        stages = tuple(stage(s, *self.observed.get(s, (0, 0, 0))) for s in stage_order(FUNNEL))
        won = (WonTotal("EUR", self.won, Decimal(30000) * self.won),) if self.won else ()
        return FunnelFlow(start, end, as_of, 500, stages, won, None, None, None, (), None, 6)


@pytest.fixture
def source() -> FakeFlowSource:
    return FakeFlowSource(OBSERVED)


def client_for(source: FakeFlowSource | None) -> httpx.AsyncClient:
    app = create_app(SETTINGS, FakePublisher(), FakeLeadReader(), FUNNEL, clock=lambda: NOW)
    if source is not None:
        funnel_api.install(app, InMemoryFunnelReader(), Planner(source, ("mql", 40)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


@pytest.fixture
async def client(source: FakeFlowSource) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(source) as c:
        yield c


async def test_the_plan_works_the_goal_back_with_the_observed_counts(
    client: httpx.AsyncClient, source: FakeFlowSource
) -> None:
    response = await client.get("/v1/plan?revenue=1200000&period=2027-Q1&reps=8&window=180d")
    assert response.status_code == 200, response.text
    body = response.json()
    assert source.asked == [(NOW - timedelta(days=180), NOW, NOW)]
    assert [(s["stage"], s["needed"]) for s in body["steps"]] == [
        ("customer", 40), ("opportunity", 80), ("sql", 160), ("sal", 320), ("mql", 400),
        ("lead", 2000),
    ]  # fmt: skip
    assert [(r["from_stage"], r["converted"], r["entrants"], r["rate"]) for r in body["rates"]] == [
        ("lead", 20, 100, "0.2000"), ("mql", 80, 100, "0.8000"), ("sal", 50, 100, "0.5000"),
        ("sql", 50, 100, "0.5000"), ("opportunity", 50, 100, "0.5000"),
    ]  # fmt: skip
    mql = body["steps"][4]
    assert mql["per_month"] == {"2027-01": 134, "2027-02": 133, "2027-03": 133}
    assert mql["per_rep_per_month"] == {"2027-01": 17, "2027-02": 17, "2027-03": 17}
    assert (mql["run_rate_per_month"], mql["gap_per_month"]) == ("40.6", "92.7")
    assert (body["average_deal"], body["deals_won"], body["currency"]) == ("30000.00", 10, "EUR")
    assert body["sla"]["target_per_rep_per_month"] == 40
    assert body["sla"]["plan_per_rep_per_month"] == 17
    assert body["complete"] is True
    assert body["reps_observed"] is False
    assert any("ceil" in a for a in body["assumptions"])
    assert body["warnings"] == ["the average deal size rests on 10 won deals (fewer than 30)"]


async def test_without_reps_the_plan_uses_the_reps_active_in_the_window(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/v1/plan?revenue=1200000&period=2027-03")).json()
    assert (body["reps"], body["reps_observed"], body["months"]) == (6, True, ["2027-03"])


async def test_a_zero_rate_gives_an_incomplete_plan_with_the_reason() -> None:
    source = FakeFlowSource({**OBSERVED, "sal": (40, 0, 40)})
    async with client_for(source) as client:
        body = (await client.get("/v1/plan?revenue=1200000&period=2027-Q1")).json()
    assert body["complete"] is False
    assert "no sal of the window reached sql (0 of 40)" in body["blocked"]
    assert [s["stage"] for s in body["steps"]] == ["customer", "opportunity", "sql"]


@pytest.mark.parametrize(
    "query",
    ["revenue=-5&period=2027-Q1", "revenue=abc&period=2027-Q1", "revenue=10&period=2027-Q9",
     "revenue=10&period=2027-Q1&window=3x", "revenue=10&period=2027-Q1&reps=0",
     "revenue=10&period=2027-Q1&currency=E1R", "period=2027-Q1"],
)  # fmt: skip
async def test_bad_plan_parameters_get_a_422(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get(f"/v1/plan?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]


async def test_an_api_without_a_planner_answers_503_and_documents_the_endpoint() -> None:
    async with client_for(None) as client:
        response = await client.get("/v1/plan?revenue=10&period=2027-Q1")
        spec = (await client.get("/openapi.json")).json()
    assert response.status_code == 503
    assert "PlanReport" in spec["components"]["schemas"]
    assert "revenue" in {p["name"] for p in spec["paths"]["/v1/plan"]["get"]["parameters"]}


async def test_table_csv_and_chart_show_the_plan(source: FakeFlowSource, tmp_path: Path) -> None:
    from services.charts import plan_chart

    planner = Planner(source, ("mql", 40))
    asked = PlanRequest(Decimal(1200000), "2027-Q1", NOW, reps=8)
    report = await planner.plan(asked)
    console = Console(width=200, record=True)
    console.print(plan_render.plan_table(report))
    for line in plan_render.notes(report):
        console.print(line)
    text = console.export_text()
    assert "MQLs" in text
    assert "20.00% of 100" in text
    assert "2,000" in text
    assert "SLA: the plan needs 17 MQLs per rep per month" in text
    rows = list(csv.DictReader(io.StringIO(plan_render.plan_csv(report))))
    assert len(rows) == 6 * 3
    assert rows[0] == {"stage": "customer", "month": "2027-01", "needed": "14", "per_rep": "2",
                       "rate_from_stage": "", "converted": "", "entrants": "",
                       "run_rate_per_month": "1.7", "gap_per_month": "11.6"}  # fmt: skip
    for blocked in (False, True):
        out = tmp_path / f"plan-{blocked}.png"
        shown = report.model_copy(update={"steps": [], "blocked": "no deal"}) if blocked else report
        plan_chart(shown, out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args",
    [["--revenue", "x", "--period", "2027-Q1"], ["--revenue", "10", "--period", "Q1"],
     ["--revenue", "10", "--period", "2027-Q1", "--format", "xml"],
     ["--revenue", "10", "--period", "2027-Q1", "--window", "soon"]],
)  # fmt: skip
def test_the_plan_cli_refuses_bad_options_with_exit_code_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli_app, ["plan", *args])
    assert result.exit_code == 2, result.output


async def test_the_average_deal_is_in_one_currency_and_the_deals_run_rate_counts_all(
    source: FakeFlowSource,
) -> None:
    from services.store.plan_report import plan_input

    flow = await source.flow(FunnelQuery(NOW - timedelta(days=180), NOW, NOW))
    usd = WonTotal("USD", 25, Decimal("500000.00"))
    flow = FunnelFlow(flow.start, flow.end, flow.as_of, flow.leads, flow.stages,
                      (*flow.won, usd), None, None, None, (), None, 6)  # fmt: skip
    default, _ = plan_input(flow, FUNNEL, PlanRequest(Decimal(1000), "2027-Q1", NOW), None)
    assert (default.currency, default.deals_won, default.all_deals_won) == ("USD", 25, 35)
    eur, observed = plan_input(
        flow, FUNNEL, PlanRequest(Decimal(1000), "2027-Q1", NOW, currency="EUR"), None
    )
    assert (eur.currency, eur.deals_won, eur.revenue_won) == ("EUR", 10, Decimal(300000))
    assert (eur.reps, observed) == (6, True)
