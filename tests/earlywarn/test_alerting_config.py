"""Loading ``routing.yaml`` and ``escalation.yaml``: the example, the defaults, every mistake.

The error tests write the small inline registry of ``test_registry`` plus a routing or an
escalation file with one mistake, and check it is reported at the right file and line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerting.policy import DEFAULT_POLICIES, Policy, Step
from alerting.roster import people_of
from alerting.routing import AlarmFacts, Decision, FloodControl, Routing, route
from earlywarn.alerting_config import (
    AlertingConfig,
    AlertingConfigError,
    load_alerting_config,
)
from earlywarn.model import DutyRef, Level
from earlywarn.registry import Registry, RegistryError, load_registry
from earlywarn.yamlsource import Problem
from tests.earlywarn.test_registry import REGIONS, edit, expect, line_no, only, write_registry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "registry"
MIN = 60_000


def load(root: Path, routing: str | None = None, escalation: str | None = None) -> AlertingConfig:
    """The alerting config of the inline registry in ``root`` with these files written."""
    registry = load_registry(root) if (root / "acme.yaml").exists() else None
    if registry is None:
        registry = load_registry(write_registry(root))
    for name, text in (("routing.yaml", routing), ("escalation.yaml", escalation)):
        if text is not None:
            (root / name).write_text(text, encoding="utf-8")
    return load_alerting_config(registry)


def problems(
    root: Path, routing: str | None = None, escalation: str | None = None
) -> list[Problem]:
    with pytest.raises(AlertingConfigError) as info:
        load(root, routing, escalation)
    assert info.value.problems
    assert isinstance(info.value, RegistryError)  # reported like any registry problem
    return info.value.problems


# --- the example and the defaults ---------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> tuple[Registry, AlertingConfig]:
    registry = load_registry(EXAMPLES)
    return registry, load_alerting_config(registry)


def decide(example: tuple[Registry, AlertingConfig], alarm: AlarmFacts) -> list[Decision]:
    registry, config = example
    enterprise = registry.enterprises[alarm.enterprise]
    return route(config.routing, alarm, enterprise, registry.regions)


def test_example_flood_alarm_also_calls_the_county_duty_officer(
    example: tuple[Registry, AlertingConfig],
) -> None:
    registry, _ = example
    alarm = AlarmFacts("qingjiang-water", "h1", "water_level", Level.RED)
    flood, chain = decide(example, alarm)
    assert flood == Decision(((DutyRef("anxian"),),), "red", None, "flood-to-county")
    # The chain's own county rung is left out (already called), trailing rung dropped.
    assert chain.route == "chain"
    assert chain.rungs == registry.enterprises["qingjiang-water"].chain[Level.RED][:-1]
    # Who that is depends on the hour: Wednesday 10:00 刘秀兰, 22:00 王建国 (Shanghai time).
    tz = ZoneInfo("Asia/Shanghai")
    day = int(datetime(2026, 11, 25, 10, tzinfo=tz).timestamp() * 1000)
    night = int(datetime(2026, 11, 25, 22, tzinfo=tz).timestamp() * 1000)
    assert people_of(flood.rungs[0], registry.regions, day) == ("ax-duty-liu",)
    assert people_of(flood.rungs[0], registry.regions, night) == ("ax-duty-wang",)


def test_example_restaurant_leak_tells_the_owner_and_wakes_the_chain(
    example: tuple[Registry, AlertingConfig],
) -> None:
    registry, _ = example
    owner, chain = decide(
        example, AlarmFacts("laojie-restaurants", "r-03", "combustible_gas", Level.ORANGE)
    )
    text = (EXAMPLES / "routing.yaml").read_text(encoding="utf-8")
    child = f"routing.yaml:{line_no(text, 'site: r-03')}"  # unnamed: its file and line
    assert owner == Decision((("r03-owner",),), "yellow", None, child)
    ent = registry.enterprises["laojie-restaurants"]
    assert chain == Decision(ent.chain[Level.ORANGE], "orange", None, "chain")
    # An offline detector (yellow) is not a leak: the chain only.
    yellow = decide(
        example, AlarmFacts("laojie-restaurants", "r-03", "combustible_gas", Level.YELLOW)
    )
    assert [d.route for d in yellow] == ["chain"]


def test_example_drills_go_to_the_township_duty_officer(
    example: tuple[Registry, AlertingConfig],
) -> None:
    alarm = AlarmFacts("huaxin-chem", "tank-farm-1", "combustible_gas", Level.RED, drill=True)
    assert decide(example, alarm) == [Decision(((DutyRef("jinshan"),),), "yellow", None, "drill")]
    _, config = example
    assert config.routing.flood == FloodControl(5, 2 * MIN)
    assert config.policies == DEFAULT_POLICIES


def test_without_alerting_files_the_defaults(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.routing == Routing()
    assert config.policies == DEFAULT_POLICIES


def test_an_empty_routing_file_is_no_routing_file(tmp_path: Path) -> None:
    assert load(tmp_path, "# routes to come\n", "").routing == Routing()


ESCALATION = """\
policies:
  orange:                       # replaces the built-in orange
    steps:
      - {after: 0, rungs: first, channels: [sms, voice]}
      - {after: 2min, rungs: reached, channels: voice, repeat: 2min, until: acked}
      - after: 10min
        rungs: [2, 3]
        channels: [im, email]
        repeat: 10min
        until: [3, 1h]
    cleared: [sms]
  night:
    steps:
      - {channels: [console]}
"""


def test_escalation_file_replaces_and_adds_policies(tmp_path: Path) -> None:
    routing = "routes:\n  - {match: {level: blue}, policy: night}\n"
    config = load(tmp_path, routing, ESCALATION)

    assert config.policies["orange"] == Policy(
        "orange",
        (
            Step(0, "first", ("sms", "voice")),
            Step(2 * MIN, "reached", ("voice",), 2 * MIN, stop_on_clear=False),
            Step(10 * MIN, (2, 3), ("im", "email"), 10 * MIN, True, 3, 60 * MIN),
        ),
        ("sms",),
    )
    # Defaults: after 0, every rung, once, stopping when the alarm clears; no cleared message.
    assert config.policies["night"] == Policy("night", (Step(0, "all", ("console",)),))
    assert config.policies["red"] == DEFAULT_POLICIES["red"]
    assert config.routing.root.routes[0].policy == "night"


def test_routing_file_reads_every_field(tmp_path: Path) -> None:
    routing = """\
routes:
  - name: gas
    match:
      enterprise: acme
      site: [tanks, acme/tanks]
      kind: [combustible_gas, zone]
      level: [">= orange", blue]
    notify: [ops, [tech, boss], duty:township, duty:county]
    policy: red
    channels: [sms, voice, im]
    continue: true
    routes:
      - {match: {level: "< red"}, notify: chain}
flood: {alarms: 10, within: 5min}
"""
    config = load(tmp_path, routing)
    gas = config.routing.root.routes[0]
    assert gas.name == "gas"
    assert gas.match.levels == frozenset({Level.BLUE, Level.ORANGE, Level.RED})
    assert gas.match.sites == frozenset({"tanks", "acme/tanks"})
    assert gas.channels == frozenset({"sms", "voice", "im"})
    assert gas.continue_
    child = gas.routes[0]
    assert (child.notify, child.match.levels) == ("chain", frozenset(Level) - {Level.RED})
    assert config.routing.flood == FloodControl(10, 5 * MIN)
    registry = load_registry(tmp_path)
    decisions = route(
        config.routing,
        AlarmFacts("acme", "tanks", "combustible_gas", Level.RED),
        registry.enterprises["acme"],
        registry.regions,
    )
    assert decisions == [
        Decision(
            (("ops",), ("tech", "boss"), (DutyRef("town"),), (DutyRef("county"),)),
            "red",
            frozenset({"sms", "voice", "im"}),
            "gas",
        )
    ]


# --- routing.yaml mistakes ----------------------------------------------------------------

ROUTING = """\
routes:
  - name: gas
    match: {enterprise: acme, site: tanks, kind: combustible_gas, level: ">= orange"}
    notify: [ops, [tech, boss], duty:county]
    policy: red
    channels: [sms, voice]
    continue: true
  - name: chain
drill:
  notify: [duty:township]
flood: {alarms: 5, within: 2min}
"""


def test_the_routing_used_for_mistakes_is_valid(tmp_path: Path) -> None:
    assert load(tmp_path, ROUTING).routing.root.routes[0].name == "gas"


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("[ops, [tech, boss]", "[ops, [tech, ghost]", ("'notify' names 'ghost'", "not in")),
        ("channels: [sms, voice]", "channels: [sms, pager]", ("unknown channel 'pager'", "im")),
        ("policy: red", "policy: loud", ("unknown policy 'loud'", "orange")),
        ("enterprise: acme,", "enterprise: acne,", ("unknown enterprise 'acne'",)),
        ("site: tanks,", "site: tank,", ("site 'tank' is not a site of",)),
        ("site: tanks,", "site: beta/tanks,", ("site 'tanks' is not a site of enterprise 'beta'",)),
        ("kind: combustible_gas,", "kind: methane,", ("unknown sensor kind 'methane'",)),
        ('level: ">= orange"', 'level: ">= purple"', ("'level' '>= purple' is not a level",)),
        ('level: ">= orange"', 'level: "> red"', ("matches no level",)),
        ("duty:county]", "duty:province]", ("duty:province: region 'province' is not defined",)),
        ("continue: true", "continue: yes please", ("'continue' must be true or false",)),
        ("continue: true", "contine: true", ("unknown field 'contine' in a route",)),
        ("notify: [ops,", "notify: [] #", ("'notify' must be 'chain' or a list of rungs",)),
        ("channels: [sms, voice]", "channels: [email]", ("leave policy 'red'", "nothing to send")),
    ],
)
def test_routing_mistakes(tmp_path: Path, old: str, new: str, words: tuple[str, ...]) -> None:
    text = edit(ROUTING, old, new)
    found = problems(tmp_path, text)
    marker = new.split(",", maxsplit=1)[0].split(" #", maxsplit=1)[0]
    only(found, tmp_path / "routing.yaml", line_no(text, marker), *words)


def test_drill_and_flood_mistakes(tmp_path: Path) -> None:
    text = edit(
        edit(ROUTING, "  notify: [duty:township]", "  notify: [nobody]\n  policy: quiet"),
        "flood: {alarms: 5, within: 2min}",
        "flood: {alarms: 0, within: soon}",
    )
    found = problems(tmp_path, text)
    file = tmp_path / "routing.yaml"
    expect(found, file, line_no(text, "[nobody]"), "drill: 'notify' names 'nobody'")
    expect(found, file, line_no(text, "policy: quiet"), "drill: unknown policy 'quiet'")
    flood = line_no(text, "flood:")
    expect(found, file, flood, "flood: 'alarms' must be a whole number")
    expect(found, file, flood, "flood: 'within'", "expected a duration")
    assert len(found) == 4


def test_relative_duty_reference_must_resolve_for_every_enterprise_matched(
    tmp_path: Path,
) -> None:
    # With the town a village, acme has no township above it: the drill's duty:township
    # cannot be resolved for it.
    regions = edit(REGIONS, "    level: township\n", "    level: village\n")
    write_registry(tmp_path, regions=regions)
    found = problems(tmp_path, ROUTING)
    only(
        found,
        tmp_path / "routing.yaml",
        line_no(ROUTING, "[duty:township]"),
        "drill: for enterprise acme: duty:township: no region of level 'township'",
    )


def test_routing_syntax_and_structure_mistakes(tmp_path: Path) -> None:
    found = problems(tmp_path, "routes:\n  - {name: x\n")
    assert found[0].file == str(tmp_path / "routing.yaml")
    assert found[0].message.startswith("YAML syntax error")
    found = problems(tmp_path, "route:\n  - name: x\n")
    only(found, tmp_path / "routing.yaml", 1, "unknown field 'route' in the routing file")
    found = problems(tmp_path, "routes: {name: x}\n")
    only(found, tmp_path / "routing.yaml", 1, "'routes' must be a list")


def test_nested_route_mistakes_carry_their_own_line(tmp_path: Path) -> None:
    text = edit(
        ROUTING,
        "    continue: true\n",
        "    continue: true\n    routes:\n      - {match: {level: red}, notify: [ghost]}\n",
    )
    found = problems(tmp_path, text)
    line = line_no(text, "[ghost]")
    only(found, tmp_path / "routing.yaml", line, f"route on line {line}", "'ghost'")


# --- escalation.yaml mistakes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        ("channels: [sms, voice]}", "channels: [sms, fax]}", ("policy orange: step 1", "'fax'")),
        ("cleared: [sms]", "cleared: [telegram]", ("'cleared'", "unknown channel 'telegram'")),
        ("rungs: first,", "rungs: second,", ("'rungs' must be first, next, all, reached",)),
        ("rungs: first,", "rungs: 0,", ("counted from 1",)),
        ("until: acked}", "until: forever}", ("'until' must be acked, cleared",)),
        ("until: acked}", "until: [acked, cleared]}", ("cannot be both acked and cleared",)),
        ("repeat: 2min, until", "repeat: 0s, until", ("'repeat' must be a positive interval",)),
        ("after: 2min,", "after: two minutes,", ("'after'", "expected a duration")),
        ("{after: 2min,", "{aftr: 2min,", ("unknown field 'aftr'",)),
        ("{channels: [console]}", "{rungs: all}", ("policy night: step 1", "'channels'")),
        ("  night:", "  night shift:", ("policy name 'night shift' must be an id",)),
    ],
)
def test_escalation_mistakes(tmp_path: Path, old: str, new: str, words: tuple[str, ...]) -> None:
    text = edit(ESCALATION, old, new)
    found = problems(tmp_path, escalation=text)
    marker = new.split(",", maxsplit=1)[0].split("}", maxsplit=1)[0]
    only(found, tmp_path / "escalation.yaml", line_no(text, marker), *words)


def test_until_a_count_needs_a_repeat(tmp_path: Path) -> None:
    text = edit(ESCALATION, "{after: 0, rungs: first,", "{after: 0, until: 3, rungs: first,")
    found = problems(tmp_path, escalation=text)
    only(found, tmp_path / "escalation.yaml", line_no(text, "until: 3"), "needs 'repeat'")


def test_a_policy_without_steps(tmp_path: Path) -> None:
    text = edit(ESCALATION, "    steps:\n      - {channels: [console]}\n", "    steps: []\n")
    found = problems(tmp_path, escalation=text)
    only(found, tmp_path / "escalation.yaml", line_no(text, "steps: []"), "night has no steps")


def test_problems_of_both_files_are_reported_together(tmp_path: Path) -> None:
    # The broken policy is not defined, so the route naming it is a second problem.
    escalation = edit(ESCALATION, "{channels: [console]}", "{channels: [fax]}")
    routing = "routes:\n  - {policy: night}\n  - {notify: [ghost]}\n"
    found = problems(tmp_path, routing, escalation)
    expect(found, tmp_path / "escalation.yaml", line_no(escalation, "[fax]"), "'fax'")
    expect(found, tmp_path / "routing.yaml", 2, "unknown policy 'night'")
    expect(found, tmp_path / "routing.yaml", 3, "'ghost'")
    assert len(found) == 3
