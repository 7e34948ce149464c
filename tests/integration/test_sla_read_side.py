"""The SLA read side on real PostgreSQL after a real processor run: API, CLI and gauges."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY
from typer.testing import CliRunner

from events.funnel import load_funnel
from events.sla_config import load_sla
from services.api.app import create_app
from services.cli import app as cli_app
from services.settings import Settings
from services.store.lead_reader import PostgresLeadReader
from services.store.sla_reader import PostgresSlaReader, refresh_sla_gauges
from tests.integration.helpers import processor, scalar, wait_until
from tests.integration.sla_history import build
from tests.integration.test_sla_engine import log_records, publish_in_chunks
from tests.unit.test_api import FakePublisher

N_LEADS = 60  # six of each scenario


async def test_the_board_the_summary_the_cli_and_the_gauges_read_the_same_timers(
    fresh_topics: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = datetime.now(UTC).date()
    history = build(N_LEADS, today - timedelta(days=150), today - timedelta(days=60))
    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text(history.sla_yaml())
    s = fresh_topics.model_copy(update={"sla_file": sla_file})
    items = log_records(s, history, [datetime.now(UTC) - timedelta(minutes=1)])
    await publish_in_chunks(s, items, 1, 0.0, asyncio.Event())
    applied = "SELECT sum(kafka_offset + 1) FROM projection_checkpoint"
    with processor(s, tmp_path, tick_interval_seconds=0.0) as proc:
        await wait_until(
            lambda: scalar(s.database_url, applied),
            lambda n: n == len(items), seconds=120, what="the whole log", watch=proc,
        )  # fmt: skip

    config = load_sla(load_funnel(), sla_file)
    pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=4)
    try:
        reader = PostgresSlaReader(pool, config)
        app = create_app(
            s, FakePublisher(), PostgresLeadReader(pool), load_funnel(), sla_reader=reader
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            board = (await client.get("/v1/sla/open?limit=1000")).json()["timers"]
            attempts = (await client.get("/v1/sla/open?policy=contact_attempts")).json()
            emea = (await client.get("/v1/sla/open?team=sdr-emea")).json()
            ok = (await client.get("/v1/sla/open?status=ok")).json()
            summary = (await client.get("/v1/sla/summary?from=2000-01-01")).json()

        # Still running at the end, by construction: never-touched MQLs (3 timers each) and
        # the contact attempts of the friday and holiday leads; all past their deadlines.
        never = [x.lead_id for x in history.leads if x.scenario == "never_touched"]
        assert len(board) == 3 * len(never) + 12
        assert {t["status"] for t in board} == {"breached"}
        deadlines = [t["deadline"] for t in board]
        assert deadlines == sorted(deadlines), "most urgent first"
        assert attempts["count"] == 12
        assert {t["team"] for t in emea["timers"]} == {"sdr-emea"}
        assert emea["count"] == 6, "the friday leads are the even, EMEA ones"
        assert ok["count"] == 0
        totals = {p["policy"]: p for p in summary["policies"] if p["team"] == "all"}
        first = totals["mql_first_touch"]
        assert (first["started"], first["met"], first["breached"]) == (60, 36, 12)
        assert first["met_percent"] == 75.0

        monkeypatch.setenv("LEADLEDGER_DATABASE_URL", s.database_url)
        monkeypatch.setenv("LEADLEDGER_SLA_FILE", str(sla_file))
        result = await asyncio.to_thread(
            CliRunner().invoke, cli_app, ["sla", "board", "--limit", "5"]
        )
        assert result.exit_code == 0, result.output
        rows = [line for line in result.output.splitlines() if " S-" in line]
        assert len(rows) == 5
        for row, t in zip(rows, board, strict=False):  # the API's order, most urgent first
            assert t["lead_id"] in row
            assert t["policy"] in row
        assert "overdue" in result.output
        result = await asyncio.to_thread(
            CliRunner().invoke, cli_app, ["sla", "report", "--from", "2000-01-01"]
        )
        assert result.exit_code == 0, result.output
        assert "mql_first_touch" in result.output
        assert "Marketing volume SLA" in result.output

        gauges = asyncio.create_task(refresh_sla_gauges(pool, config, every=0.1))
        await asyncio.sleep(0.5)
        gauges.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gauges
    finally:
        await pool.close()
    open_timers = "leadledger_sla_open_timers"
    attempts_breached = {"policy": "contact_attempts", "status": "breached"}
    assert REGISTRY.get_sample_value(open_timers, attempts_breached) == 12
    attempts_ok = {"policy": "contact_attempts", "status": "ok"}
    assert REGISTRY.get_sample_value(open_timers, attempts_ok) == 0
    overdue = {"policy": "mql_first_touch"}
    assert REGISTRY.get_sample_value("leadledger_sla_overdue_timers", overdue) == len(never)
