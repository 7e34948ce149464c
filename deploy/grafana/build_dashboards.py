"""Write the provisioned Grafana dashboards: ``python -m deploy.grafana.build_dashboards``.

SLA limits and rep teams (events/sla.yaml), stage names and teams (events/funnel.yaml) come from the
configuration, so thresholds are drawn where the SLA actually is.
tests/unit/test_deploy_dashboards.py fails when the committed JSON differs from this output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from deploy.grafana import panels as p
from deploy.grafana.funnel import funnel_dashboard
from deploy.grafana.handoff import handoff_dashboard
from deploy.grafana.pipeline import pipeline_dashboard
from deploy.grafana.sla_limits import load_sales_teams, load_sla_limits
from events.funnel import Funnel, load_funnel

OUT = Path(__file__).parent / "dashboards"


def build(funnel: Funnel | None = None) -> dict[str, p.Json]:
    """File name -> dashboard JSON."""
    funnel = funnel or load_funnel()
    sla = load_sla_limits()
    return {
        "handoff-sla.json": handoff_dashboard(funnel, sla, load_sales_teams()),
        "funnel.json": funnel_dashboard(funnel, sla),
        "pipeline-health.json": pipeline_dashboard(),
    }


def render(board: p.Json) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, board in build().items():
        (OUT / name).write_text(render(board))
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
