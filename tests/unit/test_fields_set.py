"""Decoded models share their sets of fields set (``events.fields_set``), and nothing that
happens to one event can change another's through the shared set."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from events import fields_set
from events.catalog import LeadCreated
from events.codec import decode, decode_many, to_json
from events.envelope import Event
from events.fields_set import EVENT_FIELDS, MAX_SHARED, shared
from events.funnel import load_funnel
from projections.closed_loop.privacy import pseudonymize, pseudonymize_decoded

from .test_codec import envelope


def _created(n: int, **extra: str) -> bytes:
    data = {"stage": "lead", "email": f"p{n}@example.com", "country": "DE", **extra}
    return orjson.dumps({**envelope("lead.created", data), "id": f"evt-{n}"})


def _events(values: list[bytes]) -> list[Event]:
    out = [e for e in decode_many(values) if isinstance(e, Event)]
    assert len(out) == len(values)
    return out


def test_decoded_events_of_one_kind_share_one_set_per_part() -> None:
    a, b = _events([_created(1), _created(2)])
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__ is EVENT_FIELDS
    assert a.data.__pydantic_fields_set__ is b.data.__pydantic_fields_set__
    assert a.data.__pydantic_fields_set__ == {"stage", "email", "country"}


def test_the_shared_sets_equal_what_pydantic_itself_gives() -> None:
    (fast,) = _events([_created(1, company="Acme")])
    checked = decode(_created(1, company="Acme"))  # one value: the same route, checked again
    plain = LeadCreated.model_validate(orjson.loads(_created(1, company="Acme"))["data"])
    assert fast.model_fields_set == checked.model_fields_set == set(Event.model_fields)
    assert fast.data.model_fields_set == checked.data.model_fields_set == plain.model_fields_set
    assert type(fast.model_fields_set) is set
    assert type(fast.data.model_fields_set) is set


def test_payloads_naming_other_fields_get_a_set_of_their_own() -> None:
    a, b = _events([_created(1), _created(2, company="Acme")])
    assert a.data.__pydantic_fields_set__ is not b.data.__pydantic_fields_set__
    assert b.data.__pydantic_fields_set__ == {"stage", "email", "country", "company"}


def test_model_copy_of_a_decoded_event_leaves_the_shared_sets_alone() -> None:
    a, b = _events([_created(1), _created(2)])
    before = set(b.data.__pydantic_fields_set__)
    copied = a.model_copy(update={"data": a.data.model_copy(update={"company": "Acme"})})
    assert "company" in copied.data.model_fields_set
    assert b.data.__pydantic_fields_set__ == before
    assert b.__pydantic_fields_set__ == set(Event.model_fields)


def test_assigning_to_a_decoded_event_raises_and_changes_no_set() -> None:
    a, b = _events([_created(1), _created(2)])
    before = set(b.data.__pydantic_fields_set__)
    with pytest.raises(ValidationError):
        a.data.company = "Acme"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        a.subject = "other"  # type: ignore[misc]
    assert b.data.__pydantic_fields_set__ == before
    assert b.__pydantic_fields_set__ == set(Event.model_fields)


def test_pseudonymized_events_share_sets_and_leave_the_others_alone() -> None:
    rules, key = load_funnel(None).closed_loop.email, b"k"
    a, b, c = _events([_created(1), _created(2), _created(3)])
    untouched = set(c.data.__pydantic_fields_set__)
    keyed_a = pseudonymize_decoded(a, rules, key)
    keyed_b = pseudonymize(b, rules, key)
    assert isinstance(keyed_a.data, LeadCreated)
    assert isinstance(keyed_b.data, LeadCreated)
    assert keyed_a.data.__pydantic_fields_set__ is keyed_b.data.__pydantic_fields_set__
    assert keyed_a.data.model_fields_set == untouched | {"email_key"}
    assert c.data.__pydantic_fields_set__ == untouched
    assert "email" not in orjson.loads(to_json(keyed_b))["data"], "no address left"


def test_past_the_bound_a_set_is_kept_by_its_model_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fields_set, "_shared", dict(fields_set._shared))
    for n in range(MAX_SHARED):  # fill the table with sets no event has
        shared({f"x{n}"})
    assert fields_set.shared_count() == MAX_SHARED
    names = {"never", "seen"}
    assert shared(names) is names
    assert shared({"never", "seen"}) is not names, "not kept once the table is full"
    assert shared({"x1"}) == {"x1"}
    assert fields_set.shared_count() == MAX_SHARED
