"""The SLA configuration: the packaged default, and the loader's checks against the funnel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from events.sla_config import StopRule, load_sla, parse_window

from .factories import FUNNEL

Config = dict[str, Any]


def default_config() -> Config:
    text = resources.files("events").joinpath("sla.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def load(tmp_path: Path, config: Config) -> None:
    path = tmp_path / "sla.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    load_sla(FUNNEL, path)


SLA = load_sla(FUNNEL)


def test_the_default_policies_are_the_ones_in_the_issue() -> None:
    p = SLA.policies
    assert (p["mql_first_touch"].limit, p["mql_first_touch"].warning) == (
        timedelta(hours=1),
        timedelta(minutes=15),
    )
    assert p["mql_first_touch"].stop is StopRule.FIRST_SALES_ACTION
    assert p["mql_first_touch"].clock == "business"
    assert (p["sal_decision"].stop, p["sal_decision"].limit) == (StopRule.DECISION, timedelta(1))
    stagnation = {n: (x.start_stage, x.limit.days) for n, x in p.items() if x.stop == "leave_stage"}
    assert stagnation == {
        "mql_stagnation": ("mql", 14),
        "sql_stagnation": ("sql", 7),
        "opportunity_stagnation": ("opportunity", 30),
    }
    assert (p["contact_attempts"].contacts, p["contact_attempts"].limit.days) == (2, 5)
    assert SLA.volume is not None
    assert SLA.volume.per_rep >= 1


def test_the_funnel_sla_placeholders_agree_with_the_sla_policies() -> None:
    # Dashboards still read the placeholders in events/funnel.yaml; they must not drift.
    for name, placeholder in FUNNEL.sla.items():
        policy = SLA.policies[name]
        assert (placeholder.start_stage, placeholder.limit, placeholder.warning) == (
            policy.start_stage,
            policy.limit,
            policy.warning,
        ), name


def test_business_hours_windows_are_parsed_with_24_00_as_the_end_of_the_day() -> None:
    assert parse_window("09:00-17:30") == (time(9), time(17, 30))
    assert parse_window("00:00-24:00") == (time(0), None)
    assert SLA.clocks["business"].weekly()[5] == ()


def test_team_labels_are_bounded_by_the_configured_teams() -> None:
    assert [SLA.team_label(t) for t in ("sdr-emea", "sdr-mars", None)] == [
        "sdr-emea",
        "other",
        "unassigned",
    ]


def _stage(c: Config) -> None:
    c["policies"]["sql_stagnation"]["start_stage"] = "sqll"


def _clock(c: Config) -> None:
    c["policies"]["mql_first_touch"]["clock"] = "nights"


def _volume(c: Config) -> None:
    c["volume"]["stage"] = "mqll"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_stage, "policies.sql_stagnation.start_stage: 'sqll'"),
        (_clock, "policies.mql_first_touch.clock: 'nights'"),
        (_volume, "volume.stage: 'mqll'"),
    ],
)
def test_unknown_stages_and_clocks_are_rejected_with_their_path(
    tmp_path: Path, edit: Callable[[Config], None], message: str
) -> None:
    config = default_config()
    edit(config)
    with pytest.raises(ValidationError, match=message):
        load(tmp_path, config)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("policies", "sal_decision", "warning"), "2d", "warning must be positive and shorter"),
        (("policies", "sal_decision", "limit"), "soon", "not a duration"),
        (("policies", "sal_decision", "stop"), "whenever", "first_sales_action"),
        (("policies", "contact_attempts", "contacts"), 0, "greater than or equal to 1"),
        (("clocks", "business", "timezone"), "Mars/Olympus", "not an IANA time zone"),
        (("clocks", "business", "hours", "mon"), ["17:00-09:00"], "must close after it opens"),
        (("clocks", "business", "hours", "tue"), ["9-5"], "not a window like"),
        (
            ("clocks", "business", "hours", "wed"),
            ["09:00-13:00", "12:00-17:00"],
            "must not overlap",
        ),
        (("clocks", "business", "hours"), {"mon": []}, "at least one opening window"),
        (
            ("policies", "mql_first_touch", "escalations"),
            [{"after": "4h", "to": "a"}, {"after": "1h", "to": "b"}],
            "strictly increasing",
        ),
        (("volume", "per_rep"), 0, "greater than or equal to 1"),
    ],
)
def test_malformed_values_are_rejected_with_a_reason(
    tmp_path: Path, path: tuple[str, ...], value: object, message: str
) -> None:
    config = default_config()
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError, match=message):
        load(tmp_path, config)


def test_the_built_in_24x7_clock_cannot_be_redefined(tmp_path: Path) -> None:
    config = default_config()
    config["clocks"]["24x7"] = config["clocks"]["business"]
    with pytest.raises(ValidationError, match="built in"):
        load(tmp_path, config)


def test_policy_names_must_be_plain_because_they_label_metrics(tmp_path: Path) -> None:
    config = default_config()
    config["policies"]["First Touch!"] = config["policies"].pop("mql_first_touch")
    with pytest.raises(ValidationError, match="policy names must match"):
        load(tmp_path, config)
