"""One shared ``__pydantic_fields_set__`` per distinct set of field names, not one per model.

pydantic-core gives every model it validates a fresh set of the fields its input named. For an
event's ten header fields that set takes 728 bytes and for a payload's three to five 216: over
half of the 1.7 KB a decoded event holds, and the processor keeps every event of a cached
lead (bench/README.md, "Memory"). The sets of one kind of model are nearly always equal, so
decoded models share one.

Sharing is safe because nothing changes a model's set in place. The event models are frozen:
assignment raises before pydantic touches the set. ``model_copy`` copies the set before adding
the updated names. The project's own builders (``events.codec``,
``projections.closed_loop.privacy``) make a new set, or take a shared one, and never add to
one. ``tests/unit/test_fields_set.py`` checks all of this.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Final

from events.envelope import Event

#: the set of every event built by the decoder: all of ``Event``'s fields
EVENT_FIELDS: Final[set[str]] = set(Event.model_fields)

#: Distinct sets kept. A set names fields of one model, so real traffic has a few dozen;
#: past this bound (a producer sending every combination of optional fields) models keep
#: their own.
MAX_SHARED: Final = 4096

_shared: dict[frozenset[str], set[str]] = {frozenset(EVENT_FIELDS): EVENT_FIELDS}


def shared(names: Set[str]) -> set[str]:
    """The shared set equal to ``names`` (``names`` itself becomes it when it is the first;
    the caller must not change it afterwards)."""
    key = frozenset(names)
    found = _shared.get(key)
    if found is not None:
        return found
    own = names if type(names) is set else set(names)
    if len(_shared) < MAX_SHARED:
        _shared[key] = own
    return own


def shared_count() -> int:
    """How many distinct sets are shared (for tests)."""
    return len(_shared)
