"""Shared set-up of the escalation tests: the example registry, real channels to a local
HTTP recorder (SMS, voice, DingTalk through Apprise's JSON webhook), a store on disk, an
injected clock starting at 02:00 on a Tuesday night in 安县, and readings through the real
pipeline so that events are the ones the rules make."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alerting.channels.apprise_im import AppriseChannel
from alerting.channels.base import Channel
from alerting.channels.http_provider import HttpProviderChannel
from alerting.escalation import Retry
from alerting.links import LinkSigner
from alerting.service import AlertService
from alerting.store import AlertStore
from earlywarn.alert_wiring import build_alert_service
from earlywarn.clock import ManualClock
from earlywarn.model import Reading
from earlywarn.pipeline import Pipeline
from earlywarn.registry import Registry
from tests.services.http_recorder import HttpRecorder, Recorded

NIGHT = 1_795_456_800_000
"""2026-11-24 02:00 Asia/Shanghai (a Tuesday)."""
MIN = 60_000
GAS = "huaxin-chem/tank-farm-1/GD-01"
SECRET = b"night-scenario-link-secret-32-bytes!"
EXAMPLE_REGISTRY = Path(__file__).resolve().parents[2] / "examples" / "registry"
BODY = '{"to": "{address}", "text": "{subject}", "body": "{body}", "key": "{key}"}'


def channels_to(recorder: HttpRecorder) -> dict[str, Channel]:
    """SMS and voice through the configurable HTTP provider, DingTalk through Apprise."""
    return {
        "sms": HttpProviderChannel("sms", url=recorder.url("/sms"), body=BODY, timeout_s=2),
        "voice": HttpProviderChannel("voice", url=recorder.url("/voice"), body=BODY, timeout_s=2),
        "dingtalk": AppriseChannel("dingtalk", recorder.url("/im").replace("http", "json", 1)),
    }


@dataclass
class Night:
    """One control room for a test: clock, store, service and pipeline."""

    registry: Registry
    recorder: HttpRecorder
    store_path: Path
    clock: ManualClock
    signer: LinkSigner
    store: AlertStore
    service: AlertService
    pipeline: Pipeline

    def reading(self, sensor: str, value: float) -> None:
        """A reading arriving now, through the rules, into the alert service."""
        self.pipeline.evaluate(Reading(sensor, self.clock.now_ms(), value))

    def at(self, ms_after_night: int) -> int:
        """Move the clock and send what is due; returns how many sends were tried."""
        self.clock.set(NIGHT + ms_after_night)
        return self.service.pump()


def open_night(
    registry: Registry,
    recorder: HttpRecorder,
    store_path: Path,
    start_ms: int = NIGHT,
    retry: Retry | None = None,
    extra_channels: Mapping[str, Channel] | None = None,
) -> Night:
    """A control room at 02:00; ``extra_channels`` are added to (or replace) the recorder's."""
    clock = ManualClock(start_ms)
    signer = LinkSigner(SECRET, "http://127.0.0.1:1")
    store = AlertStore(store_path)
    channels = {**channels_to(recorder), **(extra_channels or {})}
    service = build_alert_service(registry, store, clock, channels, signer=signer, retry=retry)
    service.start()
    pipeline = Pipeline(registry, clock, [service])
    return Night(registry, recorder, store_path, clock, signer, store, service, pipeline)


def sent(recorder: HttpRecorder, path: str) -> list[tuple[str, str]]:
    """(address, text) of every request to ``path`` (``/sms``, ``/voice``)."""
    return [(r.json()["to"], r.json()["text"]) for r in recorder.requests if r.path == path]


def link_in(request: Recorded) -> str:
    """The acknowledgement link in a recorded SMS."""
    found = re.search(r"https?://\S+/a/\S+", request.json()["body"])
    assert found, request.json()["body"]
    return found.group(0)


TANKS = "xinhe-chem/tanks"
"""The site of :func:`registry_with_tank_farm`: fifty gas detectors ``GD-01`` … ``GD-50``."""
_PERSON = """    - id: {id}
      name: {name}
      role: {role}
      phone: "{phone}"
      contacts: {contacts}
"""
_DETECTOR = """        - id: GD-{n:02d}
          name: 储罐区可燃气体探测器{n}
          kind: combustible_gas
          unit: "%LEL"
          range: [0, 100]
          interval: 5s
          rules:
            - preset: combustible_gas
"""


def registry_with_tank_farm(dest: Path) -> Path:
    """The example registry plus 安县鑫禾化工 (金山镇): one site, ``tanks``, with fifty gas
    detectors (enough for a flood), and a chain whose people reach differently:

    - 高明 (xh-ops-gao), 操作负责人: voice, SMS, e-mail and DingTalk, in that order;
    - 林芳 (xh-tech-lin), 技术负责人: a phone number only (SMS and calls to it);
    - 钱志远 (xh-main-qian), 主要负责人: DingTalk, e-mail, SMS and calls, in that order.

    Returns the registry directory (under ``dest``)."""
    root = dest / "registry"
    shutil.copytree(EXAMPLE_REGISTRY, root)
    people = [
        ("xh-ops-gao", "高明", "操作负责人", "+8613800050001",
         '{voice: "+8613800050001", sms: "+8613800050001", email: gaoming@xinhe.example.cn, '
         "dingtalk: xh-gaoming}"),
        ("xh-tech-lin", "林芳", "技术负责人", "+8613800050002", "{}"),
        ("xh-main-qian", "钱志远", "主要负责人", "+8613800050003",
         '{dingtalk: xh-qianzhiyuan, email: qianzy@xinhe.example.cn, sms: "+8613800050003", '
         'voice: "+8613800050003"}'),
    ]  # fmt: skip
    text = (
        "enterprise:\n"
        "  id: xinhe-chem\n"
        "  name: 安县鑫禾化工有限公司\n"
        "  kind: hazardous_chemicals\n"
        "  region: jinshan\n"
        "  people:\n"
        + "".join(
            _PERSON.format(id=i, name=n, role=r, phone=p, contacts=c) for i, n, r, p, c in people
        )
        + "  chain:\n"
        "    blue: [xh-ops-gao]\n"
        "    yellow: [xh-ops-gao, xh-tech-lin]\n"
        "    orange: [xh-ops-gao, xh-tech-lin, xh-main-qian]\n"
        "    red: [xh-ops-gao, xh-tech-lin, xh-main-qian, duty:township, duty:county]\n"
        "  sites:\n"
        "    - id: tanks\n"
        "      name: 储罐区\n"
        "      sensors:\n" + "".join(_DETECTOR.format(n=n) for n in range(1, 51))
    )
    (root / "xinhe-chem.yaml").write_text(text, encoding="utf-8")
    return root


def texts(recorder: HttpRecorder, path: str) -> list[str]:
    """The text of every request to ``path``: the SMS or call text, or an IM's title."""
    found = []
    for r in recorder.requests:
        if r.path == path:
            doc = r.json()
            found.append(str(doc["text"] if "text" in doc else doc["title"]))
    return found
