"""``asyncio.run`` for commands whose coroutine returns a value, without that value's repr.

``asyncio.run`` on Python 3.11 (3.11.7 here) restores its SIGINT handler on the way out with
``signal.signal``, which formats the handler it replaces: a partial holding the main task,
and so the repr of the task's result (CPython issue 112559). For ``leadledger replay`` that
result is the whole folded state; measured at 200,000 events, its repr took 14 s of CPU after
an 11 s fold, growing with the history, and the string it built. Here the coroutine's value
travels outside the task, whose own result is None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, returning its value without it ever being formatted."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    asyncio.run(main())
    return box[0]
