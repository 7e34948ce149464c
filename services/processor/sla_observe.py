"""Metrics of the derived SLA events of a committed batch, with bounded labels."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from events.envelope import Event
from events.sla_config import StopRule
from events.sla_events import SlaEventData, SlaMet
from projections.sla import SlaRules
from services import metrics


def observe_sla(derived: Sequence[Event], rules: SlaRules) -> None:
    """Count breaches and on-time stops; observe time to first touch."""
    first_touch = {p.name for p in rules.policies if p.stop is StopRule.FIRST_SALES_ACTION}
    by_type: Counter[tuple[str, str]] = Counter()
    breaches: Counter[tuple[str, str]] = Counter()
    met: Counter[tuple[str, str]] = Counter()
    for event in derived:
        data = event.data
        if not isinstance(data, SlaEventData):
            continue
        team = rules.config.team_label(data.team)
        by_type[(event.type, data.policy)] += 1
        if event.type == "sla.breached":
            breaches[(data.policy, team)] += 1
        elif isinstance(data, SlaMet):
            if data.lateness_seconds <= 0:
                met[(data.policy, team)] += 1
            if data.policy in first_touch:
                metrics.TIME_TO_FIRST_TOUCH.labels(team=team).observe(data.elapsed_seconds)
    for (type_, policy), n in by_type.items():
        metrics.SLA_EVENTS.labels(type=type_, policy=policy).inc(n)
    for (policy, team), n in breaches.items():
        metrics.SLA_BREACHES.labels(policy=policy, team=team).inc(n)
    for (policy, team), n in met.items():
        metrics.SLA_MET.labels(policy=policy, team=team).inc(n)
