"""The one-call accepted path of the codec against the step-by-step path it short-cuts:
equal events when both accept, and no acceptance where the step-by-step path rejects."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from events.codec import _decode_checked, _fast_decode, to_obj
from events.errors import RejectedInput
from events.registry import DEFAULT_REGISTRY

from .factories import one_of_each
from .test_codec import envelope

STAGE = {"from_stage": "lead", "to_stage": "mql"}

ACCEPTED: list[dict[str, Any]] = [
    *(orjson.loads(orjson.dumps(to_obj(e))) for e in one_of_each()),
    envelope("lead.stage_changed", {"from": "lead", "to": "mql"}, version=1),
    envelope("lead.created", {"stage": "lead"}, version=1),
    envelope("lead.stage_changed", STAGE, version=2, time="2025-01-06T11:00:00.5+02:00"),
    envelope("lead.stage_changed", STAGE, version=2, id="  padded  ", dataschema="urn:x"),
    envelope("lead.stage_changed", {"from_stage": " lead ", "to_stage": "mql"}, version=2),
]

REJECTED: list[dict[str, Any]] = [
    envelope("lead.stage_changed", STAGE, version=2, time="2025-01-06T09:00:00"),
    envelope("lead.stage_changed", STAGE, version=2, id=""),
    envelope("lead.stage_changed", STAGE, version=2, extra="x"),
    envelope("lead.stage_changed", STAGE, version=3),
    envelope("lead.stage_changed", STAGE, version=0),
    envelope("lead.stage_changed", {"from_stage": "lead"}, version=2),
    envelope("lead.stage_changed", {**STAGE, "surprise": 1}, version=2),
    envelope("lead.nope", STAGE, version=2),
    envelope("lead.stage_changed", [STAGE], version=2),
    envelope("lead.stage_changed", STAGE, version=2, specversion="0.3"),
]


@pytest.mark.parametrize("obj", ACCEPTED)
def test_the_fast_path_decodes_exactly_what_the_checked_path_decodes(obj: dict[str, Any]) -> None:
    checked = _decode_checked(dict(obj), obj["data"], DEFAULT_REGISTRY)
    fast = _fast_decode(dict(obj), obj["data"], DEFAULT_REGISTRY)
    assert fast == checked
    assert fast is not None
    assert list(fast.__dict__) == list(checked.__dict__)
    assert fast.model_fields_set == checked.model_fields_set
    assert type(fast.data) is type(checked.data)


@pytest.mark.parametrize("obj", REJECTED)
def test_the_fast_path_declines_what_the_checked_path_rejects(obj: dict[str, Any]) -> None:
    with pytest.raises(RejectedInput):
        _decode_checked(dict(obj), obj["data"], DEFAULT_REGISTRY)
    assert _fast_decode(dict(obj), obj["data"], DEFAULT_REGISTRY) is None


def test_a_string_version_is_left_to_the_checked_path() -> None:
    obj = envelope("lead.stage_changed", STAGE, version=2, schemaversion="2")
    assert _fast_decode(obj, obj["data"], DEFAULT_REGISTRY) is None
