"""Pure ASGI middleware: request metrics and the request body size limit.

Pure ASGI rather than ``BaseHTTPMiddleware``: it neither buffers bodies nor runs the app in
another task, and it sees the route the router matched in the shared ``scope``.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.metrics import HTTP_DURATION, HTTP_REQUESTS

#: Route label for requests no route matched: raw paths would make the label set unbounded.
UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/leads/{lead_id}``), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts requests by route template, method and status, and times them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route, method = route_template(scope), str(scope["method"])
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)).inc()
            HTTP_DURATION.labels(route=route, method=method).observe(time.perf_counter() - started)


class BodyTooLarge(Exception):
    """The request body exceeds the limit; the app answers 413."""

    def __init__(self, limit: int, size: int, *, declared: bool) -> None:
        how = "declares" if declared else "is at least"
        super().__init__(f"the request body {how} {size} bytes; the limit is {limit}")
        self.limit = limit
        self.size = size


class BodySizeLimitMiddleware:
    """Raises BodyTooLarge from ``receive`` once a body is known to exceed ``max_bytes``.

    Checks ``Content-Length`` before the first byte is read and counts the bytes actually
    received, so a chunked body (or a lying header) cannot get past it. The check happens
    when the app first reads the body, after authentication: unauthenticated callers get
    401 without the server reading anything, and the route is known for the metrics.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                raise BodyTooLarge(limit, declared, declared=True)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, received, declared=False)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # servers reject these; the byte count still applies
    return None
