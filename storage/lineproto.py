"""InfluxDB line protocol, one point per line, with millisecond timestamps.

We write the lines ourselves instead of using ``influxdb_client.Point`` because the spool keeps
*text*: a line is encoded once, when the reading or alarm happens, stored durably, and sent
later exactly as stored. The encoding therefore has to be total and predictable: it either
returns one valid line or raises ``ValueError`` with a plain message, at the caller, never
later at the server where a bad line would hold up the lines behind it.

Escaping follows the InfluxDB line-protocol reference:

- measurement: comma and space;
- tag keys, tag values and field keys: comma, equals sign and space;
- string field values: double quote and backslash, inside double quotes.

What the reference cannot express is handled explicitly:

- A newline, carriage return or tab anywhere (identifiers or strings) would end the line or
  be read as an escape, so each is replaced by a space. Alarm messages are free text written
  by people, so this does happen; the message stays readable.
- A backslash in a measurement, tag or field key or tag value cannot be written so that
  InfluxDB reads it back unchanged (it does not unescape ``\\\\`` there, and a trailing
  backslash escapes the separator after it), so it is refused. These are registry
  identifiers (short ASCII tokens), where a backslash is a mistake worth hearing about.
  Backslashes in string *field values* are fine and escaped.
- Empty tag values are left out (InfluxDB rejects ``tag=``); tags are sorted by key, the
  order InfluxDB prefers (it sorts them anyway, so pre-sorted lines are cheaper to ingest).
- ``NaN`` and infinities have no line-protocol form and are refused; integers must fit in a
  signed 64-bit integer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["FieldValue", "check_timestamp", "encode", "field_value", "series_key"]

FieldValue = float | int | str | bool
"""What a field may hold: float, integer (written ``12i``), string or boolean."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_CONTROL = str.maketrans({"\n": " ", "\r": " ", "\t": " "})
_ESCAPE_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_ESCAPE_KEY = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_ESCAPE_STRING = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": " ", "\r": " "})


def _identifier(text: str, what: str, table: dict[int, str]) -> str:
    if not text:
        msg = f"{what} must not be empty"
        raise ValueError(msg)
    if "\\" in text:
        msg = f"{what} {text!r} contains a backslash, which line protocol cannot carry unchanged"
        raise ValueError(msg)
    return text.translate(_CONTROL).translate(table)


def field_value(key: str, value: FieldValue) -> str:
    """One field's value as line protocol (``1.5``, ``12i``, ``true``, ``"text"``)."""
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            msg = f"field {key!r}: integer {value} does not fit in 64 bits"
            raise ValueError(msg)
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"field {key!r}: {value} cannot be stored (line protocol has no NaN or infinity)"
            raise ValueError(msg)
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPE_STRING) + '"'
    msg = f"field {key!r}: unsupported type {type(value).__name__}"
    raise ValueError(msg)


def series_key(measurement: str, tags: Mapping[str, str]) -> str:
    """The measurement and its sorted, escaped tags: the part of a line before the fields.

    The same for every point of a series, so callers that write many points of few series
    (readings) compute it once per series and cache it; see :func:`storage.schema.reading_line`.
    """
    parts = [_identifier(measurement, "measurement", _ESCAPE_MEASUREMENT)]
    # Sorted as written: a key's control characters become spaces first.
    for key in sorted(tags, key=lambda k: k.translate(_CONTROL)):
        value = tags[key]
        if value == "":
            continue
        parts.append(
            ","
            + _identifier(key, "tag key", _ESCAPE_KEY)
            + "="
            + _identifier(value, f"tag {key!r}", _ESCAPE_KEY)
        )
    return "".join(parts)


def encode(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    ts_ms: int,
) -> str:
    """One line-protocol line (no trailing newline) with a timestamp in epoch milliseconds.

    Newlines, carriage returns and tabs are replaced by a space (in string fields too), so a
    multi-line alarm message stays one point. ``ValueError`` for no fields, a non-finite
    float, an empty measurement or key, or a backslash in an identifier.
    """
    if not fields:
        msg = f"a point of {measurement!r} needs at least one field"
        raise ValueError(msg)
    check_timestamp(ts_ms)
    field_text = ",".join(
        _identifier(key, "field key", _ESCAPE_KEY) + "=" + field_value(key, value)
        for key, value in fields.items()
    )
    return f"{series_key(measurement, tags)} {field_text} {ts_ms}"


def check_timestamp(ts_ms: int) -> None:
    """``ValueError`` unless ``ts_ms`` is an integer (a float would be written as ``1.5e12``)."""
    if type(ts_ms) is not int:
        msg = f"timestamp must be integer milliseconds, got {ts_ms!r}"
        raise ValueError(msg)
