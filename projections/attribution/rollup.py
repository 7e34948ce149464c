"""Credit per campaign or per channel, summed exactly from many deals' attributions.

Rules, so report totals reconcile to the cent:

- Won deals are revenue. Open deals are pipeline: their credit (pending included) is summed
  separately and never counted as revenue, and ``pending`` says how much of it sits on the
  pending touches. Lost deals are left out.
- The ``key=None`` row holds the deals no touch counted for (their ``unattributed``), so per
  currency the revenue rows sum to exactly the won amount of the input, and the pipeline rows
  to the open amount.
- ``deals`` counts the deals in which the key received credit; ``touches`` counts its touches
  that received credit (a non-zero share or amount). Zero-credit touches are not counted.
- Amounts in different currencies are never added: there is one row per key and currency.
- One rollup covers one model version and each deal once; mixing either raises ValueError,
  because either would silently double count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from projections.attribution.attribute import Attribution, Credit
from projections.attribution.money import exact_sum

Dimension = Literal["campaign", "channel"]


@dataclass(frozen=True, slots=True)
class Rollup:
    """The credit of one campaign or channel (``key``) in one currency under one model.

    ``key`` is None for the unattributed row. ``revenue``/``deals``/``touches`` are from won
    deals; ``pipeline``/``pending``/``open_deals``/``open_touches`` from open ones.
    """

    model: str
    model_version: int
    dimension: Dimension
    key: str | None
    currency: str
    revenue: Decimal
    deals: int
    touches: int
    pipeline: Decimal
    pending: Decimal
    open_deals: int
    open_touches: int


@dataclass(slots=True)
class _Sums:
    revenue: Decimal = Decimal(0)
    deals: set[str] = field(default_factory=set)
    # Touch ids are unique per lead only, so touches are keyed by (lead, id).
    touches: set[tuple[str, str]] = field(default_factory=set)
    pipeline: Decimal = Decimal(0)
    pending: Decimal = Decimal(0)
    open_deals: set[str] = field(default_factory=set)
    open_touches: set[tuple[str, str]] = field(default_factory=set)

    def add(self, attribution: Attribution, amount: Decimal, credits: list[Credit]) -> None:
        touch_ids = {(attribution.lead_id, credit.touch.event_id) for credit in credits}
        if attribution.status == "won":
            self.revenue = exact_sum((self.revenue, amount))
            self.deals.add(attribution.deal_id)
            self.touches |= touch_ids
        else:
            self.pipeline = exact_sum((self.pipeline, amount))
            self.pending = exact_sum((self.pending, *(c.amount for c in credits if c.is_pending)))
            self.open_deals.add(attribution.deal_id)
            self.open_touches |= touch_ids


def rollup(attributions: Iterable[Attribution], by: Dimension) -> tuple[Rollup, ...]:
    """Rows per (currency, campaign or channel), sorted by currency then key, with the
    unattributed row (``key=None``) last in its currency; empty for no input."""
    seen_deals: set[str] = set()
    models: set[tuple[str, int]] = set()
    sums: dict[tuple[str, str | None], _Sums] = {}
    for attribution in attributions:
        models.add((attribution.model, attribution.model_version))
        if len(models) > 1:
            raise ValueError(f"one rollup per model version, got {sorted(models)}")
        if attribution.deal_id in seen_deals:
            raise ValueError(f"deal {attribution.deal_id} appears twice")
        seen_deals.add(attribution.deal_id)
        if attribution.status == "lost":
            continue
        for key, credits in _by_key(attribution.credits, by).items():
            amount = exact_sum(credit.amount for credit in credits)
            sums.setdefault((attribution.currency, key), _Sums()).add(attribution, amount, credits)
        if not attribution.credits:
            row = sums.setdefault((attribution.currency, None), _Sums())
            row.add(attribution, attribution.unattributed, [])
    if not models:
        return ()
    ((model, version),) = models
    return tuple(
        Rollup(
            model=model,
            model_version=version,
            dimension=by,
            key=key,
            currency=currency,
            revenue=row.revenue,
            deals=len(row.deals),
            touches=len(row.touches),
            pipeline=row.pipeline,
            pending=row.pending,
            open_deals=len(row.open_deals),
            open_touches=len(row.open_touches),
        )
        for (currency, key), row in sorted(sums.items(), key=lambda item: _row_order(*item[0]))
    )


def _by_key(credits: Iterable[Credit], by: Dimension) -> dict[str | None, list[Credit]]:
    """The credited touches grouped by campaign or channel."""
    grouped: dict[str | None, list[Credit]] = {}
    for credit in credits:
        if credit.share == 0 and credit.amount == 0:
            continue
        key = credit.touch.campaign_id if by == "campaign" else credit.touch.channel
        grouped.setdefault(key, []).append(credit)
    return grouped


def _row_order(currency: str, key: str | None) -> tuple[str, bool, str]:
    return (currency, key is None, key or "")
