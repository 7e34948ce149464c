"""SLA clocks: how much of a stretch of time counts towards a limit. Pure, no clock reads.

Two kinds of clock:

- ``AlwaysOn`` (``24x7``): every second counts; ``deadline = start + limit``.
- ``BusinessHours``: only seconds inside the weekly opening windows of an IANA time zone
  count, and holidays (local dates) have no windows. Windows are wall-clock times, so across
  a DST change "09:00-17:00" still means 09:00-17:00 local; the UTC instants move instead.

Both answer the same two questions, in UTC-aware datetimes:

- ``deadline(start, limit)``: the instant at which ``limit`` of counted time has passed
  since ``start``. It is ``start`` for a zero limit, and otherwise always inside or at the
  end of a window (a limit that uses up a window exactly ends at its closing time).
- ``elapsed(start, end)``: counted time between two instants (zero if ``end <= start``).

They are inverse: ``elapsed(start, deadline(start, d)) == d`` for every ``d >= 0``.

``deadlines(start, limits)`` answers ``deadline`` for several limits of one start in one walk
over the windows (a timer's warning, limit and escalations), with the same results.

Local times that do not exist (the hour skipped in spring) or exist twice (the hour repeated
in autumn) resolve like ``zoneinfo`` does with ``fold=0``: the offset before the change. A
window whose two ends collapse onto one instant that way is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZERO = timedelta(0)
_DAY = timedelta(days=1)

#: One opening window of a day: local (open, close); close may be 24:00 (``None``).
Window = tuple[time, time | None]


@dataclass(frozen=True, slots=True)
class AlwaysOn:
    """The 24x7 clock: wall time is SLA time."""

    name: str = "24x7"

    def deadline(self, start: datetime, limit: timedelta) -> datetime:
        return start + max(limit, ZERO)

    def deadlines(self, start: datetime, limits: Sequence[timedelta]) -> tuple[datetime, ...]:
        return tuple(start + max(limit, ZERO) for limit in limits)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        return max(end - start, ZERO)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Weekly opening windows in ``timezone`` (``weekly[0]`` is Monday), minus ``holidays``.

    Build it through ``events.sla_config`` (which validates the windows), or directly in
    tests. Windows of one day must be sorted and must not overlap; at least one weekday must
    have one, or no deadline would ever come.
    """

    name: str
    timezone: str
    weekly: tuple[tuple[Window, ...], ...]
    holidays: frozenset[date] = frozenset()
    #: the zone, and each local day's windows as UTC instants, built once per clock (the same
    #: days recur for every lead); neither takes part in equality, hashing or repr
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _days: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise ValueError("weekly must have 7 entries, Monday first")
        if not any(self.weekly):
            raise ValueError("a business-hours clock needs at least one opening window")
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        object.__setattr__(self, "_days", {})

    def deadline(self, start: datetime, limit: timedelta) -> datetime:
        if limit <= ZERO:
            return start
        remaining = limit
        day = start.astimezone(self._zone).date()
        while True:  # ends: some weekday has a window and holidays are finitely many
            for opens, closes in self._windows(day):
                if closes <= start:
                    continue
                lo = max(opens, start)
                if closes - lo >= remaining:
                    return lo + remaining
                remaining -= closes - lo
            day += _DAY

    def deadlines(self, start: datetime, limits: Sequence[timedelta]) -> tuple[datetime, ...]:
        # ``deadline`` of each limit, walking the windows once for all of them, shortest
        # first: at each window, a limit is reached where ``deadline`` would reach it, since
        # ``deadline``'s remainder there is the limit less the counted time before the window.
        out = [start] * len(limits)
        todo = sorted((limit, i) for i, limit in enumerate(limits) if limit > ZERO)
        if not todo:
            return tuple(out)
        k, counted = 0, ZERO
        day = start.astimezone(self._zone).date()
        while True:  # ends, as ``deadline`` does
            for opens, closes in self._windows(day):
                if closes <= start:
                    continue
                lo = max(opens, start)
                span = closes - lo
                while todo[k][0] - counted <= span:
                    limit, i = todo[k]
                    out[i] = lo + (limit - counted)
                    k += 1
                    if k == len(todo):
                        return tuple(out)
                counted += span
            day += _DAY

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        if end <= start:
            return ZERO
        total = ZERO
        zone = self._zone
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        while day <= last:
            for opens, closes in self._windows(day):
                lo, hi = max(opens, start), min(closes, end)
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies inside an opening window (closing instant excluded)."""
        day = at.astimezone(self._zone).date()
        return any(opens <= at < closes for opens, closes in self._windows(day))

    def _windows(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        found = self._days.get(day)
        if found is None:
            if len(self._days) >= _DAYS_KEPT:
                self._days.clear()
            found = self._days[day] = _windows(self, day)
        return found


#: Either kind of clock; both have ``deadline`` and ``elapsed``.
Clock = AlwaysOn | BusinessHours


#: local days whose windows one clock keeps (a replay of years of history needs a few
#: thousand; past this the cache starts again rather than grow without bound)
_DAYS_KEPT = 8192


def _windows(clock: BusinessHours, day: date) -> tuple[tuple[datetime, datetime], ...]:
    """The UTC instants of ``day``'s windows (``BusinessHours._windows`` keeps them)."""
    if day in clock.holidays:
        return ()
    zone = ZoneInfo(clock.timezone)
    out: list[tuple[datetime, datetime]] = []
    for opens, closes in clock.weekly[day.weekday()]:
        lo = datetime.combine(day, opens, tzinfo=zone).astimezone(UTC)
        if closes is None:  # 24:00 is the next day's midnight
            hi = datetime.combine(day + _DAY, time(0), tzinfo=zone).astimezone(UTC)
        else:
            hi = datetime.combine(day, closes, tzinfo=zone).astimezone(UTC)
        if hi > lo:
            out.append((lo, hi))
    return tuple(out)
