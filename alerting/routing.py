"""Routing: which people an alarm goes to, and under which escalation policy.

A tree of routes in the manner of Alertmanager's: every route has a matcher (enterprise,
site, sensor kind, level); an alarm walks down from the root, taking the first child that
matches (and, with ``continue``, its following siblings too); a route none of whose
children match handles the alarm itself. Each handling route becomes a :class:`Decision`:
the rungs to notify and the policy to escalate them with. The root is implicit and matches
everything: the enterprise's chain for the alarm's level under the level's default policy,
so an empty tree is exactly "no routing.yaml".

``notify``, ``policy`` and ``channels`` are inherited down the tree when a route leaves them
out. Relative duty references (``duty:township``, ``duty:county``) are resolved per alarm
from the enterprise's region, since one route may serve enterprises of several townships.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from alerting.policy import default_policy
from alerting.roster import RELATIVE_LEVELS, nearest_region
from earlywarn.model import DutyRef, Enterprise, Level, Region, Rung, Target

__all__ = [
    "CHAIN",
    "RELATIVE_LEVELS",
    "AlarmFacts",
    "Decision",
    "FloodControl",
    "Match",
    "NearestDuty",
    "Route",
    "RouteRung",
    "RouteTarget",
    "Routing",
    "resolve_rung",
    "route",
]

CHAIN: Literal["chain"] = "chain"
"""``notify: chain``: the enterprise's chain for the alarm's level."""


@dataclass(frozen=True, slots=True)
class NearestDuty:
    """``duty:township`` or ``duty:county`` in a route: the duty officer of the nearest region
    at that level at or above the alarm's enterprise's region."""

    level: str

    def __str__(self) -> str:
        return f"duty:{self.level}"


RouteTarget = str | DutyRef | NearestDuty
RouteRung = tuple[RouteTarget, ...]


@dataclass(frozen=True, slots=True)
class AlarmFacts:
    """What routing looks at: where the alarm is, what kind of sensor, which level."""

    enterprise: str
    site: str
    kind: str
    level: Level
    drill: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """A conjunction of optional sets; ``None`` matches anything.

    ``sites`` holds site ids (any enterprise) or ``enterprise/site``, because site ids are
    unique only within their enterprise. ``kinds`` are sensor kinds, or ``zone`` for a zone
    alarm.
    """

    enterprises: frozenset[str] | None = None
    sites: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    levels: frozenset[Level] | None = None

    def matches(self, facts: AlarmFacts) -> bool:
        """Whether an alarm with ``facts`` is matched."""
        if self.enterprises is not None and facts.enterprise not in self.enterprises:
            return False
        if self.sites is not None and not (
            facts.site in self.sites or f"{facts.enterprise}/{facts.site}" in self.sites
        ):
            return False
        if self.kinds is not None and facts.kind not in self.kinds:
            return False
        return self.levels is None or facts.level in self.levels


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the routing tree.

    ``notify``: :data:`CHAIN` or explicit rungs; ``policy``: a policy name; ``channels``: the
    only channels its notifications may use. ``None`` inherits the parent's (the root's: the
    chain, the level's policy, any channel). ``name`` labels decisions for the audit log.
    """

    match: Match = field(default_factory=Match)
    notify: Literal["chain"] | tuple[RouteRung, ...] | None = None
    policy: str | None = None
    channels: frozenset[str] | None = None
    routes: tuple[Route, ...] = ()
    continue_: bool = False
    name: str = ""


@dataclass(frozen=True, slots=True)
class FloodControl:
    """More than ``alarms`` alarms at one site within ``within_ms`` become one grouped message.

    Defaults: more than 5 within 2 minutes — a burst that size is one incident (a gas cloud
    over a tank farm, a storm over a catchment) and one message with a count wakes people
    as surely as twenty.
    """

    alarms: int = 5
    within_ms: int = 120_000

    def __post_init__(self) -> None:
        if self.alarms < 1 or self.within_ms <= 0:
            msg = "flood control needs at least 1 alarm and a positive window"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Routing:
    """The routing configuration: the tree, the drill route and flood control.

    ``drill``: when set, drill alarms take this route instead of the tree (its ``match`` and
    ``routes`` are not used); when ``None`` they are routed like real ones.
    """

    root: Route = field(default_factory=lambda: Route(name="default"))
    drill: Route | None = None
    flood: FloodControl = field(default_factory=FloodControl)


@dataclass(frozen=True, slots=True)
class Decision:
    """Notify ``rungs`` in order under policy ``policy``, on ``channels`` only (``None``: any).

    Rungs hold person ids and :class:`DutyRef` only; a duty reference becomes people at the
    moment of sending (:func:`alerting.roster.people_of`). A rung may be empty when its people
    were already notified by an earlier decision: it keeps its place so the timing of the
    rungs after it does not change. ``route`` names the route that decided, for the audit log.
    """

    rungs: tuple[Rung, ...]
    policy: str
    channels: frozenset[str] | None = None
    route: str = "default"


@dataclass(frozen=True, slots=True)
class _Resolved:
    notify: Literal["chain"] | tuple[RouteRung, ...]
    policy: str | None
    channels: frozenset[str] | None
    name: str


def route(
    routing: Routing,
    facts: AlarmFacts,
    enterprise: Enterprise,
    regions: Mapping[str, Region],
) -> list[Decision]:
    """The decisions for an alarm: one per handling route, in tree order, people deduplicated.

    ``enterprise`` is the alarm's (its chain and region); ``regions`` resolve relative duty
    references. A person (or duty reference) named by an earlier decision is left out of the
    later ones: the first route that names someone decides how they are woken, so order the
    stronger routes first. A decision left with nobody is dropped.
    """
    top = _Resolved(CHAIN, None, None, routing.root.name or "default")
    if facts.drill and routing.drill is not None:
        handling = [_inherit(top, routing.drill)]
    else:
        handling = _walk(routing.root, facts, top) or [_inherit(top, routing.root)]
    decisions: list[Decision] = []
    seen: set[Target] = set()
    for chosen in handling:
        rungs = _rungs(chosen.notify, facts.level, enterprise, regions)
        kept: list[Rung] = []
        for rung in rungs:
            fresh = tuple(dict.fromkeys(t for t in rung if t not in seen))
            seen.update(fresh)
            kept.append(fresh)
        while kept and not kept[-1]:
            kept.pop()
        if kept:
            policy = chosen.policy or default_policy(facts.level)
            decisions.append(Decision(tuple(kept), policy, chosen.channels, chosen.name))
    return decisions


def _inherit(parent: _Resolved, node: Route) -> _Resolved:
    return _Resolved(
        node.notify if node.notify is not None else parent.notify,
        node.policy if node.policy is not None else parent.policy,
        node.channels if node.channels is not None else parent.channels,
        node.name or parent.name,
    )


def _walk(node: Route, facts: AlarmFacts, parent: _Resolved) -> list[_Resolved]:
    """Handling routes under ``node`` (which matches), or ``[]`` if ``node`` does not match."""
    if not node.match.matches(facts):
        return []
    here = _inherit(parent, node)
    found: list[_Resolved] = []
    for child in node.routes:
        below = _walk(child, facts, here)
        if below:
            found.extend(below)
            if not child.continue_:
                break
    return found or [here]


def _rungs(
    notify: Literal["chain"] | tuple[RouteRung, ...],
    level: Level,
    enterprise: Enterprise,
    regions: Mapping[str, Region],
) -> tuple[Rung, ...]:
    if notify == CHAIN:
        return enterprise.chain.get(level, ())
    return tuple(resolve_rung(rung, enterprise.region, regions) for rung in notify)


def resolve_rung(rung: RouteRung, region: str, regions: Mapping[str, Region]) -> Rung:
    """A route's rung with ``duty:township``/``duty:county`` made concrete for ``region``.

    A relative reference with no such region above (the loader rejects it) is left out.
    """
    out: list[Target] = []
    for target in rung:
        if isinstance(target, NearestDuty):
            found = nearest_region(regions, region, target.level)
            if found is not None:
                out.append(DutyRef(found))
        else:
            out.append(target)
    return tuple(out)
