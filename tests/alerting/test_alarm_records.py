"""The records of ``ew.alarms``: an event survives the trip through Kafka unchanged, and a bad
record is refused with a message that says what is wrong."""

from __future__ import annotations

import json
import math
from dataclasses import fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.alarm_records import ALARMS_TOPIC, alarm_from_value, alarm_key, alarm_value
from earlywarn.model import AlarmEvent, Change, Level

_text = st.text(max_size=40)
_levels = st.none() | st.sampled_from(list(Level))
_numbers = st.floats(allow_infinity=False) | st.integers(-(2**53), 2**53).map(float)
_ms = st.integers(0, 2**53)
_ts_ms = st.integers(0, 253_402_300_799_999)  # ``ts`` is written as ISO-8601: years < 10000

events = st.builds(
    AlarmEvent,
    alarm_id=_text,
    sensor=_text,
    enterprise=_text,
    site=_text,
    sensor_id=_text,
    kind=_text,
    enterprise_name=_text,
    site_name=_text,
    sensor_name=_text,
    rule=_text,
    rule_kind=_text,
    change=st.sampled_from(list(Change)),
    level=_levels,
    previous=_levels,
    value=_numbers,
    setpoint=_numbers,
    setpoint_label=_text,
    unit=_text,
    ts_ms=_ts_ms,
    start_ms=_ms,
    message=_text,
    window_ms=st.none() | _ms,
    flapping=st.booleans(),
    drill=st.booleans(),
)


def same(a: AlarmEvent, b: AlarmEvent) -> bool:
    """Field-by-field equality where NaN equals NaN (dataclass ``==`` says NaN != NaN)."""
    for f in fields(AlarmEvent):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or type(x) is not type(y):
            return False
    return True


def sample() -> AlarmEvent:
    return AlarmEvent(
        alarm_id="huaxin-chem/tank-farm-1/T101-LT/tank_level_high@1795284000000",
        sensor="huaxin-chem/tank-farm-1/T101-LT",
        enterprise="huaxin-chem",
        site="tank-farm-1",
        sensor_id="T101-LT",
        kind="tank_level",
        enterprise_name="华信化工",
        site_name="罐区一",
        sensor_name="T101甲醇储罐液位",
        rule="tank_level_high",
        rule_kind="threshold",
        change=Change.LEVEL_CHANGED,
        level=Level.RED,
        previous=Level.ORANGE,
        value=17.62,
        setpoint=17.5,
        setpoint_label="高高限",
        unit="m",
        ts_ms=1795284000000,
        start_ms=1795283990000,
        message="罐区一 T101甲醇储罐液位 17.62 m，超过高高限 17.50 m（红色）",
    )


@given(events)
def test_round_trip(event: AlarmEvent) -> None:
    back = alarm_from_value(alarm_value(event))
    assert same(back, event), (back, event)
    assert alarm_key(event) == event.alarm_id.encode("utf-8")


@given(events)
def test_same_event_same_bytes(event: AlarmEvent) -> None:
    """Sorted keys: a duplicate record is byte-identical to the first."""
    assert alarm_value(event) == alarm_value(replace(event))


def test_value_is_compact_sorted_utf8_json() -> None:
    value = alarm_value(sample())
    text = value.decode("utf-8")
    assert "罐区一" in text  # ensure_ascii=False: Chinese as UTF-8, not \\u escapes
    assert ", " not in text.split('"message"')[0]
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["enterprise_name"] == "华信化工"
    assert data["level"] == "red"
    assert data["previous"] == "orange"
    assert data["state"] == "active"
    assert "drill" not in data
    assert ALARMS_TOPIC == "ew.alarms"


def test_nan_value_is_null_and_back() -> None:
    event = replace(sample(), value=math.nan, change=Change.RAISED, previous=None)
    data = json.loads(alarm_value(event))
    assert data["value"] is None
    assert math.isnan(alarm_from_value(alarm_value(event)).value)


def test_cleared_and_drill() -> None:
    event = replace(
        sample(), change=Change.CLEARED, level=None, drill=True, flapping=True, window_ms=60_000
    )
    back = alarm_from_value(alarm_value(event))
    assert back == event


def _mutated(**changes: object) -> bytes:
    data = json.loads(alarm_value(sample()))
    for key, value in changes.items():
        if value is _MISSING:
            del data[key]
        else:
            data[key] = value
    return json.dumps(data).encode()


_MISSING = object()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (b"null", "must be a JSON object"),
        (_mutated(alarm_id=_MISSING), "has no 'alarm_id'"),
        (_mutated(sensor_name=_MISSING), "has no 'sensor_name'"),
        (_mutated(alarm_id=7), "'alarm_id' must be a string, got 7"),
        (_mutated(change="opened"), "'change' must be one of raised, level_changed, cleared"),
        (_mutated(level="purple"), "'level' must be one of blue, yellow, orange, red or null"),
        (_mutated(previous=3), "'previous' must be a level name or null"),
        (_mutated(value="17.6"), "'value' must be a number or null"),
        (_mutated(value=True), "'value' must be a number or null"),
        (_mutated(ts_ms=1.5), "'ts_ms' must be an integer"),
        (_mutated(start_ms=_MISSING), "has no 'start_ms'"),
        (_mutated(window_ms="1m"), "'window_ms' must be an integer"),
        (_mutated(flapping="yes"), "'flapping' must be true or false"),
        (_mutated(drill=1), "'drill' must be true or false"),
    ],
)
def test_bad_values_are_refused_in_plain_words(value: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(")) as info:
        alarm_from_value(value)
    assert words in str(info.value)


def test_older_records_without_flags_are_accepted() -> None:
    """``flapping`` and ``drill`` default to false when absent (``drill`` is absent on every
    real event)."""
    back = alarm_from_value(_mutated(flapping=_MISSING))
    assert back.flapping is False
    assert back.drill is False
