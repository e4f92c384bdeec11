"""Changing messages on their way out: marking drills and moving recordings to the present.

Both rewrite reading payloads (``…/up`` topics) and leave everything else, status messages
included, as it was. A payload that is not a JSON reading (a faulty device's garbage, which a
recording should keep) passes unchanged: a replay must reproduce bad input too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from simulators.messages import Message


def _is_reading(topic: str) -> bool:
    return topic.startswith("ew/v1/") and topic.endswith("/up")


def _rewrite(message: Message, change: Any) -> Message:
    if not _is_reading(message.topic):
        return message
    try:
        doc = json.loads(message.payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return message
    items = doc if isinstance(doc, list) else [doc]
    if not all(isinstance(item, dict) for item in items):
        return message
    for item in items:
        change(item)
    return replace(message, payload=json.dumps(doc, ensure_ascii=False).encode())


def mark_drill(message: Message) -> Message:
    """Add ``"drill": true`` to a reading (to every element of a back-fill)."""

    def mark(item: dict[str, Any]) -> None:
        item["drill"] = True

    return _rewrite(message, mark)


def _shift_ts(raw: Any, delta_ms: int) -> Any:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw + delta_ms
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            return raw
        if when.tzinfo is None:
            return raw  # invalid by the contract; keep it invalid rather than guess
        moved = when + timedelta(milliseconds=delta_ms)
        text = moved.isoformat(timespec="milliseconds" if moved.microsecond else "seconds")
        return text.replace("+00:00", "Z") if raw.endswith("Z") else text
    return raw


def shift(message: Message, delta_ms: int) -> Message:
    """Move a message and the timestamps in its payload by ``delta_ms``."""

    def move(item: dict[str, Any]) -> None:
        if "ts" in item:
            item["ts"] = _shift_ts(item["ts"], delta_ms)

    moved = _rewrite(message, move) if delta_ms else message
    return replace(moved, t_ms=message.t_ms + delta_ms)


def shift_to_now(first_ms: int, last_ms: int, now_ms: int, speed: float | None) -> int:
    """How far to move a run of ``first_ms … last_ms`` played from ``now_ms`` at ``speed``
    so that no timestamp is ever ahead of the real clock, and the run is as recent as it
    can be: it starts now at speed 1 (or slower), and ends at the moment its last message
    goes out when faster (earlier timestamps then lie in the recent past)."""
    if speed is None:  # all at once: the whole run lies in the past
        return now_ms - last_ms
    if speed <= 1.0:
        return now_ms - first_ms
    real_end = now_ms + round((last_ms - first_ms) / speed)
    return real_end - last_ms
