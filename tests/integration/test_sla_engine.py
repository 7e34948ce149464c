"""The SLA engine end to end on real Tansu and PostgreSQL: 5,000 leads with known outcomes.

Three processors read the same log, each into its own database and derived topic:

- **live** runs while the history is being published;
- **crashy** runs alongside it and is SIGKILLed mid-stream, then restarted;
- **replay** starts from offset 0 once everything is in the log.

All three must produce exactly the ``sla.*`` ids the construction says (tests/integration/
sla_history.py), none missing and none extra, and end with identical ``sla_timer`` tables.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from events.codec import encode
from events.tick import TICK_HEADERS, encode_tick
from services.embedded.postgres import EmbeddedPostgres
from services.embedded.topics import ensure_topics
from services.settings import Settings
from tests.integration.conftest import unique_suffix
from tests.integration.helpers import ProcessorHandle, fetch, processor, scalar, wait_until
from tests.integration.sla_history import History, build

N_LEADS = 5000


Item = tuple[bytes | None, bytes, int | None, list[tuple[str, bytes]] | None]


def log_records(settings: Settings, history: History, ticks: list[datetime]) -> list[Item]:
    """Events keyed by lead, plus ticks to every partition, in time order."""
    timed: list[tuple[datetime, int, Item]] = [
        (e.time, 0, (e.key, encode(e), None, None)) for e in history.events
    ]
    for at in ticks:
        value = encode_tick(at, "test")
        timed += [(at, 1, (None, value, p, list(TICK_HEADERS))) for p in range(settings.partitions)]
    timed.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in timed]


async def publish_in_chunks(
    settings: Settings,
    items: list[Item],
    chunks: int,
    pause: float,
    first_done: asyncio.Event,
    resume: asyncio.Event | None = None,
) -> None:
    """Publish like a live upstream: in chunks with pauses. ``first_done`` is set after the
    first chunk, and the rest waits for ``resume`` if given: a processor slow to start (a loaded
    machine) must still find most of the log unwritten, or the run would not be live."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=False, linger_ms=5
    )
    await producer.start()
    try:
        size = -(-len(items) // chunks)
        for start in range(0, len(items), size):
            pending = [
                await producer.send(settings.events_topic, value, key=key, partition=p, headers=h)
                for key, value, p, h in items[start : start + size]
            ]
            await asyncio.gather(*pending)
            if not first_done.is_set():
                first_done.set()
                if resume is not None:
                    await resume.wait()
            await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[tuple[str, bytes]]:
    """Every record of ``topic`` up to its current end, as (event id, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[str, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [(dict(r.headers)["ce_id"].decode(), r.value) for r in records]
        return out
    finally:
        await consumer.stop()


async def applied(dsn: str, consumer: str) -> int:
    """Records applied by ``consumer``, from its checkpoints."""
    return int(
        await scalar(
            dsn,
            "SELECT COALESCE(sum(kafka_offset + 1), 0) FROM projection_checkpoint"
            " WHERE consumer = $1",
            consumer,
        )
        or 0
    )


TIMER_COLUMNS = (
    "lead_id, policy, cycle_id, kafka_partition, started_at, warn_at, deadline, escalate_at,"
    " stopped_at, outcome, stop_reason, stop_event_id, owner_id, team, assigned_at,"
    " limit_seconds, elapsed_seconds, status, emitted, next_fire_at"
)


async def timer_table(dsn: str) -> list[dict[str, object]]:
    rows = await fetch(dsn, f"SELECT {TIMER_COLUMNS} FROM sla_timer ORDER BY 1, 2, 3")
    return [dict(r) for r in rows]


@pytest.fixture
def databases(embedded_pg: EmbeddedPostgres) -> Iterator[dict[str, str]]:
    names = {run: f"test_{unique_suffix()}" for run in ("live", "crashy", "replay")}
    for name in names.values():
        embedded_pg.create_database(name)
    try:
        yield {run: embedded_pg.dsn_for(name) for run, name in names.items()}
    finally:
        for name in names.values():
            embedded_pg.drop_database(name)


@pytest.mark.timeout(900)
async def test_live_replay_and_a_killed_run_produce_exactly_the_constructed_sla_events(
    fresh_topics: Settings, databases: dict[str, str], tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    history = build(N_LEADS, today - timedelta(days=150), today - timedelta(days=60))
    expected = history.expected_ids()
    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text(history.sla_yaml())
    # Daily ticks at 23:00 UTC, then one at the end that passes every remaining deadline.
    first = history.events[0].time.date()
    ticks = [datetime.combine(first + timedelta(days=i), datetime.min.time(), UTC)
             + timedelta(hours=23) for i in range(130)]  # fmt: skip
    ticks = [t for t in ticks if t < datetime.now(UTC) - timedelta(days=1)]
    ticks.append(datetime.now(UTC) - timedelta(minutes=1))

    runs = {
        run: fresh_topics.model_copy(update={
            "database_url": databases[run], "processor_id": f"sla-{run}",
            "derived_topic": f"{fresh_topics.derived_topic}.{run}", "sla_file": sla_file,
        })
        for run in databases
    }  # fmt: skip
    await ensure_topics(
        fresh_topics.kafka_bootstrap, {s.derived_topic: s.partitions for s in runs.values()}
    )
    # The test's ticks stand in for the processors' own, so every run sees the same log.
    quiet = {"tick_interval_seconds": 0.0}
    started = time.monotonic()
    items = log_records(fresh_topics, history, ticks)
    total = len(items)
    crashy = ProcessorHandle(runs["crashy"], tmp_path, batch_max_events=500, **quiet)
    replay = ProcessorHandle(runs["replay"], tmp_path, **quiet)
    with processor(runs["live"], tmp_path, **quiet) as live:
        crashy.start()
        first_chunk, go_on = asyncio.Event(), asyncio.Event()
        upstream = asyncio.create_task(
            publish_in_chunks(fresh_topics, items, 20, 1.0, first_chunk, go_on)
        )
        try:
            await first_chunk.wait()
            # Live: the processor applies records while the rest of the log does not exist.
            await wait_until(
                lambda: applied(databases["live"], "sla-live"), lambda n: n > 0,
                seconds=60, what="the live run to start", watch=live,
            )  # fmt: skip
            assert not upstream.done(), "the history must still be being published"
            go_on.set()
            await wait_until(
                lambda: applied(databases["crashy"], "sla-crashy"), lambda n: n > total // 4,
                seconds=240, what="a quarter of the log", watch=crashy, interval=0.05,
            )  # fmt: skip
            crashy.kill()
            killed_at = await applied(databases["crashy"], "sla-crashy")
            assert killed_at < total, "the kill must land mid-stream"
            crashy.start()
            await upstream
            published = time.monotonic()
            replay.start()  # everything is in the log now: the replay reads it from offset 0
            for run, handle in (("live", live), ("crashy", crashy), ("replay", replay)):
                await wait_until(
                    lambda run=run: applied(databases[run], f"sla-{run}"),  # type: ignore[misc]
                    lambda n: n == total, seconds=400, what=f"{run} to apply the log",
                    watch=handle,
                )  # fmt: skip
            done = time.monotonic()
        finally:
            upstream.cancel()
            crashy.stop()
            replay.stop()
    print(
        f"\n{total} records ({len(expected)} expected sla events): published live in"
        f" {published - started:.1f}s, all three runs done after {done - started:.1f}s;"
        f" crashy killed at record {killed_at}"
    )

    produced = {
        run: await read_topic(s.kafka_bootstrap, s.derived_topic) for run, s in runs.items()
    }
    for run, records in produced.items():
        ids = {i for i, _ in records}
        assert len(ids - expected) == 0, (run, sorted(ids - expected)[:10])
        assert len(expected - ids) == 0, (run, sorted(expected - ids)[:10])
    assert len(produced["live"]) == len(expected), "a clean run produces each event once"
    # Redelivered duplicates after the kill are byte-identical copies.
    seen: dict[str, bytes] = {}
    for event_id, value in produced["crashy"] + produced["live"] + produced["replay"]:
        assert seen.setdefault(event_id, value) == value, event_id

    tables = {run: await timer_table(dsn) for run, dsn in databases.items()}
    assert tables["live"] == tables["crashy"] == tables["replay"]
    assert len(tables["live"]) == len({(k[0], k[1]) for x in history.leads for k in x.expected})

    # A lead touched after its deadline: breached first, then met with the real lateness.
    late = next(x for x in history.leads if x.scenario == "breach_then_met")
    met = next(
        orjson.loads(v) for i, v in produced["live"]
        if i.startswith(f"sla/{late.lead_id}/mql_first_touch/") and i.endswith("/met")
    )  # fmt: skip
    assert met["data"]["lateness_seconds"] == 90 * 60
    assert met["data"]["delay_side"] == "system", "nobody was assigned"
    order = [
        i.rsplit("/", 1)[1]
        for i, _ in produced["live"]
        if i.startswith(f"sla/{late.lead_id}/mql_first")
    ]
    assert order == ["started", "warning", "breached", "escalated-1", "met"], "in the log's order"

    await check_volume(databases["live"], history, runs["live"])


async def check_volume(dsn: str, history: History, settings: Settings) -> None:
    """The marketing-side volume per month and team equals an independent count."""
    import asyncpg

    from events.funnel import load_funnel
    from events.sla_config import load_sla
    from services.store.sla_reader import PostgresSlaReader

    config = load_sla(load_funnel(), settings.sla_file)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        reader = PostgresSlaReader(pool, config)
        summary = await reader.summary(
            datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
        )
    finally:
        await pool.close()
    got = {(v.month, v.team): (v.mqls, v.active_reps) for v in summary.volume}
    assert got == history.volume()
    for v in summary.volume:
        assert v.target == 10 * v.active_reps
        assert v.met == (v.mqls >= v.target if v.active_reps else None)
    first_touch = {p.team: p for p in summary.policies if p.policy == "mql_first_touch"}
    n = len(history.leads)
    # Per 10 leads: 2 breach (never touched, touched late), 6 meet, 2 cancel (withdrawn, merged).
    assert (first_touch["all"].breached, first_touch["all"].met) == (n // 5, 6 * n // 10)
    assert first_touch["all"].cancelled == n // 5


async def test_in_live_mode_the_processors_own_ticks_fire_a_breach_on_a_quiet_partition(
    fresh_topics: Settings, tmp_path: Path
) -> None:
    from tests.integration.helpers import publish
    from tests.unit.factories import created

    sla_file = tmp_path / "sla.yaml"
    sla_file.write_text(
        "version: 1\npolicies:\n  first_touch: {start_stage: mql, stop: first_sales_action,"
        " limit: 1h, warning: 15m}\n"
    )
    s = fresh_topics.model_copy(update={"sla_file": sla_file})
    lead = "L-quiet"
    await publish(
        s.kafka_bootstrap,
        s.events_topic,
        [created(lead, datetime.now(UTC) - timedelta(hours=2), "mql")],
    )
    with processor(s, tmp_path, tick_interval_seconds=0.5, tick_delay_seconds=0.0) as proc:
        await wait_until(
            lambda: scalar(s.database_url, "SELECT status FROM sla_timer WHERE lead_id = $1", lead),
            lambda status: status == "breached", seconds=60, what="the breach", watch=proc,
        )  # fmt: skip
    ids = {i for i, _ in await read_topic(s.kafka_bootstrap, s.derived_topic)}
    assert any(i.endswith("/breached") for i in ids), ids
    ticks = await scalar(s.database_url, "SELECT count(*) FROM event_archive")
    assert ticks == 1, "ticks advance stream time but are never archived as events"


async def test_simulator_ticks_never_claim_a_time_before_an_event_still_to_come(
    fresh_topics: Settings,
) -> None:
    from events.codec import decode
    from events.tick import Tick, decode_tick, is_tick
    from services.simulator.run import run_simulator

    s = fresh_topics
    await run_simulator(
        s.kafka_bootstrap, s.events_topic, rate=3000.0, speedup=200_000.0, seed=5,
        backfill=timedelta(days=1), max_events=1500, leads_per_hour=120.0, tick_every=0.02,
    )  # fmt: skip
    consumer = AIOKafkaConsumer(bootstrap_servers=s.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(s.events_topic, p) for p in range(s.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
    finally:
        await consumer.stop()
    ticks = 0
    for p in range(s.partitions):
        claimed = None  # the latest tick time on this partition so far
        for r in sorted((r for r in records if r.partition == p), key=lambda r: r.offset):
            if is_tick(list(r.headers)):
                tick = decode_tick(r.value or b"")
                assert isinstance(tick, Tick), tick
                claimed, ticks = tick.time, ticks + 1
            else:
                event = decode(r.value or b"")
                assert claimed is None or event.time > claimed, "an event after its watermark"
    assert ticks >= s.partitions
