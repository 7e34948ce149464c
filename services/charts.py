"""PNG charts for people: the funnel of a period and a plan against the actual run rate.

matplotlib with the non-interactive Agg backend (no display needed), one figure per file,
closed after saving so a long-running process never accumulates figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.api.funnel_models import FunnelReport
from services.api.plan_models import PlanReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_BAR = "#3b6ea5"
_PREVIOUS = "#9aa5b1"
_ACTUAL = "#e08a3c"


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    return fig, fig.add_subplot()


def _day(value: object) -> str:
    return f"{value:%Y-%m-%d}"


def funnel_chart(report: FunnelReport, out: Path) -> None:
    """Leads entering each main-path stage in the period as centred bars, each labelled with
    its count and the share that reached the next stage; the previous period (when in the
    report) as grey outlines behind them."""
    rows = [r for r in report.period.stages if r.stage in _main_path(report)]
    previous = {r.stage: r for r in report.previous.stages} if report.previous else {}
    fig, ax = _figure(11, 0.75 * len(rows) + 2.2)
    widest = max([r.inflow for r in rows] + [p.inflow for p in previous.values()] + [1])
    for y, r in enumerate(rows):
        if r.stage in previous:
            w = previous[r.stage].inflow
            ax.barh(y, w, left=-w / 2, height=0.8, color="none", edgecolor=_PREVIOUS,
                    linestyle="--", linewidth=1.2)  # fmt: skip
        ax.barh(y, r.inflow, left=-r.inflow / 2, height=0.66, color=_BAR)
        label = f"{r.inflow:,} entries"
        if r.conversion is not None and r.next_stage is not None:
            share = f"{r.conversion * 100:.1f}% of {r.entrants:,} leads"
            label += f"  ·  {share} reached {r.next_stage}"
        ax.text(widest / 2 + widest * 0.03, y, label, va="center", fontsize=10)
    ax.set_yticks(range(len(rows)), [r.stage for r in rows], fontsize=11)
    ax.tick_params(axis="y", length=0)
    ax.invert_yaxis()
    ax.set_xlim(-widest / 2 - widest * 0.02, widest * 1.45)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    period = report.period
    title = f"Entries into each stage, {_day(period.start)} to {_day(period.end)} (exclusive)"
    ax.set_title(title, fontsize=13, loc="left")
    note = (
        f"Bars: entries into each stage in the period (a re-entry counts again). As of "
        f"{report.as_of:%Y-%m-%d %H:%M} UTC: % of the leads entering that reached the next "
        "stage by then."
    )
    if report.previous is not None:
        note += "\nDashed outline: the previous period of equal length."
    fig.text(0.01, 0.01, note, fontsize=8, color="#444444", va="bottom")
    fig.subplots_adjust(left=0.13, right=0.98, top=0.9, bottom=0.16 if previous else 0.12)
    fig.savefig(out)


def _main_path(report: FunnelReport) -> set[str]:
    # Main-path stages are the ones with a next stage, plus the last one (the stage they
    # lead to that has none): the report lists the main path first, side stages after.
    stages = report.period.stages
    main = {r.stage for r in stages if r.next_stage is not None}
    main |= {r.next_stage for r in stages if r.next_stage is not None}
    return {s for s in main if s is not None}


def plan_chart(report: PlanReport, out: Path) -> None:
    """Per step (deals back to leads): the volume needed per month against the run rate of
    the observation window, each step on its own scale, with the gap written beside it."""
    from services.plan_render import label

    steps = report.steps
    fig = _figure(11, 1.05 * max(len(steps), 1) + 2.0)[0]
    fig.clear()
    axes = fig.subplots(max(len(steps), 1), 1, squeeze=False)[:, 0]
    for ax, s in zip(axes, steps, strict=False):
        need, have = float(s.needed_per_month), float(s.run_rate_per_month)
        top = max(need, have, 1.0)
        ax.barh([0], [need], height=0.8, color=_BAR)
        ax.barh([1], [have], height=0.8, color=_ACTUAL)
        ax.text(need + top * 0.01, 0, f"{need:,.1f} needed", va="center", fontsize=9)
        ax.text(have + top * 0.01, 1, f"{have:,.1f} run rate", va="center", fontsize=9)
        covered = f"run rate = {have / need * 100:.0f}% of need" if need else "nothing needed"
        gap = float(s.gap_per_month)
        side = "short by" if gap > 0 else "ahead by"
        verdict = f"{side} {abs(gap):,.1f} / month\n({covered})"
        ax.text(top * 1.32, 0.5, verdict, va="center", fontsize=9,
                color="#a33" if gap > 0 else "#262")  # fmt: skip
        ax.set_xlim(0, top * 1.9)
        ax.set_ylim(1.6, -0.6)
        ax.set_yticks([0.5], [label(s.stage)], fontsize=11)
        ax.tick_params(axis="y", length=0)
        ax.set_xticks([])
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
    if not steps:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, report.blocked or "no plan", ha="center", va="center", wrap=True)
    title = (
        f"Plan for {report.currency} {report.revenue:,} in {report.period}: needed per month "
        f"(blue) vs the run rate (orange)"
    )
    fig.suptitle(title, fontsize=12, x=0.01, ha="left")
    note = (
        f"Run rate: entries per month in the {report.window.days:g}-day window to "
        f"{report.window.end:%Y-%m-%d} (deals: won, any currency). Each row has its own scale."
    )
    if report.blocked:
        note += f"\nStopped: {report.blocked}"
    fig.text(0.01, 0.01, note, fontsize=8, color="#444444", va="bottom")
    fig.subplots_adjust(left=0.14, right=0.98, top=0.9, bottom=0.12, hspace=0.35)
    fig.savefig(out)
