"""channels.yaml: a valid file builds the channels; every mistake is reported at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.channels.apprise_im import AppriseChannel
from alerting.channels.config import HttpSettings, SmtpSettings
from alerting.channels.console import ConsoleChannel
from alerting.channels.http_provider import HttpProviderChannel
from alerting.channels.smtp_email import SmtpChannel
from alerting.notifications import Delivery
from earlywarn.channels_file import (
    CHANNELS_FILE,
    ChannelsError,
    load_channels,
    read_channel_settings,
)
from tests.alerting.conftest import NotificationFactory
from tests.services.http_recorder import HttpRecorder

VALID = """\
channels:
  email:
    type: smtp
    host: smtp.example.cn
    port: 465
    security: tls
    username: alarm@example.cn
    password: ${EARLYWARN_SMTP_PASSWORD}
    from: "安县应急预警 <alarm@example.cn>"
  sms:
    type: http
    url: https://sms.example.cn/api/send
    method: POST
    content: json
    headers: {X-Api-Key: "${EARLYWARN_SMS_KEY}"}
    body: '{"phone": "{address}", "text": "{subject}"}'
    sign: {secret: "${EARLYWARN_SMS_SECRET}", header: X-Signature, timestamp_header: X-Timestamp}
    timeout: 10s
    success: {field: code, equals: "OK", retryable: [isv.BUSINESS_LIMIT_CONTROL]}
  voice:
    type: http
    url: https://voice.example.cn/call
    content: form
    body: "callee={address}&tts={subject}"
    idempotency_header: false
  dingtalk: {type: apprise, url: "dingtalk://${EARLYWARN_DINGTALK_TOKEN}/{address}"}
  webhook: {type: apprise, url: "json://hooks.example.cn/earlywarn", timeout: 5s}
"""

ENV = {
    "EARLYWARN_SMTP_PASSWORD": "smtp-pw",
    "EARLYWARN_SMS_KEY": "key-1",
    "EARLYWARN_SMS_SECRET": "secret-1",
    "EARLYWARN_DINGTALK_TOKEN": "abcdef0123456789",
}


def write(directory: Path, text: str) -> Path:
    path = directory / CHANNELS_FILE
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(directory: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ChannelsError) as caught:
        load_channels(directory, ENV if environ is None else environ)
    return [str(p) for p in caught.value.problems]


def test_a_valid_file_builds_every_channel(tmp_path: Path) -> None:
    write(tmp_path, VALID)

    channels = load_channels(tmp_path, ENV)

    assert sorted(channels) == ["console", "dingtalk", "email", "sms", "voice", "webhook"]
    assert isinstance(channels["email"], SmtpChannel)
    assert isinstance(channels["sms"], HttpProviderChannel)
    assert isinstance(channels["voice"], HttpProviderChannel)
    assert isinstance(channels["dingtalk"], AppriseChannel)
    assert isinstance(channels["console"], ConsoleChannel)


def test_the_settings_read_are_the_ones_written(tmp_path: Path) -> None:
    settings = {s.name: s for s in read_channel_settings(write(tmp_path, VALID))}

    email = settings["email"]
    assert isinstance(email, SmtpSettings)
    assert (email.port, email.security, email.sender) == (
        465,
        "tls",
        "安县应急预警 <alarm@example.cn>",
    )
    assert email.password == "${EARLYWARN_SMTP_PASSWORD}"  # resolved only when built
    sms = settings["sms"]
    assert isinstance(sms, HttpSettings)
    assert sms.timeout_s == 10.0
    assert sms.success is not None
    assert sms.success.retryable == ("isv.BUSINESS_LIMIT_CONTROL",)
    voice = settings["voice"]
    assert isinstance(voice, HttpSettings)
    assert voice.idempotency_header is None


def test_without_a_file_only_the_console_exists(tmp_path: Path) -> None:
    assert list(load_channels(tmp_path, {})) == ["console"]


def test_a_missing_variable_is_reported_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, VALID)
    env = {k: v for k, v in ENV.items() if k != "EARLYWARN_SMS_SECRET"}

    assert problems_of(tmp_path, env) == [
        f"{tmp_path / CHANNELS_FILE}:17: channel 'sms': sign.secret: "
        "the environment variable EARLYWARN_SMS_SECRET is not set"
    ]


def test_a_body_may_be_written_as_yaml_for_json(
    tmp_path: Path, http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    write(
        tmp_path,
        f"""\
channels:
  sms:
    type: http
    url: {http_recorder.url("/send")}
    body:
      phone: "{{address}}"
      text: "{{subject}}"
      drill: "{{drill}}"
""",
    )

    channel = load_channels(tmp_path, {})["sms"]

    assert channel.send(make_notification()).delivery is Delivery.SENT
    assert http_recorder.requests[0].json() == {
        "phone": "+8613800020003",
        "text": make_notification().subject,
        "drill": False,
    }


# Each case: the lines of one channel (after "channels:" on line 1), the line expected in the
# problem, and a fragment of its message.
MISTAKES = [
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", "    retries: 3"],
        5,
        "unknown field 'retries'",
        id="unknown-key",
    ),
    pytest.param(["  sms:", "    type: gateway"], 3, "unknown type 'gateway'", id="unknown-type"),
    pytest.param(["  sms:", "    url: https://x.cn"], 3, "no type", id="no-type"),
    pytest.param(
        ["  sms:", "    type: http", "    url: ftp://sms.example.cn"],
        4,
        "must start with http:// or https://",
        id="bad-http-url",
    ),
    pytest.param(
        ["  im:", "    type: apprise", "    url: 'dingtlk://t/{address}'"],
        4,
        "no Apprise plugin handles dingtlk://",
        id="bad-apprise-url",
    ),
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", """    body: '{"t": "{adress}"}'"""],
        5,
        "unknown placeholder {adress}",
        id="bad-placeholder",
    ),
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", "    timeout: 10 seconds"],
        5,
        "unknown time unit",
        id="bad-duration",
    ),
    pytest.param(
        ["  mail:", "    type: smtp", "    host: smtp.x.cn", "    from: a@x.cn", "    port: '25'"],
        6,
        "'port' must be a whole number",
        id="quoted-port",
    ),
    pytest.param(
        [
            "  mail:",
            "    type: smtp",
            "    host: smtp.x.cn",
            "    from: a@x.cn",
            "    security: ssl",
        ],
        6,
        "unknown security 'ssl'",
        id="bad-security",
    ),
    pytest.param(
        ["  mail:", "    type: smtp", "    host: smtp.x.cn", "    from: 预警中心"],
        5,
        "is not an e-mail address",
        id="bad-sender",
    ),
    pytest.param(
        ["  mail:", "    type: smtp", "    host: smtp.x.cn"],
        3,
        "missing the required field 'from'",
        id="missing-field",
    ),
    pytest.param(
        ["  mail:", "    type: smtp", "    host: h", "    from: a@x.cn", "    password: 123456"],
        6,
        "must be quoted text",
        id="unquoted-number-password",
    ),
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", "    sign:", "      algorithm: md5"],
        6,
        "missing the required field 'sign.secret'",
        id="sign-without-secret",
    ),
    pytest.param(
        [
            "  sms:",
            "    type: http",
            "    url: https://x.cn",
            "    sign:",
            "      secret: s",
            "      algorithm: md5",
        ],
        7,
        "sign algorithm 'md5'",
        id="bad-algorithm",
    ),
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", "    success: {field: code}"],
        5,
        "success needs 'equals'",
        id="success-without-equals",
    ),
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", "    headers: {Bad Name: x}"],
        5,
        "not a valid HTTP header name",
        id="bad-header",
    ),
    pytest.param(
        ["  sms:", "    type: http", "    url: https://x.cn", "    content: xml"],
        5,
        "unknown content 'xml'",
        id="bad-content",
    ),
    pytest.param(["  console:", "    type: http"], 2, "kept for the console", id="console-name"),
    pytest.param(["  sms: [http]"], 2, "must be a mapping", id="not-a-mapping"),
]


@pytest.mark.parametrize(("lines", "line", "fragment"), MISTAKES)
def test_each_mistake_is_reported_at_its_line(
    tmp_path: Path, lines: list[str], line: int, fragment: str
) -> None:
    path = write(tmp_path, "\n".join(["channels:", *lines]) + "\n")

    problems = problems_of(tmp_path)

    assert any(p.startswith(f"{path}:{line}: ") and fragment in p for p in problems), problems


def test_all_problems_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
channels:
  sms:
    type: http
    url: ftp://x.cn
    timeout: soon
  mail: {type: smtp, host: h, from: a@x.cn, colour: red}
  im: {type: apprise, url: "json://h.cn/{who}"}
""",
    )

    problems = problems_of(tmp_path)

    assert [p.split(": ", 1)[0] for p in problems] == [
        f"{path}:5",
        f"{path}:4",
        f"{path}:6",
        f"{path}:7",
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "the channels file is empty"),
        ("channels:\n  sms: {type: http\n", 3, "YAML syntax error"),
        ("chanels: {}\n", 1, "unknown field 'chanels'"),
        ("- sms\n", 1, "must be a mapping"),
        ("channels:\n  a: {type: console}\n  a: {type: console}\n", 3, "duplicate key 'a'"),
        ("channels:\n  e: {type: smtp, password: ${PW}}\n", 2, "write references quoted"),
    ],
)
def test_file_level_mistakes(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)

    problems = problems_of(tmp_path)

    assert any(p.startswith(f"{path}:{line}: ") and fragment in p for p in problems), problems
