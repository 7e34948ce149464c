"""Sales feedback on lead quality, per marketing program: pure, over whole lead histories.

For each lead, its program (``projections.closed_loop.program``: the lead-creation touch's
campaign and channel, the ``lead_source``) is the row it counts in. Within ``[start, end)``
by event time it counts:

- ``handoffs``: stays opened at the handoff stage (MQL), the denominator;
- ``rejected``: handoffs whose first sales action was a rejection (``lead.disqualified`` or
  ``lead.recycled`` out of MQL), counted at the time of that action;
- ``disqualified`` and ``reasons``: every ``lead.disqualified`` by reason code, and how many
  of them had a suppressing reason;
- ``suppressed_rehandoffs``: hand-overs of suppressed leads (``handoff.suppressed``).

Each history is folded in event-time order, so the report does not depend on arrival order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from events.catalog import LeadDisqualified
from events.envelope import Event
from events.funnel import Funnel
from projections.closed_loop.program import Program, program_of
from projections.closed_loop.suppression import rehandoffs
from projections.lead import fold

Dimension = Literal["campaign", "channel", "source"]
#: the row of leads without a campaign, channel or source
NONE = "(none)"


@dataclass(slots=True)
class FeedbackRow:
    key: str
    leads: set[str] = field(default_factory=set)
    handoffs: int = 0
    rejected: int = 0
    disqualified: int = 0
    suppressing: int = 0
    suppressed_rehandoffs: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected_share(self) -> float | None:
        """Rejected handoffs per handoff in the period; None without handoffs."""
        return self.rejected / self.handoffs if self.handoffs else None

    @property
    def busy(self) -> bool:
        return bool(
            self.handoffs or self.rejected or self.disqualified or self.suppressed_rehandoffs
        )


def key_of(program: Program, by: Dimension) -> str:
    value = {"campaign": program.campaign_id, "channel": program.channel,
             "source": program.lead_source}[by]  # fmt: skip
    return value or NONE


def feedback(
    histories: Mapping[str, Iterable[Event]],
    funnel: Funnel,
    start: datetime,
    end: datetime,
    by: Dimension,
) -> list[FeedbackRow]:
    """Rows with anything in the period, most rejected and disqualified first."""
    rows: dict[str, FeedbackRow] = {}
    suppressing = set(funnel.closed_loop.suppressing_reasons)

    def within(when: datetime | None) -> bool:
        return when is not None and start <= when < end

    for lead_id, events in sorted(histories.items()):
        state = fold(lead_id, events, funnel)
        key = key_of(program_of(state.events), by)
        row = rows.setdefault(key, FeedbackRow(key))
        before = (row.handoffs, row.rejected, row.disqualified, row.suppressed_rehandoffs)
        for h in state.view.handoffs:
            row.handoffs += within(h.started_at)
            row.rejected += h.action == "rejected" and within(h.action_at)
        for event in state.events:
            data = event.data
            if isinstance(data, LeadDisqualified) and within(event.time):
                row.disqualified += 1
                row.reasons[data.reason_code] += 1
                row.suppressing += data.reason_code in suppressing
        row.suppressed_rehandoffs += sum(
            within(r.event.time) for r in rehandoffs(state.events, funnel)
        )
        if (row.handoffs, row.rejected, row.disqualified, row.suppressed_rehandoffs) != before:
            row.leads.add(lead_id)
    busy = [r for r in rows.values() if r.busy]
    return sorted(busy, key=lambda r: (-r.rejected - r.disqualified, -r.handoffs, r.key))
