"""Line protocol and schema: escaping edge cases, types, and a round trip through a parser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from earlywarn.model import Level, Reading, Sensor
from storage import schema
from storage.lineproto import encode
from tests.storage.lineparse import parse


def sensor(**kw: object) -> Sensor:
    base: dict[str, object] = {
        "uid": "chem/tank-farm/LT-101",
        "enterprise": "chem",
        "site": "tank-farm",
        "id": "LT-101",
        "kind": "level",
        "name": "1号储罐液位",
        "unit": "m",
        "range": (0.0, 20.0),
        "interval_s": 10.0,
        "device": "LT-101",
        "channel": None,
        "rules": (),
    }
    base.update(kw)
    return Sensor(**base)  # type: ignore[arg-type]


# --- encode: exact lines ---------------------------------------------------------------------


def test_plain_line_with_sorted_tags_and_typed_fields() -> None:
    line = encode(
        "m", {"site": "s1", "enterprise": "e1"}, {"v": 1.5, "n": 12, "ok": True, "s": "x"}, 1000
    )
    assert line == 'm,enterprise=e1,site=s1 v=1.5,n=12i,ok=true,s="x" 1000'


def test_measurement_escapes_comma_and_space_but_not_equals() -> None:
    assert encode("a b,c=d", {}, {"v": 1}, 0) == "a\\ b\\,c=d v=1i 0"


def test_tag_keys_values_and_field_keys_escape_comma_equals_space() -> None:
    line = encode("m", {"k,= ": "v,= "}, {"f,= ": False}, 5)
    assert line == "m,k\\,\\=\\ =v\\,\\=\\  f\\,\\=\\ =false 5"


def test_string_fields_escape_quote_and_backslash() -> None:
    line = encode("m", {}, {"s": 'say "hi" C:\\tmp\\'}, 1)
    assert line == 'm s="say \\"hi\\" C:\\\\tmp\\\\" 1'
    assert parse(line).fields["s"] == 'say "hi" C:\\tmp\\'


def test_newlines_become_spaces_in_strings_and_identifiers() -> None:
    line = encode("m", {"t": "a\nb"}, {"s": "line1\r\nline2\n"}, 1)
    assert "\n" not in line and "\r" not in line
    point = parse(line)
    assert point.tags == {"t": "a b"}
    assert point.fields == {"s": "line1  line2 "}


def test_chinese_text_is_written_as_is() -> None:
    line = encode("reading", {"site": "储罐区 A"}, {"message": "液位超过警戒水位, 请处置"}, 7)
    assert line == 'reading,site=储罐区\\ A message="液位超过警戒水位, 请处置" 7'
    assert parse(line).tags["site"] == "储罐区 A"


def test_empty_tag_values_are_left_out() -> None:
    assert encode("m", {"a": "", "b": "x"}, {"v": 1.0}, 0) == "m,b=x v=1.0 0"


def test_floats_use_repr_ints_must_fit_in_64_bits() -> None:
    assert encode("m", {}, {"v": 0.1, "w": 1e-7, "x": -0.0, "y": 1e16}, 0) == (
        "m v=0.1,w=1e-07,x=-0.0,y=1e+16 0"
    )
    assert encode("m", {}, {"v": 2**63 - 1}, 0) == f"m v={2**63 - 1}i 0"
    with pytest.raises(ValueError, match="64 bits"):
        encode("m", {}, {"v": 2**63}, 0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="no NaN or infinity"):
        encode("m", {}, {"v": bad}, 0)


@pytest.mark.parametrize(
    ("measurement", "tags", "fields", "ts", "message"),
    [
        ("m", {}, {}, 0, "at least one field"),
        ("", {}, {"v": 1}, 0, "measurement must not be empty"),
        ("m", {"": "x"}, {"v": 1}, 0, "tag key must not be empty"),
        ("m", {}, {"": 1}, 0, "field key must not be empty"),
        ("m", {"t": "a\\"}, {"v": 1}, 0, "backslash"),
        ("m\\", {}, {"v": 1}, 0, "backslash"),
        ("m", {}, {"v": 1}, 1.5, "integer milliseconds"),
    ],
)
def test_refusals_are_plain(
    measurement: str, tags: dict[str, str], fields: dict[str, float], ts: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode(measurement, tags, fields, ts)


# --- round trip ------------------------------------------------------------------------------

# Identifiers: anything but backslash and the empty string (refused), with the characters that
# need escaping and some Chinese drawn often.
_ident = st.text(
    alphabet=st.one_of(
        st.sampled_from(",= \n\r\t\"'#=储罐液位"), st.characters(exclude_characters="\\")
    ),
    min_size=1,
    max_size=12,
)
_field = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(alphabet=st.one_of(st.sampled_from('\\"\n\r, ='), st.characters()), max_size=20),
)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ").replace("\t", " ")


@given(
    measurement=_ident,
    tags=st.dictionaries(_ident, _ident, max_size=4),
    fields=st.dictionaries(_ident, _field, min_size=1, max_size=4),
    ts=st.integers(min_value=0, max_value=2**53),
)
def test_round_trip_through_a_parser(
    measurement: str, tags: dict[str, str], fields: dict[str, float | int | str | bool], ts: int
) -> None:
    # Keys that differ only by control characters collapse to one; keep the draw unambiguous.
    if len({_clean(k) for k in tags}) < len(tags) or len({_clean(k) for k in fields}) < len(fields):
        return
    line = encode(measurement, tags, fields, ts)
    point = parse(line)
    assert point.measurement == _clean(measurement)
    assert point.tags == {_clean(k): _clean(v) for k, v in tags.items()}
    expected = {
        _clean(k): v.replace("\n", " ").replace("\r", " ") if isinstance(v, str) else v
        for k, v in fields.items()
    }
    assert point.fields == expected
    assert all(type(point.fields[k]) is type(v) for k, v in expected.items())
    assert list(point.tags) == sorted(point.tags)
    assert point.ts == ts


# --- schema ----------------------------------------------------------------------------------


def test_reading_line() -> None:
    line = schema.reading_line(sensor(), Reading("chem/tank-farm/LT-101", 1_700_000_000_123, 12))
    assert line == (
        "reading,enterprise=chem,kind=level,sensor=LT-101,site=tank-farm "
        "value=12.0,quality=0i 1700000000123"
    )


def test_reading_line_of_a_drill() -> None:
    line = schema.reading_line(sensor(), Reading("x", 5, 1.25, quality=3), drill=True)
    point = parse(line)
    assert point.tags["drill"] == "true"
    assert point.fields == {"value": 1.25, "quality": 3}


def test_alarm_line_active() -> None:
    line = schema.alarm_line(
        enterprise="chem",
        site="tank-farm",
        sensor="LT-101",
        kind="level",
        rule="high",
        rule_kind="threshold",
        level=Level.RED,
        state="active-unacked",
        severity=4,
        value=18.5,
        message="1号储罐液位 18.50 m,\n超过高高限",
        alarm_id="a-1",
        ts_ms=99,
    )
    point = parse(line)
    assert point.measurement == "alarm"
    assert point.tags == {
        "enterprise": "chem",
        "site": "tank-farm",
        "sensor": "LT-101",
        "kind": "level",
        "rule": "high",
        "level": "red",
    }
    assert point.fields == {
        "state": "active-unacked",
        "severity": 4,
        "value": 18.5,
        "message": "1号储罐液位 18.50 m, 超过高高限",
        "alarm_id": "a-1",
        "rule_kind": "threshold",
    }
    assert point.ts == 99


def test_alarm_line_cleared_without_value_acked_drill() -> None:
    line = schema.alarm_line(
        enterprise="e",
        site="s",
        sensor="x",
        kind="gas",
        rule="offline",
        rule_kind="offline",
        level=None,
        state="cleared",
        severity=0,
        value=math.nan,
        message="恢复",
        alarm_id="a-2",
        ts_ms=1,
        acked_by="zhang",
        drill=True,
    )
    point = parse(line)
    assert point.tags["level"] == "none"
    assert point.tags["drill"] == "true"
    assert "value" not in point.fields
    assert point.fields["acked_by"] == "zhang"
    assert point.fields["severity"] == 0


def test_alarm_line_refuses_unknown_state() -> None:
    with pytest.raises(ValueError, match="state"):
        schema.alarm_line(
            enterprise="e",
            site="s",
            sensor="x",
            kind="gas",
            rule="r",
            rule_kind="threshold",
            level=Level.BLUE,
            state="firing",
            severity=1,
            value=1.0,
            message="",
            alarm_id="a",
            ts_ms=1,
        )


def test_notification_line() -> None:
    line = schema.notification_line(
        alarm_id="a-1",
        enterprise="chem",
        site="tank-farm",
        person="wang",
        channel="voice",
        outcome="retry",
        attempt=2,
        ts_ms=3,
    )
    assert line == (
        "notification,alarm_id=a-1,channel=voice,enterprise=chem,person=wang,site=tank-farm "
        'outcome="retry",attempt=2i 3'
    )


def test_site_line() -> None:
    line = schema.site_line(
        enterprise="chem",
        site="tank-farm",
        name="储罐区",
        lat=30.5,
        lon=114,
        status=-1,
        active=0,
        offline=12,
        sensors=12,
        ts_ms=10,
    )
    assert line == (
        'site,enterprise=chem,site=tank-farm name="储罐区",lat=30.5,lon=114.0,'
        "status=-1i,active=0i,offline=12i,sensors=12i 10"
    )


@given(
    enterprise=_ident,
    site=_ident,
    sensor_id=_ident,
    kind=_ident,
    value=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6),
    quality=st.integers(0, 255),
    drill=st.booleans(),
)
def test_the_cached_reading_line_is_the_general_encoding(
    enterprise: str, site: str, sensor_id: str, kind: str, value: float, quality: int, drill: bool
) -> None:
    s = sensor(enterprise=enterprise, site=site, id=sensor_id, kind=kind)
    tags = {"enterprise": enterprise, "site": site, "sensor": sensor_id, "kind": kind}
    if drill:
        tags["drill"] = "true"
    fields = {"value": float(value), "quality": quality}
    expected = encode("reading", tags, fields, 1_700_000_000_000)
    line = schema.reading_line(s, Reading("x", 1_700_000_000_000, value, quality), drill=drill)
    assert line == expected


def test_reading_line_refuses_non_finite_values_and_float_timestamps() -> None:
    with pytest.raises(ValueError, match="no NaN or infinity"):
        schema.reading_line(sensor(), Reading("x", 1, math.nan))
    with pytest.raises(ValueError, match="integer milliseconds"):
        schema.reading_line(sensor(), Reading("x", 1.5, 1.0))  # type: ignore[arg-type]
