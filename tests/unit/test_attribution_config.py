"""The attribution model file: the packaged models, the loader's checks, and lookups."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from events.attribution_config import (
    LinearModel,
    PositionalModel,
    TimeDecayModel,
    load_attribution,
)

Config = dict[str, Any]


def packaged() -> Config:
    text = resources.files("events").joinpath("attribution.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text)
    assert isinstance(config, dict)
    return config


def write(tmp_path: Path, config: Config) -> Path:
    path = tmp_path / "attribution.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def positional(name: str, version: int = 1, **weights: str) -> Config:
    return {"name": name, "version": version, "kind": "positional", "weights": weights}


D = Decimal


def test_the_packaged_models_are_the_ones_in_the_design_and_the_issue() -> None:
    config = load_attribution()
    weights = {m.name: m.weights for m in config.models if isinstance(m, PositionalModel)}
    assert weights == {
        "first_touch": {"first": D(1)},
        "last_touch": {"closed_won": D(1)},
        "u_shaped": {"first": D("0.4"), "lead_creation": D("0.4"), "rest": D("0.2")},
        "w_shaped": {
            "first": D("0.3"),
            "lead_creation": D("0.3"),
            "opportunity_creation": D("0.3"),
            "rest": D("0.1"),
        },
        "full_path": {
            "first": D("0.225"),
            "lead_creation": D("0.225"),
            "opportunity_creation": D("0.225"),
            "closed_won": D("0.225"),
            "rest": D("0.1"),
        },
        "j_shaped": {"first": D("0.2"), "closed_won": D("0.6"), "rest": D("0.2")},
        "inverse_j": {"first": D("0.6"), "closed_won": D("0.2"), "rest": D("0.2")},
    }
    assert isinstance(config.model("linear"), LinearModel)
    decay = config.model("time_decay")
    assert isinstance(decay, TimeDecayModel)
    assert decay.half_life == timedelta(days=7)
    assert all(model.version == 1 for model in config.models)


def test_yaml_numbers_are_read_as_exact_decimals_not_binary_floats() -> None:
    full = load_attribution().model("full_path")
    assert isinstance(full, PositionalModel)
    assert full.weight("first") == D("0.225")
    assert full.weight("first") * 4 + full.weight("rest") == 1


def test_models_are_found_by_name_or_alias_in_any_case() -> None:
    config = load_attribution()
    assert config.model("W").name == "w_shaped"
    assert config.model("w").name == "w_shaped"
    assert config.model(" U ").name == "u_shaped"
    assert config.model("first").name == "first_touch"
    assert config.model("IJ").label == "inverse_j@v1"


def test_an_unknown_model_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: first_touch, last_touch"):
        load_attribution().model("v_shaped")


def test_without_a_version_the_highest_version_is_used(tmp_path: Path) -> None:
    config = packaged()
    config["models"].append(
        positional(
            "w_shaped",
            2,
            first="0.25",
            lead_creation="0.25",
            opportunity_creation="0.25",
            rest="0.25",
        )
    )
    loaded = load_attribution(write(tmp_path, config))
    assert loaded.model("W").version == 2
    assert loaded.model("W", version=1).version == 1
    assert loaded.names.count("w_shaped") == 1
    with pytest.raises(KeyError, match="w_shaped@v3"):
        loaded.model("w_shaped", version=3)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (positional("bad", first="0.5", rest="0.4"), "sum to exactly 1, not 0.9"),
        (positional("bad", first="0.255", rest="0.745", lead_creation="0.01"), "not 1.010"),
        (positional("bad", first="1.5", rest="-0.5"), "weights must be >= 0: rest"),
        (positional("bad", first="1", middle="0"), "weights.middle"),
        (positional("bad", first="NaN"), "finite"),
        (positional("Bad", first="1"), "lower_snake_case"),
        ({"name": "bad", "version": 1, "kind": "time_decay", "half_life": "0s"}, "positive"),
        ({"name": "bad", "version": 1, "kind": "time_decay", "half_life": "7x"}, "duration"),
        ({"name": "bad", "version": 1, "kind": "markov"}, "kind"),
        ({"name": "bad", "version": 0, "kind": "linear"}, "version"),
    ],
)
def test_a_bad_model_definition_fails_on_load_naming_the_problem(
    tmp_path: Path, model: Config, message: str
) -> None:
    config = packaged()
    config["models"].append(model)
    with pytest.raises(ValidationError, match=message):
        load_attribution(write(tmp_path, config))


def test_a_model_version_defined_twice_fails_on_load(tmp_path: Path) -> None:
    config = packaged()
    config["models"].append({"name": "linear", "version": 1, "kind": "linear"})
    with pytest.raises(ValidationError, match="linear@v1 is defined twice"):
        load_attribution(write(tmp_path, config))


def test_an_alias_naming_two_models_fails_on_load(tmp_path: Path) -> None:
    config = packaged()
    config["models"].append({"name": "my_linear", "version": 1, "kind": "linear", "aliases": ["w"]})
    with pytest.raises(ValidationError, match="'w' names both w_shaped and my_linear"):
        load_attribution(write(tmp_path, config))


def test_an_empty_model_file_fails_on_load(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="models"):
        load_attribution(write(tmp_path, {"models": []}))
