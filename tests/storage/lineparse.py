"""A small line-protocol parser for the tests: reads back what :func:`storage.lineproto.encode`
writes, following the InfluxDB reference (backslash escapes the next special character;
string fields are double-quoted with ``\\"`` and ``\\\\``)."""

from __future__ import annotations

from dataclasses import dataclass

Field = float | int | str | bool


@dataclass(frozen=True)
class Point:
    """One parsed line."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, Field]
    ts: int


def _token(line: str, i: int, stops: str, specials: str) -> tuple[str, int]:
    """Read up to an unescaped character of ``stops``; ``\\x`` for x in ``specials`` is x."""
    out: list[str] = []
    while i < len(line) and line[i] not in stops:
        if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in specials:
            out.append(line[i + 1])
            i += 2
        else:
            out.append(line[i])
            i += 1
    return "".join(out), i


def _value(text: str) -> Field:
    if text in ("true", "false"):
        return text == "true"
    if text.endswith("i"):
        return int(text[:-1])
    return float(text)


def parse(line: str) -> Point:
    """Parse one line; ``AssertionError`` when it is not well formed."""
    assert "\n" not in line and "\r" not in line
    measurement, i = _token(line, 0, ", ", ", ")
    tags: dict[str, str] = {}
    while line[i] == ",":
        key, i = _token(line, i + 1, "=", ",= ")
        assert line[i] == "="
        tags[key], i = _token(line, i + 1, ", ", ",= ")
    assert line[i] == " "
    i += 1
    fields: dict[str, Field] = {}
    while True:
        key, i = _token(line, i, "=", ",= ")
        assert line[i] == "="
        i += 1
        if line[i] == '"':
            i += 1
            out: list[str] = []
            while line[i] != '"':
                if line[i] == "\\" and line[i + 1] in '\\"':
                    out.append(line[i + 1])
                    i += 2
                else:
                    out.append(line[i])
                    i += 1
            fields[key] = "".join(out)
            i += 1
        else:
            raw, i = _token(line, i, ", ", "")
            fields[key] = _value(raw)
        if line[i] == " ":
            break
        assert line[i] == ","
        i += 1
    ts = int(line[i + 1 :])
    return Point(measurement, tags, fields, ts)
