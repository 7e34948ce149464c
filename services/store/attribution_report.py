"""Attribution reports assembled from lead histories with the pure attribution core.

Pure (no I/O, no clock), so the rules below are unit tested without PostgreSQL; the Postgres
reader streams the archive into ``ReportBuilder`` one lead at a time.

Which deals a report covers, as known at ``as_of`` (events with a time at or before it):

- Revenue: deals won in the period ``[start, end)``, by their won time.
- Pipeline: deals still open at ``as_of`` that were created before ``end``; their closing
  position is ``pending`` on the latest touch (a deal won after ``as_of`` is open here).
- Lost deals closed in the period are counted, never credited.

A deal id found on two leads is counted once, on the first lead in lead-id order, and the
report says so in ``warnings``: counting it twice would double its revenue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal

from events.attribution_config import AttributionConfig, ModelConfig
from events.envelope import Event
from events.funnel import Funnel
from projections.attribution import (
    Attribution,
    DealFacts,
    Dimension,
    Rollup,
    attribute,
    rollup,
    touches_and_deals,
)
from projections.attribution.money import DEFAULT_MINOR_DIGITS, MINOR_DIGITS, exact_sum
from services.api.attribution_models import (
    AttributionReport,
    ComparisonRow,
    CreditOut,
    CurrencyTotal,
    DealExplanation,
    ModelExplanation,
    ModelRef,
    ModelReport,
    Period,
    RollupRow,
    UnknownModel,
)

_EXACT = Context(prec=60)
_SHARE = Decimal("0.0001")
#: ``w_shaped@v2``, ``W@2``: a model handle with an explicit version.
_VERSIONED = re.compile(r"^(?P<name>[^@]+)@v?(?P<version>\d+)$")
#: A comparison row: (dimension, currency, key).
_Key = tuple[Dimension, str, str | None]


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """What to report: models, the close period ``[start, end)``, ``as_of`` and dimensions."""

    models: tuple[ModelConfig, ...]
    start: datetime
    end: datetime
    as_of: datetime
    by: tuple[Dimension, ...] = ("campaign", "channel")


def resolve_models(config: AttributionConfig, handles: Iterable[str]) -> tuple[ModelConfig, ...]:
    """The models named by ``handles`` (``W``, ``linear``, ``w_shaped@v1``), each version once,
    in the given order. UnknownModel names the known models."""
    found: dict[str, ModelConfig] = {}
    for handle in handles:
        text = handle.strip()
        match = _VERSIONED.match(text)
        name, version = (match["name"], int(match["version"])) if match else (text, None)
        try:
            model = config.model(name, version)
        except KeyError as exc:
            raise UnknownModel(exc.args[0]) from None
        found.setdefault(model.label, model)
    if not found:
        raise UnknownModel("name at least one model")
    return tuple(found.values())


def model_ref(model: ModelConfig) -> ModelRef:
    """How a response names the model version it used."""
    return ModelRef(name=model.name, version=model.version, label=model.label, kind=model.kind)


def money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` with at least the currency's minor digits (only zeros are added, so exact)."""
    digits = MINOR_DIGITS.get(currency, DEFAULT_MINOR_DIGITS)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -digits:
        return amount.quantize(Decimal(1).scaleb(-digits), context=_EXACT)
    return amount


def covered(deal: DealFacts, spec: ReportSpec) -> bool:
    """Whether the report covers ``deal`` (see the module docstring)."""
    if deal.status == "open":
        return deal.created_at is not None and deal.created_at < spec.end
    closed = deal.closed_at
    return closed is not None and spec.start <= closed < spec.end


class ReportBuilder:
    """Feed every relevant lead's history with ``add_lead`` (in lead-id order), then
    ``report()``. Holds one ``Attribution`` per covered deal and model."""

    def __init__(self, spec: ReportSpec, funnel: Funnel) -> None:
        self.spec = spec
        self.funnel = funnel
        self.warnings: list[str] = []
        self._deal_lead: dict[str, str] = {}
        self._by_model: dict[str, list[Attribution]] = {m.label: [] for m in spec.models}

    def add_lead(self, lead_id: str, events: Iterable[Event]) -> None:
        """Attribute the covered deals of one lead's accepted events (any order)."""
        touches, deals = touches_and_deals(events, self.funnel, as_of=self.spec.as_of)
        for deal in deals:
            if not covered(deal, self.spec):
                continue
            owner = self._deal_lead.setdefault(deal.deal_id, lead_id)
            if owner != lead_id:
                self.warnings.append(
                    f"deal {deal.deal_id} appears on leads {owner} and {lead_id}; "
                    f"counted once, on {owner}"
                )
                continue
            for model in self.spec.models:
                self._by_model[model.label].append(
                    attribute(deal, touches, model, as_of=self.spec.as_of)
                )

    def report(self) -> AttributionReport:
        """The report over every lead added so far."""
        spec = self.spec
        reports = [self._model_report(m, self._by_model[m.label]) for m in spec.models]
        return AttributionReport(
            period=Period(start=spec.start, end=spec.end),
            as_of=spec.as_of,
            by=list(spec.by),
            models=reports,
            comparison=comparison(reports) if len(reports) > 1 else [],
            warnings=list(self.warnings),
        )

    def _model_report(self, model: ModelConfig, attributions: list[Attribution]) -> ModelReport:
        totals = currency_totals(attributions)
        won = {t.currency: t.revenue for t in totals}
        rows = [
            _row(r, won.get(r.currency, Decimal(0)))
            for dimension in self.spec.by
            for r in rollup(attributions, dimension)
        ]
        return ModelReport(model=model_ref(model), totals=totals, rows=rows)


def currency_totals(attributions: Sequence[Attribution]) -> list[CurrencyTotal]:
    """Per currency (sorted): won, open and lost deals and their sums under one model."""
    out = []
    for currency in sorted({a.currency for a in attributions}):
        mine = [a for a in attributions if a.currency == currency]
        won = [a for a in mine if a.status == "won"]
        opened = [a for a in mine if a.status == "open"]
        revenue = exact_sum(a.amount for a in won)
        unattributed = exact_sum(a.unattributed for a in won)
        touches = {
            (a.lead_id, c.touch.event_id) for a in won for c in a.credits if c.share or c.amount
        }
        out.append(
            CurrencyTotal(
                currency=currency,
                won_deals=len(won),
                revenue=money(revenue, currency),
                credited=money(_EXACT.subtract(revenue, unattributed), currency),
                unattributed=money(unattributed, currency),
                touches=len(touches),
                open_deals=len(opened),
                pipeline=money(exact_sum(a.amount for a in opened), currency),
                pending=money(exact_sum(a.pending for a in opened), currency),
                lost_deals=sum(a.status == "lost" for a in mine),
            )
        )
    return out


def _row(r: Rollup, won: Decimal) -> RollupRow:
    share = _EXACT.divide(r.revenue, won).quantize(_SHARE, ROUND_HALF_EVEN) if won else Decimal(0)
    return RollupRow(
        dimension=r.dimension,
        key=r.key,
        currency=r.currency,
        revenue=money(r.revenue, r.currency),
        revenue_share=share,
        deals=r.deals,
        touches=r.touches,
        pipeline=money(r.pipeline, r.currency),
        pending=money(r.pending, r.currency),
        open_deals=r.open_deals,
        open_touches=r.open_touches,
    )


def comparison(reports: Sequence[ModelReport]) -> list[ComparisonRow]:
    """Every (dimension, currency, key) of any model, with each model's revenue, deals and
    pipeline (zero where a model gives that key nothing)."""
    labels = [r.model.label for r in reports]
    revenue: dict[_Key, dict[str, Decimal]] = {}
    pipeline: dict[_Key, dict[str, Decimal]] = {}
    deals: dict[_Key, dict[str, int]] = {}
    for report in reports:
        for row in report.rows:
            at: _Key = (row.dimension, row.currency, row.key)
            revenue.setdefault(at, {})[report.model.label] = row.revenue
            pipeline.setdefault(at, {})[report.model.label] = row.pipeline
            deals.setdefault(at, {})[report.model.label] = row.deals
    # Per dimension and currency, keys in order, the unattributed row (None) last.
    order = sorted(revenue, key=lambda k: (k[0], k[1], k[2] is None, k[2] or ""))
    out = []
    for at in order:
        dimension, currency, key = at
        zero = money(Decimal(0), currency)
        out.append(
            ComparisonRow(
                dimension=dimension,
                key=key,
                currency=currency,
                revenue={label: revenue[at].get(label, zero) for label in labels},
                deals={label: deals[at].get(label, 0) for label in labels},
                pipeline={label: pipeline[at].get(label, zero) for label in labels},
            )
        )
    return out


def explain(
    deal_id: str,
    histories: Sequence[tuple[str, Sequence[Event]]],
    models: Sequence[ModelConfig],
    funnel: Funnel,
    *,
    as_of: datetime,
) -> DealExplanation | None:
    """Each counted touch of ``deal_id`` under each model, from the histories of the leads
    that mention it (in lead-id order; the first one wins, as in reports). None when no
    lead knows the deal at ``as_of``."""
    warnings: list[str] = []
    found: tuple[DealFacts, list[Attribution]] | None = None
    for lead_id, events in histories:
        touches, deals = touches_and_deals(events, funnel, as_of=as_of)
        deal = next((d for d in deals if d.deal_id == deal_id), None)
        if deal is None:
            continue
        if found is not None:
            owner = found[0].lead_id
            warnings.append(f"deal {deal_id} also appears on lead {lead_id}; explained on {owner}")
            continue
        found = (deal, [attribute(deal, touches, m, as_of=as_of) for m in models])
    if found is None:
        return None
    deal, attributions = found
    return DealExplanation(
        deal_id=deal.deal_id,
        lead_id=deal.lead_id,
        status=deal.status,
        amount=money(deal.amount, deal.currency),
        currency=deal.currency,
        lead_stage_at=deal.lead_stage_at,
        created_at=deal.created_at,
        closed_at=deal.closed_at,
        as_of=as_of,
        explanations=[_explained(m, a) for m, a in zip(models, attributions, strict=True)],
        warnings=warnings,
    )


def _explained(model: ModelConfig, a: Attribution) -> ModelExplanation:
    return ModelExplanation(
        model=model_ref(model),
        credits=[
            CreditOut(
                touch_id=c.touch.event_id,
                at=c.touch.at,
                campaign_id=c.touch.campaign_id,
                channel=c.touch.channel,
                touch_type=c.touch.touch_type,
                positions=[p.value for p in c.positions],
                share=c.share,
                amount=money(c.amount, a.currency),
            )
            for c in a.credits
        ],
        credited=money(exact_sum(c.amount for c in a.credits), a.currency),
        unattributed=money(a.unattributed, a.currency),
    )
