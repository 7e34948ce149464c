"""A cheaper ``__init__`` for the frozen, slotted dataclasses built once or more per event.

A frozen dataclass's generated ``__init__`` sets each field through a global lookup of
``object.__setattr__``; that costs about a quarter of a microsecond per field, and the fold
builds a 13-field ``LeadView`` plus a few spans and facts for every event. This replacement
stores each argument through the field's slot descriptor instead (what ``object.__setattr__``
ends up calling), which is about twice as fast. Equality, hashing, ``repr``, immutability and
the constructor's signature (names, order, keywords) stay exactly the dataclass's own.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of a frozen, slotted dataclass whose fields all come from
    ``__init__`` with no defaults and which has no ``__post_init__``."""
    params = fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or any(
        not f.init or f.default is not MISSING or f.default_factory is not MISSING for f in params
    ):
        raise TypeError(f"{cls.__name__}: fast_init needs plain fields and no __post_init__")
    names = [f.name for f in params]
    scope: dict[str, Any] = {f"_set_{n}": getattr(cls, n).__set__ for n in names}
    body = "".join(f"    _set_{n}(self, {n})\n" for n in names) or "    pass\n"
    # Generated like dataclasses generates its own, so positional and keyword calls both work.
    exec(f"def __init__(self, {', '.join(names)}):\n{body}", scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 (mypy forbids assigning a method)
    return cls
