"""The orjson codec: round trips, canonical bytes, upcasting, and every way to be rejected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from events.catalog import CATALOG, DealWon, LeadCreated, LeadStageChanged
from events.codec import DEFAULT_MAX_BYTES, decode, decode_obj, encode, to_obj
from events.envelope import Event, dataschema_uri, make_event
from events.errors import RejectedInput, RejectReason
from events.registry import DEFAULT_REGISTRY

from .factories import LEAD, at, one_of_each


def envelope(type_: str, data: Any, version: int = 1, **overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:crm",
        "type": type_,
        "subject": LEAD,
        "time": "2025-01-06T09:00:00Z",
        "schemaversion": version,
        "data": data,
    }
    obj.update(overrides)
    return obj


def rejection_of(raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> RejectedInput:
    with pytest.raises(RejectedInput) as info:
        decode(raw, max_bytes=max_bytes)
    return info.value


def raw(obj: object) -> bytes:
    return orjson.dumps(obj)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("event", one_of_each(), ids=lambda e: e.type)
def test_every_catalog_type_round_trips_through_bytes(event: Event) -> None:
    decoded = decode(encode(event))

    assert decoded == event
    assert type(decoded.data) is type(event.data)
    assert encode(decoded) == encode(event)


def test_the_samples_cover_the_whole_catalog() -> None:
    assert {e.type for e in one_of_each()} == {model.TYPE for model in CATALOG}


def test_encoding_is_canonical_with_sorted_keys_and_utc_times() -> None:
    obj = orjson.loads(encode(one_of_each()[1]))

    assert list(obj) == sorted(obj)
    assert obj["time"] == "2025-01-06T09:01:00Z"


def test_decimals_survive_as_exact_strings() -> None:
    won = next(e for e in one_of_each() if isinstance(e.data, DealWon))

    assert to_obj(won)["data"]["amount"] == "1234.50"
    decoded = decode(encode(won)).data
    assert isinstance(decoded, DealWon)
    assert decoded.amount == Decimal("1234.50")


def test_a_time_with_an_offset_is_normalised_to_utc() -> None:
    obj = envelope("lead.created", {}, time="2025-01-06T10:00:00+01:00")

    assert decode(raw(obj)).time == datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    assert decode(raw(obj)).time.tzinfo == UTC


def test_decode_fills_in_the_current_dataschema() -> None:
    event = decode(raw(envelope("lead.created", {"stage": "mql"})))

    assert event.dataschema == dataschema_uri("lead.created", 2)


def test_decode_obj_accepts_an_already_parsed_object() -> None:
    event = decode_obj(envelope("lead.assigned", {"owner_id": "rep-1", "team": "sales"}))

    assert event.subject == LEAD
    assert event.key == LEAD.encode()


# --- upcasting --------------------------------------------------------------------------


def test_a_v1_stage_change_is_upcast_to_v2() -> None:
    obj = envelope("lead.stage_changed", {"from": "lead", "to": "mql", "reason": "score"}, 1)

    event = decode(raw(obj))

    assert event.schemaversion == 2
    assert event.dataschema == dataschema_uri("lead.stage_changed", 2)
    assert event.data == LeadStageChanged(from_stage="lead", to_stage="mql", reason="score")


def test_an_upcast_event_re_encodes_as_the_current_version() -> None:
    event = decode(raw(envelope("lead.stage_changed", {"from": "lead", "to": "mql"}, 1)))

    assert orjson.loads(encode(event))["schemaversion"] == 2
    assert decode(encode(event)) == event


def test_a_v1_stage_change_missing_a_field_names_the_v2_field() -> None:
    error = rejection_of(raw(envelope("lead.stage_changed", {"from": "lead"}, 1)))

    assert error.rejection.reason is RejectReason.SCHEMA_VIOLATION
    assert [e.loc for e in error.rejection.errors] == ["data.to_stage"]


def test_the_registry_lists_every_readable_version() -> None:
    assert DEFAULT_REGISTRY.versions("lead.stage_changed") == (1, 2)
    assert DEFAULT_REGISTRY.versions("lead.created") == (1, 2)


# --- rejections -------------------------------------------------------------------------


def test_malformed_json_is_rejected() -> None:
    assert rejection_of(b'{"id": ').rejection.reason is RejectReason.MALFORMED_JSON


@pytest.mark.parametrize("payload", [b"[]", b'"lead"', b"42", b"null"])
def test_a_json_value_that_is_not_an_object_is_rejected(payload: bytes) -> None:
    assert rejection_of(payload).rejection.reason is RejectReason.INVALID_ENVELOPE


def test_an_unknown_type_is_rejected_with_the_known_types() -> None:
    error = rejection_of(raw(envelope("lead.teleported", {})))

    assert error.rejection.reason is RejectReason.UNKNOWN_TYPE
    assert error.rejection.errors[0].loc == "type"
    assert "lead.created" in error.rejection.errors[0].msg


@pytest.mark.parametrize("version", [3, 999])
def test_an_unknown_version_is_rejected_with_the_readable_versions(version: int) -> None:
    error = rejection_of(raw(envelope("lead.stage_changed", {}, version)))

    assert error.rejection.reason is RejectReason.UNKNOWN_VERSION
    assert error.rejection.errors[0].loc == "schemaversion"
    assert "1, 2" in error.rejection.errors[0].msg


def test_a_schema_violation_names_the_field_path() -> None:
    error = rejection_of(raw(envelope("lead.assigned", {"team": "sales"})))

    assert error.rejection.reason is RejectReason.SCHEMA_VIOLATION
    assert [e.loc for e in error.rejection.errors] == ["data.owner_id"]


def test_an_unexpected_data_field_is_a_schema_violation() -> None:
    error = rejection_of(raw(envelope("lead.created", {"stage": "lead", "vip": True})))

    assert error.rejection.reason is RejectReason.SCHEMA_VIOLATION
    assert [e.loc for e in error.rejection.errors] == ["data.vip"]


@pytest.mark.parametrize("data", [None, [], "lead"])
def test_data_that_is_not_an_object_is_a_schema_violation(data: object) -> None:
    error = rejection_of(raw(envelope("lead.created", data)))

    assert error.rejection.reason is RejectReason.SCHEMA_VIOLATION
    assert error.rejection.errors[0].loc == "data"


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"subject": ""}, "subject"),
        ({"time": "2025-01-06T09:00:00"}, "time"),
        ({"specversion": "0.3"}, "specversion"),
        ({"schemaversion": 0}, "schemaversion"),
    ],
)
def test_an_invalid_envelope_names_the_field(overrides: dict[str, Any], loc: str) -> None:
    error = rejection_of(raw(envelope("lead.created", {}, **overrides)))

    assert error.rejection.reason is RejectReason.INVALID_ENVELOPE
    assert loc in [e.loc for e in error.rejection.errors]


def test_a_missing_envelope_field_is_rejected() -> None:
    obj = envelope("lead.created", {})
    del obj["id"]

    error = rejection_of(raw(obj))

    assert error.rejection.reason is RejectReason.INVALID_ENVELOPE
    assert [e.loc for e in error.rejection.errors] == ["id"]


def test_an_oversized_payload_is_rejected_before_parsing() -> None:
    payload = raw(envelope("lead.created", {"company": "x" * 200}))

    error = rejection_of(payload, max_bytes=len(payload) - 1)

    assert error.rejection.reason is RejectReason.OVERSIZED
    assert decode(payload, max_bytes=len(payload)).type == "lead.created"


def test_the_rejection_renders_as_a_json_ready_dict() -> None:
    error = rejection_of(raw(envelope("lead.assigned", {"team": "sales"})))

    body = error.rejection.as_dict()

    assert body["reason"] == "schema_violation"
    assert body["errors"] == [{"loc": "data.owner_id", "msg": "Field required"}]
    assert str(error).startswith("schema_violation: ")


def test_an_event_built_in_another_zone_is_stored_and_encoded_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    event = make_event(
        LeadCreated(), id="e", subject=LEAD, source="s", time=at(0).astimezone(paris)
    )

    assert event.time.tzinfo == UTC
    assert orjson.loads(encode(event))["time"] == "2025-01-06T09:00:00Z"
