"""The peers' fold: current stage + time in stage, on a decoded JSON event.

Kept free of project imports so the quixstreams peer can load it from its own venv.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def fold_stage(state: list[Any] | None, event: dict[str, Any]) -> list[Any]:
    """``[current stage, entered at (epoch s), {stage: seconds spent}]`` after ``event``.

    JSON-serialisable on purpose, so quixstreams can keep it in RocksDB state. Every peer
    applies exactly this function to each decoded record.
    """
    data = event.get("data") or {}
    stage = data.get("to_stage") or data.get("stage")
    at = datetime.fromisoformat(event["time"]).timestamp()
    if state is None:
        return [stage, at, {}]
    if stage is not None and stage != state[0]:
        spent = state[2]
        spent[state[0]] = spent.get(state[0], 0.0) + (at - state[1])
        state[0], state[1] = stage, at
    return state
