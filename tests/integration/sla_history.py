"""A seeded history of many leads whose SLA outcomes are known from construction.

Each lead follows one of ten scenarios. A scenario lists its events (relative to the lead's
MQL time ``m0``) and, written down by hand next to them, the ``sla.*`` tags each timer must
end up with under ``SLA_YAML``. Nothing here calls the SLA code: the expectations come from
reading the policy table, so the test checks the engine against the agreement, not against
itself. Times are placed so the answers are easy to check by hand:

- ordinary MQLs enter at 10:00-10:29 Berlin time on business days, so the first-touch
  deadline (1 business hour) is 11:00-11:29 the same day and its escalation 12:00-12:29;
- ``friday`` MQLs enter Friday 16:30 and are touched Monday 09:10: on time only because the
  weekend does not count (deadline Monday 09:30);
- ``holiday`` MQLs enter 16:30 on the Tuesday before a holiday Wednesday and are touched
  Thursday 09:15: on time only because the holiday does not count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from events.catalog import (
    EventData,
    LeadAssigned,
    LeadContacted,
    LeadCreated,
    LeadDisqualified,
    LeadMerged,
    LeadRecycled,
    LeadStageChanged,
)
from events.envelope import Event, make_event

BERLIN = ZoneInfo("Europe/Berlin")
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
PER_REP = 10

SLA_YAML = """\
version: 1
teams: [sdr-emea, sdr-amer]
clocks:
  business:
    timezone: Europe/Berlin
    hours: {{mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
             thu: ["09:00-17:00"], fri: ["09:00-17:00"]}}
    holidays: [{holidays}]
policies:
  mql_first_touch: {{start_stage: mql, stop: first_sales_action, limit: 1h, warning: 15m,
                     clock: business, escalations: [{{after: 1h, to: team_lead}}]}}
  sal_decision: {{start_stage: mql, stop: decision, limit: 24h, warning: 4h}}
  mql_stagnation: {{start_stage: mql, stop: leave_stage, limit: 14d, warning: 10d}}
  sql_stagnation: {{start_stage: sql, stop: leave_stage, limit: 7d, warning: 5d}}
  opportunity_stagnation: {{start_stage: opportunity, stop: leave_stage, limit: 30d,
                            warning: 21d}}
  contact_attempts: {{start_stage: sal, stop: contacts, contacts: 2, limit: 5d, warning: 3d}}
volume: {{stage: mql, per_rep: {per_rep}, timezone: Europe/Berlin}}
"""

S, W, B, E1 = "started", "warning", "breached", "escalated-1"
MET, CXL = "met", "cancelled"
FIRST, DECIDE, MQL_STAG = "mql_first_touch", "sal_decision", "mql_stagnation"
SQL_STAG, OPP_STAG, ATTEMPTS = "sql_stagnation", "opportunity_stagnation", "contact_attempts"


@dataclass
class Lead:
    """One constructed lead: its events, the tags each (policy, cycle) must emit, volume."""

    lead_id: str
    scenario: str
    events: list[Event] = field(default_factory=list)
    expected: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    mqls: list[tuple[datetime, str | None]] = field(default_factory=list)
    assignments: list[tuple[datetime, str, str]] = field(default_factory=list)

    def add(self, at: datetime, data: EventData) -> str:
        event_id = f"{self.lead_id}-e{len(self.events)}"
        self.events.append(
            make_event(data, id=event_id, subject=self.lead_id, source="crm", time=at)
        )
        return event_id

    def expect(self, cycle: str, **tags: list[str]) -> None:
        for policy, listed in tags.items():
            self.expected[(policy, cycle)] = listed

    def assign(self, at: datetime, team: str, rep: str) -> None:
        self.add(at, LeadAssigned(owner_id=rep, team=team, assigned_by="router"))
        self.assignments.append((at, team, rep))


def _to(lead: Lead, at: datetime, frm: str, to: str) -> str:
    return lead.add(at, LeadStageChanged(from_stage=frm, to_stage=to))


def _contact(lead: Lead, at: datetime, rep: str = "rep-x") -> str:
    return lead.add(at, LeadContacted(activity="call", rep_id=rep))


def quick_accept(x: Lead, m0: datetime, team: str, rep: str) -> None:
    x.add(m0 - 60 * M, LeadCreated(stage="lead"))
    mql = _to(x, m0, "lead", "mql")
    x.assign(m0 + 2 * M, team, rep)
    _contact(x, m0 + 10 * M, rep)
    sal = _to(x, m0 + 30 * M, "mql", "sal")
    _contact(x, m0 + 1 * D, rep)
    _contact(x, m0 + 2 * D, rep)  # the 2nd contact since acceptance: attempts met
    sql = _to(x, m0 + 3 * D, "sal", "sql")
    opp = _to(x, m0 + 5 * D, "sql", "opportunity")
    _to(x, m0 + 20 * D, "opportunity", "customer")
    x.mqls.append((m0, team))
    x.expect(mql, **{FIRST: [S, MET], DECIDE: [S, MET], MQL_STAG: [S, MET]})
    x.expect(sal, **{ATTEMPTS: [S, MET]})
    x.expect(sql, **{SQL_STAG: [S, MET]})
    x.expect(opp, **{OPP_STAG: [S, MET]})


def warned(x: Lead, m0: datetime, team: str, rep: str) -> None:
    mql = x.add(m0, LeadCreated(stage="mql"))
    x.assign(m0 + 5 * M, team, rep)
    _contact(x, m0 + 40 * M, rep)  # after the 15 min warning, before the hour
    sal = _to(x, m0 + 5 * H, "mql", "sal")  # after the 4 h warning, before 24 h
    x.add(m0 + 4 * D, LeadDisqualified(from_stage="sal", reason_code="no_need"))
    x.mqls.append((m0, team))
    x.expect(mql, **{FIRST: [S, W, MET], DECIDE: [S, W, MET], MQL_STAG: [S, MET]})
    x.expect(sal, **{ATTEMPTS: [S, W, CXL]})  # disqualified after 3 d, before 5 d


def breach_then_met(x: Lead, m0: datetime, team: str, rep: str) -> None:
    x.add(m0 - 30 * M, LeadCreated(stage="lead"))
    mql = _to(x, m0, "lead", "mql")
    _contact(x, m0 + 150 * M)  # nobody routed it: 90 min late, past the escalation at 2 h
    x.add(m0 + 3 * H, LeadRecycled(from_stage="mql", reason="not ready"))
    x.mqls.append((m0, None))
    x.expect(mql, **{FIRST: [S, W, B, E1, MET], DECIDE: [S, MET], MQL_STAG: [S, CXL]})


def never_touched(x: Lead, m0: datetime, team: str, rep: str) -> None:
    mql = x.add(m0, LeadCreated(stage="mql"))
    x.assign(m0 + 10 * M, team, rep)
    x.mqls.append((m0, team))
    x.expect(mql, **{FIRST: [S, W, B, E1], DECIDE: [S, W, B], MQL_STAG: [S, W, B]})


def disqualified_sql(x: Lead, m0: datetime, team: str, rep: str) -> None:
    x.add(m0 - 10 * M, LeadCreated(stage="lead"))
    mql = _to(x, m0, "lead", "mql")
    x.assign(m0 + 1 * M, team, rep)
    _contact(x, m0 + 5 * M, rep)
    sal = _to(x, m0 + 20 * M, "mql", "sal")
    _contact(x, m0 + 1 * H, rep)
    _contact(x, m0 + 2 * H, rep)
    sql = _to(x, m0 + 1 * D, "sal", "sql")
    x.add(m0 + 3 * D, LeadDisqualified(from_stage="sql", reason_code="no_budget"))
    x.mqls.append((m0, team))
    x.expect(mql, **{FIRST: [S, MET], DECIDE: [S, MET], MQL_STAG: [S, MET]})
    x.expect(sal, **{ATTEMPTS: [S, MET]})
    x.expect(sql, **{SQL_STAG: [S, CXL]})  # disqualified while running: cancelled


def stagnant_then_lost(x: Lead, m0: datetime, team: str, rep: str) -> None:
    mql = x.add(m0, LeadCreated(stage="mql"))
    _contact(x, m0 + 3 * M, rep)
    x.assign(m0 + 4 * M, team, rep)
    sal = _to(x, m0 + 10 * M, "mql", "sal")
    sql = _to(x, m0 + 1 * H, "sal", "sql")
    _to(x, m0 + 9 * D, "sql", "lost")
    x.mqls.append((m0, team))
    x.expect(mql, **{FIRST: [S, MET], DECIDE: [S, MET], MQL_STAG: [S, MET]})
    x.expect(sal, **{ATTEMPTS: [S, W, B, CXL]})
    x.expect(sql, **{SQL_STAG: [S, W, B, CXL]})


def withdrawn(x: Lead, m0: datetime, team: str, rep: str) -> None:
    x.add(m0 - 20 * M, LeadCreated(stage="lead"))
    mql = _to(x, m0, "lead", "mql")
    _to(x, m0 + 10 * M, "mql", "nurture")
    x.mqls.append((m0, None))
    x.expect(mql, **{FIRST: [S, CXL], DECIDE: [S, CXL], MQL_STAG: [S, CXL]})


def merged(x: Lead, m0: datetime, team: str, rep: str) -> None:
    mql = x.add(m0, LeadCreated(stage="mql"))
    x.assign(m0 + 5 * M, team, rep)
    x.add(m0 + 20 * M, LeadMerged(survivor_id=f"{x.lead_id}-original"))  # after the warning
    x.mqls.append((m0, team))
    x.expect(mql, **{FIRST: [S, W, CXL], DECIDE: [S, CXL], MQL_STAG: [S, CXL]})


def _after_a_gap(x: Lead, m0: datetime, team: str, rep: str, touch: datetime) -> None:
    mql = x.add(m0, LeadCreated(stage="mql"))
    x.assign(m0 + 1 * M, team, rep)
    _contact(x, touch, rep)
    sal = _to(x, touch + 10 * M, "mql", "sal")
    x.mqls.append((m0, team))
    # The first touch is on time in business hours; the 24x7 decision is not.
    x.expect(mql, **{FIRST: [S, W, MET], DECIDE: [S, W, B, MET], MQL_STAG: [S, MET]})
    x.expect(sal, **{ATTEMPTS: [S, W, B]})


def friday(x: Lead, m0: datetime, team: str, rep: str) -> None:
    monday = m0.astimezone(BERLIN).date() + 3 * D
    _after_a_gap(x, m0, team, rep, datetime.combine(monday, time(9, 10), BERLIN))


def holiday(x: Lead, m0: datetime, team: str, rep: str) -> None:
    thursday = m0.astimezone(BERLIN).date() + 2 * D
    _after_a_gap(x, m0, team, rep, datetime.combine(thursday, time(9, 15), BERLIN))


ORDINARY = [
    quick_accept, warned, breach_then_met, never_touched, disqualified_sql,
    stagnant_then_lost, withdrawn, merged,
]  # fmt: skip


@dataclass
class History:
    leads: list[Lead]
    holidays: list[date]

    @property
    def events(self) -> list[Event]:
        return sorted((e for x in self.leads for e in x.events), key=lambda e: (e.time, e.id))

    def sla_yaml(self) -> str:
        days = ", ".join(d.isoformat() for d in self.holidays)
        return SLA_YAML.format(holidays=days, per_rep=PER_REP)

    def expected_ids(self) -> set[str]:
        return {
            f"sla/{x.lead_id}/{policy}/{cycle}/{tag}"
            for x in self.leads
            for (policy, cycle), tags in x.expected.items()
            for tag in tags
        }

    def volume(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(month, team) -> (MQLs routed to the team, active reps), counted independently."""
        mqls: dict[tuple[str, str], int] = {}
        reps: dict[tuple[str, str], set[str]] = {}
        for x in self.leads:
            for at, team in x.mqls:
                key = (f"{at.astimezone(BERLIN):%Y-%m}", team or "unassigned")
                mqls[key] = mqls.get(key, 0) + 1
            for at, team, rep in x.assignments:
                reps.setdefault((f"{at.astimezone(BERLIN):%Y-%m}", team), set()).add(rep)
        keys = mqls.keys() | reps.keys()
        return {k: (mqls.get(k, 0), len(reps.get(k, set()))) for k in keys}


def build(n_leads: int, first_day: date, last_day: date) -> History:
    """``n_leads`` leads with MQL days between the two dates (Berlin calendar)."""
    days = [first_day + i * D for i in range((last_day - first_day).days + 1)]
    wednesdays = [d for d in days if d.weekday() == 2]
    holidays = wednesdays[2::3]  # every third Wednesday is a holiday
    business = [d for d in days if d.weekday() < 5 and d not in holidays]
    fridays = [d for d in business if d.weekday() == 4]
    pre_holiday = [h - D for h in holidays]
    leads: list[Lead] = []
    for i in range(n_leads):
        team = "sdr-emea" if i % 2 == 0 else "sdr-amer"
        rep = f"rep-{team[4:]}-{i % 7}"
        kind = i % 10
        x = Lead(f"S-{i:05d}", "")
        if kind < len(ORDINARY):
            day = business[(i // 10) % len(business)]
            m0 = datetime.combine(day, time(10, i % 30), BERLIN)
            scenario = ORDINARY[kind]
        else:
            pool = fridays if kind == 8 else pre_holiday
            day = pool[(i // 10) % len(pool)]
            m0 = datetime.combine(day, time(16, 30, i % 60), BERLIN)
            scenario = friday if kind == 8 else holiday
        x.scenario = scenario.__name__
        scenario(x, m0, team, rep)
        leads.append(x)
    return History(leads, holidays)
