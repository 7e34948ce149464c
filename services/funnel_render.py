"""Rich tables and CSV for funnel flow reports (no I/O).

The table shows one row per stage; ``--compare previous`` adds the previous period and a
change table, ``--by`` one compact table per dimension (entries and conversion per
main-path stage), ``--cohorts`` one row per creation month. CSV is long format: one row per
(section, dimension, key, stage), so a spreadsheet can pivot it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from rich.table import Table

from services.api.funnel_models import FunnelReport, PeriodFlow, StageChange, StageRow
from services.cli_format import duration

_FIELDS = ("balance_start", "inflow", "outflow", "balance_end", "entrants", "converted",
           "conversion", "exits", "median_seconds", "p90_seconds")  # fmt: skip


def when(value: datetime) -> str:
    """``2026-10-01 00:00`` in UTC."""
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}"


def pct(rate: Decimal | None) -> str:
    """``25.13%``; ``-`` when there is no rate."""
    return "-" if rate is None else f"{rate * 100:.2f}%"


def _signed(value: float | int | Decimal | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:+,}{unit}" if isinstance(value, int) else f"{value:+.2f}{unit}"


def caption(report: FunnelReport, period: PeriodFlow | None = None) -> str:
    """The period, as-of and what conversion means, under every table."""
    shown = period or report.period
    return (
        f"[{when(shown.start)}, {when(shown.end)}) UTC, as of "
        f"{when(report.as_of)} UTC; {report.leads:,} leads. Conversion: entrants of the period "
        "that reached the next main-path stage by as-of. Time in stage: stays that ended in "
        "the period (nearest rank)."
    )


def stage_table(period: PeriodFlow, title: str, report: FunnelReport) -> Table:
    """One row per stage: balances, flows, conversion and time in stage."""
    table = Table(title=title, caption=caption(report, period))
    table.add_column("stage")
    table.add_column("team")
    for name in ("start", "in", "out", "end", "entrants", "next", "reached", "conversion",
                 "exits", "median", "p90"):  # fmt: skip
        table.add_column(name, justify="left" if name == "next" else "right")
    for r in period.stages:
        table.add_row(
            r.stage, r.team, f"{r.balance_start:,}", f"{r.inflow:,}", f"{r.outflow:,}",
            f"{r.balance_end:,}", f"{r.entrants:,}", r.next_stage or "-",
            "-" if r.converted is None else f"{r.converted:,}", pct(r.conversion),
            f"{r.exits:,}", duration(r.median_seconds), duration(r.p90_seconds),
        )  # fmt: skip
    return table


def change_table(changes: Sequence[StageChange], report: FunnelReport) -> Table:
    """This period minus the previous one, per stage."""
    assert report.previous is not None
    previous = f"previous period [{when(report.previous.start)}, {when(report.previous.end)})"
    table = Table(title="Change against the previous period", caption=f"this period minus the "
                  f"{previous}; conversion in percentage points")  # fmt: skip
    table.add_column("stage")
    for name in ("in", "out", "end", "conversion", "median"):
        table.add_column(name, justify="right")
    for c in changes:
        median = "-" if c.median_seconds is None else (
            ("+" if c.median_seconds >= 0 else "-") + duration(abs(c.median_seconds))
        )  # fmt: skip
        table.add_row(
            c.stage, _signed(c.inflow), _signed(c.outflow), _signed(c.balance_end),
            _signed(c.conversion_points, " pts"), median,
        )  # fmt: skip
    return table


def breakdown_tables(report: FunnelReport) -> list[Table]:
    """Per dimension: one row per key with entries and conversion per main-path stage."""
    main = [r.stage for r in report.period.stages if r.next_stage is not None]
    tables = []
    for dimension in report.by:
        table = Table(title=f"Entrants (conversion to the next stage) by {dimension}",
                      caption=caption(report))  # fmt: skip
        table.add_column(dimension)
        table.add_column("leads", justify="right")
        for stage in main:
            table.add_column(stage, justify="right")
        for b in (b for b in report.breakdowns if b.dimension == dimension):
            rows = {r.stage: r for r in b.stages}
            cells = [f"{rows[s].entrants:,} ({pct(rows[s].conversion)})" for s in main]
            table.add_row(b.key, f"{b.leads:,}", *cells)
        tables.append(table)
    return tables


def cohort_table(report: FunnelReport) -> Table:
    """Leads created per month and their current stage."""
    stages = [r.stage for r in report.period.stages]
    seen = {s for c in report.cohorts or () for s in c.current}
    columns = [s for s in stages if s in seen] + sorted(seen - set(stages))
    title = f"Cohorts: leads created per month, and their stage at {when(report.as_of)}"
    table = Table(title=title)
    table.add_column("created in")
    table.add_column("leads", justify="right")
    for stage in columns:
        table.add_column(stage, justify="right")
    for c in report.cohorts or ():
        table.add_row(c.month, f"{c.created:,}", *(f"{c.current.get(s, 0):,}" for s in columns))
    return table


def tables(report: FunnelReport) -> list[Table]:
    """Everything the report holds, in reading order."""
    out = [stage_table(report.period, "Funnel flow", report)]
    if report.previous is not None:
        out.append(stage_table(report.previous, "Previous period", report))
        out.append(change_table(report.changes, report))
    out += breakdown_tables(report)
    if report.cohorts is not None:
        out.append(cohort_table(report))
    return out


def _csv_rows(section: str, dimension: str, key: str, rows: Sequence[StageRow]) -> list[list[str]]:
    out = []
    for r in rows:
        values = [getattr(r, name) for name in _FIELDS]
        out.append([section, dimension, key, r.stage, r.team,
                    *("" if v is None else str(v) for v in values)])  # fmt: skip
    return out


def report_csv(report: FunnelReport) -> str:
    """Long format: section (period, previous, breakdown, cohort), dimension, key, stage.
    A cohort row (key: the creation month) holds the leads now in the stage in
    ``balance_end``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "dimension", "key", "stage", "team", *_FIELDS])
    writer.writerows(_csv_rows("period", "", "", report.period.stages))
    if report.previous is not None:
        writer.writerows(_csv_rows("previous", "", "", report.previous.stages))
    for b in report.breakdowns:
        writer.writerows(_csv_rows("breakdown", b.dimension, b.key, b.stages))
    for c in report.cohorts or ():
        for stage, n in c.current.items():
            writer.writerow(["cohort", "created_month", c.month, stage, "", "", "", "", str(n)])
    return buffer.getvalue()
