"""The registry: enterprises, sites, sensors, people and regions, loaded from a directory.

Layout: ``regions.yaml`` plus one ``*.yaml`` file per enterprise ("一企一档"); the alerting
files (``routing.yaml``, ``escalation.yaml``, ``channels.yaml``) live alongside and are read
elsewhere. Loading checks every field and every cross-reference and reports *all* problems as
``file:line: message``; nothing half-loaded is ever returned.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerting.roster import (
    RELATIVE_LEVELS,
    ancestors,
    conflicts,
    format_span,
    gaps,
    nearest_region,
)
from earlywarn.kinds import KINDS
from earlywarn.model import (
    DEFAULT_TIMEZONE,
    MINUTES_PER_DAY,
    DutyRef,
    Enterprise,
    Person,
    Region,
    Rung,
    Sensor,
    Shift,
    Site,
    Target,
    sensor_uid,
)
from earlywarn.presets import Preset, load_presets, resolve
from earlywarn.rule_builders import SensorContext, build_rule, implicit_rules
from earlywarn.schema import FileChecker
from earlywarn.yamlsource import Problem, YList, YMap, load_file
from earlywarn.zones import Zone, declared_sensors, read_zones
from rules.base import Rule
from rules.levels import Level

REGIONS_FILE = "regions.yaml"
ALERTING_FILES = ("routing.yaml", "escalation.yaml", "channels.yaml")
"""Files of the registry directory that are not enterprises (read by the alerting loaders)."""
NOT_ENTERPRISES = frozenset((REGIONS_FILE, *ALERTING_FILES))
DUTY_PREFIX = "duty:"
ENTERPRISE_KINDS = (
    "hazardous_chemicals",
    "restaurant",
    "gas_utility",
    "water_authority",
    "utility_tunnel",
    "other",
)


class RegistryError(Exception):
    """The registry has problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Registry:
    """A validated registry with the indexes the runners need."""

    path: Path
    enterprises: dict[str, Enterprise]
    regions: dict[str, Region]
    people: dict[str, Person]
    sensors: dict[str, Sensor]
    presets: dict[str, Preset] = field(repr=False)
    _by_device: dict[tuple[str, str, str, str | None], Sensor] = field(repr=False)
    _sites: dict[tuple[str, str], Site] = field(repr=False)
    zones: dict[str, Zone] = field(default_factory=dict)
    """Zones by uid (``enterprise/site/zone``), in file order."""
    _zones_by_sensor: dict[str, tuple[Zone, ...]] = field(default_factory=dict, repr=False)

    def resolve(
        self, enterprise: str, site: str, device: str, channel: str | None
    ) -> Sensor | None:
        """The sensor publishing on a topic's device segment, and channel for multi-channel."""
        return self._by_device.get((enterprise, site, device, channel))

    def site(self, enterprise: str, site: str) -> Site | None:
        """A site by ids."""
        return self._sites.get((enterprise, site))

    def zones_of(self, sensor: str) -> tuple[Zone, ...]:
        """The zones a sensor (by uid) is a member of; usually none or one."""
        return self._zones_by_sensor.get(sensor, ())

    def summary(self) -> RegistrySummary:
        """Counts for the ``check-registry`` table."""
        kinds = Counter(s.kind for s in self.sensors.values())
        rule_kinds = Counter(r.kind for s in self.sensors.values() for r in s.rules)
        rule_kinds.update(r.kind for z in self.zones.values() for r in z.rules)
        return RegistrySummary(
            enterprises=len(self.enterprises),
            sites=sum(len(e.sites) for e in self.enterprises.values()),
            sensors=len(self.sensors),
            sensors_by_kind=dict(sorted(kinds.items())),
            rules=rule_kinds.total(),
            rules_by_kind=dict(sorted(rule_kinds.items())),
            people=len(self.people),
            regions=len(self.regions),
            zones=len(self.zones),
        )


@dataclass(frozen=True, slots=True)
class RegistrySummary:
    """How much a registry holds."""

    enterprises: int
    sites: int
    sensors: int
    sensors_by_kind: dict[str, int]
    rules: int
    people: int
    regions: int
    rules_by_kind: dict[str, int] = field(default_factory=dict)
    zones: int = 0


def load_registry(path: Path | str) -> Registry:
    """Load and check a registry directory; raise :class:`RegistryError` listing every problem."""
    root = Path(path)
    problems: list[Problem] = []
    if not root.is_dir():
        raise RegistryError([Problem(str(root), 0, "registry directory not found")])
    presets = load_presets(problems)
    regions_path = root / REGIONS_FILE
    regions: dict[str, Region] = {}
    people: dict[str, Person] = {}
    person_where: dict[str, str] = {}
    if regions_path.exists():
        regions = read_regions(regions_path, problems, people, person_where)
    else:
        problems.append(Problem(str(regions_path), 0, "the regions file is missing"))
    enterprises: dict[str, Enterprise] = {}
    ent_where: dict[str, str] = {}
    zones: list[Zone] = []
    files = sorted(p for p in root.glob("*.yaml") if p.name not in NOT_ENTERPRISES)
    if not files:
        problems.append(Problem(str(root), 0, "no enterprise files (*.yaml) in the registry"))
    for file in files:
        ent = read_enterprise(file, problems, presets, regions, people, person_where, zones)
        if ent is None:
            continue
        if ent.id in enterprises:
            problems.append(
                Problem(
                    str(file),
                    0,
                    f"duplicate enterprise id {ent.id!r} (also in {ent_where[ent.id]})",
                )
            )
            continue
        enterprises[ent.id] = ent
        ent_where[ent.id] = str(file)
    if problems:
        raise RegistryError(problems)
    sensors: dict[str, Sensor] = {}
    by_device: dict[tuple[str, str, str, str | None], Sensor] = {}
    for ent in enterprises.values():
        for site in ent.sites:
            for sensor in site.sensors:
                sensors[sensor.uid] = sensor
                by_device[(ent.id, site.id, sensor.device, sensor.channel)] = sensor
    sites = {(e.id, s.id): s for e in enterprises.values() for s in e.sites}
    zones_by_uid = {z.uid: z for z in zones}
    by_sensor: dict[str, list[Zone]] = {}
    for zone in zones:
        for member in zone.members:
            by_sensor.setdefault(member, []).append(zone)
    return Registry(
        root,
        enterprises,
        regions,
        people,
        sensors,
        presets,
        by_device,
        sites,
        zones_by_uid,
        {uid: tuple(zs) for uid, zs in by_sensor.items()},
    )


def _declared_ids(items: YList | None) -> set[str]:
    """The ``id`` of every mapping in a people list, valid or not."""
    return {
        item["id"]
        for item in items or []
        if isinstance(item, YMap) and isinstance(item.get("id"), str)
    }


def _top_mapping(path: Path, check: FileChecker, what: str) -> YMap | None:
    """The file's top-level mapping; a file that did not parse is reported once, not twice."""
    before = len(check.problems)
    data = load_file(path, check.problems)
    if data is None:
        if len(check.problems) == before:
            check.error(1, f"{what} is empty")
        return None
    return check.as_map(data, 1, what)


def _read_person(
    item: object,
    line: int,
    check: FileChecker,
    people: dict[str, Person],
    where: dict[str, str],
    owner: str,
) -> Person | None:
    pm = check.as_map(item, line, f"a person of {owner}")
    if pm is None:
        return None
    what = f"person {pm.get('id', '?')!s}"
    check.known_keys(pm, ("id", "name", "role", "phone", "contacts"), what)
    pid = check.ident(pm, "id", what)
    name = check.text(pm, "name", what)
    role = check.text(pm, "role", what)
    phone = check.phone(pm, "phone", what)
    contacts: list[tuple[str, str]] = []
    raw = pm.get("contacts")
    if raw is not None:
        cm = check.as_map(raw, pm.line_of("contacts"), f"{what}: 'contacts'")
        for channel, address in (cm or {}).items():
            if not isinstance(address, str) or not address.strip():
                check.error(
                    cm.line_of(channel) if cm else pm.line,
                    f"{what}: contact {channel!r} needs an address as quoted text",
                )
                continue
            contacts.append((channel, str(address)))
    if pid is None or name is None or role is None or phone is None:
        return None
    if pid in people:
        check.error(pm.line_of("id"), f"duplicate person id {pid!r} (also in {where[pid]})")
        return None
    person = Person(pid, name, role, phone, tuple(contacts))
    people[pid] = person
    where[pid] = f"{check.file}:{pm.line_of('id')}"
    return person


def read_regions(
    path: Path, problems: list[Problem], people: dict[str, Person], where: dict[str, str]
) -> dict[str, Region]:
    """Read the regions file (duty officers included) into ``people`` and regions; problems
    are appended, not raised. Public for onboarding, which reads one enterprise against
    the registry it joins."""
    check = FileChecker(str(path), problems)
    top = _top_mapping(path, check, "the regions file")
    if top is None:
        return {}
    check.known_keys(top, ("regions", "timezone"), "the regions file")
    default_tz = _timezone(top, check, "the regions file", DEFAULT_TIMEZONE)
    items = check.as_list(top.get("regions"), top.line_of("regions"), "'regions'")
    if items is None:
        return {}
    regions: dict[str, Region] = {}
    parents: dict[str, tuple[str, int]] = {}
    for item, line in zip(items, items.item_lines, strict=True):
        rm = check.as_map(item, line, "a region")
        if rm is None:
            continue
        what = f"region {rm.get('id', '?')!s}"
        allowed = ("id", "name", "level", "parent", "people", "duty", "roster", "timezone")
        check.known_keys(rm, allowed, what)
        rid = check.ident(rm, "id", what)
        name = check.text(rm, "name", what)
        level = check.text(rm, "level", what)
        parent = check.ident(rm, "parent", what, required=False)
        timezone = _timezone(rm, check, what, default_tz)
        own: list[Person] = []
        plist = check.as_list(rm.get("people", YList()), rm.line_of("people"), f"{what}: 'people'")
        for pitem, pline in zip(plist or [], (plist.item_lines if plist else []), strict=True):
            person = _read_person(pitem, pline, check, people, where, what)
            if person is not None:
                own.append(person)
        own_ids = _declared_ids(plist)
        roster: tuple[Shift, ...] = ()
        if "roster" in rm and "duty" in rm:
            check.error(
                rm.line_of("roster"),
                f"{what}: give either 'duty' (always on duty) or 'roster', not both",
            )
        if "roster" in rm:
            roster = _read_roster(rm, check, what, own_ids)
            duty = list(dict.fromkeys(pid for shift in roster for pid in shift.duty))
        else:
            duty = _person_ids(rm, "duty", check, what, own_ids)
        if rid is None or name is None or level is None:
            continue
        if rid in regions:
            check.error(rm.line_of("id"), f"duplicate region id {rid!r}")
            continue
        regions[rid] = Region(
            rid, name, level, parent, tuple(own), tuple(duty), roster, timezone or DEFAULT_TIMEZONE
        )
        if parent is not None:
            parents[rid] = (parent, rm.line_of("parent"))
    for rid, (parent, line) in parents.items():
        if parent not in regions:
            check.error(line, f"region {rid}: parent region {parent!r} is not defined")
    return regions


def _timezone(m: YMap, check: FileChecker, what: str, default: str | None) -> str | None:
    """An IANA time zone name (``Asia/Shanghai``), ``default`` when absent."""
    if "timezone" not in m:
        return default
    name = check.text(m, "timezone", what)
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        check.error(
            m.line_of("timezone"),
            f"{what}: unknown time zone {name!r}; use an IANA name such as Asia/Shanghai",
        )
        return None
    return name


def _person_ids(m: YMap, key: str, check: FileChecker, what: str, own_ids: set[str]) -> list[str]:
    """A list of this region's person ids under ``key`` (absent: none)."""
    ids: list[str] = []
    dlist = check.as_list(m.get(key, YList()), m.line_of(key), f"{what}: {key!r}")
    for pid, dline in zip(dlist or [], (dlist.item_lines if dlist else []), strict=True):
        if not isinstance(pid, str):
            check.error(dline, f"{what}: a duty officer must be given by person id")
            continue
        if pid not in own_ids:
            check.error(dline, f"{what}: duty officer {pid!r} is not one of this region's people")
            continue
        ids.append(str(pid))
    return ids


_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_TIME = re.compile(r"^([01]?[0-9]|2[0-3]):([0-5][0-9])$")


def _read_roster(m: YMap, check: FileChecker, what: str, own_ids: set[str]) -> tuple[Shift, ...]:
    """A weekly roster; reports gaps (nobody on duty) and overlaps naming different people.

    Overlaps are rejected rather than resolved by order because a roster is read by people:
    with "first entry wins", a line placed too low silently takes an officer off duty who
    believes they are on it. Overlaps naming the same people change nothing and are allowed.
    """
    rlist = check.as_list(m.get("roster"), m.line_of("roster"), f"{what}: 'roster'")
    if rlist is None:
        return ()
    if not rlist:
        check.error(m.line_of("roster"), f"{what}: the roster names nobody")
        return ()
    shifts: list[Shift] = []
    lines: list[int] = []
    complete = True
    for item, line in zip(rlist, rlist.item_lines, strict=True):
        shift = _read_shift(item, line, check, what, own_ids)
        if shift is None:
            complete = False
            continue
        shifts.append(shift)
        lines.append(line)
    roster = tuple(shifts)
    for first, second, start, length in conflicts(roster):
        check.error(
            lines[second],
            f"{what}: roster entry overlaps the one on line {lines[first]} "
            f"({format_span(start, length)}) with different people; who is on duty must "
            "have one answer, so split the entries",
        )
    if complete:
        for start, length in gaps(roster):
            check.error(
                m.line_of("roster"),
                f"{what}: the roster leaves nobody on duty {format_span(start, length)}; "
                "a duty officer must always be reachable",
            )
    return roster


def _read_shift(
    item: object, line: int, check: FileChecker, what: str, own_ids: set[str]
) -> Shift | None:
    sm = check.as_map(item, line, f"{what}: a roster entry")
    if sm is None:
        return None
    check.known_keys(sm, ("days", "from", "to", "duty"), f"{what}: a roster entry")
    days = _read_days(sm, check, what)
    start, end = 0, MINUTES_PER_DAY
    if ("from" in sm) != ("to" in sm):
        check.error(
            sm.line,
            f"{what}: a roster entry needs both 'from' and 'to', or neither for the whole day",
        )
        return None
    if "from" in sm:
        start_at = _read_time(sm, "from", check, what)
        end_at = _read_time(sm, "to", check, what)
        if start_at is None or end_at is None:
            return None
        if start_at == MINUTES_PER_DAY:
            check.error(sm.line_of("from"), f"{what}: a shift cannot start at 24:00; use 00:00")
            return None
        start, end = start_at, end_at
    if "duty" not in sm:
        check.error(sm.line, f"{what}: a roster entry is missing the required field 'duty'")
        return None
    before = len(check.problems)
    duty = _person_ids(sm, "duty", check, what, own_ids)
    if days is None or len(check.problems) > before:
        return None
    if not duty:
        check.error(sm.line_of("duty"), f"{what}: a roster entry names nobody")
        return None
    return Shift(days, start, end or MINUTES_PER_DAY, tuple(duty))


def _read_days(sm: YMap, check: FileChecker, what: str) -> tuple[int, ...] | None:
    """``mon-fri``, ``sat-sun``, ``fri-mon`` (wraps), ``mon,wed``, a list of those, ``daily``."""
    raw = sm.get("days", "daily")
    line = sm.line_of("days")
    parts: list[str] = []
    if isinstance(raw, str):
        parts = [p.strip().lower() for p in raw.split(",")]
    elif isinstance(raw, YList) and raw and all(isinstance(p, str) for p in raw):
        parts = [str(p).strip().lower() for p in raw]
    days: set[int] = set()
    for part in parts:
        if part == "daily":
            days.update(range(7))
            continue
        ends = [e.strip() for e in part.split("-")]
        if len(ends) > 2 or any(e not in _DAYS for e in ends):
            parts = []
            break
        first, last = _DAYS[ends[0]], _DAYS[ends[-1]]
        days.update((first + k) % 7 for k in range((last - first) % 7 + 1))
    if not parts:
        check.error(
            line,
            f"{what}: 'days' must be days such as mon-fri, sat-sun, mon,wed or daily "
            f"(mon tue wed thu fri sat sun), got {raw!r}",
        )
        return None
    return tuple(sorted(days))


def _read_time(sm: YMap, key: str, check: FileChecker, what: str) -> int | None:
    """Minutes after midnight from quoted ``"HH:MM"`` (``"24:00"`` is the end of the day)."""
    value = sm.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        hours, minutes = divmod(value, 60)
        check.error(
            sm.line_of(key),
            f'{what}: {key!r} must be quoted text such as "{hours:02d}:{minutes:02d}" '
            f"(unquoted, YAML reads {hours}:{minutes:02d} as the number {value})",
        )
        return None
    if value == "24:00":
        return MINUTES_PER_DAY
    match = _TIME.match(value) if isinstance(value, str) else None
    if match is None:
        check.error(sm.line_of(key), f'{what}: {key!r} must be a time "HH:MM", got {value!r}')
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def _region_people(region_id: str, regions: dict[str, Region]) -> set[str]:
    """People of a region and of every region above it (township → county)."""
    ids: set[str] = set()
    seen: set[str] = set()
    current: str | None = region_id
    while current is not None and current in regions and current not in seen:
        seen.add(current)
        ids.update(p.id for p in regions[current].people)
        current = regions[current].parent
    return ids


def read_enterprise(
    path: Path,
    problems: list[Problem],
    presets: dict[str, Preset],
    regions: dict[str, Region],
    people: dict[str, Person],
    where: dict[str, str],
    zones: list[Zone],
) -> Enterprise | None:
    """Read one enterprise file; its sites' zones are appended to ``zones``."""
    check = FileChecker(str(path), problems)
    top = _top_mapping(path, check, "an enterprise file")
    if top is None:
        return None
    check.known_keys(top, ("enterprise",), "an enterprise file")
    em = check.as_map(top.get("enterprise"), top.line_of("enterprise"), "'enterprise'")
    if em is None:
        return None
    allowed = ("id", "name", "kind", "region", "address", "people", "chain", "sites")
    check.known_keys(em, allowed, "the enterprise")
    eid = check.ident(em, "id", "the enterprise")
    what = f"enterprise {eid or '?'}"
    name = check.text(em, "name", what)
    kind = check.text(em, "kind", what)
    if kind is not None and kind not in ENTERPRISE_KINDS:
        check.error(
            em.line_of("kind"),
            f"{what}: unknown kind {kind!r}; expected one of {', '.join(ENTERPRISE_KINDS)}",
        )
    region = check.ident(em, "region", what)
    if region is not None and regions and region not in regions:
        check.error(
            em.line_of("region"), f"{what}: region {region!r} is not defined in {REGIONS_FILE}"
        )
    own: list[Person] = []
    plist = check.as_list(em.get("people"), em.line_of("people"), f"{what}: 'people'")
    for pitem, pline in zip(plist or [], (plist.item_lines if plist else []), strict=True):
        person = _read_person(pitem, pline, check, people, where, what)
        if person is not None:
            own.append(person)
    # Ids declared count as reachable even if that person has another mistake, so a single
    # error is not echoed by every chain that names the person.
    reachable = _declared_ids(plist) | (_region_people(region, regions) if region else set())
    chain = _read_chain(em, check, what, reachable, region, regions)
    sites: list[Site] = []
    slist = check.as_list(em.get("sites"), em.line_of("sites"), f"{what}: 'sites'")
    site_ids: dict[str, int] = {}
    for sitem, sline in zip(slist or [], (slist.item_lines if slist else []), strict=True):
        site = _read_site(sitem, sline, check, eid or "?", presets, zones)
        if site is None:
            continue
        if site.id in site_ids:
            check.error(
                sline, f"{what}: duplicate site id {site.id!r} (first on line {site_ids[site.id]})"
            )
            continue
        site_ids[site.id] = sline
        sites.append(site)
    if eid is None or name is None or kind is None or region is None or chain is None:
        return None
    return Enterprise(eid, name, kind, region, tuple(own), tuple(sites), chain)


def _read_chain(
    em: YMap,
    check: FileChecker,
    what: str,
    reachable: set[str],
    region: str | None,
    regions: dict[str, Region],
) -> dict[Level, tuple[Rung, ...]] | None:
    cm = check.as_map(em.get("chain"), em.line_of("chain"), f"{what}: 'chain'")
    if cm is None:
        return None
    chain: dict[Level, tuple[Rung, ...]] = {}
    level_lines: dict[Level, int] = {}
    for key, rungs in cm.items():
        line = cm.line_of(key)
        try:
            level = Level.parse(key)
        except ValueError as exc:
            check.error(line, f"{what}: chain: {exc}")
            continue
        if level in level_lines:
            check.error(
                line,
                f"{what}: chain gives {level.label} twice (first on line {level_lines[level]})",
            )
            continue
        level_lines[level] = line
        rlist = check.as_list(rungs, line, f"{what}: chain {level.label}")
        if rlist is None:
            continue
        if not rlist:
            check.error(line, f"{what}: chain {level.label} names nobody")
        found: list[Rung] = []
        for item, pline in zip(rlist, rlist.item_lines, strict=True):
            names = item if isinstance(item, YList) and item else [item]
            rung: list[Target] = []
            for name in names:
                if not isinstance(name, str):
                    check.error(
                        pline,
                        f"{what}: chain {level.label}: a rung must be a person id, a duty "
                        "reference (duty:township, duty:county, duty:<region>) or a list of them",
                    )
                    continue
                target = _chain_target(
                    name, pline, check, f"{what}: chain {level.label}", reachable, region, regions
                )
                if target is not None:
                    rung.append(target)
            found.append(tuple(rung))
        chain[level] = tuple(found)
    missing = [lvl.label for lvl in Level if lvl not in chain]
    if missing:
        check.error(
            em.line_of("chain"),
            f"{what}: chain has no rungs for {', '.join(missing)}; every "
            "level must say who is called",
        )
    return chain


def _chain_target(
    name: str,
    line: int,
    check: FileChecker,
    what: str,
    reachable: set[str],
    region: str | None,
    regions: dict[str, Region],
) -> Target | None:
    """A person id of the enterprise or its regions, or a duty reference made concrete."""
    if not name.startswith(DUTY_PREFIX):
        if name not in reachable:
            check.error(
                line,
                f"{what} names {name!r}, who is neither "
                "a person of this enterprise nor a duty officer of its region",
            )
            return None
        return name
    if region is None or region not in regions:
        return None  # the enterprise's region is reported missing already
    ref = resolve_duty_ref(name, region, regions)
    if isinstance(ref, str):
        check.error(line, f"{what}: {ref}")
        return None
    return ref


def resolve_duty_ref(name: str, region: str, regions: dict[str, Region]) -> DutyRef | str:
    """``duty:township``, ``duty:county`` or ``duty:<region>`` seen from an enterprise's
    ``region``: the concrete reference, or what is wrong with it as a plain sentence.

    The region must be the enterprise's own or one above it (duty officers follow the
    enterprises of their area, not the areas below them) and must have duty officers.
    """
    scope = name.removeprefix(DUTY_PREFIX)
    if scope in RELATIVE_LEVELS:
        found = nearest_region(regions, region, scope)
        if found is None:
            return (
                f"{name}: no region of level {scope!r} at or above region {region!r} "
                "(levels are read from regions.yaml)"
            )
    elif scope not in regions:
        return f"{name}: region {scope!r} is not defined in {REGIONS_FILE}"
    elif scope not in ancestors(regions, region):
        return (
            f"{name}: region {scope!r} is not region {region!r} or a region above it; "
            "duty officers follow the enterprises of their own area"
        )
    else:
        found = scope
    if not regions[found].duty:
        return f"{name}: region {found!r} has no duty officers ('duty' or 'roster')"
    return DutyRef(found)


_SENSOR_KEYS = (
    "id",
    "name",
    "kind",
    "unit",
    "range",
    "interval",
    "device",
    "channel",
    "rules",
    "zone",
    "offline",
    "out_of_range",
)


def _read_site(
    item: object,
    line: int,
    check: FileChecker,
    eid: str,
    presets: dict[str, Preset],
    zones: list[Zone],
) -> Site | None:
    sm = check.as_map(item, line, "a site")
    if sm is None:
        return None
    check.known_keys(sm, ("id", "name", "address", "location", "sensors", "zones"), "a site")
    sid = check.ident(sm, "id", "a site")
    what = f"site {sid or '?'}"
    name = check.text(sm, "name", what)
    address = check.text(sm, "address", what, required=False) or ""
    location: tuple[float, float] | None = None
    if "location" in sm:
        lm = check.as_map(sm["location"], sm.line_of("location"), f"{what}: 'location'")
        if lm is not None:
            lat = check.number(lm, "lat", f"{what}: location")
            lon = check.number(lm, "lon", f"{what}: location")
            if lat is not None and lon is not None:
                if -90 <= lat <= 90 and -180 <= lon <= 180:
                    location = (lat, lon)
                else:
                    check.error(
                        lm.line, f"{what}: location {lat}, {lon} is not a latitude and longitude"
                    )
    sensors: list[Sensor] = []
    seen: dict[str, int] = {}
    feeds: dict[tuple[str, str | None], str] = {}
    slist = check.as_list(sm.get("sensors"), sm.line_of("sensors"), f"{what}: 'sensors'")
    for sitem, sline in zip(slist or [], (slist.item_lines if slist else []), strict=True):
        sensor = _read_sensor(sitem, sline, check, eid, sid or "?", presets)
        if sensor is None:
            continue
        if sensor.id in seen:
            check.error(
                sline,
                f"{what}: duplicate sensor id {sensor.id!r} (first on line {seen[sensor.id]})",
            )
            continue
        feed = (sensor.device, sensor.channel)
        if feed in feeds:
            check.error(
                sline,
                f"{what}: sensor {sensor.id!r} reads the same device and channel "
                f"as {feeds[feed]!r}",
            )
            continue
        seen[sensor.id] = sline
        feeds[feed] = sensor.id
        sensors.append(sensor)
    devices_single = {s.device for s in sensors if s.channel is None}
    for s in sensors:
        if s.channel is not None and s.device in devices_single:
            check.error(
                sm.line_of("sensors"),
                f"{what}: device {s.device!r} is used both as a "
                "single-value sensor and with channels",
            )
            break
    site_zones = read_zones(sm, check, eid, sid or "?", sensors, declared_sensors(slist))
    if sid is None or name is None:
        return None
    zones.extend(site_zones)
    return Site(sid, eid, name, address, location, tuple(sensors))


def _read_sensor(
    item: object, line: int, check: FileChecker, eid: str, site: str, presets: dict[str, Preset]
) -> Sensor | None:
    sm = check.as_map(item, line, "a sensor")
    if sm is None:
        return None
    check.known_keys(sm, _SENSOR_KEYS, "a sensor")
    sid = check.ident(sm, "id", "a sensor")
    what = f"sensor {sid or '?'}"
    name = check.text(sm, "name", what)
    kind = check.text(sm, "kind", what)
    unit = check.text(sm, "unit", what)
    ok = True
    if kind is not None and kind not in KINDS:
        check.error(
            sm.line_of("kind"),
            f"{what}: unknown sensor kind {kind!r}; expected one of {', '.join(KINDS)}",
        )
        ok = False
    elif kind is not None and unit is not None and unit not in KINDS[kind].units:
        check.error(
            sm.line_of("unit"),
            f"{what}: unit {unit!r} is not a unit of {kind} ({', '.join(KINDS[kind].units)})",
        )
        ok = False
    rng = _read_range(sm, check, what)
    interval = check.seconds(sm, "interval", what, 60.0)
    if interval is not None and interval <= 0:
        check.error(sm.line_of("interval"), f"{what}: reporting interval must be positive")
        ok = False
    device = check.ident(sm, "device", what, required=False) or sid
    channel = check.ident(sm, "channel", what, required=False)
    zone = check.ident(sm, "zone", what, required=False)
    rules: list[Rule] = []
    ctx = SensorContext(unit, rng, interval)
    rlist = check.as_list(sm.get("rules", YList()), sm.line_of("rules"), f"{what}: 'rules'")
    rule_ids: set[str] = set()
    for ritem, rline in zip(rlist or [], (rlist.item_lines if rlist else []), strict=True):
        rm = check.as_map(ritem, rline, f"{what}: a rule")
        if rm is None:
            ok = False
            continue
        resolved = resolve(rm, presets, check, unit, what)
        rule = build_rule(resolved[1], resolved[0], check, ctx, what) if resolved else None
        if rule is None:
            ok = False
            continue
        if rule.rule_id in rule_ids:
            check.error(rline, f"{what}: two rules have the id {rule.rule_id!r}; give one an 'id'")
            ok = False
            continue
        rule_ids.add(rule.rule_id)
        rules.append(rule)
    implicit = implicit_rules(sm, check, ctx, what, {r.kind for r in rules})
    if implicit is None:
        ok = False
    for rule in implicit or []:
        if rule.rule_id in rule_ids:
            check.error(
                sm.line,
                f"{what}: a rule is called {rule.rule_id!r}, the id of the "
                f"implicit {rule.kind} rule; rename it or set '{rule.kind}: false'",
            )
            ok = False
            continue
        rules.append(rule)
    if (
        not ok
        or sid is None
        or name is None
        or kind is None
        or unit is None
        or rng is None
        or interval is None
        or device is None
    ):
        return None
    return Sensor(
        sensor_uid(eid, site, sid),
        eid,
        site,
        sid,
        kind,
        name,
        unit,
        rng,
        interval,
        device,
        channel,
        tuple(rules),
        zone,
    )


def _read_range(sm: YMap, check: FileChecker, what: str) -> tuple[float, float] | None:
    raw = sm.get("range")
    line = sm.line_of("range")
    if raw is None:
        check.error(sm.line, f"{what} is missing the required field 'range' ([low, high])")
        return None
    if not isinstance(raw, YList) or len(raw) != 2:
        check.error(line, f"{what}: 'range' must be [low, high]")
        return None
    lo = check.number_value(raw[0], line, f"{what}: range low")
    hi = check.number_value(raw[1], line, f"{what}: range high")
    if lo is None or hi is None:
        return None
    if lo >= hi:
        check.error(line, f"{what}: range low {lo:g} must be below range high {hi:g}")
        return None
    return (lo, hi)
