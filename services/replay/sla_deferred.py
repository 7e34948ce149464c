"""The replay's SLA engine: the live engine, except that in-order leads are settled at the end.

Live, ``services.processor.sla_engine.SlaEngine`` settles a lead's timer rows after each of
its events and fires thresholds record by record, because each ``sla.*`` fact must be
produced when it becomes true. A replay produces none: it needs the final rows (timer and
emitted tags) and how many facts fired. For a lead whose events all arrive in order on one
partition, the emitted tags follow from ``projections.sla_emit`` and one stream time per
timer, so such a lead's timer fold is only stepped per event, and its rows are built once at
the end (``finish``):

- every record advances its partition's stream time and fires each threshold it passed
  (strictly) while the timer runs; the stopping event is settled at the partition's stream
  time S once that event is applied, and fires the thresholds before the stop's own time.
  So a stopped timer emitted exactly the thresholds before S (those before the previous
  stream time fired while it ran, those before its stop time when it stopped; none at or
  after both), and a running one those before its partition's final stream time;
- emitted = ``started``, those thresholds, and the outcome once stopped. Each tag is one
  fired fact, so the fact count is the number of tags.

A lead that gets an event the live engine would not step (out of order, or on another
partition: a refold, which may cancel superseded timers at the stream time of that moment)
is handed to the live engine with the rows, queue entries and fold it would hold at that
point, and from then on runs the live code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from events.envelope import Event
from projections.lead import LeadState, order_key
from projections.sla import SlaFold, SlaRules, Timer, start_fold, step_timers
from projections.sla_emit import TimerRow, escalation_tag, next_fire_at, timer_row
from projections.sla_volume import VolumeFact, VolumeFold, step_volume
from services.processor.sla_engine import Key, SlaEngine, SlaStore, SlaWrite

#: The live engine keeps every handed-over lead: the whole timer table is written at the end.
_UNBOUNDED = 1 << 62


@dataclass(slots=True)
class _InOrder:
    """A lead not handed over: its folds, its partition, and when each timer stopped."""

    fold: SlaFold
    volume: VolumeFold | None
    partition: int
    #: per stopped timer: its partition's stream time once the stopping event was applied
    stops: dict[Key, datetime]
    #: the event folded last (``fold.last`` is its ``order_key``)
    last: Event | None = None


@dataclass(slots=True)
class FinalRows:
    """What ``DeferredSlaEngine.finish_values`` settles: the ``sla_timer`` values of each row
    (``services.store.sla_rows.row_values`` of the row and its figures), volume facts, facts
    fired."""

    values: list[tuple[Any, ...]] = field(default_factory=list)
    facts: dict[str, tuple[VolumeFact, ...]] = field(default_factory=dict)
    fired: int = 0


#: what ``_emitted`` and ``row_values`` make of a timer's tags: (emitted, ``sorted(emitted)``,
#: status, facts fired)
_Tags = tuple[frozenset[str], list[str], str, int]


class DeferredSlaEngine(SlaEngine):
    """``SlaEngine`` for a replay from an empty store; call ``finish`` after the last batch."""

    def __init__(self, rules: SlaRules) -> None:
        super().__init__(rules, _UNBOUNDED, derive=False)
        self._in_order: dict[str, _InOrder] = {}
        #: per partition: its stream time after the latest record
        self._stream: dict[int, datetime] = {}
        self._dropped = False
        # Read once: ``lead_changed`` runs per event, and each lookup through ``rules`` (a
        # pydantic config among them) cost more than the check it serves.
        self._volume_target = rules.config.volume
        self._funnel = rules.funnel

    def forget(self) -> None:
        # The in-order leads exist nowhere else: the store has none of their rows. A replay's
        # store never fails a commit, so this only happens when the replay fails anyway.
        super().forget()
        self._in_order.clear()
        self._dropped = True

    async def prepare(
        self,
        store: SlaStore,
        partitions: Iterable[int],
        lead_ids: Iterable[str],
        unsettled: Iterable[TimerRow] = (),
    ) -> None:
        # A replay starts empty: a lead new to this engine has no stored rows, and a handed
        # over one is cached already, so no lead is loaded.
        await super().prepare(store, partitions, (), unsettled)

    def lead_changed(
        self, partition: int, state: LeadState, stream_time: datetime, in_order: bool = False
    ) -> None:
        lead_id = state.lead_id
        lead = self._in_order.get(lead_id)
        events = state.events
        target = self._volume_target
        if lead is None:
            if lead_id in self._rows:
                super().lead_changed(partition, state, stream_time, in_order)
                return
            volume = VolumeFold() if target is not None else None
            lead = self._in_order[lead_id] = _InOrder(start_fold(lead_id), volume, partition, {})
        fold = lead.fold
        count = fold.count
        if (
            in_order
            and partition == lead.partition
            and count == len(events) - 1
            # The event folded last is nearly always the very object before this one (not
            # after a packed lead was unpacked): then its ``order_key`` need not be built.
            and (count == 0 or lead.last is events[-2] or fold.last == order_key(events[-2]))
        ):
            # What the live engine's step does, without settling: see the module doc.
            event = lead.last = events[-1]
            lead.fold, changed = step_timers(fold, event, self.rules)
            volume = lead.volume
            # A volume fold exists only with a target (the second test is for mypy).
            if volume is not None and target is not None:
                lead.volume = step_volume(volume, lead_id, event, target, self._funnel)
            for timer in changed:
                if timer.outcome is not None:
                    lead.stops.setdefault(timer.key, stream_time)
            return
        self._hand_over(lead_id, lead)
        super().lead_changed(partition, state, stream_time, in_order)

    def advance(self, partition: int, stream_time: datetime) -> None:
        self._stream[partition] = stream_time
        # Nearly every record: nothing queued on the partition is due (in-order leads queue
        # nothing), so the live engine's walk would find nothing.
        heap = self._heaps.get(partition)
        if heap and heap[0][0] < stream_time:
            super().advance(partition, stream_time)

    def finish(self) -> SlaWrite:
        """The rows, figures and volume facts of the leads still in order, as of the end."""
        if self._dropped:
            raise RuntimeError("the SLA state was dropped mid-replay: its rows are incomplete")
        out = SlaWrite()
        for lead_id, lead in self._in_order.items():
            for row in self._rows_of(lead):
                out.rows.append(row)
                out.fired += len(row.emitted)
                out.figures[row.timer.key] = self._figures(row.timer)
            if lead.volume is not None:
                out.facts[lead_id] = lead.volume.facts
        self._in_order.clear()
        return out

    def finish_values(self) -> FinalRows:
        """``finish``, each row given as what the write COPYs: the same values as
        ``row_values(row, *figures[key])`` of ``finish``'s rows, in the same order, built
        without the rows. The few distinct tag sets are built once, and their sorted lists
        are shared between rows (the write only reads them)."""
        if self._dropped:
            raise RuntimeError("the SLA state was dropped mid-replay: its rows are incomplete")
        out = FinalRows()
        values, facts = out.values, out.facts
        fired = 0
        by_name = self.rules.by_name
        limits = {name: p.limit.total_seconds() for name, p in by_name.items()}
        elapsed_of = {name: p.clock.elapsed for name, p in by_name.items()}
        memo: dict[tuple[str | None, int, int], _Tags] = {}
        stream = self._stream
        append = values.append
        # Most timers have no escalation steps: their (empty) lists are one shared object,
        # as the sorted tag lists are (the write only reads them).
        no_steps: list[datetime] = []
        for lead_id, lead in self._in_order.items():
            partition, stops = lead.partition, lead.stops
            now = stream.get(partition)
            for t in lead.fold.timers:
                outcome, escalate_at, policy = t.outcome, t.escalate_at, t.policy
                at = stops[(t.lead_id, policy, t.cycle)] if outcome is not None else now
                # Which thresholds ``_emitted`` counts as passed, as bits (warning first).
                mask = 0
                if at is not None:
                    mask = (t.warn_at < at) | (t.deadline < at) << 1
                    if escalate_at:
                        for level, threshold in enumerate(escalate_at, start=2):
                            if threshold < at:
                                mask |= 1 << level
                memo_key = (outcome, mask, len(escalate_at))
                tags = memo.get(memo_key)
                if tags is None:
                    tags = memo[memo_key] = _tags_of(outcome, mask, len(escalate_at))
                emitted, ordered, status, count = tags
                fired += count
                stopped_at = t.stopped_at
                elapsed = None
                if stopped_at is not None:
                    elapsed = elapsed_of[policy](t.started_at, stopped_at).total_seconds()
                append((
                    t.lead_id, policy, t.cycle, partition, t.started_at, t.warn_at,
                    t.deadline, list(escalate_at) if escalate_at else no_steps, stopped_at,
                    outcome, t.stop_reason, t.stop_event_id, t.owner_id, t.team, t.assigned_at,
                    limits[policy], elapsed, status, ordered,
                    next_fire_at(t, emitted) if outcome is None else None,
                ))  # fmt: skip
            if lead.volume is not None:
                facts[lead_id] = lead.volume.facts
        out.fired = fired
        self._in_order.clear()
        return out

    def _hand_over(self, lead_id: str, lead: _InOrder) -> None:
        """Give the live engine the lead's rows, queue entries and folds as of now."""
        self._in_order.pop(lead_id, None)
        rows: dict[Key, TimerRow] = {}
        for row in self._rows_of(lead):
            key = row.timer.key
            rows[key] = row
            self._queue(row)
            # Written with this batch, as the live engine wrote it when it changed.
            self._dirty[key] = row
            self._out.fired += len(row.emitted)
        self._rows[lead_id] = rows
        if lead.fold.count:
            self._folds[lead_id] = (lead.fold, lead.volume)

    def _rows_of(self, lead: _InOrder) -> Iterable[TimerRow]:
        now = self._stream.get(lead.partition)
        for timer in lead.fold.timers:
            at = lead.stops[timer.key] if timer.outcome is not None else now
            yield timer_row(timer, lead.partition, _emitted(timer, at))

    def _figures(self, timer: Timer) -> tuple[float, float | None]:
        # As the live engine's drain computes them.
        policy = self.rules.by_name[timer.policy]
        elapsed = None
        if timer.stopped_at is not None:
            elapsed = policy.clock.elapsed(timer.started_at, timer.stopped_at).total_seconds()
        return policy.limit.total_seconds(), elapsed


def _emitted(timer: Timer, stream_time: datetime | None) -> frozenset[str]:
    """What a timer settled record by record has emitted once stream time reached
    ``stream_time`` (for a stopped timer: the stream time at its stop); see the module doc."""
    tags = ["started"]
    if stream_time is not None:
        if timer.warn_at < stream_time:
            tags.append("warning")
        if timer.deadline < stream_time:
            tags.append("breached")
        tags += [
            escalation_tag(level)
            for level, at in enumerate(timer.escalate_at, start=1)
            if at < stream_time
        ]
    if timer.outcome is not None:
        tags.append(timer.outcome)
    return frozenset(tags)


def _tags_of(outcome: str | None, mask: int, escalations: int) -> _Tags:
    """The tags ``_emitted`` gives a timer with ``outcome`` whose passed thresholds are the
    bits of ``mask`` (see ``finish_values``), and what ``row_values`` makes of them."""
    tags = ["started"]
    if mask & 1:
        tags.append("warning")
    if mask & 2:
        tags.append("breached")
    tags += [escalation_tag(level) for level in range(1, escalations + 1) if mask & 1 << level + 1]
    if outcome is not None:
        tags.append(outcome)
    emitted = frozenset(tags)
    # ``row_values``' status: the outcome once stopped, else the worst threshold passed.
    status = (
        outcome
        if outcome is not None
        else ("breached" if "breached" in emitted else "warning" if "warning" in emitted else "ok")
    )
    return emitted, sorted(emitted), status, len(emitted)
