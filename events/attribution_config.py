"""Attribution model definitions: named, versioned, validated on load.

Models are configuration, not code (DESIGN.md section 1). Each definition has a ``name``, a
``version`` and a ``kind``:

- ``positional``: ``weights`` over the milestone positions ``first``, ``lead_creation``,
  ``opportunity_creation``, ``closed_won`` and ``rest`` (the touches holding none of the
  milestones the model weights). Weights are exact decimals that must sum to exactly 1.
- ``linear``: equal shares over every counted touch.
- ``time_decay``: weight ``2^(-dt/half_life)`` by the time ``dt`` before the conversion,
  normalized.

A file may hold several versions of one model, so a changed model can be replayed next to the
live one before it replaces it; every attribution result names the name and version it used.
``events`` is the contract layer, so this module knows nothing about how weights are applied:
that is ``projections.attribution``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.funnel import parse_duration

#: The weight keys of a positional model, in milestone order; ``rest`` is the remainder.
WeightKey = Literal["first", "lead_creation", "opportunity_creation", "closed_won", "rest"]
WEIGHT_KEYS: Final[tuple[WeightKey, ...]] = (
    "first",
    "lead_creation",
    "opportunity_creation",
    "closed_won",
    "rest",
)
DEFAULT_HALF_LIFE: Final = timedelta(days=7)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64, description="canonical lower_snake name")
    version: int = Field(ge=1, le=10_000)
    aliases: tuple[str, ...] = Field(default=(), description="short names, e.g. W for reports")
    description: str | None = Field(default=None, max_length=512)

    @field_validator("name")
    @classmethod
    def _snake(cls, value: str) -> str:
        if _NAME.match(value) is None:
            raise ValueError(f"{value!r} must be lower_snake_case, e.g. w_shaped")
        return value

    @property
    def label(self) -> str:
        """``name@vN``: how reports name the model they used."""
        return f"{self.name}@v{self.version}"


class PositionalModel(_Model):
    """Fixed weights per milestone position plus a share for the rest (U, W, J, full path...)."""

    kind: Literal["positional"] = "positional"
    weights: dict[WeightKey, Decimal]

    @field_validator("weights")
    @classmethod
    def _exact_and_complete(cls, weights: dict[WeightKey, Decimal]) -> dict[WeightKey, Decimal]:
        negative = [key for key, weight in weights.items() if not weight >= 0]
        if negative:
            raise ValueError(f"weights must be >= 0: {', '.join(negative)}")
        total = sum(weights.values(), Decimal(0))
        # Exact Decimal comparison: 0.225 * 4 + 0.1 is 1, but a typo like 0.255 is caught.
        if total != 1:
            raise ValueError(f"weights must sum to exactly 1, not {total}")
        # Fixed key order keeps the model's repr and equality independent of the YAML order.
        return {key: weights[key] for key in WEIGHT_KEYS if key in weights}

    def weight(self, key: WeightKey) -> Decimal:
        """The configured weight of a position; 0 when the model does not name it."""
        return self.weights.get(key, Decimal(0))


class LinearModel(_Model):
    """Equal shares over every counted touch."""

    kind: Literal["linear"] = "linear"


class TimeDecayModel(_Model):
    """Weight ``2^(-dt/half_life)`` by the time before the conversion, normalized."""

    kind: Literal["time_decay"] = "time_decay"
    half_life: timedelta = DEFAULT_HALF_LIFE

    @field_validator("half_life", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("half_life")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("half_life must be positive")
        return value


#: One model definition, discriminated by ``kind``.
ModelConfig = Annotated[PositionalModel | LinearModel | TimeDecayModel, Field(discriminator="kind")]


class AttributionConfig(BaseModel):
    """Every model definition of one file. Look models up with ``model(name_or_alias)``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[ModelConfig, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> AttributionConfig:
        seen: set[tuple[str, int]] = set()
        owner: dict[str, str] = {}
        for model in self.models:
            if (model.name, model.version) in seen:
                raise ValueError(f"{model.label} is defined twice")
            seen.add((model.name, model.version))
            # An alias may be shared by versions of one model, never by two models.
            for handle in (model.name, *model.aliases):
                if owner.setdefault(handle.casefold(), model.name) != model.name:
                    raise ValueError(
                        f"{handle!r} names both {owner[handle.casefold()]} and {model.name}"
                    )
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """Model names in file order, each once."""
        return tuple(dict.fromkeys(model.name for model in self.models))

    def model(self, name: str, version: int | None = None) -> ModelConfig:
        """The model called ``name`` (or an alias of any of its versions, case-insensitively) at
        ``version``, or at its highest version when ``version`` is None. KeyError names the
        known models."""
        handle = name.strip().casefold()
        # An alias names the model, not one version: "W" follows w_shaped to its newest.
        named = {
            model.name
            for model in self.models
            if handle in {h.casefold() for h in (model.name, *model.aliases)}
        }
        matches = [
            model
            for model in self.models
            if model.name in named and (version is None or model.version == version)
        ]
        if not matches:
            wanted = name if version is None else f"{name}@v{version}"
            raise KeyError(f"no attribution model {wanted!r}; known: {', '.join(self.names)}")
        return max(matches, key=lambda model: model.version)


def load_attribution(path: Path | None = None) -> AttributionConfig:
    """Load a model file, or the packaged ``events/attribution.yaml`` when ``path`` is None."""
    if path is None:
        resource = resources.files("events").joinpath("attribution.yaml")
        text = resource.read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return AttributionConfig.model_validate(yaml.safe_load(text))
