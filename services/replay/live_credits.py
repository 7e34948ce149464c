"""The live side of a credit diff: live reports store no credit, so it is computed here from
the live ``event_archive`` with the current models, at the sandbox's credit as-of time."""

from __future__ import annotations

from collections import defaultdict

import asyncpg
import orjson

from events.attribution_config import AttributionConfig
from events.codec import decode_obj
from events.envelope import Event
from events.funnel import Funnel
from projections.lead import fold
from services.replay.credits import credit_rows
from services.replay.projections import CREDIT_COLUMNS
from services.replay.schema import LIVE_SCHEMA


async def live_credit_table(
    conn: asyncpg.Connection, sandbox: str, funnel: Funnel, config: AttributionConfig
) -> str:
    """Fill a temporary ``attribution_credit`` with the live credit; returns its schema."""
    as_of = None
    if await conn.fetchval("SELECT to_regclass($1)", f'"{sandbox}".replay_run') is not None:
        as_of = await conn.fetchval(f'SELECT max(credit_as_of) FROM "{sandbox}".replay_run')
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS attribution_credit"
        f" (LIKE {LIVE_SCHEMA}.attribution_credit)"
    )
    await conn.execute("TRUNCATE pg_temp.attribution_credit")
    temp = str(await conn.fetchval("SELECT pg_my_temp_schema()::regnamespace::text"))
    if as_of is None:
        return temp
    histories: dict[str, list[Event]] = defaultdict(list)
    rows = await conn.fetch(
        f"SELECT lead_id, payload::text AS payload FROM {LIVE_SCHEMA}.event_archive"
        " WHERE event_time <= $1",
        as_of,
    )
    for r in rows:
        histories[r["lead_id"]].append(decode_obj(orjson.loads(r["payload"])))
    leads = [fold(lead_id, events, funnel) for lead_id, events in histories.items()]
    records = credit_rows(leads, funnel, config, as_of)
    if records:
        await conn.copy_records_to_table(
            "attribution_credit", schema_name=temp, columns=CREDIT_COLUMNS, records=records
        )
    return temp
