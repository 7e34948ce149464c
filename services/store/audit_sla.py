"""SLA facts of a lead's audit trail, from its ``sla_timer`` rows (services/sql/002_sla.sql).

A row is one timer. It yields the facts the processor declared for it, at the times the
``sla.*`` events carry: ``started`` at the start, ``warning`` at ``warn_at``, ``breached`` at
the deadline, ``escalated`` at each step (only those in ``emitted``, so a fact that was never
produced is never shown), and the outcome ``met`` or ``cancelled`` at the stop.

Rows are read as mappings with ``.get``, so a column added or dropped by a later SLA migration
degrades an entry rather than breaking the audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from services.api.audit_models import SlaOut, TimelineEntry

#: The CloudEvents source of the processor's derived ``sla.*`` events.
SLA_SOURCE: Final = "leadledger/processor"


def sla_entries(rows: Iterable[Mapping[str, Any]]) -> list[TimelineEntry]:
    """Every declared fact of every timer, timers in the given order, facts in time order."""
    out: list[TimelineEntry] = []
    for row in rows:
        facts = sorted(_facts(row), key=lambda fact: fact[1])
        out += [_entry(row, fact, at, level) for fact, at, level in facts]
    return out


def _facts(row: Mapping[str, Any]) -> list[tuple[str, datetime, int | None]]:
    emitted = set(row.get("emitted") or ())
    facts: list[tuple[str, datetime, int | None]] = [("started", row["started_at"], None)]
    if "warning" in emitted and row.get("warn_at") is not None:
        facts.append(("warning", row["warn_at"], None))
    if "breached" in emitted and row.get("deadline") is not None:
        facts.append(("breached", row["deadline"], None))
    for level, at in enumerate(row.get("escalate_at") or (), start=1):
        if f"escalated-{level}" in emitted:
            facts.append(("escalated", at, level))
    outcome, stopped = row.get("outcome"), row.get("stopped_at")
    if outcome is not None and stopped is not None:
        facts.append((str(outcome), stopped, None))
    return facts


def _entry(row: Mapping[str, Any], fact: str, at: datetime, level: int | None) -> TimelineEntry:
    policy = str(row["policy"])
    return TimelineEntry(
        at=at,
        kind="sla",
        type=f"sla.{fact}",
        event_id=None,
        source=SLA_SOURCE,
        summary=_summary(policy, fact, level, row),
        sla=SlaOut(
            policy=policy,
            cycle_id=str(row.get("cycle_id") or ""),
            fact=fact,
            level=level,
            status=str(row.get("status") or "unknown"),
            started_at=row["started_at"],
            warn_at=row.get("warn_at"),
            deadline=row.get("deadline"),
            stopped_at=row.get("stopped_at"),
            stop_reason=row.get("stop_reason"),
            limit_seconds=row.get("limit_seconds"),
            elapsed_seconds=row.get("elapsed_seconds"),
            owner_id=row.get("owner_id"),
            team=row.get("team"),
        ),
    )


def _summary(policy: str, fact: str, level: int | None, row: Mapping[str, Any]) -> str:
    deadline = row.get("deadline")
    due = f"deadline {deadline.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if deadline else ""
    why = row.get("stop_reason")
    text = {
        "started": f"started, {due}",
        "warning": f"warning, {due}",
        "breached": "breached: the deadline passed",
        "escalated": f"escalated (level {level})",
    }.get(fact, fact + (f": {why}" if why else ""))
    return f"SLA {policy} {text}"
