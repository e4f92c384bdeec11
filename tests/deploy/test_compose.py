"""docker-compose.yml, checked without Docker (no engine runs on the build machines).

What can go wrong in a compose file that nobody here can start: a mounted file that does not
exist, a volume used but never declared, a secret referenced but missing from
``.env.example``, an ``earlywarn`` command line that the CLI would refuse, an environment
variable the service never reads, an ACL that forbids the service its own topics. Each is
checked here against the project's real parser, settings and topic contract.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from earlywarn.cli import build_parser
from ingest.topics import DEADLETTER

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}")


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every ``./…`` bind mount."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_the_stack_has_every_service_of_the_design(services: dict[str, dict[str, Any]]) -> None:
    assert {"mosquitto", "influxdb", "grafana", "earlywarn", "kafka", "dashboards"} <= set(services)
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert services["influxdb"]["image"].startswith("influxdb:2.7")
    assert services["grafana"]["image"].startswith("grafana/grafana:11")
    assert services["kafka"]["image"].startswith("apache/kafka:")
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", "single-node KRaft, no ZooKeeper"
    assert services["kafka"]["profiles"] == ["distributed"]


def test_no_image_floats_on_latest(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image, f"{name}: image without a tag"
        assert not image.endswith(":latest"), f"{name}: image on :latest"


def test_every_mounted_file_exists(services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for name, service in services.items():
        for source, _target in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            checked += 1
    assert checked >= 6


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if not volume.startswith((".", "/"))
    }
    assert used == declared


def test_every_variable_is_in_the_env_example() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = {line.split("=")[0] for line in example.splitlines() if "=" in line}
    used = set(VARIABLE.findall(COMPOSE.read_text(encoding="utf-8")))
    assert used, "the compose file references no .env variable"
    assert used <= defined, f"not in .env.example: {sorted(used - defined)}"
    assert ".env" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()


def test_dependencies_name_real_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_earlywarn_does_not_wait_for_influxdb_to_be_healthy(
    services: dict[str, dict[str, Any]],
) -> None:
    """Alarms must not wait for storage: the spool holds points until InfluxDB answers."""
    depends = services["earlywarn"]["depends_on"]
    assert depends["influxdb"]["condition"] == "service_started"


@pytest.mark.parametrize("service", ["earlywarn", "dashboards"])
def test_earlywarn_command_lines_parse(services: dict[str, dict[str, Any]], service: str) -> None:
    args = build_parser().parse_args(services[service]["command"])
    registry_mount = {t: s for s, t in bind_mounts(services[service])}["/registry"]
    assert (ROOT / registry_mount / "regions.yaml").is_file()
    assert str(args.registry) == "/registry"


def test_the_service_reads_every_variable_it_is_given(
    services: dict[str, dict[str, Any]],
) -> None:
    sources = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "earlywarn").glob("*.py"))
    for variable in services["earlywarn"]["environment"]:
        if variable == "TZ":
            continue
        assert f'"{variable}"' in sources, f"earlywarn never reads {variable}"


def test_influxdb_org_and_bucket_match_what_earlywarn_writes_to(
    services: dict[str, dict[str, Any]],
) -> None:
    influx = services["influxdb"]["environment"]
    ew = services["earlywarn"]["environment"]
    assert ew["EARLYWARN_INFLUX_ORG"] == influx["DOCKER_INFLUXDB_INIT_ORG"]
    assert ew["EARLYWARN_INFLUX_BUCKET"] == influx["DOCKER_INFLUXDB_INIT_BUCKET"]
    assert ew["EARLYWARN_INFLUX_URL"] == "http://influxdb:8086"
    dbrp = (ROOT / "deploy/influxdb/dbrp.sh").read_text(encoding="utf-8")
    assert "--db earlywarn" in dbrp
    assert "DOCKER_INFLUXDB_INIT_BUCKET_ID" in dbrp
    command = services["dashboards"]["command"]
    assert command[command.index("--database") + 1] == "earlywarn"


def _acl(path: Path) -> dict[str, list[tuple[str, str]]]:
    """user → [(access, topic pattern)] of a Mosquitto acl_file."""
    rules: dict[str, list[tuple[str, str]]] = {}
    user = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] == "user":
            user = words[1]
            rules[user] = []
        else:
            assert words[0] == "topic" and words[1] in {"read", "write", "readwrite"}, line
            rules[user].append((words[1], words[2]))
    return rules


def _matches(pattern: str, topic: str) -> bool:
    p, t = pattern.split("/"), topic.split("/")
    for i, part in enumerate(p):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(p) == len(t)


def _may(rules: list[tuple[str, str]], access: str, topic: str) -> bool:
    return any(a in {access, "readwrite"} and _matches(p, topic) for a, p in rules)


def test_the_broker_refuses_anonymous_clients_and_uses_the_mounted_files(
    services: dict[str, dict[str, Any]],
) -> None:
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text(encoding="utf-8").split("\n")
    settings = dict(line.split(" ", 1) for line in conf if line and not line.startswith("#"))
    assert settings["allow_anonymous"] == "false"
    # earlywarn acknowledges after the spool's fsync: the default window of 20 would throttle.
    assert int(settings["max_inflight_messages"]) >= 1000
    assert int(settings["max_queued_messages"]) >= 100_000
    assert settings["set_tcp_nodelay"] == "true"
    mounted = {t for _s, t in bind_mounts(services["mosquitto"])}
    assert settings["acl_file"] in mounted
    assert settings["password_file"].startswith("/mosquitto/auth/")
    assert "mosquitto-auth:/mosquitto/auth:ro" in services["mosquitto"]["volumes"]


def test_the_acl_lets_each_user_do_its_job_and_no_more() -> None:
    rules = _acl(ROOT / "deploy/mosquitto/acl")
    up, status = "ew/v1/huaxin/t1/T101-LT/up", "ew/v1/huaxin/t1/T101-LT/status"
    alarm = "ew/v1/huaxin/t1/T101-LT/alarm"
    service = rules["earlywarn"]
    assert _may(service, "read", up) and _may(service, "read", status)
    assert _may(service, "write", alarm) and _may(service, "write", DEADLETTER)
    assert not _may(service, "write", up), "the service never publishes readings"
    simulator = rules["simulator"]
    assert _may(simulator, "write", up) and _may(simulator, "write", status)
    assert not _may(simulator, "read", up) and not _may(simulator, "write", alarm)
    script = (ROOT / "deploy/mosquitto/make-passwd.sh").read_text(encoding="utf-8")
    assert set(rules) <= set(re.findall(r"mosquitto_passwd -b \"\$file\" (\w+)", script))


def test_the_image_copies_every_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = pyproject.split("packages = [", 1)[1].split("]", 1)[0]
    packages = {p.strip().strip('",') for p in block.split("\n")} - {""}
    tops = {p.split(".")[0] for p in packages if p != "earlywarn.examples"} | {"examples"}
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE))
    assert tops <= copied, f"Dockerfile does not copy {sorted(tops - copied)}"
    for source in copied:
        assert (ROOT / source).exists(), source


def test_grafana_finds_what_the_dashboards_job_builds(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Run the `dashboards` job's own command line into a folder laid out like the shared
    volume, then follow the provisioning files as Grafana would inside its container."""
    job = services["dashboards"]
    volume_at = {v.split(":")[0]: v.split(":")[1] for v in job["volumes"]}["grafana-provisioning"]
    command = [str(tmp_path) if arg == volume_at else arg for arg in job["command"]]
    command[command.index("--registry") + 1] = str(ROOT / "examples" / "registry")
    args = build_parser().parse_args(command)
    assert args.func(args) == 0

    grafana = services["grafana"]
    mounted = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    grafana_sees = mounted["grafana-provisioning"]

    def inside(path: str) -> Path:
        assert path.startswith(grafana_sees + "/"), path
        return tmp_path / path.removeprefix(grafana_sees + "/")

    provisioning = inside(grafana["environment"]["GF_PATHS_PROVISIONING"])
    provider = yaml.safe_load((provisioning / "dashboards/earlywarn.yaml").read_text("utf-8"))
    dashboards = inside(provider["providers"][0]["options"]["path"])
    assert len(list(dashboards.rglob("ew-*.json"))) >= 4
    for path in dashboards.rglob("*.json"):  # Grafana loads every one as a dashboard
        model = json.loads(path.read_text("utf-8"))
        assert model.get("title") and model.get("uid"), f"{path.name} is not a dashboard"
    source = yaml.safe_load((provisioning / "datasources/earlywarn.yaml").read_text("utf-8"))
    header = source["datasources"][0]["secureJsonData"]["httpHeaderValue1"]
    (variable,) = VARIABLE.findall(header)
    assert variable in grafana["environment"], "Grafana must have the token it expands"
    assert (
        source["datasources"][0]["url"]
        == services["earlywarn"]["environment"]["EARLYWARN_INFLUX_URL"]
    )
