"""The FastAPI application factory: routes, error handlers, middleware and OpenAPI.

The caller owns the adapters' lifecycles (start the publisher before serving, stop it
after); the app only uses them, which keeps it trivial to test with in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException

from events.errors import RejectReason
from events.funnel import Funnel
from services.api import attribution, audit, feedback, funnel_flow, ingest, leads, sla
from services.api.auth import Unauthorized
from services.api.middleware import BodySizeLimitMiddleware, BodyTooLarge, MetricsMiddleware
from services.api.models import ErrorBody, FieldErrorOut, Health, RejectedEvent, json_response
from services.api.ports import (
    ApiContext,
    AttributionReader,
    AuditReader,
    LeadReader,
    Publisher,
    SlaReader,
)
from services.settings import Settings

DESCRIPTION = """\
Ingest lead events (CloudEvents 1.0, JSON) onto the leadledger event log, and read the lead
views derived from it.

* **Publishing** (`POST /v1/events`) needs `Authorization: Bearer <token>`; each token may
  publish for exactly one CloudEvents `source`.
* **Reading** (`GET /v1/leads/{lead_id}`, `GET /v1/leads/{lead_id}/timeline`,
  `GET /v1/attribution`, `GET /v1/sla/open`, `GET /v1/sla/summary`) needs no token for now.
* Every error body is JSON with an `error` summary; rejected events carry a stable `reason`.
"""

ops_router = APIRouter(tags=["operations"])


@ops_router.get("/healthz", response_model=Health, summary="Liveness probe")
async def healthz() -> Health:
    """200 while the process serves HTTP; it does not probe Kafka or PostgreSQL."""
    return Health()


@ops_router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics() -> Response:
    """Every metric of the default registry, for Prometheus to scrape."""
    return Response(content=generate_latest(), media_type=CONTENT_TYPE_LATEST)


def utc_now() -> datetime:
    """The default clock; tests pass a fixed one instead."""
    return datetime.now(UTC)


def package_version() -> str:
    """The installed leadledger version (the OpenAPI ``info.version``)."""
    try:
        return version("leadledger")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def create_app(
    settings: Settings,
    publisher: Publisher,
    reader: LeadReader,
    funnel: Funnel,
    clock: Callable[[], datetime] = utc_now,
    sla_reader: SlaReader | None = None,
    attribution_reader: AttributionReader | None = None,
    audit_reader: AuditReader | None = None,
) -> FastAPI:
    """Build the HTTP API around the given adapters."""
    app = _LeadledgerAPI(title="leadledger", version=package_version(), description=DESCRIPTION)
    app.max_batch_events = settings.max_batch_events
    app.state.context = ApiContext(
        settings, publisher, reader, funnel, clock, sla_reader, attribution_reader, audit_reader
    )
    app.include_router(ingest.router)
    app.include_router(leads.router)
    app.include_router(audit.router)
    app.include_router(attribution.router)
    app.include_router(sla.router)
    app.include_router(funnel_flow.router)
    app.include_router(feedback.router)
    app.include_router(ops_router)
    _add_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Added last = outermost: it times everything and sees 500s as well as handled errors.
    app.add_middleware(MetricsMiddleware)
    return app


class _LeadledgerAPI(FastAPI):
    """FastAPI plus the request body of POST /v1/events, which it parses by hand."""

    max_batch_events: int = 1000

    def openapi(self) -> dict[str, Any]:
        spec = super().openapi()
        # Idempotent, and re-applied whenever FastAPI regenerates the cached document.
        ingest.document_request_body(spec, self.max_batch_events)
        return spec


def _add_error_handlers(app: FastAPI) -> None:
    """Every error body is JSON, in the shapes of services.api.models."""

    @app.exception_handler(Unauthorized)
    async def unauthorized(request: Request, exc: Unauthorized) -> Response:
        return json_response(401, exc.body, headers={"WWW-Authenticate": exc.www_authenticate})

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        # Counted once: the events in an unread body cannot be counted.
        return ingest.reject_request(413, RejectReason.OVERSIZED, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            FieldErrorOut(loc=".".join(str(p) for p in err["loc"]), msg=str(err["msg"]))
            for err in exc.errors()
        ]
        detail = "the request does not match this endpoint's parameters"
        rejected = RejectedEvent(
            index=None, id=None, reason=RejectReason.SCHEMA_VIOLATION, detail=detail, errors=errors
        )
        body = ErrorBody(error="the request is not valid", rejected=[rejected])
        return json_response(422, body)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return json_response(exc.status_code, ErrorBody(error=str(exc.detail)), exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        # Starlette logs and re-raises after this response; the body must still be JSON.
        return json_response(500, ErrorBody(error="internal server error"))
