"""Replay, verify, as-of, repartitioning and archive restore on real Tansu and PostgreSQL.

One seeded history of 20,000+ simulated leads (with daily ticks and a few bad records) is
processed live once per module, by a real processor, in two halves split at an as-of instant;
the live read models after the first half are kept in schema ``asof_live``. Every test then
rebuilds the read models from that one history and compares digests.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from events.attribution_config import load_attribution
from events.codec import encode
from events.funnel import load_funnel
from events.sla_config import load_sla
from projections.sla import compile_rules
from services.embedded.postgres import EmbeddedPostgres
from services.embedded.procs import free_port
from services.embedded.tansu import TansuBroker
from services.embedded.topics import ensure_topics, leadledger_topics
from services.replay.digest import overall_digest
from services.replay.engine import ReplayPlan, replay
from services.replay.parallel import replay_parallel
from services.replay.projections import PROJECTIONS, VERIFIED
from services.replay.sources import ArchiveSource, KafkaSource
from services.replay.tables import digest_schema
from services.settings import Settings
from tests.integration import replay_history
from tests.integration.conftest import unique_suffix
from tests.integration.helpers import processor, scalar, settings_env, wait_until
from tests.unit.factories import created, moved

pytestmark = pytest.mark.timeout(900)


@dataclass(slots=True)
class Lived:
    settings: Settings
    broker: TansuBroker
    history: replay_history.History
    tmp: Path
    live_digest: str
    records: int


async def applied(dsn: str, consumer: str) -> int:
    return int(await scalar(dsn, "SELECT COALESCE(sum(kafka_offset + 1), 0)"
                                 " FROM projection_checkpoint WHERE consumer = $1",
                            consumer) or 0)  # fmt: skip


async def publish_items(bootstrap: str, topic: str, items: list[replay_history.Item]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False,
                                linger_ms=5, max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    try:
        for start in range(0, len(items), 20_000):
            await asyncio.gather(*[
                await producer.send(topic, value, key=key, partition=p, headers=h)
                for key, value, p, h in items[start : start + 20_000]
            ])  # fmt: skip
    finally:
        await producer.stop()


async def digest_of(dsn: str, schema: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return overall_digest(await digest_schema(conn, schema, VERIFIED))
    finally:
        await conn.close()


async def assert_same(dsn: str, expected: str, schema: str) -> None:
    """The verified read models of ``schema`` equal those of ``expected``; else show how not."""
    from rich.console import Console

    from services.replay.render import print_diffs
    from services.replay.tables import compare_schemas

    conn = await asyncpg.connect(dsn)
    try:
        left, right, diffs = await compare_schemas(conn, expected, schema, VERIFIED, 5)
    finally:
        await conn.close()
    if overall_digest(left) != overall_digest(right):
        console = Console(width=200, record=True)
        print_diffs(console, diffs, expected, schema)
        raise AssertionError(f"{schema} differs from {expected}:\n{console.export_text()}")


async def snapshot(dsn: str, schema: str) -> None:
    """Copy the live read models as they are now into ``schema``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        for p in VERIFIED:
            await conn.execute(f"CREATE TABLE {schema}.{p.table} AS SELECT * FROM public.{p.table}")
    finally:
        await conn.close()


def plan(s: Settings, schema: str, **kw: object) -> ReplayPlan:
    funnel = load_funnel()
    # The key the processor child got (tests.integration.helpers.settings_env).
    kw.setdefault("email_hmac_key", settings_env(s)["LEADLEDGER_EMAIL_HMAC_KEY"].encode())
    return ReplayPlan(dsn=s.database_url, schema=schema, topic=kw.pop("topic", s.events_topic),  # type: ignore[arg-type]
                      funnel=funnel, sla_rules=compile_rules(load_sla(funnel), funnel),
                      **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture(scope="module")
async def lived(
    embedded_pg: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Lived]:
    tmp = tmp_path_factory.mktemp("replay")
    name = f"test_{unique_suffix()}"
    embedded_pg.create_database(name)
    broker = TansuBroker(tmp, port=free_port())
    broker.start()
    lived: Lived | None = None
    try:
        suffix = unique_suffix()
        s = Settings(
            kafka_bootstrap=broker.bootstrap, database_url=embedded_pg.dsn_for(name),
            events_topic=f"leadledger.events.{suffix}",
            rejected_topic=f"leadledger.rejected.{suffix}",
            derived_topic=f"leadledger.derived.{suffix}", partitions=4, data_dir=tmp / "data",
            processor_id="replay-live", tick_interval_seconds=0.0,
        )  # fmt: skip
        await ensure_topics(s.kafka_bootstrap, leadledger_topics(s))
        history = replay_history.build(datetime.now(UTC), s.partitions)
        with processor(s, tmp, batch_max_events=5000) as live:
            await publish_items(s.kafka_bootstrap, s.events_topic, history.first)
            await wait_until(lambda: applied(s.database_url, "replay-live"),
                             lambda n: n == len(history.first), seconds=600,
                             what="the first half", watch=live, interval=1.0)  # fmt: skip
            await snapshot(s.database_url, "asof_live")
            await publish_items(s.kafka_bootstrap, s.events_topic, history.second)
            total = len(history.first) + len(history.second)
            await wait_until(lambda: applied(s.database_url, "replay-live"),
                             lambda n: n == total, seconds=600, what="the whole history",
                             watch=live, interval=1.0)  # fmt: skip
        leads = await scalar(s.database_url, "SELECT count(*) FROM lead_current")
        assert leads >= replay_history.N_LEADS
        assert await scalar(s.database_url, "SELECT count(*) FROM rejected_event") >= 3
        lived = Lived(s, broker, history, tmp, await digest_of(s.database_url, "public"), total)
        yield lived
    finally:
        # The restore test replaces the broker; stop whichever one runs now.
        (lived.broker if lived is not None else broker).stop()
        embedded_pg.drop_database(name)


def cli(lived: Lived, *args: str, **env: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        env=settings_env(lived.settings, **env), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


async def test_a_replay_from_kafka_with_verify_reports_the_live_digest(lived: Lived) -> None:
    done = cli(lived, "replay", "--source", "kafka", "--into", "r_kafka", "--verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"identical: digest {lived.live_digest}" in done.stdout, done.stdout
    assert f"replayed {lived.records:,} records" in done.stdout
    # Nothing was produced to the live derived topic by the replay.
    assert await digest_of(lived.settings.database_url, "r_kafka") == lived.live_digest
    # The write drops each table's indexes and builds them again after its COPY.
    live = await indexes(lived.settings.database_url, "public")
    rebuilt = await indexes(lived.settings.database_url, "r_kafka")
    assert rebuilt == live
    assert ("sla_timer", "sla_timer_pkey", "PRIMARY KEY (lead_id, policy, cycle_id)") in rebuilt


async def indexes(dsn: str, schema: str) -> set[tuple[str, str, str]]:
    """(table, name, definition without the schema) of every index and constraint."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1"
            " UNION ALL SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
            " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
            " WHERE n.nspname = $1",
            schema,
        )
    finally:
        await conn.close()
    return {(t.rpartition(".")[2], n, d.replace(f" {schema}.", " ")) for t, n, d in found}


async def test_verify_lists_a_differing_row_and_exits_non_zero(lived: Lived) -> None:
    s = lived.settings
    await snapshot(s.database_url, "r_tampered")  # the live tables, then one row changed
    conn = await asyncpg.connect(s.database_url)
    try:
        lead = await conn.fetchval("SELECT min(lead_id) FROM lead_current")
        await conn.execute("UPDATE r_tampered.lead_current SET owner_id = 'rep-nobody'"
                           " WHERE lead_id = $1", lead)  # fmt: skip
    finally:
        await conn.close()
    from services.cli_replay import _verify

    assert not await _verify(s.database_url, "r_tampered", 5)
    done = cli(lived, "diff", "r_tampered", "live", "--format", "json")
    assert done.returncode == 0, done.stderr
    import orjson

    body = orjson.loads(done.stdout)
    assert not body["equal"]
    leads = next(t for t in body["tables"] if t["table"] == "lead_current")
    assert leads["changed"] == 1
    assert leads["changes"][0]["key"] == {"lead_id": lead}
    assert leads["changes"][0]["columns"]["owner_id"]["r_tampered"] == "rep-nobody"
    assert all(t["changed"] + t["added"] + t["removed"] == 0
               for t in body["tables"] if t["table"] != "lead_current")  # fmt: skip
    table = cli(lived, "diff", "r_tampered", "live")
    assert "lead_current: 1 changed" in table.stdout, table.stdout
    assert "rep-nobody" in table.stdout


async def test_another_partition_count_and_batch_size_give_the_same_digest(lived: Lived) -> None:
    s = lived.settings
    # The same history, published in the same order into 3 partitions: leads keyed as Kafka
    # would, each tick to every new partition instead of every old one.
    topic = f"{s.events_topic}.p3"
    await ensure_topics(s.kafka_bootstrap, {topic: 3})
    items: list[replay_history.Item] = []
    for key, value, p, headers in lived.history.first + lived.history.second:
        if p is None:
            items.append((key, value, zlib.crc32(key or b"") % 3, headers))
        elif p == 0:
            items += [(None, value, q, headers) for q in range(3)]
    await publish_items(s.kafka_bootstrap, topic, items)
    await replay(plan(s, "r_p3", topic=topic), KafkaSource(s.kafka_bootstrap, topic, 777))
    await assert_same(s.database_url, "public", "r_p3")


async def test_as_of_equals_the_live_state_captured_at_that_moment(lived: Lived) -> None:
    s = lived.settings
    result = await replay(plan(s, "r_asof", as_of=lived.history.as_of),
                          KafkaSource(s.kafka_bootstrap, s.events_topic, 20_000))  # fmt: skip
    assert result.records == len(lived.history.first)
    expected = await digest_of(s.database_url, "asof_live")
    assert expected != lived.live_digest
    await assert_same(s.database_url, "asof_live", "r_asof")


async def test_a_replay_from_the_archive_reproduces_the_digest(lived: Lived) -> None:
    s = lived.settings
    source = ArchiveSource(s.database_url, s.events_topic, s.processor_id, 20_000)
    await replay(plan(s, "r_archive"), source)
    assert await digest_of(s.database_url, "r_archive") == lived.live_digest


async def test_after_a_broker_restart_archive_restore_and_replay_reproduce_the_digest(
    lived: Lived,
) -> None:
    s = lived.settings
    port = lived.broker.port
    lived.broker.stop()
    lived.broker = TansuBroker(lived.tmp / "restarted", port=port)
    (lived.tmp / "restarted").mkdir(exist_ok=True)
    lived.broker.start()  # in memory: an empty broker at the same address
    await ensure_topics(s.kafka_bootstrap, leadledger_topics(s))
    done = cli(lived, "archive", "restore")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every record is at its original offset" in done.stdout
    again = cli(lived, "archive", "restore")
    assert again.returncode == 2, again.stdout
    assert "already holds" in again.stdout
    # Every partition ends where the live processor's checkpoint says it does.
    from services.replay.restore import topic_size

    sizes = await topic_size(s.kafka_bootstrap, s.events_topic)
    conn = await asyncpg.connect(s.database_url)
    try:
        ckpts = {r["kafka_partition"]: r["kafka_offset"] + 1 for r in await conn.fetch(
            "SELECT kafka_partition, kafka_offset FROM projection_checkpoint WHERE consumer = $1",
            s.processor_id)}  # fmt: skip
    finally:
        await conn.close()
    assert sizes == ckpts
    await replay(plan(s, "r_restored"), KafkaSource(s.kafka_bootstrap, s.events_topic, 20_000))
    assert await digest_of(s.database_url, "r_restored") == lived.live_digest


async def test_a_dry_run_with_a_changed_funnel_and_model_shows_what_would_change(
    lived: Lived,
) -> None:
    from importlib import resources

    import orjson

    packaged = resources.files("events")
    funnel = lived.tmp / "funnel-reject.yaml"
    text = packaged.joinpath("funnel.yaml").read_text()
    assert "on_suppressed_handoff: flag" in text
    funnel.write_text(text.replace("on_suppressed_handoff: flag", "on_suppressed_handoff: reject"))
    models = lived.tmp / "attribution-w2.yaml"
    models.write_text(
        packaged.joinpath("attribution.yaml").read_text()
        + "  - name: w_shaped\n    version: 2\n    kind: positional\n"
        "    weights: {first: 0.50, lead_creation: 0.20, opportunity_creation: 0.20, rest: 0.10}\n"
    )
    done = cli(lived, "replay", "--source", "archive", "--funnel", str(funnel),
               "--attribution", str(models), "--into", "sandbox")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    diff = cli(lived, "diff", "sandbox", "live", "--format", "json")
    assert diff.returncode == 0, diff.stderr
    tables = {t["table"]: t for t in orjson.loads(diff.stdout)["tables"]}
    credit = tables["attribution_credit"]
    assert credit["changed"] > 0
    assert {c["key"]["model"] for c in credit["changes"]} == {"w_shaped"}
    assert credit["added"] == credit["removed"] == 0, "the same deals and touches, other shares"
    # Rejecting re-handoffs: the suppressed ones become rejections, and their leads change.
    suppressed = tables["handoff_suppression"]
    assert suppressed["rows"]["live"] > 0, "the simulated history has re-handoffs"
    assert suppressed["changed"] > 0
    assert tables["rejected_event"]["added"] > 0
    assert tables["lead_current"]["changed"] > 0


async def test_two_fold_processes_rebuild_every_table_as_one_process_does(lived: Lived) -> None:
    s = lived.settings
    models = load_attribution(None)
    one = await replay(plan(s, "r_one", attribution=models),
                       KafkaSource(s.kafka_bootstrap, s.events_topic, 20_000))  # fmt: skip
    source = KafkaSource(s.kafka_bootstrap, s.events_topic, 20_000)
    two = await replay_parallel(plan(s, "r_two", attribution=models), source, 2)
    assert (two.workers, two.fallback) == (2, None)
    assert (two.records, two.ticks, two.counts) == (one.records, one.ticks, one.counts)
    assert two.counts.credits > 0
    conn = await asyncpg.connect(s.database_url)
    try:
        # Every table, the credit too (which --verify leaves out).
        assert await digest_schema(conn, "r_two", PROJECTIONS) == await digest_schema(
            conn, "r_one", PROJECTIONS
        )
        # Duplicate pairs whose leads sit on partitions of different workers (0, 2 and 1, 3)
        # exist, and so were put together by the parent.
        across = await conn.fetchval(
            "SELECT count(*) FROM r_two.lead_duplicate d"
            " JOIN public.event_archive a ON a.lead_id = d.original_id"
            " JOIN public.event_archive b ON b.lead_id = d.duplicate_id"
            " WHERE a.kafka_partition % 2 <> b.kafka_partition % 2"
        )
    finally:
        await conn.close()
    assert across > 0
    archive = ArchiveSource(s.database_url, s.events_topic, s.processor_id, 20_000)
    again = await replay_parallel(plan(s, "r_two_archive"), archive, 2)
    assert again.workers == 2
    assert await digest_of(s.database_url, "r_two_archive") == lived.live_digest
    # Each worker cuts its own partitions at the as-of time.
    source = KafkaSource(s.kafka_bootstrap, s.events_topic, 20_000)
    cut = await replay_parallel(plan(s, "r_two_asof", as_of=lived.history.as_of), source, 2)
    assert (cut.workers, cut.records) == (2, len(lived.history.first))
    await assert_same(s.database_url, "asof_live", "r_two_asof")


async def test_a_lead_on_two_partitions_sends_the_replay_back_to_one_process(
    lived: Lived,
) -> None:
    s = lived.settings
    topic = f"{s.events_topic}.split"
    await ensure_topics(s.kafka_bootstrap, {topic: 2})
    t0 = lived.history.as_of
    items: list[replay_history.Item] = [
        (b"SP-1", encode(created("SP-1", t0, "lead", id="sp-1a")), 0, None),
        (b"SP-2", encode(created("SP-2", t0, "lead", id="sp-2a")), 1, None),
        # A producer that keyed the lead's next event differently: another partition.
        (b"SP-1", encode(moved("SP-1", t0, "lead", "mql", id="sp-1b")), 1, None),
    ]
    await publish_items(s.kafka_bootstrap, topic, items)
    bar: list[tuple[int, int | None]] = []
    two = await replay_parallel(plan(s, "r_split_two", topic=topic),
                                KafkaSource(s.kafka_bootstrap, topic, 100), 2,
                                lambda n, total: bar.append((n, total)))  # fmt: skip
    assert two.workers == 1
    assert two.fallback == "lead 'SP-1' has records on partitions of two workers"
    # The bar went back to zero for the second fold: it ends at the records read, not twice.
    assert any(n < 0 for n, total in bar if total is None)
    assert sum(n for n, total in bar if total is None) == two.records == len(items)
    await replay(plan(s, "r_split_one", topic=topic), KafkaSource(s.kafka_bootstrap, topic, 100))
    await assert_same(s.database_url, "r_split_one", "r_split_two")
    sql = "SELECT current_stage FROM r_split_two.lead_current WHERE lead_id = 'SP-1'"
    stage = await scalar(s.database_url, sql)
    assert stage == "mql"
