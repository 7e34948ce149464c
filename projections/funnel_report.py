"""A whole funnel report from lead flows: the period, the previous period, breakdowns,
cohorts and the deals won. Pure; the Postgres reader streams leads into ``FunnelBuilder``.

- **Previous period**: the same figures for ``[start - (end - start), start)``, as known at
  the same ``as_of``, so both periods are judged on the same knowledge.
- **Breakdowns**: one table per key of each dimension (``projections.funnel_lead``), each
  lead in exactly one row per dimension, so the rows of a dimension add up to the total.
- **Cohorts**: leads created in each calendar month (UTC) that overlaps the period, and
  their current stage at ``as_of``.
- **Won deals**: per currency, the deals won in the period (by won time) and their sum.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from events.funnel import Funnel
from projections.funnel_flow import FlowCounter, StageFlow, stage_order
from projections.funnel_lead import MERGED, Dimension, LeadFlow


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The figures of the leads with one key of one dimension."""

    dimension: Dimension
    key: str
    leads: int
    stages: tuple[StageFlow, ...]


@dataclass(frozen=True, slots=True)
class Cohort:
    """Leads created in ``month`` (``YYYY-MM``, UTC) and their current stage at ``as_of``."""

    month: str
    created: int
    current: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class WonTotal:
    """Deals won in the period in one currency."""

    currency: str
    deals: int
    revenue: Decimal


@dataclass(frozen=True, slots=True)
class FunnelFlow:
    """Everything a funnel report shows (see the module docstring)."""

    start: datetime
    end: datetime
    as_of: datetime
    leads: int
    stages: tuple[StageFlow, ...]
    won: tuple[WonTotal, ...]
    previous_start: datetime | None
    previous: tuple[StageFlow, ...] | None
    previous_won: tuple[WonTotal, ...] | None
    breakdowns: tuple[Breakdown, ...]
    cohorts: tuple[Cohort, ...] | None
    #: Distinct owners assigned a lead in the period (the active sales reps).
    active_reps: int = 0


def months_overlapping(start: datetime, end: datetime) -> tuple[str, ...]:
    """``YYYY-MM`` of every UTC calendar month that overlaps ``[start, end)``."""
    first, last = start.astimezone(UTC), end.astimezone(UTC)
    year, month, out = first.year, first.month, []
    while datetime(year, month, 1, tzinfo=UTC) < last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(out)


class _Won:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.deals: Counter[str] = Counter()
        self.revenue: dict[str, Decimal] = {}

    def add(self, lead: LeadFlow) -> None:
        for deal in lead.won:
            if self.start <= deal.won_at < self.end:
                self.deals[deal.currency] += 1
                sum_so_far = self.revenue.get(deal.currency, Decimal(0))
                self.revenue[deal.currency] = sum_so_far + deal.amount

    def totals(self) -> tuple[WonTotal, ...]:
        return tuple(WonTotal(c, self.deals[c], self.revenue[c]) for c in sorted(self.deals))


@dataclass(frozen=True, slots=True)
class FunnelQuery:
    """What a funnel report is asked: ``[start, end)`` as known at ``as_of``, broken down
    ``by`` dimensions, optionally with the previous period and the creation-month cohorts."""

    start: datetime
    end: datetime
    as_of: datetime
    by: tuple[Dimension, ...] = ()
    previous: bool = False
    cohorts: bool = False


class FunnelBuilder:
    """Feed every lead with ``add`` (any order), then ``result()``."""

    def __init__(self, funnel: Funnel, query: FunnelQuery) -> None:
        start, end, previous, cohorts = query.start, query.end, query.previous, query.cohorts
        self.funnel, self.start, self.end, self.as_of = funnel, start, end, query.as_of
        self.by = query.by
        self._total = FlowCounter(funnel, start, end)
        self._won = _Won(start, end)
        before = start - (end - start)
        self._previous_start = before if previous else None
        self._previous = FlowCounter(funnel, before, start) if previous else None
        self._previous_won = _Won(before, start) if previous else None
        self._by: dict[tuple[Dimension, str], FlowCounter] = {}
        self._months = months_overlapping(start, end) if cohorts else None
        self._cohorts: dict[str, Counter[str]] = {m: Counter() for m in self._months or ()}
        self._reps: set[str] = set()

    def add(self, lead: LeadFlow) -> None:
        """Count one lead in every table it belongs to."""
        self._total.add(lead)
        self._won.add(lead)
        self._reps.update(rep for at, rep in lead.assignments if self.start <= at < self.end)
        if self._previous is not None and self._previous_won is not None:
            self._previous.add(lead)
            self._previous_won.add(lead)
        for dimension in self.by:
            at = (dimension, lead.keys[dimension])
            counter = self._by.get(at)
            if counter is None:
                counter = self._by[at] = FlowCounter(self.funnel, self.start, self.end)
            counter.add(lead)
        if self._months is not None and lead.created_at is not None:
            month = f"{lead.created_at.astimezone(UTC):%Y-%m}"
            if month in self._cohorts:
                self._cohorts[month][lead.current_stage or "(none)"] += 1

    def result(self) -> FunnelFlow:
        """The report over every lead added so far."""
        breakdowns = tuple(
            Breakdown(dimension, key, counter.leads, counter.stages())
            for (dimension, key), counter in sorted(
                self._by.items(), key=lambda item: (self.by.index(item[0][0]), item[0][1])
            )
        )
        return FunnelFlow(
            start=self.start,
            end=self.end,
            as_of=self.as_of,
            leads=self._total.leads,
            stages=self._total.stages(),
            won=self._won.totals(),
            previous_start=self._previous_start,
            previous=self._previous.stages() if self._previous is not None else None,
            previous_won=None if self._previous_won is None else self._previous_won.totals(),
            breakdowns=breakdowns,
            cohorts=self._cohort_rows() if self._months is not None else None,
            active_reps=len(self._reps),
        )

    def _cohort_rows(self) -> tuple[Cohort, ...]:
        order = {s: i for i, s in enumerate((*stage_order(self.funnel), MERGED))}
        rows = []
        for month, counts in self._cohorts.items():
            current = sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
            rows.append(Cohort(month, sum(counts.values()), tuple(current)))
        return tuple(rows)
