"""Rule presets (``rules/presets/*.yaml``) and building a sensor's rules from registry entries.

A preset is a table of set-points taken from a standard. A sensor names a preset and may
override any set-point; a preset level without a value (``set: null``) is one the standard
leaves to the site (a tank's high-high level) and must be given per sensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from earlywarn.schema import FileChecker
from earlywarn.yamlsource import Problem, YMap, load_text
from rules.levels import Level
from rules.threshold import Direction, Setpoint, ThresholdRule


@dataclass(frozen=True, slots=True)
class PresetLevel:
    """A level of a preset; ``None`` set-points must be supplied by each sensor."""

    level: Level
    label: str
    set: float | None
    clear: float | None


@dataclass(frozen=True, slots=True)
class Preset:
    """A threshold preset as declared in its YAML file."""

    id: str
    file: str
    source: str
    direction: Direction
    unit: str | None
    on_delay_s: float
    deadband: float | None
    levels: tuple[PresetLevel, ...]


_LEVEL_KEYS = ("level", "label", "set", "clear")
_RULE_KEYS = ("id", "kind", "direction", "unit", "on_delay", "deadband", "levels", "source")


def load_presets(problems: list[Problem], folder: Path | None = None) -> dict[str, Preset]:
    """Load every preset shipped in ``rules/presets`` (or ``folder``), recording problems."""
    base: Any = folder if folder is not None else resources.files("rules") / "presets"
    presets: dict[str, Preset] = {}
    for entry in sorted(base.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        name = f"rules/presets/{entry.name}" if folder is None else str(entry)
        data = load_text(entry.read_text(encoding="utf-8"), name, problems)
        check = FileChecker(name, problems)
        if data is None:
            continue
        top = check.as_map(data, 1, "a preset file")
        if top is None:
            continue
        preset = _read_preset(top, check)
        if preset is not None:
            presets[preset.id] = preset
    return presets


def _read_preset(m: YMap, check: FileChecker) -> Preset | None:
    check.known_keys(m, _RULE_KEYS, "a preset")
    pid = check.ident(m, "id", "a preset")
    source = check.text(m, "source", "a preset") or ""
    direction = _direction(m, check, "preset")
    deadband = check.number(m, "deadband", "a preset", required=False)
    on_delay = check.seconds(m, "on_delay", "a preset", 0.0)
    unit = check.text(m, "unit", "a preset", required=False)
    levels = _read_levels(m, check, f"preset {pid}", allow_missing=True)
    if pid is None or direction is None or on_delay is None or levels is None:
        return None
    return Preset(pid, check.file, source, direction, unit, on_delay, deadband, levels)


def _direction(m: YMap, check: FileChecker, what: str) -> Direction | None:
    raw = m.get("direction", "high")
    try:
        return Direction(str(raw))
    except ValueError:
        check.error(m.line_of("direction"), f"{what}: direction must be high or low, got {raw!r}")
        return None


def _level(value: Any, line: int, check: FileChecker) -> Level | None:
    try:
        return Level.parse(str(value))
    except ValueError as exc:
        check.error(line, str(exc))
        return None


def _read_levels(
    m: YMap, check: FileChecker, what: str, *, allow_missing: bool
) -> tuple[PresetLevel, ...] | None:
    raw = check.as_list(m.get("levels"), m.line_of("levels"), f"{what}: 'levels'")
    if raw is None:
        return None
    out: list[PresetLevel] = []
    ok = True
    for item, line in zip(raw, raw.item_lines, strict=True):
        lm = check.as_map(item, line, f"{what}: a level")
        if lm is None:
            ok = False
            continue
        check.known_keys(lm, _LEVEL_KEYS, f"{what}: a level")
        level = _level(lm.get("level"), lm.line_of("level"), check) if "level" in lm else None
        if level is None and "level" not in lm:
            check.error(lm.line, f"{what}: a level is missing the required field 'level'")
        set_ = check.number(lm, "set", f"{what}: level", required=not allow_missing)
        clear = check.number(lm, "clear", f"{what}: level", required=False)
        label = check.text(lm, "label", f"{what}: level", required=False) or ""
        if level is None:
            ok = False
            continue
        out.append(PresetLevel(level, label, set_, clear))
    return tuple(out) if ok else None


def build_rule(
    entry: YMap, presets: dict[str, Preset], check: FileChecker, sensor_unit: str | None, what: str
) -> ThresholdRule | None:
    """Turn one entry of a sensor's ``rules`` list into a :class:`ThresholdRule`.

    ``{preset: NAME, setpoints: {red: 17.5, orange: {set: 16.5, clear: 16.3}}}`` uses a preset;
    ``{id, kind: threshold, direction, levels: [...]}`` spells a rule out.
    """
    if "preset" in entry:
        check.known_keys(entry, ("preset", "id", "setpoints", "on_delay", "deadband"), what)
        name = entry["preset"]
        preset = presets.get(str(name))
        if preset is None:
            known = ", ".join(sorted(presets))
            check.error(entry.line_of("preset"), f"{what}: unknown preset {name!r}; known: {known}")
            return None
        if preset.unit is not None and sensor_unit is not None and preset.unit != sensor_unit:
            check.error(
                entry.line_of("preset"),
                f"{what}: preset {preset.id!r} is in {preset.unit} but the sensor reports "
                f"in {sensor_unit}",
            )
            return None
        rule_id = check.ident(entry, "id", what, required=False) or preset.id
        levels = _apply_overrides(entry, preset, check, what)
        on_delay = check.seconds(entry, "on_delay", what, preset.on_delay_s)
        deadband = check.number(entry, "deadband", what, required=False)
        return _make_rule(
            rule_id,
            preset.direction,
            levels,
            on_delay,
            deadband if deadband is not None else preset.deadband,
            check,
            entry.line_of("preset"),
            what,
        )
    check.known_keys(entry, _RULE_KEYS, what)
    kind = entry.get("kind")
    if kind != "threshold":
        check.error(
            entry.line_of("kind"),
            f"{what}: unknown rule kind {kind!r}; give 'preset: NAME' or 'kind: threshold'",
        )
        return None
    explicit_id = check.ident(entry, "id", what)
    direction = _direction(entry, check, what)
    plevels = _read_levels(entry, check, what, allow_missing=False)
    on_delay = check.seconds(entry, "on_delay", what, 0.0)
    deadband = check.number(entry, "deadband", what, required=False)
    if explicit_id is None or direction is None or plevels is None:
        return None
    return _make_rule(
        explicit_id, direction, list(plevels), on_delay, deadband, check, entry.line, what
    )


def _apply_overrides(
    entry: YMap, preset: Preset, check: FileChecker, what: str
) -> list[PresetLevel] | None:
    levels = {pl.level: pl for pl in preset.levels}
    raw = entry.get("setpoints")
    if raw is None:
        return list(levels.values())
    overrides = check.as_map(raw, entry.line_of("setpoints"), f"{what}: 'setpoints'")
    if overrides is None:
        return None
    ok = True
    given: dict[Level, int] = {}
    for key, value in overrides.items():
        line = overrides.line_of(key)
        level = _level(key, line, check)
        if level is None:
            ok = False
            continue
        if level in given:
            check.error(
                line, f"{what}: set-point {level.label} given twice (first on line {given[level]})"
            )
            ok = False
            continue
        given[level] = line
        if level not in levels:
            have = ", ".join(pl.level.label for pl in preset.levels)
            check.error(line, f"{what}: preset {preset.id!r} has no {level.label} level ({have})")
            ok = False
            continue
        base = levels[level]
        if isinstance(value, YMap):
            check.known_keys(value, ("set", "clear"), f"{what}: set-point {level.label}")
            set_ = check.number(value, "set", f"{what}: {level.label}", required=False)
            clear = check.number(value, "clear", f"{what}: {level.label}", required=False)
            levels[level] = PresetLevel(
                level,
                base.label,
                set_ if set_ is not None else base.set,
                clear if clear is not None else (None if set_ is not None else base.clear),
            )
        else:
            num = check.number_value(value, line, f"{what}: set-point {level.label}")
            if num is None:
                ok = False
                continue
            levels[level] = PresetLevel(level, base.label, num, None)
    return list(levels.values()) if ok else None


def _make_rule(
    rule_id: str,
    direction: Direction,
    levels: list[PresetLevel] | None,
    on_delay_s: float | None,
    deadband: float | None,
    check: FileChecker,
    line: int,
    what: str,
) -> ThresholdRule | None:
    if levels is None or on_delay_s is None:
        return None
    setpoints: list[Setpoint] = []
    for pl in levels:
        name = f"{pl.level.label}{f' ({pl.label})' if pl.label else ''}"
        if pl.set is None:
            check.error(
                line,
                f"{what}: rule {rule_id!r} needs a set-point for {name}: give it under 'setpoints'",
            )
            return None
        clear = pl.clear
        if clear is None:
            if deadband is None:
                check.error(
                    line,
                    f"{what}: rule {rule_id!r} needs a clear set-point for {name} or a 'deadband'",
                )
                return None
            clear = pl.set - deadband if direction is Direction.HIGH else pl.set + deadband
        setpoints.append(Setpoint(pl.level, pl.set, clear, pl.label))
    try:
        return ThresholdRule(rule_id, direction, tuple(setpoints), round(on_delay_s * 1000))
    except ValueError as exc:
        check.error(line, f"{what}: {exc}")
        return None
