"""The processor's view of a Kafka record, independent of Faust or aiokafka types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed record: coordinates, raw key and value, headers and broker timestamp."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def broker_time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Last applied offset of a partition and its stream time (largest applied event time)."""

    offset: int
    stream_time: datetime | None
