"""``services.run_async.run``: a command's coroutine value comes back untouched, never formatted."""

from __future__ import annotations

import pytest

from services.run_async import run


class Unprintable:
    """Stands for a replay's folded state: formatting it is what must not happen."""

    reprs = 0

    def __repr__(self) -> str:
        Unprintable.reprs += 1
        return "<unprintable>"


async def make() -> Unprintable:
    return Unprintable()


async def fail() -> None:
    raise LookupError("no such schema")


def test_the_value_of_the_coroutine_is_returned_without_its_repr_being_taken() -> None:
    Unprintable.reprs = 0
    value = run(make())
    assert isinstance(value, Unprintable)
    assert Unprintable.reprs == 0


def test_an_exception_of_the_coroutine_reaches_the_caller_as_raised() -> None:
    with pytest.raises(LookupError, match="no such schema"):
        run(fail())
