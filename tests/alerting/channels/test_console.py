"""The console channel: one line per notification, always SENT."""

from __future__ import annotations

import io
import logging

import pytest

from alerting.channels.base import Channel
from alerting.channels.console import ConsoleChannel
from alerting.notifications import Delivery
from tests.alerting.conftest import NotificationFactory


def test_one_plain_line_per_notification(make_notification: NotificationFactory) -> None:
    out = io.StringIO()
    channel = ConsoleChannel(out=out)

    first = channel.send(make_notification(subject="第一行\n第二行"))
    channel.send(make_notification(level=None, drill=True, attempt=2, link=None))

    assert first.delivery is Delivery.SENT
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "RED" in lines[0]
    assert "周立军 <+8613800020003>" in lines[0]
    assert "第一行 第二行" in lines[0]
    assert "https://ew.example.cn/ack/alm-7f3a" in lines[0]
    assert "CLEARED" in lines[1]
    assert "演练" in lines[1]
    assert "attempt 2" in lines[1]


def test_it_writes_to_the_current_stdout_and_logs(
    make_notification: NotificationFactory,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="alerting.channels.console")

    ConsoleChannel().send(make_notification())

    assert "周立军" in capsys.readouterr().out
    assert any("周立军" in r.getMessage() for r in caplog.records)


def test_a_closed_stream_does_not_raise(make_notification: NotificationFactory) -> None:
    out = io.StringIO()
    out.close()

    assert ConsoleChannel(out=out).send(make_notification()).delivery is Delivery.SENT


def test_it_is_a_channel() -> None:
    assert isinstance(ConsoleChannel(), Channel)
    assert ConsoleChannel().name == "console"
