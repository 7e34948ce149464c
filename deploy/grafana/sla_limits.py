"""The SLA limits the dashboards draw, read from the project's SLA configuration as YAML.

The SLA policies live in ``events/sla.yaml`` (earlier versions kept them under ``sla:`` in
``events/funnel.yaml``); both have the same ``start_stage``, ``limit`` and ``warning`` per
policy. Reading the YAML rather than the config models keeps the dashboard builder working
while those models evolve.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

EVENTS = Path(__file__).resolve().parents[2] / "events"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class SlaLimit:
    """One timer policy: where its clock starts, and its warning and limit in seconds."""

    name: str
    start_stage: str
    warning: float
    limit: float


def duration_seconds(text: str | int | float) -> float:
    """``90s``, ``15m``, ``1h``, ``14d`` or ``1d12h`` as seconds."""
    if isinstance(text, int | float):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def load_sla_limits(events_dir: Path = EVENTS) -> dict[str, SlaLimit]:
    """Policy name -> limits, from sla.yaml when present, else funnel.yaml's ``sla``."""
    sla_file = events_dir / "sla.yaml"
    if sla_file.exists():
        policies = yaml.safe_load(sla_file.read_text())["policies"]
    else:
        policies = yaml.safe_load((events_dir / "funnel.yaml").read_text())["sla"]
    return {
        name: SlaLimit(
            name=name,
            start_stage=str(p["start_stage"]),
            warning=duration_seconds(p["warning"]),
            limit=duration_seconds(p["limit"]),
        )
        for name, p in policies.items()
    }


def load_sales_teams(events_dir: Path = EVENTS) -> tuple[str, ...]:
    """The ``team`` label values the SLA metrics may carry: sla.yaml's ``teams`` list, then
    ``other`` (the label every team outside the list is counted under)."""
    sla_file = events_dir / "sla.yaml"
    listed = yaml.safe_load(sla_file.read_text()).get("teams", []) if sla_file.exists() else []
    return (*(str(t) for t in listed), "other")
