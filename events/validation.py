"""Checks an event against the funnel. They look at the event alone, never at other events,
so the same input is accepted or rejected identically live, on replay, in any arrival order."""

from __future__ import annotations

from events.catalog import LeadCreated, LeadDisqualified, LeadRecycled, LeadStageChanged
from events.envelope import Event
from events.errors import FieldError, Rejection, RejectReason
from events.funnel import Funnel


def _unknown(stage: str, loc: str, funnel: Funnel) -> Rejection:
    return Rejection(
        RejectReason.UNKNOWN_STAGE,
        f"{stage!r} is not a stage of this funnel",
        (FieldError(loc, f"must be one of {', '.join(funnel.stages)}"),),
    )


def _transition(from_stage: str, to_stage: str, funnel: Funnel) -> Rejection | None:
    if from_stage not in funnel.stages:
        return _unknown(from_stage, "data.from_stage", funnel)
    if to_stage not in funnel.stages:
        return _unknown(to_stage, "data.to_stage", funnel)
    if funnel.allows(from_stage, to_stage):
        return None
    allowed = ", ".join(funnel.stages[from_stage].next) or "none"
    return Rejection(
        RejectReason.DISALLOWED_TRANSITION,
        f"the funnel does not allow {from_stage} -> {to_stage}",
        (FieldError("data.to_stage", f"from {from_stage} the funnel allows: {allowed}"),),
    )


def check_against_funnel(event: Event, funnel: Funnel) -> Rejection | None:
    """None when the event fits the funnel; otherwise the reason it does not."""
    data = event.data
    if isinstance(data, LeadCreated):
        if data.stage not in funnel.stages:
            return _unknown(data.stage, "data.stage", funnel)
        if data.stage not in funnel.initial_stages:
            return Rejection(
                RejectReason.DISALLOWED_TRANSITION,
                f"a lead cannot start in {data.stage}",
                (FieldError("data.stage", f"must be one of {', '.join(funnel.initial_stages)}"),),
            )
        return None
    if isinstance(data, LeadStageChanged):
        if data.to_stage in (funnel.disqualified_stage, funnel.recycled_stage):
            # Regressions are explicit events with reasons, so a plain stage change into them
            # would let a disqualification slip through without its reason code.
            kind = "disqualified" if data.to_stage == funnel.disqualified_stage else "recycled"
            return Rejection(
                RejectReason.DISALLOWED_TRANSITION,
                f"moves into {data.to_stage} must be lead.{kind} events, which carry a reason",
                (FieldError("data.to_stage", f"publish lead.{kind} instead"),),
            )
        return _transition(data.from_stage, data.to_stage, funnel)
    if isinstance(data, LeadRecycled):
        return _transition(data.from_stage, funnel.recycled_stage, funnel)
    if isinstance(data, LeadDisqualified):
        if data.reason_code not in funnel.disqualification_reasons:
            return Rejection(
                RejectReason.UNKNOWN_REASON_CODE,
                f"{data.reason_code!r} is not a disqualification reason of this funnel",
                (
                    FieldError(
                        "data.reason_code",
                        f"must be one of {', '.join(funnel.disqualification_reasons)}",
                    ),
                ),
            )
        return _transition(data.from_stage, funnel.disqualified_stage, funnel)
    return None
