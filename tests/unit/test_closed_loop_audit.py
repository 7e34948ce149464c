"""Closed-loop facts in a lead's audit trail."""

from __future__ import annotations

from datetime import UTC, datetime

from services.store.audit_closed_loop import closed_loop_entries
from services.store.audit_timeline import build_timeline

T = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_suppressed_rehandoffs_and_duplicates_become_timeline_entries_in_time_order() -> None:
    suppression = {
        "lead_id": "L1", "event_id": "e3", "event_time": T.replace(hour=11), "action": "flagged",
        "to_stage": "recycled", "reason_code": "poor_fit", "suppressed_by": "e2",
    }  # fmt: skip
    duplicate = {
        "original_id": "L0", "duplicate_id": "L1", "duplicate_first_seen": T.replace(hour=10),
        "email_key": "ek1:" + "a" * 64, "derived_event_id": "closedloop/duplicate/L0/L1",
    }  # fmt: skip
    entries = closed_loop_entries([suppression], [duplicate])
    timeline = build_timeline(
        "L1", archived=[], spans=[], current=None, rejected=[], sla_rows=None, now=T,
        closed_loop=entries,
    )  # fmt: skip
    assert timeline is None, "closed-loop facts alone do not make a lead known"
    ordered = sorted(entries, key=lambda e: e.at)
    assert [e.type for e in ordered] == ["lead.duplicate_detected", "handoff.suppressed"]
    assert ordered[1].event_id == "closedloop/suppressed/L1/e3"
    assert "poor_fit" in ordered[1].summary
    assert "L0" in ordered[0].summary
