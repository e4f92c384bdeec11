"""The e-mail channel against a real SMTP server (aiosmtpd on a loopback port)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from alerting.channels.smtp_email import Security, SmtpChannel
from alerting.notifications import Delivery
from tests.alerting.conftest import NotificationFactory
from tests.services.mosquitto import free_port

if TYPE_CHECKING:  # imported by the fixture only when aiosmtpd is installed
    from tests.services.smtp_server import SmtpServer

pytestmark = pytest.mark.integration

SENDER = "安县应急预警 <alarm@example.cn>"


def channel_for(
    server: SmtpServer,
    *,
    security: Security = "none",
    username: str | None = None,
    password: str | None = None,
) -> SmtpChannel:
    return SmtpChannel(
        "email",
        host=server.host,
        port=server.port,
        sender=SENDER,
        security=security,
        username=username,
        password=password,
        timeout_s=5.0,
    )


def test_chinese_subject_and_body_arrive_intact(
    smtp_server: SmtpServer, make_notification: NotificationFactory
) -> None:
    note = make_notification(channel="email", address="zhoulijun@huaxin-chem.example.cn")

    outcome = channel_for(smtp_server).send(note)

    assert outcome.delivery is Delivery.SENT, outcome.detail
    [received] = smtp_server.received
    assert received.mail_from == "alarm@example.cn"
    assert received.rcpt_tos == ("zhoulijun@huaxin-chem.example.cn",)
    message = received.message()
    assert message["Subject"] == note.subject
    assert message.get_content().rstrip("\n") == note.body
    assert message["From"].addresses[0].display_name == "安县应急预警"
    assert message["To"].addresses[0].display_name == "周立军"
    assert message["To"].addresses[0].addr_spec == "zhoulijun@huaxin-chem.example.cn"
    assert message["Date"] is not None
    assert message["Message-ID"].endswith("@example.cn>")
    assert message["X-Earlywarn-Key"] == note.key
    assert message["Importance"] == "high"  # red


def test_login_with_the_right_password_sends(
    smtp_server_with_login: SmtpServer, make_notification: NotificationFactory
) -> None:
    channel = channel_for(smtp_server_with_login, username="alarm", password="right-password")

    outcome = channel.send(make_notification(address="duty@example.cn"))

    assert outcome.delivery is Delivery.SENT, outcome.detail
    assert len(smtp_server_with_login.received) == 1


def test_wrong_password_is_permanent_and_says_the_credentials_are_wrong(
    smtp_server_with_login: SmtpServer, make_notification: NotificationFactory
) -> None:
    channel = channel_for(smtp_server_with_login, username="alarm", password="wrong")

    outcome = channel.send(make_notification(address="duty@example.cn"))

    assert outcome.delivery is Delivery.PERMANENT
    assert "credentials" in outcome.detail
    assert "535" in outcome.detail
    assert smtp_server_with_login.received == []


def test_refused_connection_is_retry(make_notification: NotificationFactory) -> None:
    channel = SmtpChannel(
        "email", host="127.0.0.1", port=free_port(), security="none", sender=SENDER
    )

    outcome = channel.send(make_notification(address="duty@example.cn"))

    assert outcome.delivery is Delivery.RETRY
    assert "refused" in outcome.detail.lower()


@pytest.mark.parametrize(
    ("stage", "reply", "expected"),
    [
        ("rcpt", "550 5.1.1 <duty@example.cn>: mailbox unavailable", Delivery.PERMANENT),
        ("rcpt", "451 4.7.1 greylisted, try again later", Delivery.RETRY),
        ("data", "451 4.3.0 temporary local problem", Delivery.RETRY),
        ("data", "554 5.7.1 message rejected as spam", Delivery.PERMANENT),
    ],
)
def test_smtp_replies_are_classified_by_code(
    smtp_server: SmtpServer,
    make_notification: NotificationFactory,
    stage: str,
    reply: str,
    expected: Delivery,
) -> None:
    if stage == "rcpt":
        smtp_server.refuse_recipients(reply)
    else:
        smtp_server.refuse_data(reply)

    outcome = channel_for(smtp_server).send(make_notification(address="duty@example.cn"))

    assert outcome.delivery is expected
    assert reply.split(maxsplit=1)[0] in outcome.detail
    assert smtp_server.received == []


@pytest.mark.parametrize("address", ["not-an-address", "a@@example.cn", "x@y.cn\nBcc: z@w.cn"])
def test_an_address_that_is_not_one_is_permanent_without_connecting(
    smtp_server: SmtpServer, make_notification: NotificationFactory, address: str
) -> None:
    outcome = channel_for(smtp_server).send(make_notification(address=address))

    assert outcome.delivery is Delivery.PERMANENT
    assert "not a usable e-mail address" in outcome.detail
    assert smtp_server.received == []


def test_starttls_on_a_server_without_it_is_permanent(
    smtp_server: SmtpServer, make_notification: NotificationFactory
) -> None:
    outcome = channel_for(smtp_server, security="starttls").send(
        make_notification(address="duty@example.cn")
    )

    assert outcome.delivery is Delivery.PERMANENT
    assert "security" in outcome.detail


def test_a_sender_that_is_not_an_address_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        SmtpChannel("email", host="smtp.example.cn", sender="预警中心")
