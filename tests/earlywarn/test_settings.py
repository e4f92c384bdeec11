"""Settings come from defaults, then the environment, then command-line flags."""

from __future__ import annotations

import pytest

from earlywarn.cli import build_parser
from earlywarn.settings import RunSettings


def test_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EARLYWARN_MQTT", "mqtt://broker.example:1884")
    monkeypatch.setenv("EARLYWARN_CLIENT_ID", "ew-env")
    from_env = RunSettings.from_env()
    assert (from_env.mqtt_url, from_env.client_id) == ("mqtt://broker.example:1884", "ew-env")
    flags = RunSettings.from_env(mqtt_url="mqtt://127.0.0.1:1999", queue_capacity=7)
    assert flags.mqtt_url == "mqtt://127.0.0.1:1999"
    assert flags.client_id == "ew-env"
    assert flags.queue_capacity == 7


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EARLYWARN_MQTT", raising=False)
    monkeypatch.delenv("EARLYWARN_CLIENT_ID", raising=False)
    settings = RunSettings.from_env()
    assert settings.mqtt_url == "mqtt://127.0.0.1:1883"
    assert settings.client_id.startswith("earlywarn-")


@pytest.mark.parametrize("bad", ["0", "-5", "many"])
def test_queue_must_be_a_positive_whole_number(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--registry", "x", "--queue", bad])
    assert "must be a whole number of at least 1" in capsys.readouterr().err
