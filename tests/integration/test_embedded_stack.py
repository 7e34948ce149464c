"""The embedded infrastructure itself: a real Tansu broker and a real PostgreSQL server."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.embedded.postgres import EmbeddedPostgres
from services.embedded.procs import (
    ProcessStartError,
    free_port,
    pid_is_alive,
    run_as_kwargs,
    stop_process,
    wait_for_port,
)
from services.embedded.tansu import TansuBroker
from services.embedded.topics import (
    TopicPartitionMismatch,
    ensure_topics,
    leadledger_topics,
)
from services.settings import Settings


def _children_of(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (by PID from /proc, never by process name)."""
    children: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            children.add(int(entry.name))
    return children


@pytest.fixture
def pg_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir for a test's own PostgreSQL cluster, deleted afterwards (it is ~50 MB)."""
    data_dir = tmp_path / "pgdata"
    yield data_dir
    if data_dir.exists():
        shutil.rmtree(data_dir)


async def _partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}


async def test_broker_accepts_produce_and_consume_with_aiokafka(fresh_topics: Settings) -> None:
    topic = fresh_topics.events_topic
    producer = AIOKafkaProducer(
        bootstrap_servers=fresh_topics.kafka_bootstrap, enable_idempotence=False
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b'{"hello": "tansu"}', key=b"lead-1")
    finally:
        await producer.stop()

    # No group: assignment avoids Tansu's slow group join.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=fresh_topics.kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, sent.partition)])
        batch = await consumer.getmany(timeout_ms=5000)
    finally:
        await consumer.stop()
    records = [r for rs in batch.values() for r in rs]
    assert [(r.key, r.value, r.offset) for r in records] == [
        (b"lead-1", b'{"hello": "tansu"}', sent.offset)
    ]


async def test_created_topics_have_the_requested_partition_count(fresh_topics: Settings) -> None:
    topics = leadledger_topics(fresh_topics)
    assert len(topics) == 3
    counts = await _partition_counts(fresh_topics.kafka_bootstrap, list(topics))
    assert fresh_topics.partitions == 4
    assert counts == dict.fromkeys(topics, 4)


async def test_ensure_topics_is_idempotent_and_rejects_a_partition_mismatch(
    tansu: TansuBroker,
) -> None:
    name = f"ensure.{uuid.uuid4().hex[:12]}"
    await ensure_topics(tansu.bootstrap, {name: 3})
    await ensure_topics(tansu.bootstrap, {name: 3})
    assert await _partition_counts(tansu.bootstrap, [name]) == {name: 3}

    with pytest.raises(TopicPartitionMismatch, match=rf"'{name}' has 3 partitions, 5 requested"):
        await ensure_topics(tansu.bootstrap, {name: 5})


def test_leadledger_topics_give_rejected_and_derived_the_events_partition_count() -> None:
    settings = Settings(
        events_topic="e", rejected_topic="r", derived_topic="d", partitions=7, data_dir=Path("x")
    )
    assert leadledger_topics(settings) == {"e": 7, "r": 7, "d": 7}


def test_fresh_topics_settings_point_at_the_session_broker_and_database(
    fresh_topics: Settings, tansu: TansuBroker, embedded_pg: EmbeddedPostgres
) -> None:
    assert fresh_topics.kafka_bootstrap == tansu.bootstrap
    assert fresh_topics.database_url.startswith(
        f"postgresql://postgres@127.0.0.1:{embedded_pg.port}/"
    )
    names = {fresh_topics.events_topic, fresh_topics.rejected_topic, fresh_topics.derived_topic}
    assert len(names) == 3


async def test_fresh_dsn_is_an_empty_database_of_its_own(
    fresh_dsn: str, embedded_pg: EmbeddedPostgres
) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        database = await conn.fetchval("SELECT current_database()")
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    assert database != "leadledger"
    assert fresh_dsn == embedded_pg.dsn_for(database)
    assert tables == 0


async def test_session_postgres_has_the_leadledger_database(embedded_pg: EmbeddedPostgres) -> None:
    assert embedded_pg.dsn.endswith(f":{embedded_pg.port}/leadledger")
    conn = await asyncpg.connect(embedded_pg.dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == "leadledger"
    finally:
        await conn.close()


async def test_postgres_restart_on_the_same_data_dir_keeps_the_data(pg_data_dir: Path) -> None:
    data_dir = pg_data_dir
    with EmbeddedPostgres(data_dir, free_port()) as server:
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            await conn.execute("INSERT INTO kept VALUES (1, 'survives a restart')")
        finally:
            await conn.close()
        postmaster = server.pid
        workers = _children_of(postmaster)
    assert workers  # the postmaster had children (checkpointer, walwriter, ...)
    assert not pid_is_alive(postmaster)
    assert not any(pid_is_alive(pid) for pid in workers)

    # Another port on purpose: the cluster, not the address, carries the data.
    with EmbeddedPostgres(data_dir, free_port()) as again:
        conn = await asyncpg.connect(again.dsn)
        try:
            assert await conn.fetchval("SELECT note FROM kept WHERE id = 1") == "survives a restart"
        finally:
            await conn.close()


def test_postgres_starts_over_a_stale_postmaster_pid_whose_pid_is_now_another_process(
    pg_data_dir: Path,
) -> None:
    data_dir = pg_data_dir
    server = EmbeddedPostgres(data_dir, free_port())
    server.start()
    pid_file_text = (data_dir / "postmaster.pid").read_text()
    server.stop()
    # A killed run leaves postmaster.pid behind, and its PID gets reused (or lingers as a
    # zombie where nobody reaps orphans, as in this sandbox). If that process belongs to the
    # server's user, postgres alone refuses: 'lock file "postmaster.pid" already exists'.
    server_user = pwd.getpwnam("embedded_postgres") if os.geteuid() == 0 else None
    stranger = subprocess.Popen(["sleep", "60"], **run_as_kwargs(server_user))
    try:
        lines = pid_file_text.splitlines(keepends=True)
        lines[0] = f"{stranger.pid}\n"
        (data_dir / "postmaster.pid").write_text("".join(lines))
        with EmbeddedPostgres(data_dir, free_port()) as again:
            assert again.running
    finally:
        stop_process(stranger)


def test_postgres_refuses_a_data_dir_a_live_server_is_using(embedded_pg: EmbeddedPostgres) -> None:
    intruder = EmbeddedPostgres(embedded_pg.data_dir, free_port())
    with pytest.raises(
        RuntimeError, match=rf"postgres \(pid {embedded_pg.pid}\) is already running"
    ):
        intruder.start()
    assert embedded_pg.running


def test_stopping_the_broker_leaves_no_child_process(tmp_path: Path) -> None:
    broker = TansuBroker(tmp_path)
    broker.start()
    pid = broker.pid
    assert pid_is_alive(pid)
    broker.stop()
    assert not pid_is_alive(pid)
    assert not Path(f"/proc/{pid}").exists()
    broker.stop()  # idempotent


def test_a_broker_whose_port_is_taken_fails_with_its_log_tail(
    tansu: TansuBroker, tmp_path: Path
) -> None:
    # A plain connect would reach the session broker; the check must see this child's exit.
    with pytest.raises(ProcessStartError, match="Address in use"):
        TansuBroker(tmp_path, port=tansu.port).start()


def test_waiting_for_a_child_that_dies_reports_its_exit_code_and_log(tmp_path: Path) -> None:
    log_path = tmp_path / "child.log"
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(3)"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        with pytest.raises(ProcessStartError, match=r"(?s)exited with code 3.*boom: no config"):
            wait_for_port("127.0.0.1", free_port(), timeout=10, proc=child, log_path=log_path)
    finally:
        stop_process(child)


def test_stop_process_escalates_to_sigkill_when_the_child_ignores_the_signal() -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline() == b"ready\n"
        assert stop_process(child, timeout=0.5) == -signal.SIGKILL
    assert not pid_is_alive(child.pid)
