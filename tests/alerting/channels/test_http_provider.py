"""The SMS/voice HTTP gateway channel against a real local HTTP server that records requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.channels.http_provider import (
    HttpProviderChannel,
    Signing,
    SuccessCheck,
    Template,
    classify_status,
    compile_body,
    retry_after_seconds,
    template_values,
)
from alerting.notifications import Delivery
from tests.alerting.conftest import NotificationFactory
from tests.services.http_recorder import HttpRecorder, Reply
from tests.services.mosquitto import free_port

JSON_BODY = (
    '{"phone": "{address}", "text": "{subject}", "content": "{body}", "name": "{person_name}",'
    ' "drill": "{drill}", "attempt": "{attempt}", "tag": "预警-{level}", "link": "{link}",'
    ' "meta": {"alarm": "{alarm_id}", "levels": ["{level_zh}"]}, "sign": "应急局"}'
)


def sms(recorder: HttpRecorder, **kwargs: Any) -> HttpProviderChannel:
    """A channel posting to the recorder's /api/send with the JSON template by default."""
    settings: dict[str, Any] = {"url": recorder.url("/api/send"), "body": JSON_BODY}
    settings.update(kwargs)
    return HttpProviderChannel("sms", **settings)


# --- what goes over the wire -------------------------------------------------------------


def test_json_body_with_quotes_braces_and_chinese_stays_valid_json(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    note = make_notification(subject='【红色】{液位} "超高" \\ 报警\n第二行')

    outcome = sms(http_recorder).send(note)

    assert outcome.delivery is Delivery.SENT, outcome.detail
    [request] = http_recorder.requests
    assert request.method == "POST"
    assert request.path == "/api/send"
    assert request.header("Content-Type") == "application/json; charset=utf-8"
    assert request.json() == {
        "phone": "+8613800020003",
        "text": note.subject,
        "content": note.body,
        "name": "周立军",
        "drill": False,
        "attempt": 1,
        "tag": "预警-red",
        "link": note.link,
        "meta": {"alarm": "alm-7f3a", "levels": ["红色"]},
        "sign": "应急局",
    }
    assert "周立军".encode() in request.body  # UTF-8, not \\u escapes


def test_form_body_is_url_encoded(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    channel = sms(http_recorder, content="form", body="mobile={address}&msg={subject}&sig=安县")
    note = make_notification(subject="液位 17.62 m & 温度=45 ℃ {高}")

    outcome = channel.send(note)

    assert outcome.delivery is Delivery.SENT, outcome.detail
    [request] = http_recorder.requests
    assert request.header("Content-Type") == "application/x-www-form-urlencoded; charset=utf-8"
    assert request.form() == {"mobile": "+8613800020003", "msg": note.subject, "sig": "安县"}


def test_form_body_in_gbk_for_old_gateways(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    channel = sms(http_recorder, content="form", charset="gbk", body="m={address}&c={subject}")

    assert channel.send(make_notification()).delivery is Delivery.SENT
    [request] = http_recorder.requests
    assert request.form(encoding="gbk")["c"] == make_notification().subject


def test_get_puts_the_form_in_the_query_and_quotes_url_placeholders(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    channel = sms(
        http_recorder,
        method="GET",
        content="form",
        url=http_recorder.url("/call/{address}?lang=zh"),
        body="text={subject}",
    )

    assert channel.send(make_notification()).delivery is Delivery.SENT
    [request] = http_recorder.requests
    assert request.method == "GET"
    assert request.path.startswith("/call/%2B8613800020003?")
    assert request.query() == {"lang": "zh", "text": make_notification().subject}
    assert request.body == b""


def test_signature_can_be_verified_by_the_gateway(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    secret = "s3cr3t-网关"
    signing = Signing(secret, header="X-Sign", timestamp_header="X-Ts")
    channel = sms(http_recorder, signing=signing, clock=lambda: 1_700_000_000.75)

    assert channel.send(make_notification()).delivery is Delivery.SENT
    [request] = http_recorder.requests
    assert request.header("X-Ts") == "1700000000"
    expected = hmac.new(secret.encode(), b"1700000000\n" + request.body, hashlib.sha256).hexdigest()
    assert request.header("X-Sign") == expected


def test_signature_in_base64_with_milliseconds(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    signing = Signing("k", algorithm="sha512", encoding="base64", timestamp_unit="ms")
    channel = sms(http_recorder, signing=signing, clock=lambda: 1_700_000_000.75)

    channel.send(make_notification())
    [request] = http_recorder.requests
    assert request.header("X-Timestamp") == "1700000000750"
    digest = hmac.new(b"k", b"1700000000750\n" + request.body, hashlib.sha512).digest()
    assert request.header("X-Signature") == base64.b64encode(digest).decode()


def test_idempotency_key_and_configured_headers_are_sent(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    channel = sms(http_recorder, headers={"X-Api-Key": "k-123"})
    note = make_notification()

    channel.send(note)
    [request] = http_recorder.requests
    assert request.header("Idempotency-Key") == note.key
    assert request.header("X-Api-Key") == "k-123"


def test_idempotency_header_name_is_configurable_or_off(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    sms(http_recorder, idempotency_header="X-Request-Id").send(make_notification())
    sms(http_recorder, idempotency_header=None).send(make_notification())

    first, second = http_recorder.requests
    assert first.header("X-Request-Id") == make_notification().key
    assert first.header("Idempotency-Key") is None
    assert second.header("Idempotency-Key") is None


# --- how answers are classified -----------------------------------------------------------


def test_a_scripted_sequence_of_answers_is_classified(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    http_recorder.script(
        Reply(500, "内部错误"),
        Reply(429, '{"msg": "too many"}', headers={"Retry-After": "7"}),
        Reply(400, '{"code": "isv.MOBILE_NUMBER_ILLEGAL", "message": "号码格式错误"}'),
        Reply(200, '{"code": "OK", "bizId": "9"}'),
    )
    channel = sms(http_recorder, success=SuccessCheck("code", "OK"))
    note = make_notification()

    outcomes = [channel.send(note) for _ in range(4)]

    assert [o.delivery for o in outcomes] == [
        Delivery.RETRY,
        Delivery.RETRY,
        Delivery.PERMANENT,
        Delivery.SENT,
    ]
    assert "500" in outcomes[0].detail
    assert "内部错误" in outcomes[0].detail
    assert outcomes[0].retry_after_s is None
    assert outcomes[1].retry_after_s == 7.0
    assert "400" in outcomes[2].detail
    assert "号码格式错误" in outcomes[2].detail
    assert len(http_recorder.requests) == 4


def test_retry_after_as_an_http_date(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    http_recorder.script(Reply(503, "busy", headers={"Retry-After": format_datetime(later, True)}))

    outcome = sms(http_recorder).send(make_notification())

    assert outcome.delivery is Delivery.RETRY
    assert outcome.retry_after_s is not None
    assert 100 < outcome.retry_after_s <= 120


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"code": "OK"}', Delivery.SENT),
        ('{"code": "isv.BUSINESS_LIMIT_CONTROL", "message": "触发流控"}', Delivery.RETRY),
        ('{"code": "isv.AMOUNT_NOT_ENOUGH", "message": "余额不足"}', Delivery.PERMANENT),
        ('{"message": "no code"}', Delivery.PERMANENT),
        ("<html>gateway error</html>", Delivery.PERMANENT),
    ],
)
def test_a_200_must_pass_the_success_check(
    http_recorder: HttpRecorder,
    make_notification: NotificationFactory,
    answer: str,
    expected: Delivery,
) -> None:
    http_recorder.script(Reply(200, answer))
    check = SuccessCheck("code", "OK", retryable=("isv.BUSINESS_LIMIT_CONTROL",))

    outcome = sms(http_recorder, success=check).send(make_notification())

    assert outcome.delivery is expected, outcome.detail


def test_success_field_may_be_a_dotted_path_and_a_number(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    http_recorder.script(
        Reply(200, '{"result": {"code": 0}}'), Reply(200, '{"result": {"code": 1}}')
    )
    channel = sms(http_recorder, success=SuccessCheck("result.code", "0"))

    first, second = channel.send(make_notification()), channel.send(make_notification())

    assert first.delivery is Delivery.SENT
    assert second.delivery is Delivery.PERMANENT
    assert "result.code=1" in second.detail


def test_a_redirect_is_not_followed(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    http_recorder.script(Reply(301, "", headers={"Location": "https://new.example.cn/send"}))

    outcome = sms(http_recorder).send(make_notification())

    assert outcome.delivery is Delivery.PERMANENT
    assert "https://new.example.cn/send" in outcome.detail
    assert len(http_recorder.requests) == 1


def test_a_gateway_slower_than_the_timeout_is_retry(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    http_recorder.script(Reply(200, "{}", delay_s=2.0))
    channel = sms(http_recorder, timeout_s=0.2)

    started = time.monotonic()
    outcome = channel.send(make_notification())

    assert outcome.delivery is Delivery.RETRY
    assert "0.2 s" in outcome.detail
    assert time.monotonic() - started < 1.5


def test_a_refused_connection_is_retry_and_the_detail_keeps_the_key_secret(
    make_notification: NotificationFactory,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/send?apikey=TOPSECRET"
    channel = HttpProviderChannel("sms", url=url, body=JSON_BODY)

    outcome = channel.send(make_notification())

    assert outcome.delivery is Delivery.RETRY
    assert "refused" in outcome.detail.lower()
    assert "TOPSECRET" not in outcome.detail


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Delivery.SENT),
        (204, Delivery.SENT),
        (301, Delivery.PERMANENT),
        (400, Delivery.PERMANENT),
        (401, Delivery.PERMANENT),
        (404, Delivery.PERMANENT),
        (408, Delivery.RETRY),
        (429, Delivery.RETRY),
        (500, Delivery.RETRY),
        (503, Delivery.RETRY),
    ],
)
def test_classify_status(status: int, expected: Delivery) -> None:
    assert classify_status(status) is expected


def test_retry_after_values() -> None:
    now = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)
    assert retry_after_seconds("30", now) == 30.0
    assert retry_after_seconds("Tue, 01 Jul 2025 08:01:00 GMT", now) == 60.0
    assert retry_after_seconds("Tue, 01 Jul 2025 07:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


# --- templates ------------------------------------------------------------------------------


def test_an_unknown_placeholder_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder \{adress\}"):
        Template.parse("{adress}")


def test_braces_that_are_not_placeholders_stay_literal() -> None:
    template = Template.parse("{{address}} {address} { 注意 } {")
    assert template.render({"address": "+86"}) == "{address} +86 { 注意 } {"


def test_a_json_body_template_must_be_json() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        compile_body('{"phone": {address}}', "json")


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)


@given(subject=text, body=text, name=text)
def test_any_text_gives_valid_json_with_the_exact_values(
    make_notification: NotificationFactory, subject: str, body: str, name: str
) -> None:
    note = make_notification(subject=subject, body=body, person_name=name)
    rendered = compile_body(JSON_BODY, "json").render(template_values(note), "utf-8")
    parsed = json.loads(rendered)
    assert (parsed["text"], parsed["content"], parsed["name"]) == (subject, body, name)


@given(subject=text, address=text)
def test_any_text_survives_a_form_round_trip(
    make_notification: NotificationFactory, subject: str, address: str
) -> None:
    note = make_notification(subject=subject, address=address)
    rendered = compile_body("m={address}&c={subject}", "form").render(
        template_values(note), "utf-8"
    )
    assert parse_qsl(rendered.decode("ascii"), keep_blank_values=True) == [
        ("m", address),
        ("c", subject),
    ]


def test_a_header_value_http_cannot_carry_is_permanent_not_raised(
    http_recorder: HttpRecorder, make_notification: NotificationFactory
) -> None:
    channel = sms(http_recorder, headers={"X-Sign-Name": "安县应急"})

    outcome = channel.send(make_notification())

    assert outcome.delivery is Delivery.PERMANENT
    assert http_recorder.requests == []
