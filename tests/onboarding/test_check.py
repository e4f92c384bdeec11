"""The enterprise file is checked against the registry it joins, and every problem is
reported as file:line: message in the submitted file."""

from __future__ import annotations

from pathlib import Path

import pytest

from earlywarn.onboard_check import check_enterprise_file, problem_paths
from tests.onboarding.enterprise_files import VALID, broken


def _check(tmp_path: Path, registry_dir: Path, text: str) -> tuple[Path, list[str]]:
    source = tmp_path / "submitted.yaml"
    source.write_text(text, encoding="utf-8")
    checked = check_enterprise_file(source, registry_dir)
    return source, [str(p) for p in checked.problems]


def test_a_valid_file_passes_and_would_land_as_its_id(tmp_path: Path, registry_dir: Path) -> None:
    source = tmp_path / "submitted.yaml"
    source.write_text(VALID, encoding="utf-8")
    checked = check_enterprise_file(source, registry_dir)
    assert checked.problems == ()
    assert checked.target == registry_dir / "xinyuan-gas.yaml"
    assert checked.registry is not None
    assert set(checked.registry.enterprises) == {
        "huaxin-chem",
        "laojie-restaurants",
        "qingjiang-water",
        "xinyuan-gas",
    }


MISTAKES = [
    pytest.param(
        # The second sensor reuses the first one's id.
        ("id: LT-01", "id: GD-01", 1),
        ["31: site station-1: duplicate sensor id 'GD-01' (first on line 24)"],
        id="duplicate-sensor-id",
    ),
    pytest.param(
        ("id: xinyuan-gas", "id: huaxin-chem", 1),
        [
            "2: enterprise 'huaxin-chem' is already registered ({registry}/huaxin-chem.yaml); "
            "to change it, onboard with --update (API: update=true)"
        ],
        id="enterprise-id-of-another-enterprise",
    ),
    pytest.param(
        ("xy-main-feng", "hx-main-sun", 3),
        ["11: duplicate person id 'hx-main-sun' (also in {registry}/huaxin-chem.yaml:13)"],
        id="person-id-of-another-enterprise",
    ),
    pytest.param(
        ("kind: combustible_gas", "kind: combustable_gas", 1),
        [
            "26: sensor GD-01: unknown sensor kind 'combustable_gas'; expected one of "
            "combustible_gas, toxic_gas, oxygen, tank_level, temperature, pressure, flow, "
            "rainfall, water_level"
        ],
        id="unknown-kind",
    ),
    pytest.param(
        ("setpoints: {orange: 10.5, red: 11.0}", "setpoints: {orange: 10.5}", 1),
        [
            "38: sensor LT-01: rule 'tank_level_high' needs a set-point for red (高高限): "
            "give it under 'setpoints'"
        ],
        id="missing-setpoint",
    ),
    pytest.param(
        ('      phone: "+8613800040002"\n', "", 1),
        ["11: person xy-main-feng is missing the required field 'phone'"],
        id="person-without-phone",
    ),
]


@pytest.mark.parametrize(("change", "expected"), MISTAKES)
def test_each_mistake_is_reported_exactly_at_its_line(
    tmp_path: Path, registry_dir: Path, change: tuple[str, str, int], expected: list[str]
) -> None:
    source, problems = _check(tmp_path, registry_dir, broken(*change))
    assert problems, "the unbroken file must pass (test_a_valid_file_passes…)"
    assert problems == [f"{source}:{line.format(registry=registry_dir)}" for line in expected]


def test_every_problem_of_a_file_is_reported_in_one_pass(
    tmp_path: Path, registry_dir: Path
) -> None:
    text = broken("kind: combustible_gas", "kind: combustable_gas").replace(
        '      phone: "+8613800040002"\n', ""
    )
    _source, problems = _check(tmp_path, registry_dir, text)
    assert len(problems) == 2


def test_a_chain_naming_someone_unknown_is_reported(tmp_path: Path, registry_dir: Path) -> None:
    source, problems = _check(
        tmp_path, registry_dir, broken("orange: [xy-ops-qian, xy-main-feng]", "orange: [xy-x]")
    )
    assert problems == [
        f"{source}:18: enterprise xinyuan-gas: chain orange names 'xy-x', who is neither a "
        "person of this enterprise nor a duty officer of its region"
    ]


def test_problems_carry_the_yaml_path_of_their_line(tmp_path: Path, registry_dir: Path) -> None:
    source = tmp_path / "submitted.yaml"
    source.write_text(broken("kind: combustible_gas", "kind: combustable_gas"), encoding="utf-8")
    checked = check_enterprise_file(source, registry_dir)
    assert problem_paths(source, checked.problems) == ["enterprise.sites[0].sensors[0].kind"]


def test_changing_a_registered_enterprise_needs_update(tmp_path: Path, registry_dir: Path) -> None:
    own = registry_dir / "laojie-restaurants.yaml"
    edited = tmp_path / "laojie.yaml"
    edited.write_text(own.read_text(encoding="utf-8").replace("川味小馆", "川味小馆（新）"))
    refused = check_enterprise_file(edited, registry_dir)
    assert [p.message for p in refused.problems] == [
        f"enterprise 'laojie-restaurants' is already registered ({own}); to change it, "
        "onboard with --update (API: update=true)"
    ]
    checked = check_enterprise_file(edited, registry_dir, update=True)
    assert checked.problems == ()
    assert checked.target == own


def test_the_file_already_registered_passes_without_update(registry_dir: Path) -> None:
    own = registry_dir / "laojie-restaurants.yaml"
    assert check_enterprise_file(own, registry_dir).problems == ()


def test_dropping_a_person_that_routing_names_is_refused(
    tmp_path: Path, registry_dir: Path
) -> None:
    own = (registry_dir / "laojie-restaurants.yaml").read_text(encoding="utf-8")
    start = own.index("    - id: r01-owner")
    end = own.index("    - id: r02-owner")
    edited = tmp_path / "laojie.yaml"
    edited.write_text(own[:start] + own[end:], encoding="utf-8")
    checked = check_enterprise_file(edited, registry_dir, update=True)
    assert checked.problems
    assert all(p.file == str(registry_dir / "routing.yaml") for p in checked.problems)
    assert "r01-owner" in str(checked.problems[0])
