"""The CloudEvents 1.0 aligned envelope that wraps every lead event.

``time`` is the business time of the fact (when the rep made the call), not when leadledger
saw it; all projections order by it. ``subject`` is the lead id and is also the Kafka key.
``schemaversion`` is a CloudEvents extension attribute naming the payload version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SerializeAsAny, field_validator
from pydantic_core import TzInfo

from events.catalog import EventData

SPECVERSION: Literal["1.0"] = "1.0"

_combine = datetime.combine


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC: one canonical zone keeps ordering, hashing and the archive
    byte-stable. The codec's accepted path applies it after validation (see codec)."""
    tz = value.tzinfo
    # pydantic-core parses ``Z`` and ``+00:00`` into its own fixed-offset ``TzInfo``; for a
    # zero offset the instant is the wall time itself, and re-attaching UTC to it costs half
    # of ``astimezone`` (which calls ``utcoffset`` through the datetime, then ``fromutc``).
    # Its ``utcoffset`` ignores the argument; any other zone, or a ``fold`` (which
    # ``astimezone`` resets), takes ``astimezone``.
    if type(tz) is TzInfo and not tz.utcoffset(None) and not value.fold:
        return _combine(value, value.time(), UTC)
    return value.astimezone(UTC)


def dataschema_uri(type_: str, version: int) -> str:
    """The ``dataschema`` URI of a payload version; schema export names its files alike."""
    return f"urn:leadledger:schema:{type_}:v{version}"


class EnvelopeHeader(BaseModel):
    """The envelope attributes without ``data``: validated first, so errors name the right field."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    specversion: Literal["1.0"] = SPECVERSION
    id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=128, description="the lead id")
    time: AwareDatetime = Field(description="business event time, RFC 3339 with offset")
    schemaversion: int = Field(ge=1, le=1000)
    dataschema: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"

    @field_validator("time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return to_utc(value)


class Event(EnvelopeHeader):
    """A decoded, upcast and validated event: the envelope plus its typed payload."""

    data: SerializeAsAny[EventData]

    @property
    def key(self) -> bytes:
        """The Kafka key: per-lead ordering comes from partitioning by the lead id."""
        return self.subject.encode()


def make_event(data: EventData, *, id: str, subject: str, source: str, time: datetime) -> Event:
    """Build an event of the payload's current type and version (simulator, tests, SDKs)."""
    return Event(
        id=id,
        source=source,
        type=data.TYPE,
        subject=subject,
        time=time,
        schemaversion=data.VERSION,
        dataschema=dataschema_uri(data.TYPE, data.VERSION),
        data=data,
    )
