"""Rule presets (``rules/presets/*.yaml``): rules from the standards, completed per sensor.

A preset is written like a rule in the registry (``kind``, ``direction``, ``levels``…) plus
its ``id``, ``source`` and ``unit``. A sensor names a preset and may override any field and
any set-point; a level whose ``set`` is ``null`` is one the standard leaves to the site (a
tank's high-high level, a gauge's 警戒水位) and must be given under ``setpoints``.

Problems in a sensor's use of a preset are reported at the sensor's ``preset:`` line, where the
fix belongs, not inside the preset file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from earlywarn.durations import parse_seconds
from earlywarn.schema import FileChecker
from earlywarn.yamlsource import Problem, YList, YMap, load_text
from rules.levels import Level


@dataclass(frozen=True, slots=True)
class Preset:
    """A preset as declared: its rule fields are kept as YAML, built per sensor."""

    id: str
    file: str
    source: str
    unit: str | None
    entry: YMap


def load_presets(problems: list[Problem], folder: Path | None = None) -> dict[str, Preset]:
    """Load every preset shipped in ``rules/presets`` (or ``folder``), recording problems."""
    base: Any = folder if folder is not None else resources.files("rules") / "presets"
    presets: dict[str, Preset] = {}
    for path in sorted(base.iterdir(), key=lambda e: e.name):
        if not path.name.endswith(".yaml"):
            continue
        name = f"rules/presets/{path.name}" if folder is None else str(path)
        data = load_text(path.read_text(encoding="utf-8"), name, problems)
        check = FileChecker(name, problems)
        if data is None:
            continue
        top = check.as_map(data, 1, "a preset file")
        if top is None:
            continue
        pid = check.ident(top, "id", "a preset")
        source = check.text(top, "source", f"preset {pid}")
        unit = check.text(top, "unit", f"preset {pid}", required=False)
        if pid is None or source is None:
            continue
        if pid in presets:
            check.error(top.line_of("id"), f"duplicate preset id {pid!r}")
            continue
        entry = _copy(top, None)
        for key in ("id", "source", "unit"):
            entry.pop(key, None)
        presets[pid] = Preset(pid, name, source, unit, entry)
    return presets


def resolve(
    entry: YMap, presets: dict[str, Preset], check: FileChecker, unit: str | None, what: str
) -> tuple[str | None, YMap] | None:
    """The complete rule entry for a sensor: the preset (if any) with the sensor's overrides.

    Returns the default rule id (the preset's) and the merged entry, or ``None`` on problems.
    """
    if "preset" not in entry:
        return None, entry
    name = entry["preset"]
    line = entry.line_of("preset")
    preset = presets.get(str(name))
    if preset is None:
        known = ", ".join(sorted(presets))
        check.error(line, f"{what}: unknown preset {name!r}; known: {known}")
        return None
    if preset.unit is not None and unit is not None and preset.unit != unit:
        check.error(
            line,
            f"{what}: preset {preset.id!r} is in {preset.unit} but the sensor reports in {unit}",
        )
        return None
    if "kind" in entry:
        check.error(entry.line_of("kind"), f"{what}: a preset fixes the rule kind; remove 'kind'")
        return None
    merged = _copy(preset.entry, line)
    for key, value in entry.items():
        if key not in ("preset", "setpoints"):
            merged[key] = value
            merged.key_lines[key] = entry.line_of(key)
    if "setpoints" in entry:
        levels = _apply_setpoints(merged, entry, preset, check, what)
        if levels is None:
            return None
        merged["levels"] = levels
    return preset.id, merged


def _copy(value: Any, line: int | None) -> Any:
    """A deep copy of YAML nodes; with ``line``, every line number becomes ``line``."""
    if isinstance(value, YMap):
        out = YMap()
        out.line = value.line if line is None else line
        out.key_lines = {}
        for key, item in value.items():
            out[key] = _copy(item, line)
            out.key_lines[key] = value.line_of(key) if line is None else line
        return out
    if isinstance(value, YList):
        seq = YList(_copy(item, line) for item in value)
        seq.line = value.line if line is None else line
        seq.item_lines = list(value.item_lines) if line is None else [line] * len(value)
        return seq
    return value


def _apply_setpoints(
    merged: YMap, entry: YMap, preset: Preset, check: FileChecker, what: str
) -> YList | None:
    """Replace the preset's set-points by the sensor's ``setpoints`` mapping.

    ``{red: 17.5}`` replaces a set-point (its clear follows from the deadband);
    ``{red: {set: 17.5, clear: 17.3}}`` gives both; for accumulation rules a level maps
    windows to set-points: ``{blue: {1h: 35, 3h: 55}}``.
    """
    overrides = check.as_map(entry["setpoints"], entry.line_of("setpoints"), f"{what}: 'setpoints'")
    levels = merged.get("levels")
    if overrides is None or not isinstance(levels, YList):
        return None
    by_level: dict[Level, YMap] = {}
    for item in levels:
        if isinstance(item, YMap):
            try:
                by_level[Level.parse(str(item.get("level")))] = item
            except ValueError:
                continue
    accumulation = merged.get("kind") == "accumulation"
    given: dict[Level, int] = {}
    ok = True
    for key, value in overrides.items():
        line = overrides.line_of(key)
        try:
            level = Level.parse(str(key))
        except ValueError as exc:
            check.error(line, f"{what}: setpoints: {exc}")
            ok = False
            continue
        if level in given:
            check.error(
                line, f"{what}: set-point {level.label} given twice (first on line {given[level]})"
            )
            ok = False
            continue
        given[level] = line
        target = by_level.get(level)
        if target is None:
            have = ", ".join(lv.label for lv in by_level)
            check.error(line, f"{what}: preset {preset.id!r} has no {level.label} level ({have})")
            ok = False
            continue
        if accumulation:
            ok = _override_windows(target, value, line, check, f"{what}: {level.label}") and ok
        else:
            ok = _override_level(target, value, line, check, f"{what}: {level.label}") and ok
    return levels if ok else None


def _override_level(target: YMap, value: Any, line: int, check: FileChecker, what: str) -> bool:
    if isinstance(value, YMap):
        check.known_keys(value, ("set", "clear"), f"{what} set-point")
        if "set" in value:
            target["set"] = value["set"]
            target.pop("clear", None)
        if "clear" in value:
            target["clear"] = value["clear"]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        target["set"] = value
        target.pop("clear", None)
    else:
        check.error(line, f"{what}: a set-point must be a number or {{set, clear}}")
        return False
    target.key_lines.update(dict.fromkeys(("set", "clear"), line))
    return True


def _override_windows(target: YMap, value: Any, line: int, check: FileChecker, what: str) -> bool:
    windows = target.get("windows")
    if not isinstance(value, YMap) or not isinstance(windows, YList):
        check.error(line, f"{what}: give the windows' set-points, e.g. {{1h: 35, 3h: 55}}")
        return False
    ok = True
    for key, setpoint in value.items():
        try:
            seconds = parse_seconds(key)
        except ValueError as exc:
            check.error(value.line_of(key), f"{what}: {exc}")
            ok = False
            continue
        match = next(
            (
                w
                for w in windows
                if isinstance(w, YMap) and _seconds_or_none(w.get("window")) == seconds
            ),
            None,
        )
        if match is None:
            check.error(value.line_of(key), f"{what}: the preset has no {key} window")
            ok = False
            continue
        ok = _override_level(match, setpoint, value.line_of(key), check, f"{what} {key}") and ok
    return ok


def _seconds_or_none(raw: Any) -> float | None:
    try:
        return parse_seconds(raw)
    except ValueError:
        return None
