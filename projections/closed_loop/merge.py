"""Merged histories: the survivor of ``lead.merged`` folded with the leads merged into it.

Rule. ``lead.merged`` (subject: the merged lead, ``survivor_id``: the survivor) is applied on
the merged lead's partition, which records the merge (``lead_current.merged_into``); the
survivor may live on another partition, owned by another worker. So no worker writes another
partition's lead: the **merged view** of a survivor is a pure function of the archived
histories of the survivor and of every lead merged into it (transitively), computed when it is
read. It folds the union of those events, each lead's rejected duplicates left out, in the
fold's event-time order (``order_key``) as if they were the survivor's own:

- stages: every stage-moving event of either lead opens a stay of the survivor (a merged
  lead's ``lead.created`` only opens one if it is the earliest event of all); touchpoints,
  contacts, assignments and deals count as the survivor's;
- a merged lead's own ``lead.merged`` stays in its timeline but is left out of the fold, so
  it does not mark the survivor as merged;
- SLA timers stay what each lead's processor computed (the merged lead's running timers were
  cancelled with reason ``merged``); the timeline lists both leads' timers.

Events of the merged lead that arrive after the merge are archived under that lead as
usual, so they are in the merged view as soon as they are committed: nothing needs
redirecting, and the result does not depend on which partition, worker or arrival order
anything came from. Replaying the archive gives the same merged view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from events.catalog import LeadMerged
from events.envelope import Event
from events.funnel import Funnel
from projections.lead import LeadState, fold


@dataclass(frozen=True, slots=True)
class MergedState:
    """The survivor's merged state; ``origin`` maps each event id to the lead it came from."""

    state: LeadState
    origin: Mapping[str, str]


def merged_into(survivor_id: str, merges: Mapping[str, str]) -> tuple[str, ...]:
    """Every lead merged into ``survivor_id``, directly or through a chain (``merges``: merged
    lead -> its survivor), sorted; cycles are cut."""
    found: set[str] = set()
    frontier = [survivor_id]
    while frontier:
        target = frontier.pop()
        for merged, survivor in merges.items():
            if survivor == target and merged not in found and merged != survivor_id:
                found.add(merged)
                frontier.append(merged)
    return tuple(sorted(found))


def merged_state(
    survivor_id: str, histories: Mapping[str, Iterable[Event]], funnel: Funnel
) -> MergedState:
    """The survivor folded with ``histories`` (lead id -> its events, any order, the
    survivor's own included)."""
    origin: dict[str, str] = {}
    adopted: list[Event] = []
    # Sorted lead ids: when two leads used the same event id, the same one wins every time.
    for lead_id in sorted(histories):
        for event in histories[lead_id]:
            if event.subject != lead_id or event.id in origin:
                continue
            origin[event.id] = lead_id
            if lead_id == survivor_id:
                adopted.append(event)
            elif not isinstance(event.data, LeadMerged):
                adopted.append(event.model_copy(update={"subject": survivor_id}))
    return MergedState(fold(survivor_id, adopted, funnel), origin)
