"""SQL of the dashboard panels that read the PostgreSQL read models directly.

Grafana fills in ``$__timeFilter(col)``, ``$__timeGroupAlias(col, '1h')`` and the template
variables; ``${team:raw}`` is a regex of the team's stages and ``${stage:regex}`` the chosen
stages (``.*`` for All). Only the read-model tables of services/sql are read, so the panels
work with a read-only role (deploy/postgres/grafana-reader.sql).
"""

from __future__ import annotations

from deploy.grafana.sla_limits import SlaLimit
from events.funnel import Funnel

STAGE_FILTER = "{col} ~ '^(${{team:raw}})$' AND {col} ~ '^(${{stage:regex}})$'"


def _status(age: str, warning: str, limit: str) -> str:
    return (
        f"CASE WHEN {age} >= {limit} THEN 'breached' "
        f"WHEN {age} >= {warning} THEN 'warning' ELSE 'on time' END"
    )


def open_handoffs_sql(first_touch: SlaLimit) -> str:
    """MQL handoffs still waiting for a sales action, by first-touch status now."""
    age = "extract(epoch FROM now() - started_at)"
    warning, limit = first_touch.warning, first_touch.limit
    return f"""SELECT {_status(age, str(warning), str(limit))} AS status,
       count(*) AS open_handoffs,
       count(*) FILTER (WHERE assigned_at IS NULL) AS unassigned,
       max({age}) AS oldest_seconds
FROM lead_handoff
WHERE action IS NULL
GROUP BY 1
ORDER BY 1"""


def stagnation_sql(limits: dict[str, SlaLimit]) -> str:
    """Leads sitting in a stage that has a stagnation limit, by status now."""
    values = ", ".join(
        f"('{sla.start_stage}', {sla.warning}, {sla.limit})"
        for name, sla in limits.items()
        if name.endswith("_stagnation")
    )
    age = "extract(epoch FROM now() - c.entered_current_at)"
    return f"""SELECT c.current_stage AS stage,
       c.current_team AS team,
       {_status(age, "l.warning_s", "l.limit_s")} AS status,
       count(*) AS leads
FROM lead_current c
JOIN (VALUES {values}) AS l(stage, warning_s, limit_s) ON l.stage = c.current_stage
WHERE c.merged_into IS NULL
  AND {STAGE_FILTER.format(col="c.current_stage")}
GROUP BY 1, 2, 3
ORDER BY 1, 3"""


def conversion_sql() -> str:
    """Of the leads entering a stage in the range, the share whose next stage was each one."""
    return f"""WITH entered AS (
    SELECT stage, count(DISTINCT lead_id) AS leads
    FROM lead_stage_history
    WHERE $__timeFilter(entered_at)
    GROUP BY stage
), moved AS (
    SELECT prev.stage AS from_stage, next.stage AS to_stage,
           count(DISTINCT next.lead_id) AS leads
    FROM lead_stage_history prev
    JOIN lead_stage_history next ON next.lead_id = prev.lead_id AND next.seq = prev.seq + 1
    WHERE $__timeFilter(prev.entered_at)
    GROUP BY 1, 2
)
SELECT m.from_stage, m.to_stage, m.leads AS moved, e.leads AS entered_from_stage,
       round(100.0 * m.leads / e.leads, 1) AS conversion_percent
FROM moved m
JOIN entered e ON e.stage = m.from_stage
WHERE {STAGE_FILTER.format(col="m.from_stage")}
ORDER BY e.leads DESC, m.leads DESC"""


def reach_sql(funnel: Funnel) -> str:
    """Leads created in the range that reached at least each stage of the main path."""
    path = "ARRAY[" + ", ".join(f"'{s}'" for s in funnel.main_path) + "]::text[]"
    return f"""SELECT s.stage AS metric, count(c.lead_id) AS leads
FROM unnest({path}) WITH ORDINALITY AS s(stage, rank)
LEFT JOIN lead_current c
  ON array_position({path}, c.highest_stage) >= s.rank
 AND c.merged_into IS NULL
 AND $__timeFilter(c.created_at)
WHERE {STAGE_FILTER.format(col="s.stage")}
GROUP BY s.stage, s.rank
ORDER BY s.rank"""


def entries_sql() -> str:
    """Leads entering each stage per hour of event time."""
    return f"""SELECT $__timeGroupAlias(entered_at, '1h'), stage AS metric, count(*) AS value
FROM lead_stage_history
WHERE $__timeFilter(entered_at)
  AND {STAGE_FILTER.format(col="stage")}
GROUP BY 1, 2
ORDER BY 1"""
