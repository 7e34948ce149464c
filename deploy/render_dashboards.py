"""Render every dashboard row to a PNG from real data: what Grafana would show, without Grafana.

    python -m deploy.render_dashboards --prometheus http://127.0.0.1:9090 \\
        --database-url postgresql://... --out docs/dashboards --minutes 30

Prometheus panels use ``/api/v1/query_range`` (instant panels ``/api/v1/query``) and SQL
panels run against the read models, with the template variables at "All". Grafana is in no
registry this project can install from, so this is the evidence that the panels show data.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from deploy.queries import (
    PROMETHEUS,
    Target,
    dashboard_targets,
    load_dashboard,
    substitute,
)

DASHBOARDS = Path(__file__).parent / "grafana" / "dashboards"
Series = list[tuple[dict[str, str], list[float], list[float]]]  # labels, times, values


def query_range(client: httpx.Client, expr: str, start: float, end: float, step: float) -> Series:
    """Series of a PromQL range query; raises on a Prometheus error."""
    body = client.get(
        "/api/v1/query_range", params={"query": expr, "start": start, "end": end, "step": step}
    ).json()
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    return [
        (r["metric"], [float(t) for t, _ in r["values"]], [float(v) for _, v in r["values"]])
        for r in body["data"]["result"]
    ]


def query_instant(client: httpx.Client, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
    body = client.get("/api/v1/query", params={"query": expr, "time": at}).json()
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def legend(template: str, labels: Mapping[str, str]) -> str:
    text = re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    return text or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def _unit_formatter(unit: str) -> FuncFormatter:
    def seconds(value: float, _pos: object = None) -> str:
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "min")):
            if abs(value) >= size:
                return f"{value / size:.3g} {suffix}"
        return f"{value:.3g} s"

    def fmt(value: float, _pos: object = None) -> str:
        if unit == "s":
            return seconds(value)
        if unit == "percentunit":
            return f"{value * 100:.3g}%"
        if unit == "percent":
            return f"{value:.3g}%"
        if unit == "bytes":
            return f"{value / 2**20:.3g} MiB"
        suffix = {"ops": "/s", "reqps": " req/s"}.get(unit, "")
        return f"{value:.3g}{suffix}"

    return FuncFormatter(fmt)


def _thresholds(panel: Mapping[str, Any]) -> list[float]:
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {})
    return [s["value"] for s in steps.get("steps", []) if s["value"] is not None]


def _days(unix_times: Sequence[float]) -> list[float]:
    """Matplotlib's date numbers (days since 1970-01-01), for ``xaxis_date()``."""
    return [t / 86400 for t in unix_times]


def _plot_lines(ax: Axes, series: Series, template: str) -> None:
    for labels, times, values in series:
        stamps = _days(times)
        ax.plot(stamps, values, label=legend(template, labels), linewidth=1.4)
    ax.xaxis_date()


def _plot_heatmap(ax: Axes, series: Series) -> None:
    def bound(labels: Mapping[str, str]) -> float:
        return float("inf") if labels["le"] == "+Inf" else float(labels["le"])

    ordered = sorted(series, key=lambda s: bound(s[0]))
    if not ordered:
        return
    times = _days(ordered[0][1])
    width = min(len(s[2]) for s in ordered)
    # The buckets are cumulative: each cell is its bucket minus the one below it.
    rows, below = [], [0.0] * width
    for _labels, _times, values in ordered:
        rows.append([max(0.0, v - b) for v, b in zip(values[:width], below, strict=True)])
        below = values[:width]
    ax.pcolormesh(times[:width], range(len(rows)), rows, cmap="Oranges", shading="nearest")
    labels = [
        s[0]["le"] if s[0]["le"] == "+Inf" else _unit_formatter("s")(bound(s[0])) for s in ordered
    ]
    ax.set_yticks(range(len(rows)), labels)
    ax.xaxis_date()


def _plot_bars(ax: Axes, names: Sequence[str], values: Sequence[float]) -> None:
    ax.barh(list(names), list(values), color="tab:blue")
    ax.invert_yaxis()


async def _sql_rows(database_url: str, query: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [dict(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


def _plot_sql(ax: Axes, target: Target, rows: list[dict[str, Any]]) -> None:
    if target.fmt == "time_series":
        by_metric: dict[str, tuple[list[datetime], list[float]]] = {}
        for r in rows:
            times, values = by_metric.setdefault(str(r["metric"]), ([], []))
            times.append(r["time"])
            values.append(float(r["value"]))
        for name, (times, values) in by_metric.items():
            ax.plot(
                _days([t.timestamp() for t in times]), values, label=name, marker=".", linewidth=1
            )
        ax.xaxis_date()
        return
    first = rows[0] if rows else {}
    numeric = [k for k, v in first.items() if isinstance(v, int | float | Decimal)]
    text = [k for k in first if k not in numeric]
    # The column a person reads first: the share for conversion, else the count.
    preferred = ("conversion_percent", "open_handoffs", "leads", "value")
    column = next((c for c in preferred if c in numeric), numeric[0] if numeric else "")
    names = [" / ".join(str(r[k]) for k in text) for r in rows[:20]]
    _plot_bars(ax, names, [float(r[column] or 0) for r in rows[:20]] if column else [])
    ax.set_xlabel(column)


def render_row(
    client: httpx.Client,
    panels: list[tuple[Mapping[str, Any], list[Target]]],
    out: Path,
    title: str,
    window: tuple[datetime, datetime],
    variables: Mapping[str, str],
    database_url: str | None,
    sql_window: tuple[datetime, datetime],
) -> None:
    start, end = window
    step = max(1.0, (end - start).total_seconds() / 300)
    cols = min(3, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.4 * cols, 3.8 * nrows), squeeze=False)
    for ax, (panel, targets) in zip(axes.flat, panels, strict=False):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        for target in targets:
            if target.datasource == PROMETHEUS:
                expr = substitute(target.query, variables)
                if target.instant or panel["type"] in ("stat", "bargauge"):
                    points = query_instant(client, expr, end.timestamp())
                    _plot_bars(ax, [legend(target.legend, m) for m, _ in points],
                               [v for _, v in points])  # fmt: skip
                    ax.xaxis.set_major_formatter(_unit_formatter(unit))
                    continue
                series = query_range(client, expr, start.timestamp(), end.timestamp(), step)
                if panel["type"] == "heatmap":
                    _plot_heatmap(ax, series)
                    continue
                _plot_lines(ax, series, target.legend)
                ax.yaxis.set_major_formatter(_unit_formatter(unit))
            elif database_url:
                query = substitute(target.query, variables, start=sql_window[0], end=sql_window[1])
                _plot_sql(ax, target, asyncio.run(_sql_rows(database_url, query)))
        if panel["type"] == "timeseries":
            for limit in _thresholds(panel):
                ax.axhline(limit, color="red", linestyle="--", linewidth=0.8)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="upper left")
        ax.set_title(panel["title"], fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def render_dashboards(
    prometheus_url: str,
    out_dir: Path,
    *,
    window: tuple[datetime, datetime],
    variables: Mapping[str, str],
    database_url: str | None = None,
    sql_window: tuple[datetime, datetime] | None = None,
    dashboards: Path = DASHBOARDS,
) -> list[Path]:
    """One PNG per dashboard row, named ``<dashboard file>--<row>.png``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(base_url=prometheus_url, timeout=30) as client:
        for path in sorted(dashboards.glob("*.json")):
            board = load_dashboard(path)
            by_title = {pn["title"]: pn for pn in board["panels"] if pn["type"] != "row"}
            rows: dict[str, dict[str, list[Target]]] = {}
            for target in dashboard_targets(path):
                rows.setdefault(target.row, {}).setdefault(target.panel, []).append(target)
            for row, panel_targets in rows.items():
                slug = re.sub(r"[^a-z0-9]+", "-", row.lower()).strip("-")
                out = out_dir / f"{path.stem}--{slug}.png"
                members = [(by_title[name], ts) for name, ts in panel_targets.items()]
                render_row(client, members, out, f"{board['title']}: {row}", window,
                           variables, database_url, sql_window or window)  # fmt: skip
                written.append(out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render dashboard rows to PNG files.")
    parser.add_argument("--prometheus", required=True, help="Prometheus base URL")
    parser.add_argument("--database-url", help="PostgreSQL DSN for the SQL panels")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=30.0, help="time range to draw")
    parser.add_argument("--rate-interval", default="1m")
    args = parser.parse_args(argv)
    end = datetime.now(UTC)
    variables = {"team": ".*", "stage": ".*", "sales_team": ".*",
                 "__rate_interval": args.rate_interval, "__interval": "15s",
                 "__range": f"{int(args.minutes)}m"}  # fmt: skip
    written = render_dashboards(
        args.prometheus, args.out, window=(end - timedelta(minutes=args.minutes), end),
        variables=variables, database_url=args.database_url,
        sql_window=(end - timedelta(days=7), end),
    )  # fmt: skip
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
