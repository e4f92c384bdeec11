"""The v1 JSON payload: one reading, a multi-channel reading, or a back-fill array of either.

``{"ts": 1732240000000, "v": 12.3}`` · ``{"ts": "2026-11-22T02:00:00+08:00", "values":
{"level": 12.3, "temp": 31.0}}`` · ``[{...}, {...}]``; optional ``"q"`` quality (0 good) and
``"unit"``. Unknown extra keys (battery, sequence numbers…) are ignored so that devices can add
fields without being cut off.

A fault in the message as a whole raises :class:`PayloadError`; a fault in one element of a
back-fill or one channel rejects only that element, so good readings in the same message are
never lost.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.reasons import PayloadError, Reason

MAX_BYTES = 64 * 1024
MAX_READINGS = 5000
EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: earlier means a device clock never set


@dataclass(frozen=True, slots=True)
class RawReading:
    """One value as the device sent it, before the registry is consulted."""

    ts_ms: int
    value: float
    quality: int = 0
    channel: str | None = None
    unit: str | None = None
    drill: bool = False


@dataclass(frozen=True, slots=True)
class ItemError:
    """One element of a message that was rejected; ``where`` is e.g. ``[3]`` or ``values.temp``."""

    where: str
    error: PayloadError


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a message held: the good readings and the rejected elements."""

    readings: list[RawReading] = field(default_factory=list)
    rejected: list[ItemError] = field(default_factory=list)


class _NonFinite(str):
    """Stands for a bare ``NaN``/``Infinity`` token, so only the element holding it is rejected."""

    __slots__ = ()


_DECODER = json.JSONDecoder(parse_constant=_NonFinite)
"""Built once: ``json.loads`` with options would build a new decoder for every message."""


def parse(
    payload: bytes, *, max_bytes: int = MAX_BYTES, max_readings: int = MAX_READINGS
) -> Parsed:
    """Parse a payload; raises :class:`PayloadError` when nothing in it can be used.

    Never raises anything else, whatever the bytes: the ingest loop relies on it.
    """
    if len(payload) > max_bytes:
        raise PayloadError(
            Reason.TOO_LARGE, f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}"
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(Reason.NOT_UTF8, f"payload is not UTF-8 text ({exc.reason})") from None
    try:
        doc = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            Reason.BAD_JSON, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise PayloadError(Reason.BAD_JSON, f"not usable JSON: {exc}") from None
    if isinstance(doc, dict):
        out = Parsed()
        _parse_item(doc, "", out)
        if not out.readings and len(out.rejected) == 1:
            raise out.rejected[0].error
        return out
    if isinstance(doc, list):
        if not doc:
            raise PayloadError(Reason.BAD_SHAPE, "empty back-fill array")
        if len(doc) > max_readings:
            raise PayloadError(
                Reason.TOO_MANY_READINGS,
                f"back-fill of {len(doc)} elements exceeds the limit of {max_readings}",
            )
        out = Parsed()
        for index, item in enumerate(doc):
            if isinstance(item, dict):
                _parse_item(item, f"[{index}]", out)
            else:
                out.rejected.append(
                    ItemError(
                        f"[{index}]",
                        PayloadError(Reason.BAD_SHAPE, "back-fill element is not a JSON object"),
                    )
                )
        return out
    raise PayloadError(Reason.BAD_SHAPE, f"expected a JSON object or array, got {_short(doc)}")


def _parse_item(item: dict[str, Any], where: str, out: Parsed) -> None:
    try:
        ts_ms = parse_timestamp(item.get("ts"))
        quality = _quality(item.get("q", 0))
        unit = item.get("unit")
        if unit is not None and not isinstance(unit, str):
            raise PayloadError(Reason.BAD_SHAPE, "'unit' must be a string")
        drill = item.get("drill", False)
        if not isinstance(drill, bool):
            # Strictly a boolean: "false" (a string) would be true to Python and turn a real
            # reading's alarm into a drill.
            raise PayloadError(Reason.BAD_SHAPE, "'drill' must be true or false")
        has_v, has_values = "v" in item, "values" in item
        if has_v == has_values:
            raise PayloadError(Reason.BAD_SHAPE, "give exactly one of 'v' or 'values'")
    except PayloadError as exc:
        out.rejected.append(ItemError(where or "message", exc))
        return
    if has_v:
        try:
            out.readings.append(
                RawReading(ts_ms, _number(item["v"], "'v'"), quality, None, unit, drill)
            )
        except PayloadError as exc:
            out.rejected.append(ItemError(where or "message", exc))
        return
    values = item["values"]
    if not isinstance(values, dict) or not values:
        out.rejected.append(
            ItemError(
                where or "message",
                PayloadError(Reason.BAD_SHAPE, "'values' must be a non-empty object of channels"),
            )
        )
        return
    for channel, raw in values.items():
        at = f"{where}values.{channel}" if where else f"values.{channel}"
        try:
            out.readings.append(
                RawReading(
                    ts_ms, _number(raw, f"channel {channel!r}"), quality, channel, unit, drill
                )
            )
        except PayloadError as exc:
            out.rejected.append(ItemError(at, exc))


def _number(raw: Any, what: str) -> float:
    if isinstance(raw, _NonFinite):
        raise PayloadError(Reason.NOT_FINITE, f"{what} is {raw!s}, not a measured value")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise PayloadError(Reason.BAD_VALUE, f"{what} must be a number, got {_short(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise PayloadError(Reason.NOT_FINITE, f"{what} is not a finite number")
    return value


def _quality(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 0xFFFF:
        raise PayloadError(Reason.BAD_SHAPE, f"'q' must be an integer 0..65535, got {_short(raw)}")
    return raw


def parse_timestamp(raw: Any) -> int:
    """Epoch milliseconds from a number (epoch ms) or an ISO-8601 string with a UTC offset."""
    if raw is None:
        raise PayloadError(Reason.BAD_TIMESTAMP, "missing 'ts'")
    if isinstance(raw, bool | _NonFinite):
        raise PayloadError(Reason.BAD_TIMESTAMP, "'ts' must be epoch milliseconds or ISO-8601")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            raise PayloadError(Reason.BAD_TIMESTAMP, "'ts' is not a finite number")
        ts_ms = round(raw)
        if ts_ms < EARLIEST_MS:
            hint = " (looks like seconds; send milliseconds)" if ts_ms > EARLIEST_MS // 1000 else ""
            raise PayloadError(Reason.BAD_TIMESTAMP, f"'ts' {raw!r} is before the year 2000{hint}")
        if ts_ms > 10**14:
            raise PayloadError(Reason.BAD_TIMESTAMP, f"'ts' {raw!r} is not epoch milliseconds")
        return ts_ms
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise PayloadError(
                Reason.BAD_TIMESTAMP, f"'ts' {_short(raw)} is not an ISO-8601 time"
            ) from None
        if moment.tzinfo is None:
            raise PayloadError(
                Reason.BAD_TIMESTAMP,
                f"'ts' {_short(raw)} has no UTC offset; add Z or +08:00 so the time is certain",
            )
        ts_ms = round(moment.timestamp() * 1000)
        if ts_ms < EARLIEST_MS:
            raise PayloadError(Reason.BAD_TIMESTAMP, f"'ts' {_short(raw)} is before the year 2000")
        return ts_ms
    raise PayloadError(
        Reason.BAD_TIMESTAMP, f"'ts' must be epoch ms or ISO-8601, got {_short(raw)}"
    )


def encode(readings: list[RawReading]) -> bytes:
    """The payload a device would send for ``readings`` (used by simulators and tests).

    Readings with a channel at the same instant are grouped into one ``values`` object.
    """
    items: list[dict[str, Any]] = []
    for r in readings:
        item: dict[str, Any] = {"ts": r.ts_ms}
        if r.channel is None:
            item["v"] = r.value
        else:
            if (
                items
                and "values" in items[-1]
                and items[-1]["ts"] == r.ts_ms
                and (items[-1].get("q", 0) == r.quality)
                and items[-1].get("drill", False) == r.drill
            ):
                items[-1]["values"][r.channel] = r.value
                continue
            item["values"] = {r.channel: r.value}
        if r.quality:
            item["q"] = r.quality
        if r.unit is not None:
            item["unit"] = r.unit
        if r.drill:
            item["drill"] = True
        items.append(item)
    doc: Any = items[0] if len(items) == 1 else items
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _short(raw: Any) -> str:
    text = str(raw) if isinstance(raw, _NonFinite) else repr(raw)
    return text if len(text) <= 40 else text[:37] + "..."
