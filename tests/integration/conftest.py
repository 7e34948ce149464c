"""Shared fixtures for integration tests: one real Tansu broker and one real PostgreSQL per
session, with a fresh database and fresh topics per test.

Every test under ``tests/integration`` gets the ``integration`` marker automatically.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.embedded.postgres import EmbeddedPostgres
from services.embedded.procs import free_port
from services.embedded.tansu import TansuBroker
from services.embedded.topics import delete_topics, ensure_topics, leadledger_topics
from services.settings import Settings

_HERE = Path(__file__).parent
#: Partition count of the per-test topics (matches the production default).
TEST_PARTITIONS = 4


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected below this directory as ``integration``."""
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


def unique_suffix() -> str:
    """A short random suffix for per-test names (databases, topics)."""
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """One in-memory Tansu broker on a free port for the whole session."""
    with TansuBroker(tmp_path_factory.mktemp("tansu"), port=free_port()) as broker:
        yield broker


@pytest.fixture(scope="session")
def embedded_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One PostgreSQL server on a free port for the whole session.

    The cluster (about 50 MB) is deleted at the end; its log stays beside it for pytest's
    usual tmp-dir retention.
    """
    base = tmp_path_factory.mktemp("postgres")
    with EmbeddedPostgres(base / "data", free_port(), log_path=base / "postgres.log") as server:
        yield server
    shutil.rmtree(base / "data")


@pytest.fixture
def fresh_dsn(embedded_pg: EmbeddedPostgres) -> Iterator[str]:
    """DSN of a new, empty database for this test; dropped (with its sessions) afterwards."""
    name = f"test_{unique_suffix()}"
    embedded_pg.create_database(name)
    try:
        yield embedded_pg.dsn_for(name)
    finally:
        embedded_pg.drop_database(name)


@pytest.fixture
async def fresh_topics(
    tansu: TansuBroker, fresh_dsn: str, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings pointing at the session broker and a fresh database, with per-test topics.

    The events, rejected and derived topics carry a unique suffix and already exist with
    ``TEST_PARTITIONS`` partitions; they are deleted afterwards so the in-memory broker
    does not grow over a long session.
    """
    suffix = unique_suffix()
    settings = Settings(
        kafka_bootstrap=tansu.bootstrap,
        database_url=fresh_dsn,
        events_topic=f"leadledger.events.{suffix}",
        rejected_topic=f"leadledger.rejected.{suffix}",
        derived_topic=f"leadledger.derived.{suffix}",
        partitions=TEST_PARTITIONS,
        data_dir=tmp_path / "data",
    )
    topics = leadledger_topics(settings)
    await ensure_topics(settings.kafka_bootstrap, topics)
    yield settings
    await delete_topics(settings.kafka_bootstrap, list(topics))
