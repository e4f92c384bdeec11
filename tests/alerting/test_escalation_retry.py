"""Retry and fallback: providers that fail, and a person nobody can reach.

A retryable failure (5xx, 429) is retried on the same channel with back-off, honouring
``Retry-After``; a permanent one (400, a channel that is not configured) or too many retries
moves at once to the person's next channel (e-mail through a real aiosmtpd server, DingTalk
through Apprise). Every attempt is recorded with its outcome. When every channel of a person
has failed, the escalator says so loudly in the log and in the store.

People (see ``registry_with_tank_farm``): 高明 has voice, SMS, e-mail and DingTalk; 林芳 only a
phone number. An orange alarm reaches 高明 first with an SMS and a call, in that order.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from alerting.channels.console import ConsoleChannel
from alerting.channels.smtp_email import SmtpChannel
from alerting.escalation import Retry
from alerting.notifications import Delivery
from alerting.store_rows import EscalationStep, StepStatus
from earlywarn.registry import Registry, load_registry
from tests.alerting.night import MIN, NIGHT, TANKS, Night, open_night, registry_with_tank_farm
from tests.alerting.night import texts as texts_to
from tests.services.http_recorder import HttpRecorder, Reply
from tests.services.smtp_server import SmtpServer

SEC = 1_000
DETECTOR = f"{TANKS}/GD-01"


@pytest.fixture
def tank_farm(tmp_path: Path) -> Registry:
    return load_registry(registry_with_tank_farm(tmp_path))


def _email(server: SmtpServer) -> SmtpChannel:
    return SmtpChannel(
        host=server.host,
        port=server.port,
        security="none",
        sender="安县应急预警 <alarm@yjj.anxian.example.cn>",
        timeout_s=5,
    )


def _steps(night: Night, person: str, channel: str) -> list[EscalationStep]:
    alarm = night.store.list_alarms()[0].alarm_id
    return [s for s in night.store.steps_of(alarm) if s.target == person and s.channel == channel]


def _attempts(night: Night) -> list[tuple[int, str, str, Delivery, int]]:
    """(seconds after 02:00, person, channel, outcome, attempt) of every attempt, in order."""
    history = night.store.history(night.store.list_alarms()[0].alarm_id)
    assert history is not None
    return [
        ((a.ts_ms - NIGHT) // SEC, a.person, a.channel, a.outcome, a.attempt)
        for a in history.attempts
    ]


def test_sms_retried_with_back_off_honouring_retry_after(
    tank_farm: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(tank_farm, http_recorder, tmp_path / "alerts.db")
    night.reading(DETECTOR, 30.0)  # orange
    http_recorder.script(Reply(status=500, body="gateway down"), Reply(status=200))
    assert night.at(0) == 2  # SMS (500) and the call (200)
    (sms,) = _steps(night, "xh-ops-gao", "sms")
    assert (sms.status, sms.due_ms, sms.claims) == (StepStatus.PENDING, NIGHT + 30 * SEC, 1)

    # The first back-off is 30 s; the gateway then asks for two minutes, more than the 60 s
    # back-off of the second retry: its Retry-After wins.
    http_recorder.script(Reply(status=429, headers={"Retry-After": "120"}))
    assert night.at(29 * SEC) == 0
    assert night.at(30 * SEC) == 1
    (sms,) = _steps(night, "xh-ops-gao", "sms")
    assert (sms.status, sms.due_ms, sms.claims) == (StepStatus.PENDING, NIGHT + 150 * SEC, 2)
    for t in (60, 90, 120, 149):
        assert night.at(t * SEC) == 0
    assert night.at(150 * SEC) == 1  # the default reply: 200
    (sms,) = _steps(night, "xh-ops-gao", "sms")
    assert sms.status is StepStatus.SENT

    gao = [a for a in _attempts(night) if a[2] == "sms"]
    assert gao == [
        (0, "xh-ops-gao", "sms", Delivery.RETRY, 1),
        (30, "xh-ops-gao", "sms", Delivery.RETRY, 2),
        (150, "xh-ops-gao", "sms", Delivery.SENT, 3),
    ]
    # The same text each time; no other channel was tried for an SMS that got through.
    sms_texts = texts_to(http_recorder, "/sms")
    assert len(sms_texts) == 3 and len(set(sms_texts)) == 1
    assert texts_to(http_recorder, "/im") == []
    history = night.store.history(night.store.list_alarms()[0].alarm_id)
    assert history is not None
    details = [a.detail for a in history.attempts if a.channel == "sms"]
    assert "500" in details[0] and "429" in details[1]


def test_after_the_last_retry_the_next_channel_is_tried_at_once(
    tank_farm: Registry, http_recorder: HttpRecorder, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    night = open_night(
        tank_farm,
        http_recorder,
        tmp_path / "alerts.db",
        retry=Retry(first_ms=30_000, max_ms=300_000, attempts=3),
        extra_channels={"email": _email(smtp_server)},
    )
    night.reading(DETECTOR, 30.0)
    http_recorder.script(Reply(status=503), Reply(status=200))
    assert night.at(0) == 2
    http_recorder.script(Reply(status=503))
    assert night.at(30 * SEC) == 1
    http_recorder.script(Reply(status=503))
    assert night.at(89 * SEC) == 0
    # Third failure at 02:01:30 (back-off 30 s, then 60 s): 高明's next channel, e-mail, at once.
    assert night.at(90 * SEC) == 2
    assert [(t, c, o) for t, _, c, o, _ in _attempts(night)] == [
        (0, "sms", Delivery.RETRY),
        (0, "voice", Delivery.SENT),
        (30, "sms", Delivery.RETRY),
        (90, "sms", Delivery.RETRY),
        (90, "email", Delivery.SENT),
    ]
    (mail,) = smtp_server.received
    message = mail.message()
    assert mail.rcpt_tos == ("gaoming@xinhe.example.cn",)
    assert str(message["Subject"]).startswith("【橙色预警】储罐区 储罐区可燃气体探测器1 30.0")
    (sms,) = _steps(night, "xh-ops-gao", "sms")
    assert sms.status is StepStatus.FAILED


def test_permanent_failure_on_voice_falls_back_through_an_unconfigured_channel(
    tank_farm: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    """400 on the call → 高明's next channel at once: e-mail, which this county has not set
    up (no ``email`` in channels.yaml): permanent too → the next one, DingTalk."""
    night = open_night(tank_farm, http_recorder, tmp_path / "alerts.db")
    night.reading(DETECTOR, 30.0)
    http_recorder.script(Reply(status=200), Reply(status=400, body='{"error": "bad callee"}'))
    assert night.at(0) == 4
    assert [(c, o) for _, _, c, o, _ in _attempts(night)] == [
        ("sms", Delivery.SENT),
        ("voice", Delivery.PERMANENT),
        ("email", Delivery.PERMANENT),
        ("dingtalk", Delivery.SENT),
    ]
    history = night.store.history(night.store.list_alarms()[0].alarm_id)
    assert history is not None
    assert "not configured" in history.attempts[2].detail
    # The fallback carries the alarm, not a reminder: it is this person's first notice by IM.
    (im,) = texts_to(http_recorder, "/im")
    assert im.startswith("【橙色预警】储罐区 储罐区可燃气体探测器1")
    assert [r.path for r in http_recorder.requests] == ["/sms", "/voice", "/im"]


def test_a_person_nobody_can_reach_is_logged_loudly_and_recorded(
    tank_farm: Registry,
    http_recorder: HttpRecorder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """林芳 has only a phone number. Both the SMS and the call to it are refused for good
    (number cancelled): there is nothing left to try. One ERROR says she was not reached,
    and the store says so in the step that gave up."""
    night = open_night(tank_farm, http_recorder, tmp_path / "alerts.db")
    night.reading(DETECTOR, 62.0)  # red: everyone at once, 高明 first, then 林芳
    http_recorder.script(
        Reply(status=200),
        Reply(status=200),
        Reply(status=400, body='{"error": "number cancelled"}'),
        Reply(status=400, body='{"error": "number cancelled"}'),
    )
    with caplog.at_level(logging.WARNING, logger="alerting.escalation"):
        assert night.at(0) == 10
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "xh-tech-lin" in errors[0].getMessage() and "林芳" in errors[0].getMessage()
    sms, voice = _steps(night, "xh-tech-lin", "sms")[0], _steps(night, "xh-tech-lin", "voice")[0]
    assert sms.status is voice.status is StepStatus.FAILED
    assert "unreachable" not in sms.detail  # the call was still to come
    assert "unreachable" in voice.detail and "sms" in voice.detail and "voice" in voice.detail
    finished = [
        e
        for e in night.store.audit(alarm_id=voice.alarm_id)
        if e.kind == "step_finished" and e.detail["step"] == voice.id
    ]
    assert "unreachable" in finished[-1].detail["detail"]
    # Everyone else was reached; the calls go on (林芳's too: her number may come back).
    assert night.at(3 * MIN) == 5
    assert night.store.list_alarms()[0].state.value == "active-unacked"
    assert len(texts_to(http_recorder, "/voice")) == 10


def test_two_channels_failing_for_good_fall_back_to_one_message(
    tank_farm: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    """高明's SMS and call are both refused: each would fall back to his next channel, but he
    gets one e-mail-or-IM message for them, not two. (No e-mail here: DingTalk.)"""
    night = open_night(tank_farm, http_recorder, tmp_path / "alerts.db")
    night.reading(DETECTOR, 30.0)
    http_recorder.script(Reply(status=400), Reply(status=400))
    assert night.at(0) == 4  # SMS, call, e-mail (not configured), DingTalk
    assert [(c, o) for _, _, c, o, _ in _attempts(night)] == [
        ("sms", Delivery.PERMANENT),
        ("voice", Delivery.PERMANENT),
        ("email", Delivery.PERMANENT),
        ("dingtalk", Delivery.SENT),
    ]
    assert len(texts_to(http_recorder, "/im")) == 1


def test_with_the_console_as_last_resort_the_unreached_person_is_still_an_error(
    tank_farm: Registry,
    http_recorder: HttpRecorder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``run`` gives everyone the console as a last resort: 林芳's alarm is written once on
    the duty room's screen when her SMS and call both fail, and she still counts as not
    reached (the console line reaches the operator, not her)."""
    screen = io.StringIO()
    night = open_night(
        tank_farm,
        http_recorder,
        tmp_path / "alerts.db",
        extra_channels={"console": ConsoleChannel(out=screen)},
    )
    night.reading(DETECTOR, 62.0)
    http_recorder.script(Reply(status=200), Reply(status=200), Reply(status=400), Reply(status=400))
    with caplog.at_level(logging.WARNING, logger="alerting.escalation"):
        assert night.at(0) == 11  # ten requests and one console line
    lines = screen.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("notify console → 林芳")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "xh-tech-lin" in errors[0].getMessage()
    voice = _steps(night, "xh-tech-lin", "voice")[0]
    assert "unreachable" in voice.detail


def test_the_next_channel_is_the_persons_next_contact_in_their_order(
    tank_farm: Registry, http_recorder: HttpRecorder, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """钱志远 lists DingTalk before e-mail: when his call fails for good, DingTalk is next,
    although e-mail is configured too."""
    night = open_night(
        tank_farm,
        http_recorder,
        tmp_path / "alerts.db",
        extra_channels={"email": _email(smtp_server)},
    )
    night.reading(DETECTOR, 62.0)  # red: 高明, 林芳, then 钱志远's SMS and call (the 6th)
    http_recorder.script(*[Reply(status=200)] * 5, Reply(status=400))
    assert night.at(0) == 11
    qian = [(c, o) for _, p, c, o, _ in _attempts(night) if p == "xh-main-qian"]
    assert qian == [
        ("sms", Delivery.SENT),
        ("voice", Delivery.PERMANENT),
        ("dingtalk", Delivery.SENT),
    ]
    assert smtp_server.received == []
