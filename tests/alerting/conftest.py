"""Fixtures for the alerting tests: a real SMTP server, a recording HTTP server, notifications.

aiosmtpd is a test dependency, so it should always be there; if it is not, the SMTP tests
skip locally and fail when ``CI=true`` (CI must never pass by testing nothing).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from alerting.notifications import Notification
from earlywarn.model import Level

if TYPE_CHECKING:
    from tests.services.smtp_server import SmtpServer

NotificationFactory = Callable[..., Notification]


def _service_missing(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI but is not installed")
    pytest.skip(f"{what} is not installed")


def _smtp_server(users: dict[str, str] | None = None) -> Iterator[SmtpServer]:
    if importlib.util.find_spec("aiosmtpd") is None:
        _service_missing("aiosmtpd (pip install '.[test]')")
    from tests.services.smtp_server import SmtpServer  # noqa: PLC0415 (needs aiosmtpd)

    server = SmtpServer(users)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server on a free loopback port that accepts and records every message."""
    yield from _smtp_server()


@pytest.fixture
def smtp_server_with_login() -> Iterator[SmtpServer]:
    """An SMTP server that requires AUTH as ``alarm`` / ``right-password``."""
    yield from _smtp_server({"alarm": "right-password"})


@pytest.fixture(scope="session")
def make_notification() -> NotificationFactory:
    """Build a notification with realistic Chinese text; override any field by keyword."""

    def make(**changes: Any) -> Notification:
        fields: dict[str, Any] = {
            "key": "alm-7f3a/step-2/hx-ops-zhou/sms/1",
            "alarm_id": "alm-7f3a",
            "person": "hx-ops-zhou",
            "person_name": "周立军",
            "channel": "sms",
            "address": "+8613800020003",
            "subject": "【红色预警】罐区一 T101甲醇储罐液位 17.62 m",
            "body": (
                '罐区一 T101甲醇储罐液位 17.62 m，超过高高限 17.5 m。{请立即处置} "确认"\\ 链接：'
                "https://ew.example.cn/ack/alm-7f3a"
            ),
            "level": Level.RED,
            "link": "https://ew.example.cn/ack/alm-7f3a",
        }
        fields.update(changes)
        return Notification(**fields)

    return make
