"""Rejection reasons: a closed set, so they can label metrics and route dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class RejectReason(StrEnum):
    """Why an input was not accepted. Values are stable: dashboards and alerts match on them."""

    MALFORMED_JSON = "malformed_json"
    INVALID_ENVELOPE = "invalid_envelope"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_VERSION = "unknown_version"
    SCHEMA_VIOLATION = "schema_violation"
    OVERSIZED = "oversized"
    MISSING_KEY = "missing_key"
    KEY_MISMATCH = "key_mismatch"
    DUPLICATE = "duplicate"
    UNKNOWN_STAGE = "unknown_stage"
    DISALLOWED_TRANSITION = "disallowed_transition"
    UNKNOWN_REASON_CODE = "unknown_reason_code"
    FUTURE_EVENT = "future_event"
    TOO_LATE = "too_late"
    #: a suppressed lead (disqualified with a suppressing reason) handed over again, when the
    #: closed-loop config says ``on_suppressed_handoff: reject``
    SUPPRESSED_HANDOFF = "suppressed_handoff"
    #: valid JSON the read models cannot store (the store refused it); found by bisecting.
    UNSTORABLE = "unstorable"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field, addressed by a dotted path such as ``data.to_stage``."""

    loc: str
    msg: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected input: a bounded reason for counting plus details for humans."""

    reason: RejectReason
    detail: str
    errors: tuple[FieldError, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {
            "reason": self.reason.value,
            "detail": self.detail,
            "errors": [{"loc": e.loc, "msg": e.msg} for e in self.errors],
        }


class RejectedInput(Exception):
    """Raised by the codec; callers turn it into a dead letter or a 4xx."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.reason.value}: {rejection.detail}")
        self.rejection = rejection
