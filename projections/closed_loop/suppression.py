"""Suppression: a lead that sales disqualified with a suppressing reason code must not be handed
over again by marketing.

A lead is suppressed from its first ``lead.disqualified`` whose ``reason_code`` is in
``closed_loop.suppressing_reasons`` (in the fold's event-time order), for good. A
**re-handoff** is every later stage-moving event (``lead.stage_changed``, ``lead.recycled``)
that enters one of ``funnel.rehandoff_stages`` (by default every marketing-owned stage and
the handoff stage). Everything is a function of the lead's sorted history, so the set of
re-handoffs of a history does not depend on arrival order, and adding events only ever adds
re-handoffs (a late suppressing disqualification can turn an earlier-arrived move into one).

With ``on_suppressed_handoff: reject`` a re-handoff is refused when it arrives, which can
only judge the history known then: a move that was accepted before its (earlier-dated)
suppressing disqualification arrived stays accepted and is flagged instead. Live processing
and a replay of the same log see the same arrivals, so they decide the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from events.catalog import LeadDisqualified
from events.closed_loop import OnSuppressed
from events.envelope import Event
from events.errors import FieldError, Rejection, RejectReason
from events.funnel import Funnel
from projections.lead import order_key
from projections.step import stage_move
from projections.views import LeadView


@dataclass(frozen=True, slots=True)
class Suppression:
    """The disqualification that suppressed the lead."""

    event_id: str
    at: datetime
    reason_code: str


@dataclass(frozen=True, slots=True)
class Rehandoff:
    """One hand-over of a suppressed lead: ``event`` moved it into ``to_stage``."""

    event: Event
    to_stage: str
    suppression: Suppression


def suppression_of(ordered: Iterable[Event], funnel: Funnel) -> Suppression | None:
    """The first suppressing disqualification of a history sorted by ``order_key``."""
    reasons = funnel.closed_loop.suppressing_reasons
    for event in ordered:
        data = event.data
        if isinstance(data, LeadDisqualified) and data.reason_code in reasons:
            return Suppression(event.id, event.time, data.reason_code)
    return None


def may_be_suppressed(view: LeadView, funnel: Funnel) -> bool:
    """False only if the lead's history has no suppressing disqualification.

    Read off the stays rather than the events: every ``lead.disqualified`` opens a stay in the
    disqualified stage with its reason code as the reason, and a lead has far fewer stays than
    events. A move into that stage with such a reason may also match, so True is only a
    "perhaps" (ask ``suppression_of``); False is certain, and is what nearly every lead gives.
    """
    reasons = funnel.closed_loop.suppressing_reasons
    stage = funnel.disqualified_stage
    # A plain loop: the processor asks after every stage move, and a generator for ``any``
    # is one more object allocated per event (and one more for the collector to count).
    for s in view.stages:  # noqa: SIM110 (see above)
        if s.stage == stage and s.reason in reasons:
            return True
    return False


def _entered(event: Event, funnel: Funnel) -> str | None:
    move = stage_move(event.data, funnel, has_stage=True)
    if move is None or move[0] not in funnel.rehandoff_stages:
        return None
    return move[0]


def rehandoffs(ordered: Sequence[Event], funnel: Funnel) -> tuple[Rehandoff, ...]:
    """Every re-handoff of a history sorted by ``order_key``, in that order."""
    found: list[Rehandoff] = []
    suppression: Suppression | None = None
    for event in ordered:
        if suppression is None:
            suppression = suppression_of((event,), funnel)
            continue
        stage = _entered(event, funnel)
        if stage is not None:
            found.append(Rehandoff(event, stage, suppression))
    return tuple(found)


def new_rehandoffs(
    before: Sequence[Event], after: Sequence[Event], funnel: Funnel
) -> tuple[Rehandoff, ...]:
    """Re-handoffs of ``after`` that ``before`` did not have (keyed by the moving event)."""
    # The processor asks after every stage move, so the usual cases must not walk the
    # history twice: a lead that was never suppressed has none at all, and an event
    # appended after the whole history can only be a re-handoff itself.
    suppression = suppression_of(after, funnel)
    if suppression is None:
        return ()
    if len(after) == len(before) + 1 and all(a is b for a, b in zip(before, after, strict=False)):
        last = after[-1]
        stage = _entered(last, funnel)
        if stage is None or suppression.event_id == last.id:
            return ()
        return (Rehandoff(last, stage, suppression),)
    known = {r.event.id for r in rehandoffs(before, funnel)}
    return tuple(r for r in rehandoffs(after, funnel) if r.event.id not in known)


def would_rehandoff(ordered: Sequence[Event], event: Event, funnel: Funnel) -> Rehandoff | None:
    """The re-handoff ``event`` would be if added to the sorted history, else None."""
    stage = _entered(event, funnel)
    if stage is None:
        return None
    key = order_key(event)
    suppression = suppression_of((e for e in ordered if order_key(e) < key), funnel)
    return None if suppression is None else Rehandoff(event, stage, suppression)


def check_rehandoff(ordered: Sequence[Event], event: Event, funnel: Funnel) -> Rejection | None:
    """In ``reject`` mode, why ``event`` may not be applied to the history; else None."""
    if funnel.closed_loop.on_suppressed_handoff is not OnSuppressed.REJECT:
        return None
    found = would_rehandoff(ordered, event, funnel)
    if found is None:
        return None
    s = found.suppression
    return Rejection(
        RejectReason.SUPPRESSED_HANDOFF,
        f"lead {event.subject!r} was disqualified as {s.reason_code} by event {s.event_id} at"
        f" {s.at.isoformat()}; it must not be handed over again (to {found.to_stage})",
        (FieldError("data", "the lead is suppressed"),),
    )
