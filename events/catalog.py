"""The event catalog: one frozen, past-tense payload model per (type, schema version).

Payloads are the CloudEvents ``data`` member. Stage-changing events carry ``from_stage`` so
that whether a transition is allowed depends on the event alone, never on which other events
happened to arrive first: replay and live processing then reject exactly the same inputs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Field(min_length=1, max_length=128)


class EventData(BaseModel):
    """Base of every payload. ``TYPE`` and ``VERSION`` key the registry."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]


class LeadCreated(EventData):
    """A lead entered the system in its initial funnel stage.

    v2 adds ``email_key``. Upstream sends ``email``; the processor replaces it by its keyed
    HMAC (``projections.closed_loop.email``) before anything is stored, so the archive holds
    ``email_key`` and never the address (v1 is upcast unchanged: it has no key).
    """

    TYPE: ClassVar[str] = "lead.created"
    VERSION: ClassVar[int] = 2

    stage: str = Field(default="lead", description="initial funnel stage")
    email: str | None = Field(default=None, max_length=320)
    email_key: str | None = Field(
        default=None,
        pattern=r"^ek1:[0-9a-f]{64}$",
        description="HMAC-SHA256 of the normalized email, set by the processor",
    )
    company: str | None = Field(default=None, max_length=256)
    country: str | None = Field(default=None, max_length=64)
    lead_source: str | None = Field(default=None, max_length=128, description="e.g. web-form")


class LeadStageChanged(EventData):
    """The lead moved from one funnel stage to another (v2: explicit from/to names)."""

    TYPE: ClassVar[str] = "lead.stage_changed"
    VERSION: ClassVar[int] = 2

    from_stage: str = Field(min_length=1, max_length=64)
    to_stage: str = Field(min_length=1, max_length=64)
    changed_by: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=256)


class LeadAssigned(EventData):
    """The lead got an owner (by a router or a person)."""

    TYPE: ClassVar[str] = "lead.assigned"
    VERSION: ClassVar[int] = 1

    owner_id: str = Field(min_length=1, max_length=128)
    team: str = Field(min_length=1, max_length=64)
    assigned_by: str | None = Field(default=None, max_length=128)


class LeadContacted(EventData):
    """A sales activity happened: a call, an email or a meeting."""

    TYPE: ClassVar[str] = "lead.contacted"
    VERSION: ClassVar[int] = 1

    activity: Literal["call", "email", "meeting"]
    rep_id: str = Field(min_length=1, max_length=128)
    outcome: str | None = Field(default=None, max_length=64)


class LeadDisqualified(EventData):
    """Sales disqualified the lead, with a reason code from the funnel config."""

    TYPE: ClassVar[str] = "lead.disqualified"
    VERSION: ClassVar[int] = 1

    from_stage: str = Field(min_length=1, max_length=64)
    reason_code: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=1024)
    disqualified_by: str | None = Field(default=None, max_length=128)


class LeadRecycled(EventData):
    """The lead went back to marketing for nurturing, with a reason."""

    TYPE: ClassVar[str] = "lead.recycled"
    VERSION: ClassVar[int] = 1

    from_stage: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=256)
    recycled_by: str | None = Field(default=None, max_length=128)


class LeadMerged(EventData):
    """This lead (the subject) was merged into a surviving lead."""

    TYPE: ClassVar[str] = "lead.merged"
    VERSION: ClassVar[int] = 1

    survivor_id: str = Field(min_length=1, max_length=128)
    merged_by: str | None = Field(default=None, max_length=128)


class TouchpointRecorded(EventData):
    """A marketing touch: the lead interacted with a campaign."""

    TYPE: ClassVar[str] = "touchpoint.recorded"
    VERSION: ClassVar[int] = 1

    campaign_id: str = Field(min_length=1, max_length=128)
    channel: str = Field(min_length=1, max_length=64)
    touch_type: str = Field(min_length=1, max_length=64, description="e.g. form_fill, ad_click")


class DealCreated(EventData):
    """A deal (opportunity) was opened for the lead."""

    TYPE: ClassVar[str] = "deal.created"
    VERSION: ClassVar[int] = 1

    deal_id: str = Field(min_length=1, max_length=128)
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class DealWon(EventData):
    """The deal closed as won; ``amount`` is the final booked amount."""

    TYPE: ClassVar[str] = "deal.won"
    VERSION: ClassVar[int] = 1

    deal_id: str = Field(min_length=1, max_length=128)
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class DealLost(EventData):
    """The deal closed as lost, with a reason."""

    TYPE: ClassVar[str] = "deal.lost"
    VERSION: ClassVar[int] = 1

    deal_id: str = Field(min_length=1, max_length=128)
    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    reason: str | None = Field(default=None, max_length=256)


#: Every current payload model. The registry also knows older versions via upcasters.
CATALOG: tuple[type[EventData], ...] = (
    LeadCreated,
    LeadStageChanged,
    LeadAssigned,
    LeadContacted,
    LeadDisqualified,
    LeadRecycled,
    LeadMerged,
    TouchpointRecorded,
    DealCreated,
    DealWon,
    DealLost,
)
