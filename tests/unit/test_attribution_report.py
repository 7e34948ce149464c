"""Attribution reports assembled from lead histories: which deals count, exact totals per
campaign, channel and currency, model comparisons and deal explanations (hand-computed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import events as events_dir
from events.attribution_config import load_attribution
from events.envelope import Event
from projections.attribution.money import exact_sum
from services.api.attribution_models import AttributionReport, UnknownModel
from services.store.attribution_report import (
    ReportBuilder,
    ReportSpec,
    explain,
    money,
    resolve_models,
)

from .factories import FUNNEL, at, created, deal_created, deal_lost, deal_won, moved, touched

CONFIG = load_attribution()
START, END = at(days=0), at(days=30)
#: After every deal below closed.
LATER = at(days=50)


def usd(event: Event) -> Event:
    """The same deal event in USD."""
    data = event.data.model_copy(update={"currency": "USD"})
    return event.model_copy(update={"data": data})


#: lead -> history. Hand-computed under W (30% first, 30% lead creation, 30% opportunity
#: creation, 10% over the rest) in the tests below.
HISTORIES: dict[str, list[Event]] = {
    # Won in the period: webinar first and lead creation (60%), ads opportunity (30%),
    # retarget the rest (10%) of EUR 1,000.00.
    "L1": [
        touched("L1", at(days=0), "webinar", "events"),
        created("L1", at(days=1)),
        touched("L1", at(days=2), "ads", "paid"),
        moved("L1", at(days=3), "lead", "mql"),
        deal_created("L1", at(days=5), "D1", "1000.00"),
        touched("L1", at(days=6), "retarget", "paid"),
        deal_won("L1", at(days=10), "D1", "1000.00"),
    ],
    # Won in the period with no touch at all: unattributed.
    "L2": [
        created("L2", at(days=0)),
        deal_created("L2", at(days=2), "D2", "500.00"),
        deal_won("L2", at(days=4), "D2", "500.00"),
    ],
    # Open: pipeline, all of it on the one (pending) webinar touch.
    "L3": [
        touched("L3", at(days=0), "webinar", "events"),
        created("L3", at(days=1)),
        deal_created("L3", at(days=2), "D3", "300.00"),
    ],
    # Won in USD: kept apart from EUR.
    "L4": [
        created("L4", at(days=0)),
        touched("L4", at(days=0), "ads", "paid"),
        usd(deal_created("L4", at(days=1), "D4", "250.00")),
        usd(deal_won("L4", at(days=3), "D4", "250.00")),
    ],
    # Won before the period, and won after it: neither is in it.
    "L5": [
        touched("L5", at(days=-20), "webinar", "events"),
        deal_won("L5", at(days=-10), "D5", "700.00"),
    ],
    "L6": [
        touched("L6", at(days=20), "ads", "paid"),
        deal_created("L6", at(days=25), "D6", "900.00"),
        deal_won("L6", at(days=40), "D6", "900.00"),
    ],
    # Lost in the period: counted, never credited.
    "L7": [
        touched("L7", at(days=1), "ads", "paid"),
        deal_created("L7", at(days=2), "D7", "400.00"),
        deal_lost("L7", at(days=8), "D7", "400.00"),
    ],
}


def build(
    models: Sequence[str] = ("W",),
    *,
    as_of: datetime = LATER,
    histories: dict[str, list[Event]] = HISTORIES,
) -> AttributionReport:
    spec = ReportSpec(resolve_models(CONFIG, models), START, END, as_of)
    builder = ReportBuilder(spec, FUNNEL)
    for lead_id in sorted(histories):
        builder.add_lead(lead_id, histories[lead_id])
    return builder.report()


def revenue(report: AttributionReport, dimension: str, currency: str = "EUR") -> dict[str, str]:
    (model,) = report.models
    return {
        r.key or "-": str(r.revenue)
        for r in model.rows
        if r.dimension == dimension and r.currency == currency
    }


def test_w_shaped_credits_each_campaign_its_hand_computed_share_of_won_revenue() -> None:
    report = build()
    assert revenue(report, "campaign") == {
        "webinar": "600.00", "ads": "300.00", "retarget": "100.00", "-": "500.00",
    }  # fmt: skip
    assert revenue(report, "channel") == {"events": "600.00", "paid": "400.00", "-": "500.00"}
    assert revenue(report, "campaign", "USD") == {"ads": "250.00"}
    assert report.models[0].model.label == "w_shaped@v1"


def test_totals_count_won_open_and_lost_deals_per_currency_without_adding_currencies() -> None:
    eur, usd_total = build().models[0].totals
    assert (eur.currency, usd_total.currency) == ("EUR", "USD")
    assert (eur.won_deals, eur.revenue, eur.credited, eur.unattributed) == (
        2, Decimal("1500.00"), Decimal("1000.00"), Decimal("500.00"),
    )  # fmt: skip
    assert (eur.open_deals, eur.pipeline, eur.pending, eur.lost_deals) == (
        1, Decimal("300.00"), Decimal("300.00"), 1,
    )  # fmt: skip
    assert eur.touches == 3
    assert (usd_total.won_deals, usd_total.revenue) == (1, Decimal("250.00"))


def test_open_pipeline_sits_on_the_pending_touch_and_never_counts_as_revenue() -> None:
    rows = {r.key: r for r in build().models[0].rows if r.dimension == "campaign"}
    webinar = rows["webinar"]
    assert (webinar.pipeline, webinar.pending, webinar.open_deals) == (
        Decimal("300.00"), Decimal("300.00"), 1,
    )  # fmt: skip
    assert webinar.revenue == Decimal("600.00")  # D1 only
    assert webinar.revenue_share == Decimal("0.4000")


@pytest.mark.parametrize("model", [m.label for m in CONFIG.models])
def test_under_every_model_the_rows_of_a_currency_sum_to_its_won_revenue_exactly(
    model: str,
) -> None:
    report = build([model])
    (result,) = report.models
    for total in result.totals:
        for dimension in ("campaign", "channel"):
            rows = [r for r in result.rows if r.dimension == dimension]
            mine = [r for r in rows if r.currency == total.currency]
            assert exact_sum(r.revenue for r in mine) == total.revenue
            assert exact_sum(r.pipeline for r in mine) == total.pipeline


def test_as_of_before_the_win_shows_the_deal_open_with_its_latest_touch_pending() -> None:
    report = build(as_of=at(days=7))
    (result,) = report.models
    eur = result.totals[0]
    # D1 is won at day 10: on day 7 it is an open EUR 1,000.00 deal; D2 (won day 4) is revenue.
    # D7 (lost on day 8) is still open too, and D3 has always been.
    assert (eur.won_deals, eur.revenue, eur.lost_deals) == (1, Decimal("500.00"), 0)
    assert (eur.open_deals, eur.pipeline) == (3, Decimal("1700.00"))
    rows = {r.key: r for r in result.rows if r.dimension == "campaign"}
    # retarget (day 6) is D1's latest touch: its 10% is the pending part of the pipeline.
    assert (rows["retarget"].pipeline, rows["retarget"].pending) == (
        Decimal("100.00"), Decimal("100.00"),
    )  # fmt: skip
    assert rows["webinar"].pipeline == Decimal("900.00")  # 600.00 of D1 + 300.00 of D3
    assert rows["webinar"].pending == Decimal("300.00")


def test_a_deal_won_after_the_period_is_pipeline_when_evaluated_before_its_win() -> None:
    later = build(as_of=at(days=35)).models[0]
    ads = next(r for r in later.rows if r.key == "ads" and r.currency == "EUR")
    assert (ads.pipeline, ads.open_deals) == (Decimal("900.00"), 1)  # D6, won on day 40
    settled = build().models[0]
    assert not [r for r in settled.rows if r.key == "ads" and r.currency == "EUR" and r.pipeline]


def test_compare_puts_each_campaign_side_by_side_with_zero_where_a_model_gives_nothing() -> None:
    report = build(["first", "last", "linear", "W"])
    labels = ["first_touch@v1", "last_touch@v1", "linear@v1", "w_shaped@v1"]
    assert [m.model.label for m in report.models] == labels
    rows = {
        r.key: r.revenue
        for r in report.comparison
        if r.dimension == "campaign" and r.currency == "EUR"
    }
    assert {k: [str(v[label]) for label in labels] for k, v in rows.items()} == {
        "ads": ["0.00", "0.00", "333.33", "300.00"],
        "retarget": ["0.00", "1000.00", "333.33", "100.00"],
        # Largest remainder: the odd cent of a three-way split goes to the earliest touch.
        "webinar": ["1000.00", "0.00", "333.34", "600.00"],
        None: ["500.00", "500.00", "500.00", "500.00"],
    }
    assert [r.key for r in report.comparison if r.dimension == "campaign"][-1] == "ads"  # USD
    webinar = next(r for r in report.comparison if r.key == "webinar")
    assert set(webinar.pipeline.values()) == {Decimal("300.00")}  # D3's only touch


def test_a_single_model_report_has_no_comparison_and_the_same_model_is_listed_once() -> None:
    assert build(["W"]).comparison == []
    assert [m.model.label for m in build(["W", "w_shaped", "w_shaped@v1"]).models] == [
        "w_shaped@v1"
    ]


def test_a_deal_found_on_two_leads_is_counted_once_and_the_report_says_so() -> None:
    copy = [e.model_copy(update={"subject": "L9", "id": f"copy-{e.id}"}) for e in HISTORIES["L1"]]
    report = build(histories={"L1": HISTORIES["L1"], "L9": copy})
    assert report.models[0].totals[0].won_deals == 1
    assert report.warnings == ["deal D1 appears on leads L1 and L9; counted once, on L1"]


def test_models_are_found_by_alias_name_or_explicit_version_and_unknown_ones_are_named() -> None:
    models = resolve_models(CONFIG, ["W", "linear@v1", " first "])
    assert [m.label for m in models] == ["w_shaped@v1", "linear@v1", "first_touch@v1"]
    with pytest.raises(UnknownModel, match="known: first_touch"):
        resolve_models(CONFIG, ["X-shaped"])
    with pytest.raises(UnknownModel):
        resolve_models(CONFIG, ["w_shaped@v9"])
    with pytest.raises(UnknownModel):
        resolve_models(CONFIG, [])


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [("0", "EUR", "0.00"), ("12.5", "EUR", "12.50"), ("100", "JPY", "100"),
     ("1.005", "EUR", "1.005"), ("7", "BHD", "7.000")],
)  # fmt: skip
def test_money_is_shown_at_least_to_the_minor_unit_without_losing_a_digit(
    amount: str, currency: str, shown: str
) -> None:
    assert str(money(Decimal(amount), currency)) == shown


def test_explain_lists_every_touch_with_positions_shares_summing_to_one_and_exact_amounts() -> None:
    models = resolve_models(CONFIG, ["W", "linear"])
    found = explain("D1", [("L1", HISTORIES["L1"])], models, FUNNEL, as_of=at(days=50))
    assert found is not None
    assert (found.status, found.amount, found.lead_id) == ("won", Decimal("1000.00"), "L1")
    assert (found.created_at, found.closed_at, found.lead_stage_at) == (
        at(days=5), at(days=10), at(days=1),
    )  # fmt: skip
    w, linear = found.explanations
    assert [c.positions for c in w.credits] == [
        ["first", "lead_creation"], ["opportunity_creation"], ["closed_won"],
    ]  # fmt: skip
    assert [str(c.amount) for c in w.credits] == ["600.00", "300.00", "100.00"]
    assert [str(c.amount) for c in linear.credits] == ["333.34", "333.33", "333.33"]
    for model in found.explanations:
        assert exact_sum(c.share for c in model.credits) == 1
        assert exact_sum(c.amount for c in model.credits) == found.amount
        assert model.unattributed == 0


def test_explaining_an_open_deal_marks_its_latest_touch_pending() -> None:
    models = resolve_models(CONFIG, ["W"])
    found = explain("D1", [("L1", HISTORIES["L1"])], models, FUNNEL, as_of=at(days=7))
    assert found is not None
    assert (found.status, found.closed_at) == ("open", None)
    assert found.explanations[0].credits[-1].positions == ["pending"]


def test_explaining_a_deal_without_touches_shows_it_all_unattributed() -> None:
    models = resolve_models(CONFIG, ["W"])
    found = explain("D2", [("L2", HISTORIES["L2"])], models, FUNNEL, as_of=at(days=50))
    assert found is not None
    (w,) = found.explanations
    assert (w.credits, w.credited, w.unattributed) == ([], Decimal("0.00"), Decimal("500.00"))


def test_a_deal_unknown_at_as_of_has_no_explanation() -> None:
    models = resolve_models(CONFIG, ["W"])
    assert explain("D6", [("L6", HISTORIES["L6"])], models, FUNNEL, as_of=at(days=21)) is None
    assert explain("nope", [("L1", HISTORIES["L1"])], models, FUNNEL, as_of=at(days=50)) is None


def test_a_new_model_version_can_be_compared_with_the_live_one_before_it_replaces_it(
    tmp_path: Path,
) -> None:
    changed = tmp_path / "attribution.yaml"
    changed.write_text(
        (Path(events_dir.__file__).parent / "attribution.yaml").read_text()
        + "  - name: w_shaped\n    version: 2\n    aliases: [W]\n    kind: positional\n"
        "    weights: {first: 0.4, lead_creation: 0.2, opportunity_creation: 0.2, rest: 0.2}\n"
    )
    config = load_attribution(changed)
    models = resolve_models(config, ["w_shaped@v1", "W"])  # an alias follows the newest
    assert [m.label for m in models] == ["w_shaped@v1", "w_shaped@v2"]
    builder = ReportBuilder(ReportSpec(models, START, END, LATER, ("campaign",)), FUNNEL)
    builder.add_lead("L1", HISTORIES["L1"])
    webinar = next(r for r in builder.report().comparison if r.key == "webinar")
    # v2: first 40% + lead creation 20% on the webinar touch.
    assert webinar.revenue == {"w_shaped@v1": Decimal("600.00"), "w_shaped@v2": Decimal("600.00")}
    retarget = next(r for r in builder.report().comparison if r.key == "retarget")
    assert retarget.revenue == {"w_shaped@v1": Decimal("100.00"), "w_shaped@v2": Decimal("200.00")}
