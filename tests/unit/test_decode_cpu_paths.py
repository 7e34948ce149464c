"""The cheaper paths of decoding against the plain code they replace: the UTC normalisation of
times, decoding a batch in chunks, the keyed HMAC and the pseudonymized copies."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from events import codec
from events.catalog import LeadCreated
from events.codec import decode, decode_many, to_json, to_obj
from events.envelope import Event, to_utc
from events.errors import RejectedInput, Rejection
from events.funnel import load_funnel
from projections.closed_loop.email import email_key, hmac_key
from projections.closed_loop.privacy import pseudonymize

from .factories import one_of_each
from .test_codec import envelope
from .test_codec_bytes_route import same_outcome

PARSE = TypeAdapter(AwareDatetime).validate_python

#: RFC 3339 offsets as upstream may write them, zero ones in each spelling.
OFFSETS = st.sampled_from(["Z", "z", "+00:00", "-00:00", "+01:00", "-05:30", "+14:00", "-00:01"])


def _plain_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _same_datetime(a: datetime, b: datetime) -> None:
    assert a == b
    assert a.tzinfo is b.tzinfo is UTC
    assert a.fold == b.fold
    assert repr(a) == repr(b)


@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    OFFSETS,
)
def test_to_utc_of_a_parsed_time_is_what_astimezone_gives(naive: datetime, offset: str) -> None:
    parsed = PARSE(naive.isoformat() + offset)

    _same_datetime(to_utc(parsed), _plain_utc(parsed))


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(0)), timezone(timedelta(hours=-3)), ZoneInfo("Europe/Berlin")]
        ),
    ),
    st.sampled_from([0, 1]),
)
def test_to_utc_of_any_other_zone_or_fold_is_what_astimezone_gives(
    value: datetime, fold: int
) -> None:
    value = value.replace(fold=fold)

    _same_datetime(to_utc(value), _plain_utc(value))


def _values(n: int) -> list[bytes]:
    base = [orjson.dumps(to_obj(e)) for e in one_of_each()]
    return [orjson.dumps({**orjson.loads(base[i % len(base)]), "id": f"e-{i}"}) for i in range(n)]


def _outcome(raw: bytes, max_bytes: int) -> Event | Rejection:
    try:
        return decode(raw, max_bytes=max_bytes)
    except RejectedInput as exc:
        return exc.rejection


def test_a_batch_of_several_chunks_decodes_as_each_value_alone() -> None:
    chunk = codec._CHUNK
    values = _values(3 * chunk + 5)
    bad = {
        chunk - 1: orjson.dumps(envelope("lead.stage_changed", {"from_stage": "x"}, version=2)),
        chunk: b'{"id": ',
        2 * chunk + 1: b"x" * 1200,
        3 * chunk + 4: orjson.dumps(envelope("lead.created", {"stage": "a\u00e9"}, id="\\u0041")),
    }
    for i, raw in bad.items():
        values[i] = raw

    many = decode_many(values, max_bytes=1000)

    assert len(many) == len(values)
    for raw, item in zip(values, many, strict=True):
        same_outcome(item, _outcome(raw, 1000))
    assert [i for i, item in enumerate(many) if isinstance(item, Rejection)] == [
        chunk - 1,
        chunk,
        2 * chunk + 1,
    ]


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3 * codec._CHUNK), st.sets(st.integers(0, 3 * codec._CHUNK)))
def test_decode_many_of_any_length_gives_what_decode_gives(n: int, broken: set[int]) -> None:
    values = [b"{" if i in broken else raw for i, raw in enumerate(_values(n))]

    many = decode_many(values)

    assert len(many) == n
    for raw, item in zip(values, many, strict=True):
        same_outcome(item, _outcome(raw, codec.DEFAULT_MAX_BYTES))


@settings(max_examples=300)
@given(st.binary(max_size=200), st.text(max_size=80))
def test_the_email_key_is_the_hmac_sha256_of_the_stdlib_for_any_key(key: bytes, text: str) -> None:
    expected = "ek1:" + hmac.digest(key, text.encode("utf-8"), "sha256").hex()

    assert hmac_key(text, key) == expected
    assert hmac_key(text, bytes(key)) == expected, "the cached pads give the same key"


def test_pseudonymize_of_a_decoded_event_is_the_model_copy_of_it() -> None:
    rules, key = load_funnel(None).closed_loop.email, b"k"
    raw = orjson.dumps(
        envelope("lead.created", {"stage": "lead", "email": " A.B+x@Gmail.com", "country": "DE"})
    )
    event = decode_many([raw])[0]
    assert isinstance(event, Event)
    assert isinstance(event.data, LeadCreated)
    update = {"email": None, "email_key": email_key(" A.B+x@Gmail.com", rules, key)}
    plain = event.model_copy(update={"data": event.data.model_copy(update=update)})

    keyed = pseudonymize(event, rules, key)

    for built, expected in ((keyed, plain), (keyed.data, plain.data)):
        assert type(built) is type(expected)
        assert list(built.__dict__.items()) == list(expected.__dict__.items())
        assert built.__pydantic_fields_set__ == expected.__pydantic_fields_set__
        assert type(built.__pydantic_fields_set__) is set
        assert built.__pydantic_extra__ is built.__pydantic_private__ is None
    assert event.data.__pydantic_fields_set__ == {"stage", "email", "country"}, "left as it was"
    assert to_json(keyed) == to_json(plain)
    assert event.data.email == "A.B+x@Gmail.com", "the decoded event is left as it was"
