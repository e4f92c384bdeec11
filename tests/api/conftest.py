"""Fixtures for the API tests: the API on a real alert store, with two enterprises' alarms."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from earlywarn.registry import Registry
from tests.api.server import START_MS, ApiThread, Roles, make_tokens

LAOJIE_GAS = "laojie-restaurants/r-01/G1"
HUAXIN_GAS = "huaxin-chem/tank-farm-1/GD-01"


@dataclass
class Served:
    """The running API, its tokens, and the numbers of the seeded alarms."""

    api: ApiThread
    tokens: Roles
    laojie_ref: int
    huaxin_ref: int

    @property
    def url(self) -> str:
        return self.api.url


@pytest.fixture
def served(registry: Registry, tmp_path: Path) -> Iterator[Served]:
    tokens = make_tokens(tmp_path / "tokens.yaml")
    api = ApiThread(registry, tmp_path / "alerts.db", tmp_path / "tokens.yaml").start()
    try:
        laojie = api.raise_alarm(LAOJIE_GAS, 57.5, START_MS)
        huaxin = api.raise_alarm(HUAXIN_GAS, 62.0, START_MS + 1000)
        yield Served(api, tokens, laojie, huaxin)
    finally:
        api.stop()
