"""The Faust worker: a thin agent that hands buffered records to the batch pipeline.

Faust keeps consumer groups, rebalancing, the web server and the CLI; the pipeline keeps the
state. Settings suit Tansu locally and real Kafka alike: no idempotent producer and no
exactly_once (Tansu rejects InitProducerId), short session timeouts (Tansu holds a group join
for half of it). Exactly-once in effect comes from the Postgres checkpoints instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import faust
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from events.funnel import Funnel, load_funnel
from events.sla_config import load_sla
from events.tick import TICK_HEADERS, encode_tick
from projections.sla import SlaRules, compile_rules
from services import metrics
from services.gc_policy import BatchCollector, tune_for_batches
from services.processor.batch import BatchOutcome
from services.processor.closed_loop import ClosedLoopEngine
from services.processor.closed_loop_observe import observe_closed_loop
from services.processor.dead_letters import KafkaDeadLetters
from services.processor.derived import DerivedRecord, KafkaDerived, send_batched
from services.processor.faust_batches import BatchingApp, RecordBatch
from services.processor.observe import EventTimeClock, observe
from services.processor.overlap import Overlapped
from services.processor.pipeline import BatchPipeline, ClosedLoopWiring, Limits, SlaWiring
from services.processor.sla_engine import SlaEngine
from services.processor.sla_observe import observe_sla
from services.settings import Settings
from services.store.migrate import migrate
from services.store.pool import processor_pool
from services.store.projection_store import PostgresProjectionStore

log = logging.getLogger(__name__)


class Runtime:
    """Lazily built resources shared by the agent: the pool and the pipeline."""

    def __init__(self, app: faust.App, settings: Settings, funnel: Funnel) -> None:
        self.app = app
        self.settings = settings
        self.funnel = funnel
        # Loaded at start-up, so a bad SLA file stops the worker with its path and reason.
        self.sla_rules: SlaRules = compile_rules(load_sla(funnel, settings.sla_file), funnel)
        self.clock = EventTimeClock()
        self._pipeline: BatchPipeline | None = None
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self.rejected_topic = app.topic(
            settings.rejected_topic,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    async def pipeline(self) -> BatchPipeline:
        async with self._lock:
            if self._pipeline is None:
                self._pool = await processor_pool(self.settings.database_url)
                async with self._pool.acquire() as conn:
                    await migrate(conn)
                s = self.settings
                store = PostgresProjectionStore(self._pool, s.processor_id)
                sla: SlaWiring | None = None
                rules = self.sla_rules
                # With no policy and no volume target the engine would only walk every
                # lead's history to find nothing (a tenth of the time per event).
                if rules.policies or rules.config.volume is not None:
                    sla = SlaWiring(SlaEngine(rules), store, KafkaDerived(self._send_derived))
                key = s.email_hmac_key.get_secret_value().encode()
                loop = ClosedLoopWiring(
                    ClosedLoopEngine(self.funnel, key), store, KafkaDerived(self._send_derived)
                )
                self._pipeline = BatchPipeline(
                    s.events_topic,
                    self.funnel,
                    store,
                    KafkaDeadLetters(self._send_dead_letter),
                    Limits(
                        max_future_skew=timedelta(seconds=s.max_future_skew_seconds),
                        allowed_lateness=timedelta(seconds=s.allowed_lateness_seconds),
                    ),
                    sla=sla,
                    closed_loop=loop,
                )
            return self._pipeline

    async def _send_dead_letter(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> object:
        return await self.rejected_topic.send(key=key, value=value, headers=headers)

    async def _send_derived(self, records: Sequence[DerivedRecord]) -> None:
        # Straight to aiokafka's producer, a record batch per partition: Faust's Topic.send
        # and even its Producer.send cost more per record than building the event did.
        producer = self.app.producer
        await send_batched(
            # Faust's started aiokafka producer (NotReady before it starts).
            cast(Any, producer)._ensure_producer(),
            self.settings.derived_topic,
            # The one Faust gave aiokafka; aiokafka's own default when Faust had none.
            producer.partitioner or DefaultPartitioner(),
            records,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


def create_app(
    settings: Settings, funnel: Funnel | None = None, collector: BatchCollector | None = None
) -> faust.App:
    """The processor's Faust app, wired to the topics and stores in ``settings``.

    ``collector``: told after every committed batch (``run_worker`` passes one; it changes
    the garbage collector of the whole process, so an embedding process opts in)."""
    funnel = funnel or load_funnel(settings.funnel_file)
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = BatchingApp(
        settings.processor_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        broker_session_timeout=settings.broker_session_timeout_seconds,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_seconds / 3),
        broker_commit_interval=1.0,
        # One fetch is one batch (one PostgreSQL transaction): bound it, and let a partition's
        # fetch carry thousands of ~200-byte records rather than aiokafka's 1 MB default.
        broker_max_poll_records=settings.batch_max_events,
        consumer_max_fetch_size=4 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        web_port=settings.processor_web_port,
        web_host=settings.processor_web_host,
        web_in_thread=False,
        datadir=str(datadir),
        producer_acks=-1,
        # A batch's derived sla.* events are all submitted, then all awaited, before its
        # commit (services/processor/derived.py). aiokafka keeps one request in flight per
        # broker, and a record (or record batch) that finds its partition's batch full, or
        # not yet sent, waits for that request: at Faust's 16 KB (~28 derived events) a
        # batch of 300 events waited ~20 round trips, each one also behind the fold of the
        # next batch, and that was ~340 ms of live latency. 512 KB holds ~900 derived events
        # per partition (a 1,000 events/s batch in one request) and stays under Kafka's
        # default message.max.bytes of 1 MB per record batch. No linger: a batch's records
        # are submitted back to back and awaited at once; waiting longer only delays.
        producer_max_batch_size=512 * 1024,
        producer_linger=0.0,
        processing_guarantee=settings.processing_guarantee,
    )
    runtime = Runtime(app, settings, funnel)
    events_topic_name = settings.events_topic
    events_topic = app.topic(
        settings.events_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )

    batches = app.batch_channel([events_topic])

    @app.agent(batches)
    async def project(stream: Any) -> None:
        # Thin on purpose: hand each fetched batch over, ack it once committed, count. All
        # decisions live in the pipeline.
        pipeline = await runtime.pipeline()

        def done(tag: tuple[RecordBatch, float], outcome: BatchOutcome) -> None:
            batch, started = tag
            app.ack_batch(batch)
            if collector is not None:
                collector.batch_done()
            metrics.BATCH_DURATION.observe(time.perf_counter() - started)
            metrics.BATCH_SIZE.observe(len(batch.records))
            observe(outcome, runtime.clock)
            observe_sla(outcome.derived, runtime.sla_rules)
            observe_closed_loop(outcome.derived, funnel)

        if not settings.overlap_commits:
            async for batch in stream:
                started = time.perf_counter()
                done((batch, started), await pipeline.process(batch.records))
            return
        driver: Overlapped[tuple[RecordBatch, float]] = Overlapped(pipeline, done)
        try:
            async for batch in stream:
                await driver.submit((batch, time.perf_counter()), batch.records)
        finally:
            await driver.close()

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def _consumer_lag() -> None:
        # From the broker's high watermark and our own checkpoints, not Kafka's committed
        # offsets: the Postgres checkpoint is what "applied" means here.
        pipeline = runtime._pipeline
        if pipeline is None:
            return
        metrics.CONSUMER_LAG.clear()
        for tp in app.consumer.assignment():
            done = pipeline.next_offset(tp.partition) if tp.topic == events_topic_name else None
            highwater = app.consumer.highwater(tp)
            if done is not None and highwater is not None:
                metrics.CONSUMER_LAG.labels(partition=str(tp.partition)).set(
                    max(0, highwater - done)
                )

    if settings.tick_interval_seconds > 0:

        @app.timer(interval=settings.tick_interval_seconds)  # type: ignore[untyped-decorator]
        async def _tick() -> None:
            # Quiet partitions still need stream time to move for deadlines to fire. The tick
            # goes through the log (not straight into the pipeline), so replays see it too.
            when = datetime.now(UTC) - timedelta(seconds=settings.tick_delay_seconds)
            value = encode_tick(when, settings.processor_id)
            for tp in app.consumer.assignment():
                if tp.topic == events_topic_name:
                    await events_topic.send(
                        value=value, partition=tp.partition, headers=list(TICK_HEADERS)
                    )

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's stubs want sync
    async def _assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        # Workers of one group split the partitions: this shows each worker's share.
        mine = [tp for tp in app.consumer.assignment() if tp.topic == events_topic_name]
        metrics.ASSIGNED_PARTITIONS.set(len(mine))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's stubs want sync
    async def _revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        if runtime._pipeline is not None:
            runtime._pipeline.forget()

    @app.page("/metrics")
    async def _metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def _health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    app.leadledger_runtime = runtime  # type: ignore[attr-defined]
    return app


def run_worker(settings: Settings) -> None:
    """Run the processor in the foreground until SIGINT/SIGTERM (``leadledger processor``)."""
    from faust.worker import Worker

    logging.basicConfig(level=settings.log_level.upper())
    tune_for_batches()
    app = create_app(settings, collector=BatchCollector())
    worker = Worker(app, loglevel=settings.log_level, redirect_stdouts=False)
    worker.execute_from_commandline()
