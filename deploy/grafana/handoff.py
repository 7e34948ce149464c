"""The Handoff & SLA dashboard: handoff latency, time to first touch, SLA, open timers."""

from __future__ import annotations

from collections.abc import Sequence

from deploy.grafana import panels as p
from deploy.grafana.sla_limits import SlaLimit
from deploy.grafana.sql import open_handoffs_sql, stagnation_sql
from events.funnel import Funnel

HANDOFF = "leadledger_handoff_latency_seconds"
SLA_BREACHES = "leadledger_sla_breaches_total"
SLA_MET = "leadledger_sla_met_total"
TIME_TO_FIRST_TOUCH = "leadledger_time_to_first_touch_seconds"
#: The SLA engine's series carry the rep's team; the row filters on it.
BY_SALES_TEAM = '{team=~"$sales_team"}'


def handoff_dashboard(
    funnel: Funnel, sla: dict[str, SlaLimit], sales_teams: Sequence[str]
) -> p.Json:
    touch, decision = sla["mql_first_touch"], sla["sal_decision"]
    touch_limit, decision_limit = touch.limit, decision.limit
    touch_lines = p.sla_thresholds(touch.warning, touch_limit)

    def met_vs_breached(selector: str, limit: float) -> list[p.Json]:
        within = ", ".join(filter(None, (selector, f'le="{limit}"')))
        met = f"sum(increase({HANDOFF}_bucket{{{within}}}[{p.RATE}]))"
        count = f"{HANDOFF}_count{{{selector}}}" if selector else f"{HANDOFF}_count"
        total = f"sum(increase({count}[{p.RATE}]))"
        return [p.prom(met, "met"), p.prom(f"{total} - {met}", "breached")]

    team_breaches, team_met = SLA_BREACHES + BY_SALES_TEAM, SLA_MET + BY_SALES_TEAM
    stacked = {"stacking": {"mode": "normal"}, "drawStyle": "bars", "fillOpacity": 80}
    colors = [p.override("met", color={"mode": "fixed", "fixedColor": "green"})]
    colors.append(p.override("breached", color={"mode": "fixed", "fixedColor": "red"}))
    rows = [
        p.row(
            "Handoff latency (MQL to first sales action)",
            [
                p.panel(
                    "timeseries",
                    "Handoff latency p50 / p90 / p99",
                    [
                        p.prom(p.quantile(q, HANDOFF), f"p{round(q * 100)}")
                        for q in (0.5, 0.9, 0.99)
                    ],
                    unit="s",
                    threshold_steps=touch_lines,
                    description="Event time from entering MQL to the first sales action "
                    "(contact, accept or reject). Lines: first-touch warning and SLA limit.",
                ),
                p.panel(
                    "heatmap",
                    "Handoff latency distribution",
                    [
                        p.prom(
                            f"sum by (le) (increase({HANDOFF}_bucket[{p.RATE}]))",
                            "{{le}}",
                            fmt="heatmap",
                        ),
                    ],
                    unit="s",
                    description="Completed handoffs per latency bucket.",
                ),
                p.panel(
                    "timeseries",
                    "Handoff latency p90 by first action",
                    [p.prom(p.quantile(0.9, HANDOFF, "action, "), "{{action}}")],
                    unit="s",
                    threshold_steps=touch_lines,
                ),
                p.panel(
                    "timeseries",
                    "System vs human delay (p90)",
                    [
                        p.prom(
                            p.quantile(0.9, "leadledger_handoff_system_delay_seconds"),
                            "system (routing, assignment)",
                        ),
                        p.prom(
                            p.quantile(0.9, "leadledger_handoff_human_delay_seconds"),
                            "human (rep response)",
                        ),
                    ],
                    unit="s",
                    threshold_steps=touch_lines,
                ),
            ],
        ),
        p.row(
            "Time to first touch",
            [
                p.panel(
                    "timeseries",
                    "Time to first touch p50 / p90",
                    [
                        p.prom(
                            p.quantile(q, HANDOFF, match='action="contacted"'), f"p{round(q * 100)}"
                        )
                        for q in (0.5, 0.9)
                    ],
                    unit="s",
                    width=16,
                    threshold_steps=touch_lines,
                    description="Handoffs whose first sales action was a contact attempt.",
                ),
                p.panel(
                    "stat",
                    "First touches within the SLA",
                    [
                        p.prom(
                            f'sum(increase({HANDOFF}_bucket{{action="contacted",le="{touch_limit}"}}'
                            f'[$__range])) / sum(increase({HANDOFF}_count{{action="contacted"}}'
                            "[$__range]))",
                            "within 1 h",
                            instant=True,
                        ),
                    ],
                    unit="percentunit",
                    width=8,
                    threshold_steps=p.thresholds(("red", None), ("orange", 0.8), ("green", 0.95)),
                ),
            ],
        ),
        p.row(
            "SLA met vs breached (sales side, per policy)",
            [
                p.panel(
                    "timeseries",
                    "mql_first_touch: first sales action within 1 h",
                    met_vs_breached("", touch_limit),
                    unit="short",
                    custom=stacked,
                    overrides=colors,
                    description="Completed handoffs, any first action.",
                ),
                p.panel(
                    "timeseries",
                    "sal_decision: accepted or rejected within 24 h",
                    met_vs_breached('action=~"accepted|rejected"', decision_limit),
                    unit="short",
                    custom=stacked,
                    overrides=colors,
                ),
            ],
        ),
        p.row(
            "SLA engine (per policy, event time; filtered by sales team)",
            [
                p.panel(
                    "timeseries",
                    "SLA breached vs met per policy",
                    [
                        p.prom(
                            f"sum by (policy) (rate({team_breaches}[{p.RATE}]))",
                            "{{policy}} breached",
                        ),
                        p.prom(f"sum by (policy) (rate({team_met}[{p.RATE}]))", "{{policy}} met"),
                    ],
                    unit="ops",
                    description="SLA timers breached (limit passed while running) and met "
                    "(stopped within the limit) per second, per policy, in event time.",
                ),
                p.panel(
                    "timeseries",
                    "SLA breach ratio per policy",
                    [
                        p.prom(
                            f"sum by (policy) (rate({team_breaches}[{p.RATE}])) / "
                            f"(sum by (policy) (rate({team_breaches}[{p.RATE}])) + "
                            f"sum by (policy) (rate({team_met}[{p.RATE}])))",
                            "{{policy}}",
                        ),
                    ],
                    unit="percentunit",
                    threshold_steps=p.thresholds(("green", None), ("orange", 0.05), ("red", 0.2)),
                    description="Breached / (breached + met) timers per policy.",
                ),
                p.panel(
                    "timeseries",
                    "Time to first touch p90 by sales team (SLA clock)",
                    [
                        p.prom(
                            p.quantile(0.9, TIME_TO_FIRST_TOUCH, "team, ", BY_SALES_TEAM[1:-1]),
                            "{{team}}",
                        )
                    ],
                    unit="s",
                    threshold_steps=touch_lines,
                    description="MQL to first sales action in the first-touch policy's clock "
                    "(business hours), per rep team, for handoffs that met the SLA.",
                ),
                p.panel(
                    "bargauge",
                    "Open SLA timers now",
                    [
                        p.prom(
                            "sum by (policy, status) (leadledger_sla_open_timers)",
                            "{{policy}} {{status}}",
                            instant=True,
                        )
                    ],
                    unit="short",
                    description="Running SLA timers by event-time status (ok, warning, breached).",
                ),
                p.panel(
                    "bargauge",
                    "Overdue SLA timers now (wall clock)",
                    [
                        p.prom(
                            "sum by (policy) (leadledger_sla_overdue_timers)",
                            "{{policy}}",
                            instant=True,
                        )
                    ],
                    unit="short",
                    description="Live only, wall clock: running timers whose deadline is before "
                    "now(). Not event time.",
                ),
            ],
        ),
        p.row(
            "Closed loop (suppressed re-handoffs, duplicates)",
            [
                p.panel(
                    "timeseries",
                    "Suppressed re-handoffs by source / campaign and action",
                    [
                        p.prom(
                            "sum by (source, campaign, action) "
                            f"(increase(leadledger_handoffs_suppressed_total[{p.RATE}]))",
                            "{{source}} / {{campaign}} {{action}}",
                        )
                    ],
                    unit="short",
                    description="Re-handoffs of suppressed leads (handoff.suppressed).",
                ),
                p.panel(
                    "timeseries",
                    "Duplicates detected",
                    [
                        p.prom(
                            f"sum(increase(leadledger_duplicates_detected_total[{p.RATE}]))",
                            "duplicates",
                        )
                    ],
                    unit="short",
                    description="Lead pairs found to share a normalized email "
                    "(lead.duplicate_detected).",
                ),
            ],
        ),
        p.row(
            "Open timers (live, wall clock)",
            [
                p.panel(
                    "table",
                    "Open handoff timers by status",
                    [p.sql(open_handoffs_sql(touch))],
                    unit="short",
                    description="MQL handoffs with no sales action yet, by first-touch status now.",
                    overrides=[p.override("oldest_seconds", unit="s")],
                ),
                p.panel(
                    "table",
                    "Open stage timers by status",
                    [p.sql(stagnation_sql(sla))],
                    unit="short",
                    description="Leads waiting in a stage with a stagnation limit.",
                ),
            ],
        ),
    ]
    return p.dashboard(
        "leadledger-handoff-sla", "leadledger / Handoff & SLA",
        "Marketing-to-sales handoff latency, time to first touch and the sales-side SLA.",
        rows, variables=[*p.team_stage_variables(funnel), p.sales_team_variable(sales_teams)],
    )  # fmt: skip
