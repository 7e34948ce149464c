"""``pseudonymize_decoded`` (in place, for events fresh from the decoder) gives what the
copying ``pseudonymize`` gives: equal events, the same fields set, the same bytes."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from events.closed_loop import EmailRules
from events.codec import decode, decode_many, encode, to_json
from events.envelope import Event
from events.errors import RejectedInput
from projections.closed_loop.privacy import pseudonymize, pseudonymize_decoded

RULES = EmailRules()
KEY = b"test-key"
FAST = settings(max_examples=150, deadline=None)

_text = st.text(st.characters(codec="ascii", exclude_characters='\\"\x00'), max_size=24)
_emails = st.one_of(
    st.none(),
    _text,
    st.builds(lambda a, b: f"{a}@{b}", _text, _text),
    st.sampled_from(["John.Doe+x@Gmail.com", " ada@example.com ", "x@googlemail.com"]),
)


def _raw(email: str | None, key: str | None, version: int, company: str | None) -> bytes:
    data: dict[str, object] = {"stage": "lead"}
    if email is not None:
        data["email"] = email
    if key is not None and version == 2:
        data["email_key"] = key
    if company is not None:
        data["company"] = company
    return orjson.dumps(
        {"specversion": "1.0", "id": "e1", "source": "crm", "type": "lead.created",
         "subject": "lead-1", "time": "2026-01-05T09:00:00+00:00", "schemaversion": version,
         "data": data}
    )  # fmt: skip


def _same(a: Event, b: Event) -> None:
    assert a == b
    assert repr(a) == repr(b)
    assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
    assert a.data.__pydantic_fields_set__ == b.data.__pydantic_fields_set__
    assert list(a.data.__dict__) == list(b.data.__dict__)
    assert encode(a) == encode(b)
    assert to_json(a) == to_json(b)


@FAST
@given(
    _emails,
    st.sampled_from([None, "ek1:" + "0" * 64]),
    st.sampled_from([1, 2]),
    st.one_of(st.none(), _text),
)
def test_in_place_equals_the_copy_for_any_created_event(
    email: str | None, key: str | None, version: int, company: str | None
) -> None:
    raw = _raw(email, key, version, company)
    try:
        copied = pseudonymize(decode(raw), RULES, KEY)
    except RejectedInput:  # refused by the decoder: nothing to pseudonymize
        return
    (fresh,) = decode_many([raw])
    assert isinstance(fresh, Event)
    _same(pseudonymize_decoded(fresh, RULES, KEY), copied)


def test_other_events_are_returned_as_they_are() -> None:
    raw = orjson.dumps(
        {"specversion": "1.0", "id": "e2", "source": "crm", "type": "lead.stage_changed",
         "subject": "lead-1", "time": "2026-01-05T09:00:00Z", "schemaversion": 2,
         "data": {"from_stage": "lead", "to_stage": "mql"}}
    )  # fmt: skip
    event = decode(raw)
    assert pseudonymize_decoded(event, RULES, KEY) is event
