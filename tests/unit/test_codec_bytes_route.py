"""The bytes route of ``decode`` (pydantic-core parses and validates the bytes in one call)
against the orjson route it short-cuts: for any input, the same event or the same rejection."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from events.codec import (
    _BYTES,
    DEFAULT_MAX_BYTES,
    _bytes_route,
    _decode_checked,
    _decode_parsed,
    decode,
    decode_many,
    to_json,
    to_obj,
)
from events.envelope import Event
from events.errors import RejectedInput, Rejection
from events.registry import DEFAULT_REGISTRY

from .factories import one_of_each
from .test_codec import envelope

STAGE = {"from_stage": "lead", "to_stage": "mql"}

BASES: list[dict[str, Any]] = [
    *(orjson.loads(orjson.dumps(to_obj(e))) for e in one_of_each()),
    envelope("lead.stage_changed", {"from": "lead", "to": "mql"}, version=1),
    envelope("lead.created", {"stage": "lead", "email": "a@example.com"}, version=1),
    envelope("lead.stage_changed", STAGE, version=2),
]

#: Values that probe the envelope's and the payloads' constraints and JSON's corners.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            "",
            " ",
            " padded ",
            "x" * 129,
            "1.0",
            "2",
            "2.0",
            "lead",
            "lead.created",
            " lead.created",
            "lead.stage_changed",
            "deal.won",
            "2025-01-06T09:00:00Z",
            "2025-01-06T09:00:00",
            "2025-01-06T10:00:00+01:00",
            "2025-01-06 09:00:00.123456789z",
            "1736154000",
            "application/json",
            "EUR",
            "12.50",
            "call",
            "ek1:" + "0" * 64,
            "nul \x00 inside",
            "\u00e9t\u00e9 \U0001f600",
            "tab\there",
        ]
    ),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["from", "to", "stage", "x"]), st.text(max_size=3), max_size=2),
)
KEYS = st.sampled_from(
    [
        *("specversion", "id", "source", "type", "subject", "time", "schemaversion"),
        *("dataschema", "datacontenttype", "data", "extra"),
    ]
)
DATA_KEYS = st.sampled_from(
    [
        *("stage", "email", "email_key", "from_stage", "to_stage", "from", "to", "reason"),
        *("owner_id", "team", "activity", "rep_id", "amount", "currency", "deal_id", "surprise"),
    ]
)


@st.composite
def inputs(draw: st.DrawFn) -> bytes:
    """A valid event with a few fields changed, dropped or added, encoded, sometimes with its
    bytes tampered with (a key repeated, escapes, junk, whitespace)."""
    obj = dict(draw(st.sampled_from(BASES)))
    data = dict(obj["data"])
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        change = draw(st.sampled_from(["set", "drop", "set-data", "drop-data"]))
        if change == "set":
            obj[draw(KEYS)] = draw(ODD_VALUES)
        elif change == "drop":
            obj.pop(draw(KEYS), None)
        elif change == "set-data":
            data[draw(DATA_KEYS)] = draw(ODD_VALUES)
        elif data:
            data.pop(draw(st.sampled_from(sorted(data))))
    if isinstance(obj.get("data"), dict):
        obj["data"] = data
    # The standard library writes integers of any size (orjson stops at 64 bits) and, with
    # ensure_ascii, non-ASCII text as \u escapes.
    ascii_only = draw(st.booleans())
    raw = json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":")).encode()
    tamper = draw(st.sampled_from(["none", "none", "repeat", "escape", "junk", "space"]))
    if tamper == "repeat":  # a key given twice: the last one counts for both parsers
        key, value = draw(KEYS), draw(ODD_VALUES)
        raw = raw[:1] + json.dumps({key: value}).encode()[1:-1] + b"," + raw[1:]
    elif tamper == "escape":  # every source starts with "urn:"; \u0075 is "u"
        escaped = draw(st.sampled_from([b"\\u0075rn:", b"\\u0000urn:", b"\\ud800urn:", b"\\nurn:"]))
        raw = raw.replace(b'"urn:', b'"' + escaped)
    elif tamper == "junk":
        raw = raw + draw(st.sampled_from([b" ", b"\n", b"x", b",", b"}", b"\x00", b"\xff"]))
    elif tamper == "space":
        raw = raw.replace(b":", b" : ").replace(b",", b" ,\n")
    return raw


def outcome(decoder: Any, raw: bytes) -> Event | Rejection:
    try:
        result: Event = decoder(raw)
    except RejectedInput as exc:
        return exc.rejection
    return result


def same_event(a: Event, b: Event) -> None:
    assert a == b
    assert list(a.__dict__) == list(b.__dict__)
    assert a.model_fields_set == b.model_fields_set
    assert type(a) is type(b) is Event
    assert type(a.data) is type(b.data)
    assert a.time.tzinfo == b.time.tzinfo
    assert to_obj(a) == to_obj(b)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_decode_gives_what_the_orjson_route_gives_for_any_input(raw: bytes) -> None:
    via_bytes = outcome(decode, raw)
    via_orjson = outcome(lambda r: _decode_parsed(r, DEFAULT_REGISTRY), raw)
    event(via_orjson.reason.value if isinstance(via_orjson, Rejection) else "accepted")
    if isinstance(via_orjson, Rejection):
        assert via_bytes == via_orjson
    else:
        assert isinstance(via_bytes, Event)
        same_event(via_bytes, via_orjson)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_what_the_bytes_route_accepts_the_step_by_step_path_accepts_as_the_same_event(
    raw: bytes,
) -> None:
    route = _bytes_route(DEFAULT_REGISTRY)
    assert route is not None
    if b"\\u" in raw:  # decode never gives these to the route: see the next test
        return
    try:
        route.one(raw)
    except ValueError:  # pydantic's ValidationError: the orjson route takes over
        return
    obj = orjson.loads(raw)
    checked = _decode_checked(obj, obj["data"], DEFAULT_REGISTRY)
    same_event(decode(raw), checked)


@pytest.mark.parametrize(
    "escaped",
    [b"a\\u0000b", b"\\ud800", b"\\udc00x", b"\\u0000"],
    ids=["nul", "lone-high-surrogate", "lone-low-surrogate", "only-nul"],
)
def test_an_escaped_nul_or_lone_surrogate_is_rejected_as_on_the_orjson_route(
    escaped: bytes,
) -> None:
    raw = orjson.dumps(envelope("lead.stage_changed", STAGE, version=2, id="@")).replace(
        b'"@"', b'"' + escaped + b'"'
    )
    rejected = outcome(decode, raw)
    assert isinstance(rejected, Rejection)
    assert rejected == outcome(lambda r: _decode_parsed(r, DEFAULT_REGISTRY), raw)


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: e.type)
def test_every_catalog_type_decodes_alike_on_both_routes(event: Event) -> None:
    raw = orjson.dumps(to_obj(event))
    same_event(decode(raw), _decode_parsed(raw, DEFAULT_REGISTRY))


def test_payloads_with_numbers_keep_the_orjson_route() -> None:
    route = _bytes_route(DEFAULT_REGISTRY)
    assert route is not None
    names = {cls.__name__ for cls in route.finish}
    assert "LeadStageChangedBytes" in names
    assert not {"DealCreatedBytes", "DealWonBytes", "DealLostBytes"} & names
    assert _BYTES[DEFAULT_REGISTRY] is route


def same_outcome(a: Event | Rejection, b: Event | Rejection) -> None:
    if isinstance(b, Rejection):
        assert a == b
    else:
        assert isinstance(a, Event)
        same_event(a, b)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(inputs(), max_size=8), st.sampled_from([DEFAULT_MAX_BYTES, 300]))
def test_decode_many_gives_what_decode_gives_for_each_value(
    values: list[bytes], max_bytes: int
) -> None:
    many = decode_many(values, max_bytes=max_bytes)
    assert len(many) == len(values)
    for raw, item in zip(values, many, strict=True):
        same_outcome(item, outcome(lambda r: decode(r, max_bytes=max_bytes), raw))


def test_one_bad_value_in_a_batch_gets_its_own_rejection_and_the_others_their_events() -> None:
    good = [orjson.dumps(to_obj(e)) for e in one_of_each()]
    bad = [
        orjson.dumps(envelope("lead.stage_changed", {"from_stage": "lead"}, version=2)),
        b'{"id": ',
        orjson.dumps(envelope("lead.stage_changed", STAGE, version=2, id="a\x00b")),
        b"x" * 1200,
    ]
    values = [good[0], bad[0], *good[1:4], bad[1], bad[2], *good[4:], bad[3]]

    many = decode_many(values, max_bytes=1000)

    for raw, item in zip(values, many, strict=True):
        same_outcome(item, outcome(lambda r: decode(r, max_bytes=1000), raw))
    assert [type(item).__name__ for item in many].count("Rejection") == len(bad)


def test_decode_many_of_nothing_is_nothing() -> None:
    assert decode_many([]) == []


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: e.type)
def test_to_obj_is_the_json_model_dump_and_to_json_its_bytes(event: Event) -> None:
    odd = event.model_copy(update={"id": '\u00e9\x1f"\\ \U0001f600', "dataschema": None})
    for e in (event, odd, decode(orjson.dumps(to_obj(event)))):
        assert to_obj(e) == e.model_dump(mode="json", exclude_none=True)
        assert orjson.loads(to_json(e)) == to_obj(e)
