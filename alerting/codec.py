"""Alarm events as JSON: the payload of ``…/alarm`` topics, logs and Kafka's ``ew.alarms``."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from earlywarn.model import AlarmEvent, Change, Level


def iso_ms(ts_ms: int) -> str:
    """Epoch ms as ISO-8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat(timespec="milliseconds")


def finite(value: float) -> float | None:
    """``None`` for NaN and infinities, which JSON cannot carry (an out-of-range event may
    report the invalid reading that raised it)."""
    return value if math.isfinite(value) else None


def event_to_dict(event: AlarmEvent) -> dict[str, Any]:
    """Plain dict of an event with levels as lower-case names."""
    out = {
        "alarm_id": event.alarm_id,
        "sensor": event.sensor,
        "enterprise": event.enterprise,
        "site": event.site,
        "sensor_id": event.sensor_id,
        "kind": event.kind,
        "rule": event.rule,
        "rule_kind": event.rule_kind,
        "change": event.change.value,
        "level": event.level.label if event.level else None,
        "previous": event.previous.label if event.previous else None,
        "state": "active" if event.level else "cleared",
        "value": finite(event.value),
        "setpoint": finite(event.setpoint),
        "setpoint_label": event.setpoint_label,
        "unit": event.unit,
        "ts": iso_ms(event.ts_ms),
        "ts_ms": event.ts_ms,
        "start_ms": event.start_ms,
        "window_ms": event.window_ms,
        "message": event.message,
        "flapping": event.flapping,
    }
    if event.drill:
        out["drill"] = True  # only on drill events: the payload of real ones is unchanged
    return out


_REQUIRED_STR = (
    "alarm_id",
    "sensor",
    "enterprise",
    "site",
    "sensor_id",
    "kind",
    "rule",
    "rule_kind",
    "setpoint_label",
    "unit",
    "message",
)
_NAMES = ("enterprise_name", "site_name", "sensor_name")


def event_from_dict(data: object) -> AlarmEvent:
    """The event of :func:`event_to_dict`'s dict plus ``enterprise_name``, ``site_name`` and
    ``sensor_name`` (which it leaves out: a siren needs no names, a consumer that notifies
    people does).

    The exact inverse for finite numbers and NaN (written ``null``, read back as NaN); ``ts``
    and ``state`` are derived from ``ts_ms`` and ``level`` and not read. Raises
    :class:`ValueError` naming the field when one is missing or of the wrong type, because the
    dict comes from another process (a Kafka record) and a bad one must be reported, not
    half-applied.
    """
    if not isinstance(data, dict):
        msg = f"an alarm event must be a JSON object, got {type(data).__name__}"
        raise ValueError(msg)
    strings = {name: _text(data, name) for name in (*_REQUIRED_STR, *_NAMES)}
    change_text = _text(data, "change")
    try:
        change = Change(change_text)
    except ValueError:
        choices = ", ".join(c.value for c in Change)
        msg = f"'change' must be one of {choices}, got {change_text!r}"
        raise ValueError(msg) from None
    window_ms = data.get("window_ms")
    if window_ms is not None:
        window_ms = _integer(data, "window_ms")
    return AlarmEvent(
        change=change,
        level=_level(data, "level"),
        previous=_level(data, "previous"),
        value=_number(data, "value"),
        setpoint=_number(data, "setpoint"),
        ts_ms=_integer(data, "ts_ms"),
        start_ms=_integer(data, "start_ms"),
        window_ms=window_ms,
        flapping=_flag(data, "flapping"),
        drill=_flag(data, "drill"),
        **strings,
    )


def _field(data: dict[Any, Any], name: str) -> object:
    if name not in data:
        msg = f"the alarm event has no {name!r}"
        raise ValueError(msg)
    return data[name]


def _text(data: dict[Any, Any], name: str) -> str:
    value = _field(data, name)
    if not isinstance(value, str):
        msg = f"{name!r} must be a string, got {value!r}"
        raise ValueError(msg)
    return value


def _integer(data: dict[Any, Any], name: str) -> int:
    value = _field(data, name)
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{name!r} must be an integer, got {value!r}"
        raise ValueError(msg)
    return value


def _number(data: dict[Any, Any], name: str) -> float:
    value = _field(data, name)
    if value is None:
        return math.nan  # event_to_dict writes a non-finite value as null
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{name!r} must be a number or null, got {value!r}"
        raise ValueError(msg)
    return float(value)


def _flag(data: dict[Any, Any], name: str) -> bool:
    value = data.get(name, False)  # absent on older events and on real (non-drill) ones
    if not isinstance(value, bool):
        msg = f"{name!r} must be true or false, got {value!r}"
        raise ValueError(msg)
    return value


def _level(data: dict[Any, Any], name: str) -> Level | None:
    value = _field(data, name)
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"{name!r} must be a level name or null, got {value!r}"
        raise ValueError(msg)
    levels = {level.label: level for level in Level}
    if value not in levels:
        msg = f"{name!r} must be one of {', '.join(levels)} or null, got {value!r}"
        raise ValueError(msg)
    return levels[value]
