"""The reverse-funnel arithmetic against a hand-worked example, plus small samples, zero
rates and the plan periods."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.plan import (
    PlanInput,
    Rate,
    ceil_div,
    plan_months,
    reverse_funnel,
    run_rate,
    split,
)

#: lead -> mql 20%, mql -> sal 80%, sal -> sql 50%, sql -> opportunity 50%, opportunity ->
#: customer 50% (so SQL -> win is 25%), each from 100 entrants.
RATES = (
    Rate("lead", "mql", 20, 100),
    Rate("mql", "sal", 80, 100),
    Rate("sal", "sql", 50, 100),
    Rate("sql", "opportunity", 50, 100),
    Rate("opportunity", "customer", 50, 100),
)
#: Entries per stage over a 180-day window.
ENTRIES = {"lead": 1200, "mql": 240, "sal": 190, "sql": 95, "opportunity": 48}


def example(**changes: object) -> PlanInput:
    base: dict[str, object] = dict(
        revenue=Decimal("1200000"), currency="EUR", months=plan_months("2027-Q1"), reps=8,
        rates=RATES, entries=ENTRIES, deals_won=10, revenue_won=Decimal("300000.00"),
        window_days=Decimal(180), min_sample=30, sla_target=("mql", 40),
    )  # fmt: skip
    base.update(changes)
    return PlanInput(**base)  # type: ignore[arg-type]


def test_the_hand_worked_example_goes_from_revenue_back_to_leads() -> None:
    plan = reverse_funnel(example())
    assert plan.blocked is None
    # $1.2M at a $30k average deal -> 40 deals; at 50% win -> 80 opportunities; at 50%
    # SQL -> opportunity -> 160 SQLs (25% SQL -> win); 50% -> 320 SALs; 80% -> 400 MQLs;
    # 20% -> 2,000 leads.
    assert plan.average_deal == Decimal("30000.00")
    assert [(s.stage, s.needed) for s in plan.steps] == [
        ("customer", 40), ("opportunity", 80), ("sql", 160), ("sal", 320), ("mql", 400),
        ("lead", 2000),
    ]  # fmt: skip
    mql = plan.steps[4]
    assert mql.rate == RATES[1]
    assert mql.per_month == (134, 133, 133), "an even split; January takes the remainder"
    assert mql.per_rep_per_month == (17, 17, 17), "134 / 8 and 133 / 8, rounded up"
    # 240 MQLs in 180 days is 40.6 per average month; 400 / 3 = 133.3 needed: 92.7 short.
    assert mql.run_rate == Decimal("40.6")
    assert mql.gap_per_month == Decimal("92.7")
    assert plan.steps[0].per_month == (14, 13, 13)
    assert plan.steps[0].run_rate == Decimal("1.7"), "10 deals in 180 days"
    assert plan.sla is not None
    assert (plan.sla.stage, plan.sla.target, plan.sla.need) == ("mql", 40, 17)
    assert "17 MQLs per rep per month" in plan.sla.note
    assert "at least 40" in plan.sla.note
    assert "covers the plan" in plan.sla.note
    assert plan.warnings == ("the average deal size rests on 10 won deals (fewer than 30)",)


def test_every_step_is_rounded_up_from_the_exact_ratio() -> None:
    rates = (Rate("sql", "opportunity", 1, 3), Rate("opportunity", "customer", 2, 3))
    plan = reverse_funnel(example(rates=rates, revenue=Decimal("100000"),
                                  revenue_won=Decimal("90000.00"), deals_won=3))  # fmt: skip
    # 100,000 / 30,000 = 3.33 -> 4 deals; 4 * 3 / 2 = 6 opportunities; 6 * 3 = 18 SQLs.
    assert [(s.stage, s.needed) for s in plan.steps] == [
        ("customer", 4), ("opportunity", 6), ("sql", 18),
    ]  # fmt: skip
    exact = reverse_funnel(example(revenue=Decimal("30000"), deals_won=1,
                                   revenue_won=Decimal("30000.00")))  # fmt: skip
    assert exact.steps[0].needed == 1, "an exact quotient is not rounded up further"


def test_rates_resting_on_few_leads_are_warned_about() -> None:
    rates = (Rate("mql", "sal", 8, 10), *RATES[2:])
    plan = reverse_funnel(example(rates=rates, deals_won=40, revenue_won=Decimal("1200000")))
    assert plan.warnings == ("mql -> sal rests on 10 leads (fewer than 30)",)
    assert reverse_funnel(example(rates=rates, deals_won=40, revenue_won=Decimal("1200000"),
                                  min_sample=10)).warnings == ()  # fmt: skip


def test_a_zero_rate_stops_the_plan_with_a_clear_reason_and_keeps_the_steps_before() -> None:
    rates = (Rate("lead", "mql", 20, 100), Rate("mql", "sal", 0, 57), *RATES[2:])
    plan = reverse_funnel(example(rates=rates))
    assert plan.blocked == ("no mql of the window reached sal (0 of 57): the plan cannot "
                            "work back past sal; widen --window")  # fmt: skip
    assert [s.stage for s in plan.steps] == ["customer", "opportunity", "sql", "sal"]
    nobody = reverse_funnel(example(rates=(Rate("sql", "opportunity", 0, 0), *RATES[4:])))
    assert nobody.blocked is not None
    assert "(0 of 0)" in nobody.blocked


def test_no_won_deal_means_no_average_deal_size_and_no_plan() -> None:
    plan = reverse_funnel(example(deals_won=0, revenue_won=Decimal(0)))
    assert plan.steps == ()
    assert plan.blocked is not None
    assert "no deal in EUR was won in the window" in plan.blocked


def test_an_sla_target_below_the_plan_says_how_far_short_it_is() -> None:
    plan = reverse_funnel(example(reps=2))
    assert plan.sla is not None
    assert "67 MQLs per rep per month" in plan.sla.note, "134 / 2"
    assert "27 short of the plan: raise it to 67" in plan.sla.note


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one rep"):
        reverse_funnel(example(reps=0))
    with pytest.raises(ValueError, match="quarter"):
        plan_months("2027-Q5")


def test_periods_helpers_split_and_ceil() -> None:
    assert plan_months("2027") == tuple(f"2027-{m:02d}" for m in range(1, 13))
    assert plan_months("2027-03") == ("2027-03",)
    assert plan_months("2027-q4") == ("2027-10", "2027-11", "2027-12")
    assert split(10, 3) == (4, 3, 3)
    assert split(2, 3) == (1, 1, 0)
    assert ceil_div(7, 2) == 4
    assert ceil_div(8, 2) == 4
    assert run_rate(0, Decimal(30)) == Decimal("0.0")
