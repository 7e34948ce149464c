"""What one applied event changed, as facts for counters and derived events.

``diff(old, new)`` compares two views of the same lead and reports what ``new`` has that
``old`` did not, keyed by event ids rather than by position:

- a **transition** per stay whose entering event (``StageSpan.entered_via``) is new;
- an **exit** per stay that is closed in ``new`` but was open or absent in ``old``;
- a **completed handoff** per handoff (keyed by its start event) whose first action became
  known in ``new`` (it was open or absent in ``old``), if that action is a sales action
  (accepted, rejected, contacted). A first action of ``withdrawn`` reports nothing.

Metrics are counters and cannot be taken back, so a fact is reported once, with the figures
known at that moment, and never corrected. Every key above is monotone: adding events to a
history never removes a stay, never reopens a closed one, and never takes the action away
from a handoff (it can only make it an earlier one). So nothing is reported twice, whatever
the arrival order. What a late event can still do:

- Split a stay that had already ended (A entered at t0 and left at t2; a late move at t1
  lands in between). The exit of A was reported with t2 - t0 and is not reported again with
  t1 - t0; the new stay from t1 to t2 is a new transition and a new exit. Exit *counts* per
  stage stay exact; only the already-reported duration keeps its old value.
- Give a handoff an earlier, different action. It is not reported again: a handoff counted as
  accepted stays counted even if a late ``mql -> nurture`` now makes it ``withdrawn``, and a
  handoff first seen ``withdrawn`` stays uncounted even if a late contact now makes it
  ``contacted``.

In event-time order every transition, exit and handoff is reported exactly once, with its
final figures. The read model, rebuilt from the views, is always exact; only the counters
carry this approximation, and only for events that arrive out of order.

Stays are never merged away because every stage-moving event opens its own stay (see
``projections.step``). The one exception is a ``lead.created`` stay when a stage-moving event
that sorts before it arrives later: that stay (and a handoff it started) disappears, and what
was reported for it stays counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from projections.fast_init import fast_init, fast_new
from projections.views import SALES_ACTIONS, Handoff, LeadView


@fast_init
@dataclass(frozen=True, slots=True)
class Transition:
    """The lead moved into ``to_stage`` (``from_stage`` None for its first stay)."""

    from_stage: str | None
    to_stage: str
    at: datetime
    event_id: str


@fast_init
@dataclass(frozen=True, slots=True)
class StageExit:
    """A stay in ``stage`` ended after ``seconds``, ended by the event ``event_id``."""

    stage: str
    seconds: float
    event_id: str


@fast_init
@dataclass(frozen=True, slots=True)
class Changes:
    """The new facts of one applied event; empty tuples when it changed none of them."""

    transitions: tuple[Transition, ...]
    exits: tuple[StageExit, ...]
    handoffs_completed: tuple[Handoff, ...]

    def __bool__(self) -> bool:
        return bool(self.transitions or self.exits or self.handoffs_completed)


NO_CHANGES = Changes(transitions=(), exits=(), handoffs_completed=())

# Built faster on the hot path (see ``projections.fast_init``).
_new_transition = fast_new(Transition)
_new_exit = fast_new(StageExit)
_new_changes = fast_new(Changes)


def appended(old: LeadView, new: LeadView) -> Changes:
    """``diff(old, new)`` when ``new`` is ``step(old, event)``: the event sorts after every
    event of ``old``. Then step at most closed the open stay and opened one, and at most ended
    the last handoff and started one, so the change is read off the tails, not searched for.
    """
    old_stages, new_stages = old.stages, new.stages
    old_handoffs, new_handoffs = old.handoffs, new.handoffs
    # Facts are built positionally, in field order: once or more per event (hot path).
    if old_stages is new_stages:
        if old_handoffs is new_handoffs:
            return NO_CHANGES
        return _new_changes((), (), _completed(old_handoffs, new_handoffs))
    opened = new_stages[-1]
    entered_at, entered_via = opened.entered_at, opened.entered_via
    transitions = (_new_transition(opened.from_stage, opened.stage, entered_at, entered_via),)
    exits: tuple[StageExit, ...] = ()
    if old_stages:
        # In event-time order only the last stay is open; the new one just closed it.
        closed = new_stages[-2]
        seconds = (entered_at - closed.entered_at).total_seconds()
        exits = (_new_exit(closed.stage, seconds, entered_via),)
    completed = () if old_handoffs is new_handoffs else _completed(old_handoffs, new_handoffs)
    return _new_changes(transitions, exits, completed)


def _completed(
    old_handoffs: tuple[Handoff, ...], new_handoffs: tuple[Handoff, ...]
) -> tuple[Handoff, ...]:
    # Only the last handoff can be open, so only it can have ended now.
    if old_handoffs:
        before, after = old_handoffs[-1], new_handoffs[len(old_handoffs) - 1]
        if before.action is None and after.action in SALES_ACTIONS:
            return (after,)
    return ()


def diff(old: LeadView, new: LeadView) -> Changes:
    """What ``new`` reports that ``old`` did not; see the module docstring for the rules."""
    # Most events (touchpoints, assignments) move nothing; step then reuses the same tuples.
    if old.stages is new.stages and old.handoffs is new.handoffs:
        return NO_CHANGES
    known_stays = {span.entered_via for span in old.stages}
    known_exits = {span.entered_via for span in old.stages if span.exited_at is not None}
    # Keyed on "has any action", not "has a sales action": only the former never flips back.
    known_done = {h.start_event_id for h in old.handoffs if h.action is not None}

    transitions = tuple(
        Transition(span.from_stage, span.stage, span.entered_at, span.entered_via)
        for span in new.stages
        if span.entered_via not in known_stays
    )
    # A stay only ends when the next one opens, so the next stay's entering event ended it.
    exits = tuple(
        StageExit(span.stage, span.seconds, after.entered_via)
        for span, after in zip(new.stages, new.stages[1:], strict=False)
        # The set test first: ``seconds`` is computed, and most stays were seen before.
        if span.entered_via not in known_exits and span.seconds is not None
    )
    completed = tuple(
        h for h in new.handoffs if h.action in SALES_ACTIONS and h.start_event_id not in known_done
    )
    return Changes(transitions=transitions, exits=exits, handoffs_completed=completed)
