"""Loading ``routing.yaml`` and ``escalation.yaml`` from the registry directory.

Both files are optional: without them every alarm goes to its enterprise's chain for its
level under the built-in policy of that level (:data:`alerting.policy.DEFAULT_POLICIES`).
What they say is checked against the loaded :class:`~earlywarn.registry.Registry` (unknown
person, enterprise, site, sensor kind, region, duty reference, channel or policy) and every
problem is reported as ``file:line: message`` in one pass, like the registry's own; the
alerting packages receive typed values and never see YAML.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alerting.policy import (
    CHANNEL_NAMES,
    DEFAULT_POLICIES,
    SELECTORS,
    Policy,
    RungSelector,
    Step,
    default_policy,
    restrict,
)
from alerting.routing import (
    CHAIN,
    RELATIVE_LEVELS,
    FloodControl,
    Match,
    NearestDuty,
    Route,
    RouteRung,
    RouteTarget,
    Routing,
)
from earlywarn.durations import parse_seconds
from earlywarn.kinds import KINDS
from earlywarn.model import DutyRef, Level
from earlywarn.registry import DUTY_PREFIX, Registry, RegistryError, resolve_duty_ref
from earlywarn.schema import ID_PATTERN, FileChecker
from earlywarn.yamlsource import Problem, YList, YMap, load_file

__all__ = [
    "ESCALATION_FILE",
    "ROUTING_FILE",
    "AlertingConfig",
    "AlertingConfigError",
    "load_alerting_config",
]

ROUTING_FILE = "routing.yaml"
ESCALATION_FILE = "escalation.yaml"
ZONE_KIND = "zone"
"""The ``kind`` of a zone alarm, which a route may match like a sensor kind."""


class AlertingConfigError(RegistryError):
    """``routing.yaml`` or ``escalation.yaml`` has problems; ``problems`` lists them all.

    A :class:`RegistryError`, since both files are part of the registry directory: whoever
    reports registry problems reports these the same way.
    """


@dataclass(frozen=True)
class AlertingConfig:
    """The checked routing tree and every escalation policy by name (built-in and from file)."""

    routing: Routing
    policies: Mapping[str, Policy]


def load_alerting_config(registry: Registry, path: Path | str | None = None) -> AlertingConfig:
    """Read the alerting files of ``path`` (default: the registry's directory) and check them.

    Raises :class:`AlertingConfigError` with every problem found.
    """
    root = Path(path) if path is not None else registry.path
    problems: list[Problem] = []
    policies: dict[str, Policy] = dict(DEFAULT_POLICIES)
    escalation = root / ESCALATION_FILE
    if escalation.exists():
        policies.update(_read_escalation(escalation, problems))
    routing = Routing()
    if (root / ROUTING_FILE).exists():
        routing = _RoutingReader(root / ROUTING_FILE, problems, registry, policies).read()
    if problems:
        raise AlertingConfigError(problems)
    return AlertingConfig(routing, policies)


def _top(path: Path, check: FileChecker, keys: tuple[str, ...], what: str) -> YMap | None:
    """The file's top mapping; an empty file (all comments) is the same as no file."""
    data = load_file(path, check.problems)
    if data is None:
        return None
    top = check.as_map(data, 1, what)
    if top is not None:
        check.known_keys(top, keys, what)
    return top


def _ms(value: Any, line: int, check: FileChecker, what: str) -> int | None:
    try:
        return round(parse_seconds(value) * 1000)
    except ValueError as exc:
        check.error(line, f"{what}: {exc}")
        return None


def _names(value: Any, line: int, check: FileChecker, what: str) -> list[tuple[str, int]] | None:
    """A name or a list of names, each with its line."""
    if isinstance(value, str):
        return [(value, line)]
    if isinstance(value, YList) and value:
        out = []
        for item, item_line in zip(value, value.item_lines, strict=True):
            if not isinstance(item, str):
                check.error(item_line, f"{what}: expected a name, got {item!r}")
                return None
            out.append((item, item_line))
        return out
    check.error(line, f"{what}: expected a name or a list of names, got {value!r}")
    return None


def _channels(value: Any, line: int, check: FileChecker, what: str) -> tuple[str, ...] | None:
    names = _names(value, line, check, what)
    if names is None:
        return None
    ok = True
    for name, name_line in names:
        if name not in CHANNEL_NAMES:
            check.error(
                name_line,
                f"{what}: unknown channel {name!r}; known: {', '.join(CHANNEL_NAMES)}",
            )
            ok = False
    return tuple(dict.fromkeys(n for n, _ in names)) if ok else None


# --- escalation.yaml ----------------------------------------------------------------------


def _read_escalation(path: Path, problems: list[Problem]) -> dict[str, Policy]:
    check = FileChecker(str(path), problems)
    top = _top(path, check, ("policies",), "the escalation file")
    if top is None:
        return {}
    pm = check.as_map(top.get("policies"), top.line_of("policies"), "'policies'")
    policies: dict[str, Policy] = {}
    for name, body in (pm or {}).items():
        line = pm.line_of(name) if pm is not None else 0
        if not ID_PATTERN.match(name):
            check.error(line, f"policy name {name!r} must be an id (letters, digits, '_.-')")
            continue
        policy = _read_policy(name, body, line, check)
        if policy is not None:
            policies[name] = policy
    return policies


def _read_policy(name: str, body: Any, line: int, check: FileChecker) -> Policy | None:
    what = f"policy {name}"
    bm = check.as_map(body, line, what)
    if bm is None:
        return None
    check.known_keys(bm, ("steps", "cleared"), what)
    slist = check.as_list(bm.get("steps"), bm.line_of("steps"), f"{what}: 'steps'")
    if slist is not None and not slist:
        check.error(bm.line_of("steps"), f"{what} has no steps")
    steps = []
    ok = slist is not None
    for index, (item, item_line) in enumerate(
        zip(slist or [], slist.item_lines if slist else [], strict=True), start=1
    ):
        step = _read_step(item, item_line, check, f"{what}: step {index}")
        ok = ok and step is not None
        if step is not None:
            steps.append(step)
    cleared: tuple[str, ...] | None = ()
    if bm.get("cleared"):
        cleared = _channels(bm["cleared"], bm.line_of("cleared"), check, f"{what}: 'cleared'")
    if not ok or not steps or cleared is None:
        return None
    return Policy(name, tuple(steps), cleared)


def _read_step(item: Any, line: int, check: FileChecker, what: str) -> Step | None:
    sm = check.as_map(item, line, what)
    if sm is None:
        return None
    check.known_keys(sm, ("after", "rungs", "channels", "repeat", "until"), what)
    before = len(check.problems)
    after = _ms(sm.get("after", 0), sm.line_of("after"), check, f"{what}: 'after'")
    rungs = _read_selector(sm, check, what)
    channels: tuple[str, ...] | None = None
    if "channels" not in sm:
        check.error(sm.line, f"{what} is missing the required field 'channels'")
    else:
        channels = _channels(sm["channels"], sm.line_of("channels"), check, f"{what}: 'channels'")
    repeat = None
    if sm.get("repeat") is not None:
        repeat = _ms(sm["repeat"], sm.line_of("repeat"), check, f"{what}: 'repeat'")
        if repeat == 0:
            check.error(sm.line_of("repeat"), f"{what}: 'repeat' must be a positive interval")
    until = _read_until(sm, check, what, repeat is not None)
    if after is None or rungs is None or channels is None or until is None:
        return None
    if len(check.problems) > before:
        return None
    return Step(after, rungs, channels, repeat, *until)


def _read_selector(sm: YMap, check: FileChecker, what: str) -> RungSelector | None:
    """``first``, ``next``, ``all``, ``reached``, a rung number or a list of them (from 1)."""
    raw = sm.get("rungs", "all")
    line = sm.line_of("rungs")
    if raw in SELECTORS:
        return raw  # type: ignore[no-any-return]
    numbers = raw if isinstance(raw, YList) else [raw]
    if numbers and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in numbers):
        return tuple(int(n) for n in numbers)
    check.error(
        line,
        f"{what}: 'rungs' must be {', '.join(SELECTORS)}, or rung numbers counted from 1, "
        f"got {raw!r}",
    )
    return None


_UNIT = re.compile(r"[a-z]", re.IGNORECASE)


def _is_duration(text: str) -> bool:
    try:
        parse_seconds(text)
    except ValueError:
        return False
    return True


def _read_until(
    sm: YMap, check: FileChecker, what: str, repeats: bool
) -> tuple[bool, int | None, int | None] | None:
    """``(stop_on_clear, max_repeats, repeat_for_ms)`` from ``until``.

    ``cleared`` (the default): stop at the ack or when the alarm clears; ``acked``: only at
    the ack; a whole number: at most that many repeats; a duration with its unit (``1h``):
    repeats within that long of the first send. A list combines them.
    """
    raw = sm.get("until", "cleared")
    line = sm.line_of("until")
    items = list(raw) if isinstance(raw, YList) else [raw]
    stop_on_clear: bool | None = None
    count: int | None = None
    span: int | None = None
    for item in items:
        if item in ("acked", "cleared"):
            wanted = item == "cleared"
            if stop_on_clear is not None and stop_on_clear != wanted:
                check.error(line, f"{what}: 'until' cannot be both acked and cleared")
                return None
            stop_on_clear = wanted
        elif isinstance(item, int) and not isinstance(item, bool) and item >= 1 and count is None:
            count = item
        elif isinstance(item, str) and _UNIT.search(item) and span is None and _is_duration(item):
            span = round(parse_seconds(item) * 1000)
        else:
            check.error(
                line,
                f"{what}: 'until' must be acked, cleared, a number of repeats (6) or a "
                f"duration with its unit (1h), or a list of them; got {item!r}",
            )
            return None
    if (count is not None or span is not None) and not repeats:
        check.error(line, f"{what}: a number or duration in 'until' needs 'repeat'")
        return None
    return (stop_on_clear is not False, count, span)


# --- routing.yaml -------------------------------------------------------------------------

_ROUTE_KEYS = ("name", "match", "notify", "policy", "channels", "continue", "routes")
_MATCH_KEYS = ("enterprise", "site", "kind", "level")
_COMPARE = re.compile(r"^\s*(>=|<=|>|<|=)?\s*(\S+)\s*$")
_OPS: dict[str, Callable[[Level, Level], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}


def _comparison(text: str) -> tuple[str, Level | None]:
    """``(operator, level)`` from ``red`` or ``">= orange"``; the level is ``None`` if unknown."""
    found = _COMPARE.match(text)
    if found is None:
        return ("=", None)
    op, label = found.groups()
    try:
        return (op or "=", Level.parse(label))
    except ValueError:
        return ("=", None)


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a route can see from its place in the tree: for checks only."""

    enterprises: frozenset[str]
    levels: frozenset[Level]
    policy: str | None
    channels: frozenset[str] | None


class _RoutingReader:
    """Reads one ``routing.yaml`` against a registry and the known policies."""

    def __init__(
        self,
        path: Path,
        problems: list[Problem],
        registry: Registry,
        policies: Mapping[str, Policy],
    ) -> None:
        self.path = path
        self.check = FileChecker(str(path), problems)
        self.registry = registry
        self.policies = policies

    def read(self) -> Routing:
        check = self.check
        top = _top(self.path, check, ("routes", "drill", "flood"), "the routing file")
        if top is None:
            return Routing()
        scope = _Scope(frozenset(self.registry.enterprises), frozenset(Level), None, None)
        children: tuple[Route, ...] = ()
        if "routes" in top:
            children = self._routes(top["routes"], top.line_of("routes"), scope, "'routes'")
        drill = None
        if "drill" in top:
            drill = self._drill(top["drill"], top.line_of("drill"), scope)
        flood = FloodControl()
        if "flood" in top:
            flood = self._flood(top["flood"], top.line_of("flood")) or flood
        return Routing(Route(routes=children, name="default"), drill, flood)

    def _routes(self, value: Any, line: int, scope: _Scope, what: str) -> tuple[Route, ...]:
        rlist = self.check.as_list(value, line, what)
        routes = []
        for item, item_line in zip(rlist or [], rlist.item_lines if rlist else [], strict=True):
            route = self._route(item, item_line, scope)
            if route is not None:
                routes.append(route)
        return tuple(routes)

    def _route(self, item: Any, line: int, parent: _Scope) -> Route | None:
        check = self.check
        what = f"route on line {line}"
        rm = check.as_map(item, line, "a route")
        if rm is None:
            return None
        check.known_keys(rm, _ROUTE_KEYS, "a route")
        before = len(check.problems)
        name = check.text(rm, "name", what, required=False) or f"{self.path.name}:{line}"
        match = Match()
        if "match" in rm:
            match = self._match(rm["match"], rm.line_of("match"), parent, what) or match
        scope = _Scope(
            frozenset(e for e in parent.enterprises if self._may_match(match, e)),
            parent.levels & match.levels if match.levels is not None else parent.levels,
            parent.policy,
            parent.channels,
        )
        notify = self._notify(rm, scope, what)
        policy = self._policy(rm, what)
        channels = self._restriction(rm, what)
        scope = _Scope(
            scope.enterprises,
            scope.levels,
            policy or scope.policy,
            channels if channels is not None else scope.channels,
        )
        if "channels" in rm or "policy" in rm:  # else the parent checked what it inherits
            self._check_channels(
                scope, rm.line_of("channels" if "channels" in rm else "policy"), what
            )
        cont = rm.get("continue", False)
        if not isinstance(cont, bool):
            check.error(rm.line_of("continue"), f"{what}: 'continue' must be true or false")
        children: tuple[Route, ...] = ()
        if "routes" in rm:
            children = self._routes(rm["routes"], rm.line_of("routes"), scope, f"{what}: 'routes'")
        if len(check.problems) > before:
            return None
        return Route(match, notify, policy, channels, children, cont is True, name)

    def _may_match(self, match: Match, enterprise: str) -> bool:
        if match.enterprises is not None and enterprise not in match.enterprises:
            return False
        if match.sites is None:
            return True
        ent = self.registry.enterprises[enterprise]
        return any(s.id in match.sites or f"{enterprise}/{s.id}" in match.sites for s in ent.sites)

    def _match(self, value: Any, line: int, parent: _Scope, what: str) -> Match | None:
        check = self.check
        mm = check.as_map(value, line, f"{what}: 'match'")
        if mm is None:
            return None
        check.known_keys(mm, _MATCH_KEYS, f"{what}: 'match'")
        enterprises = sites = kinds = None
        levels = None
        if "enterprise" in mm:
            enterprises = self._known(
                mm, "enterprise", what, set(self.registry.enterprises), "enterprise"
            )
        if "kind" in mm:
            kinds = self._known(mm, "kind", what, {*KINDS, ZONE_KIND}, "sensor kind")
        if "site" in mm:
            sites = self._sites(mm, what, enterprises or parent.enterprises)
        if "level" in mm:
            levels = self._levels(mm["level"], mm.line_of("level"), what)
        return Match(enterprises, sites, kinds, levels)

    def _known(
        self, mm: YMap, key: str, what: str, known: set[str], noun: str
    ) -> frozenset[str] | None:
        names = _names(mm[key], mm.line_of(key), self.check, f"{what}: {key!r}")
        if names is None:
            return None
        for name, line in names:
            if name not in known:
                self.check.error(
                    line, f"{what}: unknown {noun} {name!r}; known: {', '.join(sorted(known))}"
                )
        return frozenset(n for n, _ in names)

    def _sites(self, mm: YMap, what: str, enterprises: frozenset[str]) -> frozenset[str] | None:
        names = _names(mm["site"], mm.line_of("site"), self.check, f"{what}: 'site'")
        if names is None:
            return None
        known = self.registry.enterprises
        for name, line in names:
            ent_id, _, site_id = name.rpartition("/")
            owners = [ent_id] if ent_id else sorted(e for e in enterprises if e in known)
            if not ent_id and not owners:
                continue  # the enterprises matched are unknown: reported already
            if not any(self.registry.site(e, site_id) is not None for e in owners):
                where = f"enterprise {ent_id!r}" if ent_id else "the enterprises this route matches"
                self.check.error(line, f"{what}: site {site_id!r} is not a site of {where}")
        return frozenset(n for n, _ in names)

    def _levels(self, value: Any, line: int, what: str) -> frozenset[Level] | None:
        """``red``, ``[orange, red]`` or a comparison such as ``">= orange"``."""
        names = _names(value, line, self.check, f"{what}: 'level'")
        if names is None:
            return None
        levels: set[Level] = set()
        for name, name_line in names:
            op, level = _comparison(name)
            if level is None:
                self.check.error(
                    name_line,
                    f"{what}: 'level' {name!r} is not a level (blue, yellow, orange, red) "
                    'or a comparison such as ">= orange" (quoted: YAML reads > itself)',
                )
                return None
            levels.update(lvl for lvl in Level if _OPS[op](lvl, level))
        if not levels:
            self.check.error(line, f"{what}: 'level' {value!r} matches no level")
            return None
        return frozenset(levels)

    def _notify(
        self, rm: YMap, scope: _Scope, what: str
    ) -> Literal["chain"] | tuple[RouteRung, ...] | None:
        if "notify" not in rm:
            return None
        raw = rm["notify"]
        line = rm.line_of("notify")
        if raw == CHAIN:
            return CHAIN
        rlist = raw if isinstance(raw, YList) and raw else None
        if rlist is None:
            self.check.error(
                line, f"{what}: 'notify' must be 'chain' or a list of rungs, got {raw!r}"
            )
            return None
        rungs: list[RouteRung] = []
        for item, item_line in zip(rlist, rlist.item_lines, strict=True):
            names = item if isinstance(item, YList) and item else [item]
            rung: list[RouteTarget] = []
            for name in names:
                target = self._target(name, item_line, scope, what)
                if target is not None:
                    rung.append(target)
            rungs.append(tuple(rung))
        return tuple(rungs)

    def _target(self, name: Any, line: int, scope: _Scope, what: str) -> RouteTarget | None:
        """A person id, ``duty:<region>``, or ``duty:township``/``duty:county``.

        The routing file is the county's: it may send an alarm to any registered person or
        region. A relative reference must resolve for every enterprise the route can match.
        """
        check = self.check
        if not isinstance(name, str):
            check.error(
                line,
                f"{what}: a rung must be a person id, a duty reference (duty:township, "
                f"duty:county, duty:<region>) or a list of them, got {name!r}",
            )
            return None
        if not name.startswith(DUTY_PREFIX):
            if name not in self.registry.people:
                check.error(line, f"{what}: 'notify' names {name!r}, who is not in the registry")
                return None
            return name
        scope_name = name.removeprefix(DUTY_PREFIX)
        regions = self.registry.regions
        if scope_name in RELATIVE_LEVELS:
            ok = True
            for ent_id in sorted(scope.enterprises):
                region = self.registry.enterprises[ent_id].region
                found = resolve_duty_ref(name, region, regions)
                if isinstance(found, str):
                    check.error(line, f"{what}: for enterprise {ent_id}: {found}")
                    ok = False
            return NearestDuty(scope_name) if ok else None
        if scope_name not in regions:
            check.error(line, f"{what}: {name}: region {scope_name!r} is not defined")
            return None
        if not regions[scope_name].duty:
            check.error(line, f"{what}: {name}: region {scope_name!r} has no duty officers")
            return None
        return DutyRef(scope_name)

    def _policy(self, rm: YMap, what: str) -> str | None:
        if "policy" not in rm:
            return None
        name = rm["policy"]
        if not isinstance(name, str) or name not in self.policies:
            self.check.error(
                rm.line_of("policy"),
                f"{what}: unknown policy {name!r}; known: {', '.join(sorted(self.policies))}",
            )
            return None
        return name

    def _restriction(self, rm: YMap, what: str) -> frozenset[str] | None:
        if "channels" not in rm:
            return None
        found = _channels(rm["channels"], rm.line_of("channels"), self.check, f"{what}: 'channels'")
        return frozenset(found) if found is not None else None

    def _check_channels(self, scope: _Scope, line: int, what: str) -> None:
        """A channel restriction must leave each policy the route may use something to send."""
        if scope.channels is None:
            return
        names = (
            [scope.policy]
            if scope.policy is not None
            else [default_policy(level) for level in sorted(scope.levels)]
        )
        for name in names:
            policy = self.policies.get(name)
            if policy is not None and not restrict(policy.channels, scope.channels):
                self.check.error(
                    line,
                    f"{what}: channels {', '.join(sorted(scope.channels))} leave policy "
                    f"{name!r} ({', '.join(sorted(policy.channels))}) nothing to send on",
                )

    def _drill(self, value: Any, line: int, scope: _Scope) -> Route | None:
        check = self.check
        what = "drill"
        dm = check.as_map(value, line, "'drill'")
        if dm is None:
            return None
        check.known_keys(dm, ("name", "notify", "policy", "channels"), "'drill'")
        before = len(check.problems)
        notify = self._notify(dm, scope, what)
        policy = self._policy(dm, what)
        channels = self._restriction(dm, what)
        drill_scope = _Scope(scope.enterprises, scope.levels, policy, channels)
        self._check_channels(drill_scope, dm.line_of("channels"), what)
        if len(check.problems) > before:
            return None
        name = check.text(dm, "name", what, required=False) or "drill"
        return Route(notify=notify, policy=policy, channels=channels, name=name)

    def _flood(self, value: Any, line: int) -> FloodControl | None:
        check = self.check
        fm = check.as_map(value, line, "'flood'")
        if fm is None:
            return None
        check.known_keys(fm, ("alarms", "within"), "'flood'")
        default = FloodControl()
        alarms = fm.get("alarms", default.alarms)
        ok = True
        if isinstance(alarms, bool) or not isinstance(alarms, int) or alarms < 1:
            check.error(
                fm.line_of("alarms"), f"flood: 'alarms' must be a whole number ≥ 1, got {alarms!r}"
            )
            ok = False
        within = default.within_ms
        if "within" in fm:
            parsed = _ms(fm["within"], fm.line_of("within"), check, "flood: 'within'")
            if parsed == 0:
                check.error(fm.line_of("within"), "flood: 'within' must be a positive duration")
            ok = ok and bool(parsed)
            within = parsed or within
        return FloodControl(int(alarms), within) if ok else None
