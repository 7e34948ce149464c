"""PNG charts for people: the funnel of a period and a plan against the actual run rate.

matplotlib with the non-interactive Agg backend (no display needed), one figure per file,
closed after saving so a long-running process never accumulates figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from services.api.funnel_models import FunnelReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_BAR = "#3b6ea5"
_PREVIOUS = "#9aa5b1"


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
