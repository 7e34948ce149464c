"""Checks an event against the funnel. They look at the event alone, never at other events,
so the same input is accepted or rejected identically live, on replay, in any arrival order."""

from __future__ import annotations

from events.catalog import LeadCreated, LeadDisqualified, LeadRecycled, LeadStageChanged
from events.envelope import Event
from events.errors import FieldError, Rejection, RejectReason
from events.funnel import Funnel, FunnelLookups
from events.kinds import CREATED, DISQUALIFIED, KINDS, RECYCLED, STAGE_CHANGED

#: The payloads the funnel has a say on; every other event fits any funnel.
_CHECKED = CREATED | STAGE_CHANGED | RECYCLED | DISQUALIFIED


def _unknown(stage: str, loc: str, funnel: Funnel) -> Rejection:
    return Rejection(
        RejectReason.UNKNOWN_STAGE,
        f"{stage!r} is not a stage of this funnel",
        (FieldError(loc, f"must be one of {', '.join(funnel.stages)}"),),
    )


def _transition(
    from_stage: str, to_stage: str, funnel: Funnel, lookups: FunnelLookups
) -> Rejection | None:
    # The funnel's lookups, not its pydantic attributes: this runs for every move. The
    # stages ``allowed`` names all exist (checked on load), so an allowed move needs no
    # test of ``to_stage`` and the order of the three checks is the plain one's.
    next_stages = lookups.next_stages
    allowed = next_stages.get(from_stage)
    if allowed is None:
        return _unknown(from_stage, "data.from_stage", funnel)
    if to_stage in allowed:
        return None
    if to_stage not in next_stages:
        return _unknown(to_stage, "data.to_stage", funnel)
    listed = ", ".join(funnel.stages[from_stage].next) or "none"
    return Rejection(
        RejectReason.DISALLOWED_TRANSITION,
        f"the funnel does not allow {from_stage} -> {to_stage}",
        (FieldError("data.to_stage", f"from {from_stage} the funnel allows: {listed}"),),
    )


def check_against_funnel(event: Event, funnel: Funnel) -> Rejection | None:
    """None when the event fits the funnel; otherwise the reason it does not."""
    data = event.data
    # One exact-class lookup instead of up to four ``isinstance`` calls, which are slow when
    # false (pydantic's metaclass is an ABCMeta); each isinstance below runs only when the
    # flag says it is true, so it is the cheap case and is there for the type checker.
    flags = KINDS[type(data)]
    if not flags & _CHECKED:
        return None
    lookups = funnel.lookups
    if flags & CREATED and isinstance(data, LeadCreated):
        if data.stage not in lookups.next_stages:
            return _unknown(data.stage, "data.stage", funnel)
        if data.stage not in lookups.initial_stages:
            return Rejection(
                RejectReason.DISALLOWED_TRANSITION,
                f"a lead cannot start in {data.stage}",
                (FieldError("data.stage", f"must be one of {', '.join(funnel.initial_stages)}"),),
            )
        return None
    if flags & STAGE_CHANGED and isinstance(data, LeadStageChanged):
        to_stage = data.to_stage
        if to_stage == lookups.disqualified_stage or to_stage == lookups.recycled_stage:
            # Regressions are explicit events with reasons, so a plain stage change into them
            # would let a disqualification slip through without its reason code.
            kind = "disqualified" if data.to_stage == funnel.disqualified_stage else "recycled"
            return Rejection(
                RejectReason.DISALLOWED_TRANSITION,
                f"moves into {data.to_stage} must be lead.{kind} events, which carry a reason",
                (FieldError("data.to_stage", f"publish lead.{kind} instead"),),
            )
        return _transition(data.from_stage, to_stage, funnel, lookups)
    if flags & RECYCLED and isinstance(data, LeadRecycled):
        return _transition(data.from_stage, lookups.recycled_stage, funnel, lookups)
    if flags & DISQUALIFIED and isinstance(data, LeadDisqualified):
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
        return _transition(data.from_stage, lookups.disqualified_stage, funnel, lookups)
    return None
