"""Shared set-up of the escalation tests: the example registry, real channels to a local
HTTP recorder (SMS, voice, DingTalk through Apprise's JSON webhook), a store on disk, an
injected clock starting at 02:00 on a Tuesday night in 安县, and readings through the real
pipeline so that events are the ones the rules make."""

from __future__ import annotations

import re
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
) -> Night:
    clock = ManualClock(start_ms)
    signer = LinkSigner(SECRET, "http://127.0.0.1:1")
    store = AlertStore(store_path)
    service = build_alert_service(
        registry, store, clock, channels_to(recorder), signer=signer, retry=retry
    )
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
