"""Access control on a real Mosquitto reading the password and ACL files onboarding wrote:
an enterprise's device publishes its own readings and nothing else, reads only its own site's
alarm states, and a wrong, rotated or revoked secret does not get in."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from earlywarn.clock import ManualClock
from earlywarn.model import AlarmEvent
from earlywarn.mosquitto_auth import AuthDir
from earlywarn.onboard import Onboarder, OnboardResult
from earlywarn.registry import load_registry
from earlywarn.settings import RunSettings
from tests.onboarding.conftest import SERVICE_SECRET, SERVICE_USER
from tests.onboarding.mqtt_login import NOT_AUTHORIZED, Login, login
from tests.services.mosquitto import Mosquitto
from tests.services.runner_thread import RunnerThread

pytestmark = pytest.mark.integration

A_DEVICE = "laojie-restaurants/r-01/G1"
A_UP = "ew/v1/laojie-restaurants/r-01/G1/up"
A_NEIGHBOUR_UP = "ew/v1/laojie-restaurants/r-02/G1/up"
B_UP = "ew/v1/huaxin-chem/tank-farm-1/GD-01/up"
NOW_MS = 1_795_284_000_000


def secrets_of(result: OnboardResult) -> dict[str, str]:
    return {c.user: c.password for c in result.issued if c.password is not None}


def wait_until_login(port: int, user: str, password: str, *, accepted: bool) -> Login:
    """Log in until the broker answers as expected: a SIGHUP reload is asynchronous."""
    deadline = time.monotonic() + 10
    while True:
        attempt = login(port, user, password)
        if attempt.connected == accepted or time.monotonic() > deadline:
            assert attempt.connected == accepted, f"{user}: {attempt.reason}"
            return attempt
        if attempt.connected:
            attempt.close()


@pytest.fixture
def onboarded(
    auth_broker: Mosquitto,
    make_onboarder: Callable[..., Onboarder],
    registry_dir: Path,
    tmp_path: Path,
) -> tuple[Onboarder, dict[str, str]]:
    """Both example enterprises onboarded while the broker runs, reloaded by SIGHUP."""
    onboarder = make_onboarder(pid_file=auth_broker.write_pid_file(tmp_path / "mosquitto.pid"))
    a = onboarder.onboard(registry_dir / "laojie-restaurants.yaml")
    b = onboarder.onboard(registry_dir / "huaxin-chem.yaml")
    assert a.broker.done.startswith("sent SIGHUP") and b.broker.error is None
    return onboarder, secrets_of(a) | secrets_of(b)


def test_a_device_publishes_its_own_readings_and_nothing_else(
    auth_broker: Mosquitto, onboarded: tuple[Onboarder, dict[str, str]]
) -> None:
    _onboarder, secrets = onboarded
    service = login(auth_broker.port, SERVICE_USER, SERVICE_SECRET)
    service.subscribe("ew/v1/+/+/+/up")
    device = wait_until_login(auth_broker.port, A_DEVICE, secrets[A_DEVICE], accepted=True)
    payload = json.dumps({"ts": NOW_MS, "v": 60.0})

    assert device.publish(B_UP, payload).value == NOT_AUTHORIZED
    assert device.publish(A_NEIGHBOUR_UP, payload).value == NOT_AUTHORIZED
    assert device.publish("ew/v1/deadletter", payload).value == NOT_AUTHORIZED
    assert not device.publish(A_UP, payload).is_failure

    # Same connection, in order: had any refused message got through, it would be here
    # before the device's own reading.
    service.wait_for(A_UP)
    assert [m.topic for m in service.messages] == [A_UP]
    device.close()
    service.close()


def test_a_device_reads_only_its_own_sites_alarm_states(
    auth_broker: Mosquitto, onboarded: tuple[Onboarder, dict[str, str]]
) -> None:
    _onboarder, secrets = onboarded
    siren = wait_until_login(auth_broker.port, A_DEVICE, secrets[A_DEVICE], accepted=True)
    siren.subscribe("ew/v1/#")
    service = login(auth_broker.port, SERVICE_USER, SERVICE_SECRET)
    for topic in (
        "ew/v1/huaxin-chem/tank-farm-1/GD-01/alarm",
        "ew/v1/laojie-restaurants/r-02/G1/alarm",
        "ew/v1/laojie-restaurants/r-01/G1/alarm",
    ):
        assert not service.publish(topic, '{"level": "red"}').is_failure
    siren.wait_for("ew/v1/laojie-restaurants/r-01/G1/alarm")
    assert [m.topic for m in siren.messages] == ["ew/v1/laojie-restaurants/r-01/G1/alarm"]
    siren.close()
    service.close()


def test_a_wrong_secret_an_unknown_user_and_no_login_are_refused(
    auth_broker: Mosquitto, onboarded: tuple[Onboarder, dict[str, str]]
) -> None:
    _onboarder, secrets = onboarded
    wait_until_login(auth_broker.port, A_DEVICE, secrets[A_DEVICE], accepted=True).close()
    assert not login(auth_broker.port, A_DEVICE, secrets[A_DEVICE] + "x").connected
    assert not login(auth_broker.port, "laojie-restaurants/r-09/G1", "guess").connected
    assert not login(auth_broker.port, "", "").connected


def test_rotation_and_offboarding_lock_the_old_secrets_out(
    auth_broker: Mosquitto,
    onboarded: tuple[Onboarder, dict[str, str]],
    registry_dir: Path,
    auth_dir: AuthDir,
) -> None:
    onboarder, secrets = onboarded
    old = secrets[A_DEVICE]
    wait_until_login(auth_broker.port, A_DEVICE, old, accepted=True).close()

    rotated = secrets_of(onboarder.onboard(registry_dir / "laojie-restaurants.yaml", rotate=True))
    assert rotated[A_DEVICE] != old
    wait_until_login(auth_broker.port, A_DEVICE, old, accepted=False)
    wait_until_login(auth_broker.port, A_DEVICE, rotated[A_DEVICE], accepted=True).close()

    # keep_registry: routing.yaml names its people (the refusal is tested elsewhere).
    result = onboarder.offboard("laojie-restaurants", keep_registry=True)
    assert A_DEVICE in result.revoked
    wait_until_login(auth_broker.port, A_DEVICE, rotated[A_DEVICE], accepted=False)
    assert A_DEVICE not in auth_dir.passwd.read_text()
    # The other enterprise and the service are untouched.
    b_device = "huaxin-chem/tank-farm-1/GD-01"
    wait_until_login(auth_broker.port, b_device, secrets[b_device], accepted=True).close()
    login(auth_broker.port, SERVICE_USER, SERVICE_SECRET).close()


class Events:
    """Alarm events the runner raised (appended on its loop)."""

    def __init__(self) -> None:
        self.items: list[AlarmEvent] = []

    def emit(self, event: AlarmEvent) -> None:
        self.items.append(event)


def test_a_reading_on_another_enterprises_topic_never_reaches_the_rules(
    auth_broker: Mosquitto, onboarded: tuple[Onboarder, dict[str, str]], registry_dir: Path
) -> None:
    _onboarder, secrets = onboarded
    events = Events()
    settings = RunSettings(
        mqtt_url=f"mqtt://{SERVICE_USER}:{SERVICE_SECRET}@127.0.0.1:{auth_broker.port}",
        client_id="earlywarn-acl-test",
    )
    runner = RunnerThread(
        load_registry(registry_dir), settings, ManualClock(NOW_MS), sinks=[events]
    ).start()
    try:
        device = wait_until_login(auth_broker.port, A_DEVICE, secrets[A_DEVICE], accepted=True)
        # A gas leak reading for enterprise B, sent with A's credentials: refused.
        assert device.publish(B_UP, json.dumps({"ts": NOW_MS, "v": 80.0})).value == 135
        assert not device.publish(A_UP, json.dumps({"ts": NOW_MS, "v": 30.0})).is_failure
        runner.wait_for(lambda: runner.snapshot()["evaluated"] >= 1, 10, "A's reading")
        runner.wait_for(lambda: bool(events.items), 10, "A's alarm")
        device.close()
    finally:
        counters = runner.stop()
    assert counters.received == 1
    assert counters.evaluated == 1
    assert {e.enterprise for e in events.items} == {"laojie-restaurants"}
