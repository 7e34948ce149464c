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
from services.api.attribution_models import AttributionReport, DealExplanation, Dimension
from services.api.audit_models import LeadTimeline
from services.api.models import LeadDetail
from services.api.sla_models import OpenStatus, SlaOpenPage, SlaSummary
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


class SlaReader(Protocol):
    """Reads the SLA read models (``sla_timer``, ``sla_volume_fact``)."""

    async def open_timers(
        self,
        now: datetime,
        *,
        policy: str | None = None,
        owner: str | None = None,
        team: str | None = None,
        status: OpenStatus | None = None,
        limit: int = 100,
    ) -> SlaOpenPage:
        """Running timers matching the filters, earliest deadline first."""
        ...

    async def summary(self, start: datetime, end: datetime) -> SlaSummary:
        """Compliance of the timers started in [start, end), and the volume SLA per month."""
        ...


class AttributionReader(Protocol):
    """Computes attribution from the event archive (never from stored credit)."""

    async def report(
        self,
        models: Sequence[str],
        start: datetime,
        end: datetime,
        as_of: datetime,
        by: Sequence[Dimension] = ("campaign", "channel"),
    ) -> AttributionReport:
        """Credit of the deals won in [start, end) and of the open pipeline, as known at
        ``as_of``, per model; raises ``UnknownModel`` for a model name it does not know."""
        ...

    async def explain(
        self, deal_id: str, models: Sequence[str], as_of: datetime
    ) -> DealExplanation | None:
        """Each counted touch of one deal per model; None when the deal is unknown at as_of."""
        ...


class AuditReader(Protocol):
    """Reads one lead's audit trail."""

    async def timeline(self, lead_id: str) -> LeadTimeline | None:
        """Events, rejections and SLA facts in event-time order; None for an unknown lead."""
        ...


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the routes of one app instance use; stored on ``app.state.context``."""

    settings: Settings
    publisher: Publisher
    reader: LeadReader
    funnel: Funnel
    clock: Callable[[], datetime]
    #: None in an API built without the SLA read model: its endpoints answer 503.
    sla: SlaReader | None = None
    #: None in an API built without them: their endpoints answer 503.
    attribution: AttributionReader | None = None
    audit: AuditReader | None = None


def context_of(request: Request) -> ApiContext:
    """The context of the app serving ``request`` (typed access to ``app.state``)."""
    ctx = request.app.state.context
    if not isinstance(ctx, ApiContext):  # only create_app sets it; fail loudly otherwise
        raise RuntimeError("the app was not built by services.api.app.create_app")
    return ctx
