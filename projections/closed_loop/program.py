"""Which marketing program a lead came from: its campaign, channel and lead source.

Rule: the campaign and channel of the **lead-creation touch**, the last
``touchpoint.recorded`` at or before the lead's first ``lead.created`` (the touch that
converted, as in the attribution milestones); a lead whose touches all came later takes its
first touch; a lead without touches has none. The source is the first ``lead.created``'s
``lead_source``. Events are read in the fold's order, so arrival order never matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from events.catalog import LeadCreated, TouchpointRecorded
from events.envelope import Event
from projections.lead import order_key


@dataclass(frozen=True, slots=True)
class Program:
    campaign_id: str | None
    channel: str | None
    lead_source: str | None


def program_of(events: Iterable[Event]) -> Program:
    """The lead's program from its events (any order)."""
    ordered = sorted(events, key=order_key)
    created = next((e for e in ordered if isinstance(e.data, LeadCreated)), None)
    touches = [e for e in ordered if isinstance(e.data, TouchpointRecorded)]
    touch: Event | None = None
    if created is not None:
        before = [t for t in touches if t.time <= created.time]
        touch = before[-1] if before else None
    if touch is None and touches:
        touch = touches[0]
    data = touch.data if touch is not None else None
    source = created.data.lead_source if created and isinstance(created.data, LeadCreated) else None
    if isinstance(data, TouchpointRecorded):
        return Program(data.campaign_id, data.channel, source)
    return Program(None, None, source)
