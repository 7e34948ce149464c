"""The simulated world: campaigns, sales reps, people and companies, and ``SimConfig``.

Pure data and pure functions of the seed. People are derived from ``(seed, person number)``
alone, so a duplicate lead can share an earlier lead's person without any shared state.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = [
    "CAMPAIGNS",
    "REPS",
    "Campaign",
    "Person",
    "Rep",
    "SimConfig",
    "lead_id",
    "person",
    "survivor_of",
    "touch_types",
]


@dataclass(frozen=True)
class Campaign:
    """A marketing campaign. ``quality`` scales how often its leads progress (1.0 = average)."""

    campaign_id: str
    channel: str
    weight: float = 1.0
    quality: float = 1.0


@dataclass(frozen=True)
class Rep:
    """A sales rep in a team; ``region`` decides which leads the router gives them."""

    rep_id: str
    team: str
    region: str


# Quality differs per channel so that attribution and campaign effectiveness show a story:
# referrals and events convert well, paid social brings volume of lower intent.
CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("cmp-search-brand", "paid_search", weight=3.0, quality=1.1),
    Campaign("cmp-linkedin-abm", "paid_social", weight=2.5, quality=0.75),
    Campaign("cmp-newsletter", "email", weight=2.0, quality=0.9),
    Campaign("cmp-webinar-pipeline", "webinar", weight=1.5, quality=1.2),
    Campaign("cmp-summit-booth", "events", weight=1.0, quality=1.3),
    Campaign("cmp-seo-blog", "organic", weight=2.5, quality=0.95),
    Campaign("cmp-partner-referral", "referral", weight=0.8, quality=1.5),
    Campaign("cmp-ebook-playbook", "content", weight=1.8, quality=0.85),
)

REPS: tuple[Rep, ...] = (
    Rep("rep-anna", "sdr-emea", "EMEA"),
    Rep("rep-lukas", "sdr-emea", "EMEA"),
    Rep("rep-sofia", "sdr-emea", "EMEA"),
    Rep("rep-pierre", "sdr-emea", "EMEA"),
    Rep("rep-james", "sdr-amer", "AMER"),
    Rep("rep-maria", "sdr-amer", "AMER"),
    Rep("rep-david", "sdr-amer", "AMER"),
    Rep("rep-emily", "sdr-amer", "AMER"),
)

#: channel -> (touch type of an engagement, touch type of the touch that creates the lead)
_TOUCH_TYPES: dict[str, tuple[str, str]] = {
    "paid_search": ("ad_click", "form_fill"),
    "paid_social": ("ad_click", "lead_form"),
    "email": ("email_click", "form_fill"),
    "webinar": ("webinar_attended", "webinar_registration"),
    "events": ("booth_visit", "badge_scan"),
    "organic": ("page_visit", "form_fill"),
    "referral": ("referral_click", "referral_form"),
    "content": ("content_view", "content_download"),
}


def touch_types(channel: str) -> tuple[str, str]:
    """(engagement, conversion) touch types of a channel; generic ones for custom channels."""
    return _TOUCH_TYPES.get(channel, ("engagement", "form_fill"))


@dataclass(frozen=True)
class SimConfig:
    """Knobs of the simulation. Campaigns and reps can be replaced for other demos."""

    seed: int = 7
    campaigns: tuple[Campaign, ...] = field(default=CAMPAIGNS)
    reps: tuple[Rep, ...] = field(default=REPS)
    #: share of MQLs whose first sales action comes more than an hour after MQL
    sla_miss_ratio: float = 0.18
    #: share of leads that repeat an earlier lead's person (same email, other casing)
    duplicate_ratio: float = 0.03
    #: lead ids are ``{lead_id_prefix}-{n:06d}``; vary it to run several demos into one store
    lead_id_prefix: str = "L"

    def __post_init__(self) -> None:
        if not self.campaigns:
            raise ValueError("SimConfig needs at least one campaign")
        if not self.reps:
            raise ValueError("SimConfig needs at least one rep")
        for name in ("sla_miss_ratio", "duplicate_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


def lead_id(cfg: SimConfig, lead_no: int) -> str:
    """The subject (and Kafka key) of lead number ``lead_no``, e.g. ``L-000123``."""
    return f"{cfg.lead_id_prefix}-{lead_no:06d}"


def survivor_of(cfg: SimConfig, lead_no: int) -> int | None:
    """The earlier, original lead that ``lead_no`` duplicates, or None for an original.

    A pure function of (seed, lead number): the journey of a duplicate and the journey of its
    original never need to see each other. Chains resolve to the original.
    """
    current, survivor = lead_no, None
    while True:
        rng = random.Random(f"{cfg.seed}-dup-{current}")
        if current <= 1 or rng.random() >= cfg.duplicate_ratio:
            return survivor
        current = rng.randint(max(1, current - 200), current - 1)
        survivor = current


_FIRST = (
    "anna",
    "ben",
    "chloe",
    "daniel",
    "elif",
    "farid",
    "greta",
    "hugo",
    "ines",
    "jonas",
    "kira",
    "liam",
    "mei",
    "nora",
    "omar",
    "paula",
    "quinn",
    "rosa",
    "sven",
    "tara",
)
_LAST = (
    "schmidt",
    "martin",
    "rossi",
    "novak",
    "jensen",
    "garcia",
    "smith",
    "kowalski",
    "dubois",
    "silva",
    "larsen",
    "fischer",
    "brown",
    "moreau",
    "costa",
    "berg",
)
_CO_A = (
    "Nordwind",
    "Bluepeak",
    "Ironleaf",
    "Sunmesa",
    "Quartz",
    "Redfern",
    "Silverline",
    "Oakridge",
    "Brightwave",
    "Harbor",
    "Granite",
    "Lumen",
)
_CO_B = (
    "Logistics",
    "Health",
    "Robotics",
    "Retail",
    "Analytics",
    "Energy",
    "Foods",
    "Systems",
    "Media",
    "Finance",
)
_COUNTRIES = {
    "EMEA": ("DE", "FR", "GB", "NL", "ES", "SE", "IT", "PL"),
    "AMER": ("US", "US", "US", "CA", "BR", "MX"),
}


@dataclass(frozen=True)
class Person:
    """Who a lead is. Emails use the reserved ``.example`` domain: never a real address."""

    email: str
    company: str
    country: str
    region: str


def person(cfg: SimConfig, person_no: int) -> Person:
    """The person with this number, the same for every call with the same seed."""
    rng = random.Random(f"{cfg.seed}-person-{person_no}")
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    company = f"{rng.choice(_CO_A)} {rng.choice(_CO_B)}"
    region = "EMEA" if rng.random() < 0.55 else "AMER"
    domain = company.lower().replace(" ", "-") + ".example"
    return Person(
        f"{first}.{last}{person_no}@{domain}", company, rng.choice(_COUNTRIES[region]), region
    )
