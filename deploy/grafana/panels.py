"""Small constructors for Grafana 11 dashboard JSON (schemaVersion 39).

The dashboards are generated so that every panel gets a unit, the provisioned data source
uids and a consistent layout; the committed JSON is what Grafana provisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from events.funnel import Funnel, Team

PROMETHEUS_DS = {"type": "prometheus", "uid": "leadledger-prometheus"}
POSTGRES_DS = {"type": "grafana-postgresql-datasource", "uid": "leadledger-postgres"}

Json = dict[str, Any]
#: Grafana picks a rate window that always spans several scrapes.
RATE = "$__rate_interval"


def prom(expr: str, legend: str = "", *, instant: bool = False, fmt: str = "") -> Json:
    """A Prometheus target; refIds are assigned when the panel is built."""
    target: Json = {"datasource": PROMETHEUS_DS, "expr": expr, "legendFormat": legend}
    target["range"], target["instant"] = not instant, instant
    if fmt:
        target["format"] = fmt
    return target


def sql(query: str, fmt: str = "table") -> Json:
    """A PostgreSQL target with raw SQL (Grafana macros such as $__timeFilter allowed)."""
    return {
        "datasource": POSTGRES_DS,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": query,
    }


def thresholds(*steps: tuple[str, float | None]) -> Json:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def sla_thresholds(warning: float, limit: float) -> Json:
    """Green below the warning, orange from the warning, red from the SLA limit."""
    return thresholds(("green", None), ("orange", warning), ("red", limit))


def panel(
    kind: str,
    title: str,
    targets: list[Json],
    *,
    unit: str,
    description: str = "",
    width: int = 12,
    height: int = 8,
    threshold_steps: Json | None = None,
    overrides: list[Json] | None = None,
    options: Json | None = None,
    custom: Json | None = None,
) -> Json:
    """A panel without position or id; ``dashboard()`` lays it out."""
    datasource = targets[0]["datasource"]
    defaults: Json = {"unit": unit, "custom": dict(custom or {})}
    if threshold_steps is not None:
        defaults["thresholds"] = threshold_steps
        if kind == "timeseries":
            # Draw the SLA limits on the graph, not only in the legend colours.
            defaults["custom"]["thresholdsStyle"] = {"mode": "line+area"}
    for ref, target in zip("ABCDEFGH", targets, strict=False):
        target["refId"] = ref
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or _default_options(kind),
        "gridPos": {"w": width, "h": height},
    }


def _default_options(kind: str) -> Json:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if kind == "timeseries":
        return {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind == "stat":
        return {"reduceOptions": reduce, "colorMode": "background", "graphMode": "area"}
    if kind == "bargauge":
        return {"reduceOptions": reduce, "orientation": "horizontal", "displayMode": "gradient"}
    if kind == "heatmap":
        return {
            "calculate": False,
            "yAxis": {"unit": "s"},
            "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
            "cellGap": 1,
            "rowsFrame": {"layout": "le"},
            "tooltip": {"mode": "single", "yHistogram": True},
        }
    if kind == "table":
        return {"showHeader": True, "cellHeight": "sm"}
    return {}


def override(name: str, **properties: Any) -> Json:
    """Field properties for the series or column called ``name``."""
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key, "value": value} for key, value in properties.items()],
    }


def row(title: str, panels: list[Json]) -> tuple[str, list[Json]]:
    return title, panels


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: list[tuple[str, list[Json]]],
    *,
    variables: list[Json] | None = None,
    time_from: str = "now-6h",
) -> Json:
    """A dashboard: each row header is followed by its panels, packed left to right."""
    panels: list[Json] = []
    next_id, y = 1, 0
    for title_, members in rows:
        panels.append(
            {
                "type": "row",
                "title": title_,
                "id": next_id,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            }
        )
        next_id, y, x, line_height = next_id + 1, y + 1, 0, 0
        for member in members:
            w, h = member["gridPos"]["w"], member["gridPos"]["h"]
            if x + w > 24:
                x, y, line_height = 0, y + line_height, 0
            member["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
            member["id"] = next_id
            panels.append(member)
            next_id, x, line_height = next_id + 1, x + w, max(line_height, h)
        y += line_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["leadledger"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["leadledger"], "title": "leadledger"}],
        "templating": {"list": variables or []},
        "panels": panels,
    }


def quantile(q: float, metric: str, by: str = "", match: str = "") -> str:
    labels = f"{{{match}}}" if match else ""
    return f"histogram_quantile({q}, sum by ({by}le) (rate({metric}_bucket{labels}[{RATE}])))"


def team_stage_variables(funnel: Funnel) -> list[Json]:
    """``team`` maps to a regex of the team's stages (metrics carry stages, not teams)."""
    teams = {
        team.value: "|".join(s for s, d in funnel.stages.items() if d.team is team) for team in Team
    }
    options = [{"text": "All", "value": "$__all", "selected": True}]
    options += [{"text": t, "value": v, "selected": False} for t, v in teams.items()]
    stage_query = 'label_values(leadledger_leads{stage=~"${team:raw}"}, stage)'
    return [
        {
            "name": "team",
            "label": "Team",
            "type": "custom",
            "description": "Owning team of the stages shown (from the funnel configuration).",
            "query": ",".join(f"{t} : {v}" for t, v in teams.items()),
            "includeAll": True,
            "allValue": ".*",
            "multi": False,
            "current": {"text": "All", "value": "$__all"},
            "options": options,
        },
        {
            "name": "stage",
            "label": "Stage",
            "type": "query",
            "datasource": PROMETHEUS_DS,
            "query": {"query": stage_query, "refId": "stage"},
            "definition": stage_query,
            "refresh": 2,
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "sort": 0,
            "current": {"text": ["All"], "value": ["$__all"]},
        },
    ]


def sales_team_variable(teams: Iterable[str]) -> Json:
    """``sales_team``: the SLA metrics' own ``team`` label (the rep's team from the SLA
    configuration's bounded list), not the stage-owning team of ``team``."""
    values = list(teams)
    options = [{"text": "All", "value": "$__all", "selected": True}]
    options += [{"text": t, "value": t, "selected": False} for t in values]
    return {
        "name": "sales_team",
        "label": "Sales team",
        "type": "custom",
        "description": "The rep's team on SLA metrics (the SLA configuration's teams, else other).",
        "query": ",".join(values),
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"text": ["All"], "value": ["$__all"]},
        "options": options,
    }
