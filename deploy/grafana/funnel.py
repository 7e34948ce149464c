"""The Funnel dashboard: leads per stage, transitions, time in stage, conversion from SQL."""

from __future__ import annotations

from deploy.grafana import panels as p
from deploy.grafana.sla_limits import SlaLimit
from deploy.grafana.sql import conversion_sql, entries_sql, reach_sql
from events.funnel import Funnel

STAGE_MATCH = 'stage=~"${team:raw}", stage=~"$stage"'


def funnel_dashboard(funnel: Funnel, sla: dict[str, SlaLimit]) -> p.Json:
    in_stage = "leadledger_time_in_stage_seconds"
    stagnation = [
        p.override(limit.start_stage, thresholds=p.sla_thresholds(
            limit.warning, limit.limit))
        for name, limit in sla.items() if name.endswith("_stagnation")
    ]  # fmt: skip
    rows = [
        p.row(
            "Leads per stage",
            [
                p.panel(
                    "bargauge",
                    "Leads in each stage now",
                    [
                        p.prom(
                            f"sum by (stage) (leadledger_leads{{{STAGE_MATCH}}})",
                            "{{stage}}",
                            instant=True,
                        )
                    ],
                    unit="short",
                    width=8,
                ),
                p.panel(
                    "timeseries",
                    "Leads per stage over time",
                    [p.prom(f"sum by (stage) (leadledger_leads{{{STAGE_MATCH}}})", "{{stage}}")],
                    unit="short",
                    width=16,
                ),
            ],
        ),
        p.row(
            "Transitions",
            [
                p.panel(
                    "timeseries",
                    "Transitions per stage pair",
                    [
                        p.prom(
                            "sum by (from_stage, to_stage) (rate(leadledger_stage_transitions_total"
                            f'{{to_stage=~"${{team:raw}}", to_stage=~"$stage"}}[{p.RATE}]))',
                            "{{from_stage}} → {{to_stage}}",
                        )
                    ],
                    unit="ops",
                    width=16,
                ),
                p.panel(
                    "bargauge",
                    "Transitions in the time range",
                    [
                        p.prom(
                            "sum by (from_stage, to_stage) (increase("
                            "leadledger_stage_transitions_total"
                            '{to_stage=~"${team:raw}", to_stage=~"$stage"}[$__range]))',
                            "{{from_stage}} → {{to_stage}}",
                            instant=True,
                        )
                    ],
                    unit="short",
                    width=8,
                ),
            ],
        ),
        p.row(
            "Time in stage at exit",
            [
                p.panel(
                    "timeseries",
                    "Time in stage at exit, p50",
                    [p.prom(p.quantile(0.5, in_stage, "stage, ", STAGE_MATCH), "{{stage}}")],
                    unit="s",
                    overrides=stagnation,
                ),
                p.panel(
                    "timeseries",
                    "Time in stage at exit, p90",
                    [p.prom(p.quantile(0.9, in_stage, "stage, ", STAGE_MATCH), "{{stage}}")],
                    unit="s",
                    overrides=stagnation,
                    description="Per-stage lines are drawn at the stagnation limits.",
                ),
            ],
        ),
        p.row(
            "Conversion (PostgreSQL read models)",
            [
                p.panel(
                    "table",
                    "Stage-to-stage conversion",
                    [p.sql(conversion_sql())],
                    unit="short",
                    width=12,
                    overrides=[p.override("conversion_percent", unit="percent")],
                    description="Of the leads that entered a stage in the time range, the "
                    "share whose next stage was each to_stage.",
                ),
                p.panel(
                    "bargauge",
                    "Funnel reach (highest stage reached)",
                    [p.sql(reach_sql(funnel))],
                    unit="short",
                    width=12,
                ),
                p.panel(
                    "timeseries",
                    "Leads entering each stage (event time)",
                    [p.sql(entries_sql(), fmt="time_series")],
                    unit="short",
                    width=24,
                ),
            ],
        ),
    ]
    return p.dashboard(
        "leadledger-funnel", "leadledger / Funnel",
        "Leads per stage, transitions, time in stage and conversion from the read models.",
        rows, variables=p.team_stage_variables(funnel), time_from="now-7d",
    )  # fmt: skip
