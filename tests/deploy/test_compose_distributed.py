"""docker-compose.yml's ``distributed`` profile, checked without Docker.

The profile runs Kafka, a one-shot topic job, a bridge, two workers and the alerter. What can
go wrong without anybody here being able to start it: a command line the CLI refuses, a
worker told another partition count than the topic was created with (a site's readings on a
partition nobody evaluates), a Kafka or MQTT address that names no service, an account the
broker's ACL does not let take the shared subscription, an alerter that runs next to
``earlywarn run`` and calls everybody twice. Each is checked against the project's parser,
its topic names and a real Mosquitto with the shipped ACL.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from alerting.alarm_records import ALARMS_TOPIC
from earlywarn.cli import build_parser
from ingest.kafka_records import DEADLETTER_TOPIC, READINGS_TOPIC
from ingest.mqtt import parse_mqtt_url
from ingest.shared_subscription import shared_filters
from tests.services.mosquitto import Mosquitto, find_mosquitto

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
TOPIC_SCRIPT = ROOT / "deploy/kafka/create-topics.sh"
DISTRIBUTED = ("kafka", "kafka-topics", "bridge", "worker", "alerter")
EARLYWARN_COMMANDS = {"bridge": "bridge", "worker": "worker", "alerter": "alerter"}


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_profile_has_kafka_topics_bridge_workers_and_alerter(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in DISTRIBUTED:
        assert services[name]["profiles"] == ["distributed"], name
    for name in EARLYWARN_COMMANDS:
        # The project's image, built as the embedded runner's is.
        assert services[name]["image"] == services["earlywarn"]["image"], name
        assert services[name]["build"] == services["earlywarn"]["build"], name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["kafka-topics"]["image"] == services["kafka"]["image"]
    assert services["worker"]["deploy"]["replicas"] >= 2, "two workers share the partitions"
    # The default profile is what it was: nothing distributed starts without the profile.
    default = {n for n, s in services.items() if "profiles" not in s}
    assert default == {
        "mosquitto-passwd",
        "mosquitto",
        "influxdb",
        "dashboards",
        "grafana",
        "earlywarn",
    }


@pytest.mark.parametrize("service", list(EARLYWARN_COMMANDS))
def test_each_command_exists_and_its_flags_parse(
    services: dict[str, dict[str, Any]], service: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = [str(arg) for arg in services[service]["command"]]
    assert command[0] == EARLYWARN_COMMANDS[service]
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command[0], "--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for flag in (arg for arg in command[1:] if arg.startswith("--")):
        assert flag in usage, f"{service}: {flag} is not a flag of `earlywarn {command[0]}`"
    args = build_parser().parse_args(command)  # exits 2 on a bad value
    assert args.func.__module__ == f"earlywarn.{command[0]}_cli"
    if "--registry" in command:
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[service]["volumes"]}
        assert (ROOT / mounts[str(args.registry)] / "regions.yaml").is_file()


def test_workers_topics_and_broker_agree_on_the_partition_count(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = build_parser().parse_args([str(a) for a in services["worker"]["command"]])
    job = services["kafka-topics"]
    assert int(job["environment"]["EW_PARTITIONS"]) == worker.partitions
    assert int(services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]) == worker.partitions
    assert worker.partitions >= services["worker"]["deploy"]["replicas"], "idle workers"
    script = TOPIC_SCRIPT.read_text(encoding="utf-8")
    (topics,) = re.findall(r"for topic in ([^;]+); do", script)
    assert set(topics.split()) == {READINGS_TOPIC, ALARMS_TOPIC, DEADLETTER_TOPIC}
    assert '--partitions "$partitions"' in script
    assert f"--describe --topic {READINGS_TOPIC}" in script, "a differing count must stop it"
    mounted = {v.split(":")[0]: v.split(":")[1] for v in job["volumes"]}
    assert mounted["./deploy/kafka/create-topics.sh"] == job["entrypoint"][-1]


def test_the_topic_script_is_valid_sh() -> None:
    subprocess.run(["sh", "-n", str(TOPIC_SCRIPT)], check=True)
    assert os.access(TOPIC_SCRIPT, os.X_OK)


def test_everything_waits_for_the_topics_and_talks_to_the_kafka_service(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    advertised = dict(
        item.split("://") for item in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    address = advertised["PLAINTEXT"]
    assert address.split(":")[0] == "kafka"
    assert kafka["environment"]["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"
    # The one published port is the host listener, advertised as the address it is reached at
    # and on loopback only (the broker has no authentication).
    host_address = advertised["HOST"]
    assert kafka["ports"] == [f"{host_address}:{host_address.rsplit(':', 1)[1]}"]
    assert host_address.startswith("127.0.0.1:")
    listeners = kafka["environment"]["KAFKA_LISTENERS"].split(",")
    assert {item.split("://")[0] for item in listeners} == {"PLAINTEXT", "HOST", "CONTROLLER"}
    protocols = kafka["environment"]["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert "HOST:PLAINTEXT" in protocols.split(",")
    assert services["kafka-topics"]["environment"]["EW_KAFKA"] == address
    for name in EARLYWARN_COMMANDS:
        service = services[name]
        assert service["environment"]["EARLYWARN_KAFKA"] == address, name
        condition = service["depends_on"]["kafka-topics"]["condition"]
        assert condition == "service_completed_successfully", name


def test_the_services_read_every_variable_they_are_given(
    services: dict[str, dict[str, Any]],
) -> None:
    sources = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "earlywarn").glob("*.py"))
    for name in EARLYWARN_COMMANDS:
        for variable in services[name]["environment"]:
            if variable == "TZ":
                continue
            assert f'"{variable}"' in sources, f"{name}: earlywarn never reads {variable}"


def test_the_alerter_replaces_the_embedded_runner_and_never_runs_beside_it(
    services: dict[str, dict[str, Any]],
) -> None:
    """Both would record and escalate every alarm: the header says to scale `earlywarn` to
    zero, and their shared host port makes the second one fail loudly if someone forgets."""
    alerter, embedded = services["alerter"], services["earlywarn"]
    assert "deploy" not in alerter, "one alerter per alert store"
    assert alerter["ports"] == embedded["ports"]
    assert "--scale earlywarn=0" in COMPOSE.read_text(encoding="utf-8").split("name:", 1)[0]
    # Same store and spool on the same volume: switching runners keeps the open alarms.
    assert "earlywarn-data:/data" in alerter["volumes"]
    assert "earlywarn-data:/data" in embedded["volumes"]
    assert _flag(embedded["command"], "--store") == alerter["environment"]["EARLYWARN_STORE"]
    for variable, value in embedded["environment"].items():
        if variable.startswith(("EARLYWARN_INFLUX", "EARLYWARN_SPOOL", "EARLYWARN_ACK")):
            assert alerter["environment"][variable] == value, variable
        if variable in {"EARLYWARN_PUBLIC_URL", "EARLYWARN_LINK_SECRET"}:
            assert alerter["environment"][variable] == value, variable


def _bridge_account(services: dict[str, dict[str, Any]]) -> tuple[str, str, str]:
    """(user, password variable, share group) of the bridge service."""
    env = services["bridge"]["environment"]
    endpoint = parse_mqtt_url(env["EARLYWARN_MQTT"])
    assert endpoint.host == "mosquitto"
    assert endpoint.username is not None
    assert endpoint.password is not None
    (variable,) = re.findall(r"\$\{(\w+)\}", endpoint.password)
    return endpoint.username, variable, env["EARLYWARN_SHARE_GROUP"]


def test_the_bridge_account_is_in_the_password_job(services: dict[str, dict[str, Any]]) -> None:
    user, variable, group = _bridge_account(services)
    shared_filters(group)  # raises on a name MQTT cannot share
    script = (ROOT / "deploy/mosquitto/make-passwd.sh").read_text(encoding="utf-8")
    assert f'mosquitto_passwd -b "$file" {user} "${variable}"' in script
    assert variable in services["mosquitto-passwd"]["environment"]
    assert services["bridge"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"


def test_the_shipped_acl_lets_the_bridge_take_its_shared_subscription(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Against a real Mosquitto 2 with deploy/mosquitto/acl: the ACL is checked on the
    filter inside ``$share/…`` and on every delivery, which a text match cannot prove."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    user, _variable, group = _bridge_account(services)
    passwd = tmp_path / "passwd"
    passwd.touch(mode=0o600)
    for name in (user, "simulator"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, f"{name}-pw"], check=True)
    broker = Mosquitto(
        tmp_path / "broker", password_file=passwd, acl_file=ROOT / "deploy/mosquitto/acl"
    )
    broker.start()
    got: list[str] = []
    arrived = threading.Event()
    granted: list[int] = []

    def on_subscribe(_c: Any, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        granted.extend(code.value for code in codes)

    def on_message(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        got.append(message.topic)
        arrived.set()

    bridge = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bridge-probe", protocol=mqtt.MQTTv5
    )
    devices = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="simulator-probe")
    try:
        bridge.username_pw_set(user, f"{user}-pw")
        bridge.on_subscribe = on_subscribe
        bridge.on_message = on_message
        bridge.connect("127.0.0.1", broker.port)
        bridge.loop_start()
        bridge.subscribe([(f, SubscribeOptions(qos=1)) for f in shared_filters(group)])
        deadline = time.monotonic() + 10
        while not granted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert granted == [1, 1], f"the broker refused the shared subscription: {granted}"
        devices.username_pw_set("simulator", "simulator-pw")
        devices.connect("127.0.0.1", broker.port)
        devices.loop_start()
        devices.publish("ew/v1/acme/site-01/GD-00/up", b'{"ts": 1, "v": 1}', qos=1)
        devices.publish("ew/v1/acme/site-01/GD-00/status", b'{"ts": 1, "online": true}', qos=1)
        assert arrived.wait(10), "nothing reached the bridge's shared subscription"
        deadline = time.monotonic() + 10
        while len(got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(got) == [
            "ew/v1/acme/site-01/GD-00/status",
            "ew/v1/acme/site-01/GD-00/up",
        ]
    finally:
        for client in (bridge, devices):
            client.disconnect()
            client.loop_stop()
        broker.stop()
