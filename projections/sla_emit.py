"""The emission rule: which ``sla.*`` facts a timer owes, given what it already emitted and
the partition's stream time. Pure: stream time comes in as an argument.

For a timer, in this order:

- ``started`` at once (time: the start);
- ``warning``, ``breached`` and each ``escalated-N`` once stream time has passed (strictly)
  the threshold, if the timer was not stopped at or before it (time: the threshold). A timer
  stopped exactly at its deadline met it;
- ``met`` or ``cancelled`` as soon as the stop is known (time: the stopping event's time).

Nothing more is due after ``met`` or ``cancelled``. Facts are emitted once and never taken
back: a stop that arrives after its breach fired (with an event time before the deadline,
i.e. a late event) still leaves the breach emitted, and ``met`` then carries a negative
lateness. Because the processor evaluates this after every record, in offset order, the
emitted set depends only on the log, never on batch sizes or restarts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel

from events.envelope import Event, dataschema_uri
from events.fields_set import shared
from events.sla_events import (
    SOURCE,
    SlaBreached,
    SlaCancelled,
    SlaEscalated,
    SlaEventData,
    SlaMet,
    SlaStarted,
    SlaWarning,
)
from projections.fast_init import slot_builder
from projections.sla import SlaRules, Timer

TERMINAL = frozenset({"met", "cancelled"})
#: CloudEvents ids of this project are at most 128 characters.
_MAX_ID = 128


@dataclass(frozen=True, slots=True)
class Firing:
    """One fact a timer owes: ``tag`` is what goes into its emitted set."""

    tag: str
    kind: str
    at: datetime
    level: int = 0


#: ``Firing(tag, kind, at, level)``, built faster (see ``projections.fast_init``).
_firing = slot_builder(Firing)

#: the tags of the first escalation levels, made once
_ESCALATED = tuple(f"escalated-{level}" for level in range(17))


def escalation_tag(level: int) -> str:
    """``escalated-{level}``: the emitted tag of an escalation level (1 for the first)."""
    return _ESCALATED[level] if level < len(_ESCALATED) else f"escalated-{level}"


def due(timer: Timer, emitted: frozenset[str], stream_time: datetime | None) -> tuple[Firing, ...]:
    """The facts owed now, in the order they became true."""
    out: list[Firing] = []
    if "started" not in emitted:
        out.append(_firing("started", "started", timer.started_at, 0))
    if "met" in emitted or "cancelled" in emitted:  # TERMINAL
        return tuple(out)
    if stream_time is not None:
        # A threshold has passed once stream time is strictly after it, unless the timer
        # stopped at or before it: it is before both.
        stopped_at = timer.stopped_at
        until = stream_time if stopped_at is None or stream_time <= stopped_at else stopped_at
        if "warning" not in emitted and timer.warn_at < until:
            out.append(_firing("warning", "warning", timer.warn_at, 0))
        if "breached" not in emitted and timer.deadline < until:
            out.append(_firing("breached", "breached", timer.deadline, 0))
        for level, at in enumerate(timer.escalate_at, start=1):
            if at < until:
                tag = escalation_tag(level)
                if tag not in emitted:
                    out.append(_firing(tag, "escalated", at, level))
    if timer.outcome is not None and timer.stopped_at is not None:
        out.append(_firing(timer.outcome, timer.outcome, timer.stopped_at, 0))
    return tuple(out)


def next_fire_at(timer: Timer, emitted: frozenset[str]) -> datetime | None:
    """The earliest threshold still to watch, or None when nothing waits on stream time."""
    if timer.outcome is not None or "met" in emitted or "cancelled" in emitted:
        return None  # a stopped timer's facts are all due at once
    # The first of the earliest, as ``min`` picks it.
    first = None if "warning" in emitted else timer.warn_at
    if "breached" not in emitted and (first is None or timer.deadline < first):
        first = timer.deadline
    for level, at in enumerate(timer.escalate_at, start=1):
        if (first is None or at < first) and escalation_tag(level) not in emitted:
            first = at
    return first


@dataclass(frozen=True, slots=True)
class TimerRow:
    """A timer with what it emitted: one row of the ``sla_timer`` read model."""

    timer: Timer
    partition: int
    emitted: frozenset[str] = frozenset()
    #: ``next_fire_at(timer, emitted)``, computed once (the engine asks for it several times
    #: per row); not part of equality, hashing or repr, since it follows from the fields
    _next: datetime | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_next", next_fire_at(self.timer, self.emitted))

    @property
    def next_fire_at(self) -> datetime | None:
        return self._next

    @property
    def status(self) -> str:
        """``met``/``cancelled`` once stopped; else ``breached``, ``warning`` or ``ok``."""
        if self.timer.outcome is not None:
            return self.timer.outcome
        if "breached" in self.emitted:
            return "breached"
        return "warning" if "warning" in self.emitted else "ok"


_build_row = slot_builder(TimerRow)


def timer_row(timer: Timer, partition: int, emitted: frozenset[str] = frozenset()) -> TimerRow:
    """``TimerRow(timer, partition, emitted)``, built faster (see ``projections.fast_init``),
    with ``emitted`` shared with every equal set (``shared_tags``)."""
    return _build_row(timer, partition, shared_tags(emitted), next_fire_at(timer, emitted))


#: One frozenset per distinct set of emitted tags. A row keeps its tags as long as its lead is
#: cached, a small frozenset takes 216 bytes, and rows share a handful of distinct sets
#: (``started``, then ``warning``, ``breached``... and an outcome). Bounded all the same: with
#: many escalation levels the combinations grow, and past the bound a row keeps its own.
_TAG_SETS: dict[frozenset[str], frozenset[str]] = {}
_MAX_TAG_SETS: Final = 1024


def shared_tags(tags: frozenset[str]) -> frozenset[str]:
    """The shared frozenset equal to ``tags`` (``tags`` itself when it is the first)."""
    found = _TAG_SETS.get(tags)
    if found is not None:
        return found
    if len(_TAG_SETS) < _MAX_TAG_SETS:
        _TAG_SETS[tags] = tags
    return tags


def fire(row: TimerRow, stream_time: datetime | None) -> tuple[TimerRow, tuple[Firing, ...]]:
    """The row with every due fact marked emitted, and those facts."""
    firings = due(row.timer, row.emitted, stream_time)
    if not firings:
        return row, ()
    return timer_row(row.timer, row.partition, row.emitted | {f.tag for f in firings}), firings


def derived_id(timer: Timer, tag: str) -> str:
    """``sla/{lead}/{policy}/{cycle}/{tag}``, or a digest of it when that is too long."""
    text = f"sla/{timer.lead_id}/{timer.policy}/{timer.cycle}/{tag}"
    if len(text) <= _MAX_ID:
        return text
    digest = hashlib.sha256(f"{timer.lead_id}\x00{timer.cycle}".encode()).hexdigest()[:40]
    return f"sla/{timer.policy}/{digest}/{tag}"


def derived_event(timer: Timer, firing: Firing, rules: SlaRules) -> Event:
    """The CloudEvents envelope of one fact (deterministic id, time = when it became true)."""
    policy = rules.by_name[timer.policy]
    elapsed = policy.clock.elapsed(timer.started_at, firing.at).total_seconds()
    limit = policy.limit.total_seconds()
    kind = firing.kind
    # Every field of the payload model, in its field order (checked at import, below).
    values: dict[str, Any] = {
        "policy": timer.policy,
        "lead_id": timer.lead_id,
        "cycle": timer.cycle,
        "owner_id": timer.owner_id,
        "team": timer.team,
        "started_at": timer.started_at,
        "warn_at": timer.warn_at,
        "deadline": timer.deadline,
        "limit_seconds": limit,
        "elapsed_seconds": elapsed,
        "delay_side": timer.delay_side(firing.at),
    }
    if kind == "escalated":
        values["level"] = firing.level
        values["escalate_to"] = policy.escalations[firing.level - 1][1]
    elif kind in TERMINAL:
        values["stopped_at"] = firing.at
        values["stop_reason"] = timer.stop_reason or ""
        values["stop_event_id"] = timer.stop_event_id
        values["lateness_seconds"] = elapsed - limit
    model, given, type_, version, schema = _KINDS[kind]
    # Built without validation, as ``model_construct`` builds them with every payload field
    # given (the envelope keeps two defaults): every value comes from validated events and the
    # rules, and a replay emits tens of thousands of these (a unit test decodes them with
    # full validation, another compares them with ``model_construct``'s).
    data = _new(model)
    _set(data, "__dict__", values)
    # Shared sets (``events.fields_set``): every derived event of a kind names the same fields.
    _set(data, "__pydantic_fields_set__", given)
    _set(data, "__pydantic_extra__", None)
    _set(data, "__pydantic_private__", None)
    event = _new(Event)
    _set(
        event,
        "__dict__",
        {
            "specversion": _SPECVERSION,
            "id": derived_id(timer, firing.tag),
            "source": SOURCE,
            "type": type_,
            "subject": timer.lead_id,
            "time": firing.at,
            "schemaversion": version,
            "dataschema": schema,
            "datacontenttype": _CONTENT_TYPE,
            "data": data,
        },
    )
    _set(event, "__pydantic_fields_set__", _ENVELOPE_SHARED)
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


_new = object.__new__
_set = object.__setattr__


@dataclass(frozen=True, slots=True)
class _Plan:
    """How ``derived_event`` builds a model: every field in order, with its default if any."""

    template: dict[str, Any]


_PLANS: dict[type[BaseModel], _Plan] = {}
_REQUIRED = object()  # a template's placeholder, always overwritten


def _plan(cls: type[BaseModel]) -> _Plan:
    fields = cls.model_fields
    # What building the model directly leaves out of ``model_construct`` must not matter.
    if (
        cls.__pydantic_post_init__ is not None
        or cls.__private_attributes__
        or cls.model_config.get("extra") == "allow"
        or any(f.alias or f.validation_alias or f.default_factory for f in fields.values())
    ):
        raise TypeError(f"{cls.__name__} needs model_construct")
    template = {n: _REQUIRED if f.is_required() else f.default for n, f in fields.items()}
    return _Plan(template)


_MODELS: dict[str, type[SlaEventData]] = {
    "started": SlaStarted,
    "warning": SlaWarning,
    "breached": SlaBreached,
    "escalated": SlaEscalated,
    "met": SlaMet,
    "cancelled": SlaCancelled,
}
_SCHEMAS = {m: dataschema_uri(m.TYPE, m.VERSION) for m in _MODELS.values()}
_BUILT: tuple[type[BaseModel], ...] = (Event, *_MODELS.values())
_PLANS.update({m: _plan(m) for m in _BUILT})

#: the payload fields ``derived_event`` gives, in the order it gives them
_BASE = (
    "policy", "lead_id", "cycle", "owner_id", "team", "started_at", "warn_at", "deadline",
    "limit_seconds", "elapsed_seconds", "delay_side",
)  # fmt: skip
_EXTRA = {
    "escalated": ("level", "escalate_to"),
    "met": ("stopped_at", "stop_reason", "stop_event_id", "lateness_seconds"),
    "cancelled": ("stopped_at", "stop_reason", "stop_event_id", "lateness_seconds"),
}
#: per kind: its model, the (shared) set of the fields given (all of them), its type, version
#: and dataschema
_KINDS: dict[str, tuple[type[SlaEventData], set[str], str, int, str]] = {}
for _kind, _model in _MODELS.items():
    _given = (*_BASE, *_EXTRA.get(_kind, ()))
    # Every field in field order: the ``__dict__`` ``model_construct`` would make of them, no
    # default left to fill in.
    if _given != tuple(_model.model_fields):
        raise TypeError(f"derived_event does not give {_model.__name__} its fields in order")
    _KINDS[_kind] = (_model, shared(set(_given)), _model.TYPE, _model.VERSION, _SCHEMAS[_model])

#: the envelope fields ``derived_event`` gives; the other two keep their defaults
_ENVELOPE_SET = frozenset(
    ("id", "source", "type", "subject", "time", "schemaversion", "dataschema", "data")
)
_ENVELOPE_SHARED = shared(_ENVELOPE_SET)
_ENVELOPE_DEFAULTS = {n: v for n, v in _PLANS[Event].template.items() if n not in _ENVELOPE_SET}
if list(_PLANS[Event].template) != [
    "specversion", "id", "source", "type", "subject", "time", "schemaversion", "dataschema",
    "datacontenttype", "data",
] or _ENVELOPE_DEFAULTS.keys() != {"specversion", "datacontenttype"}:  # fmt: skip
    raise TypeError("derived_event does not build the envelope in its field order")
_SPECVERSION = _ENVELOPE_DEFAULTS["specversion"]
_CONTENT_TYPE = _ENVELOPE_DEFAULTS["datacontenttype"]
