"""The SLA engine of the processor: timer rows in memory, fired record by record.

The rules are pure (``projections.sla`` says which timers a lead has, ``projections.sla_emit``
what they owe at a stream time); this class keeps the state those rules need between records:

- per lead, every timer row with its emitted tags (an LRU cache, loaded from ``sla_timer``
  on a miss), so a recomputed timer never re-emits what it already emitted;
- per cached lead, the timer fold of its history (``projections.sla.SlaFold``, and the volume
  fold when a volume target is set), so an event that sorts after the lead's history steps it
  and settles only the timers that event changed (plus those of its rows that are due), rather
  than refolding the whole history. A late event, or a lead whose rows came from the store,
  refolds from the history. The folds live and die with the lead's rows: evicted together,
  dropped by ``forget()``;
- per partition, the rows that still wait for a threshold (warning, deadline, escalation),
  in a heap keyed by that instant, so advancing stream time touches only what is due rather
  than scanning every lead. It is rebuilt from ``sla_timer.next_fire_at`` the first time a
  partition is seen, and after ``forget()``.

The pipeline calls ``lead_changed`` after each accepted event and ``advance`` after each
record (event or tick), in offset order; ``drain`` hands over what the attempt produced, to be
produced to the derived topic and committed with the batch. State changes during an attempt
are not undone: if the attempt fails, the pipeline calls ``forget()`` and the next attempt
reloads the committed state.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from events.envelope import Event
from projections.lead import LeadState, order_key
from projections.sla import SlaFold, SlaRules, Timer, fold_timers, start_fold, step_timers
from projections.sla_emit import TimerRow, derived_event, due, timer_row
from projections.sla_volume import VolumeFact, VolumeFold, step_volume

Key = tuple[str, str, str]  # (lead, policy, cycle)


class SlaStore(Protocol):
    async def load_timers(self, lead_ids: Sequence[str]) -> dict[str, list[TimerRow]]: ...

    async def load_pending(self, partitions: Sequence[int]) -> list[TimerRow]: ...


@dataclass(slots=True)
class SlaWrite:
    """What one attempt changed: rows to upsert, derived events to produce, facts to replace."""

    rows: list[TimerRow] = field(default_factory=list)
    #: per row key: (limit seconds, counted seconds from start to stop or None)
    figures: dict[Key, tuple[float, float | None]] = field(default_factory=dict)
    derived: list[Event] = field(default_factory=list)
    facts: dict[str, tuple[VolumeFact, ...]] = field(default_factory=dict)
    #: facts fired, whether or not built as events (a replay counts them, it produces none)
    fired: int = 0


class SlaEngine:
    """Timer state for the partitions this worker processes."""

    def __init__(self, rules: SlaRules, cache_leads: int = 200_000, derive: bool = True) -> None:
        self.rules = rules
        self.cache_leads = cache_leads
        #: build the derived events; a replay, which publishes none, only counts the firings
        self.derive = derive
        self._rows: OrderedDict[str, dict[Key, TimerRow]] = OrderedDict()
        #: per lead in ``_rows`` whose rows this engine settled: the folds of its history
        self._folds: dict[str, tuple[SlaFold, VolumeFold | None]] = {}
        self._pending: dict[int, dict[Key, TimerRow]] = {}
        self._heaps: dict[int, list[tuple[datetime, Key]]] = {}
        self._dirty: dict[Key, TimerRow] = {}
        self._out = SlaWrite()

    def forget(self) -> None:
        """Drop all state; the next ``prepare`` reloads what was committed."""
        self._rows.clear()
        self._folds.clear()
        self._pending.clear()
        self._heaps.clear()
        self._dirty.clear()
        self._out = SlaWrite()

    async def prepare(
        self,
        store: SlaStore,
        partitions: Iterable[int],
        lead_ids: Iterable[str],
        unsettled: Iterable[TimerRow] = (),
    ) -> None:
        """Load the queues of new partitions and the rows of uncached leads; start an attempt.

        ``unsettled``: rows of batches staged but not committed yet (oldest first). The store
        does not have them, and a lead's row may have changed there without the lead being
        cached (a threshold fired by stream time alone), so they win over what is loaded.
        """
        self._dirty.clear()
        self._out = SlaWrite()
        fresh = sorted(p for p in set(partitions) if p not in self._pending)
        if fresh:
            for p in fresh:
                self._pending[p], self._heaps[p] = {}, []
            for row in await store.load_pending(fresh):
                self._queue(row)
        missing = sorted(lid for lid in set(lead_ids) if lid not in self._rows)
        loaded = await store.load_timers(missing) if missing else {}
        # Indexed only for the leads being loaded: a warm cache loads none, and then the rows
        # of the batch in flight need not be walked at all.
        newer: dict[str, dict[Key, TimerRow]] = {}
        if missing:
            wanted = set(missing)
            for row in unsettled:
                if row.timer.lead_id in wanted:
                    newer.setdefault(row.timer.lead_id, {})[row.timer.key] = row
        for lead_id in missing:
            rows: dict[Key, TimerRow] = {}
            staged = newer.get(lead_id, {})
            for row in [*loaded.get(lead_id, []), *staged.values()]:
                row = staged.get(row.timer.key, row)
                # A queued row is the same committed row; keep one object per key.
                key = row.timer.key
                rows[key] = self._pending.get(row.partition, {}).get(key, row)
            self._rows[lead_id] = rows
            self._folds.pop(lead_id, None)

    def lead_changed(
        self, partition: int, state: LeadState, stream_time: datetime, in_order: bool = False
    ) -> None:
        """Recompute the lead's timers after an accepted event and fire what is due.

        ``in_order``: the event sorts after every other event of the lead (it is the last of
        ``state.events``); then the cached fold, if it holds exactly the events before it, is
        stepped instead of refolding the history.
        """
        lead_id = state.lead_id
        self._rows.move_to_end(lead_id)
        rows = self._rows[lead_id]
        events = state.events
        cached = self._folds.get(lead_id)
        if cached is None and in_order and len(events) == 1 and not rows:
            # A new lead: refolding its one event is stepping it from the empty fold (no row
            # to settle but those the event starts, none superseded).
            volume = VolumeFold() if self.rules.config.volume is not None else None
            cached = (start_fold(lead_id), volume)
        if (
            in_order
            and cached is not None
            and cached[0].count == len(events) - 1
            and (cached[0].count == 0 or cached[0].last == order_key(events[-2]))
        ):
            self._step(partition, rows, cached, events[-1], stream_time)
        else:
            self._refold(partition, state, rows, cached, stream_time)
        volume = self._folds[lead_id][1]
        if volume is not None:
            self._out.facts[lead_id] = volume.facts

    def _step(
        self,
        partition: int,
        rows: dict[Key, TimerRow],
        cached: tuple[SlaFold, VolumeFold | None],
        event: Event,
        stream_time: datetime,
    ) -> None:
        fold, changed = step_timers(cached[0], event, self.rules)
        volume = cached[1]
        target = self.rules.config.volume
        if volume is not None and target is not None:
            volume = step_volume(volume, fold.lead_id, event, target, self.rules.funnel)
        self._folds[fold.lead_id] = (fold, volume)
        # The fold holds the very objects it returned as changed.
        new = {id(t) for t in changed}
        # The refold would settle every timer, in this order; all but the changed ones and
        # the running ones now due would be no-ops (the rows hold exactly those timers, and a
        # stopped timer's row emitted all it owes when it stopped).
        for timer in fold.timers:
            if timer.outcome is not None:
                if id(timer) in new:
                    key = timer.key
                    self._settle_timer(timer, key, partition, rows.get(key), stream_time)
                continue
            key = timer.key
            old = rows.get(key)
            if (
                id(timer) in new
                or old is None
                or old.partition != partition
                or ((at := old.next_fire_at) is not None and at < stream_time)
            ):
                # Built from the fold's timer even when it equals the row's: a row loaded
                # from the store holds equal instants in another time zone, and the derived
                # events carry the fold's, as a refold's do.
                self._settle_timer(timer, key, partition, old, stream_time)

    def _refold(
        self,
        partition: int,
        state: LeadState,
        rows: dict[Key, TimerRow],
        cached: tuple[SlaFold, VolumeFold | None] | None,
        stream_time: datetime,
    ) -> None:
        # Thresholds depend only on the policy and the start: reuse those already computed.
        known = cached[0].thresholds() if cached is not None else None
        fold = fold_timers(state.lead_id, state.events, self.rules, known)
        volume = None
        target = self.rules.config.volume
        if target is not None:
            volume = VolumeFold()
            for event in state.events:
                volume = step_volume(volume, state.lead_id, event, target, self.rules.funnel)
        self._folds[state.lead_id] = (fold, volume)
        seen: set[Key] = set()
        for timer in fold.timers:
            key = timer.key
            seen.add(key)
            self._settle_timer(timer, key, partition, rows.get(key), stream_time)
        for key, old in list(rows.items()):
            if key not in seen and old.timer.outcome is None:
                # A late event removed the stay that started this timer (see
                # projections.changes): end it rather than leave it running forever.
                gone = replace(
                    old.timer, outcome="cancelled", stop_reason="superseded",
                    stopped_at=stream_time, stop_event_id=None,
                )  # fmt: skip
                self._settle_timer(gone, key, old.partition, old, stream_time)

    def advance(self, partition: int, stream_time: datetime) -> None:
        """Fire every queued threshold of ``partition`` that stream time has passed."""
        heap, pending = self._heaps.get(partition), self._pending.get(partition, {})
        while heap and heap[0][0] < stream_time:
            at, key = heapq.heappop(heap)
            row = pending.get(key)
            if row is not None and row.next_fire_at == at:  # else: a stale heap entry
                self._settle_timer(row.timer, key, row.partition, row, stream_time)

    def drain(self) -> SlaWrite:
        """What this attempt produced; rows come with their figures for the read model."""
        out = self._out
        out.rows = list(self._dirty.values())
        by_name, figures = self.rules.by_name, out.figures
        # Keyed as ``_dirty`` is (the row's timer key), rather than building each key again.
        for key, row in self._dirty.items():
            t = row.timer
            policy = by_name[t.policy]
            elapsed = None
            if t.stopped_at is not None:
                elapsed = policy.clock.elapsed(t.started_at, t.stopped_at).total_seconds()
            figures[key] = (policy.limit.total_seconds(), elapsed)
        return out

    def committed(self) -> None:
        """The drained write is committed: trim the lead cache. (A lead evicted while a
        later batch is in flight is reloaded with that batch's rows: see ``prepare``.)"""
        self._dirty.clear()
        self._out = SlaWrite()
        while len(self._rows) > self.cache_leads:
            lead_id, _ = self._rows.popitem(last=False)
            self._folds.pop(lead_id, None)

    def pending_count(self) -> int:
        """Rows waiting for a threshold, over all partitions (for tests and logs)."""
        return sum(len(p) for p in self._pending.values())

    def _settle_timer(
        self, timer: Timer, key: Key, partition: int, old: TimerRow | None, stream_time: datetime
    ) -> None:
        """Fire what ``TimerRow(timer, partition, old's emitted)`` owes at ``stream_time``
        (``projections.sla_emit.fire``) and store the row unless it equals ``old``."""
        emitted = old.emitted if old is not None else frozenset()
        firings = due(timer, emitted, stream_time)
        if firings:
            # Every one is a tag ``old`` lacks, so the row differs from it.
            self._out.fired += len(firings)
            if self.derive:
                rules, derived = self.rules, self._out.derived
                for firing in firings:
                    derived.append(derived_event(timer, firing, rules))
            emitted = emitted | {f.tag for f in firings}
        elif old is not None and old.partition == partition and old.timer == timer:
            return  # the row would equal ``old``: nothing to store
        self._store(timer_row(timer, partition, emitted), key)

    def _store(self, row: TimerRow, key: Key) -> None:
        lead_rows = self._rows.get(key[0])
        if lead_rows is not None:
            lead_rows[key] = row
        partition = row.partition
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = {}
        at = row.next_fire_at
        if at is None:
            pending.pop(key, None)
        else:  # ``_queue``
            previous = pending.get(key)
            pending[key] = row
            if previous is None or previous.next_fire_at != at:
                heapq.heappush(self._heaps.setdefault(partition, []), (at, key))
        self._dirty[key] = row

    def _queue(self, row: TimerRow) -> None:
        at, key = row.next_fire_at, row.timer.key
        if at is None:
            return
        pending = self._pending.setdefault(row.partition, {})
        previous = pending.get(key)
        pending[key] = row
        if previous is None or previous.next_fire_at != at:
            heapq.heappush(self._heaps.setdefault(row.partition, []), (at, key))
