"""The read side of one lead: frozen, comparable values derived from its event history.

Every value here is a pure function of the lead's accepted events sorted by event time, so two
processes that saw the same events, in any order, hold equal views.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from projections.fast_init import fast_init, fast_new

#: Handoff actions that end the handoff with a sales decision; they carry a latency.
SALES_ACTIONS: Final = frozenset({"accepted", "rejected", "contacted"})
#: The lead left the handoff stage for another marketing stage: no sales action to time.
WITHDRAWN: Final = "withdrawn"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@fast_init
@dataclass(frozen=True, slots=True)
class StageSpan:
    """One stay of the lead in one stage, from the event that moved it in to the next move."""

    stage: str
    team: str
    entered_at: datetime
    exited_at: datetime | None
    entered_via: str
    from_stage: str | None
    reason: str | None

    @property
    def seconds(self) -> float | None:
        """Length of the stay; None while the lead is still in the stage."""
        return _seconds(self.entered_at, self.exited_at)


@fast_init
@dataclass(frozen=True, slots=True)
class Handoff:
    """One marketing -> sales handoff: from entering the handoff stage to the first action.

    ``action`` is one of ``accepted``, ``rejected``, ``contacted`` (a sales action, timed),
    ``withdrawn`` (marketing took the lead back to nurture; ``action_at`` says when, but there
    is no latency because sales never acted), or None while the handoff is open.
    """

    started_at: datetime
    start_event_id: str
    assigned_at: datetime | None
    action_at: datetime | None
    action: str | None
    action_event_id: str | None

    @property
    def is_open(self) -> bool:
        """True until the first action (including ``withdrawn``) is known."""
        return self.action is None

    @property
    def latency_seconds(self) -> float | None:
        """Entering the handoff stage -> first sales action; None if open or withdrawn."""
        if self.action not in SALES_ACTIONS:
            return None
        return _seconds(self.started_at, self.action_at)

    @property
    def system_delay_seconds(self) -> float | None:
        """Entering the handoff stage -> assignment; None if nobody was assigned before the
        action (or yet)."""
        return _seconds(self.started_at, self.assigned_at)

    @property
    def human_delay_seconds(self) -> float | None:
        """Assignment -> first sales action; None without both, or when withdrawn."""
        if self.action not in SALES_ACTIONS:
            return None
        return _seconds(self.assigned_at, self.action_at)


@dataclass(frozen=True, slots=True)
class StageTime:
    """Time spent in one stage, summed over every visit."""

    stage: str
    visits: int
    cumulative_seconds: float
    latest_seconds: float


@fast_init
@dataclass(frozen=True, slots=True)
class LeadView:
    """Everything the read models need about one lead, derived from its sorted history.

    ``highest_stage`` only ever counts stages on ``funnel.main_path``, so a regression to a
    side stage (nurture, recycled, disqualified, lost) never lowers it and never becomes it.
    """

    lead_id: str
    created_at: datetime | None
    current_stage: str | None
    entered_current_at: datetime | None
    highest_stage: str | None
    owner_id: str | None
    team: str | None
    stages: tuple[StageSpan, ...]
    handoffs: tuple[Handoff, ...]
    merged_into: str | None
    first_event_at: datetime | None
    last_event_at: datetime | None
    event_count: int

    def time_in_stage(self, now: datetime | None = None) -> tuple[StageTime, ...]:
        """Per stage, in first-visit order. The open stay counts up to ``now`` when given
        (clamped at zero if ``now`` is before it started); without ``now`` it is left out."""
        # Deferred: time_in_stage builds on these classes, so importing it at the top would
        # make the two modules import each other.
        from projections.time_in_stage import stage_times

        return stage_times(self.stages, now)


def empty_view(lead_id: str) -> LeadView:
    """The view of a lead before any event: no stage, no owner, no history."""
    # Positionally, in field order, through the fast builder: once per lead new to a cache.
    return _new_view(lead_id, None, None, None, None, None, None, (), (), None, None, None, 0)


#: ``LeadView(...)``, built faster (see ``projections.fast_init``).
_new_view = fast_new(LeadView)
