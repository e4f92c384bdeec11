"""The routing tree: matchers, first match, ``continue``, nesting, inheritance, dedupe, drills.

Trees are built as values here (the YAML side is tested with the loader) and alarms are
table-driven through them, as Alertmanager's own tests do.
"""

from __future__ import annotations

import pytest

from alerting.routing import (
    AlarmFacts,
    Decision,
    FloodControl,
    Match,
    NearestDuty,
    Route,
    Routing,
    resolve_rung,
    route,
)
from earlywarn.model import DutyRef, Enterprise, Level, Region

REGIONS = {
    "county": Region("county", "安县", "county", None, (), ("c-duty",)),
    "town": Region("town", "金山镇", "township", "county", (), ("t-duty",)),
}
COUNTY, TOWN = (DutyRef("county"),), (DutyRef("town"),)
ACME = Enterprise(
    "acme",
    "安县示例化工有限公司",
    "hazardous_chemicals",
    "town",
    (),
    (),
    {
        Level.BLUE: (("ops",),),
        Level.YELLOW: (("ops",), ("tech",)),
        Level.ORANGE: (("ops",), ("tech",), ("boss",)),
        Level.RED: (("ops",), ("tech", "boss"), TOWN, COUNTY),
    },
)


def facts(
    level: Level = Level.RED,
    kind: str = "combustible_gas",
    site: str = "tanks",
    drill: bool = False,
) -> AlarmFacts:
    return AlarmFacts("acme", site, kind, level, drill)


def decide(routing: Routing, alarm: AlarmFacts) -> list[Decision]:
    return route(routing, alarm, ACME, REGIONS)


def tree(*routes: Route) -> Routing:
    return Routing(Route(routes=routes, name="default"))


def test_without_routes_the_chain_of_the_level_under_its_policy() -> None:
    for level in Level:
        assert decide(Routing(), facts(level)) == [Decision(ACME.chain[level], level.label)]


GAS = frozenset({"combustible_gas"})
HIGH = frozenset({Level.ORANGE, Level.RED})

# 1. gas at orange or red also calls the county at once (continue);
# 2. the tank farm's level sensors go to the technician under a custom policy, nested:
#    red ones to the boss too;
# 3. everything else: the chain.
TREE = tree(
    Route(Match(kinds=GAS, levels=HIGH), ((DutyRef("county"),),), "red", None, (), True, "gas"),
    Route(
        Match(sites=frozenset({"acme/tanks"}), kinds=frozenset({"tank_level"})),
        (("tech",),),
        "tanks",
        routes=(Route(Match(levels=frozenset({Level.RED})), (("tech",), ("boss",)), name="t-red"),),
        name="tanks",
    ),
    Route(name="chain"),
)


@pytest.mark.parametrize(
    ("alarm", "expected"),
    [
        # continue: the gas route and then the chain, the county left out of the chain's
        # rungs (already called) and trailing empty rung dropped
        (
            facts(Level.RED),
            [
                Decision((COUNTY,), "red", None, "gas"),
                Decision((("ops",), ("tech", "boss"), TOWN), "red", None, "chain"),
            ],
        ),
        # below orange the gas route does not match: the chain alone
        (facts(Level.YELLOW), [Decision((("ops",), ("tech",)), "yellow", None, "chain")]),
        # nested: the child matches and inherits the parent's policy
        (
            facts(Level.RED, "tank_level"),
            [Decision((("tech",), ("boss",)), "tanks", None, "t-red")],
        ),
        # no child matches: the parent handles it (Alertmanager's rule)
        (facts(Level.ORANGE, "tank_level"), [Decision((("tech",),), "tanks", None, "tanks")]),
        # the site matcher is per enterprise: another site is not matched
        (
            facts(Level.BLUE, "tank_level", site="office"),
            [Decision((("ops",),), "blue", None, "chain")],
        ),
    ],
)
def test_route_table(alarm: AlarmFacts, expected: list[Decision]) -> None:
    assert decide(TREE, alarm) == expected


def test_without_continue_the_first_matching_sibling_wins() -> None:
    routing = tree(
        Route(Match(kinds=GAS), (("boss",),), name="first"),
        Route(Match(kinds=GAS), (("tech",),), name="second"),
    )
    assert [d.route for d in decide(routing, facts())] == ["first"]


def test_continue_on_the_last_match_falls_through_to_no_one_else() -> None:
    # Matching only a `continue` route is still a match: the root does not handle it too.
    routing = tree(Route(Match(kinds=GAS), (("boss",),), continue_=True, name="only"))
    assert decide(routing, facts()) == [Decision((("boss",),), "red", None, "only")]


def test_policy_and_channels_are_inherited_and_can_be_overridden() -> None:
    restricted = frozenset({"sms"})
    routing = tree(
        Route(
            Match(kinds=GAS),
            policy="night",
            channels=restricted,
            routes=(
                Route(Match(levels=frozenset({Level.RED})), name="red-child", policy="red"),
                Route(name="other-child"),
            ),
            name="parent",
        )
    )
    red, orange = decide(routing, facts(Level.RED)), decide(routing, facts(Level.ORANGE))
    assert red == [Decision(ACME.chain[Level.RED], "red", restricted, "red-child")]
    assert orange == [Decision(ACME.chain[Level.ORANGE], "night", restricted, "other-child")]


def test_a_person_is_woken_by_the_first_decision_that_names_them() -> None:
    routing = tree(
        Route(Match(), (("ops",), ("boss",)), "red", continue_=True, name="a"),
        Route(Match(), (("boss", "tech"), ("ops",), COUNTY), "orange", name="b"),
    )
    # In "b", boss and ops are gone but the county keeps its place as the third rung, so it
    # is still called when the policy reaches rung 3, not at once.
    assert decide(routing, facts()) == [
        Decision((("ops",), ("boss",)), "red", None, "a"),
        Decision((("tech",), (), COUNTY), "orange", None, "b"),
    ]


def test_a_decision_left_with_nobody_is_dropped() -> None:
    routing = tree(
        Route(Match(), (("ops",),), continue_=True, name="a"),
        Route(Match(), (("ops",),), name="b"),
    )
    assert [d.route for d in decide(routing, facts())] == ["a"]


def test_relative_duty_references_resolve_from_the_enterprise_region() -> None:
    rung = (NearestDuty("township"), NearestDuty("county"), "ops", DutyRef("county"))
    assert resolve_rung(rung, "town", REGIONS) == (TOWN[0], COUNTY[0], "ops", COUNTY[0])
    # A county-level enterprise has no township above it: that target is left out.
    assert resolve_rung(rung, "county", REGIONS) == (COUNTY[0], "ops", COUNTY[0])
    routing = tree(Route(Match(), ((NearestDuty("township"),),), "blue", name="town"))
    assert decide(routing, facts()) == [Decision((TOWN,), "blue", None, "town")]


def test_drills_take_the_drill_route_when_there_is_one() -> None:
    drill = Route(notify=((NearestDuty("township"),),), policy="yellow", name="drill")
    routing = Routing(TREE.root, drill)
    assert decide(routing, facts(drill=True)) == [Decision((TOWN,), "yellow", None, "drill")]
    # A drill route without notify takes the chain; without one, drills route like real ones.
    chain_drill = Routing(TREE.root, Route(policy="blue", name="drill"))
    assert decide(chain_drill, facts(drill=True)) == [
        Decision(ACME.chain[Level.RED], "blue", None, "drill")
    ]
    assert decide(TREE, facts(drill=True)) == decide(TREE, facts())


def test_matchers() -> None:
    match = Match(
        frozenset({"acme"}), frozenset({"tanks", "beta/office"}), GAS, frozenset({Level.RED})
    )
    assert match.matches(facts())
    assert not match.matches(facts(Level.ORANGE))
    assert not match.matches(facts(kind="zone"))
    assert not match.matches(facts(site="office"))
    assert match.matches(AlarmFacts("acme", "tanks", "combustible_gas", Level.RED, drill=True))
    assert not match.matches(AlarmFacts("beta", "tanks", "combustible_gas", Level.RED))
    assert Match().matches(facts(Level.BLUE, "zone"))


def test_flood_control_defaults_and_checks() -> None:
    assert FloodControl() == FloodControl(5, 120_000)
    with pytest.raises(ValueError, match="flood"):
        FloodControl(0, 1000)
