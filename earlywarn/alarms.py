"""Turn a rule's event into a domain :class:`AlarmEvent` with a plain message.

The rules engine knows only rule ids and numbers; here the registry adds who and where, so the
message reads like a duty officer would say it:
``罐区一 T101 液位 17.62 m，超过高高限 17.50 m（红色）``.
"""

from __future__ import annotations

from earlywarn.messages import Language, build_message
from earlywarn.model import AlarmEvent, Sensor
from earlywarn.registry import Registry
from rules.events import RuleEvent


def alarm_id(sensor: Sensor, rule_id: str, start_ms: int) -> str:
    """Stable for every event of one occurrence of the (sensor, rule) alarm."""
    return f"{sensor.uid}/{rule_id}@{start_ms}"


def to_alarm_event(
    registry: Registry, sensor: Sensor, event: RuleEvent, lang: Language = "zh"
) -> AlarmEvent:
    """Attach the registry's names and the message to a rule event."""
    enterprise = registry.enterprises[sensor.enterprise]
    site = registry.site(sensor.enterprise, sensor.site)
    site_name = site.name if site else sensor.site
    return AlarmEvent(
        alarm_id=alarm_id(sensor, event.rule_id, event.start_ms),
        sensor=sensor.uid,
        enterprise=sensor.enterprise,
        site=sensor.site,
        sensor_id=sensor.id,
        kind=sensor.kind,
        enterprise_name=enterprise.name,
        site_name=site_name,
        sensor_name=sensor.name,
        rule=event.rule_id,
        rule_kind=event.kind,
        change=event.change,
        level=event.level,
        previous=event.previous,
        value=event.value,
        setpoint=event.setpoint,
        setpoint_label=event.setpoint_label,
        unit=sensor.unit,
        ts_ms=event.ts_ms,
        start_ms=event.start_ms,
        message=build_message(site_name, sensor, event, lang),
        window_ms=event.window_ms,
        flapping=event.flapping,
    )
