"""Funnel flow from hand-built histories: balances, inflow and outflow, conversion,
time in stage, the previous period, cohorts and breakdowns, each worked out by hand."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from events.envelope import Event
from projections.funnel_flow import StageFlow, flow, nearest_rank, next_success_stage
from projections.funnel_lead import MERGED, NONE, LeadFlow, lead_flow
from projections.funnel_report import FunnelBuilder, FunnelQuery, months_overlapping
from tests.unit.factories import (
    FUNNEL,
    assigned,
    at,
    created,
    deal_created,
    deal_won,
    disqualified,
    merged,
    moved,
    recycled,
    touched,
)

DAY = 86400.0
START, END, AS_OF = at(days=10), at(days=20), at(days=30)

#: Five leads around the period [day 10, day 20), as of day 30.
HISTORY: dict[str, list[Event]] = {
    "A": [touched("A", at(days=0), "cmp-x", "email"), created("A", at(days=0)),
          moved("A", at(days=5), "lead", "mql"), assigned("A", at(days=5), team="sdr-emea"),
          moved("A", at(days=12), "mql", "sal"), moved("A", at(days=15), "sal", "sql"),
          moved("A", at(days=25), "sql", "opportunity")],
    "B": [touched("B", at(days=11), "cmp-y", "ads"), created("B", at(days=11)),
          moved("B", at(days=13), "lead", "mql"), recycled("B", at(days=14), "mql"),
          moved("B", at(days=16), "recycled", "nurture")],
    "C": [created("C", at(days=12), "subscriber"), moved("C", at(days=18), "subscriber", "mql")],
    "D": [created("D", at(days=2)), disqualified("D", at(days=10), "lead", "spam")],
    "E": [created("E", at(days=21), "mql")],
}  # fmt: skip


def leads(as_of: datetime = AS_OF) -> list[LeadFlow]:
    return [lead_flow(lead, events, FUNNEL, as_of) for lead, events in HISTORY.items()]


def by_stage(stages: tuple[StageFlow, ...]) -> dict[str, StageFlow]:
    return {s.stage: s for s in stages}


def figures(s: StageFlow) -> tuple[int, int, int, int]:
    return (s.balance_start, s.inflow, s.outflow, s.balance_end)


def test_balances_inflow_and_outflow_per_stage_match_the_hand_count() -> None:
    stages = by_stage(flow(leads(), FUNNEL, START, END))
    # lead: D is in it just before day 10 and leaves at day 10; B enters day 11, leaves 13.
    assert figures(stages["lead"]) == (1, 1, 2, 0)
    # mql: A in it from day 5, leaves 12; B (13-14) and C (18-) enter; C is still there.
    assert figures(stages["mql"]) == (1, 2, 2, 1)
    assert figures(stages["sal"]) == (0, 1, 1, 0)
    assert figures(stages["sql"]) == (0, 1, 0, 1)
    assert figures(stages["subscriber"]) == (0, 1, 1, 0)
    # An entry exactly at the start is inflow of the period, not part of the start balance.
    assert figures(stages["disqualified"]) == (0, 1, 0, 1)
    assert figures(stages["recycled"]) == (0, 1, 1, 0)
    assert figures(stages["nurture"]) == (0, 1, 0, 1)
    assert figures(stages["opportunity"]) == (0, 0, 0, 0), "A became one after the period"
    assert figures(stages["customer"]) == (0, 0, 0, 0)
    for s in stages.values():
        assert s.balance_end == s.balance_start + s.inflow - s.outflow


def test_conversion_counts_entrants_that_reach_a_later_main_path_stage_by_as_of() -> None:
    stages = by_stage(flow(leads(), FUNNEL, START, END))
    assert (stages["lead"].entrants, stages["lead"].converted) == (1, 1)
    # B was recycled and C is still an MQL: neither reached SAL.
    assert (stages["mql"].entrants, stages["mql"].converted, stages["mql"].conversion) == (
        2, 0, Decimal("0.0000"),
    )  # fmt: skip
    assert (stages["sal"].entrants, stages["sal"].converted) == (1, 1)
    # A entered SQL on day 15 and became an opportunity on day 25, after the period but
    # before as_of: it converted. As of day 24 it had not yet.
    assert (stages["sql"].converted, stages["sql"].conversion) == (1, Decimal("1.0000"))
    early = by_stage(flow(leads(at(days=24)), FUNNEL, START, END))
    assert (early["sql"].entrants, early["sql"].converted) == (1, 0)
    # Skipping a stage still counts: C went subscriber -> mql.
    assert (stages["subscriber"].entrants, stages["subscriber"].converted) == (1, 1)
    assert stages["customer"].converted is None
    assert stages["customer"].conversion is None
    assert stages["nurture"].next_stage is None
    assert stages["nurture"].converted is None
    assert next_success_stage(FUNNEL, "sql") == "opportunity"


def test_a_lead_entering_a_stage_twice_in_the_period_is_one_entrant_and_two_inflows() -> None:
    events = [created("R", at(days=11)), moved("R", at(days=12), "lead", "mql"),
              recycled("R", at(days=13), "mql"), moved("R", at(days=14), "recycled", "mql"),
              moved("R", at(days=15), "mql", "sal")]  # fmt: skip
    mql = by_stage(flow([lead_flow("R", events, FUNNEL, AS_OF)], FUNNEL, START, END))["mql"]
    assert (mql.inflow, mql.outflow, mql.entrants, mql.converted) == (2, 2, 1, 1)


def test_time_in_stage_covers_stays_that_ended_in_the_period_by_nearest_rank() -> None:
    stages = by_stage(flow(leads(), FUNNEL, START, END))
    # lead stays that ended in the period: D (day 2 -> 10, 8 d) and B (day 11 -> 13, 2 d).
    lead = stages["lead"]
    assert (lead.exits, lead.median_seconds, lead.p90_seconds) == (2, 2 * DAY, 8 * DAY)
    mql = stages["mql"]  # A: 7 d (began before the period), B: 1 d; C is still open
    assert (mql.exits, mql.median_seconds, mql.p90_seconds) == (2, 1 * DAY, 7 * DAY)
    assert stages["sql"].median_seconds is None, "A's SQL stay had not ended by day 20"
    values = [float(v) for v in range(1, 11)]
    assert nearest_rank(values, Fraction(1, 2)) == 5.0
    assert nearest_rank(values, Fraction(9, 10)) == 9.0
    assert nearest_rank([3.0], Fraction(9, 10)) == 3.0
    assert nearest_rank([], Fraction(1, 2)) is None


def test_the_previous_period_has_the_same_length_and_the_same_as_of() -> None:
    builder = FunnelBuilder(FUNNEL, FunnelQuery(START, END, AS_OF, previous=True))
    for lead in leads():
        builder.add(lead)
    report = builder.result()
    assert report.previous_start == at(days=0)
    assert report.previous is not None
    previous = by_stage(report.previous)
    # [day 0, day 10): A and D enter lead, A leaves at day 5 for mql and converts later.
    assert figures(previous["lead"]) == (0, 2, 1, 1)
    assert (previous["mql"].inflow, previous["mql"].entrants, previous["mql"].converted) == (
        1, 1, 1,
    )  # fmt: skip
    assert by_stage(report.stages) == by_stage(flow(leads(), FUNNEL, START, END))


def test_cohorts_count_leads_by_creation_month_and_current_stage() -> None:
    builder = FunnelBuilder(FUNNEL, FunnelQuery(START, END, AS_OF, cohorts=True))
    for lead in leads():
        builder.add(lead)
    (january,) = builder.result().cohorts or ()
    assert january.month == "2025-01"
    assert january.created == 5
    assert dict(january.current) == {"mql": 2, "opportunity": 1, "nurture": 1, "disqualified": 1}
    assert [stage for stage, _ in january.current] == ["mql", "opportunity", "nurture",
                                                       "disqualified"]  # fmt: skip
    assert months_overlapping(at(days=20), at(days=60)) == ("2025-01", "2025-02", "2025-03")


def test_breakdowns_key_leads_by_first_touch_source_and_first_team_and_add_up() -> None:
    builder = FunnelBuilder(
        FUNNEL, FunnelQuery(START, END, AS_OF, by=("campaign", "channel", "team"))
    )
    for lead in leads():
        builder.add(lead)
    report = builder.result()
    rows = {(b.dimension, b.key): b for b in report.breakdowns}
    assert set(rows) == {("campaign", "cmp-x"), ("campaign", "cmp-y"), ("campaign", NONE),
                         ("channel", "email"), ("channel", "ads"), ("channel", NONE),
                         ("team", "sdr-emea"), ("team", NONE)}  # fmt: skip
    assert (rows["campaign", "cmp-y"].leads, rows["campaign", NONE].leads) == (1, 3)
    mql_y = by_stage(rows["campaign", "cmp-y"].stages)["mql"]
    assert (mql_y.inflow, mql_y.entrants, mql_y.converted) == (1, 1, 0)
    total = by_stage(report.stages)
    for dimension in ("campaign", "channel", "team"):
        for stage in FUNNEL.stages:
            mine = [by_stage(b.stages)[stage] for b in report.breakdowns
                    if b.dimension == dimension]  # fmt: skip
            assert sum(s.inflow for s in mine) == total[stage].inflow
            assert sum(s.balance_end for s in mine) == total[stage].balance_end
    assert lead_flow("B", HISTORY["B"], FUNNEL, AS_OF).keys == {
        "campaign": "cmp-y", "channel": "ads", "source": NONE, "team": NONE,
    }  # fmt: skip


def test_a_merge_ends_the_duplicate_s_stay_and_its_later_history() -> None:
    events = [created("M", at(days=11)), merged("M", at(days=12), "A"),
              moved("M", at(days=13), "lead", "mql")]  # fmt: skip
    lead = lead_flow("M", events, FUNNEL, AS_OF)
    assert lead.current_stage == MERGED
    assert [(s.stage, s.seconds) for s in lead.stays] == [("lead", DAY)]
    stages = by_stage(flow([lead], FUNNEL, START, END))
    assert figures(stages["lead"]) == (0, 1, 1, 0)
    assert stages["mql"].inflow == 0


def test_won_deals_are_summed_per_currency_by_won_time() -> None:
    events = [created("W", at(days=1)), deal_created("W", at(days=2), "D1", "100.00"),
              deal_won("W", at(days=12), "D1", "120.50"),
              deal_created("W", at(days=13), "D2", "50.00"),
              deal_won("W", at(days=22), "D2", "50.00")]  # fmt: skip
    builder = FunnelBuilder(FUNNEL, FunnelQuery(START, END, AS_OF))
    builder.add(lead_flow("W", events, FUNNEL, AS_OF))
    (eur,) = builder.result().won
    assert (eur.currency, eur.deals, eur.revenue) == ("EUR", 1, Decimal("120.50"))


def test_events_after_as_of_are_unknown() -> None:
    lead = lead_flow("A", HISTORY["A"], FUNNEL, at(days=14))
    assert [s.stage for s in lead.stays] == ["lead", "mql", "sal"]
    assert lead.stays[-1].exited_at is None


def test_an_empty_period_is_refused() -> None:
    with pytest.raises(ValueError, match="start < end"):
        flow([], FUNNEL, END, START)
