"""The night scenario end to end: a red gas alarm at 02:00 wakes the chain by SMS and phone,
calls repeat every 3 minutes, the township duty officer acknowledges at 02:12 through the
link in the SMS (a real POST to the real acknowledgement server), and nothing more is sent;
the audit log shows every step in order.

Real pieces: the pipeline and rules, the SQLite store, the HTTP provider and Apprise channels
talking HTTP to a local recording server, the aiohttp acknowledgement server. Time is a
ManualClock: forty simulated minutes take well under a second.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from alerting.ackweb import AckServer
from alerting.store_audit import AuditKind
from earlywarn.registry import Registry
from tests.alerting.night import GAS, MIN, NIGHT, link_in, open_night, sent
from tests.services.http_recorder import HttpRecorder

RED_CHAIN = {
    "+8613800020003": "hx-ops-zhou",  # 操作负责人
    "+8613800020002": "hx-tech-li",  # 技术负责人
    "+8613800020001": "hx-main-sun",  # 主要负责人
    "+8613800010011": "js-duty-zhao",  # 金山镇 duty officer on the roster at 02:00
    "+8613800010001": "ax-duty-wang",  # 安县 duty officer on the roster at 02:00
}


def test_red_gas_alarm_at_night_until_the_township_officer_acknowledges(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")

    async def scenario() -> None:
        server = AckServer(night.service, night.signer, night.clock.now_ms)
        port = await server.start()
        night.signer.base_url = f"http://127.0.0.1:{port}"
        try:
            await run(server)
        finally:
            await server.stop()

    async def run(_server: AckServer) -> None:
        night.reading(GAS, 62.0)  # 62 %LEL: above the red set-point (50)
        assert night.at(0) == 10
        assert sorted(a for a, _ in sent(http_recorder, "/sms")) == sorted(RED_CHAIN)
        assert sorted(a for a, _ in sent(http_recorder, "/voice")) == sorted(RED_CHAIN)
        for _, text in sent(http_recorder, "/voice"):
            assert text.startswith("红色预警，")
            assert "按 1" in text
        # Every three minutes the phones ring again, and between times nothing happens.
        for minute in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11):
            night.at(minute * MIN)
        voice = sent(http_recorder, "/voice")
        assert len(voice) == 5 * 4  # 02:00, 02:03, 02:06, 02:09
        assert len(sent(http_recorder, "/sms")) == 5
        # 02:12: the township duty officer opens the link from the SMS, previews it, posts.
        night.clock.set(NIGHT + 12 * MIN)
        sms = next(
            r
            for r in http_recorder.requests
            if r.path == "/sms" and r.json()["to"] == "+8613800010011"
        )
        link = link_in(sms)
        assert "/a/" in link and link.endswith(".js-duty-zhao")
        async with aiohttp.ClientSession() as session:
            async with session.get(link) as page:
                assert page.status == 200
                text = await page.text()
                assert "周立军" in text and "报警中，未确认" in text
            assert night.store.list_alarms()[0].state.value == "active-unacked"
            async with session.post(link, data={"comment": "已到现场，关闭阀门"}) as done:
                assert done.status == 200
                assert "已确认" in await done.text()
        night.at(12 * MIN)
        # Nothing more rings, for the rest of the night.
        for minute in range(13, 61):
            night.at(minute * MIN)

    asyncio.run(scenario())

    voice = sent(http_recorder, "/voice")
    assert len(voice) == 20, "no call after the acknowledgement"
    # The others reached are told it is in hand (a written notice, not a call).
    # DingTalk for those who have it (through Apprise), SMS for the others.
    im = [r.json() for r in http_recorder.requests if r.path == "/im"]
    notices = [t for _, t in sent(http_recorder, "/sms")[5:]] + [m["title"] for m in im]
    assert len(notices) == 4
    assert all("已有人确认" in t and "赵志强" in t for t in notices)
    record = night.store.list_alarms()[0]
    assert record.state.value == "active-acked"
    assert record.acked_by == "js-duty-zhao"
    history = night.store.history(record.alarm_id)
    assert history is not None
    assert [(a.by, a.how, a.comment) for a in history.acks] == [
        ("js-duty-zhao", "link", "已到现场，关闭阀门")
    ]

    audit = night.store.audit(alarm_id=record.alarm_id, limit=10_000)
    assert [e.seq for e in audit] == sorted(e.seq for e in audit)
    assert [e.ts_ms for e in audit] == sorted(e.ts_ms for e in audit)
    kinds = [e.kind for e in audit]
    assert kinds[0] == AuditKind.TRANSITION
    ack_at = kinds.index(AuditKind.ACK)
    assert AuditKind.STEPS_CANCELLED in kinds[ack_at:]
    calls = [e for e in audit if e.kind == AuditKind.ATTEMPT and e.detail["channel"] == "voice"]
    assert len(calls) == 20
    assert all(e.ts_ms < NIGHT + 12 * MIN for e in calls)
    assert {e.ts_ms - NIGHT for e in calls} == {0, 3 * MIN, 6 * MIN, 9 * MIN}
    assert night.store.verify_audit() == []


def test_the_same_event_twice_sends_once(
    registry: Registry, http_recorder: HttpRecorder, tmp_path: Path
) -> None:
    night = open_night(registry, http_recorder, tmp_path / "alerts.db")
    night.reading(GAS, 62.0)
    events = night.store.list_alarms()
    assert len(events) == 1
    # A redelivered MQTT message re-runs the same reading: the rules emit nothing new, and
    # the same event applied twice to the store is a no-op.
    night.reading(GAS, 62.0)
    night.at(0)
    assert len(night.store.list_alarms()) == 1
    assert len(sent(http_recorder, "/voice")) == 5
