"""Derived SLA events: what the processor publishes on the derived-events topic.

They are not inputs (the ingest registry does not know them), but they use the same
CloudEvents envelope: ``source`` is ``leadledger/processor``, ``subject`` the lead id (also
the Kafka key), ``time`` the event time at which the fact became true (the deadline for a
breach, the stopping event's time for met and cancelled), and ``id`` is deterministic, so
consumers dedupe redeliveries and replays by id.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from events.catalog import EventData
from events.registry import Registry

SOURCE = "leadledger/processor"


class SlaEventData(EventData):
    """What every ``sla.*`` event carries."""

    policy: str
    lead_id: str
    cycle: str = Field(description="id of the event that started this timer")
    # Defaults, because the codec leaves None out of the JSON.
    owner_id: str | None = Field(default=None, description="owner at the time of this event")
    team: str | None = None
    started_at: AwareDatetime
    warn_at: AwareDatetime
    deadline: AwareDatetime
    limit_seconds: float = Field(description="the limit, in the policy clock's counted time")
    elapsed_seconds: float = Field(
        description="counted (business) time from the start to this event's time"
    )
    delay_side: Literal["system", "human"] = Field(
        description="system: no owner assigned yet (routing); human: assigned, untouched"
    )


class SlaStarted(SlaEventData):
    """A timer started: the lead entered the policy's start stage."""

    TYPE: ClassVar[str] = "sla.started"
    VERSION: ClassVar[int] = 1


class SlaWarning(SlaEventData):
    """The warning threshold passed while the timer was running."""

    TYPE: ClassVar[str] = "sla.warning"
    VERSION: ClassVar[int] = 1


class SlaBreached(SlaEventData):
    """The limit passed while the timer was running. The timer keeps running."""

    TYPE: ClassVar[str] = "sla.breached"
    VERSION: ClassVar[int] = 1


class SlaEscalated(SlaEventData):
    """An escalation step after the limit passed while the timer was still running."""

    TYPE: ClassVar[str] = "sla.escalated"
    VERSION: ClassVar[int] = 1

    level: int = Field(ge=1, description="1 for the first escalation step")
    escalate_to: str


class SlaMet(SlaEventData):
    """The stop condition happened. ``lateness_seconds`` > 0 means it came after the limit."""

    TYPE: ClassVar[str] = "sla.met"
    VERSION: ClassVar[int] = 1

    stopped_at: datetime
    stop_reason: str = Field(description="contacted, accepted, rejected or progressed")
    stop_event_id: str | None = None
    lateness_seconds: float = Field(description="elapsed minus limit; negative when on time")


class SlaCancelled(SlaEventData):
    """The timer ended without its stop condition (disqualified, lost, merged, withdrawn)."""

    TYPE: ClassVar[str] = "sla.cancelled"
    VERSION: ClassVar[int] = 1

    stopped_at: datetime
    stop_reason: str
    stop_event_id: str | None = None
    lateness_seconds: float


SLA_EVENTS: tuple[type[SlaEventData], ...] = (
    SlaStarted,
    SlaWarning,
    SlaBreached,
    SlaEscalated,
    SlaMet,
    SlaCancelled,
)

#: For consumers of the derived topic: ``decode(raw, DERIVED_REGISTRY)``.
DERIVED_REGISTRY = Registry(SLA_EVENTS)
