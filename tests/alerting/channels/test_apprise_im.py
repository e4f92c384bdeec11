"""The Apprise channel posting to a real local HTTP server through Apprise's ``json://`` plugin.

``json://`` is Apprise's generic webhook; going through it exercises the same path as
DingTalk or WeCom (URL template → plugin → HTTP → success or logged failure) without a vendor.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from alerting.channels.apprise_im import AppriseChannel, check_url_template
from alerting.notifications import Delivery
from earlywarn.model import Level
from tests.alerting.conftest import NotificationFactory
from tests.services.http_recorder import HttpRecorder, Reply

pytestmark = pytest.mark.integration


def webhook(recorder: HttpRecorder, path: str = "/earlywarn", **kwargs: float) -> AppriseChannel:
    return AppriseChannel("webhook", f"json://127.0.0.1:{recorder.port}{path}", **kwargs)


def test_title_and_body_arrive_as_apprise_json(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    note = make_notification(channel="webhook")

    outcome = webhook(http_recorder).send(note)

    assert outcome.delivery is Delivery.SENT, outcome.detail
    [request] = http_recorder.requests
    assert request.method == "POST"
    assert request.path == "/earlywarn"
    posted = request.json()
    assert posted["title"] == note.subject
    assert posted["message"] == note.body
    assert posted["type"] == "failure"  # red


def test_the_address_is_filled_into_the_url(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    channel = webhook(http_recorder, "/bots/{address}")

    outcome = channel.send(make_notification(address="hx-zhoulijun", level=Level.YELLOW))

    assert outcome.delivery is Delivery.SENT, outcome.detail
    assert http_recorder.requests[0].path == "/bots/hx-zhoulijun"
    assert http_recorder.requests[0].json()["type"] == "warning"


def test_a_failing_webhook_is_retry_and_says_why(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    http_recorder.script(Reply(500, "down for maintenance"))

    outcome = webhook(http_recorder).send(make_notification())

    assert outcome.delivery is Delivery.RETRY
    assert "500" in outcome.detail


def test_a_hung_webhook_is_cut_off_by_the_timeout(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    http_recorder.script(Reply(200, "{}", delay_s=2.0))

    started = time.monotonic()
    outcome = webhook(http_recorder, timeout_s=0.2).send(make_notification())

    assert outcome.delivery is Delivery.RETRY
    assert time.monotonic() - started < 1.5


def test_an_address_that_makes_the_url_unparsable_is_permanent(
    make_notification: NotificationFactory,
) -> None:
    channel = AppriseChannel("webhook", "json://{address}/hook")

    outcome = channel.send(make_notification(address="not a host"))

    assert outcome.delivery is Delivery.PERMANENT
    assert "Unparseable" in outcome.detail


def test_a_plugin_that_rejects_its_arguments_is_permanent(
    make_notification: NotificationFactory,
) -> None:
    channel = AppriseChannel("dingtalk", "dingtalk://{address}")

    outcome = channel.send(make_notification(address="!!"))

    assert outcome.delivery is Delivery.PERMANENT
    assert "DingTalk" in outcome.detail


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dingtlk://token/{address}", "no Apprise plugin handles dingtlk://"),
        ("hooks.example.cn/earlywarn", "scheme://"),
        ("json://hooks.example.cn/{adress}", "unknown placeholder"),
    ],
)
def test_bad_url_templates_are_refused_when_built(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url_template(url)


def test_the_detail_holds_only_what_this_thread_heard(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    """Another thread logging to Apprise's logger during our send does not leak into our detail."""
    http_recorder.script(Reply(500, "x", delay_s=0.2))
    noisy = threading.Thread(
        target=lambda: [logging.getLogger("apprise").error("other thread %d", i) for i in range(50)]
    )

    channel = webhook(http_recorder)
    result: list[str] = []
    sender = threading.Thread(
        target=lambda: result.append(channel.send(make_notification()).detail)
    )
    sender.start()
    time.sleep(0.05)
    noisy.start()
    sender.join()
    noisy.join()

    assert "other thread" not in result[0]
