"""Closed-loop configuration: which disqualifications suppress a lead, what a re-handoff of a
suppressed lead does, how emails are normalized, and which labels the metrics may carry.

It lives under ``closed_loop:`` in the funnel file (``events/funnel.yaml``); ``Funnel``
checks its reason codes and stage names against the funnel on load.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class OnSuppressed(StrEnum):
    """What a re-handoff of a suppressed lead does: it is always announced as
    ``handoff.suppressed``; ``reject`` also dead-letters the transition."""

    FLAG = "flag"
    REJECT = "reject"


class EmailRules(BaseModel):
    """Normalization applied before an address is keyed (``projections.closed_loop.email``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: drop everything from the first ``+`` of the local part (``jane+news@x`` -> ``jane@x``)
    strip_plus: bool = True
    #: domains whose mail servers ignore dots in the local part
    dotless_domains: tuple[str, ...] = ("gmail.com", "googlemail.com")
    #: domains that are another name of the same mailbox namespace
    domain_aliases: dict[str, str] = Field(default_factory=lambda: {"googlemail.com": "gmail.com"})

    @field_validator("dotless_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value)

    @field_validator("domain_aliases")
    @classmethod
    def _lower_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        return {k.strip().lower(): v.strip().lower() for k, v in value.items()}


class ClosedLoopConfig(BaseModel):
    """The closed-loop rules; every field has a default, so older funnel files still load."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: disqualification reason codes after which marketing must not hand the lead over again
    suppressing_reasons: tuple[str, ...] = ("poor_fit", "competitor", "existing_customer", "spam")
    on_suppressed_handoff: OnSuppressed = OnSuppressed.FLAG
    #: stages whose (re-)entry after a suppressing disqualification is a re-handoff; empty
    #: means every marketing-owned stage plus the handoff stage
    rehandoff_stages: tuple[str, ...] = ()
    email: EmailRules = Field(default_factory=EmailRules)
    #: campaign ids allowed as a metric label; any other campaign is counted as ``other``
    metric_campaigns: tuple[str, ...] = ()
    #: lead sources (``lead.created`` ``lead_source``) allowed as a metric label, else ``other``
    metric_sources: tuple[str, ...] = ()
