"""Closed-loop facts of a lead's audit trail, from ``handoff_suppression`` and
``lead_duplicate`` rows (services/sql/003_closed_loop.sql): the ``handoff.suppressed`` and
``lead.duplicate_detected`` events the processor derived, at the times those events carry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.api.audit_models import TimelineEntry
from services.store.audit_sla import SLA_SOURCE


def closed_loop_entries(
    suppressions: Iterable[Mapping[str, Any]], duplicates: Iterable[Mapping[str, Any]]
) -> list[TimelineEntry]:
    """One entry per suppressed re-handoff and per duplicate pair."""
    out = [
        TimelineEntry(
            at=r["event_time"],
            kind="closed_loop",
            type="handoff.suppressed",
            event_id=f"closedloop/suppressed/{r['lead_id']}/{r['event_id']}",
            source=SLA_SOURCE,
            summary=(
                f"re-handoff of a suppressed lead {r['action']}: to {r['to_stage']} by"
                f" {r['event_id']}, disqualified as {r['reason_code']} by {r['suppressed_by']}"
            ),
        )
        for r in suppressions
    ]
    out += [
        TimelineEntry(
            at=r["duplicate_first_seen"],
            kind="closed_loop",
            type="lead.duplicate_detected",
            event_id=r["derived_event_id"],
            source=SLA_SOURCE,
            summary=(
                f"duplicate: {r['duplicate_id']} has the email key of {r['original_id']}"
                f" ({r['email_key'][:12]}...)"
            ),
        )
        for r in duplicates
    ]
    return out
