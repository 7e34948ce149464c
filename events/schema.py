"""JSON Schema documents for upstream teams: one per event type and current version."""

from __future__ import annotations

from typing import Any

from events.envelope import EnvelopeHeader, dataschema_uri
from events.registry import DEFAULT_REGISTRY, Registry


def event_schema(type_: str, registry: Registry = DEFAULT_REGISTRY) -> dict[str, Any]:
    """The envelope schema with ``type``, ``schemaversion`` and ``data`` pinned to one model."""
    model = registry.model(type_)
    envelope = EnvelopeHeader.model_json_schema()
    data = model.model_json_schema()
    props: dict[str, Any] = dict(envelope["properties"])
    props["type"] = {"const": model.TYPE, "type": "string"}
    props["schemaversion"] = {"const": model.VERSION, "type": "integer"}
    props["data"] = {"$ref": "#/$defs/data"}
    defs: dict[str, Any] = {**data.pop("$defs", {}), "data": data}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": dataschema_uri(model.TYPE, model.VERSION),
        "title": f"{model.TYPE} v{model.VERSION}",
        "description": (model.__doc__ or "").strip(),
        "type": "object",
        "properties": props,
        "required": [*envelope.get("required", []), "data"],
        "additionalProperties": False,
        "$defs": defs,
    }


def all_schemas(registry: Registry = DEFAULT_REGISTRY) -> dict[str, dict[str, Any]]:
    """File name -> schema, e.g. ``lead.stage_changed.v2.json``."""
    out: dict[str, dict[str, Any]] = {}
    for type_ in registry.types:
        version = registry.model(type_).VERSION
        out[f"{type_}.v{version}.json"] = event_schema(type_, registry)
    return out
