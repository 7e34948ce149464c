"""The closed loop on real Tansu and PostgreSQL with a live processor, against a seeded history
whose ground truth is written down per case (``closed_loop_history``): suppressed re-handoffs,
duplicate pairs, a merged survivor's timeline, the feedback report, and no raw email address
anywhere in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
from typer.testing import CliRunner

from events.closed_loop_events import CLOSED_LOOP_REGISTRY
from events.codec import decode
from events.funnel import load_funnel
from services.api.app import create_app
from services.cli import app as cli_app
from services.settings import Settings
from services.store.attribution_reader import PostgresAttributionReader
from services.store.audit_reader import PostgresAuditReader
from services.store.feedback_reader import PostgresFeedbackReader
from services.store.lead_reader import PostgresLeadReader
from tests.integration.closed_loop_history import ClosedLoopHistory, build
from tests.integration.helpers import consume_all, fetch, processor, publish, scalar, wait_until
from tests.unit.test_api import FakePublisher

N_LEADS = 400
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=10)
CLOSED_LOOP_TYPES = {"handoff.suppressed", "lead.duplicate_detected"}


async def test_the_closed_loop_finds_exactly_the_constructed_cases(
    fresh_topics: Settings, tmp_path: Path
) -> None:
    s = fresh_topics
    history = build(N_LEADS, T0)
    await publish(s.kafka_bootstrap, s.events_topic, history.publish_order())
    total = len(history.publish_order()) + len(history.late)
    with processor(s, tmp_path, tick_interval_seconds=0.0) as proc:
        await wait_until(
            lambda: scalar(s.database_url, "SELECT count(*) FROM event_archive"),
            lambda n: n == len(history.events), seconds=90, what="the archive", watch=proc,
        )  # fmt: skip
        # Only now the late disqualifications: their moves back were applied before them.
        await publish(s.kafka_bootstrap, s.events_topic, history.late)
        await wait_until(
            lambda: scalar(
                s.database_url,
                "SELECT (SELECT count(*) FROM event_archive)"
                " + (SELECT count(*) FROM rejected_event)",
            ),
            lambda n: n == total, seconds=60, what="every record", watch=proc,
        )  # fmt: skip
        # Counted right after each commit, so wait for the last batch's increments.
        metrics_text = await wait_until(
            lambda: _scrape(proc.web_port),
            lambda t: _counter_total(t, "leadledger_handoffs_suppressed_total")
            == len(history.suppressed_ids),
            seconds=20, what="the suppression counter", watch=proc,
        )  # fmt: skip

    expected_derived = len(history.suppressed_ids) + len(history.pairs)
    records = await consume_all(s.kafka_bootstrap, s.derived_topic, 10**9, seconds=8)
    derived = [
        decode(r.value, CLOSED_LOOP_REGISTRY)
        for r in records
        if dict(r.headers).get("ce_type", b"").decode() in CLOSED_LOOP_TYPES
    ]
    assert len(derived) == expected_derived, "each fact produced once by a clean run"
    suppressed = {e.id for e in derived if e.type == "handoff.suppressed"}
    assert suppressed == history.suppressed_ids
    found_pairs = {
        (e.data.original_id, e.subject)  # type: ignore[attr-defined]
        for e in derived
        if e.type == "lead.duplicate_detected"
    }
    assert found_pairs == history.pairs
    await check_tables(s.database_url, history)
    assert _counter_total(metrics_text, "leadledger_handoffs_suppressed_total") == len(suppressed)
    assert _counter_total(metrics_text, "leadledger_duplicates_detected_total") == len(
        history.pairs
    )
    await check_timeline(s, history)
    await check_feedback(s, history)
    await check_attribution(s, history)
    await check_no_raw_email(s.database_url, history.addresses)


async def check_tables(dsn: str, history: ClosedLoopHistory) -> None:
    rows = await fetch(dsn, "SELECT lead_id, event_id FROM handoff_suppression")
    assert {f"closedloop/suppressed/{r['lead_id']}/{r['event_id']}" for r in rows} == (
        history.suppressed_ids
    )
    pairs = await fetch(dsn, "SELECT original_id, duplicate_id FROM lead_duplicate")
    assert {(r["original_id"], r["duplicate_id"]) for r in pairs} == history.pairs
    reasons = await fetch(dsn, "SELECT reason FROM rejected_event")
    assert [r["reason"] for r in reasons] == ["unknown_stage"]


async def check_timeline(s: Settings, history: ClosedLoopHistory) -> None:
    assert history.merged is not None
    dup, survivor = history.merged
    pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=2)
    try:
        app = create_app(
            s, FakePublisher(), PostgresLeadReader(pool), load_funnel(),
            audit_reader=PostgresAuditReader(pool),
        )  # fmt: skip
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            body = (await client.get(f"/v1/leads/{survivor}/timeline")).json()
    finally:
        await pool.close()
    assert body["merged_leads"] == [dup]
    events = [e for e in body["entries"] if e["kind"] == "event"]
    own = [e.id for e in history.events if e.subject == survivor]
    theirs = [e.id for e in history.events if e.subject == dup]
    assert sorted(e["event_id"] for e in events) == sorted(own + theirs)
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times == sorted(times), "both histories in event-time order"
    assert {e["from_lead"] for e in events} == {None, dup}
    assert body["events"] == len(own) + len(theirs)
    facts = [(e["type"], e["event_id"]) for e in body["entries"] if e["kind"] == "closed_loop"]
    assert facts == [("lead.duplicate_detected", f"closedloop/duplicate/{survivor}/{dup}")]
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": s.database_url})
    result = await asyncio.to_thread(runner.invoke, cli_app, ["audit", survivor])
    assert result.exit_code == 0, result.output
    assert f"(lead {dup}) merged into {survivor}" in result.output
    assert f"with merged {dup}" in result.output


async def check_attribution(s: Settings, history: ClosedLoopHistory) -> None:
    """The merged duplicate's touch credits the survivor's deal."""
    assert history.merged is not None
    dup, survivor = history.merged
    pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=2)
    try:
        app = create_app(
            s, FakePublisher(), PostgresLeadReader(pool), load_funnel(),
            attribution_reader=PostgresAttributionReader(pool, load_funnel()),
        )  # fmt: skip
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            found = await client.get("/v1/attribution/deals/D-merged", params={"model": "linear"})
    finally:
        await pool.close()
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["lead_id"] == survivor
    credits = body["explanations"][0]["credits"]
    assert {c["touch_id"] for c in credits} == {f"{survivor}-e2", f"{dup}-e1"}
    assert {c["share"] for c in credits} == {"0.500000000000"}


async def check_feedback(s: Settings, history: ClosedLoopHistory) -> None:
    pool = await asyncpg.create_pool(s.database_url, min_size=1, max_size=2)
    try:
        app = create_app(s, FakePublisher(), PostgresLeadReader(pool), load_funnel())
        app.state.feedback_reader = PostgresFeedbackReader(pool, load_funnel())
        params = {"from": (T0 - timedelta(days=1)).date().isoformat(),
                  "to": datetime.now(UTC).date().isoformat(), "by": "campaign"}  # fmt: skip
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            body = (await client.get("/v1/feedback", params=params)).json()
    finally:
        await pool.close()
    got = {r["key"]: [r["suppressed_rehandoffs"], r["disqualified"]] for r in body["rows"]}
    for campaign, expected in history.per_campaign.items():
        assert got[campaign] == expected, campaign
    runner = CliRunner(env={"LEADLEDGER_DATABASE_URL": s.database_url})
    args = ["feedback", "--from", params["from"], "--to", params["to"], "--format", "json"]
    result = await asyncio.to_thread(runner.invoke, cli_app, args)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output)["rows"] == body["rows"], "the CLI prints the API's body"


async def check_no_raw_email(dsn: str, addresses: list[str]) -> None:
    """No column is named for a raw address, and no stored value contains one."""
    named = await fetch(
        dsn,
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND column_name ILIKE '%mail%'",
    )
    assert {r["column_name"] for r in named} <= {"email_key"}, named
    columns = await fetch(
        dsn,
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type IN"
        " ('text', 'character varying', 'character', 'jsonb', 'json', 'bytea')",
    )
    tables = {r["table_name"] for r in columns}
    assert {"event_archive", "rejected_event", "lead_identity", "lead_current"} <= tables
    needles = sorted({a.strip().lower() for a in addresses})
    conn = await asyncpg.connect(dsn)
    try:
        for r in columns:
            col = f'"{r["column_name"]}"'
            text = f"encode({col}, 'escape')" if r["data_type"] == "bytea" else f"{col}::text"
            hits = await conn.fetchval(
                f'SELECT count(*) FROM "{r["table_name"]}" WHERE lower({text}) LIKE'
                " ANY (SELECT '%' || n || '%' FROM unnest($1::text[]) AS n)",
                needles,
            )
            assert hits == 0, f"{r['table_name']}.{r['column_name']} holds a raw address"
        # The scan itself must be able to see an address: one planted row is found.
        await conn.execute("CREATE TEMP TABLE probe (raw bytea)")
        await conn.execute("INSERT INTO probe VALUES ($1)", needles[0].encode())
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM probe WHERE lower(encode(raw, 'escape')) LIKE $1",
                f"%{needles[0]}%",
            )
            == 1
        )
    finally:
        await conn.close()


async def _scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics")).text


def _counter_total(text: str, name: str) -> float:
    """The sum of a counter over its label sets."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name}{{", f"{name} "))
    )


async def test_in_reject_mode_a_rehandoff_is_dead_lettered_and_still_announced(
    fresh_topics: Settings, tmp_path: Path
) -> None:
    import yaml

    funnel = yaml.safe_load((Path(__file__).parents[2] / "events/funnel.yaml").read_text())
    funnel["closed_loop"]["on_suppressed_handoff"] = "reject"
    funnel_file = tmp_path / "funnel.yaml"
    funnel_file.write_text(yaml.safe_dump(funnel))
    s = fresh_topics.model_copy(update={"funnel_file": funnel_file})
    history = build(10, T0)  # two leads of each scenario
    events = [*history.events, *history.late]
    await publish(s.kafka_bootstrap, s.events_topic, events)
    with processor(s, tmp_path, tick_interval_seconds=0.0) as proc:
        await wait_until(
            lambda: scalar(
                s.database_url,
                "SELECT (SELECT count(*) FROM event_archive)"
                " + (SELECT count(*) FROM rejected_event)",
            ),
            lambda n: n == len(events), seconds=60, what="every record", watch=proc,
        )  # fmt: skip
    rejected = await fetch(s.database_url, "SELECT lead_id, event_id, reason FROM rejected_event")
    refused = {f"closedloop/suppressed/{r['lead_id']}/{r['event_id']}" for r in rejected}
    # The late disqualifications came after their moves back: those moves were accepted and
    # are flagged instead; the in-order re-handoffs are refused.
    in_order = {i for i in history.suppressed_ids if "-e3" in i or "-e4" in i}
    late_leads = {e.subject for e in history.late}
    expected_refused = {i for i in in_order if i.split("/")[2] not in late_leads}
    assert refused == expected_refused
    assert {r["reason"] for r in rejected} == {"suppressed_handoff"}
    rows = await fetch(s.database_url, "SELECT lead_id, event_id, action FROM handoff_suppression")
    actions = {f"closedloop/suppressed/{r['lead_id']}/{r['event_id']}": r["action"] for r in rows}
    assert actions == {
        i: "rejected" if i in expected_refused else "flagged" for i in history.suppressed_ids
    }
