"""Funnel flow over a period ``[start, end)``, per stage, from the lead stays of
``projections.funnel_lead`` (a success-path analysis computed from events, not snapshots).

Definitions, per stage (every count is of stays except ``entrants`` and ``converted``):

- ``balance_start``: leads in the stage just before ``start`` (a stay with
  ``entered_at < start`` that had not exited before ``start``); ``balance_end`` the same at
  ``end``. So ``balance_end = balance_start + inflow - outflow`` always holds.
- ``inflow``: stays that began in the period (``start <= entered_at < end``); a lead that
  enters twice counts twice. ``outflow``: stays that ended in the period.
- ``entrants``: distinct leads with at least one stay beginning in the period.
  ``converted``: those of them that *eventually* reached the next success stage, i.e. had a
  later stay in a main-path stage ranked after this one (the next stage or beyond, so a
  subscriber that skips to MQL counts), with "eventually" meaning by the report's
  ``as_of`` (events after it are unknown). Later entrants had less time to convert. Only
  main-path stages with a next stage have a conversion.
- Time in stage: the stays that *ended* in the period (their full length, even when they
  began before ``start``), with the median and the 90th percentile by nearest rank (the
  smallest observed length that at least half, or 90%, of the stays do not exceed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from events.funnel import Funnel
from projections.funnel_lead import LeadFlow, Stay

#: Displayed conversion rates are rounded to this many decimals (0.2513 = 25.13%).
RATE_PLACES = Decimal("0.0001")


def stage_order(funnel: Funnel) -> tuple[str, ...]:
    """The report's row order: the main path, then side stages in configuration order."""
    side = tuple(s for s in funnel.stages if s not in funnel.main_path)
    return (*funnel.main_path, *side)


def next_success_stage(funnel: Funnel, stage: str) -> str | None:
    """The main-path stage after ``stage``; None for the last one and for side stages."""
    rank = funnel.rank(stage)
    if rank < 0 or rank + 1 >= len(funnel.main_path):
        return None
    return funnel.main_path[rank + 1]


def nearest_rank(values: Sequence[float], q: Fraction) -> float | None:
    """The ``q`` quantile by nearest rank (an observed value); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)), 1) - 1]


def rate(converted: int, entrants: int) -> Decimal | None:
    """``converted / entrants`` rounded half-even to ``RATE_PLACES``; None without entrants."""
    if entrants == 0:
        return None
    return (Decimal(converted) / Decimal(entrants)).quantize(RATE_PLACES)


@dataclass(frozen=True, slots=True)
class StageFlow:
    """One stage's figures for one period (see the module docstring)."""

    stage: str
    team: str
    next_stage: str | None
    balance_start: int
    inflow: int
    outflow: int
    balance_end: int
    entrants: int
    converted: int | None
    exits: int
    median_seconds: float | None
    p90_seconds: float | None

    @property
    def conversion(self) -> Decimal | None:
        """``converted / entrants`` (rounded, see ``rate``); None without a next stage or
        without entrants."""
        if self.converted is None:
            return None
        return rate(self.converted, self.entrants)


@dataclass(slots=True)
class _Tally:
    balance_start: int = 0
    inflow: int = 0
    outflow: int = 0
    balance_end: int = 0
    entrants: int = 0
    converted: int = 0
    lengths: list[float] = field(default_factory=list)


class FlowCounter:
    """Feed leads with ``add`` (any order), then read ``stages()`` for ``[start, end)``."""

    def __init__(self, funnel: Funnel, start: datetime, end: datetime) -> None:
        if not start < end:
            raise ValueError("the period must have start < end")
        self.funnel, self.start, self.end = funnel, start, end
        self.leads = 0
        self._tallies = {stage: _Tally() for stage in stage_order(funnel)}

    def add(self, lead: LeadFlow) -> None:
        """Count one lead's stays."""
        self.leads += 1
        entered: set[str] = set()
        for i, stay in enumerate(lead.stays):
            tally = self._tallies.get(stay.stage)
            if tally is None:  # a stage the funnel no longer has: nothing to report it under
                continue
            tally.balance_start += _in_stage_before(stay, self.start)
            tally.balance_end += _in_stage_before(stay, self.end)
            if self.start <= stay.entered_at < self.end:
                tally.inflow += 1
                if stay.stage not in entered:
                    entered.add(stay.stage)
                    tally.entrants += 1
                    tally.converted += self._reaches_next(lead.stays, i)
            if stay.exited_at is not None and self.start <= stay.exited_at < self.end:
                tally.outflow += 1
                tally.lengths.append((stay.exited_at - stay.entered_at).total_seconds())

    def _reaches_next(self, stays: Sequence[Stay], i: int) -> bool:
        rank = self.funnel.rank(stays[i].stage)
        if rank < 0:
            return False
        return any(self.funnel.rank(later.stage) > rank for later in stays[i + 1 :])

    def stages(self) -> tuple[StageFlow, ...]:
        """Every stage of the funnel, in ``stage_order``."""
        out = []
        for stage, t in self._tallies.items():
            nxt = next_success_stage(self.funnel, stage)
            out.append(
                StageFlow(
                    stage=stage,
                    team=self.funnel.team_of(stage).value,
                    next_stage=nxt,
                    balance_start=t.balance_start,
                    inflow=t.inflow,
                    outflow=t.outflow,
                    balance_end=t.balance_end,
                    entrants=t.entrants,
                    converted=t.converted if nxt is not None else None,
                    exits=len(t.lengths),
                    median_seconds=nearest_rank(t.lengths, Fraction(1, 2)),
                    p90_seconds=nearest_rank(t.lengths, Fraction(9, 10)),
                )
            )
        return tuple(out)


def _in_stage_before(stay: Stay, instant: datetime) -> int:
    """1 when the lead was in this stay just before ``instant``."""
    began = stay.entered_at < instant
    return int(began and (stay.exited_at is None or stay.exited_at >= instant))


def flow(
    leads: Iterable[LeadFlow], funnel: Funnel, start: datetime, end: datetime
) -> tuple[StageFlow, ...]:
    """The figures of every stage for ``[start, end)`` over ``leads``."""
    counter = FlowCounter(funnel, start, end)
    for lead in leads:
        counter.add(lead)
    return counter.stages()
