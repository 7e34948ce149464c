"""orjson codec: bytes <-> Event, turning every way an input can be wrong into a Rejection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, cast, get_args, get_origin

import orjson
from pydantic import BaseModel, Field, Json, TypeAdapter, ValidationError, create_model

from events.catalog import EventData
from events.envelope import EnvelopeHeader, Event, dataschema_uri, to_utc
from events.errors import FieldError, RejectedInput, Rejection, RejectReason
from events.fields_set import EVENT_FIELDS, shared
from events.registry import DEFAULT_REGISTRY, Registry, UnknownType, UnknownVersion

_set = object.__setattr__

#: Lead events are small; anything this large is a bug or an attack upstream.
DEFAULT_MAX_BYTES = 64 * 1024


def _field_errors(exc: ValidationError, prefix: str = "") -> tuple[FieldError, ...]:
    return tuple(
        FieldError(loc=prefix + ".".join(str(p) for p in err["loc"]) or "(root)", msg=err["msg"])
        for err in exc.errors(include_url=False)
    )


def _reject(
    reason: RejectReason, detail: str, errors: tuple[FieldError, ...] = ()
) -> RejectedInput:
    return RejectedInput(Rejection(reason, detail, errors))


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides: PostgreSQL text and jsonb cannot hold one."""
    if isinstance(value, str):
        return path or "(root)" if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _nul_path(k, path) or _nul_path(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_path(v, f"{path}.{i}")
            if found:
                return found
    return None


def decode_obj(
    obj: Any, registry: Registry = DEFAULT_REGISTRY, *, may_hold_nul: bool = True
) -> Event:
    """Validate an already-parsed JSON value as an event (the HTTP API parses batches once).

    ``may_hold_nul=False`` skips the walk for NUL characters: only for values parsed from
    bytes known not to contain the escape ``\\u0000`` (the one way JSON can carry a NUL).
    """
    if not isinstance(obj, dict):
        raise _reject(RejectReason.INVALID_ENVELOPE, "an event must be a JSON object")
    nul = _nul_path(obj) if may_hold_nul else None
    if nul is not None:
        raise _reject(
            RejectReason.SCHEMA_VIOLATION,
            "strings must not contain NUL (\\u0000) characters",
            (FieldError(nul, "contains a NUL character"),),
        )
    raw_data = obj.get("data")
    fast = _fast_decode(obj, raw_data, registry)
    if fast is not None:
        return fast
    return _decode_checked(obj, raw_data, registry)


def _decode_checked(obj: dict[str, Any], raw_data: Any, registry: Registry) -> Event:
    """Header, then type and version, then data: each failure names its own reason."""
    header_fields = {k: v for k, v in obj.items() if k != "data"}
    try:
        header = EnvelopeHeader.model_validate(header_fields)
    except ValidationError as exc:
        raise _reject(
            RejectReason.INVALID_ENVELOPE, "the envelope is not valid", _field_errors(exc)
        ) from None
    try:
        model = registry.model(header.type)
        upcast = registry.upcast(header.type, header.schemaversion, _as_dict(raw_data))
    except UnknownType:
        raise _reject(
            RejectReason.UNKNOWN_TYPE,
            f"unknown event type {header.type!r}",
            (FieldError("type", f"must be one of {', '.join(registry.types)}"),),
        ) from None
    except UnknownVersion:
        known = ", ".join(str(v) for v in registry.versions(header.type))
        raise _reject(
            RejectReason.UNKNOWN_VERSION,
            f"{header.type} has no schema version {header.schemaversion}",
            (FieldError("schemaversion", f"readable versions: {known}"),),
        ) from None
    except _NotAnObject:
        raise _reject(
            RejectReason.SCHEMA_VIOLATION,
            "data must be a JSON object",
            (FieldError("data", "must be an object"),),
        ) from None
    try:
        data = model.model_validate(upcast)
    except ValidationError as exc:
        raise _reject(
            RejectReason.SCHEMA_VIOLATION,
            f"data does not match {header.type} v{model.VERSION}",
            _field_errors(exc, "data."),
        ) from None
    _set(data, "__pydantic_fields_set__", shared(data.__pydantic_fields_set__))
    # Fields are already validated; construct skips a second, slower validation pass.
    fields = dict(header.__dict__)
    fields.update(
        schemaversion=model.VERSION,
        dataschema=dataschema_uri(model.TYPE, model.VERSION),
        data=data,
    )
    return _construct(fields)


#: Per registry, per readable (type, version): the envelope with ``data`` typed as the
#: type's model (so the accepted path validates header and payload in one pydantic call),
#: whether an upcast is needed, and the dataschema URI. Only readable pairs are cached, so
#: the table stays as small as the catalog whatever the input.
_FAST: dict[Registry, dict[tuple[str, int], tuple[type[BaseModel], bool, tuple[int, str]]]] = {}


def _fast_decode(obj: dict[str, Any], raw_data: Any, registry: Registry) -> Event | None:
    """The event when ``obj`` is a valid event of an exactly named type and an int version;
    None for anything else, and then the step-by-step path below runs and names what is
    wrong. Validating ``obj`` with its data as one model accepts exactly what header then
    data would: the same fields, constraints and validators, and the same upcast first."""
    type_, version = obj.get("type"), obj.get("schemaversion")
    if type(type_) is not str or type(version) is not int or type(raw_data) is not dict:
        return None
    per_registry = _FAST.get(registry)
    if per_registry is None:
        per_registry = _FAST.setdefault(registry, {})
    entry = per_registry.get((type_, version))
    if entry is None:
        if not _readable(registry, type_, version):
            return None
        entry = per_registry[(type_, version)] = _new_entry(registry, type_, version)
    envelope, needs_upcast, finish = entry
    if needs_upcast:
        try:
            obj = {**obj, "data": registry.upcast(type_, version, raw_data)}
        except UnknownVersion:  # a gap in the upcaster chain: the checked path says so
            return None
    try:
        validated = envelope.__pydantic_validator__.validate_python(obj)
    except ValidationError:
        return None
    return _as_event(validated, finish)


def _as_event(validated: BaseModel, finish: tuple[int, str]) -> Event:
    """The event an accepted envelope stands for, made of the envelope itself: nothing else
    holds it, and it has the event's fields in the event's order. ``time`` gets the UTC
    normalisation of ``EnvelopeHeader._to_utc`` here, because the envelopes leave that
    Python validator out (called from pydantic-core it cost ~1 µs of ~3.4 per envelope).
    ``finish``: the current version and dataschema URI of the envelope's type."""
    fields = validated.__dict__
    fields["time"] = to_utc(fields["time"])
    fields["schemaversion"], fields["dataschema"] = finish
    # All fields set, as ``_construct`` gives every event, so both paths yield
    # indistinguishable events: one set serves them all, and the payload shares its set
    # with its equals, instead of keeping pydantic-core's fresh ones (``events.fields_set``).
    _set(validated, "__pydantic_fields_set__", EVENT_FIELDS)
    data = fields["data"]
    _set(data, "__pydantic_fields_set__", shared(data.__pydantic_fields_set__))
    # The two classes share the layout of a pydantic model.
    object.__setattr__(validated, "__class__", Event)
    return cast(Event, validated)


def _readable(registry: Registry, type_: str, version: int) -> bool:
    try:
        return version in registry.versions(type_)
    except UnknownType:
        return False


def _new_entry(
    registry: Registry, type_: str, version: int
) -> tuple[type[BaseModel], bool, tuple[int, str]]:
    model = registry.model(type_)
    envelope = _envelope(f"{model.__name__}Envelope", model)
    return (
        envelope,
        version != model.VERSION,
        (model.VERSION, dataschema_uri(model.TYPE, model.VERSION)),
    )


def _envelope(name: str, data: type[EventData], **pinned: Any) -> type[BaseModel]:
    """A model of ``EnvelopeHeader``'s fields (constraints, config, order) with ``data`` typed
    as one payload model, but without the ``time`` validator (``_as_event`` applies it).
    ``pinned`` gives some fields a narrower annotation (a Literal type and versions)."""
    header = EnvelopeHeader.__pydantic_decorators__
    if set(header.field_validators) != {"_to_utc"} or header.model_validators:
        # Copying fields copies no validators: a new one must be applied here as well.
        raise TypeError("EnvelopeHeader gained a validator the codec's envelopes lack")
    fields: dict[str, Any] = {
        field: (pinned[field], ...) if field in pinned else (info.annotation, info)
        for field, info in EnvelopeHeader.model_fields.items()
    }
    fields["data"] = (data, ...)
    model: type[BaseModel] = create_model(name, __config__=EnvelopeHeader.model_config, **fields)
    return model


#: Per registry: pydantic-core validators that parse and validate encoded bytes in one call
#: (no orjson.loads, no intermediate dicts), one value or a list of them, with the current
#: version and dataschema per envelope class they return; None when no type qualifies.
@dataclass(frozen=True, slots=True)
class _BytesRoute:
    one: Callable[[bytes], BaseModel]
    many: Callable[[list[bytes]], list[BaseModel]]
    finish: dict[type, tuple[int, str]]


_BYTES: dict[Registry, _BytesRoute | None] = {}


def _bytes_route(registry: Registry) -> _BytesRoute | None:
    """A tagged union over ``type`` of one envelope per payload type, its ``type`` and
    ``schemaversion`` pinned as Literals to exactly the names and versions the step-by-step
    path reads without rewriting the data. Whatever it accepts, header-then-data validation
    accepts as the same event; whatever it refuses goes the orjson route, which names why."""
    members: list[type[BaseModel]] = []
    finish: dict[type, tuple[int, str]] = {}
    for type_ in registry.types:
        model = registry.model(type_)
        versions = tuple(v for v in registry.verbatim_versions(type_) if _reads_back(type_, v))
        if not versions or not _strings_only(model):
            continue
        envelope = _envelope(
            f"{model.__name__}Bytes",
            model,
            type=cast(Any, Literal)[type_],
            schemaversion=cast(Any, Literal)[versions],
        )
        members.append(envelope)
        finish[envelope] = (model.VERSION, dataschema_uri(model.TYPE, model.VERSION))
    if not members:
        route = None
    else:
        union: Any = (
            members[0]
            if len(members) == 1
            else Annotated[cast(Any, Union)[tuple(members)], Field(discriminator="type")]
        )
        # ``Json[...]`` items: pydantic-core parses each value on its own, so one record's
        # bytes can never run into the next one's (as joining them into one array could).
        many = TypeAdapter(list[Json[union]]).validator.validate_python
        route = _BytesRoute(TypeAdapter(union).validator.validate_json, many, finish)
    _BYTES[registry] = route
    return route


def _reads_back(type_: str, version: int) -> bool:
    """Whether the envelope reads this type name and version back unchanged (length limits,
    stripped whitespace, version range): only then may Literals stand in for the fields."""
    probe = {"id": "i", "source": "s", "subject": "l", "time": "2000-01-01T00:00:00Z"}
    try:
        header = EnvelopeHeader.model_validate({**probe, "type": type_, "schemaversion": version})
    except ValidationError:
        return False
    return header.type == type_ and header.schemaversion == version


def _strings_only(model: type[EventData]) -> bool:
    """Whether every payload field holds a string or None. JSON numbers would be read by
    pydantic-core's parser on the bytes route but by orjson (as floats) on the other, so a
    model with numbers (the Decimal amounts) keeps the orjson route and its exact results."""
    for info in model.model_fields.values():
        annotation, args = info.annotation, get_args(info.annotation)
        if annotation is str:
            continue
        if get_origin(annotation) is Literal and all(type(a) is str for a in args):
            continue
        if get_origin(annotation) in (Union, UnionType) and set(args) == {str, NoneType}:
            continue
        return False
    return True


def _construct(fields: dict[str, Any]) -> Event:
    # What ``Event.model_construct(**fields)`` does when every field is given (header and
    # data, in field order), without its per-field default lookups: a hot path of the
    # processor, once per record.
    event = Event.__new__(Event)
    object.__setattr__(event, "__dict__", fields)
    object.__setattr__(event, "__pydantic_fields_set__", shared(fields.keys()))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


class _NotAnObject(TypeError):
    pass


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _NotAnObject
    return value


def decode(
    raw: bytes, registry: Registry = DEFAULT_REGISTRY, max_bytes: int = DEFAULT_MAX_BYTES
) -> Event:
    """Parse and validate one encoded event; raises RejectedInput with a bounded reason."""
    if len(raw) > max_bytes:
        raise _reject(
            RejectReason.OVERSIZED, f"event is {len(raw)} bytes; the limit is {max_bytes}"
        )
    # Bytes without a \u escape hold no NUL and no lone surrogate (orjson rejects those,
    # pydantic-core's parser need not): pydantic-core can then parse and validate them in one
    # call. Anything it refuses takes the orjson route below and gets its exact rejection.
    if b"\\u" not in raw:
        route = _BYTES[registry] if registry in _BYTES else _bytes_route(registry)
        if route is not None:
            try:
                validated = route.one(raw)
            except ValidationError:
                pass
            else:
                return _as_event(validated, route.finish[type(validated)])
    return _decode_parsed(raw, registry)


def decode_many(
    values: Sequence[bytes],
    registry: Registry = DEFAULT_REGISTRY,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Event | Rejection]:
    """``decode`` of each value, in order: the event, or the rejection ``decode`` raises.

    The values the bytes route may take are validated in one pydantic-core call per chunk of
    ``_CHUNK``, which costs less per event than one call each. When some fail, the others
    are validated again in one call, and each failed one goes through ``decode``, which
    names exactly what is wrong. Each value's outcome depends on that value alone."""
    route = _BYTES[registry] if registry in _BYTES else _bytes_route(registry)
    if route is None or not values:
        return [_outcome(raw, registry, max_bytes) for raw in values]
    # The usual batch, checked at C speed: no value too large, no \u escape in any (joining
    # can only make an escape appear across two values, which merely takes the slow path).
    clean = max(map(len, values)) <= max_bytes and b"\\u" not in b"".join(values)
    if len(values) <= _CHUNK:
        return _decode_chunk(values, route, registry, max_bytes, clean)
    out: list[Event | Rejection] = []
    for start in range(0, len(values), _CHUNK):
        out += _decode_chunk(values[start : start + _CHUNK], route, registry, max_bytes, clean)
    return out


#: Values per pydantic-core call. Each chunk's envelopes are turned into events while they
#: are still in the CPU cache: with 2,000 per call ``_as_event`` cost ~2.3 µs per event
#: (mostly cache misses on envelopes built long before), with 128 ~0.5 µs, and the call
#: itself costs no more per event (bench.decode_cpu, 2026-12-02).
_CHUNK = 128


def _decode_chunk(
    values: Sequence[bytes], route: _BytesRoute, registry: Registry, max_bytes: int, clean: bool
) -> list[Event | Rejection]:
    """``decode_many`` of a few values; ``clean``: none is too large or holds a \\u escape."""
    batch: Sequence[int]
    if clean:
        batch, items = range(len(values)), values
    else:
        batch = [i for i, raw in enumerate(values) if len(raw) <= max_bytes and b"\\u" not in raw]
        items = [values[i] for i in batch]
    try:
        validated = route.many(list(items))
    except ValidationError as exc:
        failed = {err["loc"][0] for err in exc.errors(include_url=False)}
        batch = [i for n, i in enumerate(batch) if n not in failed]
        try:
            validated = route.many([values[i] for i in batch])
        except ValidationError:  # not expected: then every value goes one by one
            batch, validated = [], []
    finish = route.finish
    events: list[Event | Rejection] = [
        _as_event(envelope, finish[type(envelope)]) for envelope in validated
    ]
    if len(events) == len(values):
        return events
    out: list[Event | Rejection | None] = [None] * len(values)
    for i, event in zip(batch, events, strict=True):
        out[i] = event
    return [
        _outcome(values[i], registry, max_bytes) if item is None else item
        for i, item in enumerate(out)
    ]


def _outcome(raw: bytes, registry: Registry, max_bytes: int) -> Event | Rejection:
    """What ``decode`` makes of ``raw``, the rejection returned instead of raised."""
    try:
        return decode(raw, registry, max_bytes)
    except RejectedInput as exc:
        return exc.rejection


def _decode_parsed(raw: bytes, registry: Registry) -> Event:
    """The orjson route: parse, then validate the parsed value (naming what is wrong)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _reject(RejectReason.MALFORMED_JSON, f"not valid JSON: {exc}") from None
    # A NUL can only arrive escaped; without the escape there is nothing to look for.
    return decode_obj(obj, registry, may_hold_nul=b"\\u0000" in raw)


def to_obj(event: Event) -> dict[str, Any]:
    """The JSON-ready dict of an event (Decimals as strings, times in RFC 3339 UTC)."""
    # ``event.model_dump(mode="json", exclude_none=True)`` without its Python wrapper around
    # the same serializer call (~0.5 µs of ~2 per event; the archive dumps every event).
    obj: dict[str, Any] = _SERIALIZER.to_python(event, mode="json", exclude_none=True)
    return obj


def to_json(event: Event) -> bytes:
    """``to_obj`` as JSON bytes in one pydantic-core call (keys in field order, unlike
    ``encode``): for stores whose column parses the JSON anyway, such as jsonb."""
    return _SERIALIZER.to_json(event, exclude_none=True)


_SERIALIZER = Event.__pydantic_serializer__


def encode(event: Event) -> bytes:
    """Canonical bytes: the same event always encodes to the same bytes."""
    return orjson.dumps(to_obj(event), option=orjson.OPT_SORT_KEYS)
