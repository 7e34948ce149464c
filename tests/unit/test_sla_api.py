"""The SLA endpoints and the ``leadledger sla`` rendering, against a hand-written reader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from typer.testing import CliRunner

from events.funnel import load_funnel
from services.api.app import create_app
from services.api.params import WHEN
from services.api.sla_models import (
    OpenStatus,
    SlaCompliance,
    SlaOpenPage,
    SlaSummary,
    SlaTimerOut,
    VolumeMonth,
)
from services.cli import app as cli_app
from services.cli_format import duration
from services.sla_cli import board_table, report_tables

from .test_api import NOW, SETTINGS, FakeLeadReader, FakePublisher, fixed_clock


def timer(lead: str, deadline: datetime, status: OpenStatus = "ok") -> SlaTimerOut:
    return SlaTimerOut(
        lead_id=lead, policy="mql_first_touch", cycle_id=f"{lead}-e0", owner_id="rep-1",
        team="sdr-emea", status=status, started_at=deadline - timedelta(hours=1),
        warn_at=deadline - timedelta(minutes=45), deadline=deadline, next_escalation_at=None,
        delay_side="human", time_left_seconds=(deadline - NOW).total_seconds(),
    )  # fmt: skip


SUMMARY = SlaSummary(
    start=NOW - timedelta(days=30),
    end=NOW,
    policies=[
        SlaCompliance(
            policy="mql_first_touch",
            team="all",
            started=10,
            met=6,
            breached=2,
            cancelled=1,
            running=1,
            met_percent=75.0,
            breached_percent=25.0,
            p50_seconds=900.0,
            p90_seconds=5400.0,
        )
    ],
    volume=[
        VolumeMonth(
            month="2024-04",
            team="sdr-emea",
            mqls=30,
            active_reps=4,
            per_rep=10,
            target=40,
            met=False,
        )
    ],
)


class FakeSlaReader:
    """Timers from a list (filtered like the real one); records every call."""

    def __init__(self, timers: list[SlaTimerOut]) -> None:
        self.timers = timers
        self.calls: list[tuple[object, ...]] = []

    async def open_timers(
        self,
        now: datetime,
        *,
        policy: str | None = None,
        owner: str | None = None,
        team: str | None = None,
        status: OpenStatus | None = None,
        limit: int = 100,
    ) -> SlaOpenPage:
        self.calls.append(("open", now, policy, owner, team, status, limit))
        rows = [t for t in self.timers if status in (None, t.status)]
        rows.sort(key=lambda t: t.deadline)
        return SlaOpenPage(as_of=now, count=len(rows[:limit]), timers=rows[:limit])

    async def summary(self, start: datetime, end: datetime) -> SlaSummary:
        self.calls.append(("summary", start, end))
        return SUMMARY.model_copy(update={"start": start, "end": end})


@pytest.fixture
def sla_reader() -> FakeSlaReader:
    return FakeSlaReader(
        [timer("L-2", NOW + timedelta(hours=2)), timer("L-1", NOW - timedelta(hours=3), "breached")]
    )


@pytest.fixture
async def client(sla_reader: FakeSlaReader) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(), clock=fixed_clock,
        sla_reader=sla_reader,
    )  # fmt: skip
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        yield client


async def test_open_timers_come_most_urgent_first_with_wall_clock_time_left(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/sla/open")
    assert response.status_code == 200
    body = response.json()
    assert [t["lead_id"] for t in body["timers"]] == ["L-1", "L-2"]
    assert body["timers"][0]["time_left_seconds"] == -3 * 3600
    assert body["as_of"] == "2024-05-01T12:00:00Z"


async def test_open_timers_pass_every_filter_to_the_reader(
    client: httpx.AsyncClient, sla_reader: FakeSlaReader
) -> None:
    query = "policy=mql_first_touch&owner=rep-1&team=sdr-emea&status=breached&limit=5"
    response = await client.get(f"/v1/sla/open?{query}")
    assert [t["lead_id"] for t in response.json()["timers"]] == ["L-1"]
    assert sla_reader.calls == [
        ("open", NOW, "mql_first_touch", "rep-1", "sdr-emea", "breached", 5)
    ]


async def test_an_unknown_status_is_a_422_with_a_json_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/sla/open?status=late")
    assert response.status_code == 422
    assert response.json()["rejected"][0]["errors"][0]["loc"] == "query.status"


async def test_the_summary_defaults_to_the_current_month(
    client: httpx.AsyncClient, sla_reader: FakeSlaReader
) -> None:
    response = await client.get("/v1/sla/summary")
    assert response.status_code == 200
    assert sla_reader.calls == [("summary", datetime(2024, 5, 1, tzinfo=UTC), NOW)]
    body = response.json()
    assert body["policies"][0]["met_percent"] == 75.0
    assert body["volume"][0] == {
        "month": "2024-04", "team": "sdr-emea", "mqls": 30, "active_reps": 4, "per_rep": 10,
        "target": 40, "met": False,
    }  # fmt: skip


async def test_summary_dates_without_a_zone_are_utc_and_must_be_in_order(
    client: httpx.AsyncClient, sla_reader: FakeSlaReader
) -> None:
    response = await client.get("/v1/sla/summary?from=2024-04-01T00:00:00&to=2024-04-15T00:00:00")
    assert response.status_code == 200
    assert sla_reader.calls[-1] == (
        "summary", datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 15, tzinfo=UTC),
    )  # fmt: skip
    response = await client.get("/v1/sla/summary?from=2024-04-15T00:00:00Z&to=2024-04-01T00:00Z")
    assert response.status_code == 422


async def test_summary_reads_its_period_as_every_report_does(
    client: httpx.AsyncClient, sla_reader: FakeSlaReader
) -> None:
    response = await client.get("/v1/sla/summary?from=2024-04-01&to=2024-04-15")
    assert response.status_code == 200
    assert sla_reader.calls[-1] == (
        "summary", datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 16, tzinfo=UTC),
    ), "a date as 'to' is the whole day"  # fmt: skip


async def test_summary_refuses_a_number_where_a_time_is_due(
    client: httpx.AsyncClient, sla_reader: FakeSlaReader
) -> None:
    calls = len(sla_reader.calls)
    response = await client.get("/v1/sla/summary?from=0.5")
    assert response.status_code == 422
    assert response.json()["error"] == (
        "'0.5' is neither a date (2026-09-30) nor a time (2026-09-30T12:00:00Z)"
    )
    assert len(sla_reader.calls) == calls, "nothing was read"


async def test_every_report_describes_its_time_parameters_alike(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    times = [
        (path, p)
        for path, item in spec["paths"].items()
        for p in item.get("get", {}).get("parameters", [])
        if p["name"] in {"from", "to", "as_of"}
    ]
    assert {path for path, _ in times} >= {
        "/v1/sla/summary", "/v1/attribution", "/v1/funnel", "/v1/plan", "/v1/feedback",
    }  # fmt: skip
    for path, p in times:
        assert p["description"].endswith(WHEN), (path, p["name"])
        assert p["schema"]["examples"] == ["2026-09-30", "2026-09-30T12:00:00Z"], path


async def test_without_an_sla_reader_the_endpoints_answer_503() -> None:
    app = create_app(SETTINGS, FakePublisher(), FakeLeadReader(), load_funnel(), fixed_clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/v1/sla/open")).status_code == 503
        assert (await client.get("/v1/sla/summary")).status_code == 503


async def test_openapi_describes_both_endpoints_and_their_bodies(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    open_op = spec["paths"]["/v1/sla/open"]["get"]
    assert {p["name"] for p in open_op["parameters"]} == {
        "policy", "owner", "team", "status", "limit",
    }  # fmt: skip
    assert open_op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SlaOpenPage"
    }
    summary_op = spec["paths"]["/v1/sla/summary"]["get"]
    assert {p["name"] for p in summary_op["parameters"]} == {"from", "to"}
    assert "SlaSummary" in spec["components"]["schemas"]
    assert "VolumeMonth" in spec["components"]["schemas"]


def render(table: object) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_the_board_prints_overdue_timers_first_with_how_late_they_are() -> None:
    overdue = timer("L-1", NOW - timedelta(hours=3), "breached")
    page = SlaOpenPage(as_of=NOW, count=2, timers=[overdue, timer("L-2", NOW + timedelta(hours=2))])
    text = render(board_table(page))
    assert text.index("L-1") < text.index("L-2")
    assert "3h 0m overdue" in text
    assert "2h 0m left" in text


def test_the_report_prints_compliance_and_the_volume_target() -> None:
    compliance, volume = (render(t) for t in report_tables(SUMMARY))
    assert "75.0" in compliance
    assert "15m" in compliance
    assert "1h 30m" in compliance
    assert "sdr-emea" in volume
    assert "no" in volume


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (30, "30s"), (45 * 60, "45m"), (7800, "2h 10m"), (-90000, "-1d 1h")],
)
def test_durations_read_like_a_person_would_say_them(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_sla_check_validates_the_packaged_policies() -> None:
    result = CliRunner().invoke(cli_app, ["sla", "check"])
    assert result.exit_code == 0, result.output
    assert "mql_first_touch" in result.output
    assert "volume" in result.output
