"""Bearer-token authentication for publishing: each token may publish for one source.

``settings.api_tokens`` maps token -> CloudEvents ``source``. Reading leads needs no token
for now; a separate read token can be added here later without touching the routes' logic.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.models import AuthErrorBody
from services.api.ports import context_of

#: Documents the scheme in OpenAPI; errors are ours (auto_error would answer its own shape).
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="A token from LEADLEDGER_API_TOKENS; it may publish for one source only.",
)

AuthReason = Literal["missing_token", "invalid_authorization", "unknown_token"]


class Unauthorized(Exception):
    """No usable token: turned into a 401 with ``WWW-Authenticate: Bearer``."""

    def __init__(self, reason: AuthReason, message: str) -> None:
        super().__init__(message)
        self.body = AuthErrorBody(error=message, reason=reason)

    @property
    def www_authenticate(self) -> str:
        """The challenge header (RFC 6750); names the error when a token was sent."""
        if self.body.reason == "unknown_token":
            return 'Bearer realm="leadledger", error="invalid_token"'
        return 'Bearer realm="leadledger"'


def source_for_token(token: str, tokens: Mapping[str, str]) -> str | None:
    """The source a token may publish for, or None.

    Compares against every configured token in constant time and without an early exit, so
    the response time tells an attacker nothing about how close a guess was.
    """
    given = token.encode()
    found: str | None = None
    for candidate, source in tokens.items():
        if hmac.compare_digest(given, candidate.encode()):
            found = source
    return found


async def publishing_source(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> str:
    """FastAPI dependency: the source the caller may publish for, or raise Unauthorized."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise Unauthorized(
                "invalid_authorization", "the Authorization header must be 'Bearer <token>'"
            )
        raise Unauthorized("missing_token", "send 'Authorization: Bearer <token>' to publish")
    tokens = context_of(request).settings.api_tokens
    source = source_for_token(credentials.credentials, tokens)
    if source is None:
        raise Unauthorized("unknown_token", "the bearer token is not valid")
    return source
