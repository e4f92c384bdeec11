"""Plain sentences for alarm events, in Chinese (default) or English, one template per kind.

The duty officer reads these on a phone at night, so each says where, what was measured,
against which limit, and the level — the way a person would say it:
``罐区一 T101甲醇储罐液位 17.62 m，超过高高限 17.50 m（红色）``.
"""

from __future__ import annotations

import math
from typing import Literal

from earlywarn.model import Sensor, format_value
from rules.events import Change, RuleEvent

Language = Literal["zh", "en"]
LANGUAGES: tuple[Language, ...] = ("zh", "en")


def _duration(ms: float, lang: Language) -> str:
    minutes = ms / 60_000
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes / 60:g} 小时" if lang == "zh" else f"{minutes / 60:g} h"
    if minutes >= 1:
        return f"{minutes:.0f} 分钟" if lang == "zh" else f"{minutes:.0f} min"
    return f"{ms / 1000:.0f} 秒" if lang == "zh" else f"{ms / 1000:.0f} s"


def _level(event: RuleEvent, lang: Language) -> str:
    if event.level is None:
        return ""
    return event.level.zh if lang == "zh" else event.level.label


def _rising(event: RuleEvent) -> bool:
    if event.change is Change.RAISED:
        return True
    return bool(event.level and event.previous and event.level > event.previous)


def build_message(site_name: str, sensor: Sensor, event: RuleEvent, lang: Language = "zh") -> str:
    """The sentence for one event."""
    where = f"{site_name} {sensor.name}"
    return _KINDS.get(event.kind, _threshold)(where, sensor, event, lang)


def _tail(event: RuleEvent, lang: Language, what_zh: str, what_en: str) -> str:
    """``（红色）`` when rising; ``，降为橙色`` or ``，恢复正常`` when falling."""
    if event.change is Change.CLEARED or event.level is None:
        return f"{what_zh}，恢复正常" if lang == "zh" else f"{what_en}; back to normal"
    if _rising(event):
        return (
            f"{what_zh}（{_level(event, lang)}）"
            if lang == "zh"
            else (f"{what_en} ({_level(event, lang)})")
        )
    return (
        f"{what_zh}，降为{_level(event, lang)}"
        if lang == "zh"
        else f"{what_en}; down to {_level(event, lang)}"
    )


def _threshold(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    value = format_value(event.value, sensor.unit)
    limit = format_value(event.setpoint, sensor.unit)
    high = event.direction == "high"
    if _rising(event):
        label = event.setpoint_label or ("报警值" if lang == "zh" else "alarm limit")
        if lang == "zh":
            beyond = "超过" if high else "低于"
            return f"{where} {value}，{beyond}{label} {limit}（{_level(event, lang)}）"
        return (
            f"{where} {value}, {'above' if high else 'below'} {label} {limit} "
            f"({_level(event, lang)})"
        )
    back_zh = "低于" if high else "高于"
    back_en = "below" if high else "above"
    return _tail(
        event,
        lang,
        f"{where} {value}，已{back_zh}解除值 {limit}",
        f"{where} {value}, {back_en} the clear limit {limit}",
    )


def _rate(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    unit = f"{sensor.unit}/h"
    value = f"{event.value:+.2f} {unit}"
    limit = f"{event.setpoint:+.2f} {unit}"
    window = _duration(event.window_ms or 0, lang)
    up = event.direction == "high"
    if _rising(event):
        return _tail(
            event,
            lang,
            f"{where} {window}内{'上涨' if up else '下降'}速率 {value}，"
            f"{'超过' if up else '低于'}{event.setpoint_label or '速率限'} {limit}",
            f"{where} {'rising' if up else 'falling'} at {value} over {window}, "
            f"past the rate limit {limit}",
        )
    return _tail(
        event,
        lang,
        f"{where} 变化速率 {value}，已回到解除值 {limit} 以内",
        f"{where} rate {value}, back within {limit}",
    )


def _projection(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    target = event.setpoint_label
    minutes = event.value
    if _rising(event):
        eta_zh = "已到达" if minutes <= 0 else f"按当前趋势约 {minutes:.0f} 分钟后到达"
        eta_en = "has reached" if minutes <= 0 else f"will reach in about {minutes:.0f} min"
        return _tail(
            event,
            lang,
            f"{where} {eta_zh}{target}（预警 {event.setpoint:.0f} 分钟）",
            f"{where} {eta_en} {target} (warning at {event.setpoint:.0f} min)",
        )
    later_zh = "趋势已放缓" if not math.isfinite(minutes) else f"预计 {minutes:.0f} 分钟后到达"
    later_en = "trend has eased" if not math.isfinite(minutes) else f"expected in {minutes:.0f} min"
    return _tail(event, lang, f"{where} {later_zh}{target}", f"{where} {target}: {later_en}")


def _accumulation(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    window = _duration(event.window_ms or 0, lang)
    value = format_value(event.value, sensor.unit)
    limit = format_value(event.setpoint, sensor.unit)
    label = event.setpoint_label
    if _rising(event):
        return _tail(
            event,
            lang,
            f"{where} {window}累计雨量 {value}，达到{label} {limit}",
            f"{where} {value} in {window}, reaching {label} {limit}",
        )
    return _tail(
        event,
        lang,
        f"{where} {window}累计雨量 {value}，已低于解除值 {limit}",
        f"{where} {value} in {window}, below the clear limit {limit}",
    )


def _offline(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    silent = _duration(event.value * 1000, lang)
    limit = _duration(event.setpoint * 1000, lang)
    if _rising(event):
        return _tail(
            event,
            lang,
            f"{where} 已 {silent}没有数据（超过 {limit}），设备离线",
            f"{where} silent for {silent} (limit {limit}): device offline",
        )
    return f"{where} 恢复上报数据" if lang == "zh" else f"{where} reporting again"


def _stuck(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    value = format_value(event.value, sensor.unit)
    window = _duration(event.window_ms or 0, lang)
    if _rising(event):
        return _tail(
            event,
            lang,
            f"{where} {window}内读数无变化（{value}），疑似传感器卡死",
            f"{where} unchanged at {value} for {window}: sensor may be stuck",
        )
    return _tail(
        event, lang, f"{where} 读数恢复变化（{value}）", f"{where} reading moves again ({value})"
    )


def _out_of_range(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    value = format_value(event.value, sensor.unit) if math.isfinite(event.value) else "无效值"
    lo, hi = sensor.range
    if _rising(event):
        return _tail(
            event,
            lang,
            f"{where} 读数 {value} 超出量程 [{lo:g}, {hi:g}] 或设备故障",
            f"{where} reading {value} outside the range [{lo:g}, {hi:g}] or a device fault",
        )
    return _tail(
        event, lang, f"{where} 读数恢复有效（{value}）", f"{where} valid reading again ({value})"
    )


def _spike(where: str, sensor: Sensor, event: RuleEvent, lang: Language) -> str:
    value = format_value(event.value, sensor.unit)
    if _rising(event):
        return _tail(
            event,
            lang,
            f"{where} 读数突变至 {value}，疑似异常跳变",
            f"{where} sudden jump to {value}: possible spike",
        )
    return _tail(
        event, lang, f"{where} 读数恢复平稳（{value}）", f"{where} reading steady again ({value})"
    )


_KINDS = {
    "threshold": _threshold,
    "rate": _rate,
    "projection": _projection,
    "accumulation": _accumulation,
    "offline": _offline,
    "stuck": _stuck,
    "out_of_range": _out_of_range,
    "spike": _spike,
}
