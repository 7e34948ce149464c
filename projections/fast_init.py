"""A cheaper ``__init__`` for the frozen, slotted dataclasses built once or more per event.

A frozen dataclass's generated ``__init__`` sets each field through a global lookup of
``object.__setattr__``; that costs about a quarter of a microsecond per field, and the fold
builds a 13-field ``LeadView`` plus a few spans and facts for every event. This replacement
stores each argument through the field's slot descriptor instead (what ``object.__setattr__``
ends up calling), which is about twice as fast. Equality, hashing, ``repr``, immutability and
the constructor's signature (names, order, keywords) stay exactly the dataclass's own.

``fast_new(cls)`` goes further for the fold's hot paths: a separate constructor that builds
the instance through a plain twin class with the same slots (plain, specialised attribute
stores) and then gives it its real class, another two to four times faster. The class and its
own constructor are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


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


def fast_new(cls: Callable[P, T]) -> Callable[P, T]:
    """A constructor of ``cls`` (a frozen, slotted dataclass ``fast_init`` accepts) for the
    fold's hot paths: same arguments, and the instance it returns equals, hashes and behaves
    as what ``cls(...)`` returns (it is one), about twice as fast again, more for wide classes
    such as ``LeadView``. ``cls`` itself is left alone: its constructor, copy and pickle are
    unchanged."""
    target: Any = cls
    params = fields(target)
    if hasattr(target, "__post_init__") or any(
        not f.init or f.default is not MISSING or f.default_factory is not MISSING for f in params
    ):
        raise TypeError(f"{target.__name__}: fast_new needs plain fields and no __post_init__")
    built: Callable[P, T] = slot_builder(target)
    return built


def slot_builder(cls: type[T]) -> Callable[..., T]:
    """A function taking every field of the frozen, slotted dataclass ``cls`` positionally, in
    field order, ``init=False`` ones included, and returning the instance without running
    ``__init__`` or ``__post_init__``: the caller supplies derived fields itself.

    It fills an instance of a plain twin class with the very same slots (plain attribute
    stores, which the interpreter specialises, instead of one descriptor call per field, since
    a frozen class forbids plain stores) and then gives it its real class. CPython allows that
    only between classes of identical layout and checks it, so a class whose layout differs
    fails here, at import, not later.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    slots = tuple(getattr(cls, "__slots__", ()))
    if slots != tuple(names):
        raise TypeError(f"{cls.__name__}: needs exactly one slot per field, in field order")
    twin = type(f"_{cls.__name__}Build", (), {"__slots__": slots, "__module__": __name__})
    scope: dict[str, Any] = {"_new": object.__new__, "_twin": twin, "_cls": cls}
    body = "".join(f"    self.{n} = {n}\n" for n in names)
    exec(
        f"def build({', '.join(names)}):\n"
        "    self = _new(_twin)\n"
        f"{body}"
        "    self.__class__ = _cls\n"
        "    return self\n",
        scope,
    )
    build: Callable[..., T] = scope["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    # Proof at import that the layouts match (the class assignment raises otherwise).
    if type(build(*([None] * len(names)))) is not cls:
        raise TypeError(f"{cls.__name__}: could not be built from its twin")
    return build
