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
from earlywarn.yamlsource import YMap
from rules.accumulation import (
    DEFAULT_BUCKET_MS,
    AccumulationRule,
    LevelWindows,
    Mode,
    WindowSetpoint,
)
from rules.base import Rule
from rules.levels import Level
from rules.offline import OfflineRule
from rules.out_of_range import OutOfRangeRule
from rules.projection import ProjectionRule
from rules.rate import RateRule
from rules.spike import SpikeRule
from rules.stuck import StuckRule
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


def _int(m: YMap, key: str, check: FileChecker, what: str, default: int) -> int | None:
    raw = m.get(key, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        check.error(m.line_of(key), f"{what}: {key!r} must be a whole number, got {raw!r}")
        return None
    return raw


def _number(m: YMap, key: str, check: FileChecker, what: str, default: float) -> float | None:
    if key not in m:
        return default
    return check.number(m, key, what)


def _make(check: FileChecker, line: int, what: str, factory: Callable[[], Rule]) -> Rule | None:
    """Construct a rule; its own validation errors become problems at ``line``."""
    try:
        return factory()
    except (ValueError, TypeError) as exc:
        check.error(line, f"{what}: {exc}")
        return None


def build_rate(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: rate`` — least-squares slope over ``window``, set-points in units per hour."""
    check.known_keys(
        m, (*_COMMON, "direction", "levels", "deadband", "window", "min_points", "min_span"), what
    )
    side = direction(m, check, what)
    timing = delays(m, check, what)
    window = window_ms(m, "window", check, what)
    min_points = _int(m, "min_points", check, what, 3)
    span = _min_span(m, window, check, what)
    levels = bands(m, check, what, side, rule_id) if side is not None else None
    if (
        side is None
        or timing is None
        or window is None
        or min_points is None
        or levels is None
        or span is None
    ):
        return None
    return _make(
        check,
        m.line,
        what,
        lambda: RateRule(rule_id, side, levels, window, min_points, *timing, min_span_ms=span),
    )


def _min_span(m: YMap, window: int | None, check: FileChecker, what: str) -> int | None:
    """``min_span``: the time the samples must cover before a trend is judged; by default half
    the window, so that a few readings seconds apart cannot make a steep trend out of noise."""
    if window is None:
        return None
    if "min_span" not in m:
        return window // 2
    seconds = check.seconds(m, "min_span", what, 0.0)
    return None if seconds is None else round(seconds * 1000)


def build_projection(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: projection`` — minutes until the trend reaches ``target``; levels by how soon."""
    check.known_keys(
        m,
        (
            *_COMMON,
            "direction",
            "levels",
            "deadband",
            "window",
            "min_points",
            "min_span",
            "target",
            "target_label",
        ),
        what,
    )
    side = direction(m, check, what)
    timing = delays(m, check, what)
    window = window_ms(m, "window", check, what)
    min_points = _int(m, "min_points", check, what, 3)
    span = _min_span(m, window, check, what)
    if m.get("target") is None:
        check.error(
            m.line_of("target"),
            f"{what}: rule {rule_id!r} needs a 'target' value (e.g. the gauge's 警戒水位)",
        )
        return None
    target = check.number(m, "target", what)
    label = check.text(m, "target_label", what, required=False) or ""
    # Minutes: a level is reached when the time left is at or below its set-point, so the
    # clear set-point lies above it.
    levels = bands(m, check, what, Direction.LOW, rule_id)
    if (
        side is None
        or timing is None
        or window is None
        or min_points is None
        or levels is None
        or target is None
        or span is None
    ):
        return None
    return _make(
        check,
        m.line,
        what,
        lambda: ProjectionRule(
            rule_id, target, label, side, levels, window, min_points, *timing, min_span_ms=span
        ),
    )


def build_accumulation(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: accumulation`` — rainfall sums over per-level windows (any window reaches)."""
    check.known_keys(m, (*_COMMON, "mode", "bucket", "counter_max", "levels", "deadband"), what)
    timing = delays(m, check, what)
    mode = str(m.get("mode", "interval"))
    if mode not in ("interval", "cumulative"):
        check.error(m.line_of("mode"), f"{what}: mode must be interval or cumulative, got {mode!r}")
        return None
    bucket = window_ms(m, "bucket", check, what, required=False) or DEFAULT_BUCKET_MS
    counter_max = check.number(m, "counter_max", what, required=False)
    deadband = check.number(m, "deadband", what, required=False)
    raw = check.as_list(m.get("levels"), m.line_of("levels"), f"{what}: 'levels'")
    if raw is None or timing is None:
        return None
    levels: list[LevelWindows] = []
    ok = True
    for item, line in zip(raw, raw.item_lines, strict=True):
        lm = check.as_map(item, line, f"{what}: a level")
        if lm is None:
            ok = False
            continue
        check.known_keys(lm, ("level", "label", "windows"), f"{what}: a level")
        level = level_of(lm.get("level"), lm.line_of("level"), check, what)
        label = check.text(lm, "label", f"{what}: level", required=False) or ""
        wlist = check.as_list(lm.get("windows"), lm.line_of("windows"), f"{what}: 'windows'")
        if level is None or wlist is None:
            ok = False
            continue
        windows: list[WindowSetpoint] = []
        for witem, wline in zip(wlist, wlist.item_lines, strict=True):
            wm = check.as_map(witem, wline, f"{what}: a window")
            if wm is None:
                ok = False
                continue
            check.known_keys(wm, ("window", "set", "clear"), f"{what}: a window")
            win = window_ms(wm, "window", check, f"{what}: {level.label}")
            if wm.get("set") is None:
                check.error(
                    wm.line_of("set"),
                    f"{what}: rule {rule_id!r} needs a set-point "
                    f"for {level.label} over {wm.get('window')}: give it under "
                    "'setpoints'",
                )
                ok = False
                continue
            set_ = check.number(wm, "set", f"{what}: {level.label}")
            clear = check.number(wm, "clear", f"{what}: {level.label}", required=False)
            if win is None or set_ is None:
                ok = False
                continue
            if clear is None:
                if deadband is None:
                    check.error(
                        wm.line,
                        f"{what}: rule {rule_id!r} needs a clear set-point "
                        f"for {level.label} or a 'deadband'",
                    )
                    ok = False
                    continue
                clear = max(set_ - deadband, set_ / 2)
            windows.append(WindowSetpoint(win, set_, clear))
        levels.append(LevelWindows(level, label, tuple(windows)))
    if not ok:
        return None
    return _make(
        check,
        m.line,
        what,
        lambda: AccumulationRule(rule_id, Mode(mode), tuple(levels), bucket, counter_max, *timing),
    )


def build_offline(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: offline`` — silence longer than ``factor`` × the sensor's reporting interval."""
    check.known_keys(m, ("id", "kind", "preset", "factor", "level", "off_delay"), what)
    factor = _number(m, "factor", check, what, 3.0)
    level = single_level(m, check, what, Level.YELLOW)
    off = check.seconds(m, "off_delay", what, 0.0)
    if factor is None or level is None or off is None or ctx.interval_s is None:
        return None
    interval = round(ctx.interval_s * 1000)
    return _make(
        check,
        m.line,
        what,
        lambda: OfflineRule(rule_id, interval, factor, level, round(off * 1000)),
    )


def build_stuck(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: stuck`` — no variation beyond ``epsilon`` over ``window``."""
    check.known_keys(
        m, ("id", "kind", "preset", "window", "epsilon", "min_points", "level", "off_delay"), what
    )
    window = window_ms(m, "window", check, what)
    epsilon = check.number(m, "epsilon", what)
    min_points = _int(m, "min_points", check, what, 5)
    level = single_level(m, check, what, Level.YELLOW)
    off = check.seconds(m, "off_delay", what, 0.0)
    if window is None or epsilon is None or min_points is None or level is None or off is None:
        return None
    return _make(
        check,
        m.line,
        what,
        lambda: StuckRule(rule_id, window, epsilon, min_points, level, round(off * 1000)),
    )


def build_out_of_range(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: out_of_range`` — outside the instrument range, or a device fault code."""
    check.known_keys(m, (*_COMMON, "low", "high", "fault_values", "fault_qualities", "level"), what)
    lo_default, hi_default = ctx.range if ctx.range is not None else (None, None)
    low = check.number(m, "low", what, required=False)
    high = check.number(m, "high", what, required=False)
    low = lo_default if low is None else low
    high = hi_default if high is None else high
    if low is None or high is None:
        check.error(m.line, f"{what}: out_of_range needs 'low' and 'high' (or a sensor range)")
        return None
    values = _numbers(m, "fault_values", check, what)
    qualities = _numbers(m, "fault_qualities", check, what)
    level = single_level(m, check, what, Level.YELLOW)
    timing = delays(m, check, what)
    if values is None or qualities is None or level is None or timing is None:
        return None
    if any(q != int(q) for q in qualities):
        check.error(m.line_of("fault_qualities"), f"{what}: quality codes are whole numbers")
        return None
    on, off, consecutive = timing
    return _make(
        check,
        m.line,
        what,
        lambda: OutOfRangeRule(
            rule_id,
            low,
            high,
            values,
            tuple(int(q) for q in qualities),
            level,
            on,
            off,
            consecutive,
        ),
    )


def build_spike(
    m: YMap, rule_id: str, check: FileChecker, ctx: SensorContext, what: str
) -> Rule | None:
    """``kind: spike`` — robust outliers (median/MAD) against the recent readings.

    ``min_scale`` defaults to 0.5 % of the instrument range: without a floor, a sensor whose
    readings repeat one value (MAD 0) would call every change a spike.
    """
    check.known_keys(
        m,
        (
            "id",
            "kind",
            "preset",
            "window_points",
            "k",
            "min_points",
            "min_scale",
            "consecutive_shift",
            "level",
            "off_delay",
        ),
        what,
    )
    span = (ctx.range[1] - ctx.range[0]) if ctx.range is not None else 1.0
    window_points = _int(m, "window_points", check, what, 30)
    k = _number(m, "k", check, what, 6.0)
    min_points = _int(m, "min_points", check, what, 10)
    min_scale = _number(m, "min_scale", check, what, span * 0.005)
    shift = _int(m, "consecutive_shift", check, what, 3)
    level = single_level(m, check, what, Level.BLUE)
    off = check.seconds(m, "off_delay", what, 0.0)
    if (
        window_points is None
        or k is None
        or min_points is None
        or min_scale is None
        or shift is None
        or level is None
        or off is None
    ):
        return None
    return _make(
        check,
        m.line,
        what,
        lambda: SpikeRule(
            rule_id, window_points, k, min_points, min_scale, shift, level, round(off * 1000)
        ),
    )


def _numbers(m: YMap, key: str, check: FileChecker, what: str) -> tuple[float, ...] | None:
    raw = m.get(key)
    if raw is None:
        return ()
    items = check.as_list(raw, m.line_of(key), f"{what}: {key!r}")
    if items is None:
        return None
    out = [
        check.number_value(v, line, f"{what}: {key!r}")
        for v, line in zip(items, items.item_lines, strict=True)
    ]
    return None if any(v is None for v in out) else tuple(v for v in out if v is not None)


BUILDERS: dict[str, Builder] = {
    "threshold": build_threshold,
    "rate": build_rate,
    "projection": build_projection,
    "accumulation": build_accumulation,
    "offline": build_offline,
    "stuck": build_stuck,
    "out_of_range": build_out_of_range,
    "spike": build_spike,
}

IMPLICIT = ("offline", "out_of_range")
"""Kinds every sensor gets unless it configures its own or sets the key to ``false``: a
sensor that stops reporting, or reports nonsense, must never go unnoticed."""


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


def implicit_rules(
    sm: YMap, check: FileChecker, ctx: SensorContext, what: str, configured: set[str]
) -> list[Rule] | None:
    """The implicit ``offline`` and ``out_of_range`` rules of a sensor.

    ``offline: false`` turns one off; ``offline: {factor: 5, level: orange}`` tunes it; a rule
    of the same kind in the sensor's ``rules`` replaces it.
    """
    rules: list[Rule] = []
    ok = True
    for kind in IMPLICIT:
        raw = sm.get(kind, True)
        if raw is False or kind in configured:
            continue
        if raw is True:
            if (ctx.range if kind == "out_of_range" else ctx.interval_s) is None:
                continue  # the sensor's own range or interval problem is reported already
            entry = YMap()
            entry.line = sm.line_of(kind)
            entry.key_lines = {}
        else:
            mapped = check.as_map(raw, sm.line_of(kind), f"{what}: {kind!r} (a mapping or false)")
            if mapped is None:
                ok = False
                continue
            entry = mapped
        rule = BUILDERS[kind](entry, kind, check, ctx, f"{what}: {kind}")
        if rule is None:
            ok = False
            continue
        rules.append(rule)
    return rules if ok else None


__all__ = ["BUILDERS", "IMPLICIT", "SensorContext", "build_rule", "implicit_rules"]
