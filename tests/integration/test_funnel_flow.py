"""Funnel flow and the reverse-funnel plan on the real archive: a simulated (demo-like)
history goes through the real broker and processor into PostgreSQL; the API and the CLI
must give per-stage figures equal to a plain computation over the raw events written out
below, the same figures again after the history is processed a second time into a fresh
database, end balances equal to the snapshot that ``leadledger replay`` rebuilds from the
archive, and a plan whose rates are the report's conversions for the same window."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from typer.testing import CliRunner

from events.envelope import Event
from events.funnel import load_funnel
from services.api import funnel_flow as funnel_api
from services.api.app import create_app
from services.cli import app as cli_app
from services.embedded.postgres import EmbeddedPostgres
from services.embedded.tansu import TansuBroker
from services.embedded.topics import delete_topics, ensure_topics, leadledger_topics
from services.settings import Settings
from services.simulator.journeys import SimConfig, Timeline
from services.store.funnel_reader import PostgresFunnelReader
from services.store.lead_reader import PostgresLeadReader
from services.store.plan_report import Planner
from tests.integration.conftest import TEST_PARTITIONS, unique_suffix
from tests.integration.helpers import fetch, processor, publish, scalar, wait_until
from tests.unit.test_api import FakePublisher

D = timedelta(days=1)
#: Midnight UTC 38 days ago; the history runs to 2 days ago, so nothing is in the future.
BASE = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - 38 * D
START, END, AS_OF = BASE + 12 * D, BASE + 24 * D, BASE + 30 * D
FUNNEL = load_funnel()
#: The fold's tie-break for events at the same instant (projections.lead.order_key).
RANK = {"lead.created": 0, "lead.stage_changed": 1, "lead.disqualified": 1,
        "lead.recycled": 1, "lead.assigned": 2, "lead.contacted": 3, "lead.merged": 5}  # fmt: skip
Stay = tuple[str, datetime, datetime | None]


def history() -> list[Event]:
    """About 500 seeded simulator journeys starting over 36 days, in event-time order."""
    timeline = Timeline(SimConfig(seed=41, lead_id_prefix="F"), BASE, leads_per_hour=0.6)
    return timeline.until(BASE + 36 * D)


# --- the plain computation over raw events ---------------------------------------------


def stays_of(events: Sequence[Event], as_of: datetime) -> list[Stay]:
    """A lead's stays as known at ``as_of``; a merge ends the lead."""
    known = sorted((e for e in events if e.time <= as_of),
                   key=lambda e: (e.time, RANK.get(e.type, 4), e.id))  # fmt: skip
    stays: list[Stay] = []
    for e in known:
        data: Any = e.data
        target = None
        if e.type == "lead.created" and not stays:
            target = data.stage
        elif e.type == "lead.stage_changed":
            target = data.to_stage
        elif e.type == "lead.disqualified":
            target = "disqualified"
        elif e.type == "lead.recycled":
            target = "recycled"
        elif e.type == "lead.merged":
            if stays and stays[-1][2] is None:
                stays[-1] = (stays[-1][0], stays[-1][1], e.time)
            break
        if target is not None:
            if stays:
                stays[-1] = (stays[-1][0], stays[-1][1], e.time)
            stays.append((target, e.time, None))
    return stays


def rank(stage: str) -> int:
    return FUNNEL.main_path.index(stage) if stage in FUNNEL.main_path else -1


def nearest(values: list[float], q: float) -> float | None:
    return sorted(values)[max(math.ceil(q * len(values)), 1) - 1] if values else None


def expected(events: Sequence[Event], start: datetime, end: datetime,
             as_of: datetime) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per stage: the figures of [start, end) as the README defines them."""
    by_lead: dict[str, list[Event]] = {}
    for e in events:
        by_lead.setdefault(e.subject, []).append(e)
    stays = {lead: stays_of(evs, as_of) for lead, evs in by_lead.items()}
    out = {}
    for stage in FUNNEL.stages:
        row: dict[str, Any] = {"balance_start": 0, "inflow": 0, "outflow": 0, "balance_end": 0}
        lengths: list[float] = []
        entrants = converted = 0
        for lead_stays in stays.values():
            first_entry = None
            for i, (name, entered, exited) in enumerate(lead_stays):
                if name != stage:
                    continue
                if entered < start and (exited is None or exited >= start):
                    row["balance_start"] += 1
                if entered < end and (exited is None or exited >= end):
                    row["balance_end"] += 1
                if start <= entered < end:
                    row["inflow"] += 1
                    if first_entry is None:
                        first_entry = i
                if exited is not None and start <= exited < end:
                    row["outflow"] += 1
                    lengths.append((exited - entered).total_seconds())
            if first_entry is not None:
                entrants += 1
                later = lead_stays[first_entry + 1 :]
                if rank(stage) >= 0 and any(rank(s[0]) > rank(stage) for s in later):
                    converted += 1
        row["entrants"] = entrants
        has_next = 0 <= rank(stage) < len(FUNNEL.main_path) - 1
        row["converted"] = converted if has_next else None
        row["conversion"] = (
            (Decimal(converted) / Decimal(entrants)).quantize(Decimal("0.0001"))
            if has_next and entrants else None
        )  # fmt: skip
        row["exits"] = len(lengths)
        row["median_seconds"] = nearest(lengths, 0.5)
        row["p90_seconds"] = nearest(lengths, 0.9)
        out[stage] = row
    return out


# --- running it -------------------------------------------------------------------------


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def get(dsn: str, url: str) -> dict[str, Any]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        app = create_app(Settings(database_url=dsn), FakePublisher(), PostgresLeadReader(pool),
                         FUNNEL)  # fmt: skip
        reader = PostgresFunnelReader(pool, FUNNEL)
        funnel_api.install(app, reader, Planner(reader, ("mql", 40)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.get(url)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body
    finally:
        await pool.close()


async def cli(dsn: str, *args: str) -> dict[str, Any]:
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": dsn})
    result = await asyncio.to_thread(runner.invoke, cli_app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = orjson.loads(result.output)
    return body


async def process(settings: Settings, log_dir: Path, n: int) -> None:
    with processor(settings, log_dir) as proc:
        await wait_until(
            lambda: scalar(settings.database_url, "SELECT count(*) FROM event_archive"),
            lambda count: count == n, seconds=90, what="the archive", watch=proc,
        )  # fmt: skip
    rejected = await scalar(settings.database_url, "SELECT count(*) FROM rejected_event")
    assert rejected == 0, "every simulated event is valid, so the raw list is the archive"


@pytest.fixture(scope="module")
async def twice(
    tansu: TansuBroker, embedded_pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[list[Event], str, str]]:
    """The history processed by one processor into a fresh database, then by a second
    processor (its own consumer group) from the same topic into another fresh database.
    Once per module: both tests only read."""
    suffix = unique_suffix()
    names = [f"test_{suffix}_a", f"test_{suffix}_b"]
    for name in names:
        embedded_pg.create_database(name)
    log_dir = tmp_path_factory.mktemp("funnel-flow")
    first = Settings(
        kafka_bootstrap=tansu.bootstrap, database_url=embedded_pg.dsn_for(names[0]),
        events_topic=f"leadledger.events.{suffix}",
        rejected_topic=f"leadledger.rejected.{suffix}",
        derived_topic=f"leadledger.derived.{suffix}", partitions=TEST_PARTITIONS,
        data_dir=log_dir / "data",
    )  # fmt: skip
    second = first.model_copy(update={
        "database_url": embedded_pg.dsn_for(names[1]),
        "processor_id": "leadledger-processor-second-run",
    })  # fmt: skip
    topics = leadledger_topics(first)
    await ensure_topics(first.kafka_bootstrap, topics)
    try:
        events = history()
        await publish(first.kafka_bootstrap, first.events_topic, events)
        await process(first, log_dir, len(events))
        await process(second, log_dir, len(events))
        yield events, first.database_url, second.database_url
    finally:
        await delete_topics(first.kafka_bootstrap, list(topics))
        for name in names:
            embedded_pg.drop_database(name)


async def test_funnel_figures_match_the_raw_events_via_api_and_cli_and_after_reprocessing(
    twice: tuple[list[Event], str, str],
) -> None:
    events, dsn, second_dsn = twice
    url = f"/v1/funnel?from={iso(START)}&to={iso(END)}&as_of={iso(AS_OF)}"
    body = await get(dsn, url)
    want = expected(events, START, END, AS_OF)
    got = {row["stage"]: {k: row[k] for k in want["lead"]} for row in body["period"]["stages"]}
    for row in got.values():
        if row["conversion"] is not None:
            row["conversion"] = Decimal(row["conversion"])
    assert got == want
    # Not a trivial history: every main-path stage moved, and the as-of cut mattered.
    assert all(want[s]["inflow"] > 0 for s in FUNNEL.main_path)
    assert want != expected(events, START, END, BASE + 40 * D)
    assert want["mql"]["median_seconds"] is not None
    leads = {e.subject for e in events if e.time < END and e.time <= AS_OF}
    assert body["leads"] == len(leads)

    # Knowing every event, the balance at the end is the processor's own snapshot.
    later = BASE + 37 * D
    final = await get(dsn, f"/v1/funnel?from={iso(START)}&to={iso(later)}&as_of={iso(later)}")
    rows = await fetch(dsn, "SELECT current_stage, count(*) AS n FROM lead_current"
                            " WHERE merged_into IS NULL GROUP BY current_stage")  # fmt: skip
    snapshot = {r["current_stage"]: r["n"] for r in rows}
    assert {r["stage"]: r["balance_end"] for r in final["period"]["stages"]} == {
        stage: snapshot.get(stage, 0) for stage in FUNNEL.stages
    }

    args = ["funnel", "--from", iso(START), "--to", iso(END), "--as-of", iso(AS_OF)]
    assert await cli(dsn, *args) == body, "the CLI prints the API's body"
    # The same history processed again, into a fresh database, gives the same report.
    assert await get(second_dsn, url) == body


async def test_the_plan_uses_exactly_the_funnel_report_s_rates_for_its_window(
    twice: tuple[list[Event], str, str],
) -> None:
    _, dsn, second_dsn = twice
    query = f"revenue=2000000&period=2027-Q1&window=18d&as_of={iso(AS_OF)}&min_sample=10"
    plan = await get(dsn, f"/v1/plan?{query}")
    window_start = AS_OF - 18 * D
    report = await get(dsn, f"/v1/funnel?from={iso(window_start)}&to={iso(AS_OF)}"
                            f"&as_of={iso(AS_OF)}")  # fmt: skip
    rows = {r["stage"]: r for r in report["period"]["stages"]}
    assert [(r["from_stage"], r["to_stage"]) for r in plan["rates"]] == [
        ("lead", "mql"), ("mql", "sal"), ("sal", "sql"), ("sql", "opportunity"),
        ("opportunity", "customer"),
    ]  # fmt: skip
    for r in plan["rates"]:
        row = rows[r["from_stage"]]
        assert (r["converted"], r["entrants"], r["rate"]) == (
            row["converted"], row["entrants"], row["conversion"],
        )  # fmt: skip
    used = {s["stage"]: s["rate"] for s in plan["steps"] if s["rate"] is not None}
    assert used == {r["from_stage"]: r for r in plan["rates"]}
    assert plan["complete"] is True, plan["blocked"]
    won = next(w for w in report["period"]["won"] if w["currency"] == plan["currency"])
    assert (plan["deals_won"], plan["revenue_won"]) == (won["deals"], won["revenue"])
    assert plan["steps"][0]["needed"] == math.ceil(
        Decimal(2000000) * won["deals"] / Decimal(won["revenue"])
    )
    assert plan["sla"]["target_per_rep_per_month"] == 40
    args = ["plan", "--revenue", "2000000", "--period", "2027-Q1", "--window", "18d",
            "--as-of", iso(AS_OF), "--min-sample", "10"]  # fmt: skip
    assert await cli(dsn, *args) == plan
    assert await get(second_dsn, f"/v1/plan?{query}") == plan


async def test_the_snapshot_rebuilt_by_leadledger_replay_agrees_with_the_funnel_report(
    twice: tuple[list[Event], str, str],
) -> None:
    _, dsn, _ = twice
    topic = await scalar(dsn, "SELECT min(kafka_topic) FROM event_archive")
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": dsn})
    args = ["replay", "--source", "archive", "--topic", topic, "--into", "funnel_replay",
            "--replace"]  # fmt: skip
    result = await asyncio.to_thread(runner.invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    later = BASE + 37 * D
    final = await get(dsn, f"/v1/funnel?from={iso(START)}&to={iso(later)}&as_of={iso(later)}")
    rows = await fetch(dsn, "SELECT current_stage, count(*) AS n FROM funnel_replay.lead_current"
                            " WHERE merged_into IS NULL GROUP BY current_stage")  # fmt: skip
    replayed = {r["current_stage"]: r["n"] for r in rows}
    assert sum(replayed.values()) > 400, "the replay rebuilt the leads"
    assert {r["stage"]: r["balance_end"] for r in final["period"]["stages"]} == {
        stage: replayed.get(stage, 0) for stage in FUNNEL.stages
    }
