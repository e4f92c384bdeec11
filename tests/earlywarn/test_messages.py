"""Every rule kind's event reads as a sentence, in Chinese and in English, rising and falling."""

from __future__ import annotations

import json
import math

import pytest

from alerting.active import ActiveAlarms
from earlywarn.alarms import to_alarm_event
from earlywarn.messages import LANGUAGES, Language
from earlywarn.registry import Registry
from rules.events import Change, RuleEvent
from rules.levels import Level

SENSOR = "qingjiang-water/h1/WL-H1"
KINDS = (
    "threshold",
    "rate",
    "projection",
    "accumulation",
    "offline",
    "stuck",
    "out_of_range",
    "spike",
)


def event(
    kind: str, change: Change, level: Level | None, previous: Level | None, value: float = 103.62
) -> RuleEvent:
    return RuleEvent(
        rule_id=kind,
        direction="high",
        change=change,
        level=level,
        previous=previous,
        value=value,
        setpoint=103.5,
        setpoint_label="警戒水位",
        ts_ms=1_795_284_000_000,
        start_ms=1_795_283_000_000,
        kind=kind,
        window_ms=3_600_000,
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_each_kind_says_where_and_the_level(registry: Registry, kind: str, lang: Language) -> None:
    sensor = registry.sensors[SENSOR]
    raised = to_alarm_event(registry, sensor, event(kind, Change.RAISED, Level.ORANGE, None), lang)
    lower = to_alarm_event(
        registry, sensor, event(kind, Change.LEVEL_CHANGED, Level.YELLOW, Level.ORANGE), lang
    )
    cleared = to_alarm_event(
        registry, sensor, event(kind, Change.CLEARED, None, Level.YELLOW), lang
    )
    site = registry.site(sensor.enterprise, sensor.site)
    assert site is not None
    for e in (raised, lower, cleared):
        assert e.message.startswith(f"{site.name} {sensor.name}")
        assert e.window_ms == 3_600_000 and e.rule_kind == kind
    assert (Level.ORANGE.zh if lang == "zh" else "orange") in raised.message
    if kind != "offline":
        assert (Level.YELLOW.zh if lang == "zh" else "yellow") in lower.message
    assert raised.message != cleared.message


def test_a_nan_reading_is_published_as_null_json(registry: Registry) -> None:
    sensor = registry.sensors[SENSOR]
    e = to_alarm_event(
        registry, sensor, event("out_of_range", Change.RAISED, Level.YELLOW, None, math.nan)
    )
    active = ActiveAlarms()
    active.apply(e)
    doc = json.loads(active.retained_payload(e))
    assert doc["event"]["value"] is None and doc["active"][0]["value"] is None
    assert "无效值" in e.message
