"""Registry loading: the shipped example, and one test per kind of mistake in a registry.

A small valid registry is kept inline (``REGIONS`` and ``ACME``); each error test writes it into
``tmp_path`` with one line changed and checks that :class:`RegistryError` reports the mistake at
the right file and line with a plain message. Expected line numbers are looked up in the text
written, by a marker unique to that line, so the tests say *which* line without counting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from earlywarn.model import DutyRef, Shift
from earlywarn.registry import Registry, RegistryError, RegistrySummary, load_registry
from earlywarn.yamlsource import Problem
from rules.levels import Level
from rules.threshold import Direction, ThresholdRule

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "registry"

REGIONS = """\
regions:
  - id: county
    name: 安县
    level: county
    people:
      - id: c-duty
        name: 王建国
        role: 县应急管理局值班员
        phone: "+8613800010001"
        contacts: {sms: "+8613800010001", voice: "+8613800010001"}
    duty: [c-duty]
  - id: town
    name: 金山镇
    level: township
    parent: county
    people:
      - id: t-duty
        name: 赵志强
        role: 镇应急办值班员
        phone: "+8613800010011"
    duty: [t-duty]
"""

ACME = """\
# A small hazardous-chemical enterprise for the tests.
enterprise:
  id: acme
  name: 安县示例化工有限公司
  kind: hazardous_chemicals
  region: town
  people:
    - id: boss
      name: 孙国栋
      role: 主要负责人
      phone: "+8613800020001"
    - id: tech
      name: 李文静
      role: 技术负责人
      phone: "+8613800020002"
      contacts: {sms: "+8613800020002", email: liwenjing@acme.example.cn}
    - id: ops
      name: 周立军
      role: 操作负责人
      phone: "+8613800020003"
      contacts:
        voice: "+8613800020003"
        sms: "+8613800020003"
        dingtalk: acme-zhoulijun
  chain:
    blue: [ops]
    yellow: [ops, tech]
    orange: [ops, tech, boss]
    red: [ops, tech, boss, t-duty, c-duty]
  sites:
    - id: tanks
      name: 罐区
      location: {lat: 31.5342, lon: 104.4127}
      sensors:
        - id: T1-LT
          name: 1号罐液位
          kind: tank_level
          unit: m
          range: [0, 20]
          interval: 10s
          device: T1
          channel: level
          rules:
            - preset: tank_level_high
              setpoints: {orange: 16.5, red: 17.5}
        - id: T1-TT
          name: 1号罐温度
          kind: temperature
          unit: "°C"
          range: [-20, 80]
          interval: 10s
          device: T1
          channel: temp
          rules:
            - preset: tank_temperature_high
              setpoints: {orange: {set: 45, clear: 42}, red: {set: 55}}
        - id: GD-01
          name: 罐区可燃气体探测器
          kind: combustible_gas
          unit: "%LEL"
          range: [0, 100]
          interval: 5s
          zone: north
          rules:
            - preset: combustible_gas
        - id: TD-01
          name: 罐区有毒气体探测器
          kind: toxic_gas
          unit: "%OEL"
          range: [0, 300]
          rules:
            - id: toxic-custom
              kind: threshold
              direction: high
              levels:
                - {level: yellow, set: 50, clear: 40}
                - {level: red, set: 150, clear: 120}
"""

# A second enterprise that names only duty officers in its chain; its person ``ops`` clashes
# with the one in ACME when both are loaded.
BETA = """\
enterprise:
  id: beta
  name: 安县第二企业
  kind: other
  region: town
  people:
    - id: ops
      name: 吴晓东
      role: 操作负责人
      phone: "+8613800030001"
  chain: {blue: [t-duty], yellow: [t-duty], orange: [t-duty], red: [t-duty, c-duty]}
  sites: []
"""


def edit(text: str, old: str, new: str) -> str:
    """``text`` with the one occurrence of ``old`` replaced by ``new`` (which may span lines)."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times, expected once"
    return text.replace(old, new)


def line_no(text: str, marker: str) -> int:
    """1-based number of the one line of ``text`` containing ``marker``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(hits) == 1, f"{marker!r} is on lines {hits}, expected exactly one"
    return hits[0]


def write_registry(
    root: Path,
    *,
    regions: str = REGIONS,
    enterprise: str = ACME,
    replace: tuple[str, str] | None = None,
    extra: dict[str, str] | None = None,
) -> Path:
    """Write ``regions.yaml`` and ``acme.yaml`` (plus ``extra`` files) into ``root``.

    ``replace=(old, new)`` changes one passage of the enterprise file first (see :func:`edit`).
    """
    root.mkdir(parents=True, exist_ok=True)
    if replace is not None:
        enterprise = edit(enterprise, *replace)
    (root / "regions.yaml").write_text(regions, encoding="utf-8")
    (root / "acme.yaml").write_text(enterprise, encoding="utf-8")
    for name, text in (extra or {}).items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def problems_of(root: Path) -> list[Problem]:
    """The problems loading ``root`` reports; fails the test if it loads."""
    with pytest.raises(RegistryError) as info:
        load_registry(root)
    problems = info.value.problems
    assert problems, "RegistryError without problems"
    assert str(info.value) == "\n".join(str(p) for p in problems)
    return problems


def expect(problems: list[Problem], file: Path, line: int, *words: str) -> Problem:
    """The one problem at ``file:line`` whose message contains every one of ``words``."""
    hits = [
        p
        for p in problems
        if p.file == str(file) and p.line == line and all(w in p.message for w in words)
    ]
    assert len(hits) == 1, f"no single problem at {file.name}:{line} with {words}: {problems}"
    return hits[0]


def only(problems: list[Problem], file: Path, line: int, *words: str) -> Problem:
    """Like :func:`expect`, and that problem is the only one reported."""
    problem = expect(problems, file, line, *words)
    assert problems == [problem]
    return problem


def rule_of(registry: Registry, sensor_uid: str, rule_id: str) -> ThresholdRule:
    """A sensor's rule by id."""
    rules = {r.rule_id: r for r in registry.sensors[sensor_uid].rules}
    return rules[rule_id]


def setpoints(rule: ThresholdRule) -> dict[Level, tuple[float, float]]:
    """``{level: (set, clear)}`` of a rule, rounded so that 16.5 - 0.05 compares as 16.45."""
    return {sp.level: (round(sp.set, 9), round(sp.clear, 9)) for sp in rule.setpoints}


# --- valid registries ----------------------------------------------------------------------


def test_inline_registry_loads(tmp_path: Path) -> None:
    registry = load_registry(write_registry(tmp_path))

    assert registry.summary() == RegistrySummary(
        enterprises=1,
        sites=1,
        sensors=4,
        sensors_by_kind={
            "combustible_gas": 1,
            "tank_level": 1,
            "temperature": 1,
            "toxic_gas": 1,
        },
        rules=12,  # 4 configured + the implicit offline and out_of_range of 4 sensors
        people=5,
        regions=2,
        rules_by_kind={"offline": 4, "out_of_range": 4, "threshold": 4},
    )
    acme = registry.enterprises["acme"]
    assert acme.region == "town"
    # A rung written as one name is a rung of one target.
    assert acme.chain[Level.RED] == (("ops",), ("tech",), ("boss",), ("t-duty",), ("c-duty",))
    assert registry.people["ops"].contacts == (
        ("voice", "+8613800020003"),
        ("sms", "+8613800020003"),
        ("dingtalk", "acme-zhoulijun"),
    )
    assert registry.regions["town"].parent == "county"
    assert registry.regions["town"].duty == ("t-duty",)
    assert registry.regions["town"].roster == ()  # no roster: always on duty
    assert registry.regions["town"].timezone == "Asia/Shanghai"
    site = registry.site("acme", "tanks")
    assert site is not None
    assert site.location == (31.5342, 104.4127)
    assert registry.site("acme", "nowhere") is None


def test_shipped_example_registry_loads() -> None:
    registry = load_registry(EXAMPLES)
    summary = registry.summary()

    assert summary.enterprises == 3
    assert set(summary.sensors_by_kind) >= {
        "tank_level",
        "temperature",
        "pressure",
        "combustible_gas",
        "toxic_gas",
        "rainfall",
        "water_level",
    }
    assert set(registry.enterprises) == {"huaxin-chem", "laojie-restaurants", "qingjiang-water"}
    # The demo raises a leak on restaurant r-03, detector G1.
    leak = registry.resolve("laojie-restaurants", "r-03", "G1", None)
    assert leak is not None
    assert leak.uid == "laojie-restaurants/r-03/G1"
    assert leak.kind == "combustible_gas"
    # Phone numbers are quoted in the files: unquoted, YAML would read them as integers.
    assert all(p.phone.startswith("+86138000") for p in registry.people.values())
    # Every chain climbs to whoever is on duty in the enterprise's region at red.
    for ent in registry.enterprises.values():
        assert set(ent.chain) == set(Level)
        assert (DutyRef(ent.region),) in ent.chain[Level.RED], ent.id
        assert (DutyRef("anxian"),) in ent.chain[Level.RED] or ent.id == "laojie-restaurants"
    # The county and 清江镇 keep rosters; 金山镇's single officer is always on duty.
    assert registry.regions["anxian"].roster
    assert registry.regions["anxian"].duty == ("ax-duty-liu", "ax-duty-wang")
    assert registry.regions["jinshan"].roster == ()


def test_example_tanks_are_multi_channel_devices() -> None:
    registry = load_registry(EXAMPLES)

    for channel, sensor_id, kind in (
        ("level", "T101-LT", "tank_level"),
        ("temp", "T101-TT", "temperature"),
        ("press", "T101-PT", "pressure"),
    ):
        sensor = registry.resolve("huaxin-chem", "tank-farm-1", "T101", channel)
        assert sensor is not None
        assert (sensor.id, sensor.kind) == (sensor_id, kind)
    level = registry.sensors["huaxin-chem/tank-farm-1/T101-LT"]
    assert setpoints(rule_of(registry, level.uid, "tank_level_high")) == {
        Level.ORANGE: (16.5, 16.45),
        Level.RED: (17.5, 17.45),
    }
    assert setpoints(rule_of(registry, level.uid, "tank_level_low")) == {
        Level.ORANGE: (1.5, 1.55),
        Level.RED: (1.0, 1.05),
    }
    gauge = registry.sensors["qingjiang-water/h1/WL-H1"]
    assert [sp.set for sp in gauge.rules[0].setpoints] == [102.0, 103.5, 104.5, 105.8]
    assert registry.sensors["qingjiang-water/p1/RG-P1"].interval_s == 300.0


def test_preset_rule_takes_preset_setpoints_and_deadband(tmp_path: Path) -> None:
    registry = load_registry(write_registry(tmp_path))

    rule = rule_of(registry, "acme/tanks/GD-01", "combustible_gas")
    assert rule.direction is Direction.HIGH
    # GB/T 50493-2019: 25 %LEL → orange, 50 %LEL → red; clear = set - deadband (5).
    assert setpoints(rule) == {Level.ORANGE: (25.0, 20.0), Level.RED: (50.0, 45.0)}
    assert [sp.label for sp in rule.setpoints] == ["一级报警", "二级报警"]
    assert rule.on_delay_ms == 0

    level = rule_of(registry, "acme/tanks/T1-LT", "tank_level_high")
    assert setpoints(level) == {
        Level.ORANGE: (16.5, 16.45),
        Level.RED: (17.5, 17.45),
    }


def test_setpoint_overrides_are_honoured(tmp_path: Path) -> None:
    registry = load_registry(write_registry(tmp_path))

    rule = rule_of(registry, "acme/tanks/T1-TT", "tank_temperature_high")
    # orange gives both set and clear; red gives only set, so clear = set - deadband (1 °C).
    assert setpoints(rule) == {Level.ORANGE: (45.0, 42.0), Level.RED: (55.0, 54.0)}


def test_rule_level_deadband_and_on_delay_override_the_preset(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path,
        replace=(
            "            - preset: combustible_gas\n",
            "            - preset: combustible_gas\n"
            "              deadband: 10\n"
            "              on_delay: 3s\n"
            "              setpoints: {orange: 20}\n",
        ),
    )
    rule = rule_of(load_registry(root), "acme/tanks/GD-01", "combustible_gas")

    assert setpoints(rule) == {Level.ORANGE: (20.0, 10.0), Level.RED: (50.0, 40.0)}
    assert rule.on_delay_ms == 3000


def test_explicit_threshold_rule(tmp_path: Path) -> None:
    registry = load_registry(write_registry(tmp_path))

    rule = rule_of(registry, "acme/tanks/TD-01", "toxic-custom")
    assert rule.direction is Direction.HIGH
    assert setpoints(rule) == {Level.YELLOW: (50.0, 40.0), Level.RED: (150.0, 120.0)}
    # No interval given: the default reporting interval applies.
    assert registry.sensors["acme/tanks/TD-01"].interval_s == 60.0


def test_resolve_by_enterprise_site_device_and_channel(tmp_path: Path) -> None:
    registry = load_registry(write_registry(tmp_path))

    level = registry.resolve("acme", "tanks", "T1", "level")
    temp = registry.resolve("acme", "tanks", "T1", "temp")
    gas = registry.resolve("acme", "tanks", "GD-01", None)
    assert level is not None
    assert temp is not None
    assert gas is not None
    assert (level.uid, level.unit, level.range) == ("acme/tanks/T1-LT", "m", (0.0, 20.0))
    assert temp.uid == "acme/tanks/T1-TT"
    assert (gas.uid, gas.zone, gas.interval_s) == ("acme/tanks/GD-01", "north", 5.0)
    # A multi-channel device has no value of its own; a single-value sensor has no channels.
    assert registry.resolve("acme", "tanks", "T1", None) is None
    assert registry.resolve("acme", "tanks", "GD-01", "level") is None
    assert registry.resolve("acme", "tanks", "T1", "press") is None
    assert registry.resolve("acme", "other-site", "GD-01", None) is None
    assert registry.resolve("nobody", "tanks", "GD-01", None) is None


# --- one test per kind of mistake ----------------------------------------------------------


def test_yaml_syntax_error(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("    blue: [ops]\n", "    blue: [ops\n"))
    text = (root / "acme.yaml").read_text(encoding="utf-8")

    # PyYAML notices the unclosed bracket where the next key begins.
    problems = problems_of(root)
    problem = expect(problems, root / "acme.yaml", line_no(text, "    yellow:"))
    assert problem.message.startswith("YAML syntax error")
    assert "expected ',' or ']'" in problem.message
    assert problems[0] == problem


def test_yaml_syntax_error_is_the_only_problem(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("    blue: [ops]\n", "    blue: [ops\n"))

    assert [p.message.split(":")[0] for p in problems_of(root)] == ["YAML syntax error"]


def test_empty_enterprise_file(tmp_path: Path) -> None:
    root = write_registry(tmp_path, enterprise="# nothing here yet\n")

    only(problems_of(root), root / "acme.yaml", 1, "an enterprise file is empty")


def test_missing_required_field(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=('          unit: "%LEL"\n', ""))

    problem = only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- id: GD-01"),
        "sensor GD-01",
        "missing the required field 'unit'",
    )
    assert problem.message == "sensor GD-01 is missing the required field 'unit'"


def test_missing_range(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("          range: [0, 100]\n", ""))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- id: GD-01"),
        "sensor GD-01",
        "missing the required field 'range'",
    )


def test_unknown_sensor_kind(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=("          kind: combustible_gas\n", "          kind: methane\n")
    )

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "kind: combustible_gas"),
        "sensor GD-01",
        "unknown sensor kind 'methane'",
        "combustible_gas",
        "water_level",
    )


def test_unknown_field(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("      sensors:\n", "      sensros:\n"))
    problems = problems_of(root)

    line = line_no(ACME, "      sensors:")
    expect(
        problems,
        root / "acme.yaml",
        line,
        "unknown field 'sensros' in a site",
        "expected",
        "sensors",
    )
    # Its consequence: the site now has no sensors list, reported where the site starts.
    expect(
        problems,
        root / "acme.yaml",
        line_no(ACME, "- id: tanks"),
        "site tanks: 'sensors' must be a list, got nothing",
    )
    assert len(problems) == 2


def test_unknown_field_in_a_sensor(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("          zone: north\n", "          zoen: north\n"))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "zone: north"),
        "unknown field 'zoen' in a sensor",
    )


def test_duplicate_sensor_id_in_a_site(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("        - id: T1-TT\n", "        - id: T1-LT\n"))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- id: T1-TT"),
        "site tanks: duplicate sensor id 'T1-LT'",
        f"first on line {line_no(ACME, '- id: T1-LT')}",
    )


def test_two_sensors_on_one_device_channel(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=("          channel: temp\n", "          channel: level\n")
    )

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- id: T1-TT"),
        "sensor 'T1-TT' reads the same device and channel as 'T1-LT'",
    )


def test_duplicate_person_id_across_files(tmp_path: Path) -> None:
    root = write_registry(tmp_path, extra={"beta.yaml": BETA})
    first = f"{root / 'acme.yaml'}:{line_no(ACME, '- id: ops')}"

    only(
        problems_of(root),
        root / "beta.yaml",
        line_no(BETA, "- id: ops"),
        "duplicate person id 'ops'",
        f"(also in {first})",
    )


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path,
        replace=(
            "          range: [0, 100]\n",
            "          range: [0, 100]\n          range: [0, 50]\n",
        ),
    )
    text = (root / "acme.yaml").read_text(encoding="utf-8")

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(text, "range: [0, 50]"),
        "duplicate key 'range'",
        f"first given on line {line_no(text, 'range: [0, 100]')}",
    )


def test_dangling_person_in_chain(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("t-duty, c-duty]", "t-duty, nobody]"))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "    red: ["),
        "chain red names 'nobody'",
        "neither a person of this enterprise nor a duty officer",
    )


def test_chain_cannot_name_duty_officers_below_its_region(tmp_path: Path) -> None:
    # The chain climbs from the enterprise's region upwards: a county enterprise cannot call
    # a township's duty officer.
    root = write_registry(tmp_path, replace=("  region: town\n", "  region: county\n"))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "    red: ["),
        "chain red names 't-duty'",
    )


def test_chain_level_missing(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("    blue: [ops]\n", ""))
    text = (root / "acme.yaml").read_text(encoding="utf-8")

    # Reported at the 'chain:' key itself.
    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(text, "  chain:"),
        "enterprise acme: chain has no rungs for blue",
        "every level must say who is called",
    )


def test_unknown_preset(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path,
        replace=(
            "            - preset: combustible_gas\n",
            "            - preset: combustable_gas\n",
        ),
    )

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- preset: combustible_gas"),
        "sensor GD-01: unknown preset 'combustable_gas'",
        "known:",
        "combustible_gas",
    )


def test_preset_setpoint_required(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=("              setpoints: {orange: 16.5, red: 17.5}\n", "")
    )

    problems = problems_of(root)
    line = line_no(ACME, "- preset: tank_level_high")
    file = root / "acme.yaml"
    # Both missing set-points are reported, at the sensor's preset line where they belong.
    expect(
        problems,
        file,
        line,
        "sensor T1-LT: rule 'tank_level_high' needs a set-point for orange (高限)",
        "give it under 'setpoints'",
    )
    expect(problems, file, line, "needs a set-point for red (高高限)")
    assert len(problems) == 2


def test_unit_not_allowed_for_kind(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("          unit: m\n", "          unit: cm\n"))
    problems = problems_of(root)

    expect(
        problems,
        root / "acme.yaml",
        line_no(ACME, "unit: m"),
        "sensor T1-LT: unit 'cm' is not a unit of tank_level",
        "m, mm, %",
    )
    # The preset's unit no longer matches either.
    expect(
        problems,
        root / "acme.yaml",
        line_no(ACME, "- preset: tank_level_high"),
        "preset 'tank_level_high' is in m but the sensor reports in cm",
    )
    assert len(problems) == 2


def test_preset_unit_differs_from_sensor_unit(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("          unit: m\n", "          unit: mm\n"))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- preset: tank_level_high"),
        "preset 'tank_level_high' is in m but the sensor reports in mm",
    )


def test_range_low_not_below_high(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=("          range: [0, 100]\n", "          range: [100, 100]\n")
    )

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "range: [0, 100]"),
        "sensor GD-01: range low 100 must be below range high 100",
    )


def test_clear_on_the_wrong_side_of_set(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path,
        replace=("{level: yellow, set: 50, clear: 40}", "{level: yellow, set: 50, clear: 60}"),
    )

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- id: toxic-custom"),
        "sensor TD-01: rule 'toxic-custom': yellow clear set-point 60 is above its set-point 50",
        "clears on the low side",
    )


def test_override_clear_on_the_wrong_side_of_set(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("{set: 45, clear: 42}", "{set: 45, clear: 47}"))

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "- preset: tank_temperature_high"),
        "orange clear set-point 47 is above its set-point 45",
    )


def test_region_parent_not_defined(tmp_path: Path) -> None:
    regions = edit(REGIONS, "    parent: county\n", "    parent: province\n")
    root = write_registry(tmp_path, regions=regions)
    problems = problems_of(root)

    expect(
        problems,
        root / "regions.yaml",
        line_no(regions, "parent: province"),
        "region town: parent region 'province' is not defined",
    )
    # With the parent gone, the county duty officer is out of the enterprise's reach.
    expect(problems, root / "acme.yaml", line_no(ACME, "    red: ["), "chain red names 'c-duty'")
    assert len(problems) == 2


def test_enterprise_region_not_defined(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("  region: town\n", "  region: village\n"))
    problems = problems_of(root)

    expect(
        problems,
        root / "acme.yaml",
        line_no(ACME, "region: town"),
        "enterprise acme: region 'village' is not defined in regions.yaml",
    )
    assert all(p.file == str(root / "acme.yaml") for p in problems)


def test_several_errors_in_one_file_are_all_reported(tmp_path: Path) -> None:
    text = ACME
    for old, new in (
        ("    blue: [ops]\n", "    blue: [ops, ghost]\n"),
        ("          kind: temperature\n", "          kind: temprature\n"),
        ("          range: [0, 100]\n", "          range: [100, 0]\n"),
        ("            - preset: combustible_gas\n", "            - preset: no_such_preset\n"),
        ('          unit: "%OEL"\n', ""),
    ):
        text = edit(text, old, new)
    root = write_registry(tmp_path, enterprise=text)
    problems = problems_of(root)
    acme = root / "acme.yaml"

    expect(problems, acme, line_no(text, "ghost"), "chain blue names 'ghost'")
    expect(problems, acme, line_no(text, "temprature"), "unknown sensor kind 'temprature'")
    expect(problems, acme, line_no(text, "[100, 0]"), "range low 100 must be below")
    expect(problems, acme, line_no(text, "no_such_preset"), "unknown preset 'no_such_preset'")
    expect(problems, acme, line_no(text, "- id: TD-01"), "missing the required field 'unit'")
    assert len(problems) == 5
    # Reported in the order of the file.
    assert [p.line for p in problems] == sorted(p.line for p in problems)


def test_errors_in_several_files_are_all_reported(tmp_path: Path) -> None:
    regions = edit(REGIONS, "    level: township\n", "")
    root = write_registry(
        tmp_path, regions=regions, replace=("  kind: hazardous_chemicals\n", "  kind: chemical\n")
    )
    problems = problems_of(root)

    expect(
        problems,
        root / "regions.yaml",
        line_no(regions, "- id: town"),
        "region town is missing the required field 'level'",
    )
    expect(
        problems,
        root / "acme.yaml",
        line_no(ACME, "kind: hazardous_chemicals"),
        "unknown kind 'chemical'",
        "hazardous_chemicals",
    )


def test_missing_regions_file_and_directory(tmp_path: Path) -> None:
    root = write_registry(tmp_path / "reg")
    (root / "regions.yaml").unlink()

    problems = problems_of(root)
    expect(problems, root / "regions.yaml", 0, "the regions file is missing")
    # Without regions the duty officers named in the chain cannot be found either.
    expect(problems, root / "acme.yaml", line_no(ACME, "    red: ["), "chain red names 't-duty'")
    expect(problems, root / "acme.yaml", line_no(ACME, "    red: ["), "chain red names 'c-duty'")
    assert len(problems) == 3
    only(problems_of(tmp_path / "absent"), tmp_path / "absent", 0, "registry directory not found")


# --- malformed structure must be reported, never crash the loader -------------------------


def test_a_mapping_as_chain_rung_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    root = write_registry(tmp_path, replace=("    blue: [ops]\n", "    blue: [{id: ops}]\n"))

    expect(problems_of(root), root / "acme.yaml", line_no(ACME, "    blue:"), "chain blue")


def test_the_same_level_twice_in_setpoints_is_a_problem(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=("{orange: 16.5, red: 17.5}", "{orange: 16.5, red: 17.5, 橙色: 3}")
    )

    expect(problems_of(root), root / "acme.yaml", line_no(ACME, "{orange: 16.5"), "orange")


def test_unquoted_phone_number_is_a_problem(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=('      phone: "+8613800020001"\n', "      phone: +8613800020001\n")
    )

    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, '"+8613800020001"'),
        "person boss",
        "'phone' must be quoted text",
    )


def test_merge_keys_custom_tags_and_recursive_aliases_are_problems(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path,
        replace=(
            "  kind: hazardous_chemicals\n",
            "  kind: !plant hazardous_chemicals\n  address: &a [x, *a]\n  <<: {name: x}\n",
        ),
    )
    problems = problems_of(root)
    text = (root / "acme.yaml").read_text(encoding="utf-8")
    file = root / "acme.yaml"

    expect(problems, file, line_no(text, "!plant"), "YAML value not understood", "!plant")
    expect(problems, file, line_no(text, "&a"), "alias refers to itself")
    expect(problems, file, line_no(text, "<<:"), "merge keys ('<<') are not supported")


def test_setpoint_outside_the_instrument_range_is_a_problem(tmp_path: Path) -> None:
    root = write_registry(
        tmp_path, replace=("{orange: 16.5, red: 17.5}", "{orange: 16.5, red: 175}")
    )

    expect(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "preset: tank_level_high"),
        "red set-point 175",
        "outside the instrument range",
        "never alarm",
    )


# --- duty rosters ---------------------------------------------------------------------------

# The county with two officers on a weekly roster: 刘 on working days, 王 on weeknights and in
# 24-hour weekend shifts.
ROSTER = """\
    roster:
      - {days: mon-fri, from: "08:30", to: "17:30", duty: [c-liu]}
      - {days: mon-fri, from: "17:30", to: "08:30", duty: [c-duty]}
      - {days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}
"""
ROSTER_REGIONS = edit(
    edit(REGIONS, "    duty: [c-duty]\n", ROSTER),
    '        contacts: {sms: "+8613800010001", voice: "+8613800010001"}\n',
    '        contacts: {sms: "+8613800010001", voice: "+8613800010001"}\n'
    '      - {id: c-liu, name: 刘秀兰, role: 县应急管理局值班员, phone: "+8613800010002"}\n',
)


def roster_problems(tmp_path: Path, old: str, new: str) -> tuple[Path, str, list[Problem]]:
    """Problems of the roster registry with one passage of its regions file changed."""
    regions = edit(ROSTER_REGIONS, old, new)
    root = write_registry(tmp_path, regions=regions)
    return root / "regions.yaml", regions, problems_of(root)


def test_a_weekly_roster_loads(tmp_path: Path) -> None:
    registry = load_registry(write_registry(tmp_path, regions=ROSTER_REGIONS))

    county = registry.regions["county"]
    weekdays = (0, 1, 2, 3, 4)
    assert county.roster == (
        Shift(weekdays, 510, 1050, ("c-liu",)),
        Shift(weekdays, 1050, 510, ("c-duty",)),
        Shift((5, 6), 510, 510, ("c-duty",)),
    )
    # Everyone who may be on duty, in roster order: what an old-style 'duty' list said.
    assert county.duty == ("c-liu", "c-duty")
    assert county.timezone == "Asia/Shanghai"


def test_days_and_times_are_read_as_written(tmp_path: Path) -> None:
    roster = """\
    roster:
      - {days: "fri-mon, wed", from: "00:00", to: "24:00", duty: [c-duty]}
      - {days: [tue, thu], duty: [c-liu]}
"""
    regions = edit(ROSTER_REGIONS, ROSTER, roster)
    county = load_registry(write_registry(tmp_path, regions=regions)).regions["county"]
    # fri-mon wraps over the weekend; no from/to is the whole day.
    assert county.roster == (
        Shift((0, 2, 4, 5, 6), 0, 1440, ("c-duty",)),
        Shift((1, 3), 0, 1440, ("c-liu",)),
    )


def test_time_zone_for_the_file_and_per_region(tmp_path: Path) -> None:
    regions = "timezone: Asia/Urumqi\n" + edit(
        ROSTER_REGIONS, "    level: township\n", "    level: township\n    timezone: UTC\n"
    )
    registry = load_registry(write_registry(tmp_path, regions=regions))
    assert registry.regions["county"].timezone == "Asia/Urumqi"
    assert registry.regions["town"].timezone == "UTC"


def test_roster_gap_is_reported_with_when(tmp_path: Path) -> None:
    # Weekend all day instead of 24-hour shifts from 08:30: Monday 00:00–08:30 has nobody
    # (and Saturday 00:00–08:30 is covered twice by 王, which is not ambiguous).
    file, regions, problems = roster_problems(
        tmp_path,
        '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}',
        "{days: sat-sun, duty: [c-duty]}",
    )
    only(
        problems,
        file,
        line_no(regions, "    roster:"),
        "region county: the roster leaves nobody on duty Mon 00:00–08:30",
        "must always be reachable",
    )


def test_every_gap_is_reported(tmp_path: Path) -> None:
    file, regions, problems = roster_problems(
        tmp_path, '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}', "{days: sat}"
    )
    # The broken entry is reported, and the gaps are not guessed from the rest.
    only(problems, file, line_no(regions, "{days: sat}"), "missing the required field 'duty'")
    file, regions, problems = roster_problems(
        tmp_path,
        '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}',
        '{days: sat, from: "08:30", to: "20:00", duty: [c-duty]}',
    )
    line = line_no(regions, "    roster:")
    expect(problems, file, line, "nobody on duty Sat 20:00–Mon 08:30")
    assert len(problems) == 1


def test_overlap_with_different_people_is_reported_at_the_later_entry(tmp_path: Path) -> None:
    file, regions, problems = roster_problems(
        tmp_path,
        '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}',
        '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}\n'
        '      - {days: sun, from: "20:00", to: "22:00", duty: [c-liu]}',
    )
    only(
        problems,
        file,
        line_no(regions, 'days: sun, from: "20:00"'),
        "region county: roster entry overlaps the one on line "
        f"{line_no(regions, 'days: sat-sun')} (Sun 20:00–22:00) with different people",
        "split the entries",
    )


def test_overlap_naming_the_same_people_is_allowed(tmp_path: Path) -> None:
    regions = edit(
        ROSTER_REGIONS,
        '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}',
        '{days: sat-sun, from: "08:30", to: "08:30", duty: [c-duty]}\n'
        "      - {days: sat, duty: [c-duty]}",
    )
    load_registry(write_registry(tmp_path, regions=regions))


@pytest.mark.parametrize(
    ("old", "new", "marker", "words"),
    [
        ('from: "17:30"', "from: 17:30", "from: 17:30", ("'from' must be quoted", "1050")),
        ('to: "17:30"', 'to: "17:61"', "17:61", ("'to' must be a time",)),
        (
            'from: "08:30", to: "17:30"',
            'from: "08:30"',
            'days: mon-fri, from: "08:30", duty',
            ("needs both 'from' and 'to'",),
        ),
        (
            'days: mon-fri, from: "08:30", to: "17:30"',
            'days: mon-fry, from: "08:30", to: "17:30"',
            "mon-fry",
            ("'days' must be days", "mon-fri"),
        ),
        (
            "duty: [c-liu]",
            "duty: [t-duty]",
            "duty: [t-duty]}",
            ("duty officer 't-duty' is not one of this region's people",),
        ),
        ("duty: [c-liu]", "duty: []", "duty: []", ("a roster entry names nobody",)),
        (
            '{days: mon-fri, from: "08:30"',
            '{dias: mon-fri, from: "08:30"',
            "dias",
            ("unknown field 'dias'",),
        ),
    ],
)
def test_roster_entry_mistakes(
    tmp_path: Path, old: str, new: str, marker: str, words: tuple[str, ...]
) -> None:
    file, regions, problems = roster_problems(tmp_path, old, new)
    expect(problems, file, line_no(regions, marker), "region county", *words)


def test_duty_and_roster_together_is_a_problem(tmp_path: Path) -> None:
    file, regions, problems = roster_problems(tmp_path, ROSTER, "    duty: [c-duty]\n" + ROSTER)
    only(problems, file, line_no(regions, "    roster:"), "either 'duty'", "or 'roster', not both")


def test_unknown_time_zone_is_a_problem(tmp_path: Path) -> None:
    file, regions, problems = roster_problems(
        tmp_path, "    level: county\n", "    level: county\n    timezone: Asia/Beijing\n"
    )
    only(problems, file, line_no(regions, "Asia/Beijing"), "unknown time zone 'Asia/Beijing'")


# --- duty references in chains ------------------------------------------------------------

RED_CHAIN = "    red: [ops, tech, boss, t-duty, c-duty]\n"


def chain_problems(tmp_path: Path, red: str, region: str = "town") -> tuple[Path, list[Problem]]:
    root = write_registry(
        tmp_path,
        regions=ROSTER_REGIONS,
        enterprise=edit(edit(ACME, RED_CHAIN, red), "  region: town\n", f"  region: {region}\n"),
    )
    return root / "acme.yaml", problems_of(root)


def test_chain_rungs_take_duty_references_and_lists(tmp_path: Path) -> None:
    red = "    red: [ops, [tech, boss], duty:township, duty:county, duty:town]\n"
    root = write_registry(tmp_path, regions=ROSTER_REGIONS, replace=(RED_CHAIN, red))
    acme = load_registry(root).enterprises["acme"]

    assert acme.chain[Level.RED] == (
        ("ops",),
        ("tech", "boss"),  # a list is one rung: notified together
        (DutyRef("town"),),  # duty:township, resolved from the enterprise's region
        (DutyRef("county"),),
        (DutyRef("town"),),
    )


@pytest.mark.parametrize(
    ("red", "region", "words"),
    [
        ("[ops, duty:township]", "county", ("duty:township: no region of level 'township'",)),
        ("[ops, duty:town]", "county", ("duty:town: region 'town' is not region 'county' or",)),
        ("[ops, duty:village]", "town", ("region 'village' is not defined in regions.yaml",)),
        ("[ops, [tech, {id: boss}]]", "town", ("a rung must be a person id, a duty reference",)),
        ("[ops, [tech, ghost]]", "town", ("chain red names 'ghost'",)),
    ],
)
def test_chain_duty_reference_mistakes(
    tmp_path: Path, red: str, region: str, words: tuple[str, ...]
) -> None:
    file, problems = chain_problems(tmp_path, f"    red: {red}\n", region)
    only(problems, file, line_no(ACME, "    red: ["), "enterprise acme: chain red", *words)


def test_duty_reference_to_a_region_without_duty_officers(tmp_path: Path) -> None:
    regions = edit(REGIONS, "    duty: [t-duty]\n", "")
    root = write_registry(
        tmp_path,
        regions=regions,
        replace=(RED_CHAIN, "    red: [ops, duty:township]\n"),
    )
    only(
        problems_of(root),
        root / "acme.yaml",
        line_no(ACME, "    red: ["),
        "duty:township: region 'town' has no duty officers",
    )


def test_alerting_files_are_not_read_as_enterprises(tmp_path: Path) -> None:
    # routing.yaml and escalation.yaml are read by earlywarn.alerting_config, channels.yaml by
    # the channel settings: none of them is an enterprise file.
    junk = "not: an enterprise\n"
    root = write_registry(
        tmp_path,
        extra={"routing.yaml": junk, "escalation.yaml": junk, "channels.yaml": junk},
    )
    assert set(load_registry(root).enterprises) == {"acme"}
