"""One lead's known journey, with the figures a correct projection must produce."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from events.catalog import (
    DealCreated,
    DealWon,
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadStageChanged,
    TouchpointRecorded,
)
from events.envelope import Event, make_event

M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)

#: Seconds the journey below spends in each stage (the final stage, customer, stays open).
EXPECTED_SECONDS = {
    "lead": 10 * 60,
    "mql": 40 * 60,
    "sal": 70 * 60,
    "sql": 60 * 60,
    "opportunity": (6 * D - 3 * H).total_seconds(),
}
#: MQL at +10 min, assigned at +12 min, first call at +40 min.
HANDOFF_LATENCY = 30 * 60
SYSTEM_DELAY = 2 * 60
HUMAN_DELAY = 28 * 60


def full_journey(lead: str, t0: datetime, prefix: str | None = None) -> list[Event]:
    """created -> mql -> (assigned, called) -> sal -> sql -> opportunity -> customer."""
    prefix = prefix or lead
    steps: list[tuple[timedelta, EventData, str]] = [
        (0 * M, LeadCreated(stage="lead", email="ada@example.com"), "web-forms"),
        (1 * M, TouchpointRecorded(campaign_id="c-webinar", channel="webinar",
                                   touch_type="registration"), "web-forms"),
        (10 * M, LeadStageChanged(from_stage="lead", to_stage="mql"), "crm"),
        (12 * M, LeadAssigned(owner_id="rep-1", team="sdr-emea"), "crm"),
        (40 * M, LeadContacted(activity="call", rep_id="rep-1"), "crm"),
        (50 * M, LeadStageChanged(from_stage="mql", to_stage="sal"), "crm"),
        (2 * H, LeadStageChanged(from_stage="sal", to_stage="sql"), "crm"),
        (3 * H, DealCreated(deal_id=f"{lead}-d1", amount=Decimal("12000.00"),
                            currency="EUR"), "crm"),
        (3 * H, LeadStageChanged(from_stage="sql", to_stage="opportunity"), "crm"),
        (6 * D, DealWon(deal_id=f"{lead}-d1", amount=Decimal("12500.00"), currency="EUR"),
         "crm"),
        (6 * D, LeadStageChanged(from_stage="opportunity", to_stage="customer"), "crm"),
    ]  # fmt: skip
    return [
        make_event(data, id=f"{prefix}-e{i:02d}", subject=lead, source=source, time=t0 + dt)
        for i, (dt, data, source) in enumerate(steps)
    ]
