"""Checking one enterprise file ("一企一档") against the registry it is to join.

Two passes, because they answer different questions:

1. **The file itself, against everyone else.** The file is read by the registry's own
   reader with the rest of the registry already loaded, so a person id or an enterprise id
   that clashes with another enterprise is reported *in the submitted file*, at its line
   (the registry loader, reading files in name order, would blame whichever file came
   second). Every other check is the loader's: kinds, units, required set-points, people,
   chains, zones.
2. **The registry it would make.** The registry directory as it would be after onboarding
   (this file in place, as ``<enterprise-id>.yaml``) is loaded whole, with ``routing.yaml``
   and ``escalation.yaml``: a re-onboarding that drops a person ``routing.yaml`` names would
   otherwise leave a registry ``earlywarn run`` refuses to start on.

Problems are :class:`~earlywarn.yamlsource.Problem` values (``file:line: message``); for the
HTTP API each also gets the YAML path of its line (``enterprise.sites[0].sensors[1].kind``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from earlywarn.alerting_config import AlertingConfigError, load_alerting_config
from earlywarn.model import Enterprise, Person
from earlywarn.presets import load_presets
from earlywarn.registry import (
    NOT_ENTERPRISES,
    REGIONS_FILE,
    Registry,
    RegistryError,
    load_registry,
    read_enterprise,
    read_regions,
)
from earlywarn.schema import ID_PATTERN
from earlywarn.yamlsource import Problem, YList, YMap, load_file
from earlywarn.zones import Zone


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of checking an enterprise file: the enterprise and the registry it makes,
    or the problems (never both)."""

    source: Path
    enterprise: Enterprise | None
    registry: Registry | None
    problems: tuple[Problem, ...]
    target: Path | None
    """Where the file lands: ``<registry>/<enterprise-id>.yaml``."""

    @property
    def ok(self) -> bool:
        """No problems."""
        return not self.problems


def enterprise_files(registry_dir: Path) -> list[Path]:
    """The registry's enterprise files, in the loader's order."""
    return sorted(p for p in registry_dir.glob("*.yaml") if p.name not in NOT_ENTERPRISES)


def declared_id(path: Path) -> tuple[str | None, int]:
    """The ``enterprise.id`` a file declares and its line, without checking anything else
    (``None`` when the file does not get that far; the full check says why)."""
    data = load_file(path, [])
    if not isinstance(data, YMap):
        return None, 0
    em = data.get("enterprise")
    if not isinstance(em, YMap):
        return None, data.line
    eid = em.get("id")
    if not isinstance(eid, str) or not ID_PATTERN.match(eid):
        return None, em.line
    return eid, em.line_of("id")


def check_enterprise_file(source: Path, registry_dir: Path, *, update: bool = False) -> Checked:
    """Check ``source`` as the enterprise file it would become in ``registry_dir``.

    An enterprise already in the registry is changed only with ``update``: a new
    enterprise's file made from a copy of another's, its id left unchanged, would otherwise
    replace that enterprise and revoke its devices' accounts. Submitting the very file that
    is there already is always fine (re-running is idempotent).
    """
    problems: list[Problem] = []
    eid, id_line = declared_id(source)
    target = registry_dir / f"{eid}.yaml" if eid else None
    others: dict[str, Path] = {}
    for path in enterprise_files(registry_dir):
        other, _ = declared_id(path)
        if other is None:
            continue
        if target is not None and path.resolve() == target.resolve() and other == eid:
            unchanged = path.read_bytes() == source.read_bytes()
            if update or unchanged:
                continue  # the enterprise's own current file: replaced by this one
        others.setdefault(other, path)
    if eid is not None and eid in others and others[eid] == target:
        problems.append(
            Problem(
                str(source),
                id_line,
                f"enterprise {eid!r} is already registered ({target}); to change it, "
                "onboard with --update (API: update=true)",
            )
        )
    elif eid is not None and eid in others:
        problems.append(
            Problem(
                str(source),
                id_line,
                f"enterprise id {eid!r} is already registered in {others[eid]}; choose "
                "another id, or offboard that enterprise first",
            )
        )
    elif (
        target is not None
        and target.exists()
        and source.resolve() != target.resolve()
        and declared_id(target)[0] not in (None, eid)
    ):
        problems.append(
            Problem(
                str(source),
                id_line,
                f"{target} exists and holds another enterprise; rename that file first",
            )
        )
    enterprise = _read_against_registry(source, registry_dir, target, problems)
    if problems or enterprise is None or target is None:
        return Checked(source, None, None, tuple(problems), target)
    registry = _prospective_registry(source, registry_dir, target, problems)
    return Checked(source, enterprise, registry, tuple(problems), target)


def _read_against_registry(
    source: Path, registry_dir: Path, target: Path | None, problems: list[Problem]
) -> Enterprise | None:
    """Pass 1: read every other file of the registry, then ``source`` after them."""
    background: list[Problem] = []
    presets = load_presets(background)
    people: dict[str, Person] = {}
    where: dict[str, str] = {}
    zones: list[Zone] = []
    regions_path = registry_dir / REGIONS_FILE
    regions = {}
    if regions_path.exists():
        regions = read_regions(regions_path, background, people, where)
    else:
        background.append(Problem(str(regions_path), 0, "the regions file is missing"))
    for path in enterprise_files(registry_dir):
        if target is not None and path.resolve() == target.resolve():
            continue
        read_enterprise(path, background, presets, regions, people, where, zones)
    if background:
        # The registry the file is checked against is itself broken: say so, file by file,
        # rather than blame the newcomer for its neighbours' mistakes.
        problems.extend(
            replace(p, message=f"(registry, not the submitted file) {p.message}")
            for p in background
        )
        return None
    return read_enterprise(source, problems, presets, regions, people, where, zones)


@contextmanager
def _staged(source: Path, registry_dir: Path, target: Path) -> Iterator[Path]:
    """A copy of the registry directory with ``source`` in place as ``target``'s name."""
    with tempfile.TemporaryDirectory(prefix="earlywarn-onboard-") as tmp:
        staged = Path(tmp)
        for path in registry_dir.glob("*.yaml"):
            if path.name != target.name:
                shutil.copyfile(path, staged / path.name)
        shutil.copyfile(source, staged / target.name)
        yield staged


def _prospective_registry(
    source: Path, registry_dir: Path, target: Path, problems: list[Problem]
) -> Registry | None:
    """Pass 2: load the registry as it would be, with its alerting files."""
    with _staged(source, registry_dir, target) as staged:
        found: list[Problem] = []
        registry: Registry | None = None
        try:
            registry = load_registry(staged)
            load_alerting_config(registry)
        except RegistryError as exc:  # AlertingConfigError included
            found.extend(exc.problems)
            if not isinstance(exc, AlertingConfigError):
                registry = None

        def unstage(p: Problem) -> Problem:
            file = Path(p.file)
            real = source if file.name == target.name else registry_dir / file.name
            text = p.message.replace(str(staged), str(registry_dir))
            return Problem(str(real) if file.parent == staged else p.file, p.line, text)

        problems.extend(unstage(p) for p in found)
        if registry is None or found:
            return None
        # The staged files are gone once we leave: the registry's path is the real one.
        return replace(registry, path=registry_dir)


def check_registry_without(registry_dir: Path, enterprise_file: Path) -> list[Problem]:
    """Problems of the registry once ``enterprise_file`` is gone (offboarding): routing
    naming its people, say. Empty when the rest stands on its own."""
    with tempfile.TemporaryDirectory(prefix="earlywarn-offboard-") as tmp:
        staged = Path(tmp)
        for path in registry_dir.glob("*.yaml"):
            if path.resolve() != enterprise_file.resolve():
                shutil.copyfile(path, staged / path.name)
        try:
            load_alerting_config(load_registry(staged))
        except RegistryError as exc:
            return [
                Problem(str(registry_dir / Path(p.file).name), p.line, p.message)
                if Path(p.file).parent == staged
                else p
                for p in exc.problems
            ]
    return []


def yaml_path(data: object, line: int) -> str:
    """The path of the outermost key or item that starts on ``line``, such as
    ``enterprise.sites[0].sensors[1].kind`` or ``enterprise.people[1]`` (a list item whose
    first key is on its line: the problem is usually about the item, a missing field say);
    ``""`` when nothing starts there (the file as a whole)."""
    found: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, YMap):
            for key, value in node.items():
                sub = f"{path}.{key}" if path else key
                if node.key_lines.get(key) == line:
                    found.append(sub)
                walk(value, sub)
        elif isinstance(node, YList):
            for index, (item, item_line) in enumerate(zip(node, node.item_lines, strict=True)):
                sub = f"{path}[{index}]"
                if item_line == line:
                    found.append(sub)
                walk(item, sub)

    walk(data, "")
    return min(found, key=len) if found else ""


def problem_paths(source: Path, problems: tuple[Problem, ...]) -> list[str]:
    """The YAML path of each problem of ``source`` (``""`` for problems of other files)."""
    data = load_file(source, [])
    return [yaml_path(data, p.line) if Path(p.file) == source else "" for p in problems]
