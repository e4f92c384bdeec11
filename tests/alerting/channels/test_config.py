"""Channel settings check themselves; build_channels resolves ${VAR} and makes the channels."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from alerting.channels.apprise_im import AppriseChannel
from alerting.channels.config import (
    AppriseSettings,
    ChannelConfigError,
    ConsoleSettings,
    HttpSettings,
    SmtpSettings,
    build_channels,
    env_references,
    resolve_env,
)
from alerting.channels.console import ConsoleChannel
from alerting.channels.http_provider import HttpProviderChannel, Signing
from alerting.channels.smtp_email import SmtpChannel
from alerting.notifications import Delivery
from tests.alerting.conftest import NotificationFactory
from tests.services.http_recorder import HttpRecorder

SMS_BODY = '{"phone": "{address}", "text": "{subject}"}'


def test_every_type_is_built_and_the_console_is_always_there() -> None:
    channels = build_channels(
        [
            SmtpSettings("email", host="smtp.example.cn", sender="预警 <alarm@example.cn>"),
            HttpSettings("sms", url="https://sms.example.cn/send", body=SMS_BODY),
            HttpSettings("voice", url="https://voice.example.cn/call", body=SMS_BODY),
            AppriseSettings("webhook", "json://hooks.example.cn/earlywarn"),
        ],
        environ={},
    )

    assert sorted(channels) == ["console", "email", "sms", "voice", "webhook"]
    assert isinstance(channels["email"], SmtpChannel)
    assert isinstance(channels["sms"], HttpProviderChannel)
    assert isinstance(channels["webhook"], AppriseChannel)
    assert isinstance(channels["console"], ConsoleChannel)
    assert {name: ch.name for name, ch in channels.items()} == {n: n for n in channels}


def test_no_settings_still_gives_the_console() -> None:
    assert list(build_channels([], environ={})) == ["console"]
    assert list(build_channels([ConsoleSettings()], environ={})) == ["console"]


def test_variables_are_resolved_when_built(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    settings = HttpSettings(
        "sms",
        url=http_recorder.url("/send?key=${SMS_KEY}"),
        body=SMS_BODY,
        headers={"X-Account": "${SMS_ACCOUNT}"},
        sign=Signing("${SMS_SECRET}"),
    )
    env = {"SMS_KEY": "k1", "SMS_ACCOUNT": "anxian", "SMS_SECRET": "s3cr3t"}

    channel = build_channels([settings], environ=env)["sms"]
    outcome = channel.send(make_notification())

    assert outcome.delivery is Delivery.SENT, outcome.detail
    [request] = http_recorder.requests
    assert request.query() == {"key": "k1"}
    assert request.header("X-Account") == "anxian"
    stamp = request.header("X-Timestamp") or ""
    expected = hmac.new(b"s3cr3t", stamp.encode() + b"\n" + request.body, hashlib.sha256)
    assert request.header("X-Signature") == expected.hexdigest()


def test_every_missing_variable_is_named() -> None:
    settings = [
        SmtpSettings(
            "email",
            host="smtp.example.cn",
            sender="alarm@example.cn",
            username="alarm",
            password="${SMTP_PASSWORD}",
        ),
        HttpSettings("sms", url="https://sms.example.cn/send", sign=Signing("${SMS_SECRET}")),
        AppriseSettings("dingtalk", "dingtalk://${DINGTALK_TOKEN}/{address}"),
    ]

    with pytest.raises(ChannelConfigError) as caught:
        build_channels(settings, environ={"UNRELATED": "1"})

    assert [(p.channel, p.field) for p in caught.value.problems] == [
        ("email", "password"),
        ("sms", "sign.secret"),
        ("dingtalk", "url"),
    ]
    text = str(caught.value)
    for name in ("SMTP_PASSWORD", "SMS_SECRET", "DINGTALK_TOKEN"):
        assert f"environment variable {name} is not set" in text


def test_dollar_dollar_is_a_literal_reference() -> None:
    assert env_references("a${X}b$${Y}c") == ["X"]
    assert resolve_env("a${X}b$${Y}c", {"X": "1"}.get) == ("a1b${Y}c", [])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ChannelConfigError, match="two channels have this name"):
        build_channels(
            [AppriseSettings("im", "json://a.example.cn"), AppriseSettings("im", "json://b.cn")],
            environ={},
        )


def test_settings_report_every_problem_with_its_field() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        HttpSettings(
            "sms",
            url="ftp://sms.example.cn",
            body='{"text": "{subjct}"}',
            method="DELETE",
            headers={"Bad Header": "x"},
            timeout_s=0,
        )

    assert [p.field for p in caught.value.problems] == [
        "url",
        "method",
        "body",
        "headers.Bad Header",
        "timeout",
    ]


def test_smtp_settings_check_their_fields() -> None:
    with pytest.raises(ChannelConfigError) as caught:
        SmtpSettings("email", host="", sender="nobody", port=70000, username="alarm")

    assert [p.field for p in caught.value.problems] == ["host", "port", "password", "from"]


def test_a_variable_value_that_breaks_the_json_body_is_reported() -> None:
    settings = HttpSettings("sms", url="https://sms.example.cn", body='{"key": "${KEY}"}')

    with pytest.raises(ChannelConfigError, match="not valid JSON"):
        build_channels([settings], environ={"KEY": 'has "quotes"'})


def test_header_values_must_be_ascii() -> None:
    with pytest.raises(ChannelConfigError, match="must be ASCII"):
        HttpSettings("sms", url="https://x.cn", headers={"X-Sign-Name": "安县应急"})
