"""Runtime settings, read from ``LEADLEDGER_*`` environment variables or a ``.env`` file.

Every address has an embedded default; point the same names at a real Kafka and PostgreSQL
for production (see ``deploy/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All process settings; one instance is built per process from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="LEADLEDGER_", env_file=".env", extra="ignore", frozen=True
    )

    #: ``leadledger up`` starts Tansu and PostgreSQL itself at the addresses below; set it to
    #: false to run only the processor and the API against an existing Kafka and PostgreSQL.
    embedded: bool = True
    kafka_bootstrap: str = "127.0.0.1:19092"
    database_url: str = "postgresql://postgres@127.0.0.1:15432/leadledger"
    events_topic: str = "leadledger.events"
    rejected_topic: str = "leadledger.rejected"
    derived_topic: str = "leadledger.derived"
    partitions: int = Field(default=4, ge=1)
    data_dir: Path = Path(".leadledger")
    funnel_file: Path | None = None
    #: SLA policies (events/sla.yaml format); the packaged default when unset.
    sla_file: Path | None = None
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    processor_web_port: int = 6066
    #: 0.0.0.0 in a container, so Prometheus can scrape the processor from another host.
    processor_web_host: str = "127.0.0.1"
    processor_id: str = "leadledger-processor"
    #: bearer token -> the CloudEvents ``source`` that token may publish for.
    api_tokens: dict[str, str] = Field(
        default_factory=lambda: {"dev-token-crm": "crm", "dev-token-web": "web-forms"}
    )
    max_body_bytes: int = 1_048_576
    max_batch_events: int = 1000
    #: events whose time is further ahead of their broker timestamp are rejected.
    max_future_skew_seconds: float = 300.0
    #: events older than the partition's stream time by more than this are rejected as too late.
    allowed_lateness_seconds: float = 30 * 86400.0
    #: Seconds between the processor's tick records to each of its partitions (0: none).
    #: Ticks move stream time on quiet partitions so SLA deadlines still fire.
    tick_interval_seconds: float = Field(default=5.0, ge=0)
    #: A tick claims stream time = wall clock minus this: how late upstream events may be
    #: before a quiet partition's timers are judged without them.
    tick_delay_seconds: float = Field(default=60.0, ge=0)
    #: Most records the processor fetches, and so applies in one PostgreSQL transaction.
    batch_max_events: int = Field(default=5000, ge=1)
    #: Fold the next batch while PostgreSQL commits the previous one (services/processor/
    #: overlap.py); off, each batch is committed before the next is read.
    overlap_commits: bool = True
    #: Tansu holds consumer-group joins for half the session timeout: keep it short locally.
    broker_session_timeout_seconds: float = 10.0
    broker_rebalance_timeout_seconds: float = 20.0
    #: Real Kafka: true (no duplicates from producer retries). Tansu fails InitProducerId.
    kafka_idempotent_producer: bool = False
    #: Passed to Faust. The read models are exactly-once in effect either way (offsets commit
    #: with the rows); exactly_once also makes Faust's own Kafka commits transactional. Real
    #: Kafka only: Tansu has no transactions.
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    log_level: str = "info"
    #: Key of the HMAC that replaces every email address before it is stored (duplicate
    #: detection compares these keys). The default is for local runs only: set your own in
    #: production, and keep it, since changing it makes old and new keys of one address differ.
    email_hmac_key: SecretStr = SecretStr("leadledger-local-dev-email-hmac-key")
