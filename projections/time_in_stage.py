"""Time in stage: stays summed per stage, with the open stay measured up to a given time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from projections.views import StageSpan, StageTime


def stage_times(spans: Iterable[StageSpan], now: datetime | None = None) -> tuple[StageTime, ...]:
    """Visits, total and latest stay per stage, in first-visit order.

    A closed stay counts its full length. The open stay counts up to ``now`` when it is given
    and is left out otherwise, so the result without ``now`` depends on the history alone.
    ``now`` earlier than the open stay's start (clock skew, a lagging stream time) counts as
    zero rather than as negative time.
    """
    totals: dict[str, tuple[int, float, float]] = {}
    for span in spans:
        seconds = span.seconds
        if seconds is None:
            if now is None:
                continue
            seconds = max(0.0, (now - span.entered_at).total_seconds())
        visits, cumulative, _ = totals.get(span.stage, (0, 0.0, 0.0))
        totals[span.stage] = (visits + 1, cumulative + seconds, seconds)
    return tuple(
        StageTime(stage=stage, visits=visits, cumulative_seconds=cumulative, latest_seconds=latest)
        for stage, (visits, cumulative, latest) in totals.items()
    )
