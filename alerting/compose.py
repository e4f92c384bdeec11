"""The words of a notification: one short subject line and a body, per kind of message.

People read these on a phone at night, or hear them from a text-to-speech call, so the
subject alone must say level, place and what was measured, and the body must say how to
acknowledge. A drill says 【演练】 first, always, so nobody evacuates for an exercise.
Chinese by default; English for the sites that ask for it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from earlywarn.model import Level

Language = str
"""``zh`` or ``en`` (kept a plain string so alerting needs nothing of the runner's settings)."""


class Purpose(enum.Enum):
    """Why this message is sent."""

    ALARM = "alarm"
    """First notice of an alarm to this person."""
    REMINDER = "reminder"
    """Repeat: still not acknowledged."""
    HIGHER = "higher"
    """The alarm's level rose."""
    LOWER = "lower"
    """The alarm's level fell (still active)."""
    CLEARED = "cleared"
    """The condition is gone; acknowledgement may still be due."""
    ACKED = "acked"
    """Someone acknowledged: the others may stand down."""
    GROUPED = "grouped"
    """Many alarms at one site in a short time, summed up in one message."""


@dataclass(frozen=True, slots=True)
class Facts:
    """What a message says about the alarm (or, for a grouped message, the site's alarms)."""

    level: Level | None
    message: str
    site_name: str
    enterprise_name: str
    drill: bool = False
    link: str | None = None
    reply_code: str | None = None
    repeat: int = 0
    acked_by: str | None = None
    group_count: int = 0
    group_minutes: int = 0


def _level(level: Level | None, lang: Language) -> str:
    if level is None:
        return "恢复" if lang == "zh" else "cleared"
    return level.zh if lang == "zh" else level.label


def subject(purpose: Purpose, facts: Facts, lang: Language = "zh") -> str:
    """One line: what an SMS shows first and a call says first."""
    drill = ("【演练】" if lang == "zh" else "[DRILL] ") if facts.drill else ""
    level = _level(facts.level, lang)
    if lang == "zh":
        head = {
            Purpose.ALARM: f"【{level}预警】",
            Purpose.REMINDER: f"【{level}预警·第{facts.repeat + 1}次提醒】",
            Purpose.HIGHER: f"【升级为{level}】",
            Purpose.LOWER: f"【降为{level}】",
            Purpose.CLEARED: "【已恢复】",
            Purpose.ACKED: "【已有人确认】",
            Purpose.GROUPED: f"【{level}预警·{facts.group_count}条】",
        }[purpose]
    else:
        head = {
            Purpose.ALARM: f"[{level.upper()} ALARM] ",
            Purpose.REMINDER: f"[{level.upper()} ALARM, reminder {facts.repeat + 1}] ",
            Purpose.HIGHER: f"[UP TO {level.upper()}] ",
            Purpose.LOWER: f"[DOWN TO {level.upper()}] ",
            Purpose.CLEARED: "[CLEARED] ",
            Purpose.ACKED: "[ACKNOWLEDGED] ",
            Purpose.GROUPED: f"[{level.upper()}, {facts.group_count} alarms] ",
        }[purpose]
    if purpose is Purpose.GROUPED:
        what = (
            f"{facts.site_name} {facts.group_minutes} 分钟内 {facts.group_count} 条报警，"
            f"最新：{facts.message}"
            if lang == "zh"
            else f"{facts.site_name}: {facts.group_count} alarms in {facts.group_minutes} min; "
            f"latest: {facts.message}"
        )
    elif purpose is Purpose.ACKED and facts.acked_by:
        what = (
            f"{facts.acked_by} 已确认：{facts.message}"
            if lang == "zh"
            else f"{facts.acked_by} acknowledged: {facts.message}"
        )
    else:
        what = facts.message
    return f"{drill}{head}{what}"


def body(purpose: Purpose, facts: Facts, lang: Language = "zh") -> str:
    """The full text: the subject, the enterprise, and how to acknowledge."""
    lines = [subject(purpose, facts, lang)]
    lines.append(facts.enterprise_name)
    needs_ack = purpose not in (Purpose.ACKED,)
    if needs_ack and facts.link:
        lines.append(f"确认：{facts.link}" if lang == "zh" else f"Acknowledge: {facts.link}")
    if needs_ack and facts.reply_code:
        lines.append(
            f"或回复 {facts.reply_code} 确认"
            if lang == "zh"
            else f"or reply {facts.reply_code} to acknowledge"
        )
    return "\n".join(lines)


def spoken(purpose: Purpose, facts: Facts, lang: Language = "zh") -> str:
    """What a voice call reads out: the subject, said twice, and the keypress to acknowledge.

    Said twice because the first words of a call wake the person up and are often missed.
    """
    said = subject(purpose, facts, lang).replace("【", "").replace("】", "，")
    if lang == "zh":
        return f"{said}。重复一遍：{said}。确认收到请按 1。"
    return f"{said}. Again: {said}. Press 1 to acknowledge."
