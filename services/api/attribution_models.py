"""Response bodies of the attribution endpoints (and what ``leadledger attribution`` prints).

Money is a decimal string (``"12500.00"``), never a float, at least at the currency's minor
unit. Amounts in different currencies are never added: every money figure sits next to its
currency. Every report names the model versions it used (``w_shaped@v1``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(frozen=True)

Dimension = Literal["campaign", "channel"]
DealStatusOut = Literal["won", "open", "lost"]


class UnknownModel(ValueError):
    """A requested attribution model is not in the model file (the message names the known)."""


class ModelRef(BaseModel):
    """The exact model version a figure was computed with."""

    model_config = _FROZEN

    name: str = Field(description="canonical model name, e.g. w_shaped")
    version: int = Field(ge=1)
    label: str = Field(description="name@vN, as reports print it")
    kind: str = Field(description="positional, linear or time_decay")


class Period(BaseModel):
    """Deals are selected by their close: won (or lost) at or after ``start``, before ``end``."""

    model_config = _FROZEN

    start: AwareDatetime
    end: AwareDatetime = Field(description="exclusive")


class RollupRow(BaseModel):
    """The credit of one campaign or channel in one currency under one model."""

    model_config = _FROZEN

    dimension: Dimension
    key: str | None = Field(description="campaign id or channel; null: the unattributed row")
    currency: str
    revenue: Decimal = Field(description="won revenue credited to this key")
    revenue_share: Decimal = Field(
        description="revenue / the currency's won revenue, 4 decimals (display only)"
    )
    deals: int = Field(ge=0, description="won deals in which this key got credit")
    touches: int = Field(ge=0, description="touches of this key that got won credit")
    pipeline: Decimal = Field(description="open deals' credit (pending included), not revenue")
    pending: Decimal = Field(description="part of pipeline on the pending (latest) touches")
    open_deals: int = Field(ge=0)
    open_touches: int = Field(ge=0)


class CurrencyTotal(BaseModel):
    """Totals of one currency: the rows of that currency sum to exactly these."""

    model_config = _FROZEN

    currency: str
    won_deals: int = Field(ge=0)
    revenue: Decimal = Field(description="sum of the won deals' amounts")
    credited: Decimal = Field(description="part of revenue credited to touches")
    unattributed: Decimal = Field(description="won deals with no touch before their close")
    touches: int = Field(ge=0, description="distinct touches that got won credit")
    open_deals: int = Field(ge=0)
    pipeline: Decimal = Field(description="sum of the open deals' amounts")
    pending: Decimal
    lost_deals: int = Field(ge=0, description="deals lost in the period (no credit)")


class ModelReport(BaseModel):
    """One model's credit per campaign and/or channel, and its totals per currency."""

    model_config = _FROZEN

    model: ModelRef
    totals: list[CurrencyTotal]
    rows: list[RollupRow] = Field(
        description="per dimension, currency and key; the unattributed row last per currency"
    )


class ComparisonRow(BaseModel):
    """One campaign or channel under every compared model, side by side."""

    model_config = _FROZEN

    dimension: Dimension
    key: str | None
    currency: str
    revenue: dict[str, Decimal] = Field(description="model label -> credited won revenue")
    deals: dict[str, int] = Field(description="model label -> won deals with credit")
    pipeline: dict[str, Decimal] = Field(description="model label -> open deals' credit")


class AttributionReport(BaseModel):
    """Won revenue, open pipeline, deals and touches credited per campaign and channel."""

    model_config = _FROZEN

    period: Period
    as_of: AwareDatetime = Field(description="events with a time at or before this were used")
    by: list[Dimension]
    models: list[ModelReport]
    comparison: list[ComparisonRow] = Field(
        description="with two or more models: each key's revenue per model"
    )
    warnings: list[str] = Field(default_factory=list)


class CreditOut(BaseModel):
    """One counted touch of a deal: its positions, share and money under one model."""

    model_config = _FROZEN

    touch_id: str = Field(description="event id of the touchpoint.recorded event")
    at: AwareDatetime
    campaign_id: str
    channel: str
    touch_type: str
    positions: list[str] = Field(
        description="first, lead_creation, opportunity_creation, closed_won, pending, "
        "closed_lost; middle for none"
    )
    share: Decimal = Field(description="fraction of the deal, 12 places; shares sum to 1")
    amount: Decimal = Field(description="money; amounts sum to the deal amount exactly")


class ModelExplanation(BaseModel):
    """How one model splits one deal."""

    model_config = _FROZEN

    model: ModelRef
    credits: list[CreditOut]
    credited: Decimal
    unattributed: Decimal = Field(description="the whole amount when no touch counts")


class DealExplanation(BaseModel):
    """Each counted touch of one deal, with its positions, share and amount per model."""

    model_config = _FROZEN

    deal_id: str
    lead_id: str
    status: DealStatusOut = Field(description="as of as_of; an open deal has a pending touch")
    amount: Decimal
    currency: str
    lead_stage_at: AwareDatetime | None = Field(description="lead-creation milestone time")
    created_at: AwareDatetime | None = Field(description="deal.created: opportunity milestone")
    closed_at: AwareDatetime | None = Field(description="won or lost; null while open")
    as_of: AwareDatetime
    explanations: list[ModelExplanation]
    warnings: list[str] = Field(default_factory=list)
