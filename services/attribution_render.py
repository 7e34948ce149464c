"""Rich tables and CSV for attribution reports and deal explanations (no I/O).

Numbers are right-aligned with thousands separators and every exact digit; each currency
has its own totals row, because amounts in different currencies are never added. The
unattributed row (won deals with no touch before their close) is always shown, so the rows
of a currency sum to its won revenue.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from rich.table import Table

from services.api.attribution_models import (
    AttributionReport,
    CurrencyTotal,
    DealExplanation,
    Dimension,
    ModelReport,
    RollupRow,
)

UNATTRIBUTED = "(unattributed)"


def amount(value: Decimal) -> str:
    """``12,500.00``: every digit kept, thousands separated."""
    return f"{value:,f}"


def percent(share: Decimal) -> str:
    """``30%``, ``33.3333%``: a share as a percentage, at most 4 decimals."""
    text = f"{share * 100:.4f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _when(value: datetime | None) -> str:
    return "-" if value is None else f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def caption(report: AttributionReport) -> str:
    """The period, as-of time and the meaning of pipeline, under every table."""
    p = report.period
    return (
        f"deals won {_when(p.start)} to {_when(p.end)} UTC (end exclusive); as of "
        f"{_when(report.as_of)} UTC. Pipeline: deals open at as-of, created before the "
        "period end; pending: its part on the latest touch."
    )


def _key(row: RollupRow) -> str:
    return row.key if row.key is not None else UNATTRIBUTED


def _ordered(rows: Sequence[RollupRow]) -> list[RollupRow]:
    """Biggest revenue first (then pipeline, then key), the unattributed row last."""
    return sorted(rows, key=lambda r: (r.key is None, -r.revenue, -r.pipeline, r.key or ""))


def report_tables(report: AttributionReport) -> list[Table]:
    """One table per model and dimension, with a totals row per currency."""
    return [_model_table(m, d, report) for m in report.models for d in report.by]


def _model_table(model: ModelReport, dimension: Dimension, report: AttributionReport) -> Table:
    table = Table(
        dimension, "cur",
        *(("revenue", "share", "deals", "touches", "pipeline", "pending", "open deals")),
        title=f"Attribution by {dimension}: {model.model.label}", caption=caption(report),
    )  # fmt: skip
    for column in table.columns[2:]:
        column.justify = "right"
    for total in model.totals:
        rows = [r for r in model.rows if r.dimension == dimension and r.currency == total.currency]
        for r in _ordered(rows):
            share = f"{r.revenue_share * 100:.2f}%"  # exact: revenue_share has 4 places
            table.add_row(
                _key(r), r.currency, amount(r.revenue), share, str(r.deals),
                str(r.touches), amount(r.pipeline), amount(r.pending), str(r.open_deals),
                style="italic" if r.key is None else None,
            )  # fmt: skip
        _total_row(table, total)
    if not model.totals:
        table.add_row("(no deals)", *[""] * 8)
    return table


def _total_row(table: Table, t: CurrencyTotal) -> None:
    table.add_row(
        "total", t.currency, amount(t.revenue), "100.00%" if t.won_deals else "-",
        str(t.won_deals), str(t.touches), amount(t.pipeline), amount(t.pending),
        str(t.open_deals), style="bold", end_section=True,
    )  # fmt: skip


def compare_tables(report: AttributionReport) -> list[Table]:
    """Per dimension: each key's won revenue under every model, side by side; then, when
    there are open deals, their pipeline credit the same way. Keys and currencies with
    nothing under any model are left out."""
    tables = []
    for dimension in report.by:
        tables.append(_compare_table(report, dimension, "revenue"))
        if any(t.open_deals for m in report.models for t in m.totals):
            tables.append(_compare_table(report, dimension, "pipeline"))
    return tables


def _compare_table(
    report: AttributionReport, dimension: Dimension, figure: Literal["revenue", "pipeline"]
) -> Table:
    labels = [m.model.label for m in report.models]
    what = "Won revenue" if figure == "revenue" else "Open pipeline (pending included)"
    table = Table(dimension, "cur", *labels, title=f"{what} by {dimension}, per model",
                  caption=caption(report))  # fmt: skip
    for column in table.columns[2:]:
        column.justify = "right"
    rows = [r for r in report.comparison if r.dimension == dimension]
    for currency in sorted({r.currency for r in rows}):
        totals = [
            next((getattr(t, figure) for t in m.totals if t.currency == currency), Decimal(0))
            for m in report.models
        ]
        if not any(totals):
            continue
        mine = [r for r in rows if r.currency == currency]
        mine.sort(key=lambda r: (r.key is None, -max(getattr(r, figure).values()), r.key or ""))
        for r in mine:
            values = getattr(r, figure)
            if not any(values.values()):
                continue
            table.add_row(
                r.key if r.key is not None else UNATTRIBUTED, currency,
                *(amount(values[label]) for label in labels),
                style="italic" if r.key is None else None,
            )  # fmt: skip
        table.add_row("total", currency, *map(amount, totals), style="bold", end_section=True)
    if not table.rows:
        none = "(no deal won in the period)" if figure == "revenue" else "(no open deal)"
        table.add_row(none, "", *[""] * len(labels))
    return table


def explain_table(found: DealExplanation) -> Table:
    """Each counted touch of the deal: its positions and its share and amount under one
    model, or its amount under each of several models (then without the touch type, so the
    table stays readable)."""
    labels = [e.model.label for e in found.explanations]
    single = len(labels) == 1
    lead = ["#", "time (UTC)", "campaign", "channel", *(["touch type"] if single else []),
            "positions"]  # fmt: skip
    table = Table(
        *lead, *(["share", "amount"] if single else labels),
        title=(f"Deal {found.deal_id} of lead {found.lead_id}: {found.status}, "
               f"{found.currency} {amount(found.amount)}"
               + (f" ({labels[0]})" if single else "")),
        caption=(f"lead stage {_when(found.lead_stage_at)}, deal created "
                 f"{_when(found.created_at)}, closed {_when(found.closed_at)}; as of "
                 f"{_when(found.as_of)} UTC"),
    )  # fmt: skip
    for column in table.columns[len(lead) :]:
        column.justify = "right"
    blank = [""] * (len(lead) - 3)
    first = found.explanations[0]
    for index, credit in enumerate(first.credits):
        if single:
            values = [percent(credit.share), amount(credit.amount)]
        else:
            values = [amount(e.credits[index].amount) for e in found.explanations]
        kind = [credit.touch_type] if single else []
        table.add_row(
            str(index + 1), _when(credit.at), credit.campaign_id, credit.channel, *kind,
            ", ".join(credit.positions), *values,
        )  # fmt: skip
    if any(e.unattributed for e in found.explanations):
        cells = ["", amount(first.unattributed)] if single else [
            amount(e.unattributed) for e in found.explanations
        ]  # fmt: skip
        table.add_row("", "", UNATTRIBUTED, *blank[:-1], "no touch before the close", *cells,
                      style="italic")  # fmt: skip
    total = ["100%", amount(found.amount)] if single else [amount(found.amount)] * len(labels)
    table.add_row("", "", "total", *blank, *total, style="bold", end_section=True)
    return table


def report_csv(report: AttributionReport) -> str:
    """One line per model, dimension, currency and key (empty key: unattributed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["model", "model_version", "dimension", "key", "currency", "revenue", "revenue_share",
         "deals", "touches", "pipeline", "pending", "open_deals", "open_touches",
         "period_start", "period_end", "as_of"]
    )  # fmt: skip
    for m in report.models:
        for r in m.rows:
            writer.writerow(
                [m.model.name, m.model.version, r.dimension, r.key or "", r.currency, r.revenue,
                 r.revenue_share, r.deals, r.touches, r.pipeline, r.pending, r.open_deals,
                 r.open_touches, report.period.start.isoformat(), report.period.end.isoformat(),
                 report.as_of.isoformat()]
            )  # fmt: skip
    return out.getvalue()


def explain_csv(found: DealExplanation) -> str:
    """One line per model and counted touch; positions joined with ``|``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["model", "model_version", "deal_id", "lead_id", "status", "currency", "deal_amount",
         "touch_id", "at", "campaign_id", "channel", "touch_type", "positions", "share",
         "amount"]
    )  # fmt: skip
    for e in found.explanations:
        for c in e.credits:
            writer.writerow(
                [e.model.name, e.model.version, found.deal_id, found.lead_id, found.status,
                 found.currency, found.amount, c.touch_id, c.at.isoformat(), c.campaign_id,
                 c.channel, c.touch_type, "|".join(c.positions), c.share, c.amount]
            )  # fmt: skip
    return out.getvalue()
