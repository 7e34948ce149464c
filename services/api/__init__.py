"""The HTTP API: authenticated CloudEvents ingest onto Kafka, and lead read models.

Build it with :func:`services.api.app.create_app`; run it with any ASGI server (uvicorn).
"""

from __future__ import annotations

from services.api.app import create_app
from services.api.ports import LeadReader, Publisher

__all__ = ["LeadReader", "Publisher", "create_app"]
