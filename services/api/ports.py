"""The adapters the HTTP API depends on, as small Protocols.

Production passes a :class:`services.publisher.KafkaPublisher` and a Postgres-backed reader;
unit tests pass hand-written in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fastapi import Request

from events.envelope import Event
from events.funnel import Funnel
from services.api.models import LeadDetail
from services.settings import Settings


class Publisher(Protocol):
    """Hands validated events to the event log."""

    async def publish(self, events: Sequence[Event]) -> None:
        """Return only once every event is durably stored; raise if any of them is not.

        The API answers 202 only after this returns, so a 202 means the log has them. A
        failure may leave some events stored: clients retry, and event ids make that safe.
        """
        ...


class LeadReader(Protocol):
    """Reads one lead from the read models."""

    async def get_lead(self, lead_id: str) -> LeadDetail | None:
        """The lead's current view, or None when no event of that lead has been applied."""
        ...


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the routes of one app instance use; stored on ``app.state.context``."""

    settings: Settings
    publisher: Publisher
    reader: LeadReader
    funnel: Funnel
    clock: Callable[[], datetime]


def context_of(request: Request) -> ApiContext:
    """The context of the app serving ``request`` (typed access to ``app.state``)."""
    ctx = request.app.state.context
    if not isinstance(ctx, ApiContext):  # only create_app sets it; fail loudly otherwise
        raise RuntimeError("the app was not built by services.api.app.create_app")
    return ctx
