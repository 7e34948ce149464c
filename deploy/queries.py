"""Every query the deployment runs, read from the files themselves, never hand-listed.

Grafana dashboards (``deploy/grafana/dashboards/*.json``) carry PromQL in ``expr`` and SQL in
``rawSql``; Prometheus rule files carry PromQL in ``expr``. The tests and the PNG renderer
use these helpers to pull them out, put concrete values in for Grafana's template
variables and macros, and turn alert conditions into expressions that always return their
series (``X > 5`` becomes ``X > bool 5``), so "returns data" can be checked while healthy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = "prometheus"
POSTGRES = "grafana-postgresql-datasource"


@dataclass(frozen=True)
class Target:
    """One query of one dashboard panel."""

    dashboard: str
    row: str
    panel: str
    panel_type: str
    datasource: str  # PROMETHEUS or POSTGRES
    query: str
    legend: str = ""
    fmt: str = "time_series"
    instant: bool = False
    unit: str = ""


@dataclass(frozen=True)
class Variable:
    """A dashboard template variable and, for query variables, its PromQL."""

    dashboard: str
    name: str
    promql: str | None


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def dashboard_targets(path: Path) -> list[Target]:
    """Every panel query of a dashboard, in panel order, with the row it sits in."""
    board = load_dashboard(path)
    row = ""
    targets: list[Target] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            row = panel["title"]
            continue
        for target in panel.get("targets", []):
            source = (target.get("datasource") or panel["datasource"])["type"]
            query = target.get("expr") if source == PROMETHEUS else target.get("rawSql")
            if not query:
                raise ValueError(f"{path.name}: panel {panel['title']!r} has an empty query")
            targets.append(
                Target(
                    dashboard=board["title"],
                    row=row,
                    panel=panel["title"],
                    panel_type=panel["type"],
                    datasource=source,
                    query=query,
                    legend=target.get("legendFormat", ""),
                    fmt=target.get("format", "time_series"),
                    instant=bool(target.get("instant", False)),
                    unit=panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""),
                )
            )
    return targets


_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.S)


def dashboard_variables(path: Path) -> list[Variable]:
    """Template variables; ``label_values(EXPR, label)`` queries yield their PromQL EXPR."""
    board = load_dashboard(path)
    found = []
    for var in board.get("templating", {}).get("list", []):
        promql = None
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = _LABEL_VALUES.match(query.strip())
            promql = match.group(1) if match else query
        found.append(Variable(board["title"], var["name"], promql))
    return found


def rule_expressions(paths: Iterable[Path]) -> list[str]:
    """The ``expr`` of every alerting and recording rule in the rule files."""
    exprs = []
    for path in paths:
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [str(rule["expr"]).strip() for rule in group["rules"]]
    return exprs


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def metric_names(promql: str) -> set[str]:
    """Metric names an expression selects (leadledger_*, process_*, python_* and up)."""
    bare = _STRING.sub('""', promql)
    names = set(re.findall(r"\b((?:leadledger|process|python)_[A-Za-z0-9_]+)\b", bare))
    if re.search(r"\bup\s*\{", bare):
        names.add("up")
    return names


_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)")


def with_bool_comparisons(promql: str) -> str:
    """Turn every filtering comparison into a ``bool`` one, so the series always come back.

    Label matchers (inside ``{}``) and string literals are left alone.
    """
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(promql):
        char = promql[i]
        string = _STRING.match(promql, i)
        if string:
            out.append(string.group(0))
            i = string.end()
            continue
        if char in "{}":
            depth += 1 if char == "{" else -1
        elif depth == 0 and (op := _COMPARISON.match(promql, i)):
            out.append(f"{op.group(1)} bool")
            i = op.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


_MACRO_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")
_MACRO_GROUP = re.compile(r"\$__timeGroupAlias\(([^,]+),\s*'?(\w+)'?\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(\w+)|\[\[(\w+)\]\]")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * _SECONDS[duration[-1]]


def substitute(
    query: str,
    variables: Mapping[str, str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> str:
    """Fill in Grafana's variables (``$x``, ``${x:fmt}``, ``[[x]]``) and SQL time macros.

    ``variables`` holds the values, including ``__rate_interval``, ``__interval`` and
    ``__range``. An unknown variable raises KeyError: a query must not reach Prometheus or
    PostgreSQL half-filled.
    """
    if start is not None and end is not None:
        between = f"'{start.isoformat()}' AND '{end.isoformat()}'"
        query = _MACRO_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN {between}", query)
        query = query.replace("$__timeFrom()", f"'{start.isoformat()}'")
        query = query.replace("$__timeTo()", f"'{end.isoformat()}'")
    query = _MACRO_GROUP.sub(
        lambda m: (
            f"to_timestamp(floor(extract(epoch FROM {m.group(1)}) / {_seconds(m.group(2))})"
            f' * {_seconds(m.group(2))}) AS "time"'
        ),
        query,
    )

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name not in variables:
            raise KeyError(f"no value for ${name} in {query!r}")
        return variables[name]

    return _VARIABLE.sub(value, query)
