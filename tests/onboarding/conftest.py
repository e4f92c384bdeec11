"""Fixtures for onboarding: a copy of the example registry to onboard into, an onboarder
writing a broker authentication directory, and a real Mosquitto reading that directory's
password and ACL files (with the service's own account, as docker-compose.yml sets up)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from earlywarn.clock import ManualClock
from earlywarn.mosquitto_auth import BASE_ACL, BASE_PASSWD, AuthDir, BrokerReloader, hash_password
from earlywarn.onboard import Onboarder
from tests.conftest import EXAMPLE_REGISTRY, ROOT, _service_missing
from tests.services.mosquitto import Mosquitto, find_mosquitto

SERVICE_USER = "earlywarn"
SERVICE_SECRET = "service-secret-for-tests"
START_MS = 1_795_284_000_000


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A writable copy of the example registry."""
    target = tmp_path / "registry"
    shutil.copytree(EXAMPLE_REGISTRY, target)
    return target


@pytest.fixture
def auth_dir(tmp_path: Path) -> AuthDir:
    """A broker authentication directory holding the service account and its ACL (the
    ACL docker-compose.yml mounts), before any enterprise is onboarded."""
    auth = AuthDir(tmp_path / "mqtt")
    auth.root.mkdir()
    (auth.root / BASE_PASSWD).write_text(f"{SERVICE_USER}:{hash_password(SERVICE_SECRET)}\n")
    shutil.copyfile(ROOT / "deploy" / "mosquitto" / "acl", auth.root / BASE_ACL)
    auth.assemble()
    return auth


@pytest.fixture
def make_onboarder(
    registry_dir: Path, auth_dir: AuthDir, tmp_path: Path
) -> Callable[..., Onboarder]:
    """An onboarder over the registry copy; ``pid_file`` makes it reload by SIGHUP."""

    def make(pid_file: Path | None = None, dashboards: Path | None = None) -> Onboarder:
        return Onboarder(
            registry_dir,
            auth_dir,
            BrokerReloader(pid_file),
            ManualClock(START_MS),
            dashboards_out=dashboards,
        )

    return make


@pytest.fixture
def auth_broker(auth_dir: AuthDir, tmp_path: Path) -> Iterator[Mosquitto]:
    """A real Mosquitto using the onboarding's assembled password and ACL files."""
    if find_mosquitto() is None:
        _service_missing("mosquitto")
    broker = Mosquitto(tmp_path / "broker", password_file=auth_dir.passwd, acl_file=auth_dir.acl)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
