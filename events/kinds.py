"""What the folds need to know about a payload's class, looked up by exact type.

Pydantic's model metaclass derives from ``ABCMeta``, so ``isinstance(data, LeadAssigned)`` is
cheap only when it is true for the exact class; when it is false (most checks in a fold, which
asks several questions of every event) it goes through the ABC machinery, about five times
the cost. ``KINDS[type(data)]`` answers all of those questions at once with one dict lookup.

The answer for a class is computed with ``issubclass`` the first time the class is seen and
memoised, so it is exactly what the ``isinstance`` checks would say for every class,
including subclasses and payload types the catalog does not know (those have no flag).
"""

from __future__ import annotations

from typing import Final

from events.catalog import (
    CATALOG,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
)

CREATED: Final = 1
STAGE_CHANGED: Final = 2
DISQUALIFIED: Final = 4
RECYCLED: Final = 8
ASSIGNED: Final = 16
CONTACTED: Final = 32
MERGED: Final = 64
#: The events that always move the lead (``lead.created`` moves it only into its first stay).
MOVES: Final = STAGE_CHANGED | DISQUALIFIED | RECYCLED

#: The flag of each payload class: a class has the flag of every one it derives from.
FLAGS: Final[tuple[tuple[type, int], ...]] = (
    (LeadCreated, CREATED),
    (LeadStageChanged, STAGE_CHANGED),
    (LeadDisqualified, DISQUALIFIED),
    (LeadRecycled, RECYCLED),
    (LeadAssigned, ASSIGNED),
    (LeadContacted, CONTACTED),
    (LeadMerged, MERGED),
)


def kind_of(cls: type) -> int:
    """The flags of a payload class, by ``issubclass`` (the slow, exact definition)."""
    kind = 0
    for base, flag in FLAGS:
        if issubclass(cls, base):
            kind |= flag
    return kind


class _Kinds(dict[type, int]):
    # A miss (a class seen for the first time) is computed once, then it is a plain lookup.
    def __missing__(self, cls: type) -> int:
        kind = self[cls] = kind_of(cls)
        return kind


#: ``KINDS[type(data)]``: the flags of a payload, e.g. ``KINDS[type(data)] & MOVES``.
KINDS: Final = _Kinds({model: kind_of(model) for model in CATALOG})
