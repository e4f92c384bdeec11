"""Zones: groups of sensors of one site whose composite rules raise zone alarms.

A site's ``zones:`` list names a zone, its member sensors (by default every sensor of the site
whose ``zone`` is the zone's id) and its composite rules ("2 of the detectors at orange or
above → zone red", :mod:`rules.composite`). This module reads that list, checking every field
and reporting problems as ``file:line``, and turns a composite rule's event into the
:class:`AlarmEvent` of the zone, with a plain message:
``罐区一北区 2 个探测器达到橙色及以上（2/2），区域报警（红色）``.

A zone alarm is routed, printed and published like a sensor's: its ``sensor`` is the zone's
uid (``enterprise/site/zone``), its ``sensor_id`` the zone id (so the retained state is on
``ew/v1/{enterprise}/{site}/{zone}/alarm``) and its ``kind`` is ``zone``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from earlywarn.messages import Language
from earlywarn.model import AlarmEvent, Sensor, sensor_uid
from earlywarn.rule_builders import level_of
from earlywarn.schema import FileChecker
from earlywarn.yamlsource import YList, YMap
from rules.composite import CompositeRule
from rules.events import Change, RuleEvent
from rules.levels import Level

if TYPE_CHECKING:
    from earlywarn.registry import Registry

ZONE_KIND = "zone"
"""The ``kind`` of a zone's alarm events (a sensor's events carry the sensor kind)."""

ZONE_UNIT = "个"
"""The unit of a zone event's value and set-point: a number of member sensors."""

DETECTOR_KINDS = frozenset({"combustible_gas", "toxic_gas", "oxygen"})
"""Sensor kinds called 探测器 (detectors) in messages; other members are 测点 (points)."""

_ZONE_KEYS = ("id", "name", "sensors", "rules")
_RULE_KEYS = (
    "id",
    "kind",
    "min_count",
    "at_level",
    "level",
    "member_rule",
    "on_delay",
    "off_delay",
)


def zone_uid(enterprise: str, site: str, zone: str) -> str:
    """The globally unique key of a zone: ``enterprise/site/zone`` (like a sensor's)."""
    return sensor_uid(enterprise, site, zone)


@dataclass(frozen=True, slots=True)
class Zone:
    """A group of sensors of one site with its composite rules.

    ``members`` are sensor uids in the order given (or declared, for the default members).
    """

    uid: str
    enterprise: str
    site: str
    id: str
    name: str
    members: tuple[str, ...]
    rules: tuple[CompositeRule, ...]


# --- reading the registry --------------------------------------------------------------------


def declared_sensors(sensors: YList | None) -> dict[str, str | None]:
    """Sensor id → its ``zone`` for every sensor mapping of a site, valid or not.

    Zones are checked against what was *declared*, so a sensor with a mistake of its own is
    not reported a second time as unknown by every zone that names it.
    """
    declared: dict[str, str | None] = {}
    for item in sensors or []:
        if isinstance(item, YMap) and isinstance(item.get("id"), str):
            zone = item.get("zone")
            declared.setdefault(item["id"], zone if isinstance(zone, str) else None)
    return declared


def read_zones(
    sm: YMap,
    check: FileChecker,
    eid: str,
    sid: str,
    sensors: Sequence[Sensor],
    declared: Mapping[str, str | None],
) -> list[Zone]:
    """The ``zones`` of the site mapping ``sm`` (none if absent); problems go to ``check``.

    ``sensors`` are the site's valid sensors, ``declared`` every sensor id written in the site
    with its ``zone`` (see :func:`declared_sensors`).
    """
    if sm.get("zones") is None:
        if "zones" in sm:
            check.error(sm.line_of("zones"), f"site {sid}: 'zones' must be a list, got nothing")
        return []
    zlist = check.as_list(sm["zones"], sm.line_of("zones"), f"site {sid}: 'zones'")
    if zlist is None:
        return []
    by_id = {s.id: s for s in sensors}
    zones: list[Zone] = []
    seen: dict[str, int] = {}
    for item, line in zip(zlist, zlist.item_lines, strict=True):
        zm = check.as_map(item, line, f"site {sid}: a zone")
        if zm is None:
            continue
        check.known_keys(zm, _ZONE_KEYS, "a zone")
        zid = check.ident(zm, "id", "a zone")
        what = f"zone {zid or '?'}"
        name = check.text(zm, "name", what)
        ok = zid is not None and name is not None
        if zid is not None:
            if zid in seen:
                check.error(
                    zm.line_of("id"), f"duplicate zone id {zid!r} (first on line {seen[zid]})"
                )
                ok = False
            else:
                seen[zid] = zm.line_of("id")
            if zid in declared:
                check.error(
                    zm.line_of("id"),
                    f"{what}: {zid!r} is also the id of a sensor of site {sid}; their alarm "
                    "topics would be the same, give the zone another id",
                )
                ok = False
        members = _members(zm, check, what, zid, declared)
        if members is None:
            ok = False
            members = []
        uids = tuple(sensor_uid(eid, sid, m) for m in members)
        rules = _rules(zm, check, what, uids, [by_id[m] for m in members if m in by_id])
        if rules is None or not ok or zid is None or name is None:
            continue
        zones.append(Zone(zone_uid(eid, sid, zid), eid, sid, zid, name, uids, rules))
    return zones


def _members(
    zm: YMap, check: FileChecker, what: str, zid: str | None, declared: Mapping[str, str | None]
) -> list[str] | None:
    """Member sensor ids: the ``sensors`` list, or the site's sensors with ``zone: <id>``."""
    members: list[str] = []
    if "sensors" in zm:
        slist = check.as_list(zm["sensors"], zm.line_of("sensors"), f"{what}: 'sensors'")
        if slist is None:
            return None
        ok = True
        for sid, line in zip(slist, slist.item_lines, strict=True):
            if not isinstance(sid, str):
                check.error(line, f"{what}: a member must be given by sensor id, got {sid!r}")
                ok = False
            elif sid not in declared:
                known = ", ".join(sorted(declared)) or "none"
                check.error(
                    line, f"{what}: unknown sensor {sid!r}; the sensors of this site are {known}"
                )
                ok = False
            elif sid in members:
                check.error(line, f"{what}: sensor {sid!r} is listed twice")
                ok = False
            else:
                members.append(sid)
        if not ok:
            return None
    elif zid is not None:
        members = [s for s, zone in declared.items() if zone == zid]
    else:
        return None
    if len(members) < 2:
        how = "listed under 'sensors'" if "sensors" in zm else f"with 'zone: {zid}'"
        check.error(
            zm.line_of("sensors") if "sensors" in zm else zm.line,
            f"{what} has {len(members)} sensor{'' if len(members) == 1 else 's'} {how}; "
            "a zone groups at least 2",
        )
        return None
    return members


def _rules(
    zm: YMap, check: FileChecker, what: str, members: tuple[str, ...], sensors: list[Sensor]
) -> tuple[CompositeRule, ...] | None:
    """The zone's composite rules; ``None`` if any has a problem."""
    if "rules" not in zm:
        return ()
    rlist = check.as_list(zm["rules"], zm.line_of("rules"), f"{what}: 'rules'")
    if rlist is None:
        return None
    rules: list[CompositeRule] = []
    ids: dict[str, int] = {}
    ok = True
    for item, line in zip(rlist, rlist.item_lines, strict=True):
        rm = check.as_map(item, line, f"{what}: a rule")
        rule = _rule(rm, check, what, members, sensors) if rm is not None else None
        if rule is None:
            ok = False
            continue
        if rule.rule_id in ids:
            check.error(
                line,
                f"{what}: duplicate rule id {rule.rule_id!r} (first on line {ids[rule.rule_id]})",
            )
            ok = False
            continue
        ids[rule.rule_id] = line
        rules.append(rule)
    return tuple(rules) if ok else None


def _rule(
    rm: YMap, check: FileChecker, zone: str, members: tuple[str, ...], sensors: list[Sensor]
) -> CompositeRule | None:
    check.known_keys(rm, _RULE_KEYS, f"{zone}: a rule")
    rid = check.ident(rm, "id", f"{zone}: a rule")
    what = f"{zone}: rule {rid or '?'}"
    kind = check.text(rm, "kind", what)
    ok = rid is not None and kind is not None
    if kind is not None and kind != "composite":
        check.error(
            rm.line_of("kind"), f"{what}: unknown zone rule kind {kind!r}; expected composite"
        )
        ok = False
    min_count = rm.get("min_count")
    if min_count is None:
        check.error(rm.line, f"{what} is missing the required field 'min_count'")
        ok = False
    elif isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        check.error(
            rm.line_of("min_count"),
            f"{what}: 'min_count' must be a whole number of sensors, at least 1, got {min_count!r}",
        )
        ok = False
    elif members and min_count > len(members):
        check.error(
            rm.line_of("min_count"),
            f"{what}: 'min_count' is {min_count} but the zone has only {len(members)} sensors",
        )
        ok = False
    levels: dict[str, Level | None] = {}
    for key in ("at_level", "level"):
        if key not in rm:
            check.error(rm.line, f"{what} is missing the required field {key!r}")
            levels[key] = None
        else:
            levels[key] = level_of(rm[key], rm.line_of(key), check, what)
    at_level, level = levels["at_level"], levels["level"]
    if at_level is not None and level is not None and level < at_level:
        check.error(
            rm.line_of("level"),
            f"{what}: the zone level {level.label} is below at_level {at_level.label}; "
            "a zone alarm must not be lower than what its members show",
        )
        ok = False
    member_rule = check.ident(rm, "member_rule", what, required=False)
    if member_rule is not None:
        lacking = [s.id for s in sensors if member_rule not in {r.rule_id for r in s.rules}]
        if lacking:
            check.error(
                rm.line_of("member_rule"),
                f"{what}: member_rule {member_rule!r} is not a rule of {', '.join(lacking)}",
            )
            ok = False
    on = check.seconds(rm, "on_delay", what, 0.0)
    off = check.seconds(rm, "off_delay", what, 0.0)
    if (
        not ok
        or rid is None
        or not isinstance(min_count, int)
        or at_level is None
        or level is None
        or on is None
        or off is None
        or len(members) < 2
    ):
        return None
    try:
        return CompositeRule(
            rule_id=rid,
            members=members,
            min_count=min_count,
            at_level=at_level,
            level=level,
            off_delay_ms=round(off * 1000),
            on_delay_ms=round(on * 1000),
            member_rule=member_rule,
        )
    except ValueError as exc:
        check.error(rm.line, f"{zone}: {exc}")
        return None


# --- events and messages ---------------------------------------------------------------------


def zone_alarm_id(zone: Zone, rule_id: str, start_ms: int) -> str:
    """Stable for every event of one occurrence of the (zone, rule) alarm."""
    return f"{zone.uid}/{rule_id}@{start_ms}"


def detectors(registry: Registry, zone: Zone) -> bool:
    """Whether every member is a gas detector (the message then says 探测器, not 测点)."""
    return all(
        uid in registry.sensors and registry.sensors[uid].kind in DETECTOR_KINDS
        for uid in zone.members
    )


def zone_message(
    zone: Zone, rule: CompositeRule, event: RuleEvent, lang: Language = "zh", *, noun: bool = True
) -> str:
    """The sentence for one zone event; ``noun`` True says detectors (探测器), False 测点.

    ``罐区一北区 2 个探测器达到橙色及以上（2/2），区域报警（红色）``; on clearing,
    ``罐区一北区 达到橙色及以上的探测器降至 1 个（1/2），区域报警解除``.
    """
    count = round(event.value)
    n = len(rule.members)
    at = rule.at_level
    cleared = event.level is None or event.change is Change.CLEARED
    rising = event.change is Change.RAISED or bool(
        event.level and event.previous and event.level > event.previous
    )
    if lang == "zh":
        what = "探测器" if noun else "测点"
        if cleared or event.level is None:
            return (
                f"{zone.name} 达到{at.zh}及以上的{what}降至 {count} 个（{count}/{n}），区域报警解除"
            )
        head = f"{zone.name} {count} 个{what}达到{at.zh}及以上（{count}/{n}）"
        tail = f"（{event.level.zh}）" if rising else f"降为{event.level.zh}"
        return f"{head}，区域报警{tail}"
    what = ("detector" if noun else "sensor") + ("" if count == 1 else "s")
    head = f"{zone.name}: {count} {what} at {at.label} or above ({count}/{n}); zone alarm"
    if cleared or event.level is None:
        return f"{head} cleared"
    return f"{head} ({event.level.label})" if rising else f"{head} down to {event.level.label}"


def setpoint_label(rule: CompositeRule, lang: Language = "zh", *, noun: bool = True) -> str:
    """``2/4 探测器≥橙色`` (``2/4 detectors ≥ orange``): what raises the zone alarm."""
    k, n = rule.min_count, len(rule.members)
    if lang == "zh":
        return f"{k}/{n} {'探测器' if noun else '测点'}≥{rule.at_level.zh}"
    return f"{k}/{n} {'detectors' if noun else 'sensors'} ≥ {rule.at_level.label}"


def to_zone_alarm_event(
    registry: Registry, zone: Zone, rule: CompositeRule, event: RuleEvent, lang: Language = "zh"
) -> AlarmEvent:
    """Attach the registry's names and the message to a composite rule's event."""
    enterprise = registry.enterprises[zone.enterprise]
    site = registry.site(zone.enterprise, zone.site)
    noun = detectors(registry, zone)
    return AlarmEvent(
        alarm_id=zone_alarm_id(zone, event.rule_id, event.start_ms),
        sensor=zone.uid,
        enterprise=zone.enterprise,
        site=zone.site,
        sensor_id=zone.id,
        kind=ZONE_KIND,
        enterprise_name=enterprise.name,
        site_name=site.name if site else zone.site,
        sensor_name=zone.name,
        rule=event.rule_id,
        rule_kind=event.kind,
        change=event.change,
        level=event.level,
        previous=event.previous,
        value=event.value,
        setpoint=event.setpoint,
        setpoint_label=setpoint_label(rule, lang, noun=noun),
        unit=ZONE_UNIT,
        ts_ms=event.ts_ms,
        start_ms=event.start_ms,
        message=zone_message(zone, rule, event, lang, noun=noun),
        window_ms=event.window_ms,
        flapping=event.flapping,
    )
