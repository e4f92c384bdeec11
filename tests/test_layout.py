"""Dependencies point one way: ``rules`` and ``simulators`` import none of the other packages;
``alerting`` (and later ``storage``) import only ``earlywarn.model`` of the rest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("earlywarn", "ingest", "rules", "alerting", "storage", "simulators", "dashboards")
ALLOWED: dict[str, set[str]] = {
    "rules": set(),
    "simulators": set(),
    "alerting": {"earlywarn.model"},
    "storage": {"earlywarn.model"},
}


def project_imports(package: str) -> set[tuple[str, str]]:
    """(file, module) for every import of another project package inside ``package``."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in PACKAGES and top != package:
                    found.add((str(path.relative_to(ROOT)), name))
    return found


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if (ROOT / p).is_dir()))
def test_package_imports_only_what_the_layout_allows(package: str) -> None:
    bad = {(f, m) for f, m in project_imports(package) if m not in ALLOWED[package]}
    assert not bad, f"{package} may import only {ALLOWED[package] or 'nothing'}: {sorted(bad)}"


def test_the_rules_engine_does_no_io() -> None:
    forbidden = {"os", "io", "socket", "pathlib", "open", "asyncio", "threading", "logging"}
    for path in (ROOT / "rules").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & forbidden, path
            if isinstance(node, ast.ImportFrom):
                assert node.module not in forbidden, path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", path
