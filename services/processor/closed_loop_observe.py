"""Metrics of the derived closed-loop events of a committed batch, with bounded labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from events.closed_loop import ClosedLoopConfig
from events.closed_loop_events import HandoffSuppressed, LeadDuplicateDetected
from events.envelope import Event
from events.funnel import Funnel
from services import metrics

OTHER = "other"
NONE = "none"


def label(value: str | None, allowed: Sequence[str]) -> str:
    """``value`` if it is allow-listed, ``none`` when missing, else ``other``."""
    if value is None:
        return NONE
    return value if value in allowed else OTHER


def observe_closed_loop(derived: Sequence[Event], funnel: Funnel) -> None:
    """Count suppressed re-handoffs per source, campaign and action, and duplicate pairs."""
    config: ClosedLoopConfig = funnel.closed_loop
    suppressed: Counter[tuple[str, str, str]] = Counter()
    duplicates = 0
    for event in derived:
        data = event.data
        if isinstance(data, HandoffSuppressed):
            source = label(data.lead_source, config.metric_sources)
            campaign = label(data.campaign_id, config.metric_campaigns)
            suppressed[(source, campaign, data.action)] += 1
        elif isinstance(data, LeadDuplicateDetected):
            duplicates += 1
    for (source, campaign, action), n in suppressed.items():
        metrics.HANDOFFS_SUPPRESSED.labels(source=source, campaign=campaign, action=action).inc(n)
    if duplicates:
        metrics.DUPLICATES_DETECTED.inc(duplicates)
