"""The v1 JSON payload parser: any bytes are safe, valid readings round-trip exactly."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ingest.payloads.json_v1 import EARLIEST_MS, Parsed, RawReading, encode, parse
from ingest.reasons import PayloadError, Reason

TS = 1_795_000_000_000


@given(st.binary(max_size=2048))
@example(b"NaN")
@example(b"[" * 100_000)
@example(b'{"ts": 1e999, "v": 1}')
@example(b'\xff\xfe{"ts":1}')
def test_arbitrary_bytes_never_raise_anything_but_payload_error(data: bytes) -> None:
    try:
        result = parse(data)
    except PayloadError as exc:
        assert exc.reason in Reason
        assert exc.detail
    else:
        assert isinstance(result, Parsed)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["ts", "v", "values", "q", "unit", "x"]), children, max_size=5
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_arbitrary_json_never_raises_anything_but_payload_error(doc: object) -> None:
    data = json.dumps(doc, allow_nan=True).encode()
    try:
        result = parse(data)
    except PayloadError:
        return
    for r in result.readings:
        assert r.ts_ms >= EARLIEST_MS


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
timestamps = st.integers(min_value=EARLIEST_MS, max_value=4_000_000_000_000)
channels = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)


@st.composite
def reading_batches(draw: st.DrawFn) -> list[RawReading]:
    """Either single-value readings or one multi-channel reading, as a device would send."""
    if draw(st.booleans()):
        items = draw(
            st.lists(st.tuples(timestamps, finite, st.integers(0, 3)), min_size=1, max_size=5)
        )
        return [RawReading(ts, v, q) for ts, v, q in items]
    ts = draw(timestamps)
    chans = draw(st.lists(channels, min_size=1, max_size=4, unique=True))
    return [RawReading(ts, draw(finite), 0, c) for c in chans]


@given(reading_batches())
def test_valid_readings_round_trip_exactly(readings: list[RawReading]) -> None:
    assert parse(encode(readings)) == Parsed(readings=readings)


def test_epoch_ms_and_iso_8601_give_the_same_instant() -> None:
    a = parse(b'{"ts": 1795284000000, "v": 1.5}').readings[0]
    b = parse(b'{"ts": "2026-11-22T02:00:00+08:00", "v": 1.5}').readings[0]
    c = parse(b'{"ts": "2026-11-21T18:00:00Z", "v": 1.5}').readings[0]
    assert a == b == c


def test_multi_channel_reading() -> None:
    parsed = parse(b'{"ts": 1795284000000, "values": {"level": 12.3, "temp": 31}}')
    assert [(r.channel, r.value) for r in parsed.readings] == [("level", 12.3), ("temp", 31.0)]


def test_backfill_keeps_good_elements_and_rejects_bad_ones() -> None:
    parsed = parse(
        b'[{"ts": 1795284000000, "v": NaN}, {"ts": 1795284001000, "v": 2},'
        b' 7, {"ts": 1795284002000, "values": {"a": 1, "b": "x"}}]'
    )
    assert [(r.ts_ms, r.channel, r.value) for r in parsed.readings] == [
        (1795284001000, None, 2.0),
        (1795284002000, "a", 1.0),
    ]
    assert [(e.where, e.error.reason) for e in parsed.rejected] == [
        ("[0]", Reason.NOT_FINITE),
        ("[2]", Reason.BAD_SHAPE),
        ("[3]values.b", Reason.BAD_VALUE),
    ]


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"not json", Reason.BAD_JSON, "not JSON"),
        (b'{"ts": 1795284000000, "v": NaN}', Reason.NOT_FINITE, "NaN"),
        (b'{"ts": 1795284000000, "v": 1e999}', Reason.NOT_FINITE, "finite"),
        (b'{"ts": 1795284000000, "v": "12"}', Reason.BAD_VALUE, "must be a number"),
        (b'{"ts": 1795284000000, "v": true}', Reason.BAD_VALUE, "must be a number"),
        (b'{"ts": 1795284000, "v": 1}', Reason.BAD_TIMESTAMP, "looks like seconds"),
        (b'{"ts": "2026-11-22 02:00:00", "v": 1}', Reason.BAD_TIMESTAMP, "no UTC offset"),
        (b'{"ts": "yesterday", "v": 1}', Reason.BAD_TIMESTAMP, "not an ISO-8601"),
        (b'{"v": 1}', Reason.BAD_TIMESTAMP, "missing 'ts'"),
        (b'{"ts": 1795284000000}', Reason.BAD_SHAPE, "exactly one of"),
        (b'{"ts": 1795284000000, "v": 1, "values": {"a": 1}}', Reason.BAD_SHAPE, "exactly one"),
        (b'{"ts": 1795284000000, "v": 1, "q": -1}', Reason.BAD_SHAPE, "'q'"),
        (b'{"ts": 1795284000000, "v": 1, "drill": "false"}', Reason.BAD_SHAPE, "'drill'"),
        (b'{"ts": 1795284000000, "v": 1, "drill": 1}', Reason.BAD_SHAPE, "true or false"),
        (b"[]", Reason.BAD_SHAPE, "empty"),
        (b"42", Reason.BAD_SHAPE, "object or array"),
        (b"\xff\xfe", Reason.NOT_UTF8, "UTF-8"),
        (
            b'{"ts": 1795284000000, "v": 1, "pad": "' + b"x" * 70_000 + b'"}',
            Reason.TOO_LARGE,
            "exceeds the limit",
        ),
    ],
)
def test_rejections_say_why(payload: bytes, reason: Reason, words: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse(payload)
    assert info.value.reason is reason
    assert words in info.value.detail


def test_unknown_extra_keys_are_ignored() -> None:
    parsed = parse(b'{"ts": 1795284000000, "v": 3, "bat": 3.6, "seq": 17}')
    assert parsed.readings == [RawReading(1795284000000, 3.0)]


def test_drill_readings_say_so_and_round_trip() -> None:
    parsed = parse(b'[{"ts": 1795284000000, "v": 3, "drill": true}, {"ts": 1795284001000, "v": 4}]')
    assert parsed.readings == [
        RawReading(1795284000000, 3.0, drill=True),
        RawReading(1795284001000, 4.0),
    ]
    assert parse(encode(parsed.readings)).readings == parsed.readings
    both = [RawReading(TS, 1.0, channel="a", drill=True), RawReading(TS, 2.0, channel="b")]
    assert parse(encode(both)).readings == both
