"""Alarm events as JSON: the payload of ``…/alarm`` topics, logs and (later) Kafka."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from earlywarn.model import AlarmEvent


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
