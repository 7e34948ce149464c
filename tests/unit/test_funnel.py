"""The funnel configuration: the default funnel, the loader's checks, and duration syntax."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from events.funnel import Team, load_funnel, parse_duration

from .factories import FUNNEL

Config = dict[str, Any]


def default_config() -> Config:
    text = resources.files("events").joinpath("funnel.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def write(tmp_path: Path, config: Config) -> Path:
    path = tmp_path / "funnel.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


# --- the default funnel -----------------------------------------------------------------


def test_the_default_funnel_is_the_one_in_the_design() -> None:
    assert FUNNEL.main_path == (
        "subscriber",
        "lead",
        "mql",
        "sal",
        "sql",
        "opportunity",
        "customer",
    )
    assert {"nurture", "recycled", "disqualified", "lost"} <= set(FUNNEL.stages)
    assert FUNNEL.handoff_stage == "mql"
    assert FUNNEL.team_of("mql") is Team.MARKETING
    assert FUNNEL.team_of("sal") is Team.SALES


def test_allows_follows_the_next_lists() -> None:
    assert FUNNEL.allows("mql", "sal")
    assert not FUNNEL.allows("sal", "mql")
    assert not FUNNEL.allows("customer", "lost")


def test_rank_is_the_main_path_position_and_minus_one_for_side_stages() -> None:
    assert [FUNNEL.rank(s) for s in ("subscriber", "mql", "customer")] == [0, 2, 6]
    assert FUNNEL.rank("nurture") == -1


def test_sla_durations_are_parsed_from_the_config() -> None:
    first_touch = FUNNEL.sla["mql_first_touch"]

    assert (first_touch.limit, first_touch.warning) == (timedelta(hours=1), timedelta(minutes=15))


def test_a_funnel_file_loads_from_a_path(tmp_path: Path) -> None:
    assert load_funnel(write(tmp_path, default_config())) == FUNNEL


# --- the loader's checks ----------------------------------------------------------------


def _set_main_path(c: Config) -> None:
    c["main_path"][2] = "mqll"


def _set_next(c: Config) -> None:
    c["stages"]["lead"]["next"].append("mqll")


def _set_initial(c: Config) -> None:
    c["initial_stages"] = ["mqll"]


def _set_handoff(c: Config) -> None:
    c["handoff_stage"] = "mqll"


def _set_sla(c: Config) -> None:
    c["sla"]["mql_first_touch"]["start_stage"] = "mqll"


def _set_disqualified(c: Config) -> None:
    c["disqualified_stage"] = "mqll"


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (_set_main_path, "main_path"),
        (_set_next, "stages.lead.next"),
        (_set_initial, "initial_stages"),
        (_set_handoff, "handoff_stage"),
        (_set_sla, "sla.mql_first_touch.start_stage"),
        (_set_disqualified, "disqualified_stage"),
    ],
)
def test_an_unknown_stage_name_is_rejected_with_its_path(
    tmp_path: Path, edit: Callable[[Config], None], path: str
) -> None:
    config = default_config()
    edit(config)

    with pytest.raises(ValidationError, match=f"{path}: 'mqll'"):
        load_funnel(write(tmp_path, config))


def test_every_unknown_stage_name_is_listed_at_once(tmp_path: Path) -> None:
    config = default_config()
    _set_main_path(config)
    _set_next(config)

    with pytest.raises(ValidationError) as info:
        load_funnel(write(tmp_path, config))

    assert "main_path: 'mqll'" in str(info.value)
    assert "stages.lead.next: 'mqll'" in str(info.value)


def test_a_handoff_stage_owned_by_sales_is_rejected(tmp_path: Path) -> None:
    config = default_config()
    config["handoff_stage"] = "sal"

    with pytest.raises(ValidationError, match="handoff_stage must be owned by marketing"):
        load_funnel(write(tmp_path, config))


def test_an_unknown_team_is_rejected(tmp_path: Path) -> None:
    config = default_config()
    config["stages"]["mql"]["team"] = "finance"

    with pytest.raises(ValidationError, match=r"stages\.mql\.team"):
        load_funnel(write(tmp_path, config))


def test_an_unknown_key_is_rejected(tmp_path: Path) -> None:
    config = default_config()
    config["stages"]["mql"]["nxt"] = ["sal"]

    with pytest.raises(ValidationError, match=r"stages\.mql\.nxt"):
        load_funnel(write(tmp_path, config))


def test_an_sla_warning_must_come_before_its_limit(tmp_path: Path) -> None:
    config = default_config()
    config["sla"]["mql_first_touch"]["warning"] = "2h"

    with pytest.raises(ValidationError, match="warning must be positive and shorter than limit"):
        load_funnel(write(tmp_path, config))


def test_a_funnel_without_disqualification_reasons_is_rejected(tmp_path: Path) -> None:
    config = default_config()
    config["disqualification_reasons"] = []

    with pytest.raises(ValidationError, match="disqualification_reasons"):
        load_funnel(write(tmp_path, config))


# --- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("1.5h", timedelta(minutes=90)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(days=14)),
        (" 24h ", timedelta(hours=24)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration_reads_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "15", "h", "1y", "-1h", "1 h", "1h30m", "1.h", "one hour"])
def test_parse_duration_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
