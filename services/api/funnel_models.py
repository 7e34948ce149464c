"""Response body of ``GET /v1/funnel`` (and what ``leadledger funnel`` prints), built from
the pure report of ``projections.funnel_report``.

Conversion rates are decimal strings (``"0.2513"`` = 25.13%) next to the counts they come
from; durations are seconds. Money is a decimal string next to its currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from projections.funnel_flow import StageFlow
from projections.funnel_lead import Dimension
from projections.funnel_report import FunnelFlow, WonTotal

_FROZEN = ConfigDict(frozen=True)

#: The report's definitions, repeated in every body so a reader never has to guess.
DEFINITIONS: Final = (
    "Periods are [start, end), UTC. Only events with a time at or before as_of are known.",
    "balance_start/balance_end: leads in the stage just before start/end; "
    "balance_end = balance_start + inflow - outflow.",
    "inflow/outflow: stays that began/ended in the period (a re-entry counts again).",
    "entrants: distinct leads that entered the stage in the period; converted: those that "
    "reached a later main-path stage (the next one or beyond) by as_of.",
    "median/p90: nearest-rank length of the stays that ended in the period.",
    "Breakdown keys: campaign and channel of the first touch, source = lead_source of "
    "lead.created, team of the first assignment; '(none)' when missing.",
    "A merged lead leaves the funnel at its merge: its open stay ends then.",
)


class StageRow(BaseModel):
    """One stage's figures for one period."""

    model_config = _FROZEN

    stage: str
    team: str = Field(description="owning team")
    next_stage: str | None = Field(description="next success stage on the main path")
    balance_start: int
    inflow: int
    outflow: int
    balance_end: int
    entrants: int = Field(description="distinct leads that entered in the period")
    converted: int | None = Field(description="entrants that reached next_stage by as_of")
    conversion: Decimal | None = Field(description="converted / entrants, 4 decimals")
    exits: int = Field(description="stays that ended in the period (time-in-stage sample)")
    median_seconds: float | None
    p90_seconds: float | None

    @classmethod
    def of(cls, s: StageFlow) -> StageRow:
        return cls(
            stage=s.stage, team=s.team, next_stage=s.next_stage,
            balance_start=s.balance_start, inflow=s.inflow, outflow=s.outflow,
            balance_end=s.balance_end, entrants=s.entrants, converted=s.converted,
            conversion=s.conversion, exits=s.exits, median_seconds=s.median_seconds,
            p90_seconds=s.p90_seconds,
        )  # fmt: skip


class WonRow(BaseModel):
    """Deals won in the period in one currency."""

    model_config = _FROZEN

    currency: str
    deals: int
    revenue: Decimal

    @classmethod
    def of(cls, w: WonTotal) -> WonRow:
        return cls(currency=w.currency, deals=w.deals, revenue=w.revenue)


class PeriodFlow(BaseModel):
    """Every stage's figures for ``[start, end)``."""

    model_config = _FROZEN

    start: AwareDatetime
    end: AwareDatetime
    stages: list[StageRow]
    won: list[WonRow]


class StageChange(BaseModel):
    """This period minus the previous one, per stage."""

    model_config = _FROZEN

    stage: str
    inflow: int
    outflow: int
    balance_end: int
    conversion_points: Decimal | None = Field(
        description="change of the conversion rate in percentage points"
    )
    median_seconds: float | None


class BreakdownRow(BaseModel):
    """The figures of the leads with one key of one dimension."""

    model_config = _FROZEN

    dimension: Dimension
    key: str
    leads: int
    stages: list[StageRow]


class CohortRow(BaseModel):
    """Leads created in ``month`` (UTC) and their current stage at as_of."""

    model_config = _FROZEN

    month: str = Field(description="YYYY-MM")
    created: int
    current: dict[str, int]


class FunnelReport(BaseModel):
    """A funnel flow report (see ``definitions``)."""

    model_config = _FROZEN

    period: PeriodFlow
    as_of: AwareDatetime
    leads: int = Field(description="leads with any event before the period end, by as_of")
    previous: PeriodFlow | None
    changes: list[StageChange]
    by: list[Dimension]
    breakdowns: list[BreakdownRow]
    cohorts: list[CohortRow] | None
    warnings: list[str] = Field(default_factory=list)
    definitions: list[str] = Field(default_factory=lambda: list(DEFINITIONS))


def _rows(stages: tuple[StageFlow, ...]) -> list[StageRow]:
    return [StageRow.of(s) for s in stages]


def _points(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    return None if now is None or before is None else (now - before) * 100


def _minus(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def changes(now: tuple[StageFlow, ...], before: tuple[StageFlow, ...]) -> list[StageChange]:
    """Per stage, this period's figures minus the previous period's."""
    earlier = {s.stage: s for s in before}
    return [
        StageChange(
            stage=s.stage,
            inflow=s.inflow - earlier[s.stage].inflow,
            outflow=s.outflow - earlier[s.stage].outflow,
            balance_end=s.balance_end - earlier[s.stage].balance_end,
            conversion_points=_points(s.conversion, earlier[s.stage].conversion),
            median_seconds=_minus(s.median_seconds, earlier[s.stage].median_seconds),
        )
        for s in now
    ]


def _cohorts(flow: FunnelFlow) -> list[CohortRow] | None:
    if flow.cohorts is None:
        return None
    return [CohortRow(month=c.month, created=c.created, current=dict(c.current))
            for c in flow.cohorts]  # fmt: skip


def report_of(
    flow: FunnelFlow, by: tuple[Dimension, ...], warnings: list[str] | None = None
) -> FunnelReport:
    """The response body of a pure funnel report."""
    previous = None
    if flow.previous is not None and flow.previous_start is not None:
        previous = PeriodFlow(
            start=flow.previous_start, end=flow.start, stages=_rows(flow.previous),
            won=[WonRow.of(w) for w in flow.previous_won or ()],
        )  # fmt: skip
    return FunnelReport(
        period=PeriodFlow(
            start=flow.start,
            end=flow.end,
            stages=_rows(flow.stages),
            won=[WonRow.of(w) for w in flow.won],
        ),
        as_of=flow.as_of,
        leads=flow.leads,
        previous=previous,
        changes=changes(flow.stages, flow.previous) if flow.previous is not None else [],
        by=list(by),
        breakdowns=[
            BreakdownRow(dimension=b.dimension, key=b.key, leads=b.leads, stages=_rows(b.stages))
            for b in flow.breakdowns
        ],
        cohorts=_cohorts(flow),
        warnings=list(warnings or ()),
    )
