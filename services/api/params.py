"""The time parameters every report of the HTTP API takes, declared once, so each endpoint
describes them the same way in the OpenAPI spec; ``services.api.periods.parse_time`` reads them
(the CLI's ``--from``, ``--to`` and ``--as-of`` too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

WHEN = "a date (YYYY-MM-DD) or an RFC 3339 time; UTC when it has no zone"
_EXAMPLES = ["2026-09-30", "2026-09-30T12:00:00Z"]


def when(description: str, alias: str | None = None) -> object:
    """A ``Query`` for an optional time parameter: ``description``, then what it accepts."""
    text = f"{description}; {WHEN}"
    return Query(alias=alias, max_length=64, description=text, examples=_EXAMPLES)


FromParam = Annotated[str | None, when("start of the period (inclusive)", alias="from")]
ToParam = Annotated[
    str | None, when("end of the period (exclusive; a date means the whole day)", alias="to")
]
