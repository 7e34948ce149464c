"""Time parameters of reports, read the same way by the CLI and the HTTP API.

A value is a date (``2026-09-30``) or an ISO 8601 / RFC 3339 time (``2026-09-30T12:00:00Z``);
a time without a zone, and every date, is UTC, so a report never depends on the server's
zone. A date as the *end* of a period means the whole day: ``--to 2026-09-30`` ends at
2026-10-01 00:00 (exclusive). Anywhere else a date is that day's 00:00, so
``--as-of 2026-10-01`` is the start of 1 October: everything known at the end of Q3.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def parse_time(text: str, *, end_of_period: bool = False) -> datetime:
    """A timezone-aware time from a date or a time (see module docstring); ValueError names
    the accepted forms."""
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        midnight = datetime.combine(day, time(0), tzinfo=UTC)
        return midnight + timedelta(days=1) if end_of_period else midnight
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a date (2026-09-30) nor a time (2026-09-30T12:00:00Z)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def quarter_of(now: datetime) -> tuple[datetime, datetime]:
    """The calendar quarter (UTC) containing ``now``: [first day 00:00, next quarter's)."""
    now = now.astimezone(UTC)
    first_month = 3 * ((now.month - 1) // 3) + 1
    start = datetime(now.year, first_month, 1, tzinfo=UTC)
    year, month = (now.year + 1, 1) if first_month == 10 else (now.year, first_month + 3)
    return start, datetime(year, month, 1, tzinfo=UTC)


def period(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` from optional texts; missing bounds come from ``now``'s quarter.
    ValueError unless start < end."""
    default_start, default_end = quarter_of(now)
    begin = parse_time(start) if start else default_start
    finish = parse_time(end, end_of_period=True) if end else default_end
    if begin >= finish:
        raise ValueError(f"the period is empty: 'from' {begin:%Y-%m-%d %H:%M} is not before "
                         f"'to' {finish:%Y-%m-%d %H:%M} (exclusive)")  # fmt: skip
    return begin, finish


def model_list(text: str) -> list[str]:
    """``first,last, linear,W`` -> ``["first", "last", "linear", "W"]`` (blanks dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]
