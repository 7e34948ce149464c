"""Registry of payload models keyed by (type, version), with upcasters for old versions.

An upcaster turns the raw ``data`` dict of version N into version N+1 before validation, so
old events stay readable forever and the folds only ever see the current models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from events.catalog import CATALOG, EventData

RawData = dict[str, Any]
Upcaster = Callable[[RawData], RawData]


class UnknownType(LookupError):
    """No model is registered under this type name."""


class UnknownVersion(LookupError):
    """The type is known but this schema version is neither current nor upcastable."""


class Registry:
    """Maps (type, version) to a payload model, upcasting older versions step by step."""

    def __init__(
        self,
        models: Iterable[type[EventData]],
        upcasters: Mapping[tuple[str, int], Upcaster] | None = None,
    ) -> None:
        self._models: dict[str, type[EventData]] = {}
        for model in models:
            if model.TYPE in self._models:
                raise ValueError(f"two current models for {model.TYPE}")
            self._models[model.TYPE] = model
        self._upcasters = dict(upcasters or {})

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(sorted(self._models))

    def model(self, type_: str) -> type[EventData]:
        try:
            return self._models[type_]
        except KeyError:
            raise UnknownType(type_) from None

    def versions(self, type_: str) -> tuple[int, ...]:
        """Every version this registry can read for a type, oldest first."""
        current = self.model(type_).VERSION
        older = [v for (t, v) in self._upcasters if t == type_ and v < current]
        return (*sorted(older), current)

    def verbatim_versions(self, type_: str) -> tuple[int, ...]:
        """The readable versions whose raw data is already valid current data: the current
        one and those upcast only by ``unchanged`` steps (the codec validates them as is)."""
        out = []
        for version in self.versions(type_):
            step = version
            current = self.model(type_).VERSION
            while step < current and self._upcasters.get((type_, step)) is unchanged:
                step += 1
            if step == current:
                out.append(version)
        return tuple(out)

    def upcast(self, type_: str, version: int, data: RawData) -> RawData:
        """Raw data of ``version`` brought up to the current version of ``type_``."""
        current = self.model(type_).VERSION
        if version > current or version < 1:
            raise UnknownVersion(f"{type_} v{version}")
        while version < current:
            step = self._upcasters.get((type_, version))
            if step is None:
                raise UnknownVersion(f"{type_} v{version}")
            data = step(data)
            version += 1
        return data


def _stage_changed_v1_to_v2(data: RawData) -> RawData:
    # v1 named the stages "from" and "to"; v2 spells them out so they read well in SQL.
    upgraded = {k: v for k, v in data.items() if k not in ("from", "to")}
    if "from" in data:
        upgraded["from_stage"] = data["from"]
    if "to" in data:
        upgraded["to_stage"] = data["to"]
    return upgraded


def unchanged(data: RawData) -> RawData:
    """The upcaster of a version whose payload is a valid payload of the next version as it
    is (the next version only added optional fields). The registry recognises it, so such
    old versions can be validated without a rewrite (``Registry.verbatim_versions``)."""
    return data


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("lead.stage_changed", 1): _stage_changed_v1_to_v2,
    # v2 only adds the optional email_key; a v1 payload is a valid v2 payload without it.
    ("lead.created", 1): unchanged,
}

DEFAULT_REGISTRY = Registry(CATALOG, UPCASTERS)
