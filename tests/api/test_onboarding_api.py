"""Onboarding through the API: problems come back as JSON with file, line and YAML path;
an enterprise token submits only its own enterprise; applying issues the secrets once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from earlywarn.clock import ManualClock
from earlywarn.mosquitto_auth import AuthDir, BrokerReloader, verify_password
from earlywarn.onboard import Onboarder
from earlywarn.registry import load_registry
from tests.api.server import START_MS, ApiThread, Roles, make_tokens
from tests.conftest import EXAMPLE_REGISTRY
from tests.onboarding.enterprise_files import VALID, broken


@dataclass
class Onboarding:
    api: ApiThread
    tokens: Roles
    auth: AuthDir
    registry_dir: Path

    def submit(self, text: str, token: str, **params: object) -> httpx.Response:
        return httpx.post(
            f"{self.api.url}/api/v1/onboarding",
            content=text.encode(),
            params=params,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
            timeout=30,
        )


@pytest.fixture
def onboarding(tmp_path: Path) -> Iterator[Onboarding]:
    registry_dir = tmp_path / "registry"
    shutil.copytree(EXAMPLE_REGISTRY, registry_dir)
    tokens = make_tokens(tmp_path / "tokens.yaml")
    auth = AuthDir(tmp_path / "mqtt")
    onboarder = Onboarder(registry_dir, auth, BrokerReloader(), ManualClock(START_MS))
    api = ApiThread(
        load_registry(registry_dir), tmp_path / "alerts.db", tmp_path / "tokens.yaml", onboarder
    ).start()
    try:
        yield Onboarding(api, tokens, auth, registry_dir)
    finally:
        api.stop()


def test_problems_come_back_with_line_and_path(onboarding: Onboarding) -> None:
    text = broken("kind: combustible_gas", "kind: combustable_gas").replace(
        '      phone: "+8613800040002"\n', ""
    )
    answer = onboarding.submit(text, onboarding.tokens.centre, apply=True)
    assert answer.status_code == 400
    body = answer.json()
    assert body["ok"] is False and body["applied"] is False
    assert [(p["file"], p["line"], p["path"]) for p in body["problems"]] == [
        ("submitted.yaml", 11, "enterprise.people[1]"),
        ("submitted.yaml", 25, "enterprise.sites[0].sensors[0].kind"),  # a line less
    ]
    assert body["problems"][0]["message"] == (
        "person xy-main-feng is missing the required field 'phone'"
    )
    assert not (onboarding.registry_dir / "xinyuan-gas.yaml").exists()


def test_a_check_changes_nothing(onboarding: Onboarding) -> None:
    answer = onboarding.submit(VALID, onboarding.tokens.centre)
    assert answer.status_code == 200
    assert answer.json()["ok"] is True and answer.json()["applied"] is False
    assert answer.json()["target"] == "xinyuan-gas.yaml"
    assert not (onboarding.registry_dir / "xinyuan-gas.yaml").exists()
    assert onboarding.auth.enterprises() == []


def test_an_enterprise_token_submits_only_its_own_enterprise(onboarding: Onboarding) -> None:
    answer = onboarding.submit(VALID, onboarding.tokens.laojie, apply=True)
    assert answer.status_code == 403
    assert not (onboarding.registry_dir / "xinyuan-gas.yaml").exists()
    own = (onboarding.registry_dir / "laojie-restaurants.yaml").read_text(encoding="utf-8")
    assert onboarding.submit(own, onboarding.tokens.laojie).status_code == 200


def test_applying_issues_each_secret_once(onboarding: Onboarding) -> None:
    first = onboarding.submit(VALID, onboarding.tokens.centre, apply=True)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["applied"] is True and body["restart_needed"] is True
    issued = {c["user"]: c["password"] for c in body["credentials"]}
    assert set(issued) == {"xinyuan-gas/station-1/GD-01", "xinyuan-gas/station-1/TK1"}
    hashes = onboarding.auth.passwd.read_text().splitlines()
    stored = dict(line.split(":", 1) for line in hashes)
    for user, secret in issued.items():
        assert verify_password(secret, stored[user])
        assert secret not in onboarding.auth.passwd.read_text()
    again = onboarding.submit(VALID, onboarding.tokens.centre, apply=True).json()
    assert [c["password"] for c in again["credentials"]] == [None, None]
    assert {c["status"] for c in again["credentials"]} == {"kept"}
