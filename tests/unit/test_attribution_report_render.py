"""What ``leadledger attribution`` prints: tables with right-aligned exact numbers, a totals
row per currency and the unattributed row; CSV that sums back to the totals."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from rich.console import Console
from rich.table import Table

from projections.attribution.money import exact_sum
from services.attribution_render import (
    amount,
    compare_tables,
    explain_csv,
    explain_table,
    percent,
    report_csv,
    report_tables,
)
from services.store.attribution_report import explain, resolve_models

from .factories import FUNNEL
from .test_attribution_report import CONFIG, HISTORIES, LATER, build


def render(table: Table) -> list[str]:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text().splitlines()


def row(lines: list[str], first_cell: str) -> list[str]:
    """The cells of the first body line whose first cell is ``first_cell``."""
    for line in lines:
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in:\n" + "\n".join(lines))


def test_each_model_and_dimension_gets_a_table_named_after_the_model_version() -> None:
    tables = report_tables(build(["first", "W"]))
    assert [str(t.title) for t in tables] == [
        "Attribution by campaign: first_touch@v1", "Attribution by channel: first_touch@v1",
        "Attribution by campaign: w_shaped@v1", "Attribution by channel: w_shaped@v1",
    ]  # fmt: skip


def test_the_table_right_aligns_numbers_and_shows_unattributed_and_a_total_per_currency() -> None:
    table = report_tables(build(["W"]))[0]
    assert [c.justify for c in table.columns] == ["left", "left", *["right"] * 7]
    lines = render(table)
    body = [line for line in lines if line.startswith("│")]
    names = [c.split("│")[1].strip() for c in body]
    # EUR by revenue (biggest first), unattributed, total; then USD.
    assert names == ["webinar", "ads", "retarget", "(unattributed)", "total", "ads", "total"]
    assert row(lines, "webinar") == [
        "webinar", "EUR", "600.00", "40.00%", "1", "1", "300.00", "300.00", "1",
    ]  # fmt: skip
    assert row(lines, "(unattributed)")[:5] == ["(unattributed)", "EUR", "500.00", "33.33%", "1"]
    assert row(lines, "total") == ["total", "EUR", "1,500.00", "100.00%", "2", "3", "300.00",
                                   "300.00", "1"]  # fmt: skip
    assert "end exclusive" in "".join(lines)


def test_compare_shows_a_column_per_model_for_revenue_and_then_for_open_pipeline() -> None:
    table, pipeline, by_channel, _ = compare_tables(build(["first", "last", "linear", "W"]))
    lines = render(table)
    header = next(line for line in lines if "first_touch@v1" in line)
    assert [h.strip() for h in header.strip("┃ ").split("┃")] == [
        "campaign", "cur", "first_touch@v1", "last_touch@v1", "linear@v1", "w_shaped@v1",
    ]  # fmt: skip
    assert row(lines, "webinar")[2:] == ["1,000.00", "0.00", "333.34", "600.00"]
    assert row(lines, "total")[2:] == ["1,500.00"] * 4
    assert str(by_channel.title) == "Won revenue by channel, per model"
    assert str(pipeline.title) == "Open pipeline (pending included) by campaign, per model"
    # D3 (open, EUR 300.00, one webinar touch): the same under every model; no USD pipeline.
    pipeline_lines = render(pipeline)
    assert row(pipeline_lines, "webinar")[2:] == ["300.00"] * 4
    assert row(pipeline_lines, "total")[1:] == ["EUR", *["300.00"] * 4]
    assert not [line for line in pipeline_lines if "USD" in line]
    assert "(unattributed)" not in "".join(pipeline_lines), "no open deal lacks a touch"


def test_compare_says_so_when_no_deal_was_won_in_the_period() -> None:
    report = build(["first", "W"], histories={"L3": HISTORIES["L3"]})
    won, pipeline, _, _ = compare_tables(report)
    assert "(no deal won in the period)" in "".join(render(won))
    assert row(render(pipeline), "webinar")[2:] == ["300.00", "300.00"]


def test_an_explanation_lists_positions_shares_and_amounts_with_a_total_of_the_deal() -> None:
    models = resolve_models(CONFIG, ["W"])
    found = explain("D1", [("L1", HISTORIES["L1"])], models, FUNNEL, as_of=LATER)
    assert found is not None
    lines = render(explain_table(found))
    assert "Deal D1 of lead L1: won, EUR 1,000.00 (w_shaped@v1)" in lines[0]
    assert row(lines, "1")[5:] == ["first, lead_creation", "60%", "600.00"]
    assert row(lines, "3")[5:] == ["closed_won", "10%", "100.00"]
    assert row(lines, "")[2:] == ["total", "", "", "", "100%", "1,000.00"]


def test_an_explanation_of_a_deal_without_touches_shows_the_amount_unattributed() -> None:
    models = resolve_models(CONFIG, ["W", "linear"])
    found = explain("D2", [("L2", HISTORIES["L2"])], models, FUNNEL, as_of=LATER)
    assert found is not None
    text = "\n".join(render(explain_table(found)))
    assert "(unattributed)" in text
    assert "no touch before the close" in text


def test_report_csv_has_one_line_per_row_and_sums_back_to_the_totals() -> None:
    report = build(["first", "W"])
    lines = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert len(lines) == sum(len(m.rows) for m in report.models)
    for m in report.models:
        for total in m.totals:
            mine = [
                Decimal(x["revenue"]) for x in lines
                if x["model"] == m.model.name and x["currency"] == total.currency
                and x["dimension"] == "campaign"
            ]  # fmt: skip
            assert exact_sum(mine) == total.revenue
    assert {x["model_version"] for x in lines} == {"1"}
    assert any(x["key"] == "" for x in lines), "the unattributed row has an empty key"


def test_explain_csv_has_one_line_per_model_and_touch() -> None:
    models = resolve_models(CONFIG, ["W", "linear"])
    found = explain("D1", [("L1", HISTORIES["L1"])], models, FUNNEL, as_of=LATER)
    assert found is not None
    lines = list(csv.DictReader(io.StringIO(explain_csv(found))))
    assert [(x["model"], x["positions"], x["amount"]) for x in lines[:2]] == [
        ("w_shaped", "first|lead_creation", "600.00"),
        ("w_shaped", "opportunity_creation", "300.00"),
    ]
    assert len(lines) == 6


@pytest.mark.parametrize(
    ("share", "text"),
    [("1", "100%"), ("0.3", "30%"), ("0.333333333333", "33.3333%"), ("0", "0%")],
)
def test_shares_read_as_percentages(share: str, text: str) -> None:
    assert percent(Decimal(share)) == text


def test_amounts_keep_every_digit_and_separate_thousands() -> None:
    assert amount(Decimal("1234567.50")) == "1,234,567.50"
    assert amount(Decimal("0.005")) == "0.005"


def test_explaining_under_several_models_puts_their_amounts_side_by_side() -> None:
    models = resolve_models(CONFIG, ["first", "linear", "W"])
    found = explain("D1", [("L1", HISTORIES["L1"])], models, FUNNEL, as_of=LATER)
    assert found is not None
    table = explain_table(found)
    assert [str(c.header) for c in table.columns] == [
        "#", "time (UTC)", "campaign", "channel", "positions",
        "first_touch@v1", "linear@v1", "w_shaped@v1",
    ]  # fmt: skip
    lines = render(table)
    assert row(lines, "1")[4:] == ["first, lead_creation", "1,000.00", "333.34", "600.00"]
    assert row(lines, "")[2:] == ["total", "", "", *["1,000.00"] * 3]
