"""Building rule objects from registry YAML, one builder per rule kind.

Each builder reads the fields of its kind from a (preset-merged) rule entry, reports every
problem at the line where it can be fixed, and returns the frozen rule from ``rules/`` or
``None``. Field names are the same across kinds where the meaning is the same (``levels``,
``window``, ``on_delay``, ``off_delay``, ``consecutive``, ``deadband``, ``level``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from earlywarn.schema import FileChecker
from earlywarn.yamlsource import YList, YMap
from rules.base import Rule
from rules.levels import Level
from rules.threshold import Direction, Setpoint, ThresholdRule


@dataclass(frozen=True, slots=True)
class SensorContext:
    """What a rule may take from its sensor: unit, instrument range, reporting interval."""

    unit: str | None
    range: tuple[float, float] | None
    interval_s: float | None


Builder = Callable[[YMap, str, FileChecker, SensorContext, str], Rule | None]

_COMMON = ("id", "kind", "preset", "on_delay", "off_delay", "consecutive")


def delays(m: YMap, check: FileChecker, what: str) -> tuple[int, int, int] | None:
    """``on_delay``, ``off_delay`` (durations) and ``consecutive`` (readings) in ms."""
    on = check.seconds(m, "on_delay", what, 0.0)
    off = check.seconds(m, "off_delay", what, 0.0)
    consecutive = m.get("consecutive", 1)
    if isinstance(consecutive, bool) or not isinstance(consecutive, int) or consecutive < 1:
        check.error(
            m.line_of("consecutive"),
            f"{what}: 'consecutive' must be a whole number "
            f"of readings, at least 1, got {consecutive!r}",
        )
        return None
    if on is None or off is None:
        return None
    return round(on * 1000), round(off * 1000), consecutive


def direction(m: YMap, check: FileChecker, what: str, default: str = "high") -> Direction | None:
    """``high`` or ``low``."""
    raw = m.get("direction", default)
    try:
        return Direction(str(raw))
    except ValueError:
        check.error(m.line_of("direction"), f"{what}: direction must be high or low, got {raw!r}")
        return None


def level_of(raw: Any, line: int, check: FileChecker, what: str) -> Level | None:
    """A level from ``red``/``红色``/``I``…"""
    try:
        return Level.parse(str(raw))
    except ValueError as exc:
        check.error(line, f"{what}: {exc}")
        return None


def single_level(m: YMap, check: FileChecker, what: str, default: Level) -> Level | None:
    """The ``level`` of a one-level rule (quality kinds)."""
    if "level" not in m:
        return default
    return level_of(m["level"], m.line_of("level"), check, what)


def window_ms(
    m: YMap, key: str, check: FileChecker, what: str, *, required: bool = True
) -> int | None:
    """A positive duration field in milliseconds."""
    if key not in m:
        if required:
            check.error(m.line, f"{what} is missing the required field {key!r}")
        return None
    seconds = check.seconds(m, key, what, 0.0)
    if seconds is None:
        return None
    if seconds <= 0:
        check.error(m.line_of(key), f"{what}: {key!r} must be a positive duration")
        return None
    return round(seconds * 1000)


def bands(
    m: YMap, check: FileChecker, what: str, alarm_side: Direction, rule_id: str
) -> tuple[Setpoint, ...] | None:
    """The ``levels`` list: ``{level, set, clear, label}``; a missing clear follows from
    ``deadband`` on the normal side (below the set-point for a high alarm)."""
    raw = check.as_list(m.get("levels"), m.line_of("levels"), f"{what}: 'levels'")
    if raw is None:
        return None
    deadband = check.number(m, "deadband", what, required=False)
    out: list[Setpoint] = []
    ok = True
    for item, line in zip(raw, raw.item_lines, strict=True):
        lm = check.as_map(item, line, f"{what}: a level")
        if lm is None:
            ok = False
            continue
        check.known_keys(lm, ("level", "label", "set", "clear"), f"{what}: a level")
        if "level" not in lm:
            check.error(lm.line, f"{what}: a level is missing the required field 'level'")
            ok = False
            continue
        level = level_of(lm["level"], lm.line_of("level"), check, what)
        label = check.text(lm, "label", f"{what}: level", required=False) or ""
        name = f"{level.label if level else '?'}{f' ({label})' if label else ''}"
        if lm.get("set") is None:
            check.error(
                lm.line_of("set"),
                f"{what}: rule {rule_id!r} needs a set-point for {name}: give it under 'setpoints'",
            )
            ok = False
            continue
        set_ = check.number(lm, "set", f"{what}: level {name}")
        clear = check.number(lm, "clear", f"{what}: level {name}", required=False)
        if set_ is None or level is None:
            ok = False
            continue
        if clear is None:
            if deadband is None:
                check.error(
                    lm.line,
                    f"{what}: rule {rule_id!r} needs a clear set-point for {name} or a 'deadband'",
                )
                ok = False
                continue
            clear = set_ - deadband if alarm_side is Direction.HIGH else set_ + deadband
        out.append(Setpoint(level, set_, clear, label))
    return tuple(out) if ok else None


def build_threshold(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: threshold`` — the value against set-points."""
    check.known_keys(m, (*_COMMON, "direction", "levels", "deadband"), what)
    side = direction(m, check, what)
    timing = delays(m, check, what)
    if side is None:
        return None
    levels = bands(m, check, what, side, rule_id)
    if levels is None or timing is None:
        return None
    try:
        rule = ThresholdRule(rule_id, side, levels, *timing)
    except ValueError as exc:
        check.error(m.line, f"{what}: {exc}")
        return None
    if ctx.range is not None:
        lo, hi = ctx.range
        for sp in rule.setpoints:
            if not lo <= sp.set <= hi:
                check.error(
                    m.line,
                    f"{what}: rule {rule_id!r} {sp.level.label} set-point "
                    f"{sp.set:g} is outside the instrument range [{lo:g}, {hi:g}] and "
                    "could never alarm",
                )
                return None
    return rule


BUILDERS: dict[str, Builder] = {
    "threshold": build_threshold,
}


def build_rule(
    m: YMap, default_id: str | None, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """Dispatch on ``kind`` (default ``threshold``)."""
    kind = m.get("kind", "threshold")
    builder = BUILDERS.get(str(kind))
    if builder is None:
        check.error(
            m.line_of("kind"),
            f"{what}: unknown rule kind {kind!r}; expected one of "
            f"{', '.join(BUILDERS)} (or 'preset: NAME')",
        )
        return None
    rule_id = check.ident(m, "id", what, required=default_id is None) or default_id
    if rule_id is None:
        return None
    return builder(m, rule_id, check, ctx, what)


__all__ = ["BUILDERS", "SensorContext", "YList", "build_rule"]
