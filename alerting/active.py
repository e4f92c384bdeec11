"""The active alarms of every sensor, and the retained state published for each sensor.

A sensor has one alarm per rule, but its ``…/alarm`` topic holds one retained message, so the
message carries the sensor's highest active level and all of its active alarms; a local siren
only needs ``level``.
"""

from __future__ import annotations

import json
from typing import Any

from alerting.codec import event_to_dict, finite
from earlywarn.model import AlarmEvent


class ActiveAlarms:
    """Tracks which alarms are active, by sensor and rule."""

    def __init__(self) -> None:
        self._by_sensor: dict[str, dict[str, AlarmEvent]] = {}
        self.raised_total = 0

    def apply(self, event: AlarmEvent) -> None:
        """Record an event: active events replace the rule's entry; a clear removes it."""
        rules = self._by_sensor.setdefault(event.sensor, {})
        if event.level is None:
            rules.pop(event.rule, None)
            if not rules:
                del self._by_sensor[event.sensor]
        else:
            rules[event.rule] = event

    def of_sensor(self, sensor: str) -> list[AlarmEvent]:
        """Active alarms of one sensor, highest level first."""
        alarms = list(self._by_sensor.get(sensor, {}).values())
        return sorted(alarms, key=lambda e: (-(e.level or 0), e.rule))

    def all(self) -> list[AlarmEvent]:
        """Every active alarm, highest level first."""
        return sorted(
            (e for rules in self._by_sensor.values() for e in rules.values()),
            key=lambda e: (-(e.level or 0), e.sensor, e.rule),
        )

    def retained_payload(self, event: AlarmEvent) -> bytes:
        """The retained ``…/alarm`` message for the sensor of ``event``, after applying it."""
        active = self.of_sensor(event.sensor)
        doc: dict[str, Any] = {
            "sensor": event.sensor,
            "level": active[0].level.label if active and active[0].level else None,
            "active": [
                {
                    "alarm_id": a.alarm_id,
                    "rule": a.rule,
                    "level": a.level.label if a.level else None,
                    "value": finite(a.value),
                    "setpoint": finite(a.setpoint),
                    "start_ms": a.start_ms,
                    "message": a.message,
                }
                | ({"drill": True} if a.drill else {})
                for a in active
            ],
            "event": event_to_dict(event),
        }
        return json.dumps(doc, ensure_ascii=False, allow_nan=False).encode("utf-8")
