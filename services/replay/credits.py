"""Attribution credit as ``attribution_credit`` rows, from the replay's folded leads. Pure.

Every model name of the file is computed at its highest version, as of the replay's as-of
time (or the latest stream time), with the same core the reports use
(``projections.attribution.attribute_lead``). A deal id found on two leads is credited once,
on the first lead in lead-id order, as the reports do.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from events.attribution_config import AttributionConfig
from events.funnel import Funnel
from projections.attribution import attribute_lead
from projections.lead import LeadState

#: ``touch_event_id`` of a deal's unattributed remainder (no touch preceded it).
UNATTRIBUTED = ""


def credit_rows(
    leads: Iterable[LeadState], funnel: Funnel, config: AttributionConfig, as_of: datetime
) -> list[tuple[Any, ...]]:
    """One row per (model, deal, counted touch), plus one per unattributed deal."""
    return credit_rows_in_order(sorted(leads, key=lambda s: s.lead_id), funnel, config, as_of)


def credit_rows_in_order(
    leads: Iterable[LeadState], funnel: Funnel, config: AttributionConfig, as_of: datetime
) -> list[tuple[Any, ...]]:
    """``credit_rows`` of leads already in lead-id order, consumed one at a time."""
    models = [config.model(name) for name in config.names]
    out: list[tuple[Any, ...]] = []
    seen: set[tuple[str, str]] = set()
    for lead in leads:
        if not lead.events:
            continue
        for model in models:
            for a in attribute_lead(lead.events, funnel, model, as_of=as_of):
                if (model.name, a.deal_id) in seen:
                    continue
                seen.add((model.name, a.deal_id))
                base = (model.name, model.version, a.deal_id, a.lead_id)
                for c in a.credits:
                    out.append((
                        *base, c.touch.event_id, c.touch.campaign_id, c.touch.channel,
                        ",".join(p.value for p in c.positions), a.status, a.currency, c.share,
                        c.amount,
                    ))  # fmt: skip
                if not a.credits:
                    out.append((
                        *base, UNATTRIBUTED, None, None, "", a.status, a.currency, 1, a.amount,
                    ))  # fmt: skip
    return out
