"""The registry: enterprises, sites, sensors, people and regions, loaded from a directory.

Layout: ``regions.yaml`` plus one ``*.yaml`` file per enterprise ("一企一档"). Loading checks
every field and every cross-reference and reports *all* problems as ``file:line: message``;
nothing half-loaded is ever returned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from earlywarn.kinds import KINDS
from earlywarn.model import Enterprise, Person, Region, Sensor, Site, sensor_uid
from earlywarn.presets import Preset, load_presets, resolve
from earlywarn.rule_builders import SensorContext, build_rule, implicit_rules
from earlywarn.schema import FileChecker
from earlywarn.yamlsource import Problem, YList, YMap, load_file
from earlywarn.zones import Zone, declared_sensors, read_zones
from rules.base import Rule
from rules.levels import Level

REGIONS_FILE = "regions.yaml"
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
        regions = _read_regions(regions_path, problems, people, person_where)
    else:
        problems.append(Problem(str(regions_path), 0, "the regions file is missing"))
    enterprises: dict[str, Enterprise] = {}
    ent_where: dict[str, str] = {}
    zones: list[Zone] = []
    files = sorted(p for p in root.glob("*.yaml") if p.name != REGIONS_FILE)
    if not files:
        problems.append(Problem(str(root), 0, "no enterprise files (*.yaml) in the registry"))
    for file in files:
        ent = _read_enterprise(file, problems, presets, regions, people, person_where, zones)
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


def _read_regions(
    path: Path, problems: list[Problem], people: dict[str, Person], where: dict[str, str]
) -> dict[str, Region]:
    check = FileChecker(str(path), problems)
    top = _top_mapping(path, check, "the regions file")
    if top is None:
        return {}
    check.known_keys(top, ("regions",), "the regions file")
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
        check.known_keys(rm, ("id", "name", "level", "parent", "people", "duty"), what)
        rid = check.ident(rm, "id", what)
        name = check.text(rm, "name", what)
        level = check.text(rm, "level", what)
        parent = check.ident(rm, "parent", what, required=False)
        own: list[Person] = []
        plist = check.as_list(rm.get("people", YList()), rm.line_of("people"), f"{what}: 'people'")
        for pitem, pline in zip(plist or [], (plist.item_lines if plist else []), strict=True):
            person = _read_person(pitem, pline, check, people, where, what)
            if person is not None:
                own.append(person)
        duty: list[str] = []
        dlist = check.as_list(rm.get("duty", YList()), rm.line_of("duty"), f"{what}: 'duty'")
        own_ids = _declared_ids(plist)
        for pid, dline in zip(dlist or [], (dlist.item_lines if dlist else []), strict=True):
            if not isinstance(pid, str):
                check.error(dline, f"{what}: a duty officer must be given by person id")
                continue
            if pid not in own_ids:
                check.error(
                    dline, f"{what}: duty officer {pid!r} is not one of this region's people"
                )
                continue
            duty.append(str(pid))
        if rid is None or name is None or level is None:
            continue
        if rid in regions:
            check.error(rm.line_of("id"), f"duplicate region id {rid!r}")
            continue
        regions[rid] = Region(rid, name, level, parent, tuple(own), tuple(duty))
        if parent is not None:
            parents[rid] = (parent, rm.line_of("parent"))
    for rid, (parent, line) in parents.items():
        if parent not in regions:
            check.error(line, f"region {rid}: parent region {parent!r} is not defined")
    return regions


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


def _read_enterprise(
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
    chain = _read_chain(em, check, what, reachable)
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
    em: YMap, check: FileChecker, what: str, reachable: set[str]
) -> dict[Level, tuple[str, ...]] | None:
    cm = check.as_map(em.get("chain"), em.line_of("chain"), f"{what}: 'chain'")
    if cm is None:
        return None
    chain: dict[Level, tuple[str, ...]] = {}
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
        for pid, pline in zip(rlist, rlist.item_lines, strict=True):
            if not isinstance(pid, str):
                check.error(pline, f"{what}: chain {level.label}: a rung must be a person id")
            elif pid not in reachable:
                check.error(
                    pline,
                    f"{what}: chain {level.label} names {pid!r}, who is neither "
                    "a person of this enterprise nor a duty officer of its region",
                )
        chain[level] = tuple(str(p) for p in rlist)
    missing = [lvl.label for lvl in Level if lvl not in chain]
    if missing:
        check.error(
            em.line_of("chain"),
            f"{what}: chain has no rungs for {', '.join(missing)}; every "
            "level must say who is called",
        )
    return chain


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
