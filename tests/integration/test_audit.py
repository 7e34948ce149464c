"""A lead's audit trail from real PostgreSQL after a real processor folded its events, which
arrived in reverse order: the timeline must still read in event-time order, with sources,
times in stage, owner changes, the deal, the rejected record and the SLA facts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from typer.testing import CliRunner

from events.catalog import LeadAssigned, LeadStageChanged
from events.envelope import Event, make_event
from events.funnel import load_funnel
from services.api.app import create_app
from services.cli import app as cli_app
from services.settings import Settings
from services.store.audit_reader import PostgresAuditReader
from services.store.lead_reader import PostgresLeadReader
from tests.integration.helpers import fetch, processor, publish, scalar, wait_until
from tests.integration.journey import EXPECTED_SECONDS, full_journey
from tests.unit.test_api import FakePublisher

M = timedelta(minutes=1)
LEAD = "aud-1"
#: Ten days ago at 09:00 UTC: the whole journey (six days) is in the past.
T0 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=10)


def history() -> tuple[list[Event], Event]:
    """The journey plus a reassignment, and a disallowed move at minute 20 (rejected)."""
    reassign = LeadAssigned(owner_id="rep-2", team="sdr-emea", assigned_by="router")
    later = make_event(reassign, id="aud-1-e11", subject=LEAD, source="crm", time=T0 + 45 * M)
    move = LeadStageChanged(from_stage="mql", to_stage="customer")
    bad = make_event(move, id="aud-1-bad", subject=LEAD, source="crm", time=T0 + 20 * M)
    return [*full_journey(LEAD, T0), later], bad


async def timeline_json(settings: Settings, lead: str = LEAD) -> httpx.Response:
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        app = create_app(
            settings, FakePublisher(), PostgresLeadReader(pool), load_funnel(),
            audit_reader=PostgresAuditReader(pool),
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(f"/v1/leads/{lead}/timeline")
    finally:
        await pool.close()


async def audit_cli(settings: Settings, *args: str) -> str:
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": settings.database_url})
    result = await asyncio.to_thread(runner.invoke, cli_app, ["audit", *args])
    assert result.exit_code == 0, result.output
    return result.output


def at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"])


async def test_the_timeline_of_a_lead_reads_in_event_time_order_whatever_the_arrival_order(
    fresh_topics: Settings, tmp_path: Path
) -> None:
    s = fresh_topics
    events, bad = history()
    # Newest first: every event but the newest arrives late and is placed by its time.
    await publish(s.kafka_bootstrap, s.events_topic, [*reversed(events), bad])
    with processor(s, tmp_path) as proc:
        await wait_until(
            lambda: scalar(s.database_url, "SELECT count(*) FROM event_archive"),
            lambda n: n == len(events), seconds=60, what="the archive", watch=proc,
        )  # fmt: skip
        await wait_until(
            lambda: scalar(s.database_url, "SELECT count(*) FROM rejected_event"),
            lambda n: n == 1, seconds=30, what="the rejected move", watch=proc,
        )  # fmt: skip

    response = await timeline_json(s)
    assert response.status_code == 200, response.text
    body = response.json()
    entries = body["entries"]
    assert [at(e) for e in entries] == sorted(at(e) for e in entries)
    accepted = [e for e in entries if e["kind"] == "event"]
    # At one instant the fold's order holds: a stage change before the deal event beside it.
    assert [e["event_id"] for e in accepted] == [
        "aud-1-e00", "aud-1-e01", "aud-1-e02", "aud-1-e03", "aud-1-e04", "aud-1-e11",
        "aud-1-e05", "aud-1-e06", "aud-1-e08", "aud-1-e07", "aud-1-e10", "aud-1-e09",
    ]  # fmt: skip
    assert accepted[0]["source"] == "web-forms"
    assert (body["current_stage"], body["owner_id"], body["events"], body["rejected"]) == (
        "customer", "rep-2", 12, 1,
    )  # fmt: skip

    # Stage changes carry the stored times in stage; owner changes the previous owner.
    to_mql = next(e["stage"] for e in accepted if e["event_id"] == "aud-1-e02")
    assert (to_mql["from_stage"], to_mql["to_stage"]) == ("lead", "mql")
    assert to_mql["left_stage_seconds"] == EXPECTED_SECONDS["lead"]
    assert to_mql["stage_seconds"] == EXPECTED_SECONDS["mql"]
    owners = [e["owner"] for e in accepted if e["owner"]]
    assert [(o["owner_id"], o["previous_owner_id"]) for o in owners] == [
        ("rep-1", None), ("rep-2", "rep-1"),
    ]  # fmt: skip
    touch = next(e for e in accepted if e["touch"])
    assert touch["touch"]["campaign_id"] == "c-webinar"
    won = next(e for e in accepted if e["type"] == "deal.won")
    assert (won["deal"]["amount"], won["deal"]["currency"]) == ("12500.00", "EUR")

    # The rejected move sits at its own time, between the assignment (12) and the call (40).
    (rejected,) = [e for e in entries if e["kind"] == "rejected"]
    assert rejected["rejection"]["reason"] == "disallowed_transition"
    assert (at(rejected), rejected["rejection"]["time_basis"]) == (T0 + 20 * M, "event")
    assert rejected["event_id"] == "aud-1-bad"
    ids = [e["event_id"] for e in entries]
    assert ids.index("aud-1-e03") < ids.index("aud-1-bad") < ids.index("aud-1-e04")

    # SLA facts from the SLA engine's rows: the MQL timers start with the move into mql, and
    # the first-touch timer is met by the call at minute 40.
    assert body["sla_available"]
    sla = [(e["type"], at(e), e["sla"]["policy"]) for e in entries if e["kind"] == "sla"]
    assert ("sla.started", T0 + 10 * M, "mql_first_touch") in sla
    assert ("sla.met", T0 + 40 * M, "mql_first_touch") in sla
    timers = await fetch(s.database_url, "SELECT count(*) FROM sla_timer WHERE lead_id = $1", LEAD)
    assert sum(1 for e in entries if e["type"] == "sla.started") == timers[0][0]

    # The CLI prints the same entries, and its JSON is the API's body (but for the clock).
    table = await audit_cli(s, LEAD)
    assert "disallowed_transition" in table
    assert "(after 10m in lead)" in table
    assert table.index("aud-1-e03") < table.index("aud-1-bad") < table.index("aud-1-e04")
    as_json = orjson.loads(await audit_cli(s, LEAD, "--format", "json"))
    assert [e["event_id"] for e in as_json["entries"]] == ids

    # Without the SLA engine's table the audit still answers, and says so.
    await fetch(s.database_url, "DROP TABLE sla_timer")
    without = (await timeline_json(s)).json()
    assert not without["sla_available"]
    assert [e["event_id"] for e in without["entries"]] == [e for e in ids if e is not None]
    assert (await timeline_json(s, "aud-nobody")).status_code == 404
