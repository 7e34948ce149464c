"""The provisioned Grafana dashboards: generated, complete, with units, variables and SLA lines.

Their queries run against a real Prometheus and PostgreSQL in
tests/integration/test_observability_e2e.py; here the JSON itself is checked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.grafana.build_dashboards import OUT, build, render
from deploy.grafana.sla_limits import duration_seconds, load_sla_limits
from deploy.queries import dashboard_targets, metric_names
from events.funnel import load_funnel
from services import metrics

ROOT = Path(__file__).resolve().parents[2]
BOARDS = build()


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] != "row"]


def _titled(title: str) -> dict[str, Any]:
    return next(p for b in BOARDS.values() for p in _panels(b) if p["title"] == title)


def test_the_committed_dashboards_are_exactly_what_the_builder_writes() -> None:
    assert sorted(p.name for p in OUT.glob("*.json")) == sorted(BOARDS)
    for name, board in BOARDS.items():
        assert (OUT / name).read_text() == render(board), f"run python -m {build.__module__}"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_panel_has_a_unit_a_provisioned_data_source_and_a_unique_id(name: str) -> None:
    provisioned = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/leadledger.yml").read_text()
    )["datasources"]
    uids = {(d["type"], d["uid"]) for d in provisioned}
    board = BOARDS[name]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["panels"][0]["type"] == "row"
    for panel in _panels(board):
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        for target in panel["targets"]:
            source = target["datasource"]
            assert (source["type"], source["uid"]) in uids, panel["title"]


def test_the_issue_panels_exist_in_their_dashboards() -> None:
    titles = {b["title"]: {p["title"] for p in _panels(b)} for b in BOARDS.values()}
    handoff, funnel, health = (titles[f"leadledger / {n}"] for n in
                               ("Handoff & SLA", "Funnel", "Pipeline health"))  # fmt: skip
    assert {
        "Handoff latency p50 / p90 / p99",
        "Handoff latency distribution",
        "Time to first touch p50 / p90",
        "Open handoff timers by status",
    } <= handoff
    assert {
        "Leads in each stage now",
        "Transitions per stage pair",
        "Time in stage at exit, p90",
        "Stage-to-stage conversion",
    } <= funnel
    assert {"Events processed by type", "Events rejected by reason", "Event-time lag",
            "Consumer lag per partition", "Requests by route and status", "Error ratio",
            "Latency p50 / p99 by route", "CPU", "Resident memory"} <= health  # fmt: skip
    assert _titled("Handoff latency distribution")["type"] == "heatmap"
    assert _titled("Stage-to-stage conversion")["targets"][0]["rawSql"]


def test_team_and_stage_variables_follow_the_funnel_configuration() -> None:
    funnel = load_funnel()
    for name in ("handoff-sla.json", "funnel.json"):
        variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
        assert {"team", "stage"} <= set(variables) <= {"team", "stage", "sales_team"}
        options = {o["text"]: o["value"] for o in variables["team"]["options"][1:]}
        for team, regex in options.items():
            stages = {s for s, d in funnel.stages.items() if d.team.value == team}
            assert set(regex.split("|")) == stages


def test_the_sla_engine_row_filters_by_the_rep_teams_of_the_sla_configuration() -> None:
    variables = {v["name"]: v for v in BOARDS["handoff-sla.json"]["templating"]["list"]}
    teams = yaml.safe_load((ROOT / "events/sla.yaml").read_text())["teams"]
    assert [o["value"] for o in variables["sales_team"]["options"][1:]] == [*teams, "other"]
    assert variables["sales_team"]["allValue"] == ".*"
    for title in ("SLA breached vs met per policy", "SLA breach ratio per policy",
                  "Time to first touch p90 by sales team (SLA clock)"):  # fmt: skip
        for target in _titled(title)["targets"]:
            assert 'team=~"$sales_team"' in target["expr"], title


def test_sla_limits_are_drawn_as_thresholds_from_the_sla_configuration() -> None:
    sla = load_sla_limits()
    touch = sla["mql_first_touch"]
    steps = _titled("Handoff latency p50 / p90 / p99")["fieldConfig"]["defaults"]["thresholds"]
    assert [s["value"] for s in steps["steps"]] == [None, touch.warning, touch.limit]
    overrides = _titled("Time in stage at exit, p90")["fieldConfig"]["overrides"]
    drawn = {o["matcher"]["options"]: o["properties"][0]["value"]["steps"] for o in overrides}
    for name, limit in sla.items():
        if name.endswith("_stagnation"):
            assert drawn[limit.start_stage][-1]["value"] == limit.limit


def test_dashboards_query_only_metrics_the_service_exports() -> None:
    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    for path in OUT.glob("*.json"):
        for target in dashboard_targets(path):
            if target.datasource != "prometheus":
                continue
            for name in metric_names(target.query):
                base = re.sub(r"_(bucket|count|sum|total)$", "", name)
                assert base in exported or name.startswith("process_") or name == "up", name


def test_durations_in_the_sla_configuration_are_read_as_seconds() -> None:
    assert duration_seconds("15m") == 900
    assert duration_seconds("1d12h") == 129600
    with pytest.raises(ValueError, match="not a duration"):
        duration_seconds("soon")
