"""Pseudonymization of events before they reach any read model.

``pseudonymize`` swaps a ``lead.created`` event's ``email`` for its ``email_key``. The
processor applies it right after decoding, so the archive, the folds and every table only see
the key; replaying the archive needs no address and gives the same keys. The events topic
itself still carries the address upstream published: it is the input log, governed by its
retention, not a read model.
"""

from __future__ import annotations

from events.catalog import LeadCreated
from events.closed_loop import EmailRules
from events.envelope import Event
from projections.closed_loop.email import email_key


def pseudonymize(event: Event, rules: EmailRules, key: bytes) -> Event:
    """The event without a raw address: ``lead.created`` gets ``email_key`` (from ``email``
    when present, which wins over a key sent by upstream) and loses ``email``. Other events
    are returned as they are."""
    data = event.data
    if not isinstance(data, LeadCreated) or data.email is None:
        return event
    keyed = data.model_copy(update={"email": None, "email_key": email_key(data.email, rules, key)})
    return event.model_copy(update={"data": keyed})
