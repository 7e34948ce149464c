"""Derived closed-loop events, published on the derived-events topic like the ``sla.*`` ones.

Same envelope: ``source`` is ``leadledger/processor``, ``subject`` the lead id (and Kafka
key), ``time`` the event time at which the fact became true, and a deterministic ``id``, so a
redelivery or a replay produces the same id and consumers dedupe by it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from events.catalog import EventData
from events.registry import Registry


class HandoffSuppressed(EventData):
    """A suppressed lead was handed over again (it re-entered a re-handoff stage)."""

    TYPE: ClassVar[str] = "handoff.suppressed"
    VERSION: ClassVar[int] = 1

    lead_id: str
    event_id: str = Field(description="the event that moved the lead back")
    event_source: str = Field(description="CloudEvents source of that event")
    to_stage: str
    action: Literal["flagged", "rejected"] = Field(
        description="flagged: the move was applied; rejected: it was dead-lettered"
    )
    suppressed_by: str = Field(description="id of the suppressing lead.disqualified")
    reason_code: str
    disqualified_at: datetime
    lead_source: str | None = None
    campaign_id: str | None = None
    channel: str | None = None


class LeadDuplicateDetected(EventData):
    """Two leads share a normalized email (compared by its keyed HMAC, never the address)."""

    TYPE: ClassVar[str] = "lead.duplicate_detected"
    VERSION: ClassVar[int] = 1

    lead_id: str = Field(description="the later lead: the duplicate")
    original_id: str = Field(description="the earlier lead with the same email key")
    email_key: str
    original_first_seen: datetime
    duplicate_first_seen: datetime


CLOSED_LOOP_EVENTS: tuple[type[EventData], ...] = (HandoffSuppressed, LeadDuplicateDetected)

#: For consumers of the derived topic: ``decode(raw, CLOSED_LOOP_REGISTRY)``.
CLOSED_LOOP_REGISTRY = Registry(CLOSED_LOOP_EVENTS)
