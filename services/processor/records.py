"""The processor's view of a Kafka record, independent of Faust or aiokafka types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final


# Read-only by type (``Final``, which mypy enforces) rather than ``frozen=True``: the live
# worker builds one Record per consumed event, and a frozen dataclass's ``__init__`` sets
# each field through ``object.__setattr__`` (~2.5 us for seven fields on this machine, a
# plain slots ``__init__`` ~0.4 us). Hashing stays field-based as it was when frozen, which
# is sound because nothing reassigns a field.
@dataclass(slots=True, unsafe_hash=True)
class Record:
    """One consumed record: coordinates, raw key and value, headers and broker timestamp."""

    topic: Final[str]
    partition: Final[int]
    offset: Final[int]
    key: Final[bytes | None]
    value: Final[bytes]
    timestamp_ms: Final[int]
    headers: Final[tuple[tuple[str, bytes], ...]] = ()

    @property
    def broker_time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Last applied offset of a partition and its stream time (largest applied event time)."""

    offset: int
    stream_time: datetime | None
