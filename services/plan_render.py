"""Rich tables and CSV for reverse-funnel plans (no I/O)."""

from __future__ import annotations

import csv
import io

from rich.table import Table

from services.api.plan_models import PlanRate, PlanReport
from services.funnel_render import pct, when

#: How the plan calls the volume of each stage.
LABELS = {"customer": "deals", "opportunity": "opportunities", "sql": "SQLs", "sal": "SALs",
          "mql": "MQLs", "lead": "leads"}  # fmt: skip


def label(stage: str) -> str:
    return LABELS.get(stage, stage)


def _rate(r: PlanRate | None) -> str:
    if r is None:
        return "-"
    flag = " (!)" if r.small_sample else ""
    return f"{pct(r.rate)} of {r.entrants:,}{flag}"


def plan_table(report: PlanReport) -> Table:
    """One row per step, from deals back to leads: total, months, per rep, run rate, gap."""
    title = (
        f"Plan: {report.currency} {report.revenue:,} in {report.period}, {report.reps} reps "
        f"({'active in the window' if report.reps_observed else 'given'})"
    )
    avg = "-" if report.average_deal is None else f"{report.currency} {report.average_deal:,}"
    caption = (
        f"average deal {avg} from {report.deals_won:,} won deals; window "
        f"[{when(report.window.start)}, {when(report.window.end)}) UTC. Rate: conversion "
        "from this stage to the row above, of its sample; (!) fewer leads than --min-sample."
    )
    table = Table(title=title, caption=caption)
    table.add_column("needed")
    table.add_column("rate used", justify="right")
    table.add_column("total", justify="right")
    for month in report.months:
        table.add_column(month, justify="right")
    table.add_column("per rep / month", justify="right")
    table.add_column("run rate / month", justify="right")
    table.add_column("gap / month", justify="right")
    for s in report.steps:
        reps = sorted(set(s.per_rep_per_month.values()))
        table.add_row(
            label(s.stage), _rate(s.rate), f"{s.needed:,}",
            *(f"{s.per_month[m]:,}" for m in report.months),
            " / ".join(f"{n:,}" for n in reps), f"{s.run_rate_per_month:,}",
            f"{s.gap_per_month:+,}",
        )  # fmt: skip
    return table


def notes(report: PlanReport) -> list[str]:
    """Lines printed under the table: stop reason, SLA, warnings, assumptions."""
    out = []
    if report.blocked:
        out.append(f"[red]plan stopped:[/red] {report.blocked}")
    if report.sla is not None:
        out.append(f"SLA: {report.sla.note}")
    out += [f"[yellow]warning:[/yellow] {w}" for w in report.warnings]
    out.append("Assumptions:")
    out += [f"  - {a}" for a in report.assumptions]
    return out


def plan_csv(report: PlanReport) -> str:
    """One row per (step, month), plus the step's rate and run rate."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["stage", "month", "needed", "per_rep", "rate_from_stage", "converted",
                     "entrants", "run_rate_per_month", "gap_per_month"])  # fmt: skip
    for s in report.steps:
        r = s.rate
        for month in report.months:
            writer.writerow([
                s.stage, month, s.per_month[month], s.per_rep_per_month[month],
                "" if r is None or r.rate is None else r.rate, "" if r is None else r.converted,
                "" if r is None else r.entrants, s.run_rate_per_month, s.gap_per_month,
            ])  # fmt: skip
    return buffer.getvalue()
