"""Formatting shared by the command-line tables."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """``5d 3h``, ``2h 10m``, ``45m``, ``30s``; ``-`` for None."""
    if seconds is None:
        return "-"
    sign, s = ("-" if seconds < 0 else ""), int(abs(seconds))
    d, rest = divmod(s, 86400)
    h, rest = divmod(rest, 3600)
    m, sec = divmod(rest, 60)
    if d:
        return f"{sign}{d}d {h}h"
    if h:
        return f"{sign}{h}h {m}m"
    return f"{sign}{m}m" if m else f"{sign}{sec}s"
