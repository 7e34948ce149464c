"""POST /v1/events: authenticate, validate every event, publish all of them or none.

The body is read and parsed here (once, with orjson) rather than by FastAPI, so that every
problem gets the codec's stable reason codes and the body size limit sees the raw bytes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from events.codec import decode_obj
from events.envelope import Event
from events.errors import FieldError, RejectedInput, Rejection, RejectReason
from events.funnel import Funnel
from events.validation import check_against_funnel
from services.api.auth import publishing_source
from services.api.models import (
    Accepted,
    AuthErrorBody,
    CloudEventIn,
    ErrorBody,
    ForbiddenBody,
    ForbiddenEvent,
    RejectedEvent,
    json_response,
)
from services.api.ports import context_of
from services.metrics import EVENTS_REJECTED

logger = logging.getLogger(__name__)

EVENTS_PATH = "/v1/events"
SINGLE_TYPE = "application/cloudevents+json"
BATCH_TYPE = "application/cloudevents-batch+json"
#: The body's JSON shape (object or array) decides single vs batch for every one of these.
ACCEPTED_CONTENT_TYPES = ("application/json", SINGLE_TYPE, BATCH_TYPE)

router = APIRouter(tags=["ingest"])


def count_rejected(rejected: list[RejectedEvent]) -> None:
    """Every rejected input is counted: nothing is dropped silently (DESIGN.md section 5)."""
    for item in rejected:
        EVENTS_REJECTED.labels(reason=item.reason.value, component="api").inc()


def reject_request(status: int, reason: RejectReason, detail: str, count: int = 1) -> Response:
    """A whole-request rejection (malformed or oversized), counted ``count`` times."""
    item = RejectedEvent(index=None, id=None, reason=reason, detail=detail)
    EVENTS_REJECTED.labels(reason=reason.value, component="api").inc(count)
    return json_response(status, ErrorBody(error=detail, rejected=[item]))


@router.post(
    EVENTS_PATH,
    status_code=202,
    response_model=Accepted,
    summary="Publish one lead event or a batch of them",
    description=(
        "All or nothing: when any event is rejected, none is published. A 202 means the "
        "broker has stored every event. Retrying is safe: the processor applies an event "
        "`id` once and dead-letters repeats as `duplicate`."
    ),
    responses={
        202: {"description": "every event is stored on the event log"},
        400: {"model": ErrorBody, "description": "the body is not valid JSON"},
        401: {"model": AuthErrorBody, "description": "missing or unknown bearer token"},
        403: {"model": ForbiddenBody, "description": "an event's source is not the token's"},
        413: {"model": ErrorBody, "description": "body or batch larger than the limits"},
        415: {"model": ErrorBody, "description": "unsupported Content-Type"},
        422: {"model": ErrorBody, "description": "one or more events were rejected"},
        503: {"model": ErrorBody, "description": "the broker did not confirm; retry"},
    },
)
async def post_events(
    request: Request, source: Annotated[str, Depends(publishing_source)]
) -> Response:
    """Validate and publish the events of the request body."""
    ctx = context_of(request)
    content_type = request.headers.get("content-type", "application/json")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        error = f"Content-Type must be one of {', '.join(ACCEPTED_CONTENT_TYPES)}"
        return json_response(415, ErrorBody(error=error))

    body = await request.body()  # BodySizeLimitMiddleware raises BodyTooLarge -> 413
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return reject_request(400, RejectReason.MALFORMED_JSON, f"not valid JSON: {exc}")
    items: list[Any] = parsed if isinstance(parsed, list) else [parsed]
    limit = ctx.settings.max_batch_events
    if len(items) > limit:
        detail = f"the batch has {len(items)} events; the limit is {limit}"
        return reject_request(413, RejectReason.OVERSIZED, detail, count=len(items))

    forbidden = forbidden_sources(items, source)
    if forbidden:
        error = (
            f"this token may only publish events with source {source!r}; "
            f"see index {forbidden[0].index}"
        )
        return json_response(
            403, ForbiddenBody(error=error, allowed_source=source, forbidden=forbidden)
        )

    events, rejected = validate_batch(
        items,
        ctx.funnel,
        now=ctx.clock(),
        max_future_skew=timedelta(seconds=ctx.settings.max_future_skew_seconds),
    )
    if rejected:
        count_rejected(rejected)
        error = f"{len(rejected)} of {len(items)} events rejected; nothing was published"
        return json_response(422, ErrorBody(error=error, rejected=rejected))

    if events:
        try:
            await ctx.publisher.publish(events)
        except Exception:
            logger.exception("publishing %d events failed", len(events))
            error = (
                "the broker did not confirm the events; some may be stored. Retry the same "
                "request: event ids make retries safe"
            )
            return json_response(503, ErrorBody(error=error), headers={"Retry-After": "5"})
    return json_response(202, Accepted(accepted=len(events), ids=[e.id for e in events]))


def _raw_str(item: Any, field: str) -> str | None:
    value = item.get(field) if isinstance(item, dict) else None
    # The envelope strips whitespace, so compare what the event will actually carry.
    return value.strip() if isinstance(value, str) else None


def forbidden_sources(items: list[Any], allowed: str) -> list[ForbiddenEvent]:
    """Events whose ``source`` is present but not ``allowed``.

    Checked on the raw JSON before validation: a token must not learn how another source's
    events would validate, and a 403 is the more useful answer than a schema error.
    """
    forbidden: list[ForbiddenEvent] = []
    for index, item in enumerate(items):
        source = _raw_str(item, "source")
        if source is not None and source != allowed:
            forbidden.append(ForbiddenEvent(index=index, id=_raw_str(item, "id"), source=source))
    return forbidden


def _future(event: Event, now: datetime, max_skew: timedelta) -> Rejection | None:
    ahead = event.time - now
    if ahead <= max_skew:
        return None
    return Rejection(
        RejectReason.FUTURE_EVENT,
        f"the event time is {ahead.total_seconds():.0f} s ahead of the server clock",
        (FieldError("time", f"may be at most {max_skew.total_seconds():g} s in the future"),),
    )


def validate_batch(
    items: list[Any],
    funnel: Funnel,
    *,
    now: datetime,
    max_future_skew: timedelta,
) -> tuple[list[Event], list[RejectedEvent]]:
    """Decode and check every item; returns the valid events and the rejections.

    Duplicates are ids seen earlier in the same batch (the source is the token's, so the id
    alone is the CloudEvents identity here); across requests, consumers deduplicate.
    """
    events: list[Event] = []
    rejected: list[RejectedEvent] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(items):
        try:
            event = decode_obj(item)
        except RejectedInput as exc:
            rejected.append(RejectedEvent.of(exc.rejection, index, _raw_str(item, "id")))
            continue
        rejection = check_against_funnel(event, funnel) or _future(event, now, max_future_skew)
        if rejection is None and event.id in first_index:
            rejection = Rejection(
                RejectReason.DUPLICATE,
                f"id {event.id!r} already appears at index {first_index[event.id]}",
                (FieldError("id", "must be unique within the batch"),),
            )
        if rejection is not None:
            rejected.append(RejectedEvent.of(rejection, index, event.id))
            continue
        first_index[event.id] = index
        events.append(event)
    return events, rejected


def document_request_body(openapi: dict[str, Any], max_batch_events: int) -> None:
    """Describe the hand-parsed request body in the OpenAPI document (FastAPI cannot)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    schemas["CloudEvent"] = CloudEventIn.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    ref = {"$ref": "#/components/schemas/CloudEvent"}
    batch = {"type": "array", "items": ref, "maxItems": max_batch_events}
    either = {"oneOf": [ref, batch]}
    openapi["paths"][EVENTS_PATH]["post"]["requestBody"] = {
        "required": True,
        "description": (
            "One CloudEvents 1.0 JSON object, or a JSON array of at most "
            f"{max_batch_events} of them (all or nothing). `data` depends on `type` and "
            "`schemaversion`: `leadledger schema export DIR` writes one JSON Schema per "
            "event type and version, whose `$id` is the event's `dataschema`."
        ),
        "content": {
            "application/json": {"schema": either},
            SINGLE_TYPE: {"schema": either},
            BATCH_TYPE: {"schema": batch},
        },
    }
