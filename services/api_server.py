"""``leadledger api``: the HTTP API process, wired to Kafka and the Postgres read models."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import uvicorn

from events.funnel import Funnel, load_funnel
from events.sla_config import load_sla
from services import metrics
from services.api import funnel_flow as funnel_api
from services.api.app import create_app
from services.gc_policy import tune_for_batches
from services.publisher import KafkaPublisher
from services.settings import Settings
from services.store.attribution_reader import PostgresAttributionReader
from services.store.audit_reader import PostgresAuditReader
from services.store.feedback_reader import PostgresFeedbackReader
from services.store.funnel_reader import PostgresFunnelReader
from services.store.lead_reader import PostgresLeadReader
from services.store.migrate import migrate
from services.store.plan_report import Planner
from services.store.sla_reader import PostgresSlaReader, refresh_sla_gauges

log = logging.getLogger(__name__)


async def refresh_stage_gauge(pool: asyncpg.Pool, funnel: Funnel, every: float = 5.0) -> None:
    """Keep ``leadledger_leads{stage}`` equal to the read model, every stage of the funnel.

    Read from Postgres rather than counted in a worker, so the figure stays whole however
    many processors share the partitions.
    """
    while True:
        try:
            rows = await pool.fetch(
                "SELECT current_stage, count(*) AS n FROM lead_current"
                " WHERE current_stage IS NOT NULL GROUP BY current_stage"
            )
            counts = {r["current_stage"]: r["n"] for r in rows}
            for stage in funnel.stages:
                metrics.LEADS.labels(stage=stage).set(counts.get(stage, 0))
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("could not refresh leadledger_leads: %s", exc)
        await asyncio.sleep(every)


async def serve(settings: Settings) -> None:
    funnel = load_funnel(settings.funnel_file)
    sla_config = load_sla(funnel, settings.sla_file)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=8)
    async with pool.acquire() as conn:
        await migrate(conn)
    publisher = KafkaPublisher.from_settings(settings)
    await publisher.start()
    gauge = asyncio.create_task(refresh_stage_gauge(pool, funnel))
    sla_gauges = asyncio.create_task(refresh_sla_gauges(pool, sla_config))
    try:
        sla_reader = PostgresSlaReader(pool, sla_config)
        app = create_app(
            settings,
            publisher,
            PostgresLeadReader(pool),
            funnel,
            sla_reader=sla_reader,
            attribution_reader=PostgresAttributionReader(pool, funnel),
            audit_reader=PostgresAuditReader(pool, funnel=funnel),
        )
        flow_reader = PostgresFunnelReader(pool, funnel)
        target = (sla_config.volume.stage, sla_config.volume.per_rep) if sla_config.volume else None
        funnel_api.install(app, flow_reader, Planner(flow_reader, target))
        app.state.feedback_reader = PostgresFeedbackReader(pool, funnel)
        config = uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log_level,
            access_log=False,
        )
        await uvicorn.Server(config).serve()
    finally:
        for task in (gauge, sla_gauges):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await publisher.stop()
        await pool.close()


def run_api(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM."""
    logging.basicConfig(level=settings.log_level.upper())
    tune_for_batches()
    asyncio.run(serve(settings))
